package evacuation_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/novaha/novaha/lib/evacuation"
	"github.com/novaha/novaha/lib/nova"
	sandbox "github.com/novaha/novaha/test/nova"
)

func TestMain(m *testing.M) {
	code := m.Run()
	sandbox.StopIfStarted()
	os.Exit(code)
}

// TestSandboxEvacuation runs the controller against the real Nova sandbox: servers on
// compute1, its nova-compute killed, the host fenced as fence_nova does; the controller
// must bring every server back ACTIVE on another host, each evacuated once, and mark
// the host evacuated. NOVAHA_EVAC_SERVERS sets the number of servers (default 6).
// Needs NOVA_SANDBOX_TESTS=1; run it under flock /tmp/novaha-nova.lock.
func TestSandboxEvacuation(t *testing.T) {
	s := sandbox.Require(t)
	n := 6
	if v, err := strconv.Atoi(os.Getenv("NOVAHA_EVAC_SERVERS")); err == nil && v > 0 {
		n = v
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	const host = "compute1"
	tc, err := s.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Restore(ctx, host); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Restore(context.Background(), host); err != nil {
			t.Error(err)
		}
	})
	for _, h := range s.Computes {
		if h == host {
			continue
		}
		if svc, err := tc.ComputeService(ctx, h); err != nil || svc.State != "up" || svc.Status != "enabled" || svc.ForcedDown {
			t.Skipf("destination %s is not healthy (%+v, %v): not testing", h, svc, err)
		}
	}

	prefix := fmt.Sprintf("ctl%d", time.Now().Unix())
	t0 := time.Now()
	servers, err := s.Seed(ctx, sandbox.SeedOptions{Servers: n, Prefix: prefix, Hosts: []string{host}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Unseed(context.Background(), prefix); err != nil {
			t.Errorf("unseed: %v", err)
		}
	})
	t.Logf("booted %d servers on %s in %s", len(servers), host, time.Since(t0).Round(100*time.Millisecond))

	c, err := nova.Dial(ctx, nova.Config{Cloud: sandbox.CloudName, CloudsFile: s.CloudsYAML})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := s.KillCompute(ctx, host); err != nil {
		t.Fatal(err)
	}
	svc, err := nova.ComputeService(ctx, c, host)
	if err != nil {
		t.Fatal(err)
	}
	fencedAt := time.Now()
	if _, err := nova.Fence(ctx, c, svc, fencedAt); err != nil {
		t.Fatal(err)
	}

	log := &syncBuffer{}
	ctl, err := evacuation.New(evacuation.Config{Nova: c,
		Log: slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- ctl.Run(runCtx) }()
	// Generous: on a loaded machine one Nova API call can take seconds, and a rebuild
	// ten times its 1.75 s (100 servers took 9 min with the load average at 10).
	deadline := time.Now().Add(time.Duration(n)*15*time.Second + 5*time.Minute)
	for {
		svc, err := nova.ComputeService(ctx, c, host)
		if err == nil && nova.StateOf(svc) == nova.StateEvacuated {
			break
		}
		if time.Now().After(deadline) {
			stop()
			<-done
			t.Fatalf("%s not evacuated in time (%+v, %v)\nlog:\n%s", host, svc, err, log.String())
		}
		time.Sleep(250 * time.Millisecond)
	}
	evacuated := time.Since(fencedAt)
	stop()
	if err := <-done; err != nil {
		t.Error(err)
	}

	migs, err := tc.Evacuations(ctx, host)
	if err != nil {
		t.Fatal(err)
	}
	doneMigs := map[string]int{}
	var first time.Time
	for _, m := range migs {
		at, _ := time.Parse("2006-01-02T15:04:05.000000", m.CreatedAt)
		if at.After(fencedAt.Add(-time.Minute)) && (first.IsZero() || at.Before(first)) {
			first = at
		}
		if m.Status == "done" {
			doneMigs[m.InstanceUUID]++
		}
	}
	on := map[string]int{}
	for _, srv := range servers {
		d, err := tc.Server(ctx, srv.ID)
		if err != nil {
			t.Fatal(err)
		}
		on[d.Host]++
		if d.Status != "ACTIVE" || d.Host == host || d.TaskState != "" {
			t.Errorf("%s after the evacuation: %+v", srv.Name, d)
		}
		if doneMigs[srv.ID] != 1 {
			t.Errorf("%s evacuated %d times", srv.Name, doneMigs[srv.ID])
		}
	}
	svc, _ = nova.ComputeService(ctx, c, host)
	t.Logf("%d servers evacuated from %s in %s (fence to marker evacuated), first request %s after the fence; spread %v; marker %q",
		n, host, evacuated.Round(100*time.Millisecond), first.Sub(fencedAt.UTC()).Round(100*time.Millisecond), on, svc.DisabledReason)
	if testing.Verbose() {
		t.Logf("log:\n%s", log.String())
	}
}
