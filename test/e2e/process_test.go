package e2e

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/novaha/novaha/test/bmcsim"
	"github.com/novaha/novaha/test/cluster"
	"github.com/novaha/novaha/test/nova"
)

// TestNovaComputeProcessKilled: a compute whose only failure is its nova-compute process
// (killed with SIGKILL; the node, pacemaker_remote and the network stay up), with
// servers on it. NovaCompute's monitor (every 10 s) reports it not running, and
// Pacemaker's default recovery of a failed monitor (on-fail=restart, which the admin
// guide keeps) stops and starts the resource on the same node: nova-compute runs again
// under a new PID, and Nova sees its heartbeats. The host is never fenced (its BMC
// powers nothing off, Nova never has it forced down) and its servers stay where they
// are, ACTIVE, with no evacuation: the guests run on under the hypervisor while
// nova-compute is down, and evacuating them from a host that still runs them would
// start a second copy. The other compute's nova-compute is left alone.
func TestNovaComputeProcessKilled(t *testing.T) {
	if os.Getenv("NOVAHA_E2E_TESTS") != "1" {
		t.Skip("the multi-node testbed needs root and namespaces: set NOVAHA_E2E_TESTS=1 (make e2e)")
	}
	sb := nova.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*scenarioTimeout)
	defer cancel()
	const host, other = "compute2", "compute1"
	tb, tc, _ := instanceHA(ctx, t, sb, 1, []string{other, host})
	bmc, ok := tb.BMC(host)
	if !ok {
		t.Fatalf("no BMC for %s", host)
	}
	prefix := fmt.Sprintf("e2eproc%d", time.Now().Unix())
	t.Cleanup(func() {
		if err := sb.Unseed(context.Background(), prefix); err != nil {
			t.Errorf("unseed: %v", err)
		}
	})
	servers, err := sb.Seed(ctx, nova.SeedOptions{Servers: 2, Prefix: prefix, Hosts: []string{host}})
	if err != nil {
		t.Fatal(err)
	}

	before := novaCompute(ctx, t, tb, host)
	otherBefore := novaCompute(ctx, t, tb, other)
	svc, err := tc.ComputeService(ctx, host)
	if err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	if err := syscall.Kill(before.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed nova-compute[%d] in %s (%d servers on it)", before.PID, host, len(servers))

	// Until the host is back, every second: was it ever forced down in Nova?
	wctx, wcancel := context.WithTimeout(ctx, scenarioTimeout)
	defer wcancel()
	var forced []string
	var restarted Process
	var running, beat time.Duration
	for running == 0 || beat == 0 {
		if s, err := tc.ComputeService(wctx, host); err == nil {
			if s.ForcedDown || s.Status != "enabled" {
				forced = append(forced, fmt.Sprintf("%.1fs: %+v", time.Since(killed).Seconds(), s))
			}
			// A heartbeat after the restart: the new nova-compute serves RPC.
			if running != 0 && beat == 0 && s.UpdatedAt != svc.UpdatedAt && s.State == "up" {
				beat = time.Since(killed)
			}
			if running == 0 {
				svc = s
			}
		}
		if running == 0 {
			if p, ok := pythonNovaCompute(wctx, tb, host); ok && p.PID != before.PID {
				restarted, running = p, time.Since(killed)
			}
		}
		if running == 0 || beat == 0 {
			select {
			case <-wctx.Done():
				t.Fatalf("%s: nova-compute not back within %v (running again after %v, heartbeat after %v)", host, scenarioTimeout, running, beat)
			case <-time.After(time.Second):
			}
		}
	}
	t.Logf("nova-compute[%d] runs again in %s %v after the kill; Nova saw its heartbeat after %v",
		restarted.PID, host, running.Round(100*time.Millisecond), beat.Round(100*time.Millisecond))
	st, err := tb.WaitStatus(wctx, "nova-compute started again on "+host, func(s *cluster.Status) bool {
		return contains(ActiveOn(s, "nova-compute"), host)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cluster after the recovery: %s", describeStatus(st))

	// Pacemaker did it, after a failed monitor: not nova-compute by itself.
	if n, err := failCount(ctx, tb, "nova-compute", host); err != nil || n < 1 {
		t.Errorf("fail-count of nova-compute on %s: %d, %v; want the monitor's failure recorded", host, n, err)
	}
	if len(forced) > 0 {
		t.Errorf("%s forced down or disabled in Nova meanwhile:\n%s", host, strings.Join(forced, "\n"))
	}
	if evs, err := bmc.Log(); err != nil {
		t.Fatal(err)
	} else {
		for _, e := range evs {
			if e.Action != bmcsim.ActionStatus && e.Time.After(killed) {
				t.Errorf("%s's BMC: %s after the kill of nova-compute alone", host, e)
			}
		}
	}
	if s, err := tc.ComputeService(ctx, host); err != nil || !Healthy(s) || s.DisabledReason != "" {
		t.Errorf("%s in Nova after the recovery: %+v, %v", host, s, err)
	}
	for _, s := range servers {
		if d, err := tc.Server(ctx, s.ID); err != nil || d.Status != "ACTIVE" || d.Host != host || d.TaskState != "" {
			t.Errorf("%s after the recovery: %+v, %v; want ACTIVE on %s", s.Name, d, err, host)
		}
	}
	if migs, err := tc.Evacuations(ctx, host); err != nil {
		t.Error(err)
	} else {
		for _, m := range migs {
			if at, err := parseNovaTime(m.CreatedAt); err != nil || !at.Before(killed.Add(-2*time.Second)) {
				t.Errorf("evacuation off %s since the kill: %+v", host, m)
			}
		}
	}
	if p, ok := pythonNovaCompute(ctx, tb, other); !ok || p != otherBefore {
		t.Errorf("%s's nova-compute: %+v before, %+v (%t) after; want it untouched", other, otherBefore, p, ok)
	}
}

// pythonNovaCompute is the nova-compute Python process of a node: the wrapper
// (test/e2e/nova-compute, bash) and its child both have the name nova-compute.
func pythonNovaCompute(ctx context.Context, tb *Testbed, node string) (Process, bool) {
	ps, err := tb.Processes(ctx, node)
	if err != nil {
		return Process{}, false
	}
	var found []Process
	for _, p := range ps {
		cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p.PID))
		if err == nil && p.Name == "nova-compute" && strings.Contains(string(cmd), "python") {
			found = append(found, p)
		}
	}
	if len(found) != 1 {
		return Process{}, false
	}
	return found[0], true
}

// novaCompute is pythonNovaCompute, failing the test when there is not exactly one.
func novaCompute(ctx context.Context, t *testing.T, tb *Testbed, node string) Process {
	t.Helper()
	p, ok := pythonNovaCompute(ctx, tb, node)
	if !ok {
		ps, err := tb.Processes(ctx, node)
		t.Fatalf("want one nova-compute (Python) in %s, found none or several among %+v (%v)", node, ps, err)
	}
	return p
}

var failCountValue = regexp.MustCompile(`value=(\S+)`)

// failCount is the fail count of resource on node, as crm_failcount reports it on a
// controller (0 when it has none; INFINITY as a large number).
func failCount(ctx context.Context, tb *Testbed, resource, node string) (int, error) {
	cmd, err := Command(ctx, tb.Dir(), tb.controller(ctx), "crm_failcount", "--query", "-r", resource, "-N", node)
	if err != nil {
		return 0, err
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("crm_failcount %s on %s: %w: %s", resource, node, err, out)
	}
	m := failCountValue.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("crm_failcount %s on %s: no value in %q", resource, node, out)
	}
	switch v := string(m[1]); v {
	case "INFINITY":
		return 1000000, nil
	case "(null)":
		return 0, nil
	default:
		n, err := strconv.Atoi(v)
		if err != nil {
			return 0, fmt.Errorf("crm_failcount %s on %s: %q: %w", resource, node, out, err)
		}
		return n, nil
	}
}

// parseNovaTime reads Nova's created_at/updated_at: UTC without a zone.
func parseNovaTime(s string) (time.Time, error) {
	return time.Parse("2006-01-02T15:04:05.000000", s)
}
