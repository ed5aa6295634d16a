package nova

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/config/clouds"
	"github.com/novaha/novaha/lib/clock/clocktest"
	"github.com/novaha/novaha/lib/nova/novatest"
)

// fakeClock advances only when slept on.
type fakeClock = clocktest.Fake

func newClock() *fakeClock { return clocktest.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) }

func testConfig(srv *novatest.Server, clock Clock) Config {
	return Config{
		AuthURL: srv.AuthURL(), Username: novatest.Username, Password: novatest.Password, ProjectName: novatest.Project,
		Clock: clock, Getenv: func(string) string { return "" },
	}
}

func dial(t *testing.T, srv *novatest.Server, clock Clock) *Client {
	t.Helper()
	c, err := Dial(context.Background(), testConfig(srv, clock))
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	srv.Requests()
	return c
}

func TestDialAuthenticatesAndNegotiates(t *testing.T) {
	srv := novatest.New(t, novatest.Service{Host: "compute1", Alive: true})
	c, err := Dial(context.Background(), testConfig(srv, newClock()))
	if err != nil {
		t.Fatal(err)
	}
	reqs := srv.Requests()
	if len(reqs) != 2 {
		t.Fatalf("requests %v, want a token request and the version document", reqs)
	}
	auth := reqs[0]
	for _, want := range []string{`"methods":["password"]`, `"name":"admin"`, `"domain":{"name":"Default"}`, `"scope":{"project":{"domain":{"name":"Default"},"name":"admin"}}`} {
		if auth.Method != "POST" || auth.Path != "/v3/auth/tokens" || !strings.Contains(auth.Body, want) {
			t.Errorf("token request %v lacks %s", auth, want)
		}
	}
	if reqs[1].Method != "GET" || reqs[1].Path != "/" {
		t.Errorf("version request %v", reqs[1])
	}
	if got := c.MaxMicroversion(); got != (Microversion{2, 93}) {
		t.Errorf("max microversion %v", got)
	}
	list, err := c.ComputeServices(context.Background())
	if err != nil || len(list) != 1 || list[0].Host != "compute1" || !list[0].Up() || list[0].ID != "00000000-0000-4000-8000-000000000001" {
		t.Fatalf("services %+v, %v", list, err)
	}
	r := srv.Requests()[0]
	if r.Microversion != "2.53" || r.OpenStackAPI != "compute 2.53" || r.Token != novatest.Token || r.Query != "binary=nova-compute" {
		t.Errorf("list request %+v", r)
	}
}

func TestDialWithApplicationCredential(t *testing.T) {
	srv := novatest.New(t)
	cfg := Config{AuthURL: srv.AuthURL(), ApplicationCredentialID: novatest.AppCredID, ApplicationCredentialSecret: novatest.AppCredSecret,
		ProjectName: "ignored", Clock: newClock()}
	if _, err := Dial(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	body := srv.Requests()[0].Body
	if !strings.Contains(body, `"application_credential":{"id":"0123456789abcdef","secret":"app-cred-s3cret"}`) || strings.Contains(body, "scope") {
		t.Errorf("token request %s", body)
	}
}

func TestDialUnversionedAuthURL(t *testing.T) {
	srv := novatest.New(t)
	cfg := testConfig(srv, newClock())
	cfg.AuthURL = srv.URL + "/identity"
	if _, err := Dial(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
}

func TestDialErrorsAreOneLineWithoutSecrets(t *testing.T) {
	stopped := novatest.New(t)
	stopped.Close()
	cases := []struct {
		name string
		srv  *novatest.Server
		cfg  func(*Config)
		is   error
		want string
	}{
		{name: "wrong password", srv: novatest.New(t), cfg: func(c *Config) { c.Password = "wrong-pw" }, is: ErrUnauthorized,
			want: "Keystone refused the credentials (HTTP 401) while authenticating"},
		{name: "keystone down", srv: stopped, is: ErrUnreachable, want: "Keystone is unreachable while authenticating"},
		{name: "nova not in the catalog", srv: func() *novatest.Server { s := novatest.New(t); s.NoInternalEndpoint = true; return s }(),
			want: "the Keystone catalog has no internal compute endpoint"},
		{name: "nova down", srv: func() *novatest.Server {
			s := novatest.New(t)
			s.Fail(novatest.Fault{Match: "GET /", Status: 503, Count: 100})
			return s
		}(), want: "Nova answered HTTP 503 Service Unavailable while reading its API version"},
		{name: "nova too old", srv: func() *novatest.Server { s := novatest.New(t); s.MaxMicroversion = "2.10"; return s }(),
			want: "at least 2.11 (forced_down) is needed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(tc.srv, newClock())
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			_, err := Dial(context.Background(), cfg)
			if err == nil {
				t.Fatal("Dial succeeded")
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.want) {
				t.Errorf("error %q lacks %q", msg, tc.want)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %q is not %v", msg, tc.is)
			}
			if strings.ContainsAny(msg, "\n") || strings.Contains(msg, cfg.Password) || strings.Contains(msg, novatest.Password) {
				t.Errorf("error %q is not one line, or shows a secret", msg)
			}
		})
	}
}

func TestConfigNeverPrintsSecrets(t *testing.T) {
	c := Config{AuthURL: "https://k:5000/v3", Username: "u", Password: "pw-123", ApplicationCredentialSecret: "acs-456"}
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), fmt.Sprintf("%v", c.LogValue())} {
		if strings.Contains(s, "pw-123") || strings.Contains(s, "acs-456") {
			t.Errorf("secret printed: %s", s)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		cfg  Config
		want string
	}{
		{Config{}, "no Keystone URL"},
		{Config{AuthURL: "keystone:5000"}, "not an http(s) URL"},
		{Config{AuthURL: "http://u:p@k/v3", Username: "u"}, "must not carry credentials"},
		{Config{AuthURL: "http://k/v3"}, "no user name"},
		{Config{AuthURL: "http://k/v3", ApplicationCredentialID: "x"}, "needs its secret"},
		{Config{AuthURL: "http://k/v3", ApplicationCredentialName: "x", ApplicationCredentialSecret: "s"}, "needs the user name"},
		{Config{AuthURL: "http://k/v3", Username: "u", Interface: "privateURL"}, "endpoint type"},
		{Config{AuthURL: "http://k/v3", Username: "u", CACertFile: "/nonexistent/ca.pem"}, ""}, // read by Dial
		{Config{AuthURL: "http://k/v3", Username: "u", Interface: "publicURL"}, ""},
		{Config{Cloud: "mycloud"}, ""},
		{Config{Getenv: func(k string) string { return map[string]string{"OS_CLOUD": "envcloud"}[k] }}, ""},
	}
	for _, tc := range cases {
		err := tc.cfg.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%v: %v", tc.cfg, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrInvalidConfig)):
			t.Errorf("%v: error %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

func TestRetries(t *testing.T) {
	cases := []struct {
		name     string
		fault    novatest.Fault
		deadline time.Duration
		attempts int
		ok       bool
		sleeps   string
		tries    int
	}{
		{name: "503 then success", fault: novatest.Fault{Match: "GET /os-services", Status: 503, Count: 2}, ok: true, sleeps: "200ms 400ms", tries: 3},
		{name: "500 then success", fault: novatest.Fault{Match: "GET /os-services", Status: 500, Count: 1}, ok: true, sleeps: "200ms", tries: 2},
		{name: "pauses are capped", fault: novatest.Fault{Match: "GET /os-services", Status: 502, Count: 6}, attempts: 7, ok: true,
			sleeps: "200ms 400ms 800ms 1.6s 2s 2s", tries: 7},
		{name: "gives up after the attempts", fault: novatest.Fault{Match: "GET /os-services", Status: 503, Count: 100}, sleeps: "200ms 400ms 800ms 1.6s", tries: 5},
		{name: "never past the deadline", fault: novatest.Fault{Match: "GET /os-services", Status: 503, Count: 100}, deadline: 500 * time.Millisecond,
			sleeps: "200ms", tries: 2},
		{name: "a client error is not retried", fault: novatest.Fault{Match: "GET /os-services", Status: 404, Count: 1}, tries: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := novatest.New(t, novatest.Service{Host: "compute1"})
			// Deadlines are real time: start the fake clock now.
			clock := clocktest.New(time.Now())
			cfg := testConfig(srv, clock)
			cfg.RetryAttempts = tc.attempts
			c, err := Dial(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			srv.Requests()
			srv.Fail(tc.fault)
			ctx := context.Background()
			if tc.deadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithDeadline(ctx, clock.Now().Add(tc.deadline))
				defer cancel()
			}
			_, err = c.ComputeServices(ctx)
			if (err == nil) != tc.ok {
				t.Errorf("error %v, want success %t", err, tc.ok)
			}
			var sleeps []string
			for _, d := range clock.Sleeps() {
				sleeps = append(sleeps, d.String())
			}
			if strings.Join(sleeps, " ") != tc.sleeps {
				t.Errorf("pauses %v, want %s", sleeps, tc.sleeps)
			}
			if n := len(srv.Requests()); n != tc.tries {
				t.Errorf("%d attempts, want %d", n, tc.tries)
			}
		})
	}
}

func TestDroppedConnectionIsRetried(t *testing.T) {
	// Go's transport itself repeats a GET on a reused connection that the server
	// closed; a PUT it leaves to us.
	srv := novatest.New(t, novatest.Service{Host: "compute1"})
	clock := newClock()
	c := dial(t, srv, clock)
	s, err := ComputeService(context.Background(), c, "compute1")
	if err != nil {
		t.Fatal(err)
	}
	srv.Fail(novatest.Fault{Match: "PUT /os-services", Count: 1})
	if _, err := c.UpdateService(context.Background(), s, ServiceUpdate{ForcedDown: ForceDown}); err != nil {
		t.Fatal(err)
	}
	if len(clock.Sleeps()) != 1 || !srv.Service("compute1").ForcedDown {
		t.Errorf("pauses %v, record %+v", clock.Sleeps(), srv.Service("compute1"))
	}
}

func TestPostIsNotRetried(t *testing.T) {
	if repeatable(&http.Request{Method: http.MethodPost, URL: mustURL("http://n/v2.1/servers/x/action")}) {
		t.Error("a server action would be sent twice")
	}
}

func TestKeystoneTokenRequestIsRetried(t *testing.T) {
	srv := novatest.New(t)
	srv.Fail(novatest.Fault{Match: "POST /v3/auth/tokens", Status: 503, Count: 2})
	if _, err := Dial(context.Background(), testConfig(srv, newClock())); err != nil {
		t.Fatal(err)
	}
}

func TestUpdateServiceRequests(t *testing.T) {
	cases := []struct {
		name string
		max  string
		u    ServiceUpdate
		want []string
		mv   string
	}{
		{name: "lift force-down at 2.53 sends false", max: "2.93", u: ServiceUpdate{ForcedDown: LiftForceDown},
			want: []string{`PUT /os-services/00000000-0000-4000-8000-000000000001 {"forced_down":false}`}, mv: "2.53"},
		{name: "disable with reason", max: "2.53", u: ServiceUpdate{Status: "disabled", DisabledReason: "novaha:fenced"},
			want: []string{`PUT /os-services/00000000-0000-4000-8000-000000000001 {"disabled_reason":"novaha:fenced","status":"disabled"}`}, mv: "2.53"},
		{name: "enable", max: "2.60", u: ServiceUpdate{Status: "enabled"},
			want: []string{`PUT /os-services/00000000-0000-4000-8000-000000000001 {"status":"enabled"}`}, mv: "2.53"},
		{name: "fallback before 2.53: force-down then disable, then read back", max: "2.52",
			u: ServiceUpdate{ForcedDown: ForceDown, Status: "disabled", DisabledReason: "r"},
			want: []string{
				`PUT /os-services/force-down {"binary":"nova-compute","forced_down":true,"host":"compute1"}`,
				`PUT /os-services/disable-log-reason {"binary":"nova-compute","disabled_reason":"r","host":"compute1"}`,
				`GET /os-services?binary=nova-compute&host=compute1`,
			}, mv: "2.11"},
		{name: "fallback lift and enable", max: "2.20", u: ServiceUpdate{ForcedDown: LiftForceDown, Status: "enabled"},
			want: []string{
				`PUT /os-services/force-down {"binary":"nova-compute","forced_down":false,"host":"compute1"}`,
				`PUT /os-services/enable {"binary":"nova-compute","host":"compute1"}`,
				`GET /os-services?binary=nova-compute&host=compute1`,
			}, mv: "2.11"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := novatest.New(t, novatest.Service{Host: "compute1", ForcedDown: true, Disabled: true})
			srv.MaxMicroversion = tc.max
			c := dial(t, srv, newClock())
			svc, err := ComputeService(context.Background(), c, "compute1")
			if err != nil {
				t.Fatal(err)
			}
			srv.Requests()
			got, err := c.UpdateService(context.Background(), svc, tc.u)
			if err != nil {
				t.Fatal(err)
			}
			reqs := srv.Requests()
			var lines []string
			for _, r := range reqs {
				lines = append(lines, r.String())
				if r.Microversion != tc.mv {
					t.Errorf("%s sent microversion %q, want %s", r, r.Microversion, tc.mv)
				}
			}
			if strings.Join(lines, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("requests\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(tc.want, "\n"))
			}
			if tc.u.ForcedDown != nil && got.ForcedDown != *tc.u.ForcedDown {
				t.Errorf("record after the update: %+v", got)
			}
		})
	}
}

func TestServiceUpdateRefusesWhatNovaRefuses(t *testing.T) {
	for _, u := range []ServiceUpdate{{}, {Status: "enabled", DisabledReason: "x"}, {DisabledReason: "x"}, {Status: "off"}} {
		if _, err := u.ToServiceUpdateMap(); err == nil {
			t.Errorf("%+v accepted", u)
		}
	}
}

func TestServiceIDBeforeMicroversion253IsANumber(t *testing.T) {
	srv := novatest.New(t, novatest.Service{Host: "compute1"})
	srv.MaxMicroversion = "2.40"
	c := dial(t, srv, newClock())
	s, err := ComputeService(context.Background(), c, "compute1")
	if err != nil || s.ID != "1" {
		t.Fatalf("%+v %v", s, err)
	}
}

func TestStatusCodeAndServiceMessage(t *testing.T) {
	srv := novatest.New(t, novatest.Service{Host: "compute1", ForcedDown: true, EvacuationsDone: true})
	c := dial(t, srv, newClock())
	s, _ := ComputeService(context.Background(), c, "compute1")
	_, err := c.UpdateService(context.Background(), s, ServiceUpdate{ForcedDown: LiftForceDown})
	if StatusCode(err) != http.StatusBadRequest || !strings.Contains(err.Error(), "Nova answered HTTP 400 Bad Request while lifting the force-down of compute1") ||
		!strings.Contains(err.Error(), "Unable to force up host compute1") {
		t.Fatalf("error %v", err)
	}
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

func TestCloudsYAMLWithSecureYAML(t *testing.T) {
	srv := novatest.New(t, novatest.Service{Host: "compute1"})
	dir := t.TempDir()
	clouds := `clouds:
  sandbox:
    auth:
      auth_url: ` + srv.AuthURL() + `
      username: admin
      project_name: admin
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    interface: public
`
	secure := "clouds:\n  sandbox:\n    auth:\n      password: " + novatest.Password + "\n"
	if err := os.WriteFile(filepath.Join(dir, "clouds.yaml"), []byte(clouds), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "secure.yaml"), []byte(secure), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Cloud: "sandbox", CloudsFile: filepath.Join(dir, "clouds.yaml"), Clock: newClock()}
	c, err := Dial(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ComputeServices(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Options given explicitly override the file: a wrong password is refused.
	cfg.Password = "wrong"
	if _, err := Dial(context.Background(), cfg); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("override: %v", err)
	}
	// OS_CLOUD names the entry when cloud is not given.
	cfg = Config{CloudsFile: filepath.Join(dir, "clouds.yaml"), Clock: newClock(),
		Getenv: func(k string) string { return map[string]string{"OS_CLOUD": "sandbox"}[k] }}
	if _, err := Dial(context.Background(), cfg); err != nil {
		t.Errorf("OS_CLOUD: %v", err)
	}
	cfg = Config{Cloud: "nosuch", CloudsFile: filepath.Join(dir, "clouds.yaml")}
	if _, err := Dial(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), `cloud "nosuch" not found`) {
		t.Errorf("unknown cloud: %v", err)
	}
}

func TestDialChecksTheCABundle(t *testing.T) {
	srv := novatest.New(t)
	cfg := testConfig(srv, newClock())
	cfg.CACertFile = filepath.Join(t.TempDir(), "missing.pem")
	if _, err := Dial(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "CA bundle") || len(srv.Requests()) != 0 {
		t.Errorf("missing CA bundle: %v", err)
	}
	empty := filepath.Join(t.TempDir(), "empty.pem")
	_ = os.WriteFile(empty, []byte("not a certificate"), 0o600)
	cfg.CACertFile = empty
	if _, err := Dial(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "holds no PEM certificate") {
		t.Errorf("empty CA bundle: %v", err)
	}
}

func TestTokenCache(t *testing.T) {
	srv := novatest.New(t, novatest.Service{Host: "compute1"})
	dir := filepath.Join(t.TempDir(), "tokens")
	cfg := testConfig(srv, newClock())
	cfg.TokenCacheDir = dir
	count := func() (auth, version int) {
		for _, r := range srv.Requests() {
			switch {
			case r.Path == "/v3/auth/tokens":
				auth++
			case r.Path == "/":
				version++
			}
		}
		return
	}
	ctx := context.Background()
	// The first run logs in and caches the token; the second goes to Nova directly.
	if _, err := Dial(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if a, v := count(); a != 1 || v != 1 {
		t.Fatalf("first run: %d logins, %d version reads", a, v)
	}
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("cache directory %v %v", fi.Mode(), err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(files) != 1 {
		t.Fatalf("cache entries %v", files)
	}
	if fi, _ := os.Stat(files[0]); fi.Mode().Perm() != 0o600 {
		t.Errorf("cache entry mode %v", fi.Mode())
	}
	c, err := Dial(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if a, v := count(); a != 0 || v != 0 {
		t.Fatalf("second run: %d logins, %d version reads", a, v)
	}
	if _, err := c.ComputeServices(ctx); err != nil || c.MaxMicroversion() != (Microversion{2, 93}) {
		t.Fatalf("with the cached token: %v, %v", err, c.MaxMicroversion())
	}
	// A health check logs in all the same.
	fresh := cfg
	fresh.FreshToken = true
	if _, err := Dial(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	if a, _ := count(); a != 1 {
		t.Errorf("fresh token: %d logins", a)
	}
	// Other credentials never use the entry.
	other := cfg
	other.Password = "wrong"
	if _, err := Dial(ctx, other); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("other password: %v", err)
	}
	if a, _ := count(); a != 1 {
		t.Errorf("a refused login must be tried once, not %d times", a)
	}
	// A token Nova refuses (revoked) is replaced, and the request repeated.
	srv.Lock()
	srv.Token = "gAAAA-rotated"
	srv.Unlock()
	c, err = Dial(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ComputeServices(ctx); err != nil {
		t.Fatalf("after revocation: %v", err)
	}
	if a, _ := count(); a != 1 {
		t.Errorf("after revocation: %d logins", a)
	}
	// A cache entry others may read is not trusted.
	_ = os.Chmod(files[0], 0o644)
	if _, err := Dial(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if a, _ := count(); a != 1 {
		t.Errorf("world-readable entry used: %d logins", a)
	}
}

func TestTokenCacheExpiry(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tokens")
	now := time.Now()
	if err := saveToken(dir, "k", cachedToken{Token: "t", ExpiresAt: now.Add(4 * time.Minute), ComputeEndpoint: "http://n/", MaxMicroversion: "2.93"}, now); err != nil {
		t.Fatal(err)
	}
	if _, ok := loadToken(dir, "k", now); ok {
		t.Error("a token with less than the margin left was used")
	}
	if _, ok := loadToken(dir, "k", now.Add(-2*time.Minute)); !ok {
		t.Error("a token with more than the margin left was not used")
	}
	// Saving another entry prunes the expired ones.
	if err := saveToken(dir, "k2", cachedToken{Token: "t2", ExpiresAt: now.Add(time.Hour)}, now.Add(5*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "k.json")); !os.IsNotExist(err) {
		t.Errorf("expired entry kept: %v", err)
	}
}

// A killed run leaves its temporary file: the next save removes those older than a
// minute, and leaves a run in progress alone.
func TestTokenCachePrunesStaleTempFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tokens")
	now := time.Now()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	stale, fresh := filepath.Join(dir, ".tmp-1234"), filepath.Join(dir, ".tmp-5678")
	for _, p := range []string{stale, fresh} {
		if err := os.WriteFile(p, []byte(`{"token":"gAAAA`), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chtimes(stale, now.Add(-2*time.Minute), now.Add(-2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := saveToken(dir, "k", cachedToken{Token: "t", ExpiresAt: now.Add(time.Hour)}, now); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale temporary file kept: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("a temporary file being written was removed: %v", err)
	}
}

// Entries are named by an HMAC keyed by the cache's own random key, not by an unsalted
// hash of the password: two caches name the same credentials differently, and a key
// others may read is not used.
func TestTokenCacheNamesAreKeyed(t *testing.T) {
	srv := novatest.New(t, novatest.Service{Host: "compute1"})
	ctx := context.Background()
	entry := func(dir string) string {
		cfg := testConfig(srv, newClock())
		cfg.TokenCacheDir = dir
		if _, err := Dial(ctx, cfg); err != nil {
			t.Fatal(err)
		}
		files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
		if len(files) != 1 {
			t.Fatalf("entries %v", files)
		}
		return filepath.Base(files[0])
	}
	dir1, dir2 := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	if e1, e2 := entry(dir1), entry(dir2); e1 == e2 {
		t.Errorf("two caches name the same credentials alike: %s", e1)
	}
	key := filepath.Join(dir1, cacheSecretFile)
	fi, err := os.Stat(key)
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Size() != cacheSecretSize {
		t.Fatalf("cache key %v %v", fi, err)
	}
	// The old name, a plain SHA-256 over the fields, must not be what is used.
	c, err := Dial(ctx, testConfig(srv, newClock()))
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	scope := *c.ao.Scope
	for _, f := range []string{c.ao.IdentityEndpoint, c.ao.Username, c.ao.UserID, c.ao.DomainName, c.ao.DomainID, c.ao.Password,
		"", "", "", scope.ProjectName, scope.ProjectID, scope.DomainName, scope.DomainID, c.eo.Region, string(c.eo.Availability)} {
		h.Write([]byte(f))
		h.Write([]byte{0})
	}
	if plain := hex.EncodeToString(h.Sum(nil))[:40] + ".json"; plain == entry(dir1) {
		t.Error("the entry is named by an unsalted hash of the password")
	}
	// A key others may read is refused: the run logs in.
	_ = os.Chmod(key, 0o644)
	srv.Requests()
	cfg := testConfig(srv, newClock())
	cfg.TokenCacheDir = dir1
	if _, err := Dial(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	logins := 0
	for _, r := range srv.Requests() {
		if r.Path == "/v3/auth/tokens" {
			logins++
		}
	}
	if logins != 1 {
		t.Errorf("a world-readable cache key was used: %d logins", logins)
	}
}

// An entry gophercloud's clouds.Parse cannot read (no auth: it panicked) is refused
// with one line naming the file, never a panic.
func TestCloudsYAMLEntryIsCheckedBeforeParse(t *testing.T) {
	srv := novatest.New(t, novatest.Service{Host: "compute1"})
	cases := []struct {
		name, clouds, secure, err string
	}{
		{"no auth", "clouds:\n  prod:\n    region_name: RegionOne\n", "", `cloud "prod" has no auth section`},
		{"auth empty", "clouds:\n  prod:\n    auth:\n    region_name: RegionOne\n", "", `cloud "prod" has no auth section`},
		{"auth not a mapping", "clouds:\n  prod:\n    auth: admin\n", "", "is not a mapping"},
		{"auth field a list", "clouds:\n  prod:\n    auth:\n      auth_url: [a, b]\n", "", "auth.auth_url must be a single value"},
		{"entry not a mapping", "clouds:\n  prod: yes\n", "", `the entry "prod" is not a mapping`},
		{"verify not a boolean", "clouds:\n  prod:\n    verify: sometimes\n    auth:\n      auth_url: http://k/v3\n", "", "verify must be true or false"},
		{"region a mapping", "clouds:\n  prod:\n    region_name: {a: b}\n    auth:\n      auth_url: http://k/v3\n", "", "region_name must be a single value"},
		{"no auth in secure.yaml either", "clouds:\n  prod:\n    region_name: RegionOne\n", "clouds:\n  prod:\n    region_name: RegionTwo\n", "no auth section"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "clouds.yaml"), []byte(tc.clouds), 0o600); err != nil {
				t.Fatal(err)
			}
			if tc.secure != "" {
				if err := os.WriteFile(filepath.Join(dir, "secure.yaml"), []byte(tc.secure), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			_, err := Dial(context.Background(), Config{Cloud: "prod", CloudsFile: filepath.Join(dir, "clouds.yaml"), Clock: newClock()})
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.err) || strings.Contains(err.Error(), "\n") {
				t.Errorf("%v; want an invalid configuration, one line, saying %q", err, tc.err)
			}
		})
	}
	// auth only in secure.yaml is an entry gophercloud reads.
	dir := t.TempDir()
	_ = os.WriteFile(filepath.Join(dir, "clouds.yaml"), []byte("clouds:\n  prod:\n    region_name: RegionOne\n"), 0o600)
	secure := "clouds:\n  prod:\n    auth:\n      auth_url: " + srv.AuthURL() + "\n      username: " + novatest.Username +
		"\n      password: " + novatest.Password + "\n      project_name: " + novatest.Project + "\n"
	_ = os.WriteFile(filepath.Join(dir, "secure.yaml"), []byte(secure), 0o600)
	if _, err := Dial(context.Background(), Config{Cloud: "prod", CloudsFile: filepath.Join(dir, "clouds.yaml"), Clock: newClock()}); err != nil {
		t.Errorf("auth in secure.yaml only: %v", err)
	}
}

// Should clouds.Parse panic on an entry the checks let through, the panic is one line.
func TestCloudsParsePanicIsAnError(t *testing.T) {
	saved := parseClouds
	t.Cleanup(func() { parseClouds = saved })
	parseClouds = func(...clouds.ParseOption) (gophercloud.AuthOptions, gophercloud.EndpointOpts, *tls.Config, error) {
		panic("runtime error: invalid memory address or nil pointer dereference")
	}
	dir := t.TempDir()
	_ = os.WriteFile(filepath.Join(dir, "clouds.yaml"), []byte("clouds:\n  prod:\n    auth:\n      auth_url: http://k/v3\n"), 0o600)
	_, err := Dial(context.Background(), Config{Cloud: "prod", CloudsFile: filepath.Join(dir, "clouds.yaml"), Clock: newClock()})
	if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), `the entry "prod" could not be read`) {
		t.Errorf("%v", err)
	}
}

// A clouds.yaml or secure.yaml that YAML cannot decode is reported by file and line
// only: the decoder's message quoted the value, over several lines, and a value there
// may be a password.
func TestCloudsYAMLErrorsShowNoValue(t *testing.T) {
	const secret = "hunter2-secret-value"
	cases := []struct {
		name, clouds, secure, file, line string
	}{
		{"wrong type, quoted by the decoder", "clouds:\n  prod:\n    regions: " + secret + "\n    auth:\n      auth_url: http://k/v3\n", "",
			"clouds.yaml", "line 3"},
		{"not a clouds.yaml", "- " + secret + "\n", "", "clouds.yaml", "line 1"},
		{"unterminated quote", "clouds:\n  prod:\n    auth:\n      password: \"" + secret + "\n      username: x\n", "", "clouds.yaml", "line "},
		{"in secure.yaml", "clouds:\n  prod:\n    auth:\n      auth_url: http://k/v3\n",
			"clouds:\n  prod:\n    regions: " + secret + "\n", "secure.yaml", "line 3"},
		{"secure.yaml syntax", "clouds:\n  prod:\n    auth:\n      auth_url: http://k/v3\n",
			"clouds:\n  prod:\n    auth:\n      password: " + secret + ": x\n", "secure.yaml", "line 4"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			_ = os.WriteFile(filepath.Join(dir, "clouds.yaml"), []byte(tc.clouds), 0o600)
			if tc.secure != "" {
				_ = os.WriteFile(filepath.Join(dir, "secure.yaml"), []byte(tc.secure), 0o600)
			}
			_, err := Dial(context.Background(), Config{Cloud: "prod", CloudsFile: filepath.Join(dir, "clouds.yaml"), Clock: newClock()})
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if strings.Contains(msg, "hunter") || strings.Contains(msg, "\n") || !strings.Contains(msg, filepath.Join(dir, tc.file)) ||
				!strings.Contains(msg, tc.line) {
				t.Errorf("%q: want one line naming %s and %s, and no value", msg, tc.file, tc.line)
			}
		})
	}
}
