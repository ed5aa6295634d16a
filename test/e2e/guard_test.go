package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/novaha/novaha/lib/evacuation"
	"github.com/novaha/novaha/test/bmcsim"
	"github.com/novaha/novaha/test/cluster"
	"github.com/novaha/novaha/test/nova"
)

// TestTwoComputesKilledGuardHolds: two of three computes die at once, more than
// NovaEvacuate's max_fenced_percent (50). A partition or a broken control plane looks
// like that, so both hosts must be fenced (power off, forced down in Nova) but nothing
// evacuated: the mass-failure guard holds, nova-evacuate is degraded, the healthy
// compute is left alone. Then the admin guide's operator decision, raising
// max_fenced_percent to 100, must move every server once onto the healthy host and
// let both hosts return.
func TestTwoComputesKilledGuardHolds(t *testing.T) {
	if os.Getenv("NOVAHA_E2E_TESTS") != "1" {
		t.Skip("the multi-node testbed needs root and namespaces: set NOVAHA_E2E_TESTS=1 (make e2e)")
	}
	sb := nova.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*scenarioTimeout)
	defer cancel()
	tb, tc, hosts := instanceHA(ctx, t, sb, 1, nil)
	if len(hosts) != 3 {
		t.Skipf("%d compute hosts: the scenario needs 3 (2 fenced of 3 is over the guard's 50%%)", len(hosts))
	}
	victims, healthy := hosts[:2], hosts[2]

	prefix := fmt.Sprintf("e2eguard%d", time.Now().Unix())
	t.Cleanup(func() {
		if err := sb.Unseed(context.Background(), prefix); err != nil {
			t.Errorf("unseed: %v", err)
		}
	})
	servers, err := sb.Seed(ctx, nova.SeedOptions{Servers: 2 * len(victims), Prefix: prefix, Hosts: victims})
	if err != nil {
		t.Fatal(err)
	}
	onHost := map[string][]nova.Server{}
	for _, s := range servers {
		onHost[s.Host] = append(onHost[s.Host], s)
	}
	for _, v := range victims {
		if len(onHost[v]) == 0 {
			t.Fatalf("no server on %s: %+v", v, servers)
		}
	}
	t.Logf("booted %d servers: %d on %s, %d on %s", len(servers), len(onHost[victims[0]]), victims[0], len(onHost[victims[1]]), victims[1])

	st, err := tb.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ev := ActiveOn(st, "nova-evacuate"); len(ev) != 1 {
		t.Fatalf("nova-evacuate active on %v, want one controller", ev)
	}
	prevMax, err := evacuateParam(ctx, tb, "max_fenced_percent")
	if err != nil {
		t.Fatal(err)
	}
	healthyBefore := novaCompute(ctx, t, tb, healthy)
	bmcs := map[string]*bmcsim.BMC{}
	for _, h := range hosts {
		b, ok := tb.BMC(h)
		if !ok {
			t.Fatalf("no BMC for %s", h)
		}
		bmcs[h] = b
	}

	killed := time.Now()
	var timeline []string
	note := func(format string, args ...any) {
		e := fmt.Sprintf("%7.1fs  ", time.Since(killed).Seconds()) + fmt.Sprintf(format, args...)
		timeline = append(timeline, e)
		t.Log(e)
	}
	errs := make(chan error, len(victims))
	for _, v := range victims {
		go func() { errs <- tb.Kill(ctx, v) }()
	}
	for range victims {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	note("killed %s and %s", victims[0], victims[1])

	// What must hold until the operator decides: no evacuation off the dead hosts; and
	// all along: the healthy host neither powered off nor forced down.
	untouched := func(wctx context.Context) {
		if off := firstOff(bmcs[healthy], killed); !off.IsZero() {
			t.Fatalf("%s (healthy) powered off by its BMC %.1fs after the kill", healthy, off.Sub(killed).Seconds())
		}
		if svc, err := tc.ComputeService(wctx, healthy); err == nil && (svc.ForcedDown || svc.Status != "enabled") {
			t.Fatalf("%s (healthy) in Nova: %+v", healthy, svc)
		}
	}
	invariants := func(wctx context.Context) {
		untouched(wctx)
		for _, v := range victims {
			if migs, err := tc.Evacuations(wctx, v); err == nil && len(since(migs, killed)) > 0 {
				t.Fatalf("evacuation off %s while the guard should hold: %+v", v, since(migs, killed))
			}
		}
	}

	// Both fenced: the BMC's off (fence_ipmi), then forced down with fence_nova's marker;
	// and the guard seen, in the controller's status and in the monitor result Pacemaker
	// recorded (OCF_DEGRADED, 190).
	wctx, wcancel := context.WithTimeout(ctx, scenarioTimeout)
	defer wcancel()
	powerOff, forcedDown := map[string]time.Time{}, map[string]time.Time{}
	var guardFile, guardMonitor time.Time
	var guardPID int
	for len(powerOff) < len(victims) || len(forcedDown) < len(victims) || guardFile.IsZero() || guardMonitor.IsZero() {
		invariants(wctx)
		for _, v := range victims {
			if _, ok := powerOff[v]; !ok {
				if off := firstOff(bmcs[v], killed); !off.IsZero() {
					powerOff[v] = off
					note("fenced: %s's BMC powered it off (logged %.1fs after the kill)", v, off.Sub(killed).Seconds())
				}
			}
			if _, ok := forcedDown[v]; !ok {
				if svc, err := tc.ComputeService(wctx, v); err == nil && svc.ForcedDown && strings.HasPrefix(svc.DisabledReason, "novaha:fenced") {
					forcedDown[v] = time.Now()
					note("%s forced down in Nova (%s, %q)", v, svc.Status, svc.DisabledReason)
				}
			}
		}
		if guardFile.IsZero() {
			if s, err := evacuateStatus(wctx, tb); err == nil && s.Guard {
				guardFile, guardPID = time.Now(), s.PID
				note("NovaEvacuate (pid %d) guard: %s", s.PID, s.GuardReason)
			}
		}
		if guardMonitor.IsZero() {
			if rc, err := evacuateMonitorRC(wctx, tb); err == nil && rc == "190" {
				guardMonitor = time.Now()
				note("nova-evacuate's monitor recorded by Pacemaker: rc 190 (degraded)")
			}
		}
		select {
		case <-wctx.Done():
			t.Fatalf("not both fenced with the guard seen within %v: power off %v, forced down %v, guard in status %t, monitor 190 %t\n%s",
				scenarioTimeout, powerOff, forcedDown, !guardFile.IsZero(), !guardMonitor.IsZero(), strings.Join(timeline, "\n"))
		case <-time.After(time.Second):
		}
	}
	fenced := latest(forcedDown)
	for _, off := range powerOff {
		if off.After(fenced) {
			fenced = off
		}
	}

	// The guard holds: nothing evacuated for 30 s after both were fenced.
	const hold = 30 * time.Second
	for time.Since(fenced) < hold {
		invariants(wctx)
		if s, err := evacuateStatus(wctx, tb); err == nil && s.NovaOK && !s.Guard {
			t.Fatalf("the guard cleared by itself (pid %d, round %d): %+v", s.PID, s.Round, s)
		}
		select {
		case <-wctx.Done():
			t.Fatal(wctx.Err())
		case <-time.After(time.Second):
		}
	}
	invariants(wctx)
	for _, s := range servers {
		if d, err := tc.Server(wctx, s.ID); err != nil || d.Host != s.Host || d.TaskState != "" {
			t.Errorf("%s after %v of guard: %+v, %v; want it left on %s", s.Name, hold, d, err, s.Host)
		}
	}
	if s, err := evacuateStatus(wctx, tb); err == nil && s.PID != guardPID {
		t.Logf("note: the controller's pid went from %d to %d while the guard held", guardPID, s.PID)
	}
	note("guard held %v after both were fenced: no evacuation; cluster: %s", hold, describeNow(wctx, tb))

	// The operator decides the hosts are dead: let the evacuation run. At cleanup the
	// parameter is put back as configure.sh left it.
	t.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer ccancel()
		if out, err := tb.Pcs(cctx, "resource", "update", "nova-evacuate", "max_fenced_percent="+prevMax); err != nil {
			t.Errorf("putting max_fenced_percent back to %q: %v\n%s", prevMax, err, out)
		} else if now, err := evacuateParam(cctx, tb, "max_fenced_percent"); err != nil || now != prevMax {
			t.Errorf("max_fenced_percent after restoring it: %q, %v; want %q", now, err, prevMax)
		}
	})
	if out, err := tb.Pcs(ctx, "resource", "update", "nova-evacuate", "max_fenced_percent=100"); err != nil {
		t.Fatalf("raising the guard: %v\n%s", err, out)
	}
	raised := time.Now()
	note("operator: pcs resource update nova-evacuate max_fenced_percent=100")

	// The guard lifts once Pacemaker has restarted nova-evacuate with the new value:
	// seconds, unless something holds the cluster's transition back.
	lctx, lcancel := context.WithTimeout(wctx, 3*time.Minute)
	var lifted time.Time
	for lifted.IsZero() && lctx.Err() == nil {
		if s, err := evacuateStatus(lctx, tb); err == nil && s.NovaOK && !s.Guard && s.PID != guardPID {
			lifted = time.Now()
			note("guard lifted: NovaEvacuate restarted (pid %d)", s.PID)
			break
		}
		select {
		case <-lctx.Done():
		case <-time.After(time.Second):
		}
	}
	lcancel()
	if lifted.IsZero() {
		t.Errorf("the guard still holds %v after max_fenced_percent=100; cluster: %s\nDC log:\n%s",
			time.Since(raised).Round(time.Second), describeNow(wctx, tb), dcLog(wctx, tb, 40))
	}

	// Both hosts recover: every server ACTIVE elsewhere, the host back.
	type result struct {
		r   *Recovery
		err error
	}
	results := map[string]chan result{}
	for _, v := range victims {
		ch := make(chan result, 1)
		results[v] = ch
		go func() {
			r, err := WatchRecovery(wctx, tc, bmcs[v], v, onHost[v], killed, func(e string) { t.Log(v + ": " + strings.TrimSpace(e)) })
			ch <- result{r, err}
		}()
	}
	recs := map[string]*Recovery{}
	for _, v := range victims {
		res := <-results[v]
		if res.err != nil {
			t.Errorf("%v\n%s", res.err, res.r)
			continue
		}
		recs[v] = res.r
	}
	if len(recs) < len(victims) {
		t.Fatalf("not recovered; cluster: %s\nDC log:\n%s", describeNow(ctx, tb), dcLog(ctx, tb, 40))
	}
	var lastActive, back time.Time
	for _, v := range victims {
		lastActive, back = later(lastActive, recs[v].LastActive), later(back, recs[v].Back)
	}
	note("every server ACTIVE elsewhere")
	st, err = tb.WaitStatus(wctx, "nova-compute started on every compute", func(s *cluster.Status) bool {
		return sameSet(ActiveOn(s, "nova-compute"), hosts)
	})
	if err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	note("NovaCompute started on %s and %s", victims[0], victims[1])

	// Exactly one evacuation per server, the first after both power offs and after the
	// operator's decision; every server on the healthy host.
	var first time.Time
	for _, v := range victims {
		if f := checkRecovery(ctx, t, tc, v, onHost[v], hosts, recs[v]); first.IsZero() || f.Before(first) {
			first = f
		}
	}
	for _, v := range victims {
		if !powerOff[v].Before(first) {
			t.Errorf("first evacuation created at %s, not after %s's power off at %s", first.Format(time.RFC3339Nano), v, powerOff[v].UTC().Format(time.RFC3339Nano))
		}
	}
	// Nova's created_at has the database's resolution (whole seconds).
	if first.Before(raised.UTC().Truncate(time.Second)) {
		t.Errorf("first evacuation created at %s, before the guard was raised at %s", first.Format(time.RFC3339Nano), raised.UTC().Format(time.RFC3339Nano))
	}
	for _, s := range servers {
		if d, err := tc.Server(ctx, s.ID); err != nil || d.Host != healthy || d.Status != "ACTIVE" {
			t.Errorf("%s: %+v, %v; want ACTIVE on %s", s.Name, d, err, healthy)
		}
	}
	for _, h := range hosts {
		if svc, err := tc.ComputeService(ctx, h); err != nil || !Healthy(svc) || svc.DisabledReason != "" {
			t.Errorf("%s after the recovery: %+v, %v; want up, enabled, not forced down, no marker", h, svc, err)
		}
	}
	for _, v := range victims {
		if hist, err := tb.Run(ctx, tb.controller(ctx), "stonith_admin", "--history", v); err != nil || !strings.Contains(hist, "reboot of "+v+" successful") {
			t.Errorf("fencing history of %s: %v\n%s", v, err, hist)
		}
	}

	// The healthy compute: never fenced, its nova-compute the same process throughout.
	untouched(ctx)
	if p, ok := pythonNovaCompute(ctx, tb, healthy); !ok || p != healthyBefore {
		t.Errorf("%s's nova-compute: %+v before, %+v (%t) after; want the same process", healthy, healthyBefore, p, ok)
	}

	at := func(tm time.Time) string {
		if tm.IsZero() {
			return "never"
		}
		return fmt.Sprintf("%.1fs", tm.Sub(killed).Seconds())
	}
	t.Logf("timeline from the kill: fenced (BMC off) %s, forced down %s, guard in status %s, monitor 190 %s, raised %s, "+
		"guard lifted %s, first evacuation created %s, last ACTIVE %s, hosts back (up, enabled) %s, NovaCompute started %s\n%s",
		at(latest(powerOff)), at(latest(forcedDown)), at(guardFile), at(guardMonitor), at(raised), at(lifted),
		at(first), at(lastActive), at(back), at(started), strings.Join(timeline, "\n"))
}

// evacuateStatus reads NovaEvacuate's status file on the controller that has one
// (HA_RSCTMP, /run/resource-agents, is each node's own tmpfs; stop removes the file),
// the most recent if both have one.
func evacuateStatus(ctx context.Context, tb *Testbed) (evacuation.Status, error) {
	var best evacuation.Status
	var errs []string
	for _, ctl := range tb.names("controller") {
		if !tb.NodeRunning(ctx, ctl) {
			continue
		}
		out, err := tb.Run(ctx, ctl, "cat", "/run/resource-agents/NovaEvacuate-nova-evacuate.status.json")
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v: %s", ctl, err, strings.TrimSpace(out)))
			continue
		}
		var s evacuation.Status
		if err := json.Unmarshal([]byte(out), &s); err != nil {
			errs = append(errs, fmt.Sprintf("%s: status file: %v", ctl, err))
			continue
		}
		if s.Updated.After(best.Updated) {
			best = s
		}
	}
	if best.PID == 0 {
		return best, fmt.Errorf("no NovaEvacuate status on any controller: %s", strings.Join(errs, "; "))
	}
	return best, nil
}

var (
	rscOp     = regexp.MustCompile(`<lrm_rsc_op\b[^>]*>`)
	opAttr    = regexp.MustCompile(`\boperation="([^"]*)"`)
	rcAttr    = regexp.MustCompile(`\brc-code="([^"]*)"`)
	intervalA = regexp.MustCompile(`\binterval="([^"]*)"`)
)

// evacuateMonitorRC is the result of nova-evacuate's recurring monitor as Pacemaker
// recorded it in the CIB's status section: "190" if any record says degraded, "" when
// none is recorded.
func evacuateMonitorRC(ctx context.Context, tb *Testbed) (string, error) {
	out, err := tb.Run(ctx, tb.controller(ctx), "cibadmin", "--query", "--xpath", "//lrm_resource[@id='nova-evacuate']/lrm_rsc_op")
	if err != nil {
		return "", fmt.Errorf("cibadmin: %w: %s", err, out)
	}
	rc := ""
	for _, op := range rscOp.FindAllString(out, -1) {
		o, r, i := opAttr.FindStringSubmatch(op), rcAttr.FindStringSubmatch(op), intervalA.FindStringSubmatch(op)
		if o != nil && r != nil && i != nil && o[1] == "monitor" && i[1] != "0" && rc != "190" {
			rc = r[1]
		}
	}
	return rc, nil
}

var paramValue = regexp.MustCompile(`^\s*(\S+)=(\S*)\s*$`)

// evacuateParam is an instance attribute of nova-evacuate as pcs shows it, "" when
// it is not set (the agent's default).
func evacuateParam(ctx context.Context, tb *Testbed, name string) (string, error) {
	out, err := tb.Pcs(ctx, "resource", "config", "nova-evacuate")
	if err != nil {
		return "", fmt.Errorf("pcs resource config nova-evacuate: %w: %s", err, out)
	}
	for _, l := range strings.Split(out, "\n") {
		if m := paramValue.FindStringSubmatch(l); m != nil && m[1] == name {
			return m[2], nil
		}
	}
	return "", nil
}

// describeNow is describeStatus of a fresh crm_mon.
func describeNow(ctx context.Context, tb *Testbed) string {
	st, err := tb.Status(ctx)
	if err != nil {
		return err.Error()
	}
	return describeStatus(st)
}

var dcLogLine = regexp.MustCompile(`pacemaker-controld.*(Transition \d+ (aborted|\(Complete)|Initiating|Result of)`)

// dcLog is the last n lines of the DC's pacemaker.log about transitions and actions.
func dcLog(ctx context.Context, tb *Testbed, n int) string {
	st, err := tb.Status(ctx)
	if err != nil || st.DC == "" {
		return fmt.Sprintf("no DC (%v)", err)
	}
	b, err := os.ReadFile(filepath.Join(tb.Dir(), "nodes", st.DC, "root/var/log/pacemaker/pacemaker.log"))
	if err != nil {
		return err.Error()
	}
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		if dcLogLine.MatchString(l) {
			lines = append(lines, l)
		}
	}
	return tail(strings.Join(lines, "\n"), n)
}

// latest is the latest of the times.
func latest(ts map[string]time.Time) time.Time {
	var l time.Time
	for _, t := range ts {
		l = later(l, t)
	}
	return l
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
