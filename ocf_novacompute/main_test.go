package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/novaha/novaha/lib/daemon"
	"github.com/novaha/novaha/lib/nova"
	"github.com/novaha/novaha/lib/nova/novatest"
	"github.com/novaha/novaha/lib/ocf"
	"github.com/novaha/novaha/lib/systemd"
	"github.com/novaha/novaha/lib/systemd/systemdtest"
)

const host = "compute-1.example.com"

// world is one test's compute node: a fake Nova, a fake nova-compute program run in
// process mode, and a clock whose every sleep lets the test change the world.
type world struct {
	t       *testing.T
	nova    *novatest.Server
	dir     string
	program string
	// waiter stands in for this program as the background start: it records its
	// standard input and environment, and stays.
	waiter string
	clock  *hookClock
	env    []string
	e      env
}

// hookClock does not wait: each Sleep runs onSleep and returns, until block is set,
// then it waits for the context to end (to test start's timeout).
type hookClock struct {
	mu      sync.Mutex
	sleeps  []time.Duration
	onSleep func(n int)
	block   bool
}

func (c *hookClock) Now() time.Time { return time.Now() }

func (c *hookClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	c.sleeps = append(c.sleeps, d)
	n, f, block := len(c.sleeps), c.onSleep, c.block
	c.mu.Unlock()
	if f != nil {
		f(n)
	}
	if block {
		<-ctx.Done()
	}
	return ctx.Err()
}

func newWorld(t *testing.T, svc novatest.Service) *world {
	t.Helper()
	w := &world{t: t, dir: t.TempDir(), clock: &hookClock{}}
	svc.Host = host
	w.nova = novatest.New(t, svc)
	w.program = filepath.Join(w.dir, "nova-compute")
	// A stand-in that stays (an exec would change its command line).
	if err := os.WriteFile(w.program, []byte("#!/bin/sh\necho fake nova-compute \"$@\"\nwhile :; do sleep 0.05; done\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	w.waiter = filepath.Join(w.dir, "novacompute-bg")
	if err := os.WriteFile(w.waiter, []byte("#!/bin/sh\ncat > \"$0.input\"\nenv > \"$0.env\"\nwhile :; do sleep 0.05; done\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(w.dir, "nova.conf")
	if err := os.WriteFile(conf, []byte("[DEFAULT]\n# host = wrong\nhost = "+host+"\n[other]\nhost = wrong\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	w.env = []string{
		"OCF_ROOT=/usr/lib/ocf", "OCF_RESOURCE_INSTANCE=nova-compute:0", "HA_RSCTMP=" + filepath.Join(w.dir, "run"),
		"OCF_RESKEY_auth_url=" + w.nova.AuthURL(), "OCF_RESKEY_username=" + novatest.Username,
		"OCF_RESKEY_password_script=echo " + novatest.Password, "OCF_RESKEY_tenant_name=admin",
		"OCF_RESKEY_token_cache=0",
		"OCF_RESKEY_service_manager=process", "OCF_RESKEY_command=" + w.program,
		"OCF_RESKEY_nova_conf=" + conf, "OCF_RESKEY_log_file=" + filepath.Join(w.dir, "log", "nova-compute.log"),
	}
	w.e = defaultEnv()
	w.e.clock = w.clock
	w.e.euid = 1000
	w.e.getenv = func(string) string { return "" }
	w.e.exe = func() (string, error) { return w.waiter, nil }
	t.Cleanup(func() { w.kill() })
	return w
}

// spec is the daemon the agent runs, to look at it from outside.
func (w *world) spec() daemon.Spec {
	return daemon.Spec{Command: w.program, Args: []string{"--config-file", filepath.Join(w.dir, "nova.conf")},
		PidFile: filepath.Join(w.dir, "run", "NovaCompute-nova-compute:0.pid")}
}

func (w *world) running() bool {
	pid, _, _ := daemon.Running(w.spec())
	return pid != 0
}

func (w *world) kill() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = daemon.Stop(ctx, w.spec(), time.Second)
	_ = daemon.Stop(ctx, w.waiterSpec(), time.Second)
}

// waiterSpec is the background start as the agent launches it.
func (w *world) waiterSpec() daemon.Spec {
	return daemon.Spec{Command: w.waiter, Args: []string{cmdBackground, "nova-compute:0"},
		PidFile: filepath.Join(w.dir, "run", "NovaCompute-nova-compute:0.start.pid")}
}

// handedOver runs start, which must hand the wait to the background start, and
// returns what it handed over: the stand-in's standard input, and its environment.
// The stand-in is then ended, for the test to run the real thing (runBackground).
func (w *world) handedOver(extra ...string) (input, environ string) {
	w.t.Helper()
	w.want("start", ocf.Success, extra...)
	if pid, _, _ := daemon.Running(w.waiterSpec()); pid == 0 {
		w.t.Fatal("start launched no background start")
	}
	input, environ = w.waiterInput()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := daemon.Stop(ctx, w.waiterSpec(), time.Second); err != nil {
		w.t.Fatal(err)
	}
	return input, environ
}

// waiterInput waits until the stand-in has recorded its standard input and environment.
func (w *world) waiterInput() (input, environ string) {
	w.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		in, _ := os.ReadFile(w.waiter + ".input")
		env, _ := os.ReadFile(w.waiter + ".env")
		if len(in) > 0 && len(env) > 0 {
			return string(in), string(env)
		}
		if time.Now().After(deadline) {
			w.t.Fatal("the background start got no input")
		}
	}
}

// background runs the background start in this process, with the input start handed
// over, and returns its exit code and stderr.
func (w *world) background(input string) (ocf.Code, string) {
	var stderr strings.Builder
	code := runBackground([]string{w.waiter, cmdBackground, "nova-compute:0"}, w.e, strings.NewReader(input), &stderr)
	if strings.Contains(stderr.String(), novatest.Password) {
		w.t.Errorf("the background start logged the password:\n%s", stderr.String())
	}
	return ocf.Code(code), stderr.String()
}

// behave makes the fake Nova follow the fake nova-compute as the real one would: while
// it runs, its heartbeat is recent and it has cleaned up its evacuated instances.
func (w *world) behave() {
	if w.running() {
		w.nova.Update(host, func(s *novatest.Service) { s.Alive, s.EvacuationsDone = true, false })
	}
}

// run runs the agent with action and extra environment; it returns the exit code and
// stderr.
func (w *world) run(action string, extra ...string) (ocf.Code, string) {
	w.t.Helper()
	var stderr strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code := agent(w.e).Run(ctx, []string{"NovaCompute", action}, append(slices.Clone(extra), w.env...), io.Discard, &stderr)
	if strings.Contains(stderr.String(), novatest.Password) {
		w.t.Errorf("%s logged the password:\n%s", action, stderr.String())
	}
	return code, stderr.String()
}

func (w *world) want(action string, want ocf.Code, extra ...string) string {
	w.t.Helper()
	code, out := w.run(action, extra...)
	if code != want {
		w.t.Fatalf("%s = %v, want %v\n%s", action, code, want, out)
	}
	return out
}

func TestAgentDeclaration(t *testing.T) {
	if err := agent(defaultEnv()).Check(); err != nil {
		t.Fatal(err)
	}
}

func TestNeverFencedHostStartsAtOnce(t *testing.T) {
	w := newWorld(t, novatest.Service{Alive: true})
	w.want("monitor", ocf.NotRunning, "OCF_RESKEY_CRM_meta_interval=0")
	out := w.want("start", ocf.Success)
	if !strings.Contains(out, host) || !strings.Contains(out, "[DEFAULT] host") {
		t.Errorf("start does not log the host name and where it came from:\n%s", out)
	}
	if !w.running() {
		t.Fatal("nova-compute does not run after start")
	}
	if len(w.clock.sleeps) != 0 {
		t.Errorf("start of a healthy host waited: %v", w.clock.sleeps)
	}
	w.want("start", ocf.Success) // idempotent
	w.nova.Requests()
	w.want("monitor", ocf.Success, "OCF_RESKEY_CRM_meta_interval=10000")
	if r := w.nova.Requests(); len(r) != 0 {
		t.Errorf("a shallow monitor called Nova: %v", r)
	}
	w.want("monitor", ocf.Success, "OCF_RESKEY_CRM_meta_interval=60000", "OCF_CHECK_LEVEL=10")
	if r := w.nova.NovaRequests(); len(r) == 0 {
		t.Error("a deep monitor did not ask Nova")
	}
	// Deep: Nova says down while the process runs.
	w.nova.Update(host, func(s *novatest.Service) { s.Alive = false })
	out = w.want("monitor", ocf.ErrGeneric, "OCF_RESKEY_CRM_meta_interval=60000", "OCF_CHECK_LEVEL=10")
	if !strings.Contains(out, "ocf-exit-reason:nova-compute runs but Nova reports "+host+" down") {
		t.Errorf("deep monitor reason:\n%s", out)
	}
	// nova-compute's own output goes to its log file (waited for: the shell may not
	// have run its first line yet).
	logged := false
	for deadline := time.Now().Add(60 * time.Second); !logged && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		log, _ := os.ReadFile(filepath.Join(w.dir, "log", "nova-compute.log"))
		logged = strings.Contains(string(log), "fake nova-compute --config-file "+filepath.Join(w.dir, "nova.conf"))
	}
	if !logged {
		t.Error("nova-compute's output is not in its log file")
	}
	before := w.nova.Service(host)
	w.nova.Requests()
	w.want("stop", ocf.Success)
	if w.running() {
		t.Fatal("nova-compute runs after stop")
	}
	if r := w.nova.Requests(); len(r) != 0 {
		t.Errorf("stop called Nova or Keystone: %v", r)
	}
	if after := w.nova.Service(host); after != before {
		t.Errorf("stop changed Nova's record: %+v -> %+v", before, after)
	}
	w.want("monitor", ocf.NotRunning, "OCF_RESKEY_CRM_meta_interval=10000")
	w.want("stop", ocf.Success)
}

// Nova counts a service up for a while after its last heartbeat: a host whose
// nova-compute has just been stopped reads up. start waits for a heartbeat of the new one.
func TestStaleUpIsNotEnough(t *testing.T) {
	w := newWorld(t, novatest.Service{Alive: true, StaleHeartbeat: true})
	w.clock.onSleep = func(n int) {
		if n == 3 {
			w.nova.Update(host, func(s *novatest.Service) { s.StaleHeartbeat = false })
		}
	}
	out := w.want("start", ocf.Success)
	if len(w.clock.sleeps) < 3 || !strings.Contains(out, "waiting: a heartbeat of the new nova-compute") {
		t.Errorf("start took the old heartbeat for the new nova-compute (sleeps %v):\n%s", w.clock.sleeps, out)
	}
}

// The real order (measured on Nova Zed): wait for the evacuation, start nova-compute,
// lift the force-down once its restart has cleaned up, then enable once it is up.
func TestFencedHostWaitsForEvacuationThenReturns(t *testing.T) {
	fenced := nova.Marker{Phase: nova.Fenced, At: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}.String()
	w := newWorld(t, novatest.Service{Disabled: true, ForcedDown: true, DisabledReason: fenced, EvacuationsDone: true})
	var startedWhileFenced, liftedBeforeStart bool
	w.clock.onSleep = func(n int) {
		s := w.nova.Service(host)
		if w.running() && s.DisabledReason == fenced {
			startedWhileFenced = true
		}
		if !s.ForcedDown && !w.running() {
			liftedBeforeStart = true
		}
		switch n {
		case 2:
			w.nova.Update(host, func(s *novatest.Service) { s.DisabledReason = "novaha:evacuating" })
		case 4:
			w.nova.Update(host, func(s *novatest.Service) { s.DisabledReason = "novaha:evacuated moved=3 failed=0" })
		case 8:
			w.behave() // the restarted nova-compute cleans up and reports up
		}
	}
	input, _ := w.handedOver("OCF_RESKEY_evacuation_delay=30")
	if len(w.clock.sleeps) != 0 || w.running() {
		t.Fatalf("start waited in front (sleeps %v) or started nova-compute", w.clock.sleeps)
	}
	code, out := w.background(input)
	if code != ocf.Success {
		t.Fatalf("background start = %v\n%s", code, out)
	}
	if startedWhileFenced {
		t.Error("nova-compute was started before the evacuation finished")
	}
	if liftedBeforeStart {
		t.Error("the force-down was lifted before nova-compute started")
	}
	if !slices.Contains(w.clock.sleeps, 30*time.Second) {
		t.Errorf("no evacuation_delay in the sleeps %v", w.clock.sleeps)
	}
	s := w.nova.Service(host)
	if s.ForcedDown || s.Disabled || s.DisabledReason != "" {
		t.Errorf("after start: %+v, want enabled and not forced down", s)
	}
	for _, msg := range []string{"waiting: the evacuation of " + host, "waiting: Nova to lift the force-down"} {
		if !strings.Contains(out, msg) {
			t.Errorf("start does not log %q:\n%s", msg, out)
		}
	}
}

func TestOperatorDisableIsKept(t *testing.T) {
	m := nova.Marker{Phase: nova.Evacuated, OperatorDisabled: true, OperatorReason: "replacing DIMM B2"}.String()
	w := newWorld(t, novatest.Service{Disabled: true, ForcedDown: true, DisabledReason: m})
	w.clock.onSleep = func(int) { w.behave() }
	w.want("start", ocf.Success)
	s := w.nova.Service(host)
	if s.ForcedDown || !s.Disabled || s.DisabledReason != "replacing DIMM B2" {
		t.Errorf("after start: %+v, want the operator's disable back", s)
	}
}

// fence_nova's on may leave the host returning: not forced down, still disabled with
// its marker until the service is up. start finishes the job.
func TestReturningHostIsEnabledOnceUp(t *testing.T) {
	w := newWorld(t, novatest.Service{Disabled: true, DisabledReason: "novaha:evacuated moved=1 failed=0"})
	w.clock.onSleep = func(n int) {
		if n == 3 {
			w.behave()
		}
	}
	w.want("start", ocf.Success)
	if s := w.nova.Service(host); s.Disabled || s.DisabledReason != "" {
		t.Errorf("after start: %+v, want enabled", s)
	}
	if len(w.clock.sleeps) < 3 {
		t.Errorf("start enabled the host before it reported up (sleeps %v)", w.clock.sleeps)
	}
}

func TestStartTimesOutWithAReason(t *testing.T) {
	w := newWorld(t, novatest.Service{Disabled: true, ForcedDown: true, DisabledReason: "novaha:evacuating"})
	w.clock.onSleep = func(n int) {
		if n == 2 {
			w.clock.mu.Lock()
			w.clock.block = true
			w.clock.mu.Unlock()
		}
	}
	// The background start, run in this process with a short timeout.
	w.e.background = true
	out := w.want("start", ocf.ErrGeneric, "OCF_RESKEY_CRM_meta_timeout=3000")
	if !strings.Contains(out, "ocf-exit-reason:start timed out after 3s waiting for the evacuation of "+host) {
		t.Errorf("no clear exit reason:\n%s", out)
	}
	if w.running() {
		t.Error("nova-compute was started on a host still evacuating")
	}
}

func TestNovaComputeThatDiesFailsStart(t *testing.T) {
	w := newWorld(t, novatest.Service{})
	if err := os.WriteFile(w.program, []byte("#!/bin/sh\necho cannot start >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	w.clock.onSleep = func(int) { time.Sleep(100 * time.Millisecond) }
	out := w.want("start", ocf.ErrGeneric)
	if !strings.Contains(out, "nova-compute does not run after its start") || !strings.Contains(out, "log file") {
		t.Errorf("reason:\n%s", out)
	}
}

// A host Nova does not know yet: its first nova-compute creates the record.
func TestNewHostStartsAndRegisters(t *testing.T) {
	w := newWorld(t, novatest.Service{})
	w.nova.Update(host, func(s *novatest.Service) { s.Host = "elsewhere" })
	w.clock.onSleep = func(n int) {
		if n == 2 {
			w.nova.Update("elsewhere", func(s *novatest.Service) { s.Host, s.Alive = host, true })
		}
	}
	out := w.want("start", ocf.Success)
	if !strings.Contains(out, "register with Nova") {
		t.Errorf("start did not wait for the registration:\n%s", out)
	}
}

func TestValidate(t *testing.T) {
	w := newWorld(t, novatest.Service{})
	w.want("validate-all", ocf.Success)
	w.want("validate-all", ocf.ErrConfigured, "OCF_RESKEY_service_manager=upstart")
	w.want("validate-all", ocf.NotInstalled, "OCF_RESKEY_command=/nonexistent/nova-compute")
	w.want("validate-all", ocf.ErrConfigured, "OCF_RESKEY_args=--config-file 'x")
	// A probe with a program that is not installed here: 5, not an error.
	w.want("monitor", ocf.NotInstalled, "OCF_RESKEY_command=/nonexistent/nova-compute", "OCF_RESKEY_CRM_meta_interval=0")
}

func TestStalePidFileIsNotRunning(t *testing.T) {
	w := newWorld(t, novatest.Service{Alive: true})
	pf := w.spec().PidFile
	if err := os.MkdirAll(filepath.Dir(pf), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pf, []byte(fmt.Sprint(os.Getpid())), 0o644); err != nil {
		t.Fatal(err)
	}
	w.want("monitor", ocf.NotRunning, "OCF_RESKEY_CRM_meta_interval=10000")
	w.want("stop", ocf.Success) // and this test process is still alive to say so
	w.want("start", ocf.Success)
	if !w.running() {
		t.Error("start did not replace the stale pid file")
	}
}

func TestSystemdMode(t *testing.T) {
	fake := systemdtest.Start(t)
	w := newWorld(t, novatest.Service{Alive: true})
	w.e.dialSystemd = func(ctx context.Context) (unitManager, error) { return systemd.DialAddress(ctx, fake.Address) }
	w.e.osRelease = filepath.Join(w.dir, "os-release")
	if err := os.WriteFile(w.e.osRelease, []byte("ID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sd := []string{"OCF_RESKEY_service_manager=systemd"}
	// No unit: a probe says not installed.
	w.want("monitor", ocf.NotInstalled, append(sd, "OCF_RESKEY_CRM_meta_interval=0")...)
	fake.AddUnit(unitRHEL, "inactive")
	w.want("monitor", ocf.NotRunning, append(sd, "OCF_RESKEY_CRM_meta_interval=0")...)
	w.want("start", ocf.Success, sd...)
	if fake.Active(unitRHEL) != "active" {
		t.Fatalf("unit %s is %s after start", unitRHEL, fake.Active(unitRHEL))
	}
	w.want("monitor", ocf.Success, append(sd, "OCF_RESKEY_CRM_meta_interval=10000")...)
	fake.SetActive(unitRHEL, "failed")
	w.want("monitor", ocf.ErrGeneric, append(sd, "OCF_RESKEY_CRM_meta_interval=10000")...)
	// systemd keeps a failed unit "failed" after a stop: that is stopped.
	w.want("stop", ocf.Success, sd...)
	fake.SetActive(unitRHEL, "inactive")
	w.want("monitor", ocf.NotRunning, append(sd, "OCF_RESKEY_CRM_meta_interval=10000")...)
	// A start job that fails is a failed start.
	fake.SetResult(unitRHEL, "failed", false)
	out := w.want("start", ocf.ErrGeneric, sd...)
	if !strings.Contains(out, `job result "failed"`) {
		t.Errorf("reason:\n%s", out)
	}
	want := []string{"StartUnit " + unitRHEL + " replace", "StopUnit " + unitRHEL + " replace", "StartUnit " + unitRHEL + " replace"}
	// No systemd on the machine: stop succeeds (nothing can run), a probe says not
	// installed; with systemd running but not answering, stop fails (fencing decides).
	down := func(context.Context) (unitManager, error) { return nil, errors.New("no bus") }
	w.e.dialSystemd = down
	w.e.systemdBooted = func() bool { return false }
	w.want("stop", ocf.Success, sd...)
	w.want("monitor", ocf.NotInstalled, append(sd, "OCF_RESKEY_CRM_meta_interval=0")...)
	w.e.systemdBooted = func() bool { return true }
	w.want("stop", ocf.ErrGeneric, sd...)
	// A bus that does not answer is no proof that nothing runs, nor that nothing can:
	// a probe says not running (5 would ban the clone from the node), a monitor fails.
	w.want("monitor", ocf.NotRunning, append(sd, "OCF_RESKEY_CRM_meta_interval=0")...)
	w.want("monitor", ocf.ErrGeneric, append(sd, "OCF_RESKEY_CRM_meta_interval=10000")...)
	w.e.dialSystemd = func(ctx context.Context) (unitManager, error) { return systemd.DialAddress(ctx, fake.Address) }
	if got := fake.Calls(); !slices.Equal(got, want) {
		t.Errorf("systemd calls %q, want %q", got, want)
	}
	// The unit parameter wins over the distribution's default.
	fake.AddUnit("custom.service", "active")
	w.want("monitor", ocf.Success, append(sd, "OCF_RESKEY_unit=custom.service", "OCF_RESKEY_CRM_meta_interval=10000")...)
}

func TestSplitArgs(t *testing.T) {
	for in, want := range map[string][]string{
		"":                               nil,
		"--config-file /etc/nova/a.conf": {"--config-file", "/etc/nova/a.conf"},
		`--x 'a b' "c \"d\"" e\ f`:       {"--x", "a b", `c "d"`, "e f"},
		`''`:                             {""},
	} {
		got, err := splitArgs(in)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("splitArgs(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := splitArgs(`"open`); err == nil {
		t.Error("an unterminated quote was accepted")
	}
}

func TestDefaultUnit(t *testing.T) {
	dir := t.TempDir()
	for text, want := range map[string]string{
		"ID=debian\n":                              unitDebian,
		"ID=ubuntu\nID_LIKE=debian\n":              unitDebian,
		"ID=\"centos\"\nID_LIKE=\"rhel fedora\"\n": unitRHEL,
		"ID=rhel\n":                                unitRHEL,
	} {
		p := filepath.Join(dir, "os-release")
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := defaultUnit(p); got != want {
			t.Errorf("%q: %s, want %s", text, got, want)
		}
	}
	if got := defaultUnit(filepath.Join(dir, "none")); got != unitDebian {
		t.Errorf("no os-release: %s", got)
	}
}

func TestHostName(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "nova.conf")
	if err := os.WriteFile(conf, []byte("[DEFAULT]\nmy_ip = 1.2.3.4\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if h, err := novaConfHost(conf); err != nil || h != "" {
		t.Errorf("no host: %q %v", h, err)
	}
	if err := os.WriteFile(conf, []byte("[DEFAULT]\nhost=a\n host = b \n[x]\nhost=c\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if h, err := novaConfHost(conf); err != nil || h != "b" {
		t.Errorf("host: %q %v, want b", h, err)
	}
}

// A fenced host's start must not hold up Pacemaker while the evacuation runs: it hands
// the wait to a process of its own and returns; monitor reports degraded, saying what
// that process waits for; stop ends it. The parameters (the password) reach it through
// a pipe, never its argv or environment.
func TestFencedHostStartsInTheBackground(t *testing.T) {
	w := newWorld(t, novatest.Service{Disabled: true, ForcedDown: true, DisabledReason: "novaha:evacuating", EvacuationsDone: true})
	w.want("start", ocf.Success)
	if len(w.clock.sleeps) != 0 || w.running() {
		t.Fatalf("start waited in front (sleeps %v) or started nova-compute", w.clock.sleeps)
	}
	pid, _, err := daemon.Running(w.waiterSpec())
	if err != nil || pid == 0 {
		t.Fatalf("no background start (pid %d, %v)", pid, err)
	}
	// What it was given: the parameters on its standard input only.
	input, environ := w.waiterInput()
	if !strings.Contains(input, "OCF_RESKEY_password_script=echo "+novatest.Password) {
		t.Errorf("input %s lacks the parameters", input)
	}
	if strings.Contains(environ, "OCF_RESKEY_") || strings.Contains(environ, novatest.Password) {
		t.Errorf("the background start's environment holds the parameters:\n%s", environ)
	}
	if argv, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); strings.Contains(string(argv), novatest.Password) {
		t.Errorf("argv %q", argv)
	}

	for _, interval := range []string{"10000", "0"} {
		out := w.want("monitor", ocf.Degraded, "OCF_RESKEY_CRM_meta_interval="+interval)
		if !strings.Contains(out, "waiting for the evacuation of "+host) {
			t.Errorf("monitor (interval %s) does not say what start waits for:\n%s", interval, out)
		}
	}
	w.want("start", ocf.Success)
	if again, _, _ := daemon.Running(w.waiterSpec()); again != pid {
		t.Errorf("a second start replaced the background start %d with %d", pid, again)
	}
	w.want("stop", ocf.Success)
	if gone, _, _ := daemon.Running(w.waiterSpec()); gone != 0 {
		t.Fatalf("background start %d still runs after stop", gone)
	}
	w.want("monitor", ocf.NotRunning, "OCF_RESKEY_CRM_meta_interval=10000")

	// A background start that fails fails the resource, with its reason, until stop.
	in, _ := w.handedOver()
	w.nova.Close()
	if code, out := w.background(in); code == ocf.Success {
		t.Fatalf("background start without Nova succeeded:\n%s", out)
	}
	out := w.want("monitor", ocf.ErrGeneric, "OCF_RESKEY_CRM_meta_interval=10000")
	if !strings.Contains(out, "ocf-exit-reason:the start in the background failed: Nova: ") {
		t.Errorf("monitor after a failed background start:\n%s", out)
	}
	w.want("monitor", ocf.NotRunning, "OCF_RESKEY_CRM_meta_interval=0")
	w.want("stop", ocf.Success)
	w.want("monitor", ocf.NotRunning, "OCF_RESKEY_CRM_meta_interval=10000")
}
