package novaconn_test

import (
	"context"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/novaha/novaha/lib/nova"
	"github.com/novaha/novaha/lib/novaconn"
	"github.com/novaha/novaha/lib/ocf"
)

// run runs a test agent declaring the connection parameters with env (OCF_RESKEY_...)
// and returns the request its start handler saw and the result code.
func run(t *testing.T, action string, env ...string) (*ocf.Request, ocf.Code, string) {
	t.Helper()
	var got *ocf.Request
	h := func(_ context.Context, r *ocf.Request) error { got = r; return nil }
	a := &ocf.Agent{
		Name: "Conn", Version: "1", ShortDesc: "test", LongDesc: "test agent",
		Params: append(novaconn.Params(), novaconn.DomainParam()),
		Validate: func(_ context.Context, r *ocf.Request) error {
			return novaconn.Validate(r, func(k string) string { return lookup(env, k) })
		},
		Actions: []ocf.Action{
			{Name: ocf.Start, Timeout: 20 * time.Second, Handler: h},
			{Name: ocf.Stop, Timeout: 20 * time.Second, Handler: h},
			{Name: ocf.Monitor, Timeout: 20 * time.Second, Handler: h},
		},
	}
	if err := a.Check(); err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	code := a.Run(context.Background(), []string{"Conn", action}, env, io.Discard, &stderr)
	return got, code, stderr.String()
}

func lookup(env []string, k string) string {
	for _, kv := range env {
		if n, v, _ := strings.Cut(kv, "="); n == k {
			return v
		}
	}
	return ""
}

func TestConfigDefaults(t *testing.T) {
	r, code, out := run(t, "start", "OCF_RESKEY_auth_url=http://k:5000/v3", "OCF_RESKEY_username=admin",
		"OCF_RESKEY_password=s3cret", "OCF_RESKEY_project_name=adm", "OCF_RESKEY_compute_domain=example.org")
	if code != ocf.Success {
		t.Fatalf("start: %v\n%s", code, out)
	}
	cfg := novaconn.Config(r, novaconn.Env{Getenv: func(string) string { return "" }, TokenCacheDir: "/run/x"})
	want := nova.Config{AuthURL: "http://k:5000/v3", Username: "admin", Password: "s3cret", ProjectName: "adm",
		Interface: novaconn.DefaultEndpointType, UserDomainName: nova.DefaultDomain, ProjectDomainName: nova.DefaultDomain,
		TokenCacheDir: "/run/x"}
	cfg.Logger, cfg.Getenv = nil, nil
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("config:\n got %+v\nwant %+v", cfg, want)
	}
	if d := r.String(novaconn.Domain); d != "example.org" {
		t.Errorf("domain from compute_domain = %q", d)
	}
	if strings.Contains(out, "s3cret") {
		t.Errorf("the password was logged:\n%s", out)
	}
}

// A clouds.yaml entry keeps its own interface and domains unless they are set explicitly.
func TestConfigCloudKeepsItsDefaults(t *testing.T) {
	r, code, out := run(t, "start", "OCF_RESKEY_cloud=prod", "OCF_RESKEY_user_domain=Users", "OCF_RESKEY_token_cache=0")
	if code != ocf.Success {
		t.Fatalf("start: %v\n%s", code, out)
	}
	cfg := novaconn.Config(r, novaconn.Env{Getenv: func(string) string { return "" }, TokenCacheDir: "/run/x"})
	if cfg.Cloud != "prod" || cfg.Interface != "" || cfg.ProjectDomainName != "" || cfg.UserDomainName != "Users" {
		t.Errorf("config %+v: want cloud prod, no interface, no project domain, user domain Users", cfg)
	}
	if cfg.TokenCacheDir != "" {
		t.Errorf("token_cache=0 still caches in %q", cfg.TokenCacheDir)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  []string
		ok   bool
		want string
	}{
		{"password", []string{"OCF_RESKEY_auth_url=http://k/v3", "OCF_RESKEY_username=u", "OCF_RESKEY_password=p"}, true, ""},
		{"no password", []string{"OCF_RESKEY_auth_url=http://k/v3", "OCF_RESKEY_username=u"}, false, "no password"},
		{"password script", []string{"OCF_RESKEY_auth_url=http://k/v3", "OCF_RESKEY_username=u", "OCF_RESKEY_password_script=cat /x"}, true, ""},
		{"no url", []string{"OCF_RESKEY_username=u", "OCF_RESKEY_password=p"}, false, "auth_url"},
		{"OS_CLOUD", []string{"OS_CLOUD=prod"}, true, ""},
		{"app cred", []string{"OCF_RESKEY_auth_url=http://k/v3", "OCF_RESKEY_application_credential_id=i",
			"OCF_RESKEY_application_credential_secret=s"}, true, ""},
		{"insecure and cacert", []string{"OCF_RESKEY_cloud=c", "OCF_RESKEY_insecure=yes", "OCF_RESKEY_cacert=/ca.pem"}, false, "contradict"},
		{"bad endpoint", []string{"OCF_RESKEY_cloud=c", "OCF_RESKEY_endpoint_type=nope"}, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, code, out := run(t, "validate-all", tc.env...)
			if (code == ocf.Success) != tc.ok {
				t.Fatalf("validate-all = %v, want ok=%t\n%s", code, tc.ok, out)
			}
			if !tc.ok && code != ocf.ErrConfigured {
				t.Errorf("validate-all = %v, want %v", code, ocf.ErrConfigured)
			}
			if !strings.Contains(out, tc.want) {
				t.Errorf("output does not say %q:\n%s", tc.want, out)
			}
		})
	}
}

func TestTableSecretsHaveNoDefault(t *testing.T) {
	names := map[string]bool{}
	for _, p := range novaconn.Table() {
		if p.Secret && p.Default != "" {
			t.Errorf("secret %s has a default", p.Name)
		}
		if names[p.Name] {
			t.Errorf("%s declared twice", p.Name)
		}
		names[p.Name] = true
	}
	for _, n := range []string{novaconn.Password, novaconn.AppCredSecret} {
		found := false
		for _, p := range novaconn.Params() {
			if p.Name == n {
				found = p.Secret
			}
		}
		if !found {
			t.Errorf("%s is not a secret OCF parameter", n)
		}
	}
}

func TestTokenCacheDir(t *testing.T) {
	env := func(k string) string {
		if k == "XDG_RUNTIME_DIR" {
			return "/run/user/1000"
		}
		return ""
	}
	if d := novaconn.TokenCacheDir(0, env); d != nova.DefaultTokenCacheDir {
		t.Errorf("root: %q", d)
	}
	if d := novaconn.TokenCacheDir(1000, env); d != "/run/user/1000/novaha/tokens" {
		t.Errorf("user: %q", d)
	}
	if d := novaconn.TokenCacheDir(1000, func(string) string { return "" }); d != "" {
		t.Errorf("user without XDG_RUNTIME_DIR: %q", d)
	}
}

func TestResolvePasswordScript(t *testing.T) {
	r, code, out := run(t, "start", "OCF_RESKEY_auth_url=http://k/v3", "OCF_RESKEY_login=admin",
		"OCF_RESKEY_passwd_script=printf 'from-script\\n'")
	if code != ocf.Success {
		t.Fatalf("start: %v\n%s", code, out)
	}
	cfg, err := novaconn.Resolve(context.Background(), r, novaconn.Env{})
	if err != nil || cfg.Password != "from-script" || cfg.Username != "admin" {
		t.Fatalf("Resolve: password %q user %q, %v", cfg.Password, cfg.Username, err)
	}
	// A password given directly wins, and the script is not run.
	r, _, _ = run(t, "start", "OCF_RESKEY_auth_url=http://k/v3", "OCF_RESKEY_username=u",
		"OCF_RESKEY_password=direct", "OCF_RESKEY_password_script=exit 1")
	if cfg, err := novaconn.Resolve(context.Background(), r, novaconn.Env{}); err != nil || cfg.Password != "direct" {
		t.Errorf("Resolve with both: %q %v", cfg.Password, err)
	}
	r, _, _ = run(t, "start", "OCF_RESKEY_auth_url=http://k/v3", "OCF_RESKEY_username=u",
		"OCF_RESKEY_password_script=echo s3cret-out; exit 3")
	_, err = novaconn.Resolve(context.Background(), r, novaconn.Env{})
	if err == nil || strings.Contains(err.Error(), "s3cret-out") {
		t.Errorf("a failing script: %v (want an error without its output)", err)
	}
}
