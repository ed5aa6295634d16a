package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/novaha/novaha/lib/nova"
	sandbox "github.com/novaha/novaha/test/nova"
)

// TestRealNovaEvacuation runs the agent against the real Nova of test/nova (gated by
// NOVA_SANDBOX_TESTS=1; wrap it in `flock /tmp/novaha-nova.lock`): servers on compute1,
// compute1 crashes (kill -9 of its nova-compute) and is fenced as fence_nova fences it,
// the controller runs, and every server must end ACTIVE on another host, evacuated
// exactly once, and compute1 marked evacuated. compute1 is then restored (nova-compute
// started, force-down lifted, enabled) and the servers deleted.
func TestRealNovaEvacuation(t *testing.T) {
	s := sandbox.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	const host = "compute1"
	c, err := nova.Dial(ctx, nova.Config{Cloud: s.Cloud, CloudsFile: s.CloudsYAML})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := s.Restore(ctx, host); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Restore(context.Background(), host); err != nil {
			t.Error(err)
		}
	})

	prefix := fmt.Sprintf("nevac%d", time.Now().Unix())
	servers, err := s.Seed(ctx, sandbox.SeedOptions{Servers: 4, Prefix: prefix, Hosts: []string{host}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Unseed(context.Background(), prefix); err != nil {
			t.Errorf("unseed: %v", err)
		}
	})

	if err := s.KillCompute(ctx, host); err != nil {
		t.Fatal(err)
	}
	svc, err := nova.ComputeService(ctx, c, host)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nova.Fence(ctx, c, svc, time.Now()); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	// The controller evacuates every instance on the host, ours or not: a server another
	// test left on compute1 once made the marker say moved=5 for our 4. Take what is on
	// the host now as the expectation, and name any stranger so it can be traced.
	onHost, err := c.ListServers(ctx, nova.ListServersOpts{Host: host, AllTenants: true})
	if err != nil {
		t.Fatal(err)
	}
	ours := map[string]bool{}
	for _, sv := range servers {
		ours[sv.ID] = true
	}
	for _, sv := range onHost {
		delete(ours, sv.ID)
	}
	if len(ours) > 0 {
		t.Fatalf("seeded servers %v are not listed on %s", ours, host)
	}
	for _, sv := range onHost {
		if sv.Name == "" || !strings.HasPrefix(sv.Name, prefix+"-") {
			t.Logf("server %s (%s, %s) was on %s before our test: it is evacuated too", sv.Name, sv.ID, sv.Status, host)
		}
	}

	dir := t.TempDir()
	b := binary{t: t, path: build.Path(t), params: map[string]string{"cloud": s.Cloud, "clouds_yaml": s.CloudsYAML,
		"state_dir": dir, "token_cache": "0", "instance_selection": "all", "stock_evacuate": "0"}}
	b.must("start", 0)
	t.Cleanup(func() {
		b.run("stop")
		if log, err := os.ReadFile(filepath.Join(dir, "NovaEvacuate-evac.log")); err == nil {
			t.Logf("controller log:\n%s", log)
		}
	})
	var marker nova.Marker
	waitFor(t, host+" marked evacuated", 5*time.Minute, func() bool {
		sv, err := nova.ComputeService(ctx, c, host)
		if err != nil {
			t.Fatal(err)
		}
		m, ok := nova.ParseMarker(sv.DisabledReason)
		marker = m
		return ok && m.Phase == nova.Evacuated
	})
	t.Logf("%d servers evacuated off %s in %s (fence to marker evacuated)", len(onHost), host, time.Since(t0).Round(100*time.Millisecond))
	b.must("monitor", 0, "OCF_RESKEY_CRM_meta_interval=10000")
	b.must("stop", 0)

	if marker.Moved != len(onHost) || marker.Failed != 0 {
		t.Errorf("marker %+v, want moved=%d failed=0", marker, len(onHost))
	}
	migs, err := c.ListMigrations(ctx, nova.ListMigrationsOpts{SourceCompute: host, MigrationType: nova.MigrationEvacuation})
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, m := range migs {
		count[m.InstanceUUID]++
	}
	list, err := c.ListServers(ctx, nova.ListServersOpts{AllTenants: true})
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]nova.Server{}
	for _, sv := range list {
		byID[sv.ID] = sv
	}
	for _, want := range onHost {
		got := byID[want.ID]
		if got.Status != "ACTIVE" || got.Host == host || got.Host == "" || got.TaskState != "" || count[want.ID] != 1 {
			t.Errorf("server %s: status %s on %q, task %q, %d evacuations; want ACTIVE elsewhere, evacuated once",
				want.Name, got.Status, got.Host, got.TaskState, count[want.ID])
		}
	}
}
