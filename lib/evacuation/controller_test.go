package evacuation_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/novaha/novaha/lib/evacuation"
	"github.com/novaha/novaha/lib/evacuation/fakenova"
	"github.com/novaha/novaha/lib/nova"
)

func TestEvacuatesFencedHost(t *testing.T) {
	c := newCloud(t, 3)
	ids := c.addServers("c1", "a", 10, nil)
	c.addServers("c2", "b", 2, nil)
	c.fence("c1")
	// Each destination never has more than PerDestination evacuations in flight.
	maxLoad := 0
	c.f.Hook = func(api, phase, subject string) {
		if api != fakenova.APIEvacuate || phase != "after" {
			return
		}
		load := map[string]int{}
		for _, m := range c.f.Migrations("c1") {
			if m.Status == "accepted" || m.Status == "pre-migrating" {
				load[m.DestCompute]++
				maxLoad = max(maxLoad, load[m.DestCompute])
			}
		}
	}
	ctl := c.controller(t, nil)
	st := c.run(t, ctl, 60, c.evacuated("c1"))
	c.checkMoved(t, "c1", "ACTIVE", ids)
	if maxLoad > evacuation.DefaultPerDestination || maxLoad == 0 {
		t.Errorf("at most %d evacuations in flight per destination, want 1..%d", maxLoad, evacuation.DefaultPerDestination)
	}
	m, _ := nova.ParseMarker(c.f.Service("c1").DisabledReason)
	if m.Moved != 10 || m.Failed != 0 || !c.f.Service("c1").ForcedDown {
		t.Errorf("marker %q, forced_down=%t; want evacuated moved=10 failed=0, still forced down", c.f.Service("c1").DisabledReason, c.f.Service("c1").ForcedDown)
	}
	on := map[string]int{}
	for _, id := range ids {
		on[c.f.Server(id).Host]++
	}
	if on["c2"] < 4 || on["c3"] < 4 {
		t.Errorf("spread over the destinations: %v", on)
	}
	if len(st.Hosts) != 1 || st.Hosts[0].Host != "c1" || st.Hosts[0].Phase != "evacuated" || st.Hosts[0].Moved != 10 ||
		st.Hosts[0].Total != 10 || st.Hosts[0].Pending != 0 || !st.NovaOK || st.Guard {
		t.Errorf("status %+v", st)
	}
	// The next rounds leave the evacuated host alone.
	c.f.ResetCalls()
	st = ctl.Round(context.Background())
	if len(st.Hosts) != 0 || c.f.Calls()[fakenova.APIListServers] != 0 || c.f.Calls()[fakenova.APIUpdateService] != 0 {
		t.Errorf("after the evacuation: status %+v, calls %v", st, c.f.Calls())
	}
	// One log line per decision, naming the host, the instance, the action and the outcome.
	log := c.log.String()
	for _, want := range []string{"host=c1 instance=a000 action=evacuate destination=", "outcome=requested",
		"action=\"mark evacuated\" moved=10 failed=0 outcome=done", "action=\"mark evacuating\""} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}

// Invariant 1: never evacuate an instance from a host not recorded as fenced.
func TestOnlyFencedHosts(t *testing.T) {
	c := newCloud(t, 6)
	for _, h := range []string{"c1", "c2", "c3", "c4", "c5"} {
		c.addServers(h, h+"-", 3, nil)
	}
	c.f.Crash("c1") // dead, not fenced: Nova's own down state is no proof
	c.f.Fence("c2", t0)
	c.f.SetService("c2", func(s *nova.Service) { s.ForcedDown = false }) // someone lifted the force-down
	c.f.ForceDown("c3")                                                  // forced down by hand, no marker, no attribute
	c.f.Fence("c4", t0)
	c.f.SetService("c4", func(s *nova.Service) {
		s.DisabledReason = nova.Marker{Phase: nova.Evacuated, Moved: 3}.String() // done already
	})
	c.f.SetService("c5", func(s *nova.Service) { s.Status, s.DisabledReason = "disabled", "maintenance" })
	ctl := c.controller(t, func(cfg *evacuation.Config) {
		cfg.MaxFencedPercent = 100
		cfg.Stock = &fakeStock{yes: map[string]bool{"c1": true, "c5": true}} // attribute without force-down
	})
	for range 5 {
		st := ctl.Round(context.Background())
		if len(st.Hosts) != 0 {
			t.Fatalf("hosts in progress: %+v", st.Hosts)
		}
		c.clk.Sleep(context.Background(), time.Second)
	}
	calls := c.f.Calls()
	if calls[fakenova.APIEvacuate] != 0 || calls[fakenova.APIUpdateService] != 0 || calls[fakenova.APIListServers] != 0 {
		t.Errorf("calls %v; want no evacuation, no service change", calls)
	}
	if !strings.Contains(c.log.String(), "not forced down") {
		t.Errorf("no warning about c2:\n%s", c.log.String())
	}
}

// Invariant 4: the mass-failure guard.
func TestMassFailureGuard(t *testing.T) {
	c := newCloud(t, 4)
	c.addServers("c1", "a", 2, nil)
	c.addServers("c2", "b", 2, nil)
	c.addServers("c3", "x", 2, nil)
	c.fence("c1")
	c.fence("c2")
	c.fence("c3")
	ctl := c.controller(t, nil) // 50%: 3 of 4 is more
	st := ctl.Round(context.Background())
	if !st.Guard || !strings.Contains(st.GuardReason, "3 of 4") || len(st.Hosts) != 3 || !st.NovaOK {
		t.Errorf("status %+v", st)
	}
	calls := c.f.Calls()
	if calls[fakenova.APIEvacuate] != 0 || calls[fakenova.APIUpdateService] != 0 {
		t.Errorf("calls %v: the guard must stop everything", calls)
	}
	if !strings.Contains(c.log.String(), "MASS-FAILURE GUARD") {
		t.Errorf("log:\n%s", c.log.String())
	}
	// One host recovers: 2 of 4 is not more than 50%, the others go.
	c.f.SetService("c3", func(s *nova.Service) {
		s.ForcedDown, s.State, s.Status, s.DisabledReason = false, "up", "enabled", ""
	})
	st = c.run(t, ctl, 60, func(evacuation.Status) bool { return c.phase("c1") == "evacuated" && c.phase("c2") == "evacuated" })
	if st.Guard {
		t.Errorf("guard still on: %+v", st)
	}
}

func TestStatusFile(t *testing.T) {
	c := newCloud(t, 3)
	c.addServers("c1", "a", 3, nil)
	c.fence("c1")
	dir := t.TempDir()
	path := filepath.Join(dir, "status.json")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rounds := 0
	c.f.Hook = func(api, phase, subject string) {
		if api == fakenova.APIListServices && phase == "before" {
			rounds++
			if rounds == 4 {
				cancel()
			}
		}
	}
	ctl := c.controller(t, func(cfg *evacuation.Config) { cfg.StatusFile = path; cfg.PID = 4242 })
	if err := ctl.Run(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := evacuation.ReadStatus(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.PID != 4242 || st.Round != 3 || !st.NovaOK || len(st.Hosts) != 1 || st.Hosts[0].Host != "c1" ||
		st.Hosts[0].Total != 3 || !st.Updated.Equal(t0.Add(2*time.Second)) {
		t.Errorf("status %+v", st)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("files left beside the status: %v", entries)
	}
	if _, err := evacuation.ReadStatus(filepath.Join(dir, "none")); err == nil {
		t.Error("reading a missing status file succeeded")
	}
	os.WriteFile(path, []byte("{"), 0o644)
	if _, err := evacuation.ReadStatus(path); err == nil {
		t.Error("reading a broken status file succeeded")
	}
	if err := evacuation.WriteStatus(filepath.Join(dir, "no", "such"), st); err == nil {
		t.Error("writing into a missing directory succeeded")
	}
}

func TestConfigValidate(t *testing.T) {
	f := fakenova.New(nil)
	for _, tc := range []struct {
		edit func(*evacuation.Config)
		want string // "" means valid
	}{
		{func(c *evacuation.Config) {}, ""},
		{func(c *evacuation.Config) { c.Nova = nil }, "no Nova client"},
		{func(c *evacuation.Config) { c.Select = "some" }, `selection rule "some"`},
		{func(c *evacuation.Config) { c.Select = evacuation.SelectHAEnabled }, ""},
		{func(c *evacuation.Config) { c.Interval = -time.Second }, "interval -1s is negative"},
		{func(c *evacuation.Config) { c.PerDestination = -1 }, "per-destination parallelism -1"},
		{func(c *evacuation.Config) { c.MaxInFlight = -3 }, "in flight -3"},
		{func(c *evacuation.Config) { c.MaxFencedPercent = 101 }, "max_fenced_percent 101"},
		{func(c *evacuation.Config) { c.MaxAttempts = -1 }, "attempts -1"},
		{func(c *evacuation.Config) { c.RetryBase = time.Hour }, "retry max 1m0s is shorter"},
		{func(c *evacuation.Config) { c.TargetHosts = []string{"c2", " "} }, "target host name is empty"},
		{func(c *evacuation.Config) { c.PriorityKey = " " }, "priority metadata key is blank"},
	} {
		cfg := evacuation.Config{Nova: f}
		tc.edit(&cfg)
		err := cfg.Validate()
		_, nerr := evacuation.New(cfg)
		switch {
		case tc.want == "" && (err != nil || nerr != nil):
			t.Errorf("%+v: %v / %v", cfg, err, nerr)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || nerr == nil):
			t.Errorf("%+v: got %v, want %q", cfg, err, tc.want)
		}
	}
	// Several bad values: every one is named.
	err := evacuation.Config{PerDestination: -1, MaxAttempts: -2}.Validate()
	if err == nil || !strings.Contains(err.Error(), "no Nova") || !strings.Contains(err.Error(), "parallelism -1") ||
		!strings.Contains(err.Error(), "attempts -2") {
		t.Errorf("got %v", err)
	}
}

// fakeStock is the Pacemaker attribute evacuate.
type fakeStock struct {
	yes   map[string]bool
	done  []string
	fail  int
	order *[]string
}

func (s *fakeStock) Requested(ctx context.Context) ([]string, error) {
	if s.fail > 0 {
		s.fail--
		return nil, context.DeadlineExceeded
	}
	var out []string
	for h, y := range s.yes {
		if y {
			out = append(out, h)
		}
	}
	return out, nil
}

func (s *fakeStock) Done(ctx context.Context, host string) error {
	s.yes[host] = false
	s.done = append(s.done, host)
	if s.order != nil {
		*s.order = append(*s.order, "attrd "+host)
	}
	return nil
}
