package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/novaha/novaha/lib/nova"
	sandboxpkg "github.com/novaha/novaha/test/nova"
)

// fenceEvacuate is the Python agent whose serial loop NovaEvacuate replaces.
const fenceEvacuate = "/usr/sbin/fence_evacuate"

// evacuateSuite evacuates NOVA_BENCH_SERVERS (100) servers off one crashed, fenced
// host of the real Nova sandbox (test/nova, NOVA_SANDBOX_DIR), once with NovaEvacuate's
// controller and once with fence_evacuate's serial loop (no_shared_storage=1: with
// its default onSharedStorage at microversion 2.11 every instance ends in ERROR on the
// sandbox), the other compute hosts as destinations. The figure is Nova's own: from the
// first evacuation migration created to the last one done. Each run starts from fresh
// servers on a healthy host, and leaves the host back in service and the servers deleted.
// It takes about 15 minutes: run it alone (-suite evacuate).
func evacuateSuite(ctx context.Context, bin string, _ int) (suite, error) {
	ours := filepath.Join(bin, "NovaEvacuate")
	if _, err := os.Stat(ours); err != nil {
		return suite{}, fmt.Errorf("%s: build the agents first (make build)", ours)
	}
	n := 100
	if v := os.Getenv("NOVA_BENCH_SERVERS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			return suite{}, fmt.Errorf("NOVA_BENCH_SERVERS=%q: not a positive number", v)
		}
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
	creds := &sandbox{}
	if err := creds.readCredentials(sb.CloudsYAML); err != nil {
		c.Close()
		return suite{}, err
	}
	theirs, cleanup, err := patchedPython(fenceEvacuate)
	var note string
	if err != nil {
		note = "fence_evacuate: " + err.Error() + ": no comparison"
	}
	host := sb.Computes[0]
	e := &evacBench{sb: sb, c: c, host: host, servers: n}
	setup := fmt.Sprintf("real Nova (test/nova/sandbox, up to %s): %d servers off %s, destinations %s",
		c.MaxMicroversion(), n, host, strings.Join(sb.Computes[1:], ", "))
	report := func(ctx context.Context, w io.Writer) error {
		var results []evacResult
		r, err := e.run(ctx, "NovaEvacuate", func(ctx context.Context, dir string) (func(), error) {
			return e.startOurs(ctx, ours, dir)
		})
		if err != nil {
			return err
		}
		results = append(results, r)
		if theirs != "" {
			stdin := strings.Join([]string{"action=off", "plug=" + host, "auth_url=" + creds.authURL, "login=" + creds.username,
				"passwd=" + creds.password, "tenant_name=" + creds.project, "endpoint_type=" + creds.endpoint,
				"no_shared_storage=1"}, "\n") + "\n"
			r, err := e.run(ctx, "fence_evacuate", func(ctx context.Context, _ string) (func(), error) {
				cmd := exec.CommandContext(ctx, theirs)
				cmd.Env = append(os.Environ(), "PYTHONWARNINGS=ignore")
				cmd.Stdin = strings.NewReader(stdin)
				out, err := cmd.CombinedOutput()
				if err != nil {
					return nil, fmt.Errorf("fence_evacuate: %v: %s", err, lastLines(string(out), 3))
				}
				return func() {}, nil
			})
			if err != nil {
				return err
			}
			results = append(results, r)
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "evacuation\tagent\tfirst request to last done\tstart to all ACTIVE\tmoved\tnot ACTIVE elsewhere\tevacuated twice")
		for _, r := range results {
			fmt.Fprintf(tw, "%d servers off %s\t%s\t%.1f s\t%.1f s\t%d\t%d\t%d\n", n, host, r.agent, r.span.Seconds(), r.wall.Seconds(),
				r.moved, r.stranded, r.twice)
		}
		tw.Flush()
		if len(results) == 2 && results[0].span > 0 {
			fmt.Fprintf(w, "fence_evacuate / NovaEvacuate: %.2fx\n", results[1].span.Seconds()/results[0].span.Seconds())
		}
		return nil
	}
	stop := func() {
		c.Close()
		cleanup()
	}
	return suite{setup: setup, note: note, report: report, stop: stop}, nil
}

type evacBench struct {
	sb      *sandboxpkg.Sandbox
	c       *nova.Client
	host    string
	servers int
}

type evacResult struct {
	agent                  string
	span, wall             time.Duration
	moved, stranded, twice int
}

// startOurs starts NovaEvacuate as Pacemaker would and returns how to stop it.
func (e *evacBench) startOurs(ctx context.Context, bin, dir string) (func(), error) {
	env := []string{"PATH=" + os.Getenv("PATH"), "OCF_ROOT=/usr/lib/ocf", "OCF_RESOURCE_INSTANCE=bench", "HA_RSCTMP=" + dir,
		"OCF_RESKEY_cloud=" + e.sb.Cloud, "OCF_RESKEY_clouds_yaml=" + e.sb.CloudsYAML, "OCF_RESKEY_instance_selection=all",
		"OCF_RESKEY_stock_evacuate=0", "OCF_RESKEY_token_cache=0"}
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
	return func() { _ = run("stop") }, nil
}

// run is one evacuation: fresh servers on the host, the host crashed and fenced,
// evacuate started, Nova watched until every server's evacuation is done; then the
// host is brought back and the servers deleted.
func (e *evacBench) run(ctx context.Context, agent string, evacuate func(context.Context, string) (func(), error)) (evacResult, error) {
	r := evacResult{agent: agent}
	if err := e.restore(ctx); err != nil {
		return r, err
	}
	prefix := fmt.Sprintf("bench%s%d", strings.ToLower(agent[:4]), time.Now().Unix())
	fmt.Fprintf(os.Stderr, "bench: %s: booting %d servers on %s\n", agent, e.servers, e.host)
	servers, err := e.sb.Seed(ctx, sandboxpkg.SeedOptions{Servers: e.servers, Prefix: prefix, Hosts: []string{e.host}})
	if err != nil {
		return r, err
	}
	defer func() {
		if err := e.restore(context.Background()); err != nil {
			fmt.Fprintf(os.Stderr, "bench: restoring %s: %v\n", e.host, err)
		}
		if err := e.sb.Unseed(context.Background(), prefix); err != nil {
			fmt.Fprintf(os.Stderr, "bench: deleting the servers: %v\n", err)
		}
	}()
	ids := map[string]bool{}
	for _, s := range servers {
		ids[s.ID] = true
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
	dir, err := os.MkdirTemp("", "novaha-bench-evac")
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(dir)
	fmt.Fprintf(os.Stderr, "bench: %s: evacuating\n", agent)
	t0 := time.Now()
	stop, err := evacuate(ctx, dir)
	if err != nil {
		return r, err
	}
	defer stop()
	// Watch the migrations only: polling the servers would slow Nova down.
	deadline := time.Now().Add(15 * time.Minute)
	var latest map[string]nova.Migration
	for {
		migs, err := e.c.ListMigrations(ctx, nova.ListMigrationsOpts{SourceCompute: e.host, MigrationType: nova.MigrationEvacuation})
		if err != nil {
			return r, err
		}
		latest = map[string]nova.Migration{}
		count := map[string]int{}
		var first, last time.Time
		ended := 0
		for _, m := range migs {
			if !ids[m.InstanceUUID] {
				continue
			}
			count[m.InstanceUUID]++
			if p, ok := latest[m.InstanceUUID]; !ok || m.CreatedAt.After(p.CreatedAt) {
				latest[m.InstanceUUID] = m
			}
			if first.IsZero() || m.CreatedAt.Before(first) {
				first = m.CreatedAt
			}
		}
		for _, m := range latest {
			switch m.Status {
			case "done", "completed", "failed", "error":
				ended++
				if m.UpdatedAt.After(last) {
					last = m.UpdatedAt
				}
			}
		}
		if ended == len(ids) {
			r.wall = time.Since(t0)
			r.span = last.Sub(first)
			for _, k := range count {
				if k > 1 {
					r.twice++
				}
			}
			break
		}
		if time.Now().After(deadline) {
			return r, fmt.Errorf("%s: %d of %d evacuations ended after 15 min", agent, ended, len(ids))
		}
		time.Sleep(time.Second)
	}
	list, err := e.c.ListServers(ctx, nova.ListServersOpts{AllTenants: true})
	if err != nil {
		return r, err
	}
	for _, s := range list {
		if !ids[s.ID] {
			continue
		}
		if s.Status == "ACTIVE" && s.Host != e.host && s.Host != "" {
			r.moved++
		} else {
			r.stranded++
		}
	}
	fmt.Fprintf(os.Stderr, "bench: %s: %d moved in %.1f s\n", agent, r.moved, r.span.Seconds())
	return r, nil
}

// restore brings the host back to service: nova-compute running (it marks its done
// evacuations completed, without which Nova refuses to lift the force-down), the
// force-down lifted, enabled once up.
func (e *evacBench) restore(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if err := e.sb.StartCompute(ctx, e.host); err != nil {
		return err
	}
	for {
		svc, err := nova.ComputeService(ctx, e.c, e.host)
		if err != nil {
			return err
		}
		var u nova.ServiceUpdate
		switch {
		case svc.ForcedDown:
			u.ForcedDown = nova.LiftForceDown
		case !svc.Up():
		case !svc.Enabled():
			u.Status = "enabled"
		default:
			return nil
		}
		if u != (nova.ServiceUpdate{}) {
			if _, err := e.c.UpdateService(ctx, svc, u); err != nil && nova.StatusCode(err) != 400 {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not back in service: %w", e.host, ctx.Err())
		case <-time.After(time.Second):
		}
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
