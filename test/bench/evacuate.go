package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/novaha/novaha/lib/nova"
	sandboxpkg "github.com/novaha/novaha/test/nova"
)

// fenceEvacuate is the Python agent whose serial loop NovaEvacuate replaces.
const fenceEvacuate = "/usr/sbin/fence_evacuate"

// benchReason marks the compute hosts the bench disables to leave k destinations.
const benchReason = "novaha-bench: not a destination in this run"

// evacuateSuite evacuates NOVA_BENCH_SERVERS (100) servers off one crashed, fenced host
// of the real Nova sandbox (test/nova, NOVA_SANDBOX_DIR) to k destination hosts, for each
// k of NOVA_BENCH_DESTINATIONS (default "2,4", those the sandbox has: start it with
// NOVA_SANDBOX_COMPUTES=5 for 4), with the other hosts disabled. Three runs per k:
//
//   - spread: the reference, the limit of what Nova can do here: every request at once
//     (16 in flight), the targets given explicitly and spread evenly over the
//     destinations, sent the moment the host is fenced;
//   - NovaEvacuate: the controller started as Pacemaker starts it before the host fails,
//     so that its reaction to the fencing counts;
//   - fence_evacuate: the stock agent's serial loop, run once the host is fenced
//     (no_shared_storage=1: with its default onSharedStorage at microversion 2.11 every
//     instance ends in ERROR on the sandbox).
//
// Then one run with priorities (NOVA_BENCH_PRIORITY "high/total", default "6/30"):
// NovaEvacuate alone, the first servers given novaha:priority=10, checked to be all
// done before any other's evacuation was created.
//
// The figures are Nova's own (its migration records), so no agent's start-up counts:
// first request to last done; and, on this clock, from the fencing to the first listing
// that shows a request (polled every 200 ms). Each run starts from fresh
// servers on a healthy host, and leaves the host back in service, the other hosts
// enabled and the servers deleted. It takes about 40 minutes: run it alone, on an idle
// machine (-suite evacuate). NOVA_BENCH_AGENTS (e.g. "NovaEvacuate,spread") runs only
// some; NOVA_BENCH_PARAMS ("per_destination=4") gives NovaEvacuate more parameters.
func evacuateSuite(ctx context.Context, bin string, _ int) (suite, error) {
	ours := filepath.Join(bin, "NovaEvacuate")
	if _, err := os.Stat(ours); err != nil {
		return suite{}, fmt.Errorf("%s: build the agents first (make build)", ours)
	}
	n, err := envInt("NOVA_BENCH_SERVERS", 100)
	if err != nil {
		return suite{}, err
	}
	high, total, err := priorityMix(os.Getenv("NOVA_BENCH_PRIORITY"))
	if err != nil {
		return suite{}, err
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	sb, err := sandboxpkg.Ensure(sctx, sandboxpkg.Options{Log: os.Stderr})
	if err != nil {
		return suite{}, fmt.Errorf("the Nova sandbox: %w", err)
	}
	c, err := nova.Dial(sctx, nova.Config{Cloud: sb.Cloud, CloudsFile: sb.CloudsYAML})
	if err != nil {
		return suite{}, fmt.Errorf("the Nova sandbox does not answer: %w", err)
	}
	admin, err := sb.Client(sctx)
	if err != nil {
		c.Close()
		return suite{}, err
	}
	creds := &sandbox{}
	if err := creds.readCredentials(sb.CloudsYAML); err != nil {
		c.Close()
		return suite{}, err
	}
	host := sb.Computes[0]
	others := sb.Computes[1:]
	ks, err := destinationCounts(os.Getenv("NOVA_BENCH_DESTINATIONS"), len(others))
	if err != nil {
		c.Close()
		return suite{}, err
	}
	theirs, cleanup, err := patchedPython(fenceEvacuate)
	var note string
	if err != nil {
		note = "fence_evacuate: " + err.Error() + ": no comparison"
	}
	e := &evacBench{sb: sb, c: c, admin: admin, host: host, others: others}
	setup := fmt.Sprintf("real Nova (test/nova/sandbox, up to %s, %d compute hosts): %d servers off %s to %v destination hosts",
		c.MaxMicroversion(), len(sb.Computes), n, host, ks)

	spread := evacAgent{name: "spread (reference)", afterFence: e.spread}
	novaEvacuate := evacAgent{name: "NovaEvacuate", before: func(ctx context.Context, dir string, dests []string) (func(), error) {
		return e.startOurs(ctx, ours, dir)
	}}
	agents := []evacAgent{spread, novaEvacuate}
	if theirs != "" {
		stdin := strings.Join([]string{"action=off", "plug=" + host, "auth_url=" + creds.authURL, "login=" + creds.username,
			"passwd=" + creds.password, "tenant_name=" + creds.project, "endpoint_type=" + creds.endpoint,
			"no_shared_storage=1"}, "\n") + "\n"
		agents = append(agents, evacAgent{name: "fence_evacuate", afterFence: func(ctx context.Context, _ []string, _ []sandboxpkg.Server) error {
			cmd := exec.CommandContext(ctx, theirs)
			cmd.Env = append(os.Environ(), "PYTHONWARNINGS=ignore")
			cmd.Stdin = strings.NewReader(stdin)
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("fence_evacuate: %v: %s", err, lastLines(string(out), 3))
			}
			return nil
		}})
	}

	if v := os.Getenv("NOVA_BENCH_AGENTS"); v != "" {
		keep := strings.Split(v, ",")
		agents = slices.DeleteFunc(agents, func(a evacAgent) bool { return !slices.Contains(keep, strings.Fields(a.name)[0]) })
		if len(agents) == 0 {
			c.Close()
			cleanup()
			return suite{}, fmt.Errorf("NOVA_BENCH_AGENTS=%q: none of spread, NovaEvacuate, fence_evacuate", v)
		}
	}
	report := func(ctx context.Context, w io.Writer) error {
		var results []evacResult
		for _, k := range ks {
			for _, a := range agents {
				r, err := e.run(ctx, a, others[:k], n, 0)
				if err != nil {
					return fmt.Errorf("%s, %d destinations: %w", a.name, k, err)
				}
				results = append(results, r)
			}
		}
		var prio *evacResult
		if high > 0 {
			r, err := e.run(ctx, novaEvacuate, others[:ks[0]], total, high)
			if err != nil {
				return fmt.Errorf("NovaEvacuate with priorities: %w", err)
			}
			prio = &r
		}
		printEvacResults(w, results, prio)
		return nil
	}
	stop := func() {
		c.Close()
		cleanup()
	}
	return suite{setup: setup, note: note, report: report, stop: stop}, nil
}

func envInt(name string, def int) (int, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("%s=%q: not a positive number", name, v)
	}
	return n, nil
}

// priorityMix parses "high/total" ("0/0" or "off" skips the priority run).
func priorityMix(v string) (high, total int, err error) {
	switch v {
	case "":
		return 6, 30, nil
	case "off", "0/0":
		return 0, 0, nil
	}
	a, b, ok := strings.Cut(v, "/")
	high, err1 := strconv.Atoi(a)
	total, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || high < 1 || total <= high {
		return 0, 0, fmt.Errorf("NOVA_BENCH_PRIORITY=%q: want high/total, 0 < high < total", v)
	}
	return high, total, nil
}

// destinationCounts parses NOVA_BENCH_DESTINATIONS ("2,4"), keeping the counts the
// sandbox has hosts for; an explicit count it cannot offer is an error.
func destinationCounts(v string, have int) ([]int, error) {
	explicit := v != ""
	if !explicit {
		v = "2,4"
	}
	var ks []int
	for _, f := range strings.Split(v, ",") {
		k, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || k < 1 {
			return nil, fmt.Errorf("NOVA_BENCH_DESTINATIONS=%q: not a list of positive numbers", v)
		}
		if k > have {
			if explicit {
				return nil, fmt.Errorf("NOVA_BENCH_DESTINATIONS: %d destinations, but the sandbox has %d hosts besides the failed one (NOVA_SANDBOX_COMPUTES)", k, have)
			}
			continue
		}
		ks = append(ks, k)
	}
	if len(ks) == 0 {
		return nil, fmt.Errorf("the sandbox has %d compute host(s) besides the failed one: too few to evacuate to", have)
	}
	return ks, nil
}

type evacBench struct {
	sb     *sandboxpkg.Sandbox
	c      *nova.Client
	admin  *sandboxpkg.Client
	host   string
	others []string
}

// evacAgent is one way of evacuating: before runs before the host fails (a controller
// that watches), afterFence once it is fenced (an agent Pacemaker would run then).
type evacAgent struct {
	name       string
	before     func(ctx context.Context, dir string, dests []string) (stop func(), err error)
	afterFence func(ctx context.Context, dests []string, servers []sandboxpkg.Server) error
}

type evacResult struct {
	agent         string
	dests, n      int
	span          time.Duration // first evacuation created to last one done
	react         time.Duration // host fenced to the first listing that shows an evacuation
	wall          time.Duration // host fenced to every evacuation ended, on this clock
	perDest       map[string]int
	moved         int
	stranded      int // not ACTIVE on another host at the end
	twice         int // evacuated more than once
	high          int // priority run: high-priority servers
	highLastDone  time.Time
	lowFirstStart time.Time
	// The barrier, checked on every listing while low-priority evacuations exist.
	barrierChecked, barrierBroken bool
}

// startOurs starts NovaEvacuate as Pacemaker would and returns how to stop it.
func (e *evacBench) startOurs(ctx context.Context, bin, dir string) (func(), error) {
	env := []string{"PATH=" + os.Getenv("PATH"), "OCF_ROOT=/usr/lib/ocf", "OCF_RESOURCE_INSTANCE=bench", "HA_RSCTMP=" + dir,
		"OCF_RESKEY_cloud=" + e.sb.Cloud, "OCF_RESKEY_clouds_yaml=" + e.sb.CloudsYAML, "OCF_RESKEY_instance_selection=all",
		"OCF_RESKEY_stock_evacuate=0", "OCF_RESKEY_token_cache=0", "OCF_RESKEY_state_dir=" + dir}
	// NOVA_BENCH_PARAMS: more parameters, "per_destination=4,interval=2s".
	for _, kv := range strings.Split(os.Getenv("NOVA_BENCH_PARAMS"), ",") {
		if k, v, ok := strings.Cut(strings.TrimSpace(kv), "="); ok {
			env = append(env, "OCF_RESKEY_"+k+"="+v)
		}
	}
	run := func(action string) error {
		cmd := exec.CommandContext(ctx, bin, action)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("NovaEvacuate %s: %v: %s", action, err, lastLines(string(out), 3))
		}
		return nil
	}
	if err := run("start"); err != nil {
		return nil, err
	}
	return func() {
		if err := run("stop"); err != nil {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		}
		if b, err := os.ReadFile(filepath.Join(dir, "NovaEvacuate-bench.log")); err == nil {
			// Kept for a look at its decisions: the run's directory goes.
			kept := filepath.Join(os.TempDir(), fmt.Sprintf("novaha-bench-NovaEvacuate-%d.log", time.Now().Unix()))
			if err := os.WriteFile(kept, b, 0o644); err != nil {
				kept = err.Error()
			}
			fmt.Fprintf(os.Stderr, "bench: NovaEvacuate's log (%d lines): %s\n", strings.Count(string(b), "\n"), kept)
		}
	}, nil
}

// spread is the reference: every evacuation requested at once (16 in flight), each to
// an explicit destination, the servers dealt evenly over the destinations.
func (e *evacBench) spread(ctx context.Context, dests []string, servers []sandboxpkg.Server) error {
	work := make(chan int)
	errs := make(chan error, len(servers))
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
				err := e.c.Evacuate(rctx, servers[i].ID, nova.EvacuateOpts{Host: dests[i%len(dests)]})
				cancel()
				if err != nil {
					errs <- fmt.Errorf("evacuate %s: %w", servers[i].ID, err)
				}
			}
		}()
	}
	for i := range servers {
		work <- i
	}
	close(work)
	wg.Wait()
	close(errs)
	return <-errs // the first, if any
}

// run is one evacuation of n fresh servers on the host, high of them with priority 10,
// to dests (the other hosts disabled meanwhile): the host crashed and fenced, the agent
// run, Nova watched until every server's evacuation has ended; then the host is brought
// back, the other hosts enabled and the servers deleted.
func (e *evacBench) run(ctx context.Context, a evacAgent, dests []string, n, high int) (evacResult, error) {
	r := evacResult{agent: a.name, dests: len(dests), n: n, high: high}
	if err := e.sb.Restore(ctx, e.host); err != nil {
		return r, err
	}
	defer func() {
		if err := e.sb.Restore(context.Background(), e.host); err != nil {
			fmt.Fprintf(os.Stderr, "bench: restoring %s: %v\n", e.host, err)
		}
		if err := e.setDestinations(context.Background(), e.others); err != nil {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		}
	}()
	if err := e.setDestinations(ctx, dests); err != nil {
		return r, err
	}
	prefix := fmt.Sprintf("bench%d", time.Now().UnixNano())
	fmt.Fprintf(os.Stderr, "bench: %s, %d destinations: booting %d servers on %s\n", a.name, len(dests), n, e.host)
	servers, err := e.sb.Seed(ctx, sandboxpkg.SeedOptions{Servers: n, Prefix: prefix, Hosts: []string{e.host}})
	if err != nil {
		return r, err
	}
	defer func() {
		if err := e.sb.Unseed(context.Background(), prefix); err != nil {
			fmt.Fprintf(os.Stderr, "bench: deleting the servers: %v\n", err)
		}
	}()
	ids := map[string]bool{}
	highIDs := map[string]bool{}
	for i, s := range servers {
		ids[s.ID] = true
		if i < high {
			highIDs[s.ID] = true
			body := map[string]any{"metadata": map[string]string{"novaha:priority": "10"}}
			if err := e.admin.Compute(ctx, "POST", "/servers/"+s.ID+"/metadata", "", body, nil); err != nil {
				return r, fmt.Errorf("setting %s's priority: %w", s.ID, err)
			}
		}
	}
	dir, err := os.MkdirTemp("", "novaha-bench-evac")
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(dir)
	if a.before != nil {
		stop, err := a.before(ctx, dir, dests)
		if err != nil {
			return r, err
		}
		defer stop()
	}
	if err := e.sb.KillCompute(ctx, e.host); err != nil {
		return r, err
	}
	svc, err := nova.ComputeService(ctx, e.c, e.host)
	if err != nil {
		return r, err
	}
	if _, err := nova.Fence(ctx, e.c, svc, time.Now()); err != nil {
		return r, err
	}
	fenced := time.Now()
	fmt.Fprintf(os.Stderr, "bench: %s, %d destinations: %s fenced, evacuating\n", a.name, len(dests), e.host)
	agentErr := make(chan error, 1)
	if a.afterFence != nil {
		go func() { agentErr <- a.afterFence(ctx, dests, servers) }()
	} else {
		agentErr <- nil
	}
	// Watch the migrations only: polling the servers would slow Nova down.
	deadline := time.Now().Add(20 * time.Minute)
	for {
		migs, err := e.c.ListMigrations(ctx, nova.ListMigrationsOpts{SourceCompute: e.host, MigrationType: nova.MigrationEvacuation})
		if err != nil {
			return r, err
		}
		if r.react == 0 && len(latestOf(migs, ids)) > 0 {
			r.react = time.Since(fenced) // an upper bound: the first listing that shows one
		}
		if high > 0 {
			checkBarrier(&r, migs, ids, highIDs)
		}
		if e.measure(&r, migs, ids, highIDs) {
			r.wall = time.Since(fenced)
			break
		}
		select {
		case err := <-agentErr:
			if err != nil {
				return r, err
			}
			agentErr = nil // done; a nil channel never fires again
		default:
		}
		if time.Now().After(deadline) {
			return r, fmt.Errorf("evacuations not ended after 20 min")
		}
		if r.react == 0 || high > 0 {
			time.Sleep(200 * time.Millisecond) // the reaction time, the barrier: watched closely
		} else {
			time.Sleep(time.Second)
		}
	}
	if agentErr != nil {
		if err := <-agentErr; err != nil {
			return r, err
		}
	}
	list, err := e.c.ListServers(ctx, nova.ListServersOpts{AllTenants: true})
	if err != nil {
		return r, err
	}
	for _, s := range list {
		if !ids[s.ID] {
			continue
		}
		if s.Status == "ACTIVE" && s.Host != e.host && slices.Contains(dests, s.Host) {
			r.moved++
		} else {
			r.stranded++
		}
	}
	fmt.Fprintf(os.Stderr, "bench: %s, %d destinations: %d moved in %.1f s, first request %.1f s after the fencing\n",
		a.name, len(dests), r.moved, r.span.Seconds(), r.react.Seconds())
	return r, nil
}

// checkBarrier looks at one listing of the migrations (a snapshot of Nova's table): if
// it shows a low-priority server's evacuation while a high-priority one has not ended,
// the barrier was broken. Nova's timestamps are whole seconds, too coarse for this.
func checkBarrier(r *evacResult, migs []nova.Migration, ids, highIDs map[string]bool) {
	lowSeen := false
	highOpen := 0
	ended := map[string]bool{}
	for _, m := range latestOf(migs, ids) {
		switch m.Status {
		case "done", "completed", "failed", "error":
			ended[m.InstanceUUID] = true
		}
	}
	for id := range ids {
		if highIDs[id] && !ended[id] {
			highOpen++
		}
	}
	for _, m := range migs {
		if ids[m.InstanceUUID] && !highIDs[m.InstanceUUID] {
			lowSeen = true
		}
	}
	if lowSeen {
		r.barrierChecked = true
		if highOpen > 0 {
			r.barrierBroken = true
		}
	}
}

// latestOf is each server's latest evacuation among migs, for the servers ids.
func latestOf(migs []nova.Migration, ids map[string]bool) map[string]nova.Migration {
	latest := map[string]nova.Migration{}
	for _, m := range migs {
		if !ids[m.InstanceUUID] {
			continue
		}
		if p, ok := latest[m.InstanceUUID]; !ok || m.CreatedAt.After(p.CreatedAt) || (m.CreatedAt.Equal(p.CreatedAt) && m.ID > p.ID) {
			latest[m.InstanceUUID] = m
		}
	}
	return latest
}

// measure fills r from the migrations of the servers ids and reports whether every one
// of them has an evacuation that ended.
func (e *evacBench) measure(r *evacResult, migs []nova.Migration, ids, highIDs map[string]bool) bool {
	latest := latestOf(migs, ids)
	count := map[string]int{}
	var first time.Time
	var lowFirst time.Time
	for _, m := range migs {
		if !ids[m.InstanceUUID] {
			continue
		}
		count[m.InstanceUUID]++
		if first.IsZero() || m.CreatedAt.Before(first) {
			first = m.CreatedAt
		}
		if !highIDs[m.InstanceUUID] && (lowFirst.IsZero() || m.CreatedAt.Before(lowFirst)) {
			lowFirst = m.CreatedAt
		}
	}
	var last, highLast time.Time
	ended := 0
	for id, m := range latest {
		switch m.Status {
		case "done", "completed", "failed", "error":
			ended++
			if m.UpdatedAt.After(last) {
				last = m.UpdatedAt
			}
			if highIDs[id] && m.UpdatedAt.After(highLast) {
				highLast = m.UpdatedAt
			}
		}
	}
	if ended < len(ids) {
		return false
	}
	r.span = last.Sub(first)
	r.highLastDone, r.lowFirstStart = highLast, lowFirst
	r.perDest = map[string]int{}
	for _, m := range latest {
		r.perDest[m.DestCompute]++
	}
	for _, k := range count {
		if k > 1 {
			r.twice++
		}
	}
	return true
}

// setDestinations enables dests and disables the bench's other candidate hosts (never
// the failed host, which restore handles).
func (e *evacBench) setDestinations(ctx context.Context, dests []string) error {
	for _, h := range e.others {
		svc, err := nova.ComputeService(ctx, e.c, h)
		if err != nil {
			return err
		}
		var u nova.ServiceUpdate
		switch want := slices.Contains(dests, h); {
		case want && !svc.Enabled():
			if svc.DisabledReason != benchReason {
				return fmt.Errorf("%s is disabled by someone else (%q): not a destination the bench may use", h, svc.DisabledReason)
			}
			u.Status = "enabled"
		case !want && svc.Enabled():
			u.Status, u.DisabledReason = "disabled", benchReason
		default:
			continue
		}
		if _, err := e.c.UpdateService(ctx, svc, u); err != nil {
			return fmt.Errorf("%s: %w", h, err)
		}
	}
	return nil
}

// printEvacResults prints the runs, then each count's ratios against the reference and
// the serial loop, and the priority run's verdict.
func printEvacResults(w io.Writer, results []evacResult, prio *evacResult) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "servers\tdestinations\tagent\tfirst request to last done\tfenced to first request seen\tper destination\tmoved\tnot ACTIVE elsewhere\tevacuated twice")
	row := func(r evacResult) {
		fmt.Fprintf(tw, "%d\t%d\t%s\t%.1f s\t%.1f s\t%s\t%d\t%d\t%d\n", r.n, r.dests, r.agent, r.span.Seconds(), r.react.Seconds(),
			split(r.perDest), r.moved, r.stranded, r.twice)
	}
	for _, r := range results {
		row(r)
	}
	if prio != nil {
		row(*prio)
	}
	tw.Flush()
	byKey := map[string]evacResult{}
	var ks []int
	for _, r := range results {
		byKey[fmt.Sprintf("%d/%s", r.dests, r.agent)] = r
		if !slices.Contains(ks, r.dests) {
			ks = append(ks, r.dests)
		}
	}
	for _, k := range ks {
		ours, ok := byKey[fmt.Sprintf("%d/NovaEvacuate", k)]
		if !ok || ours.span <= 0 {
			continue
		}
		line := fmt.Sprintf("%d destinations: NovaEvacuate", k)
		if ref, ok := byKey[fmt.Sprintf("%d/spread (reference)", k)]; ok && ref.span > 0 {
			line += fmt.Sprintf(" = %.2fx the spread limit", ours.span.Seconds()/ref.span.Seconds())
		}
		if serial, ok := byKey[fmt.Sprintf("%d/fence_evacuate", k)]; ok && serial.span > 0 {
			line += fmt.Sprintf(", %.2fx faster than fence_evacuate", serial.span.Seconds()/ours.span.Seconds())
		}
		fmt.Fprintln(w, line)
	}
	if prio != nil {
		verdict := "every high-priority server's evacuation was done in every listing that showed a low-priority one"
		switch {
		case prio.barrierBroken:
			verdict = "NOT MET: a listing showed a low-priority evacuation while a high-priority one had not ended"
		case !prio.barrierChecked:
			verdict = "not checked: no listing showed a low-priority evacuation"
		}
		fmt.Fprintf(w, "priorities (%d of %d servers high): last high done %s, first low created %s: %s\n", prio.high, prio.n,
			prio.highLastDone.Format("15:04:05.000"), prio.lowFirstStart.Format("15:04:05.000"), verdict)
	}
}

// split prints per-destination counts as "compute2:50 compute3:50".
func split(m map[string]int) string {
	hosts := make([]string, 0, len(m))
	for h := range m {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	parts := make([]string, len(hosts))
	for i, h := range hosts {
		parts[i] = fmt.Sprintf("%s:%d", h, m[h])
	}
	return strings.Join(parts, " ")
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
