package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/novaha/novaha/lib/daemon"
	"github.com/novaha/novaha/lib/evacuation"
	"github.com/novaha/novaha/lib/nova"
	"github.com/novaha/novaha/lib/nova/novatest"
	"github.com/novaha/novaha/lib/ocf"
	"github.com/novaha/novaha/test/agenttest"
	sandbox "github.com/novaha/novaha/test/nova"
)

var build = &agenttest.Build{Name: "NovaEvacuate"}

func TestMain(m *testing.M) {
	code := m.Run()
	build.Remove()
	sandbox.StopIfStarted()
	os.Exit(code)
}

func TestAgentDeclaration(t *testing.T) {
	a := agent(defaultEnv())
	if err := a.Check(); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := a.MetaData(&b); err != nil {
		t.Fatal(err)
	}
	// ocf:openstack:NovaEvacuate's parameters, for drop-in replacement.
	for _, p := range []string{"auth_url", "username", "password", "tenant_name", "user_domain", "project_domain", "region_name",
		"endpoint_type", "insecure", "no_shared_storage", "verbose", "evacuate_delay", "cloud", "clouds_yaml"} {
		if !strings.Contains(b.String(), `<parameter name="`+p+`"`) {
			t.Errorf("no parameter %s", p)
		}
	}
}

// run runs the agent in-process with the given parameters and returns its exit code
// and stderr.
func run(t *testing.T, e env, action string, params map[string]string, extra ...string) (ocf.Code, string) {
	t.Helper()
	envv := []string{"OCF_ROOT=/usr/lib/ocf", "OCF_RESOURCE_INSTANCE=evac", "HA_LOGFACILITY=none"}
	for k, v := range params {
		envv = append(envv, "OCF_RESKEY_"+k+"="+v)
	}
	envv = append(envv, extra...)
	var out, errb strings.Builder
	code := agent(e).Run(context.Background(), []string{"NovaEvacuate", action}, envv, &out, &errb)
	return code, errb.String()
}

func baseParams(srv *novatest.Server, dir string) map[string]string {
	return map[string]string{"auth_url": srv.AuthURL(), "username": novatest.Username, "password": novatest.Password,
		"tenant_name": novatest.Project, "state_dir": dir, "interval": "100ms", "token_cache": "0",
		// No cluster here (and another test's cluster must not be asked).
		"stock_evacuate": "0"}
}

func TestValidateAllRejectsBadParameters(t *testing.T) {
	srv := novatest.New(t)
	dir := t.TempDir()
	cases := []struct {
		set  map[string]string
		drop string
		want string
	}{
		{set: map[string]string{"instance_selection": "some"}, want: `instance_selection "some" is none of tagged, ha_enabled, all`},
		{set: map[string]string{"max_fenced_percent": "0"}, want: "max_fenced_percent 0: want a percentage from 1 to 100"},
		{set: map[string]string{"max_fenced_percent": "101"}, want: "max_fenced_percent 101"},
		{set: map[string]string{"per_destination": "0"}, want: "per_destination 0: want at least 1"},
		{set: map[string]string{"max_in_flight": "x"}, want: "max_in_flight"},
		{set: map[string]string{"state_dir": "relative/dir"}, want: "state_dir \"relative/dir\": not an absolute path"},
		{set: map[string]string{"interval": "0"}, want: "interval must be more than 0"},
		{drop: "auth_url", want: "no Keystone URL"},
		{drop: "password", want: "no password"},
	}
	e := defaultEnv()
	e.getenv = func(string) string { return "" }
	for _, tc := range cases {
		p := baseParams(srv, dir)
		for k, v := range tc.set {
			p[k] = v
		}
		delete(p, tc.drop)
		for _, action := range []string{"validate-all", "start"} {
			code, stderr := run(t, e, action, p)
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			last := lines[len(lines)-1]
			if code != ocf.ErrConfigured || !strings.HasPrefix(last, "ocf-exit-reason:") || !strings.Contains(last, tc.want) {
				t.Errorf("%s %v: %v %q, want OCF_ERR_CONFIGURED with %q", action, tc, code, stderr, tc.want)
			}
			if strings.Contains(stderr, novatest.Password) {
				t.Errorf("the password is in the output: %s", stderr)
			}
		}
	}
	if code, stderr := run(t, e, "validate-all", baseParams(srv, dir)); code != ocf.Success {
		t.Errorf("good parameters: %v %s", code, stderr)
	}
}

func TestStartRefusesBadCredentials(t *testing.T) {
	srv := novatest.New(t, novatest.Service{Host: "compute1", Alive: true})
	p := baseParams(srv, t.TempDir())
	p["password"] = "wrong-password"
	code, stderr := run(t, defaultEnv(), "start", p)
	if code != ocf.ErrConfigured || !strings.Contains(stderr, "ocf-exit-reason:Keystone refused the credentials") || strings.Contains(stderr, "wrong-password") {
		t.Errorf("start: %v %s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(p["state_dir"], "NovaEvacuate-evac.pid")); err == nil {
		t.Error("a controller was launched")
	}
}

// password_script's output is the password start logs in with (and never prints).
func TestStartPasswordScript(t *testing.T) {
	srv := novatest.New(t, novatest.Service{Host: "compute1", Alive: true})
	p := baseParams(srv, t.TempDir())
	delete(p, "password")
	p["password_script"] = "echo from-the-script"
	code, stderr := run(t, defaultEnv(), "start", p)
	if code != ocf.ErrConfigured || strings.Contains(stderr, "from-the-script") {
		t.Errorf("start: %v %s", code, stderr)
	}
	sent := false
	for _, r := range srv.Requests() {
		sent = sent || (strings.HasSuffix(r.Path, "/auth/tokens") && strings.Contains(r.Body, `"from-the-script"`))
	}
	if !sent {
		t.Error("Keystone was not given the password_script's output")
	}
}

// binary runs the built agent as Pacemaker does.
type binary struct {
	t      *testing.T
	path   string
	params map[string]string
}

func (b binary) run(action string, extra ...string) (int, string) {
	b.t.Helper()
	cmd := exec.Command(b.path, action)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "OCF_ROOT=/usr/lib/ocf", "OCF_RESOURCE_INSTANCE=evac", "HA_LOGFACILITY=none"}
	for k, v := range b.params {
		cmd.Env = append(cmd.Env, "OCF_RESKEY_"+k+"="+v)
	}
	cmd.Env = append(cmd.Env, extra...)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	} else if err != nil {
		b.t.Fatalf("%s: %v", action, err)
	}
	return 0, string(out)
}

// controller is the pid of the running controller, or 0.
func (b binary) controller() int {
	b.t.Helper()
	ps := paths{PID: filepath.Join(b.params["state_dir"], "NovaEvacuate-evac.pid")}
	pid, _, err := daemon.Running(spec(b.path, "evac", ps))
	if err != nil {
		b.t.Fatal(err)
	}
	return pid
}

// alive reports whether pid runs (a zombie does not).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}

func (b binary) must(action string, want int, extra ...string) string {
	b.t.Helper()
	code, out := b.run(action, extra...)
	if code != want {
		b.t.Fatalf("%s: exit %d, want %d\n%s", action, code, want, out)
	}
	return out
}

// fencedCloud is a fake Nova where compute1 is fenced by fence_nova, with n servers.
func fencedCloud(t *testing.T, n int) (*novatest.Server, []string) {
	t.Helper()
	marker := nova.Marker{Phase: nova.Fenced, At: time.Now().Add(-time.Minute)}.String()
	srv := novatest.New(t,
		novatest.Service{Host: "compute1", ForcedDown: true, Disabled: true, DisabledReason: marker},
		novatest.Service{Host: "compute2", Alive: true},
		novatest.Service{Host: "compute3", Alive: true})
	var list []novatest.Instance
	for range n {
		list = append(list, novatest.Instance{Host: "compute1"})
	}
	return srv, srv.AddServers(list...)
}

func waitFor(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func evacuated(srv *novatest.Server) bool {
	m, ok := nova.ParseMarker(srv.Service("compute1").DisabledReason)
	return ok && m.Phase == nova.Evacuated
}

// checkConverged asserts every instance ACTIVE on another host, evacuated once.
func checkConverged(t *testing.T, srv *novatest.Server, ids []string) {
	t.Helper()
	for _, id := range ids {
		in := srv.Instance(id)
		if in.Host == "compute1" || in.Status != "ACTIVE" || srv.Evacuations(id) != 1 {
			t.Errorf("instance %s: host %s, status %s, %d evacuations", id, in.Host, in.Status, srv.Evacuations(id))
		}
	}
	m, _ := nova.ParseMarker(srv.Service("compute1").DisabledReason)
	if m.Phase != nova.Evacuated || m.Moved != len(ids) || m.Failed != 0 {
		t.Errorf("compute1's marker %+v", m)
	}
}

func TestLifecycle(t *testing.T) {
	srv, ids := fencedCloud(t, 6)
	dir := t.TempDir()
	b := binary{t: t, path: build.Path(t), params: baseParams(srv, dir)}
	b.must("monitor", 7, "OCF_RESKEY_CRM_meta_interval=0")
	b.must("monitor", 7, "OCF_RESKEY_CRM_meta_interval=10000")
	b.must("start", 0)
	t.Cleanup(func() { b.run("stop") })
	pid := b.controller()
	if pid == 0 {
		t.Fatal("no controller after start")
	}
	// The password reaches the controller through the pipe only.
	for _, f := range []string{"cmdline", "environ"} {
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, f))
		if err != nil || strings.Contains(string(raw), novatest.Password) || strings.Contains(string(raw), "OCF_RESKEY_") {
			t.Errorf("/proc/%d/%s holds the parameters (%v): %q", pid, f, err, raw)
		}
	}
	if sid := sessionOf(t, pid); sid != pid {
		t.Errorf("the controller is not in a session of its own: sid %d", sid)
	}
	b.must("start", 0) // idempotent
	b.must("monitor", 0, "OCF_RESKEY_CRM_meta_interval=10000")
	waitFor(t, "compute1 evacuated", 30*time.Second, func() bool { return evacuated(srv) })
	checkConverged(t, srv, ids)

	var sb, eb strings.Builder
	code := statusCommand([]string{dir}, defaultEnv(), &sb, &eb)
	if code != 0 || !strings.Contains(sb.String(), "NovaEvacuate evac: pid ") || !strings.Contains(sb.String(), "Nova reachable") {
		t.Errorf("status: %d %s %s", code, sb.String(), eb.String())
	}
	t.Logf("status:\n%s", sb.String())
	logb, _ := os.ReadFile(filepath.Join(dir, "NovaEvacuate-evac.log"))
	t.Logf("log:\n%s", logb)

	b.must("stop", 0)
	if alive(pid) {
		t.Error("the controller survived stop")
	}
	b.must("monitor", 7, "OCF_RESKEY_CRM_meta_interval=10000")
	b.must("stop", 0)
}

func TestKillNineMidEvacuationConverges(t *testing.T) {
	srv, ids := fencedCloud(t, 12)
	srv.SetRebuildTime(150 * time.Millisecond)
	dir := t.TempDir()
	b := binary{t: t, path: build.Path(t), params: baseParams(srv, dir)}
	b.params["per_destination"] = "1"
	kills := 0
	for round := 0; round < 3; round++ {
		b.must("start", 0)
		pid := b.controller()
		// Kill it once some more evacuations were accepted.
		accepted := func() int {
			n := 0
			for _, id := range ids {
				n += srv.Evacuations(id)
			}
			return n
		}
		before := accepted()
		waitFor(t, "an evacuation", 20*time.Second, func() bool { return accepted() > before || evacuated(srv) })
		if evacuated(srv) {
			break
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		kills++
		waitFor(t, "the controller's end", 5*time.Second, func() bool { return !alive(pid) })
		b.must("monitor", 1, "OCF_RESKEY_CRM_meta_interval=10000")
		b.must("stop", 0)
	}
	if kills == 0 {
		t.Fatal("the evacuation ended before the controller could be killed")
	}
	t.Logf("killed the controller %d times during the evacuation", kills)
	b.must("start", 0)
	t.Cleanup(func() { b.run("stop") })
	waitFor(t, "compute1 evacuated", 60*time.Second, func() bool { return evacuated(srv) })
	checkConverged(t, srv, ids)
	b.must("stop", 0)
}

func TestMonitorDegradedAndNovaDown(t *testing.T) {
	// Two of three hosts fenced, guard at 50%: nothing moves, monitor says degraded.
	marker := nova.Marker{Phase: nova.Fenced, At: time.Now()}.String()
	srv := novatest.New(t,
		novatest.Service{Host: "compute1", ForcedDown: true, Disabled: true, DisabledReason: marker},
		novatest.Service{Host: "compute2", ForcedDown: true, Disabled: true, DisabledReason: marker},
		novatest.Service{Host: "compute3", Alive: true})
	id := srv.AddServers(novatest.Instance{Host: "compute1"})[0]
	dir := t.TempDir()
	b := binary{t: t, path: build.Path(t), params: baseParams(srv, dir)}
	b.params["nova_down_timeout"] = "1s"
	b.must("start", 0)
	t.Cleanup(func() { b.run("stop") })
	out := b.must("monitor", int(ocf.Degraded), "OCF_RESKEY_CRM_meta_interval=10000")
	if !strings.Contains(out, "ocf-exit-reason:mass-failure guard holds evacuations back") {
		t.Errorf("monitor: %s", out)
	}
	if srv.Evacuations(id) != 0 {
		t.Error("evacuated despite the guard")
	}
	// Nova goes away: degraded at first, a failure after nova_down_timeout.
	srv.Fail(novatest.Fault{Match: "GET /", Status: 503, Count: 1 << 30})
	st := filepath.Join(dir, "NovaEvacuate-evac.status.json")
	waitFor(t, "a round that cannot reach Nova", 30*time.Second, func() bool {
		s, err := evacuation.ReadStatus(st)
		return err == nil && !s.NovaOK
	})
	out = b.must("monitor", int(ocf.Degraded), "OCF_RESKEY_CRM_meta_interval=10000")
	if !strings.Contains(out, "cannot reach Nova") {
		t.Errorf("monitor: %s", out)
	}
	time.Sleep(1100 * time.Millisecond)
	out = b.must("monitor", 1, "OCF_RESKEY_CRM_meta_interval=10000")
	if !strings.Contains(out, "ocf-exit-reason:the controller cannot reach Nova since") {
		t.Errorf("monitor: %s", out)
	}
	b.must("stop", 0)
}

// sessionOf reads a process's session id (/proc/<pid>/stat's 6th field).
func sessionOf(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	var sid int
	fmt.Sscan(f[3], &sid)
	return sid
}

// An evacuation that makes no progress for retry_timeout holds its host back, and
// monitor says so (degraded) instead of letting the host return.
func TestMonitorReportsAStuckEvacuation(t *testing.T) {
	srv, ids := fencedCloud(t, 1)
	srv.SetRebuildTime(time.Hour) // accepted, and nothing more for the test's life
	dir := t.TempDir()
	b := binary{t: t, path: build.Path(t), params: baseParams(srv, dir)}
	b.params["retry_timeout"] = "2s"
	b.must("start", 0)
	t.Cleanup(func() { b.run("stop") })
	var out string
	waitFor(t, "monitor to report the stuck evacuation", 30*time.Second, func() bool {
		_, out = b.run("monitor", "OCF_RESKEY_CRM_meta_interval=10000")
		return strings.Contains(out, "ocf-exit-reason:compute1 held back: instance "+ids[0])
	})
	b.must("monitor", int(ocf.Degraded), "OCF_RESKEY_CRM_meta_interval=10000")
	if evacuated(srv) {
		t.Error("compute1 marked evacuated with its evacuation stuck")
	}
	if n := srv.Evacuations(ids[0]); n != 1 {
		t.Errorf("%d evacuations requested, want 1", n)
	}
	var sb, eb strings.Builder
	statusCommand([]string{dir}, defaultEnv(), &sb, &eb)
	if !strings.Contains(sb.String(), "compute1: instance "+ids[0]+" stuck: evacuation to") {
		t.Errorf("status does not show the stuck evacuation:\n%s", sb.String())
	}
	b.must("stop", 0)
}
