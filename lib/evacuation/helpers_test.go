package evacuation_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/novaha/novaha/lib/clock/clocktest"
	"github.com/novaha/novaha/lib/evacuation"
	"github.com/novaha/novaha/lib/evacuation/fakenova"
	"github.com/novaha/novaha/lib/nova"
)

var _ evacuation.Nova = (*fakenova.Nova)(nil)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// cloud is a fake cloud: hosts c1..cN, n servers on c1.
type cloud struct {
	clk *clocktest.Fake
	f   *fakenova.Nova
	log *syncBuffer
}

func newCloud(t testing.TB, hosts int) *cloud {
	t.Helper()
	clk := clocktest.New(t0)
	f := fakenova.New(clk)
	for i := 1; i <= hosts; i++ {
		f.AddHost(fmt.Sprintf("c%d", i), 64, 256*1024)
	}
	return &cloud{clk: clk, f: f, log: &syncBuffer{}}
}

// addServers adds n servers on host, ids <prefix>00..
func (c *cloud) addServers(host, prefix string, n int, edit func(i int, s *fakenova.ServerSpec)) []string {
	var ids []string
	for i := range n {
		s := fakenova.ServerSpec{ID: fmt.Sprintf("%s%03d", prefix, i), Host: host}
		if edit != nil {
			edit(i, &s)
		}
		c.f.AddServer(s)
		ids = append(ids, s.ID)
	}
	return ids
}

// fence crashes a host and fences it as fence_nova does.
func (c *cloud) fence(host string) {
	c.f.Crash(host)
	c.f.Fence(host, c.clk.Now())
}

func (c *cloud) config(edit func(*evacuation.Config)) evacuation.Config {
	cfg := evacuation.Config{Nova: c.f, Clock: c.clk,
		Log: slog.New(slog.NewTextHandler(c.log, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if edit != nil {
		edit(&cfg)
	}
	return cfg
}

func (c *cloud) controller(t testing.TB, edit func(*evacuation.Config)) *evacuation.Controller {
	t.Helper()
	ctl, err := evacuation.New(c.config(edit))
	if err != nil {
		t.Fatal(err)
	}
	return ctl
}

// run runs rounds, one second apart, until done says so or max rounds passed; it
// returns the last status.
func (c *cloud) run(t testing.TB, ctl *evacuation.Controller, max int, done func(evacuation.Status) bool) evacuation.Status {
	t.Helper()
	var st evacuation.Status
	for range max {
		st = ctl.Round(context.Background())
		if done(st) {
			return st
		}
		if err := c.clk.Sleep(context.Background(), time.Second); err != nil {
			t.Fatal(err)
		}
	}
	t.Fatalf("not done after %d rounds; last status %+v\nlog:\n%s", max, st, c.log.String())
	return st
}

// phase is the host's lifecycle marker phase, or "" when it has none.
func (c *cloud) phase(host string) string {
	m, ok := nova.ParseMarker(c.f.Service(host).DisabledReason)
	if !ok {
		return ""
	}
	return m.Phase.String()
}

func (c *cloud) evacuated(host string) func(evacuation.Status) bool {
	return func(evacuation.Status) bool { return c.phase(host) == "evacuated" }
}

// checkMoved fails unless every id is on a healthy host other than from, in status
// want, evacuated exactly once.
func (c *cloud) checkMoved(t testing.TB, from, want string, ids []string) {
	t.Helper()
	acc := c.f.Accepted()
	for _, id := range ids {
		s := c.f.Server(id)
		svc := c.f.Service(s.Host)
		if s.Host == from || svc.ForcedDown || svc.State != "up" || s.Status != want || s.TaskState != "" {
			t.Errorf("instance %s: on %s (forced_down=%t, %s), status %s, task %q; want %s elsewhere",
				id, s.Host, svc.ForcedDown, svc.State, s.Status, s.TaskState, want)
		}
		if acc[id] != 1 {
			t.Errorf("instance %s: Nova accepted %d evacuations, want 1", id, acc[id])
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
