package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/novaha/novaha/lib/fence"
	"github.com/novaha/novaha/lib/nova"
	"github.com/novaha/novaha/lib/nova/novatest"
	"github.com/novaha/novaha/lib/pacemaker"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

const id1 = "00000000-0000-4000-8000-000000000001"

// clock advances only when slept on; onSleep lets a test change the world meanwhile.
type clock struct {
	mu      sync.Mutex
	now     time.Time
	sleeps  int
	onSleep func(n int)
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	c.now = c.now.Add(d)
	if d > 0 {
		c.sleeps++
	}
	n, f := c.sleeps, c.onSleep
	c.mu.Unlock()
	if f != nil && d > 0 {
		f(n)
	}
	return nil
}

// fakeAttrd records attribute updates and answers queries from a map. err fails the
// updates, qerr the queries; outside makes it a host without Pacemaker.
type fakeAttrd struct {
	mu      sync.Mutex
	set     []string
	values  map[string]string
	err     error
	qerr    error
	outside bool
}

func (a *fakeAttrd) Available() bool { return !a.outside }

func (a *fakeAttrd) SetPrivate(_ context.Context, node, name, value string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.set = append(a.set, fmt.Sprintf("%s %s=%s", node, name, value))
	if a.err != nil {
		return a.err
	}
	if a.values == nil {
		a.values = map[string]string{}
	}
	a.values[node+" "+name] = value
	return nil
}

func (a *fakeAttrd) QueryPrivate(_ context.Context, node, name string) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.qerr != nil {
		return "", a.qerr
	}
	if v, ok := a.values[node+" "+name]; ok {
		return v, nil
	}
	return "", pacemaker.ErrNoAttribute
}

type harness struct {
	srv   *novatest.Server
	clock *clock
	attrd *fakeAttrd
	cfg   nova.Config // the last configuration dialled
	env   map[string]string
	// tokenDir is the token cache; "" for none.
	tokenDir string
}

func newHarness(t *testing.T, services ...novatest.Service) *harness {
	return &harness{srv: novatest.New(t, services...), clock: &clock{now: time.Now()}, attrd: &fakeAttrd{}, env: map[string]string{}}
}

type result struct {
	code           int
	stdout, stderr string
}

// run runs fence_nova in-process with the fake's credentials and the given stdin lines.
func (h *harness) run(t *testing.T, stdin string) result {
	t.Helper()
	e := env{
		dial: func(ctx context.Context, cfg nova.Config) (novaClient, error) {
			h.cfg = cfg
			cfg.Clock = h.clock
			return nova.Dial(ctx, cfg)
		},
		attrd:         func(*slog.Logger) attrd { return h.attrd },
		now:           func() time.Time { return t0 },
		getenv:        func(k string) string { return h.env[k] },
		tokenCacheDir: func() string { return h.tokenDir },
	}
	a := agent(e)
	a.Clock = h.clock
	creds := fmt.Sprintf("auth_url=%s\nlogin=%s\npasswd=%s\ntenant_name=%s\n", h.srv.AuthURL(), novatest.Username, novatest.Password, novatest.Project)
	var out, errb bytes.Buffer
	code := a.Run(context.Background(), fence.Invocation{Stdin: strings.NewReader(creds + stdin), Stdout: &out, Stderr: &errb,
		Getenv: func(k string) string { return h.env[k] }})
	return result{code, out.String(), errb.String()}
}

func TestAgentDeclaration(t *testing.T) {
	if err := agent(defaultEnv()).Check(); err != nil {
		t.Fatal(err)
	}
}

func TestOff(t *testing.T) {
	// The marker records that evacuate=yes was set before it (the fake attrd is there).
	fenced := "novaha:fenced 2026-01-02T03:04:05Z evacuate=yes"
	cases := []struct {
		name   string
		svc    novatest.Service
		stdin  string
		code   int
		stdout string
		stderr string
		reqs   []string
		reason string
		attrd  string
	}{
		{name: "up and enabled: force down, then disable, then read back",
			svc: novatest.Service{Host: "compute1", Alive: true}, stdin: "action=off\nplug=compute1",
			stdout: "Success: Powered OFF\n",
			reqs: []string{
				"GET /os-services?binary=nova-compute",
				`PUT /os-services/` + id1 + ` {"forced_down":true}`,
				`PUT /os-services/` + id1 + ` {"disabled_reason":"` + fenced + `","status":"disabled"}`,
				"GET /os-services?binary=nova-compute&host=compute1",
			},
			reason: fenced, attrd: "compute1 evacuate=yes"},
		{name: "off is the default action", svc: novatest.Service{Host: "compute1"}, stdin: "port=compute1",
			stdout: "Success: Powered OFF\n", reason: fenced, attrd: "compute1 evacuate=yes"},
		{name: "already fenced: idempotent, evacuate=yes asserted again",
			svc:   novatest.Service{Host: "compute1", ForcedDown: true, Disabled: true, DisabledReason: "novaha:fenced 2026-01-01T00:00:00Z evacuate=yes"},
			stdin: "action=off\nplug=compute1", stdout: "Success: Already OFF\n",
			reqs:   []string{"GET /os-services?binary=nova-compute"},
			reason: "novaha:fenced 2026-01-01T00:00:00Z evacuate=yes", attrd: "compute1 evacuate=yes"},
		{name: "fenced outside Pacemaker, off again under it: evacuate=yes set and recorded, the time kept",
			svc:   novatest.Service{Host: "compute1", ForcedDown: true, Disabled: true, DisabledReason: "novaha:fenced 2026-01-01T00:00:00Z; was disabled: x"},
			stdin: "action=off\nplug=compute1", stdout: "Success: Already OFF\n",
			reqs: []string{"GET /os-services?binary=nova-compute",
				`PUT /os-services/` + id1 + ` {"disabled_reason":"novaha:fenced 2026-01-01T00:00:00Z evacuate=yes; was disabled: x","status":"disabled"}`},
			reason: "novaha:fenced 2026-01-01T00:00:00Z evacuate=yes; was disabled: x", attrd: "compute1 evacuate=yes"},
		{name: "already evacuated: nothing at all",
			svc:   novatest.Service{Host: "compute1", ForcedDown: true, Disabled: true, DisabledReason: "novaha:evacuated moved=1 failed=0"},
			stdin: "action=off\nplug=compute1", stdout: "Success: Already OFF\n", reason: "novaha:evacuated moved=1 failed=0"},
		{name: "forced down by fence_compute: still gets its marker",
			svc:   novatest.Service{Host: "compute1", ForcedDown: true, Disabled: true},
			stdin: "action=off\nplug=compute1", stdout: "Success: Already OFF\n",
			reqs: []string{"GET /os-services?binary=nova-compute",
				`PUT /os-services/` + id1 + ` {"disabled_reason":"` + fenced + `; was disabled","status":"disabled"}`},
			reason: fenced + "; was disabled", attrd: "compute1 evacuate=yes"},
		{name: "disabled by an operator before it died: fenced all the same (fence_compute skips it)",
			svc:   novatest.Service{Host: "compute1", Disabled: true, DisabledReason: "BIOS update"},
			stdin: "action=off\nplug=compute1", stdout: "Success: Powered OFF\n",
			reason: fenced + "; was disabled: BIOS update", attrd: "compute1 evacuate=yes"},
		{name: "short cluster name, FQDN in Nova; the attribute goes to the cluster's name",
			svc:   novatest.Service{Host: "compute1.example.com", Alive: true},
			stdin: "action=off\nplug=compute1", stdout: "Success: Powered OFF\n", reason: fenced, attrd: "compute1 evacuate=yes"},
		{name: "domain option", svc: novatest.Service{Host: "compute1.example.com", Alive: true},
			stdin: "action=off\nplug=compute1\ndomain=example.com", stdout: "Success: Powered OFF\n", reason: fenced, attrd: "compute1 evacuate=yes"},
		{name: "compute_domain, the old name", svc: novatest.Service{Host: "compute1.example.com", Alive: true},
			stdin: "action=off\nplug=compute1.example.com\ncompute-domain=example.com", stdout: "Success: Powered OFF\n", reason: fenced,
			attrd: "compute1.example.com evacuate=yes"},
		{name: "unknown host", svc: novatest.Service{Host: "compute1"}, stdin: "action=off\nplug=compute9", code: 1,
			stderr: `no nova-compute service on "compute9"`},
		{name: "no plug", svc: novatest.Service{Host: "compute1"}, stdin: "action=off", code: 1,
			stderr: "You have to enter plug number or machine identification"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.svc)
			r := h.run(t, tc.stdin)
			if r.code != tc.code || r.stdout != tc.stdout || !strings.Contains(r.stderr, tc.stderr) {
				t.Fatalf("exit %d stdout %q stderr %q; want %d %q %q", r.code, r.stdout, r.stderr, tc.code, tc.stdout, tc.stderr)
			}
			if tc.reqs != nil {
				if got := h.srv.NovaRequests(); strings.Join(got, "\n") != strings.Join(tc.reqs, "\n") {
					t.Errorf("requests\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.reqs, "\n"))
				}
			}
			if tc.code == 0 {
				rec := h.srv.Service(tc.svc.Host)
				if !rec.ForcedDown || !rec.Disabled || rec.DisabledReason != tc.reason {
					t.Errorf("record %+v, want reason %q", rec, tc.reason)
				}
			}
			if got := strings.Join(h.attrd.set, ";"); got != tc.attrd {
				t.Errorf("attributes %q, want %q", got, tc.attrd)
			}
		})
	}
}

func TestAmbiguousHostIsRefused(t *testing.T) {
	h := newHarness(t, novatest.Service{Host: "compute1.a.org"}, novatest.Service{Host: "compute1.b.org"})
	r := h.run(t, "action=off\nplug=compute1")
	if r.code != 1 || !strings.Contains(r.stderr, "compute1.a.org, compute1.b.org") {
		t.Fatalf("%+v", r)
	}
	for _, host := range []string{"compute1.a.org", "compute1.b.org"} {
		if rec := h.srv.Service(host); rec.ForcedDown {
			t.Errorf("%s forced down", host)
		}
	}
	if r := h.run(t, "action=off\nplug=compute1\ndomain=b.org"); r.code != 0 || !h.srv.Service("compute1.b.org").ForcedDown {
		t.Errorf("with the domain: %+v", r)
	}
}

// The domain option never moves an FQDN into its domain, and two rules finding two
// hosts is an ambiguity: in both cases nothing is forced down.
func TestDomainNeverFencesAnotherHost(t *testing.T) {
	h := newHarness(t, novatest.Service{Host: "compute-1.example.com", Alive: true})
	r := h.run(t, "action=off\nplug=compute-1.other.com\ndomain=example.com")
	if r.code != 1 || !strings.Contains(r.stderr, `no nova-compute service on "compute-1.other.com"`) {
		t.Errorf("FQDN in another domain: %+v", r)
	}
	if h.srv.Service("compute-1.example.com").ForcedDown {
		t.Error("compute-1.example.com forced down for compute-1.other.com")
	}
	h = newHarness(t, novatest.Service{Host: "compute-1", Alive: true}, novatest.Service{Host: "compute-1.example.com", Alive: true})
	r = h.run(t, "action=off\nplug=compute-1\ndomain=example.com")
	if r.code != 1 || !strings.Contains(r.stderr, "compute-1, compute-1.example.com") {
		t.Errorf("exact name and domain rule disagree: %+v", r)
	}
	for _, host := range []string{"compute-1", "compute-1.example.com"} {
		if h.srv.Service(host).ForcedDown {
			t.Errorf("%s forced down", host)
		}
	}
}

func TestStatus(t *testing.T) {
	cases := []struct {
		name string
		svc  novatest.Service
		code int
		out  string
	}{
		{"up, enabled", novatest.Service{Host: "c", Alive: true}, 0, "Status: ON\n"},
		{"up, disabled by an operator", novatest.Service{Host: "c", Alive: true, Disabled: true, DisabledReason: "x"}, 0, "Status: ON\n"},
		{"down, enabled: crashed, not fenced yet", novatest.Service{Host: "c"}, 0, "Status: ON\n"},
		{"down, disabled: not fenced yet", novatest.Service{Host: "c", Disabled: true}, 0, "Status: ON\n"},
		{"forced down and disabled: fenced", novatest.Service{Host: "c", ForcedDown: true, Disabled: true, DisabledReason: "novaha:evacuating"}, 2, "Status: OFF\n"},
		{"forced down, enabled", novatest.Service{Host: "c", ForcedDown: true}, 2, "Status: OFF\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.svc)
			if r := h.run(t, "action=status\nplug=c"); r.code != tc.code || r.stdout != tc.out {
				t.Errorf("%+v", r)
			}
		})
	}
	h := newHarness(t, novatest.Service{Host: "c"})
	if r := h.run(t, "action=status\nplug=nosuch"); r.code != 1 || r.stdout != "" {
		t.Errorf("unknown host: %+v", r)
	}
}

func TestOn(t *testing.T) {
	evacuated := "novaha:evacuated moved=3 failed=0"
	cases := []struct {
		name   string
		svc    novatest.Service
		stdin  string
		attr   map[string]string
		code   int
		stdout string
		stderr string
		reqs   []string
		check  func(novatest.Service) bool
	}{
		{name: "evacuated and up: lift the force-down, then enable",
			svc: novatest.Service{Host: "compute1", ForcedDown: true, Disabled: true, Alive: true, DisabledReason: evacuated}, stdin: "action=on\nplug=compute1",
			stdout: "Success: Powered ON\n",
			reqs: []string{"GET /os-services?binary=nova-compute",
				`PUT /os-services/` + id1 + ` {"forced_down":false}`, `PUT /os-services/` + id1 + ` {"status":"enabled"}`,
				"GET /os-services?binary=nova-compute&host=compute1"},
			check: func(s novatest.Service) bool { return !s.ForcedDown && !s.Disabled && s.DisabledReason == "" }},
		{name: "enable is the fabric name of on",
			svc: novatest.Service{Host: "compute1", ForcedDown: true, Disabled: true, Alive: true, DisabledReason: evacuated}, stdin: "action=enable\nplug=compute1",
			stdout: "Success: Powered ON\n"},
		{name: "the operator's disable is restored",
			svc:    novatest.Service{Host: "compute1", ForcedDown: true, Disabled: true, Alive: true, DisabledReason: evacuated + "; was disabled: BIOS"},
			stdin:  "action=on\nplug=compute1",
			stdout: "Success: Powered ON\n", check: func(s novatest.Service) bool { return !s.ForcedDown && s.Disabled && s.DisabledReason == "BIOS" }},
		{name: "not fenced: already on", svc: novatest.Service{Host: "compute1", Alive: true}, stdin: "action=on\nplug=compute1",
			stdout: "Success: Already ON\n", reqs: []string{"GET /os-services?binary=nova-compute"}},
		{name: "returning and now up: enabled by a second on",
			svc: novatest.Service{Host: "compute1", Disabled: true, Alive: true, DisabledReason: evacuated}, stdin: "action=on\nplug=compute1",
			stdout: "Success: Already ON\n", check: func(s novatest.Service) bool { return !s.Disabled }},
		{name: "evacuation not finished: times out after power_timeout",
			svc:   novatest.Service{Host: "compute1", ForcedDown: true, Disabled: true, DisabledReason: "novaha:evacuating"},
			stdin: "action=on\nplug=compute1\npower_timeout=5", code: 1,
			stderr: "Failed: Timed out waiting to power ON: the evacuation of compute1 is not finished (evacuating)",
			check:  func(s novatest.Service) bool { return s.ForcedDown && s.Disabled }},
		{name: "nova-compute not restarted yet: times out, the host stays forced down",
			svc:   novatest.Service{Host: "compute1", ForcedDown: true, Disabled: true, DisabledReason: evacuated, EvacuationsDone: true},
			stdin: "action=on\nplug=compute1\npower_timeout=3", code: 1,
			stderr: "Nova keeps compute1 forced down until its nova-compute restarts",
			check:  func(s novatest.Service) bool { return s.ForcedDown }},
		{name: "fenced, the stock NovaEvacuate says evacuate=no",
			svc:   novatest.Service{Host: "compute1", ForcedDown: true, Disabled: true, Alive: true, DisabledReason: "novaha:fenced 2026-01-02T03:04:05Z evacuate=yes"},
			stdin: "action=on\nplug=compute1", attr: map[string]string{"compute1 evacuate": "no"},
			stdout: "Success: Powered ON\n", check: func(s novatest.Service) bool { return !s.ForcedDown && !s.Disabled }},
		{name: "forced down by fence_compute, stock NovaEvacuate still busy",
			svc:   novatest.Service{Host: "compute1", ForcedDown: true, Disabled: true},
			stdin: "action=on\nplug=compute1\npower_timeout=2", attr: map[string]string{"compute1 evacuate": "yes"}, code: 1,
			stderr: "evacuate=yes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.svc)
			h.attrd.values = tc.attr
			r := h.run(t, tc.stdin)
			if r.code != tc.code || r.stdout != tc.stdout || !strings.Contains(r.stderr, tc.stderr) {
				t.Fatalf("exit %d stdout %q stderr %q; want %d %q %q", r.code, r.stdout, r.stderr, tc.code, tc.stdout, tc.stderr)
			}
			if tc.reqs != nil {
				if got := h.srv.NovaRequests(); strings.Join(got, "\n") != strings.Join(tc.reqs, "\n") {
					t.Errorf("requests\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.reqs, "\n"))
				}
			}
			if rec := h.srv.Service("compute1"); tc.check != nil && !tc.check(rec) {
				t.Errorf("record %+v", rec)
			}
			if strings.Count(r.stderr, "\n") > 3 {
				t.Errorf("the wait is logged more than once:\n%s", r.stderr)
			}
		})
	}
}

// An evacuate=no left in attrd by an earlier stock NovaEvacuate cycle must never let on
// lift the force-down of a host that nothing evacuated.
func TestStaleEvacuateNoNeverUnfences(t *testing.T) {
	stale := map[string]string{"compute1 evacuate": "no"}
	on := "action=on\nplug=compute1\npower_timeout=3"

	// off overwrites the stale no before it writes the marker; on then waits.
	h := newHarness(t, novatest.Service{Host: "compute1"})
	h.attrd.values = stale
	if r := h.run(t, "action=off\nplug=compute1"); r.code != 0 {
		t.Fatalf("off: %+v", r)
	}
	if r := h.run(t, on); r.code != 1 || !strings.Contains(r.stderr, "evacuate=yes") || !h.srv.Service("compute1").ForcedDown {
		t.Errorf("on after off: %+v, record %+v", r, h.srv.Service("compute1"))
	}

	// off cannot set evacuate=yes: it fails before the marker, whatever Nova accepted.
	h = newHarness(t, novatest.Service{Host: "compute1"})
	h.attrd.values = map[string]string{"compute1 evacuate": "no"}
	h.attrd.err = errors.New("attrd is not answering")
	r := h.run(t, "action=off\nplug=compute1")
	if r.code != 1 || !strings.Contains(r.stderr, "could not set the node attribute evacuate=yes") {
		t.Errorf("off without evacuate=yes: %+v", r)
	}
	if rec := h.srv.Service("compute1"); strings.HasPrefix(rec.DisabledReason, nova.MarkerPrefix) {
		t.Errorf("marked as fenced although the stock controller was not told: %+v", rec)
	}

	// off outside Pacemaker tells no stock controller, and its marker says so: a no
	// read later under Pacemaker is stale.
	h = newHarness(t, novatest.Service{Host: "compute1"})
	h.attrd.outside = true
	if r := h.run(t, "action=off\nplug=compute1"); r.code != 0 || len(h.attrd.set) != 0 {
		t.Fatalf("off outside Pacemaker: %+v, attributes %v", r, h.attrd.set)
	}
	h.attrd.outside = false
	h.attrd.values = map[string]string{"compute1 evacuate": "no"}
	if r := h.run(t, on); r.code != 1 || !strings.Contains(r.stderr, "evacuate=no is ignored") || !h.srv.Service("compute1").ForcedDown {
		t.Errorf("on with a stale evacuate=no: %+v, record %+v", r, h.srv.Service("compute1"))
	}
}

// A host whose force-down was lifted before it was recorded as evacuated (by an on
// interrupted there, or by hand): a re-run of on completes its return when the stock
// controller is known to be done, instead of saying "Already ON".
func TestOnCompletesAHalfDoneReturn(t *testing.T) {
	h := newHarness(t, novatest.Service{Host: "compute1", Disabled: true, Alive: true, DisabledReason: "novaha:fenced 2026-01-02T03:04:05Z evacuate=yes"})
	h.attrd.values = map[string]string{"compute1 evacuate": "no"}
	r := h.run(t, "action=on\nplug=compute1")
	if rec := h.srv.Service("compute1"); r.code != 0 || rec.ForcedDown || rec.Disabled || rec.DisabledReason != "" {
		t.Errorf("on: %+v, record %+v", r, rec)
	}
	// Not known to be done: the host stays disabled with its marker.
	h = newHarness(t, novatest.Service{Host: "compute1", Disabled: true, Alive: true, DisabledReason: "novaha:fenced 2026-01-02T03:04:05Z evacuate=yes"})
	h.attrd.values = map[string]string{"compute1 evacuate": "yes"}
	r = h.run(t, "action=on\nplug=compute1")
	if rec := h.srv.Service("compute1"); r.code != 0 || !rec.Disabled || !strings.HasPrefix(rec.DisabledReason, "novaha:fenced") ||
		!strings.Contains(r.stderr, "the evacuation is not finished") {
		t.Errorf("on while the evacuation runs: %+v, record %+v", r, rec)
	}
}

// Not knowing what the stock controller says makes on wait, never unfence.
func TestOnWaitsWhenAttrdCannotBeRead(t *testing.T) {
	h := newHarness(t, novatest.Service{Host: "compute1", ForcedDown: true, Disabled: true, Alive: true})
	h.attrd.qerr = errors.New("attrd_updater: timed out")
	r := h.run(t, "action=on\nplug=compute1\npower_timeout=3")
	if r.code != 1 || !strings.Contains(r.stderr, "Timed out waiting to power ON") || !strings.Contains(r.stderr, "attrd_updater: timed out") {
		t.Errorf("%+v", r)
	}
	if h.clock.sleeps == 0 {
		t.Error("on did not retry")
	}
	if !h.srv.Service("compute1").ForcedDown {
		t.Error("unfenced without knowing what the stock controller says")
	}
}

func TestOnWaitsForTheEvacuation(t *testing.T) {
	h := newHarness(t, novatest.Service{Host: "compute1", ForcedDown: true, Disabled: true, Alive: true, DisabledReason: "novaha:evacuating; was disabled: BIOS"})
	// The evacuation controller finishes after the agent has waited three times.
	h.clock.onSleep = func(n int) {
		if n == 3 {
			h.srv.Update("compute1", func(s *novatest.Service) { s.DisabledReason = "novaha:evacuated moved=2 failed=0; was disabled: BIOS" })
		}
	}
	r := h.run(t, "action=on\nplug=compute1\npower_timeout=60\nstonith_status_sleep=2")
	if r.code != 0 || r.stdout != "Success: Powered ON\n" {
		t.Fatalf("%+v", r)
	}
	if h.clock.sleeps != 3 {
		t.Errorf("waited %d times, want 3", h.clock.sleeps)
	}
	if rec := h.srv.Service("compute1"); rec.ForcedDown || !rec.Disabled || rec.DisabledReason != "BIOS" {
		t.Errorf("record %+v", rec)
	}
}

func TestOnUnderPacemakerWaitsBeyondPowerTimeout(t *testing.T) {
	h := newHarness(t, novatest.Service{Host: "compute1", ForcedDown: true, Disabled: true, Alive: true, DisabledReason: "novaha:fenced 2026-01-02T03:04:05Z"})
	h.env["PCMK_service"] = "pacemaker-fenced"
	h.clock.onSleep = func(n int) {
		if n == 30 {
			h.srv.Update("compute1", func(s *novatest.Service) { s.DisabledReason = "novaha:evacuated moved=2 failed=0" })
		}
	}
	if r := h.run(t, "action=on\nplug=compute1\npower_timeout=5"); r.code != 0 {
		t.Fatalf("%+v", r)
	}
}

func TestMonitorAndFailures(t *testing.T) {
	cases := []struct {
		name   string
		setup  func(*harness)
		stdin  string
		stderr string
	}{
		{name: "keystone down", setup: func(h *harness) { h.srv.Close() }, stdin: "action=monitor",
			stderr: "Failed: Unable to connect/login to fencing device: Keystone is unreachable while authenticating"},
		{name: "wrong password", stdin: "action=monitor\npassword=wrong-pw-123",
			stderr: "Keystone refused the credentials (HTTP 401) while authenticating"},
		{name: "nova down", setup: func(h *harness) {
			h.srv.Fail(novatest.Fault{Match: "GET /os-services", Status: 503, Count: 100})
		}, stdin: "action=monitor", stderr: "Failed: the fencing device is not available: Nova answered HTTP 503 Service Unavailable while listing compute services"},
		{name: "nova down during off", setup: func(h *harness) {
			h.srv.Fail(novatest.Fault{Match: "PUT /os-services", Status: 500, Count: 100})
		}, stdin: "action=off\nplug=compute1", stderr: "Failed: Unable to power OFF: Nova answered HTTP 500 Internal Server Error while forcing down compute1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, novatest.Service{Host: "compute1", Alive: true})
			if tc.setup != nil {
				tc.setup(h)
			}
			r := h.run(t, tc.stdin)
			if r.code != 1 || !strings.Contains(r.stderr, tc.stderr) {
				t.Fatalf("exit %d, stderr %q; want 1 and %q", r.code, r.stderr, tc.stderr)
			}
			if n := strings.Count(r.stderr, " ERROR: "); n != 1 {
				t.Errorf("%d error lines on stderr, want one:\n%s", n, r.stderr)
			}
			if strings.Contains(r.stderr, novatest.Password) || strings.Contains(r.stderr, "wrong-pw-123") || strings.Contains(r.stderr, "panic") {
				t.Errorf("stderr shows a secret or a panic: %s", r.stderr)
			}
		})
	}
	h := newHarness(t, novatest.Service{Host: "compute1", Alive: true})
	if r := h.run(t, "action=monitor"); r.code != 0 || r.stdout != "" || r.stderr != "" {
		t.Errorf("monitor: %+v", r)
	}
}

func TestTransientNovaErrorsAreRetried(t *testing.T) {
	h := newHarness(t, novatest.Service{Host: "compute1", Alive: true})
	h.srv.Fail(novatest.Fault{Match: "PUT /os-services", Status: 503, Count: 2})
	h.srv.Fail(novatest.Fault{Match: "POST /v3/auth/tokens", Status: 502, Count: 1})
	if r := h.run(t, "action=off\nplug=compute1"); r.code != 0 || !h.srv.Service("compute1").ForcedDown {
		t.Fatalf("%+v", r)
	}
}

func TestList(t *testing.T) {
	h := newHarness(t, novatest.Service{Host: "compute1.example.com", Alive: true}, novatest.Service{Host: "compute2", ForcedDown: true},
		novatest.Service{Host: "db1.a.org"}, novatest.Service{Host: "db1.b.org"}, novatest.Service{Host: "ctl1", Binary: "nova-scheduler"})
	r := h.run(t, "action=list")
	if r.code != 0 || r.stdout != "compute1,\ncompute1.example.com,\ncompute2,\ndb1.a.org,\ndb1.b.org,\n" {
		t.Errorf("list: %+v", r)
	}
	r = h.run(t, "action=list-status")
	if r.code != 0 || !strings.Contains(r.stdout, "compute2,,OFF\n") || !strings.Contains(r.stdout, "compute1,,ON\n") {
		t.Errorf("list-status: %+v", r)
	}
}

func TestFenceComputeParameters(t *testing.T) {
	h := newHarness(t, novatest.Service{Host: "compute1", Alive: true})
	// A device definition written for fence_compute, as pcs passes it on stdin.
	stdin := strings.Join([]string{"action=status", "port=compute1", "project-domain=Default", "user-domain=Default",
		"endpoint_type=publicURL", "region_name=RegionOne", "insecure=0", "record_only=False", "instance_filtering=True",
		"no_shared_storage=False", "compute-domain=", "nodename=compute1", "plug_separator=,"}, "\n")
	r := h.run(t, stdin)
	if r.code != 0 || r.stdout != "Status: ON\n" {
		t.Fatalf("%+v", r)
	}
	c := h.cfg
	if c.Insecure || c.Interface != "publicURL" || c.RegionName != "RegionOne" || c.UserDomainName != "Default" || c.ProjectDomainName != "Default" ||
		c.ProjectName != "admin" || c.Username != "admin" {
		t.Errorf("configuration %+v", c)
	}
	if strings.Contains(r.stderr, "Ignoring unknown option") {
		t.Errorf("a fence_compute parameter is unknown: %s", r.stderr)
	}
	h.run(t, "action=status\nport=compute1\ninsecure=1")
	if !h.cfg.Insecure {
		t.Error("insecure=1 not honoured")
	}
}

func TestCloudDefaultsDoNotOverrideCloudsYAML(t *testing.T) {
	h := newHarness(t, novatest.Service{Host: "compute1"})
	var cfg nova.Config
	e := env{dial: func(_ context.Context, c nova.Config) (novaClient, error) { cfg = c; return nil, fmt.Errorf("stop") },
		attrd: func(*slog.Logger) attrd { return h.attrd }, now: time.Now, getenv: func(string) string { return "" }}
	var out, errb bytes.Buffer
	agent(e).Run(context.Background(), fence.Invocation{Stdin: strings.NewReader("action=monitor\ncloud=prod\nclouds_yaml=/dev/null"),
		Stdout: &out, Stderr: &errb})
	if cfg.Cloud != "prod" || cfg.Interface != "" || cfg.UserDomainName != "" || cfg.ProjectDomainName != "" {
		t.Errorf("configuration %+v", cfg)
	}
}

func TestValidateAll(t *testing.T) {
	cases := []struct {
		stdin string
		code  int
		log   string
	}{
		{"auth_url=http://k:5000/v3\nlogin=admin\npasswd=x\nport=node1", 0, ""},
		{"auth_url=http://k:5000/v3\nlogin=admin\npassword_script=/bin/true", 0, ""},
		{"cloud=prod", 0, ""},
		{"application_credential_id=abc\napplication_credential_secret=s\nauth_url=https://k/v3", 0, ""},
		{"login=admin\npasswd=x", 1, "no Keystone URL"},
		{"auth_url=http://k:5000/v3\nlogin=admin", 1, "no password"},
		{"auth_url=k:5000\nlogin=admin\npasswd=x", 1, "not an http(s) URL"},
		{"auth_url=http://k/v3\nlogin=admin\npasswd=x\nendpoint_type=privateURL", 1, "endpoint type"},
		{"auth_url=http://k/v3\nlogin=admin\npasswd=x\ninsecure=1\ncacert=/etc/hostname", 1, "contradict"},
	}
	for _, tc := range cases {
		var out, errb bytes.Buffer
		// No dial: validate-all must need no network.
		e := env{attrd: func(*slog.Logger) attrd { return &fakeAttrd{} }, now: time.Now, getenv: func(string) string { return "" }}
		code := agent(e).Run(context.Background(), fence.Invocation{Stdin: strings.NewReader("action=validate-all\n" + tc.stdin), Stdout: &out, Stderr: &errb})
		if code != tc.code || !strings.Contains(errb.String(), tc.log) {
			t.Errorf("%q: exit %d, stderr %q", tc.stdin, code, errb.String())
		}
		if strings.Contains(errb.String(), "passwd=x") {
			t.Errorf("secret in the log: %s", errb.String())
		}
	}
}

func TestOffAndOnBeforeMicroversion253(t *testing.T) {
	h := newHarness(t, novatest.Service{Host: "compute1", Alive: true})
	h.srv.MaxMicroversion = "2.40"
	if r := h.run(t, "action=off\nplug=compute1"); r.code != 0 || r.stdout != "Success: Powered OFF\n" {
		t.Fatalf("off: %+v", r)
	}
	want := []string{
		"GET /os-services?binary=nova-compute",
		`PUT /os-services/force-down {"binary":"nova-compute","forced_down":true,"host":"compute1"}`,
		"GET /os-services?binary=nova-compute&host=compute1",
		`PUT /os-services/disable-log-reason {"binary":"nova-compute","disabled_reason":"novaha:fenced 2026-01-02T03:04:05Z evacuate=yes","host":"compute1"}`,
		"GET /os-services?binary=nova-compute&host=compute1",
		"GET /os-services?binary=nova-compute&host=compute1",
	}
	if got := h.srv.NovaRequests(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("requests\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	h.srv.Update("compute1", func(s *novatest.Service) { s.DisabledReason = "novaha:evacuated moved=0 failed=0" })
	if r := h.run(t, "action=on\nplug=compute1"); r.code != 0 || r.stdout != "Success: Powered ON\n" {
		t.Fatalf("on: %+v", r)
	}
	if rec := h.srv.Service("compute1"); rec.ForcedDown || rec.Disabled {
		t.Errorf("record %+v", rec)
	}
}

func TestTokenCacheAcrossRuns(t *testing.T) {
	h := newHarness(t, novatest.Service{Host: "compute1", Alive: true})
	dir := filepath.Join(t.TempDir(), "tokens")
	h.tokenDir = dir
	logins := func() int {
		n := 0
		for _, r := range h.srv.Requests() {
			if r.Path == "/v3/auth/tokens" {
				n++
			}
		}
		return n
	}
	for i, tc := range []struct {
		stdin  string
		logins int
	}{
		{"action=status\nplug=compute1", 1},
		{"action=off\nplug=compute1", 0},
		{"action=monitor", 1}, // monitor checks Keystone
		{"action=status\nplug=compute1\ntoken_cache=0", 1},
	} {
		if r := h.run(t, tc.stdin); r.code != 0 && r.code != 2 {
			t.Fatalf("run %d: %+v", i, r)
		}
		if n := logins(); n != tc.logins {
			t.Errorf("run %d (%q): %d logins, want %d", i, tc.stdin, n, tc.logins)
		}
	}
}

// A clouds.yaml entry without auth made gophercloud panic: a stack trace and exit 2,
// which Pacemaker reads as "OFF" for status. It is one error line and exit 1.
func TestCloudsYAMLWithoutAuthIsAnError(t *testing.T) {
	h := newHarness(t, novatest.Service{Host: "compute1", Alive: true})
	path := filepath.Join(t.TempDir(), "clouds.yaml")
	if err := os.WriteFile(path, []byte("clouds:\n  prod:\n    region_name: RegionOne\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := h.run(t, "action=status\nplug=compute1\ncloud=prod\nclouds_yaml="+path)
	if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, `cloud "prod" has no auth section`) ||
		strings.Contains(r.stderr, "panic") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("%+v", r)
	}
}
