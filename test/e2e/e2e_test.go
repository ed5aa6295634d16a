package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/novaha/novaha/test/bmcsim"
	"github.com/novaha/novaha/test/cluster"
	"github.com/novaha/novaha/test/nova"
)

// testbed brings a testbed up for the test (two controllers, computes compute1 and
// compute2, fence_ipmi per node) and takes it down at the end. It skips unless
// NOVAHA_E2E_TESTS=1: the testbed takes over 10.77.0.0/24 and needs root.
func testbed(t *testing.T) *Testbed {
	t.Helper()
	return testbedWith(t, nova.Dir(), "compute1", "compute2")
}

// testbedWith is testbed with the given computes, forwarding the ports of the Nova
// sandbox in novaDir into the nodes.
func testbedWith(t *testing.T, novaDir string, computes ...string) *Testbed {
	t.Helper()
	if os.Getenv("NOVAHA_E2E_TESTS") != "1" {
		t.Skip("the multi-node testbed needs root and namespaces: set NOVAHA_E2E_TESTS=1 (make e2e-test)")
	}
	return testbedFrom(t, novaDir, agentDir(t), computes...)
}

// testbedFrom is testbedWith with the agents of the directory agents in the nodes.
func testbedFrom(t *testing.T, novaDir, agents string, computes ...string) *Testbed {
	t.Helper()
	// Not t.TempDir(): its parent is mode 0700, and Pacemaker's unprivileged daemons
	// must reach their logs in the node roots.
	dir, err := os.MkdirTemp("/var/tmp", "novaha-e2e-test-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	tb, err := Up(ctx, Config{
		Dir:       dir,
		Computes:  computes,
		NovaPorts: novaPorts(novaDir),
		AgentDir:  agents,
		Fencing:   true,
		Log:       testWriter{t},
	})
	if err != nil {
		t.Fatalf("%v (state in %s)", err, dir)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range tb.Nodes() {
				for _, f := range []string{"console.log", "root/var/log/pacemaker/pacemaker.log"} {
					if b, err := os.ReadFile(filepath.Join(tb.Dir(), "nodes", n.Name, f)); err == nil {
						t.Logf("%s %s (tail):\n%s", n.Name, f, tail(string(b), 30))
					}
				}
			}
		}
		if err := tb.Down(context.Background()); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("testbed state kept in %s", dir)
		} else {
			os.RemoveAll(dir)
		}
	})
	t.Logf("testbed online after %v", tb.Online.Round(time.Millisecond))
	return tb
}

// agentDir is make build's bin/ (NOVAHA_BIN), or fence_ipmi built for the test.
func agentDir(t *testing.T) string {
	if d := os.Getenv("NOVAHA_BIN"); d != "" {
		return d
	}
	d := t.TempDir()
	out, err := exec.Command("go", "build", "-o", d+"/", "../../agents/fence_ipmi").CombinedOutput()
	if err != nil {
		t.Fatalf("go build fence_ipmi: %v\n%s", err, out)
	}
	return d
}

func TestTestbedFencesAndRestartsComputes(t *testing.T) {
	tb := testbed(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	s, err := tb.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range tb.Nodes() {
		st, ok := s.Node(n.Name)
		want := "member"
		if n.Role == "compute" {
			want = "remote"
		}
		if !ok || !st.Online || st.Type != want {
			t.Errorf("node %s: %+v, want an online %s node", n.Name, st, want)
		}
	}
	if !s.StonithEnabled || !s.Quorate {
		t.Errorf("stonith-enabled=%v quorate=%v, want both", s.StonithEnabled, s.Quorate)
	}

	// Each node's tools see the cluster as that node, computes included (through
	// pacemaker_remoted's IPC proxy): what the agents running there rely on.
	for _, n := range tb.Nodes() {
		if out, err := tb.Run(ctx, n.Name, "crm_node", "-n"); err != nil || strings.TrimSpace(out) != n.Name {
			t.Errorf("crm_node -n on %s: %q, %v", n.Name, out, err)
		}
	}

	t.Run("stonith_admin reboot", func(t *testing.T) {
		fenceAndReturn(t, tb, "compute1", func(ctx context.Context) error {
			_, err := tb.Run(ctx, "ctl1", "stonith_admin", "--reboot", "compute1", "--timeout", "60")
			return err
		})
	})
	t.Run("node killed", func(t *testing.T) {
		// Killed behind its BMC's back: Pacemaker must notice and fence it by itself.
		fenceAndReturn(t, tb, "compute2", func(ctx context.Context) error {
			return tb.Kill(ctx, "compute2")
		})
	})
	t.Run("power loss", func(t *testing.T) {
		// The same without the closing TCP connections: only the remote connection's
		// monitor can notice.
		fenceAndReturn(t, tb, "compute1", func(ctx context.Context) error {
			return tb.PowerLoss(ctx, "compute1")
		})
	})
}

// fenceAndReturn runs act against a running compute node and checks that every process
// of the node died, that its BMC saw power off then on, that Pacemaker records a
// successful fencing, and that the node came back online. It logs the times.
func fenceAndReturn(t *testing.T, tb *Testbed, node string, act func(context.Context) error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	b, _ := tb.BMC(node)
	before, err := tb.Processes(ctx, node)
	if err != nil {
		t.Fatal(err)
	}
	if !hasProcess(before, "pacemaker-remot") {
		t.Fatalf("%s runs no pacemaker-remoted: %+v", node, before)
	}
	evs, err := b.Log()
	if err != nil {
		t.Fatal(err)
	}
	logStart := len(evs)

	t0 := time.Now()
	if err := act(ctx); err != nil {
		t.Fatal(err)
	}
	evs, err = b.WaitLog(ctx, func(evs []bmcsim.Event) bool {
		acts := dedup(bmcsim.Actions(evs[logStart:], bmcsim.ActionStatus))
		return len(acts) >= 3 && acts[len(acts)-1] == bmcsim.ActionBooted
	})
	if err != nil {
		t.Fatal(err)
	}
	evs = evs[logStart:]
	// fence_ipmi resends a request the BMC did not answer in time, and ipmi_sim does not
	// answer while the node is being killed: under load the BMC may log "off" twice.
	if acts := dedup(bmcsim.Actions(evs, bmcsim.ActionStatus)); strings.Join(acts, " ") != "off on booted" {
		t.Errorf("BMC log after %s: %v, want off, on, booted", node, evs)
	}
	var off time.Time
	for _, e := range evs {
		if e.Action == bmcsim.ActionOff {
			off = e.Time
			break
		}
	}
	for _, p := range before {
		if p.Alive() {
			t.Errorf("process %s[%d] of %s survived its power off", p.Name, p.PID, node)
		}
	}
	st, err := tb.WaitStatus(ctx, node+" online again", func(s *cluster.Status) bool {
		n, ok := s.Node(node)
		return ok && n.Online
	})
	if err != nil {
		t.Fatal(err)
	}
	online := time.Since(t0)
	if n, _ := st.Node(node); n.Unclean {
		t.Errorf("%s online but unclean", node)
	}
	hist, err := tb.Run(ctx, "ctl1", "stonith_admin", "--history", node)
	if err != nil || !strings.Contains(hist, "reboot of "+node+" successful") {
		t.Errorf("fencing history of %s: %v\n%s", node, err, hist)
	}
	after, err := tb.Processes(ctx, node)
	if err != nil || !hasProcess(after, "pacemaker-remot") {
		t.Errorf("%s back without pacemaker-remoted (%v): %+v", node, err, after)
	}
	t.Logf("%s: BMC power off %v after the start, online again after %v (boot delay %v)",
		node, off.Sub(t0).Round(time.Millisecond), online.Round(time.Millisecond), DefaultBootDelay)
}

func hasProcess(ps []Process, name string) bool {
	for _, p := range ps {
		if p.Name == name {
			return true
		}
	}
	return false
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
