package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/novaha/novaha/lib/daemon"
	"github.com/novaha/novaha/lib/nova"
	"github.com/novaha/novaha/lib/ocf"
	"github.com/novaha/novaha/test/agenttest"
	sandbox "github.com/novaha/novaha/test/nova"
)

// build is the agent's binary, which start runs as the background start.
var build = &agenttest.Build{Name: "NovaCompute"}

func TestMain(m *testing.M) {
	code := m.Run()
	sandbox.StopIfStarted()
	build.Remove()
	os.Exit(code)
}

// sandboxHost is the sandbox's compute host these tests take over; the other tests of
// the sandbox leave it alone by convention.
const sandboxHost = "compute3"

// TestSandboxProcessMode runs NovaCompute in process mode on the real Nova sandbox
// (test/nova), in place of the sandbox's own compute3: the agent starts compute3's
// nova-compute with the sandbox's command line and config and Nova reports it up; then
// with compute3 fenced and one of its servers evacuated (as NovaEvacuate would), start
// returns at once and its background start (the built agent) waits until the host is
// marked evacuated, starts nova-compute, lifts the force-down once Nova accepts it
// (after the restarted nova-compute has cleaned up the evacuated server) and enables the
// service, monitor reporting degraded meanwhile. compute3 goes back under the sandbox's
// management.
// Needs NOVA_SANDBOX_TESTS=1; run it under flock /tmp/novaha-nova.lock.
func TestSandboxProcessMode(t *testing.T) {
	sb := sandbox.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	c, err := nova.Dial(ctx, nova.Config{Cloud: sb.Cloud, CloudsFile: sb.CloudsYAML})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	found, err := nova.ComputeService(ctx, c, sandboxHost)
	if err != nil {
		t.Fatal(err)
	}
	if found.ForcedDown || !found.Enabled() {
		t.Fatalf("%s is not healthy before the test (forced_down=%t, %s %q): put it back first", sandboxHost, found.ForcedDown, found.Status, found.DisabledReason)
	}

	install := os.Getenv("NOVA_INSTALL_DIR")
	if install == "" {
		install = "/opt/novaha-nova"
	}
	dir := t.TempDir()
	conf := filepath.Join(sb.Dir, "etc", "nova", "compute-"+sandboxHost+".conf")
	env := []string{
		"OCF_ROOT=/usr/lib/ocf", "OCF_RESOURCE_INSTANCE=nova-compute:2", "HA_RSCTMP=" + dir,
		"OCF_RESKEY_cloud=" + sb.Cloud, "OCF_RESKEY_clouds_yaml=" + sb.CloudsYAML, "OCF_RESKEY_token_cache=0",
		"OCF_RESKEY_service_manager=process", "OCF_RESKEY_command=" + filepath.Join(install, "bin", "nova-compute"),
		"OCF_RESKEY_nova_conf=" + conf, "OCF_RESKEY_log_file=" + filepath.Join(dir, "nova-compute.log"),
	}
	e := defaultEnv()
	e.exe = func() (string, error) { return build.Path(t), nil }
	a := agent(e)
	run := func(ctx context.Context, action string, extra ...string) (ocf.Code, string) {
		var stderr strings.Builder
		code := a.Run(ctx, []string{"NovaCompute", action}, append(extra, env...), io.Discard, &stderr)
		return code, stderr.String()
	}
	want := func(action string, code ocf.Code, extra ...string) string {
		t.Helper()
		got, out := run(ctx, action, extra...)
		if got != code {
			log, _ := os.ReadFile(filepath.Join(dir, "nova-compute.log"))
			t.Fatalf("%s = %v, want %v\n%s\nnova-compute's output (tail):\n%s", action, got, code, out, tail(string(log), 20))
		}
		return out
	}
	spec := daemon.Spec{Command: filepath.Join(install, "bin", "nova-compute"), Args: []string{"--config-file", conf},
		PidFile: filepath.Join(dir, "NovaCompute-nova-compute:2.pid")}

	if err := sb.StopCompute(ctx, sandboxHost); err != nil {
		t.Fatal(err)
	}
	const prefix = "novacompute-test"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if err := daemon.Stop(ctx, spec, 20*time.Second); err != nil {
			t.Errorf("stopping the agent's nova-compute: %v", err)
		}
		if err := sb.StartCompute(ctx, sandboxHost); err != nil {
			t.Errorf("giving %s back to the sandbox: %v", sandboxHost, err)
		}
		if s, err := nova.ComputeService(ctx, c, sandboxHost); err == nil && (s.ForcedDown || !s.Enabled()) {
			f := false
			if _, err := c.UpdateService(ctx, s, nova.ServiceUpdate{ForcedDown: &f}); err != nil {
				t.Errorf("lifting the force-down of %s: %v", sandboxHost, err)
			}
			if _, err := c.UpdateService(ctx, s, nova.ServiceUpdate{Status: "enabled"}); err != nil {
				t.Errorf("enabling %s: %v", sandboxHost, err)
			}
		}
		if err := sb.Unseed(ctx, prefix); err != nil {
			t.Errorf("unseed: %v", err)
		}
	})

	// 1. A healthy host: the agent's nova-compute registers and Nova reports it up.
	want("monitor", ocf.NotRunning, "OCF_RESKEY_CRM_meta_interval=0")
	t0 := time.Now()
	out := want("start", ocf.Success, "OCF_RESKEY_CRM_meta_timeout=300000")
	t.Logf("start of a healthy host: %s\n%s", time.Since(t0).Round(100*time.Millisecond), out)
	if !strings.Contains(out, "host="+sandboxHost) {
		t.Errorf("start does not log the host name")
	}
	want("monitor", ocf.Success, "OCF_RESKEY_CRM_meta_interval=10000")
	want("monitor", ocf.Success, "OCF_RESKEY_CRM_meta_interval=60000", "OCF_CHECK_LEVEL=10")
	if s, err := nova.ComputeService(ctx, c, sandboxHost); err != nil || !s.Up() || !s.Enabled() {
		t.Fatalf("Nova after start: %+v %v", s, err)
	}

	// 2. A server on the host, then the host dies and is fenced; its server is evacuated.
	if _, err := sb.Seed(ctx, sandbox.SeedOptions{Servers: 1, Prefix: prefix, Hosts: []string{sandboxHost}}); err != nil {
		t.Fatal(err)
	}
	want("stop", ocf.Success)
	s, err := nova.ComputeService(ctx, c, sandboxHost)
	if err != nil {
		t.Fatal(err)
	}
	if s, err = nova.Fence(ctx, c, s, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := sb.Run(ctx, "evacuate", sandboxHost); err != nil {
		t.Fatal(err)
	}

	// 3. start returns at once; its background start waits while the host is fenced,
	// and monitor says so.
	t1 := time.Now()
	out = want("start", ocf.Success, "OCF_RESKEY_CRM_meta_timeout=600000")
	t.Logf("start of a fenced host returned in %s\n%s", time.Since(t1).Round(100*time.Millisecond), out)
	bg := daemon.Spec{Command: build.Path(t), Args: []string{cmdBackground, "nova-compute:2"},
		PidFile: filepath.Join(dir, "NovaCompute-nova-compute:2.start.pid")}
	t.Cleanup(func() {
		_ = daemon.Stop(context.Background(), bg, 5*time.Second)
		if log, err := os.ReadFile(filepath.Join(dir, "NovaCompute-nova-compute:2.start.log")); err == nil {
			t.Logf("background start's log:\n%s", log)
		}
	})
	time.Sleep(8 * time.Second)
	if pid, _, _ := daemon.Running(bg); pid == 0 {
		t.Fatal("no background start runs")
	}
	if pid, _, _ := daemon.Running(spec); pid != 0 {
		t.Fatal("nova-compute was started on a fenced host")
	}
	out = want("monitor", ocf.Degraded, "OCF_RESKEY_CRM_meta_interval=10000")
	if !strings.Contains(out, "waiting for the evacuation of "+sandboxHost) {
		t.Errorf("monitor does not say what start waits for:\n%s", out)
	}

	// 4. The controller marks the host evacuated: the background start completes, and
	// monitor reports success.
	if s, err = nova.ComputeService(ctx, c, sandboxHost); err != nil {
		t.Fatal(err)
	}
	m := nova.NextMarker(s, nova.Evacuated, time.Time{})
	m.Moved = 1
	if _, err := c.UpdateService(ctx, s, nova.ServiceUpdate{Status: "disabled", DisabledReason: m.String()}); err != nil {
		t.Fatal(err)
	}
	t2 := time.Now()
	for {
		code, out := run(ctx, "monitor", "OCF_RESKEY_CRM_meta_interval=10000")
		if code == ocf.Success {
			break
		}
		if code != ocf.Degraded || time.Since(t2) > 5*time.Minute {
			t.Fatalf("monitor after the evacuation = %v\n%s", code, out)
		}
		time.Sleep(time.Second)
	}
	t.Logf("start of a fenced host: %s in all, %s after it was marked evacuated",
		time.Since(t1).Round(100*time.Millisecond), time.Since(t2).Round(100*time.Millisecond))
	s, err = nova.ComputeService(ctx, c, sandboxHost)
	if err != nil || s.ForcedDown || !s.Enabled() || !s.Up() || s.DisabledReason != "" {
		t.Fatalf("Nova after start: %+v %v; want up, enabled, not forced down", s, err)
	}
	want("monitor", ocf.Success, "OCF_RESKEY_CRM_meta_interval=60000", "OCF_CHECK_LEVEL=10")
	want("stop", ocf.Success)
	if pid, _, _ := daemon.Running(spec); pid != 0 {
		t.Errorf("nova-compute (pid %d) runs after stop", pid)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return fmt.Sprint(strings.Join(lines, "\n"))
}
