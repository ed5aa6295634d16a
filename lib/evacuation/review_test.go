package evacuation_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/novaha/novaha/lib/evacuation"
	"github.com/novaha/novaha/lib/evacuation/fakenova"
	"github.com/novaha/novaha/lib/nova"
)

// Nova answers 404 to an evacuate request both for an unknown instance and for an
// unknown destination ("Compute host X could not be found", e.g. a compute host not
// yet mapped to its cell). The instance is still on its fenced host: it must be
// evacuated elsewhere, not given up with the host then marked evacuated.
func TestDestinationNotFoundIsNotInstanceGone(t *testing.T) {
	c := newCloud(t, 3)
	ids := c.addServers("c1", "a", 2, nil)
	c.fence("c1")
	c.f.FailEvacuate("a000", &nova.Error{Service: "Nova", Op: "evacuating a000", Status: http.StatusNotFound,
		Message: "Compute host c2 not found."})
	ctl := c.controller(t, nil)
	c.run(t, ctl, 600, c.evacuated("c1"))
	c.checkMoved(t, "c1", "ACTIVE", ids)
	m, _ := nova.ParseMarker(c.f.Service("c1").DisabledReason)
	if m.Moved != 2 || m.Failed != 0 {
		t.Errorf("marker %q, want moved=2 failed=0", c.f.Service("c1").DisabledReason)
	}
}

// A host fenced by a stock fence_compute has no marker, so no fence cycle to date its
// migrations by: an evacuation from it in an earlier failure, of an instance that has
// come back since, is history, and must not keep the instance there this time.
func TestStockHostEarlierEvacuationDoesNotKeepAnInstanceBehind(t *testing.T) {
	c := newCloud(t, 3)
	ids := c.addServers("c1", "a", 1, nil)
	stock := &fakeStock{yes: map[string]bool{}}
	returnHost := func(h string) {
		c.f.SetService(h, func(s *nova.Service) { s.ForcedDown, s.State = false, "up" })
	}
	failStock := func(h string, targets ...string) {
		c.f.Crash(h)
		c.f.ForceDown(h)
		stock.yes[h] = true
		ctl := c.controller(t, func(cfg *evacuation.Config) { cfg.Stock = stock; cfg.TargetHosts = targets })
		c.run(t, ctl, 120, func(evacuation.Status) bool { return !stock.yes[h] && c.f.Idle() })
		returnHost(h)
	}
	failStock("c1", "c2") // a000: c1 -> c2
	failStock("c2", "c1") // a000: c2 -> c1, back where it was
	if h := c.f.Server(ids[0]).Host; h != "c1" {
		t.Fatalf("a000 on %s, want c1 before the second failure of c1", h)
	}
	c.f.Crash("c1")
	c.f.ForceDown("c1")
	stock.yes["c1"] = true
	ctl := c.controller(t, func(cfg *evacuation.Config) { cfg.Stock = stock })
	c.run(t, ctl, 120, func(evacuation.Status) bool { return !stock.yes["c1"] && c.f.Idle() })
	if s := c.f.Server(ids[0]); s.Host == "c1" || s.Status != "ACTIVE" {
		t.Errorf("a000 after c1's second failure: on %s, %s; want ACTIVE elsewhere\n%s", s.Host, s.Status, c.log.String())
	}
	if got := c.f.Accepted()[ids[0]]; got != 3 {
		t.Errorf("a000: %d evacuations accepted, want 3 (one per failure)", got)
	}
}

// A server of a cell Nova cannot reach is listed with status UNKNOWN and little else
// (no metadata, no flavor, no vm_state): nothing about it can be known, so its host
// must wait for the cell, whatever the selection rule, rather than be marked evacuated
// with the instance still on it.
func TestUnknownInstanceHoldsItsHost(t *testing.T) {
	for _, sel := range []evacuation.Selection{evacuation.SelectAll, evacuation.SelectHAEnabled} {
		t.Run(string(sel), func(t *testing.T) {
			c := newCloud(t, 3)
			c.addServers("c1", "a", 2, func(i int, s *fakenova.ServerSpec) {
				s.Metadata = map[string]string{"HA_Enabled": "true"}
			})
			c.addServers("c1", "u", 1, func(i int, s *fakenova.ServerSpec) { s.Status = nova.StatusUnknown })
			c.fence("c1")
			ctl := c.controller(t, func(cfg *evacuation.Config) { cfg.Select = sel })
			for range 3600 {
				ctl.Round(context.Background())
				if c.phase("c1") == "evacuated" {
					t.Fatalf("c1 marked evacuated (%q) with an instance of an unreachable cell on it\n%s",
						c.f.Service("c1").DisabledReason, c.log.String())
				}
				if err := c.clk.Sleep(context.Background(), time.Second); err != nil {
					t.Fatal(err)
				}
			}
			if got := c.f.Accepted()["u000"]; got != 0 {
				t.Errorf("u000: %d evacuations accepted", got)
			}
		})
	}
}

// evacuate_delay holds back the hosts a stock fence_compute fenced too, as the stock
// NovaEvacuate does: they have no marker to date the fence by, so the delay counts
// from when the controller first sees them.
func TestDelayOfStockHost(t *testing.T) {
	c := newCloud(t, 3)
	ids := c.addServers("c1", "a", 2, nil)
	c.f.Crash("c1")
	c.f.ForceDown("c1")
	stock := &fakeStock{yes: map[string]bool{"c1": true}}
	ctl := c.controller(t, func(cfg *evacuation.Config) { cfg.Delay = 10 * time.Second; cfg.Stock = stock })
	for range 9 {
		ctl.Round(context.Background())
		if n := c.f.Calls()[fakenova.APIEvacuate]; n != 0 {
			t.Fatalf("at %v: %d evacuate requests during the delay", c.clk.Now().Sub(t0), n)
		}
		if err := c.clk.Sleep(context.Background(), time.Second); err != nil {
			t.Fatal(err)
		}
	}
	c.run(t, ctl, 60, func(evacuation.Status) bool { return !stock.yes["c1"] })
	c.checkMoved(t, "c1", "ACTIVE", ids)
}
