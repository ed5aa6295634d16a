package e2e

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/novaha/novaha/test/bmcsim"
	"github.com/novaha/novaha/test/cluster"
	"github.com/novaha/novaha/test/nova"
)

// TestControllerKilledMidEvacuation: a compute host is killed, and once NovaEvacuate has
// started evacuating it, the controller running NovaEvacuate is killed too. Pacemaker
// must fence that controller (its BMC powers it off) and start NovaEvacuate on the
// other one, which carries on from what Nova records: every server of the compute
// ACTIVE on a healthy host, evacuated exactly once (one evacuation migration per server
// since the kill), the compute back and enabled, the killed controller back in the
// cluster. The healthy computes are never fenced, and their nova-compute keeps running
// through it all (same process): NovaEvacuate moving must not restart NovaCompute.
//
// NOVAHA_E2E_SERVERS sets the number of servers on the compute (default 8: enough for
// the evacuation to be under way when the controller dies). Needs NOVAHA_E2E_TESTS=1 and
// NOVA_SANDBOX_TESTS=1, under flock /tmp/novaha-nova.lock (make e2e).
func TestControllerKilledMidEvacuation(t *testing.T) {
	if os.Getenv("NOVAHA_E2E_TESTS") != "1" {
		t.Skip("the multi-node testbed needs root and namespaces: set NOVAHA_E2E_TESTS=1 (make e2e)")
	}
	sb := nova.Require(t)
	n := 8
	if v, err := strconv.Atoi(os.Getenv("NOVAHA_E2E_SERVERS")); err == nil && v > 0 {
		n = v
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*scenarioTimeout)
	defer cancel()
	tb, tc, hosts := instanceHA(ctx, t, sb, 1, nil)
	if len(hosts) < 3 {
		t.Skipf("%d compute hosts: the scenario needs 3", len(hosts))
	}
	victim, healthy := hosts[0], hosts[1:]

	prefix := fmt.Sprintf("e2ectl%d", time.Now().Unix())
	t.Cleanup(func() {
		if err := sb.Unseed(context.Background(), prefix); err != nil {
			t.Errorf("unseed: %v", err)
		}
	})
	t0 := time.Now()
	servers, err := sb.Seed(ctx, nova.SeedOptions{Servers: n, Prefix: prefix, Hosts: []string{victim}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("booted %d servers on %s in %v", len(servers), victim, time.Since(t0).Round(100*time.Millisecond))

	s, err := tb.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ev := ActiveOn(s, "nova-evacuate")
	if len(ev) != 1 {
		t.Fatalf("nova-evacuate active on %v, want one controller", ev)
	}
	ctl := ev[0]
	survivor := "ctl1"
	if ctl == "ctl1" {
		survivor = "ctl2"
	}
	before := map[string]Process{}
	for _, h := range healthy {
		before[h] = novaCompute(ctx, t, tb, h)
	}
	bmc, ok := tb.BMC(victim)
	ctlBMC, ok2 := tb.BMC(ctl)
	if !ok || !ok2 {
		t.Fatalf("no BMC for %s or %s", victim, ctl)
	}

	killed := time.Now()
	if err := tb.Kill(ctx, victim); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed %s; NovaEvacuate runs on %s", victim, ctl)

	// Mid-evacuation: the first evacuation migration exists, and some servers are not
	// ACTIVE elsewhere yet.
	wctx, wcancel := context.WithTimeout(ctx, scenarioTimeout)
	defer wcancel()
	for {
		migs, err := tc.Evacuations(wctx, victim)
		if err == nil && len(since(migs, killed)) > 0 {
			break
		}
		select {
		case <-wctx.Done():
			t.Fatalf("no evacuation off %s started within %v", victim, scenarioTimeout)
		case <-time.After(200 * time.Millisecond):
		}
	}
	ctlKilled := time.Now()
	if err := tb.Kill(ctx, ctl); err != nil {
		t.Fatal(err)
	}
	done := 0
	for _, sv := range servers {
		if d, err := tc.Server(ctx, sv.ID); err == nil && d.Status == "ACTIVE" && d.Host != victim && d.TaskState == "" {
			done++
		}
	}
	t.Logf("killed %s (NovaEvacuate's node) %.1fs after %s, the first evacuation under way; %d/%d servers ACTIVE elsewhere then",
		ctl, ctlKilled.Sub(killed).Seconds(), victim, done, len(servers))
	if done == len(servers) {
		t.Fatalf("the evacuation was over before %s was killed: nothing tested (raise NOVAHA_E2E_SERVERS)", ctl)
	}

	// Pacemaker fences the controller, then starts NovaEvacuate on the survivor.
	st, err := tb.WaitStatus(wctx, "nova-evacuate started on "+survivor, func(s *cluster.Status) bool {
		return contains(ActiveOn(s, "nova-evacuate"), survivor)
	})
	if err != nil {
		t.Fatal(err)
	}
	moved := time.Since(ctlKilled)
	ctlOff := firstOff(ctlBMC, ctlKilled)
	if ctlOff.IsZero() {
		t.Errorf("%s's BMC logged no power off since its kill, yet nova-evacuate started on %s: %s", ctl, survivor, describeStatus(st))
	} else {
		t.Logf("%s fenced (its BMC's off) %.1fs after its kill; nova-evacuate started on %s after %.1fs",
			ctl, ctlOff.Sub(ctlKilled).Seconds(), survivor, moved.Seconds())
	}

	r, err := WatchRecovery(wctx, tc, bmc, victim, servers, killed, func(e string) { t.Log(e) })
	if err != nil {
		t.Fatalf("%v\n%s", err, r)
	}
	t.Logf("%s: %d servers, kill to last ACTIVE elsewhere %v, to host back %v; controller killed %.1fs after the compute",
		victim, len(servers), r.LastActive.Sub(killed).Round(100*time.Millisecond), r.Back.Sub(killed).Round(100*time.Millisecond),
		ctlKilled.Sub(killed).Seconds())
	st, err = tb.WaitStatus(wctx, ctl+" back online, nova-compute started on every compute", func(s *cluster.Status) bool {
		nd, ok := s.Node(ctl)
		return ok && nd.Online && sameSet(ActiveOn(s, "nova-compute"), hosts) && len(ActiveOn(s, "nova-evacuate")) == 1
	})
	if err != nil {
		t.Error(err)
	} else {
		t.Logf("%s back online %.1fs after its kill: %s", ctl, time.Since(ctlKilled).Seconds(), describeStatus(st))
	}
	checkRecovery(ctx, t, tc, victim, servers, hosts, r)

	for _, h := range healthy {
		if p, ok := pythonNovaCompute(ctx, tb, h); !ok || p != before[h] {
			t.Errorf("%s's nova-compute: %+v before, %+v (%t) after; want the same process (NovaEvacuate's move must not restart NovaCompute)", h, before[h], p, ok)
		}
		if b, ok := tb.BMC(h); ok {
			if off := firstOff(b, killed); !off.IsZero() {
				t.Errorf("%s (healthy) powered off by its BMC %.1fs after the kill", h, off.Sub(killed).Seconds())
			}
		}
	}
	if n, err := failCount(ctx, tb, "nova-compute", healthy[0]); err == nil && n > 0 {
		t.Logf("note: nova-compute on %s has fail count %d", healthy[0], n)
	}
}

// firstOff is the time of the first power off a BMC logged after t, zero if none.
func firstOff(b *bmcsim.BMC, after time.Time) time.Time {
	evs, err := b.Log()
	if err != nil {
		return time.Time{}
	}
	for _, e := range evs {
		if e.Action == bmcsim.ActionOff && e.Time.After(after) {
			return e.Time
		}
	}
	return time.Time{}
}

// since keeps the migrations Nova created after t (less 2 s: Nova's clock has no zone,
// and its resolution is the database's).
func since(migs []nova.Migration, t time.Time) []nova.Migration {
	var out []nova.Migration
	for _, m := range migs {
		if at, err := parseNovaTime(m.CreatedAt); err == nil && !at.Before(t.Add(-2*time.Second).UTC()) {
			out = append(out, m)
		}
	}
	return out
}
