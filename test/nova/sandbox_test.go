package nova

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	code := m.Run()
	StopIfStarted()
	os.Exit(code)
}

func TestParseOpenrc(t *testing.T) {
	env, err := parseOpenrc(`# comment
export OS_AUTH_URL=http://127.0.0.1:16000/v3
export OS_USERNAME=admin
export OS_PASSWORD="s3cret"
export OS_PROJECT_NAME=admin
`)
	if err != nil {
		t.Fatal(err)
	}
	if env["OS_PASSWORD"] != "s3cret" || env["OS_AUTH_URL"] != "http://127.0.0.1:16000/v3" {
		t.Fatalf("parsed %v", env)
	}
	if _, err := parseOpenrc("export OS_USERNAME=admin\n"); err == nil {
		t.Fatal("openrc without OS_AUTH_URL accepted")
	}
}

func TestParseServers(t *testing.T) {
	got, err := parseServers("p-1 1111 compute1 ACTIVE\np-2 2222 compute2 ACTIVE\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[1] != (Server{"p-2", "2222", "compute2", "ACTIVE"}) {
		t.Fatalf("parsed %+v", got)
	}
	if _, err := parseServers("garbage\n"); err == nil {
		t.Fatal("garbage accepted")
	}
}

// TestEvacuateCrashedHost walks the chain novaha automates, by hand, on the real Nova:
// crash compute1 (kill -9 its nova-compute), force it down, disable it, evacuate its
// servers without onSharedStorage, confirm through /os-migrations that each is ACTIVE on
// another host, then bring compute1 back (start nova-compute, lift forced_down, enable).
func TestEvacuateCrashedHost(t *testing.T) {
	s := Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	const host = "compute1"
	c, err := s.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// A failed earlier run may have left the host down: start from a healthy one, and
	// leave a healthy one behind whatever happens.
	if err := s.Restore(ctx, host); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Restore(context.Background(), host); err != nil {
			t.Error(err)
		}
	})

	prefix := fmt.Sprintf("evac%d", time.Now().Unix())
	t0 := time.Now()
	servers, err := s.Seed(ctx, SeedOptions{Servers: 3, Prefix: prefix, Hosts: []string{host}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Unseed(context.Background(), prefix); err != nil {
			t.Errorf("unseed: %v", err)
		}
	})
	t.Logf("booted %d servers on %s in %s", len(servers), host, time.Since(t0).Round(100*time.Millisecond))
	for _, srv := range servers {
		if srv.Host != host || srv.Status != "ACTIVE" {
			t.Fatalf("seeded %+v, want ACTIVE on %s", srv, host)
		}
	}

	if err := s.KillCompute(ctx, host); err != nil {
		t.Fatal(err)
	}
	svc, err := c.ComputeService(ctx, host)
	if err != nil {
		t.Fatal(err)
	}
	// Force down first (Nova otherwise refuses to evacuate until service_down_time has
	// passed), then disable.
	if svc, err = c.UpdateService(ctx, svc.ID, map[string]any{"forced_down": true}); err != nil {
		t.Fatal(err)
	}
	if !svc.ForcedDown {
		t.Fatalf("service after force-down: %+v", svc)
	}
	if svc, err = c.UpdateService(ctx, svc.ID, map[string]any{"status": "disabled", "disabled_reason": "novaha test: crashed"}); err != nil {
		t.Fatal(err)
	}
	if svc.Status != "disabled" || svc.State != "down" {
		t.Fatalf("service after disable: %+v", svc)
	}

	t1 := time.Now()
	ids := map[string]bool{}
	for _, srv := range servers {
		if err := c.Evacuate(ctx, srv.ID); err != nil {
			t.Fatalf("evacuate %s: %v", srv.Name, err)
		}
		ids[srv.ID] = true
	}
	latest := waitMigrations(ctx, t, c, host, ids, "done", "completed")
	elapsed := time.Since(t1)
	for id := range ids {
		m := latest[id]
		d, err := c.Server(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if d.Status != "ACTIVE" || d.Host == host || d.Host != m.DestCompute || d.TaskState != "" {
			t.Errorf("server %s after evacuation: %+v (migration %+v)", d.Name, d, m)
		}
	}
	t.Logf("evacuated %d servers from %s in %s (first request to last migration done)", len(ids), host, elapsed.Round(100*time.Millisecond))

	// Back to service: the restarted nova-compute marks its done evacuations completed
	// (Nova refuses to lift forced_down before that), then lift, then enable.
	t2 := time.Now()
	if err := s.StartCompute(ctx, host); err != nil {
		t.Fatal(err)
	}
	waitMigrations(ctx, t, c, host, ids, "completed")
	if _, err := c.UpdateService(ctx, svc.ID, map[string]any{"forced_down": false}); err != nil {
		t.Fatal(err)
	}
	waitServiceUp(ctx, t, c, host)
	if svc, err = c.UpdateService(ctx, svc.ID, map[string]any{"status": "enabled"}); err != nil {
		t.Fatal(err)
	}
	if svc.Status != "enabled" || svc.ForcedDown {
		t.Fatalf("service after return: %+v", svc)
	}
	t.Logf("%s back in service in %s", host, time.Since(t2).Round(100*time.Millisecond))
}

// waitMigrations polls /os-migrations until every instance in ids has an evacuation
// migration off host in one of the wanted states; "error" or "failed" fail the test.
func waitMigrations(ctx context.Context, t *testing.T, c *Client, host string, ids map[string]bool, want ...string) map[string]Migration {
	t.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		migs, err := c.Evacuations(ctx, host)
		if err != nil {
			t.Fatal(err)
		}
		latest := LatestByInstance(migs)
		ok := 0
		for id := range ids {
			m, found := latest[id]
			if !found {
				continue
			}
			if m.Status == "error" || m.Status == "failed" {
				t.Fatalf("evacuation of %s: %+v", id, m)
			}
			for _, w := range want {
				if m.Status == w {
					ok++
				}
			}
		}
		if ok == len(ids) {
			return latest
		}
		if time.Now().After(deadline) {
			t.Fatalf("evacuations from %s not %v after 5 min: %+v", host, want, latest)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func waitServiceUp(ctx context.Context, t *testing.T, c *Client, host string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		svc, err := c.ComputeService(ctx, host)
		if err != nil {
			t.Fatal(err)
		}
		if svc.State == "up" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not up after 2 min: %+v", host, svc)
		}
		time.Sleep(time.Second)
	}
}
