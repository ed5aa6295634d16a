package evacuation_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/novaha/novaha/lib/evacuation"
	"github.com/novaha/novaha/lib/evacuation/fakenova"
	"github.com/novaha/novaha/lib/nova"
)

// Invariant 3: an instance Nova refuses never blocks the others, nor the host's return.
func TestRefusedInstancesDoNotBlock(t *testing.T) {
	c := newCloud(t, 3)
	ids := c.addServers("c1", "a", 8, nil)
	c.addServers("c1", "p", 1, func(i int, s *fakenova.ServerSpec) { s.Status = "PAUSED" })
	c.fence("c1")
	bad400 := &nova.Error{Service: "Nova", Status: 400, Message: "Invalid state of instance files on shared storage"}
	c.f.FailEvacuate("a000", bad400) // refused for good
	for range 200 {                  // 409 forever: task_state conflicts that never clear
		c.f.FailEvacuate("a001", fakenova.Conflict("a001"))
	}
	c.f.FailRebuild("a002") // ends in ERROR on its destination
	c.f.NoValidHost("a003") // scheduling fails three times: given up
	c.f.NoValidHost("a003")
	c.f.NoValidHost("a003")
	c.f.NoValidHost("a004") // once: evacuated again, and moved
	ctl := c.controller(t, nil)
	st := c.run(t, ctl, 1200, c.evacuated("c1"))
	c.checkMoved(t, "c1", "ACTIVE", ids[5:])
	if got := c.f.Accepted()["a004"]; got != 2 {
		t.Errorf("a004: %d evacuations accepted, want 2 (one failed in scheduling)", got)
	}
	if s := c.f.Server("a004"); s.Host == "c1" || s.Status != "ACTIVE" {
		t.Errorf("a004: %+v", s)
	}
	m, _ := nova.ParseMarker(c.f.Service("c1").DisabledReason)
	if m.Moved != 4 || m.Failed != 5 {
		t.Errorf("marker %q, want moved=4 failed=5", c.f.Service("c1").DisabledReason)
	}
	hs := st.Hosts[0]
	for id, want := range map[string]string{"a000": "shared storage", "a001": "failed", "a002": "failed",
		"a003": "3 evacuations failed", "p000": "status PAUSED"} {
		if !strings.Contains(hs.Failures[id], want) {
			t.Errorf("failure of %s: %q, want %q", id, hs.Failures[id], want)
		}
	}
	if got := c.f.Accepted()["a000"] + c.f.Accepted()["a001"] + c.f.Accepted()["p000"]; got != 0 {
		t.Errorf("refused instances accepted %d times", got)
	}
	// The others were not held back by the 409s: they were all moved long before the
	// retry timeout gave a001 up.
	if c.clk.Now().Sub(t0) < evacuation.DefaultRetryTimeout {
		t.Errorf("a001 given up after %v, before the retry timeout", c.clk.Now().Sub(t0))
	}
}

// Transient failures are retried; a request whose answer was lost is never sent again
// once Nova's migrations show it was taken.
func TestTransientFailures(t *testing.T) {
	c := newCloud(t, 3)
	ids := c.addServers("c1", "a", 6, nil)
	c.fence("c1")
	c.f.FailEvacuate("a000", fakenova.Conflict("a000"), fakenova.Conflict("a000"))
	c.f.FailEvacuate("a001", fakenova.ServerError("evacuating"), fakenova.ServerError("evacuating"))
	c.f.FailEvacuate("a002", fakenova.Timeout("evacuating")) // not taken
	c.f.LoseAnswer("a003")                                   // taken, answer lost
	c.f.FailNext(fakenova.APIListMigrations, fakenova.ServerError("listing"))
	c.f.FailNext(fakenova.APIListServers, fakenova.Timeout("listing"))
	c.f.FailNext(fakenova.APIHypervisors, fakenova.ServerError("hypervisors"))
	c.f.FailNext(fakenova.APIUpdateService, fakenova.ServerError("marking"))
	ctl := c.controller(t, nil)
	c.run(t, ctl, 120, c.evacuated("c1"))
	c.checkMoved(t, "c1", "ACTIVE", ids)
	m, _ := nova.ParseMarker(c.f.Service("c1").DisabledReason)
	if m.Moved != 6 || m.Failed != 0 {
		t.Errorf("marker %q", c.f.Service("c1").DisabledReason)
	}
}

// Nova or Keystone down: nothing is marked done, the status says so, and the
// controller carries on once Nova is back.
func TestNovaDown(t *testing.T) {
	c := newCloud(t, 3)
	ids := c.addServers("c1", "a", 4, nil)
	c.fence("c1")
	ctl := c.controller(t, nil)
	st := ctl.Round(context.Background()) // evacuating, the first requests sent
	if !st.NovaOK || c.phase("c1") != "evacuating" {
		t.Fatalf("status %+v, phase %s", st, c.phase("c1"))
	}
	c.f.SetDown(true)
	for range 30 {
		c.clk.Sleep(context.Background(), time.Second)
		st = ctl.Round(context.Background())
		if st.NovaOK || !strings.Contains(st.Error, "unreachable") || st.Updated.IsZero() {
			t.Fatalf("status while Nova is down: %+v", st)
		}
	}
	if c.phase("c1") != "evacuating" {
		t.Fatalf("phase %s while Nova was down", c.phase("c1"))
	}
	// Down in the middle of a round: after the services were read.
	c.f.SetDown(false)
	c.f.FailNext(fakenova.APIListMigrations, fakenova.Timeout("listing"))
	st = ctl.Round(context.Background())
	if st.NovaOK || c.phase("c1") != "evacuating" {
		t.Errorf("status %+v, phase %s", st, c.phase("c1"))
	}
	c.run(t, ctl, 60, c.evacuated("c1"))
	c.checkMoved(t, "c1", "ACTIVE", ids)
}

func TestSelectionRules(t *testing.T) {
	tag := map[string]string{"evacuable": "True"}
	for _, tc := range []struct {
		name  string
		cfg   func(*evacuation.Config)
		setup func(c *cloud)
		want  []string // the instances evacuated
	}{
		{"all", nil, func(c *cloud) {
			c.addServers("c1", "a", 3, nil)
			c.addServers("c1", "e", 1, func(i int, s *fakenova.ServerSpec) { s.Status = "ERROR" })
		}, []string{"a000", "a001", "a002"}},
		{"all with errors", func(cfg *evacuation.Config) { cfg.IncludeError = true }, func(c *cloud) {
			c.addServers("c1", "a", 2, nil)
			c.addServers("c1", "e", 1, func(i int, s *fakenova.ServerSpec) { s.Status = "ERROR" })
		}, []string{"a000", "a001", "e000"}},
		{"tagged: flavor, image property, image tag", func(cfg *evacuation.Config) { cfg.Select = evacuation.SelectTagged }, func(c *cloud) {
			c.f.SetImage("img-prop", map[string]string{"evacuable": "true"}, nil)
			c.f.SetImage("img-tag", nil, []string{"evacuable"})
			c.f.SetImage("img-plain", map[string]string{"evacuable": "false"}, []string{"other"})
			c.addServers("c1", "f", 1, func(i int, s *fakenova.ServerSpec) { s.FlavorExtraSpecs = tag })
			c.addServers("c1", "p", 1, func(i int, s *fakenova.ServerSpec) { s.ImageID = "img-prop" })
			c.addServers("c1", "t", 1, func(i int, s *fakenova.ServerSpec) { s.ImageID = "img-tag" })
			c.addServers("c1", "n", 2, func(i int, s *fakenova.ServerSpec) { s.ImageID = "img-plain" })
			c.addServers("c1", "v", 1, nil) // volume-backed, untagged flavor
		}, []string{"f000", "p000", "t000"}},
		{"tagged: nothing tagged means everything", func(cfg *evacuation.Config) { cfg.Select = evacuation.SelectTagged }, func(c *cloud) {
			c.f.SetImage("img-plain", nil, nil)
			c.addServers("c1", "n", 2, func(i int, s *fakenova.ServerSpec) { s.ImageID = "img-plain" })
			c.addServers("c1", "v", 1, nil)
		}, []string{"n000", "n001", "v000"}},
		{"HA_Enabled", func(cfg *evacuation.Config) { cfg.Select = evacuation.SelectHAEnabled }, func(c *cloud) {
			c.addServers("c1", "h", 2, func(i int, s *fakenova.ServerSpec) { s.Metadata = map[string]string{"HA_Enabled": "True"} })
			c.addServers("c1", "o", 1, func(i int, s *fakenova.ServerSpec) { s.Metadata = map[string]string{"HA_Enabled": "False"} })
			c.addServers("c1", "n", 1, nil)
		}, []string{"h000", "h001"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCloud(t, 3)
			tc.setup(c)
			c.fence("c1")
			ctl := c.controller(t, tc.cfg)
			st := c.run(t, ctl, 60, c.evacuated("c1"))
			var got []string
			for id, n := range c.f.Accepted() {
				if n > 0 {
					got = append(got, id)
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("evacuated %v, want %v", got, tc.want)
			}
			c.checkMoved(t, "c1", "ACTIVE", tc.want)
			if n := strings.Count(c.log.String(), "action=skip outcome=\"not selected\""); n != len(c.f.Servers())-len(tc.want) {
				t.Errorf("%d skip lines in the log, want one per instance left:\n%s", n, c.log.String())
			}
			if st.Hosts[0].Total != len(tc.want) || st.Hosts[0].Moved != len(tc.want) {
				t.Errorf("status %+v", st.Hosts[0])
			}
		})
	}
}

// SHUTOFF instances come back off; with Stopped, every instance does.
func TestStoppedInstances(t *testing.T) {
	c := newCloud(t, 3)
	on := c.addServers("c1", "a", 2, nil)
	off := c.addServers("c1", "s", 2, func(i int, s *fakenova.ServerSpec) { s.Status = "SHUTOFF" })
	c.fence("c1")
	c.run(t, c.controller(t, nil), 60, c.evacuated("c1"))
	c.checkMoved(t, "c1", "ACTIVE", on)
	c.checkMoved(t, "c1", "SHUTOFF", off)

	c = newCloud(t, 3)
	ids := c.addServers("c1", "a", 3, nil)
	c.fence("c1")
	c.run(t, c.controller(t, func(cfg *evacuation.Config) { cfg.Stopped = true }), 60, c.evacuated("c1"))
	c.checkMoved(t, "c1", "SHUTOFF", ids)
}

// Every high-priority instance is ACTIVE before any low-priority one starts
// rebuilding, across hosts.
func TestPriorities(t *testing.T) {
	c := newCloud(t, 4)
	prio := func(p string) func(int, *fakenova.ServerSpec) {
		return func(i int, s *fakenova.ServerSpec) { s.Metadata = map[string]string{evacuation.DefaultPriorityKey: p} }
	}
	low := c.addServers("c1", "low", 6, nil)
	mid := c.addServers("c2", "mid", 3, prio("5"))
	high := c.addServers("c1", "high", 4, prio("10"))
	bad := c.addServers("c2", "bad", 1, prio("urgent")) // not an integer: 0
	c.fence("c1")
	c.fence("c2")
	class := map[string][]string{"low": append(low, bad...), "mid": mid, "high": high}
	classOf := map[string]string{}
	for name, ids := range class {
		for _, id := range ids {
			classOf[id] = name
		}
	}
	var order []string
	c.f.Hook = func(api, phase, subject string) {
		if api != fakenova.APIEvacuate || phase != "before" {
			return
		}
		// Before each request: the highest class not yet ACTIVE elsewhere must be the
		// request's own.
		for _, name := range []string{"high", "mid", "low"} {
			done := true
			for _, id := range class[name] {
				s := c.f.Server(id)
				if s.Host == "c1" || s.Host == "c2" || s.TaskState != "" {
					done = false
				}
			}
			if !done {
				if name != classOf[subject] {
					t.Errorf("%s (%s) requested while %s instances are not finished", subject, classOf[subject], name)
				}
				order = append(order, name)
				return
			}
		}
	}
	ctl := c.controller(t, func(cfg *evacuation.Config) { cfg.MaxFencedPercent = 50 })
	c.run(t, ctl, 120, func(evacuation.Status) bool { return c.phase("c1") == "evacuated" && c.phase("c2") == "evacuated" })
	var seen []string
	for _, o := range order {
		if len(seen) == 0 || seen[len(seen)-1] != o {
			seen = append(seen, o)
		}
	}
	if !slices.Equal(seen, []string{"high", "mid", "low"}) {
		t.Errorf("requests sent while unfinished: %v, want high, then mid, then low", order)
	}
	acc := c.f.Accepted()
	for _, id := range append(append(low, mid...), high...) {
		if acc[id] != 1 {
			t.Errorf("%s accepted %d times", id, acc[id])
		}
	}
}

// The instances go to the target hosts only; a target host that is not healthy is
// not used.
func TestTargetHosts(t *testing.T) {
	c := newCloud(t, 5)
	ids := c.addServers("c1", "a", 6, nil)
	c.f.SetService("c4", func(s *nova.Service) { s.Status = "disabled" })
	c.fence("c1")
	ctl := c.controller(t, func(cfg *evacuation.Config) { cfg.TargetHosts = []string{"c3", "c4"} })
	c.run(t, ctl, 60, c.evacuated("c1"))
	c.checkMoved(t, "c1", "ACTIVE", ids)
	for _, id := range ids {
		if h := c.f.Server(id).Host; h != "c3" {
			t.Errorf("%s on %s, want c3", id, h)
		}
	}
}

// evacuate_delay: nothing happens until the delay after the fence has passed.
func TestDelay(t *testing.T) {
	c := newCloud(t, 3)
	ids := c.addServers("c1", "a", 2, nil)
	c.fence("c1")
	ctl := c.controller(t, func(cfg *evacuation.Config) { cfg.Delay = 10 * time.Second })
	for range 9 {
		st := ctl.Round(context.Background())
		if c.phase("c1") != "fenced" || c.f.Calls()[fakenova.APIEvacuate] != 0 || st.Hosts[0].Phase != "fenced" {
			t.Fatalf("at %v: phase %s, calls %v", c.clk.Now().Sub(t0), c.phase("c1"), c.f.Calls())
		}
		c.clk.Sleep(context.Background(), time.Second)
	}
	c.run(t, ctl, 60, c.evacuated("c1"))
	c.checkMoved(t, "c1", "ACTIVE", ids)
}

// Hosts fenced by a stock fence_compute: forced down, evacuate=yes, no marker. They are
// evacuated, the attribute is cleared, and no marker is written (fence_compute's on
// would not remove it).
func TestStockFenceCompute(t *testing.T) {
	c := newCloud(t, 4)
	a := c.addServers("c1", "a", 3, nil)
	b := c.addServers("c2", "b", 3, nil)
	c.f.Crash("c1")
	c.f.ForceDown("c1")
	c.fence("c2") // fence_nova: marker and attribute both
	var order []string
	stock := &fakeStock{yes: map[string]bool{"c1": true, "c2": true}, order: &order, fail: 1}
	c.f.Hook = func(api, phase, subject string) {
		if api == fakenova.APIUpdateService && phase == "after" {
			order = append(order, "marker")
		}
	}
	ctl := c.controller(t, func(cfg *evacuation.Config) { cfg.Stock = stock })
	c.run(t, ctl, 60, func(evacuation.Status) bool { return c.phase("c2") == "evacuated" && !stock.yes["c1"] })
	c.checkMoved(t, "c1", "ACTIVE", a)
	c.checkMoved(t, "c2", "ACTIVE", b)
	if c.f.Service("c1").DisabledReason != "" || !c.f.Service("c1").ForcedDown {
		t.Errorf("c1: %+v", c.f.Service("c1"))
	}
	if stock.yes["c2"] {
		t.Error("evacuate=yes left on c2")
	}
	// c2: evacuating marker, then the attribute, then the evacuated marker.
	last := -1
	for k, o := range order {
		if o == "marker" {
			last = k
		}
	}
	if i := slices.Index(order, "attrd c2"); i < 0 || i > last {
		t.Errorf("order %v: the attribute must be cleared before the evacuated marker", order)
	}
}

// An instance busy with another task is not requested until the task ends, and is
// given up after the retry timeout, without holding its host back longer.
func TestBusyInstances(t *testing.T) {
	c := newCloud(t, 3)
	ids := c.addServers("c1", "a", 3, nil)
	c.addServers("c1", "busy", 2, func(i int, s *fakenova.ServerSpec) { s.TaskState = "powering-off" })
	c.fence("c1")
	ctl := c.controller(t, func(cfg *evacuation.Config) { cfg.RetryTimeout = time.Minute })
	for range 20 {
		ctl.Round(context.Background())
		c.clk.Sleep(context.Background(), time.Second)
	}
	c.f.SetTask("busy000", "") // its task ended
	st := c.run(t, ctl, 120, c.evacuated("c1"))
	c.checkMoved(t, "c1", "ACTIVE", append(ids, "busy000"))
	if n := c.f.Accepted()["busy001"]; n != 0 || c.f.Calls()[fakenova.APIEvacuate] != 4 {
		t.Errorf("busy001 accepted %d times; %d evacuate requests in all, want 4", n, c.f.Calls()[fakenova.APIEvacuate])
	}
	if !strings.Contains(st.Hosts[0].Failures["busy001"], "busy with task powering-off") {
		t.Errorf("failures %v", st.Hosts[0].Failures)
	}
}

// After an evacuation that failed in scheduling, the instance goes to another
// destination, even when the failing one looks the best.
func TestFailedDestinationAvoided(t *testing.T) {
	c := newCloud(t, 3)
	c.f.AddHost("big", 512, 4096*1024) // the most free memory: first choice
	c.f.RefuseHost("big")
	ids := c.addServers("c1", "a", 6, nil)
	c.fence("c1")
	ctl := c.controller(t, func(cfg *evacuation.Config) { cfg.PerDestination = 1 })
	c.run(t, ctl, 120, c.evacuated("c1"))
	m, _ := nova.ParseMarker(c.f.Service("c1").DisabledReason)
	if m.Moved != 6 || m.Failed != 0 {
		t.Fatalf("marker %q", c.f.Service("c1").DisabledReason)
	}
	for _, id := range ids {
		if s := c.f.Server(id); s.Host == "big" || s.Host == "c1" || s.Status != "ACTIVE" {
			t.Errorf("%s: %+v", id, s)
		}
	}
}

// An evacuation Nova accepted and never carried out holds its host back past the retry
// timeout: a returning nova-compute would destroy its copy of the instance, which no
// destination rebuilt. It is reported stuck, takes no slot and no priority from the
// others, and the host returns once the evacuation ends.
func TestStuckEvacuationHoldsTheHost(t *testing.T) {
	c := newCloud(t, 3)
	ids := c.addServers("c1", "a", 4, func(i int, s *fakenova.ServerSpec) {
		if i == 0 {
			s.Metadata = map[string]string{evacuation.DefaultPriorityKey: "5"}
		}
	})
	c.fence("c1")
	c.f.Stall("a000")
	ctl := c.controller(t, func(cfg *evacuation.Config) {
		cfg.RetryTimeout = time.Minute
		cfg.MaxInFlight = 1
	})
	// The others move although a000 goes first (priority) and the one slot in all was its.
	var st evacuation.Status
	for range 600 {
		st = ctl.Round(context.Background())
		if len(st.Hosts) == 1 && st.Hosts[0].Moved == 3 && st.Hosts[0].Stuck["a000"] != "" {
			break
		}
		c.clk.Sleep(context.Background(), time.Second)
	}
	hs := st.Hosts[0]
	if hs.Moved != 3 || hs.Pending != 1 || hs.Failed != 0 || !strings.Contains(hs.Stuck["a000"], "stuck in status accepted") {
		t.Fatalf("status %+v\nlog:\n%s", hs, c.log.String())
	}
	c.checkMoved(t, "c1", "ACTIVE", ids[1:])
	// Long past the retry timeout, still held back, never requested again.
	for range 300 {
		st = ctl.Round(context.Background())
		c.clk.Sleep(context.Background(), time.Second)
	}
	if p := c.phase("c1"); p == nova.Evacuated.String() {
		t.Fatalf("c1 %s with a000's evacuation still accepted", p)
	}
	if n := c.f.Accepted()["a000"]; n != 1 {
		t.Errorf("a000 accepted %d times, want 1", n)
	}
	if !strings.Contains(c.log.String(), "outcome=stuck") || !strings.Contains(c.log.String(), "level=ERROR") {
		t.Errorf("no error logged for the stuck evacuation:\n%s", c.log.String())
	}
	if n := strings.Count(c.log.String(), "outcome=stuck"); n != 1 {
		t.Errorf("the stuck evacuation logged %d times, want once", n)
	}
	// Its destination takes it at last: the host returns with all four moved.
	c.f.Unstall("a000")
	c.run(t, ctl, 120, c.evacuated("c1"))
	m, _ := nova.ParseMarker(c.f.Service("c1").DisabledReason)
	if m.Moved != 4 || m.Failed != 0 {
		t.Errorf("marker %q, want moved=4 failed=0", c.f.Service("c1").DisabledReason)
	}
	c.checkMoved(t, "c1", "ACTIVE", ids)
}
