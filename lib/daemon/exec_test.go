package daemon

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// fakeProc makes <root>/42 with a stat of the given state and an empty cmdline, as the
// kernel shows a process between exec and the setup of its argument area.
func fakeProc(t *testing.T, state string) (Spec, string) {
	root := t.TempDir()
	dir := filepath.Join(root, "42")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "stat"), []byte("42 (a (b) c) "+state+" 1 42 42"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cmdline"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return Spec{Command: "/bin/sleep", Args: []string{"9"}, ProcRoot: root}, dir
}

func TestAwaitExecWaitsForTheCommandLine(t *testing.T) {
	s, dir := fakeProc(t, "R")
	if s.is(42) {
		t.Fatal("an empty command line matched")
	}
	go func() {
		time.Sleep(50 * time.Millisecond)
		_ = os.WriteFile(filepath.Join(dir, "cmdline"), []byte("/bin/sleep\x009\x00"), 0o644)
	}()
	start := time.Now()
	s.awaitExec(42, 10*time.Second)
	if d := time.Since(start); d < 40*time.Millisecond || d > 5*time.Second {
		t.Errorf("awaitExec returned after %v, want once the command line is there (50ms)", d)
	}
	if !s.is(42) {
		t.Error("the daemon is not recognised once its command line is there")
	}
}

func TestAwaitExecGivesUp(t *testing.T) {
	for _, tc := range []struct {
		name, state string
		wait        time.Duration
		max         time.Duration
	}{
		{"zombie", "Z", time.Minute, time.Second},
		{"deadline", "S", 100 * time.Millisecond, 5 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := fakeProc(t, tc.state)
			start := time.Now()
			s.awaitExec(42, tc.wait)
			if d := time.Since(start); d > tc.max {
				t.Errorf("awaitExec took %v", d)
			}
		})
	}
	s := Spec{ProcRoot: t.TempDir()}
	start := time.Now()
	s.awaitExec(42, time.Minute) // no such process
	if d := time.Since(start); d > time.Second {
		t.Errorf("awaitExec waited %v for a process that does not exist", d)
	}
}
