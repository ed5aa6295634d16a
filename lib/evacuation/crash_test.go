package evacuation_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/novaha/novaha/lib/evacuation"
	"github.com/novaha/novaha/lib/evacuation/fakenova"
	"github.com/novaha/novaha/lib/nova"
)

// TestCrashRestart kills the controller at random points of an evacuation (between any
// two calls, or after Nova acted on a call and before its answer arrived), many times
// per run and over many seeds, and starts a new one on the same Nova each time, as
// Pacemaker would. Nova's state, rebuilds in flight included, survives; the
// controller's memory does not. In the end every instance must be ACTIVE (or SHUTOFF,
// as it was) on a healthy host, evacuated exactly once, and the hosts marked
// evacuated with the right counts.
func TestCrashRestart(t *testing.T) {
	seeds := 300
	if testing.Short() {
		seeds = 40
	}
	if s, err := strconv.Atoi(os.Getenv("NOVAHA_CRASH_SEEDS")); err == nil {
		seeds = s
	}
	crashStats.kills, crashStats.inFlight = 0, 0
	for seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { crashRun(t, uint64(seed)) })
	}
	t.Logf("%d seeds, %d kills, %d of them while rebuilds were in flight", seeds, crashStats.kills, crashStats.inFlight)
	if crashStats.inFlight < seeds/2 {
		t.Errorf("only %d kills while rebuilds were in flight: the test does not test", crashStats.inFlight)
	}
}

var crashStats struct{ kills, inFlight int }

func crashRun(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	c := newCloud(t, 5)
	type want struct {
		status   string
		accepted int
	}
	wants := map[string]*want{}
	for _, h := range []string{"c1", "c2"} {
		n := 5 + rng.IntN(15)
		ids := c.addServers(h, h+"-", n, func(i int, s *fakenova.ServerSpec) {
			if rng.IntN(5) == 0 {
				s.Status = "SHUTOFF"
			}
			if rng.IntN(3) == 0 {
				s.Metadata = map[string]string{evacuation.DefaultPriorityKey: strconv.Itoa(rng.IntN(3))}
			}
		})
		for _, id := range ids {
			w := &want{status: "ACTIVE", accepted: 1}
			if s := c.f.Server(id); s.Status == "SHUTOFF" {
				w.status = "SHUTOFF"
			}
			switch rng.IntN(8) {
			case 0:
				c.f.LoseAnswer(id)
			case 1:
				c.f.FailEvacuate(id, fakenova.Conflict(id))
			case 2:
				c.f.FailEvacuate(id, fakenova.ServerError("evacuating"))
			case 3:
				c.f.NoValidHost(id)
				w.accepted = 2
			}
			wants[id] = w
		}
	}
	// Half the runs without Nova's own 409 for an instance that has a task: the
	// controller must not rely on it.
	c.f.Lenient = seed%2 == 1
	c.fence("c1")
	if rng.IntN(2) == 0 {
		// The second host fails a little later.
		c.clk.Sleep(context.Background(), time.Duration(rng.IntN(5000))*time.Millisecond)
	}
	c.fence("c2")

	kills := 1 + rng.IntN(6)
	killsInFlight := 0
	done := func() bool { return c.phase("c1") == "evacuated" && c.phase("c2") == "evacuated" }
	for life := 0; !done(); life++ {
		if life > kills+50 {
			t.Fatalf("seed %d: not converged after %d lives\nlog:\n%s", seed, life, c.log.String())
		}
		ctx, kill := context.WithCancel(context.Background())
		calls, killAt := 0, -1
		phase := "before"
		if life < kills {
			killAt = rng.IntN(60)
			if rng.IntN(2) == 0 {
				phase = "after"
			}
		}
		c.f.Hook = func(api, ph, subject string) {
			if ph == phase {
				calls++
				if calls == killAt {
					kill()
					if !c.f.Idle() {
						killsInFlight++
					}
				}
			}
		}
		ctl := c.controller(t, func(cfg *evacuation.Config) { cfg.RetryBase = time.Second; cfg.RetryMax = 4 * time.Second })
		for round := 0; round < 200 && ctx.Err() == nil && !done(); round++ {
			ctl.Round(ctx)
			c.clk.Sleep(context.Background(), time.Second)
		}
		kill()
		// Pacemaker notices and starts another one, here or elsewhere.
		c.clk.Sleep(context.Background(), time.Duration(rng.IntN(4000))*time.Millisecond)
	}
	c.f.Hook = nil

	acc := c.f.Accepted()
	for id, w := range wants {
		s := c.f.Server(id)
		svc := c.f.Service(s.Host)
		if s.Host == "c1" || s.Host == "c2" || svc.ForcedDown || s.Status != w.status || s.TaskState != "" {
			t.Errorf("seed %d: %s on %s in %s (task %q), want %s on a healthy host", seed, id, s.Host, s.Status, s.TaskState, w.status)
		}
		if acc[id] != w.accepted {
			t.Errorf("seed %d: %s: Nova accepted %d evacuations, want %d", seed, id, acc[id], w.accepted)
		}
	}
	for _, h := range []string{"c1", "c2"} {
		doneMigs := map[string]int{}
		for _, m := range c.f.Migrations(h) {
			if m.Status == "done" {
				doneMigs[m.InstanceUUID]++
			}
		}
		n := 0
		for id := range wants {
			if len(id) > 2 && id[:2] == h {
				n++
				if doneMigs[id] != 1 {
					t.Errorf("seed %d: %s evacuated %d times", seed, id, doneMigs[id])
				}
			}
		}
		m, _ := nova.ParseMarker(c.f.Service(h).DisabledReason)
		if m.Moved != n || m.Failed != 0 {
			t.Errorf("seed %d: %s marker %q, want moved=%d failed=0", seed, h, c.f.Service(h).DisabledReason, n)
		}
	}
	if t.Failed() {
		t.Logf("log:\n%s", c.log.String())
	}
	crashStats.kills += kills
	crashStats.inFlight += killsInFlight
}
