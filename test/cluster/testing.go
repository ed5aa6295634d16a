package cluster

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// StartTest starts a cluster for a test, with the harness's progress in the test log. It
// is stopped when the test ends, after its logs' last lines are shown if the test failed.
func StartTest(ctx context.Context, t testing.TB, opts Options) *Cluster {
	t.Helper()
	if opts.Log == nil {
		opts.Log = TestLog(t)
	}
	c, err := Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			c.DumpLogs(TestLog(t), 60)
		}
		if err := c.Stop(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return c
}

// TestLog is a writer to the test log, one log entry per write.
func TestLog(t testing.TB) io.Writer { return testLog{t} }

type testLog struct{ t testing.TB }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// CheckFenceHistory returns an error naming each of the actions that has no successful
// operation in node's fencing history.
func (c *Cluster) CheckFenceHistory(ctx context.Context, node string, actions ...string) error {
	hist, err := c.FenceHistory(ctx, node)
	if err != nil {
		return err
	}
	ok := map[string]bool{}
	for _, e := range hist {
		ok[e.Action] = ok[e.Action] || e.Status == "success"
	}
	var missing []string
	for _, a := range actions {
		if !ok[a] {
			missing = append(missing, a)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("cluster: fencing history of %s has no successful %s: %+v", node, strings.Join(missing, ", "), hist)
	}
	return nil
}

// FencerLog returns the lines of pacemaker.log written by pacemaker-fenced, where what
// fence agents print ends up: for tests that look for an agent's messages, or for
// secrets that must not be there. (pacemaker-based and -controld log CIB changes with
// their values, passwords included: those lines are not the agents'.)
func (c *Cluster) FencerLog() ([]string, error) {
	data, err := os.ReadFile(filepath.Join(c.StateDir(), "pacemaker.log"))
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		if strings.Contains(line, "pacemaker-fenced") {
			out = append(out, line)
		}
	}
	return out, nil
}
