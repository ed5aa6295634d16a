package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/novaha/novaha/test/cluster"
	"github.com/novaha/novaha/test/nova"
)

func TestMain(m *testing.M) {
	code := m.Run()
	nova.StopIfStarted()
	os.Exit(code)
}

// TestNovaComputeInsideNode runs compute1's nova-compute inside the compute1 node (the
// wrapper NovaCompute's process mode will use), checks it reaches the sandbox's control
// plane through the forwarders, and that killing the node kills it. Run it under
// `flock /tmp/novaha-nova.lock` with NOVA_SANDBOX_TESTS=1; it leaves compute1's own
// nova-compute running as it found it.
func TestNovaComputeInsideNode(t *testing.T) {
	sb := nova.Require(t)
	tb := testbed(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const host = "compute1"

	// The forwarders: Keystone and nova-api answer on 127.0.0.1 inside a controller.
	for _, port := range tb.cfg.NovaPorts[:2] {
		out, err := tb.Run(ctx, "ctl1", "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
			"--max-time", "10", "http://127.0.0.1:"+strconv.Itoa(port)+"/")
		if err != nil || (out != "200" && out != "300" && out != "401") {
			t.Errorf("http://127.0.0.1:%d/ from ctl1: %q, %v", port, out, err)
		}
	}

	wasRunning := sb.ComputeRunning(ctx, host)
	if err := sb.StopCompute(ctx, host); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		// The copy in the node dies with the node (Down); then the sandbox's own again.
		_ = tb.Kill(cctx, host)
		if wasRunning {
			if err := sb.StartCompute(cctx, host); err != nil {
				t.Errorf("restarting the sandbox's %s: %v", host, err)
			}
		}
	})

	wrapper, err := filepath.Abs("nova-compute")
	if err != nil {
		t.Fatal(err)
	}
	// setsid -f: nsenter returns, and nova-compute stays in the node, a child of its PID 1.
	if out, err := tb.Run(ctx, host, "setsid", "-f", "bash", "-c",
		"exec "+shellQuote(wrapper)+" --sandbox "+shellQuote(sb.Dir)+" >>/var/log/nova-compute.log 2>&1"); err != nil {
		t.Fatalf("starting nova-compute in %s: %v\n%s", host, err, out)
	}
	logPath := filepath.Join(tb.Dir(), "nodes", host, "root", "var", "log", "nova-compute.log")
	// The resource tracker's report needs the conductor (AMQP) and Placement: both
	// reached through the forwarders.
	deadline := time.Now().Add(3 * time.Minute)
	for {
		b, _ := os.ReadFile(logPath)
		if strings.Contains(string(b), "Final resource view was: name="+host) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("nova-compute in %s did not report its resources:\n%s", host, tail(string(b), 40))
		}
		time.Sleep(time.Second)
	}
	ps, err := tb.Processes(ctx, host)
	if err != nil {
		t.Fatal(err)
	}
	var compute *Process
	for i := range ps {
		if ps[i].Name == "nova-compute" {
			compute = &ps[i]
		}
	}
	if compute == nil {
		t.Fatalf("no nova-compute process in %s: %+v", host, ps)
	}
	if err := tb.Kill(ctx, host); err != nil {
		t.Fatal(err)
	}
	if compute.Alive() {
		t.Errorf("nova-compute[%d] survived the power off of %s", compute.PID, host)
	}
}

// TestInstanceHAConfiguration applies configure.sh twice (the admin guide's pcs steps on
// top of what Up configured; the second run changes nothing) and checks that every fence
// device starts, fence-nova included (its monitor reaches Keystone and Nova through the
// forwarders), with one level per compute: its power device, then fence-nova; and that
// NovaEvacuate runs on a controller and NovaCompute on every compute, each host up and
// enabled in Nova (instanceHA). It fences nothing; the sandbox's own nova-compute of
// compute1 and compute2 are stopped meanwhile and started again.
func TestInstanceHAConfiguration(t *testing.T) {
	if os.Getenv("NOVAHA_E2E_TESTS") != "1" {
		t.Skip("the multi-node testbed needs root and namespaces: set NOVAHA_E2E_TESTS=1 (make e2e-test)")
	}
	sb := nova.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*scenarioTimeout)
	defer cancel()
	tb, _, _ := instanceHA(ctx, t, sb, 2, []string{"compute1", "compute2"})
	if _, err := tb.WaitStatus(ctx, "every fence device started", func(s *cluster.Status) bool {
		n := 0
		for _, r := range s.Resources {
			if strings.HasPrefix(r.Agent, "stonith:") {
				if !r.Active || r.Failed {
					return false
				}
				n++
			}
		}
		return n == len(tb.Nodes())+1
	}); err != nil {
		t.Fatal(err)
	}
	out, err := tb.Pcs(ctx, "stonith", "level", "config")
	if err != nil {
		t.Fatalf("pcs stonith level config: %v\n%s", err, out)
	}
	for _, n := range tb.Nodes() {
		if n.Role != "compute" {
			continue
		}
		want := "Target: " + n.Name + "\n  Level 1 - ipmi-" + n.Name + ",fence-nova"
		if !strings.Contains(out, want) {
			t.Errorf("levels: want %q in\n%s", want, out)
		}
	}
}
