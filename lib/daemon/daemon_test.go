package daemon_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/novaha/novaha/lib/daemon"
)

func spec(t *testing.T, command string, args ...string) daemon.Spec {
	dir := t.TempDir()
	return daemon.Spec{Command: command, Args: args,
		PidFile: filepath.Join(dir, "run", "d.pid"), LogFile: filepath.Join(dir, "log", "d.log")}
}

func TestStartRunningStop(t *testing.T) {
	// A script run by its interpreter: the command line is "/bin/sh script args".
	dir := t.TempDir()
	script := filepath.Join(dir, "fake-nova-compute")
	s := spec(t, script, "--config-file", "/x y.conf")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho started \"$@\"\nwhile :; do sleep 0.05; done\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	pid, err := daemon.Start(s)
	if err != nil {
		t.Fatal(err)
	}
	got, stale, err := daemon.Running(s)
	if err != nil || got != pid || stale {
		t.Fatalf("Running = %d %t %v, want %d", got, stale, err, pid)
	}
	b, _ := os.ReadFile(s.PidFile)
	if strings.TrimSpace(string(b)) != strconv.Itoa(pid) {
		t.Errorf("pid file %q, want %d", b, pid)
	}
	if sid, _ := getsid(pid); sid != pid {
		t.Errorf("the daemon's session is %d, want its own (%d)", sid, pid)
	}
	// Its output goes to its log file (waited for: the shell may not have run yet).
	deadline := time.Now().Add(60 * time.Second)
	for {
		log, _ := os.ReadFile(s.LogFile)
		if strings.Contains(string(log), "started --config-file /x y.conf") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("log file: %q", log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := daemon.Stop(ctx, s, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := daemon.Running(s); got != 0 {
		t.Errorf("still running after stop: %d", got)
	}
	if _, err := os.Stat(s.PidFile); !os.IsNotExist(err) {
		t.Errorf("pid file left after stop: %v", err)
	}
	// Stop on a stopped daemon is fine.
	if err := daemon.Stop(ctx, s, time.Second); err != nil {
		t.Errorf("second stop: %v", err)
	}
}

func TestStalePidIsNotTheDaemon(t *testing.T) {
	s := spec(t, "sleep", "1000")
	if err := os.MkdirAll(filepath.Dir(s.PidFile), 0o755); err != nil {
		t.Fatal(err)
	}
	// This test's own pid: a live process, but not "sleep 1000".
	if err := os.WriteFile(s.PidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pid, stale, err := daemon.Running(s)
	if err != nil || pid != 0 || !stale {
		t.Fatalf("Running = %d %t %v, want a stale pid file", pid, stale, err)
	}
	// Stop must not signal this process; it removes the stale file.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := daemon.Stop(ctx, s, time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.PidFile); !os.IsNotExist(err) {
		t.Errorf("stale pid file kept: %v", err)
	}
	// The same command with other arguments is not the daemon either.
	pid, err = daemon.Start(spec(t, "sleep", "999"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = killPid(pid) }()
	if err := os.WriteFile(s.PidFile, []byte(strconv.Itoa(pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, stale, _ := daemon.Running(s); got != 0 || !stale {
		t.Errorf("sleep 999 taken for sleep 1000: %d %t", got, stale)
	}
}

func TestDeadDaemonIsNotRunning(t *testing.T) {
	s := spec(t, "sleep", "1000")
	pid, err := daemon.Start(s)
	if err != nil {
		t.Fatal(err)
	}
	if got, _, _ := daemon.Running(s); got != pid {
		t.Fatalf("Running = %d, want %d", got, pid)
	}
	if err := killPid(pid); err != nil {
		t.Fatal(err)
	}
	// It stays a zombie of this test process (nothing reaps it): still not running.
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, stale, _ := daemon.Running(s)
		if got == 0 && stale {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a killed daemon still reads as running (%d)", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestStopKillsWhatIgnoresSIGTERM(t *testing.T) {
	s := spec(t, "/bin/sh", "-c", "trap '' TERM; while :; do sleep 0.05; done")
	pid, err := daemon.Start(s)
	if err != nil {
		t.Fatal(err)
	}
	// Give the shell time to install its trap.
	time.Sleep(200 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	if err := daemon.Stop(ctx, s, 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := daemon.Running(s); got != 0 {
		t.Errorf("pid %d survived", pid)
	}
	t.Logf("stopped in %s", time.Since(start))
}

func TestMissingCommand(t *testing.T) {
	s := spec(t, "/nonexistent/nova-compute")
	if err := s.Installed(); err == nil {
		t.Error("Installed: a missing program is installed")
	}
	if _, err := daemon.Start(s); err == nil {
		t.Error("Start: a missing program started")
	}
}

func TestStartWithInputHandsOverAPipe(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "reader")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nread -r line\necho \"got $line\"\nwhile :; do sleep 0.05; done\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	s := spec(t, script)
	if _, err := daemon.StartWithInput(s, make([]byte, 65<<10)); err == nil {
		t.Fatal("StartWithInput took more than a pipe holds")
	}
	if _, err := daemon.StartWithInput(s, []byte("the-secret\n")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	defer daemon.Stop(ctx, s, time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for {
		log, _ := os.ReadFile(s.LogFile)
		if strings.Contains(string(log), "got the-secret") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("log file: %q", log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
