package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/novaha/novaha/lib/daemon"
	"github.com/novaha/novaha/lib/evacuation"
	"github.com/novaha/novaha/lib/nova"
	"github.com/novaha/novaha/lib/ocf"
)

// staleAfter is how old the status may be before monitor calls the controller stuck:
// a round that ends, even in errors, rewrites it, and every call of a round is bounded
// by evacuation.DefaultCallTimeout.
func staleAfter(interval time.Duration) time.Duration {
	return max(5*evacuation.DefaultCallTimeout, 10*interval)
}

// start launches the controller and returns once it has written its first status.
//
// Before that, it logs in to Keystone and reads Nova's version: credentials Keystone
// refuses, or a configuration it cannot use (a missing clouds.yaml entry), fail with
// OCF_ERR_CONFIGURED. Nova or Keystone unreachable is not this node's fault: the
// controller starts all the same and keeps trying, and monitor fails the resource
// only after nova_down_timeout.
func start(ctx context.Context, r *ocf.Request, e env) error {
	ps := pathsOf(r)
	exe, err := e.exe()
	if err != nil {
		return fmt.Errorf("finding this program: %w", err)
	}
	sp := spec(exe, r.Instance(), ps)
	if pid, _, err := daemon.Running(sp); err != nil {
		return err
	} else if pid != 0 {
		r.Log().Info("the controller is running already", "pid", pid)
		return nil
	}
	cfg, err := novaConfig(ctx, r, e)
	if err != nil {
		return err
	}
	check := cfg
	check.FreshToken = true
	cctx, cancel := context.WithTimeout(ctx, max(r.Timeout()/3, 5*time.Second))
	c, err := e.dial(cctx, check)
	cancel()
	switch {
	case errors.Is(err, nova.ErrUnauthorized) || errors.Is(err, nova.ErrInvalidConfig):
		return ocf.Errorf(ocf.ErrConfigured, "%v", err)
	case err != nil:
		r.Log().Warn("Nova cannot be reached now; the controller starts and keeps trying", "error", err.Error())
	default:
		if r.Bool(paramStopped) && !c.MaxMicroversion().AtLeast(nova.MicroversionEvacuateStopped) {
			r.Log().Warn("stopped is set but Nova offers no microversion 2.95: evacuated instances keep their power state",
				"max_microversion", c.MaxMicroversion().String())
		}
		c.Close()
	}

	_ = os.Remove(ps.Status)
	_ = os.Remove(ps.NovaDown)
	child := childConfig{Instance: r.Instance(), Paths: ps, Verbose: r.Bool(paramVerbose), Nova: connOf(cfg), Settings: settingsOf(r)}
	pid, err := launch(sp, child, os.Environ())
	if err != nil {
		return err
	}
	r.Log().Info("controller launched", "pid", pid)
	for {
		st, err := evacuation.ReadStatus(ps.Status)
		if err == nil && st.PID == pid {
			if !st.NovaOK {
				r.Log().Warn("the controller started but cannot reach Nova yet", "error", st.Error)
			}
			r.Log().Info("controller running", "pid", pid, "round", st.Round)
			return nil
		}
		if now, _, _ := daemon.Running(sp); now != pid {
			_ = os.Remove(ps.PID)
			return fmt.Errorf("the controller ended during start%s", lastLogLine(ps.Log))
		}
		select {
		case <-ctx.Done():
			_ = daemon.Stop(context.Background(), sp, time.Second)
			return fmt.Errorf("the controller finished no round before the start timeout: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// lastLogLine is ": <the log's last line>", or "" when there is none.
func lastLogLine(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if l := strings.TrimSpace(lines[len(lines)-1]); l != "" {
		return ": " + l
	}
	return ""
}

// stop ends the controller: SIGTERM, then SIGKILL within the stop timeout.
func stop(ctx context.Context, r *ocf.Request, e env) error {
	ps := pathsOf(r)
	exe, err := e.exe()
	if err != nil {
		return fmt.Errorf("finding this program: %w", err)
	}
	sp := spec(exe, r.Instance(), ps)
	if err := daemon.Stop(ctx, sp, stopGrace(ctx)); err != nil {
		return fmt.Errorf("stopping the controller: %w", err)
	}
	for _, f := range []string{ps.Status, ps.NovaDown} {
		if err := os.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("removing %s: %w", f, err)
		}
	}
	return nil
}

// monitor checks that the controller runs and makes progress.
//
//   - no controller process: OCF_NOT_RUNNING when it was stopped (no pid file) or in a
//     probe, else a failure (it died);
//   - its status not rewritten for staleAfter: a failure (stuck);
//   - Nova or Keystone unreachable: degraded, and a failure once that has lasted
//     nova_down_timeout (monitor records since when in a file of its own);
//   - the mass-failure guard holds evacuations back: degraded, logged.
func monitor(_ context.Context, r *ocf.Request, e env) error {
	ps := pathsOf(r)
	exe, err := e.exe()
	if err != nil {
		return fmt.Errorf("finding this program: %w", err)
	}
	pid, stale, err := daemon.Running(spec(exe, r.Instance(), ps))
	if err != nil {
		return err
	}
	if pid == 0 {
		if r.IsProbe() || !stale {
			return ocf.NotRunning
		}
		return ocf.Errorf(ocf.ErrGeneric, "the controller process is gone%s", lastLogLine(ps.Log))
	}
	now := e.now()
	st, err := evacuation.ReadStatus(ps.Status)
	if err != nil {
		if fi, serr := os.Stat(ps.PID); serr == nil && now.Sub(fi.ModTime()) < staleAfter(r.Duration(paramInterval)) {
			return nil // started moments ago
		}
		return ocf.Errorf(ocf.ErrGeneric, "the controller (pid %d) writes no status: %v", pid, err)
	}
	if age := now.Sub(st.Updated); age > staleAfter(r.Duration(paramInterval)) {
		return ocf.Errorf(ocf.ErrGeneric, "the controller (pid %d) is stuck: its last round ended %s ago", pid, age.Round(time.Second))
	}
	if !st.NovaOK {
		since := novaDownSince(ps.NovaDown, now)
		limit := r.Duration(paramNovaDownTimeout)
		if limit > 0 && now.Sub(since) >= limit {
			return ocf.Errorf(ocf.ErrGeneric, "the controller cannot reach Nova since %s: %s", since.UTC().Format(time.RFC3339), st.Error)
		}
		r.Log().Warn("the controller cannot reach Nova", "since", since.UTC().Format(time.RFC3339), "error", st.Error)
		return ocf.Errorf(ocf.Degraded, "cannot reach Nova: %s", st.Error)
	}
	_ = os.Remove(ps.NovaDown)
	if st.Guard {
		r.Log().Warn("mass-failure guard: evacuations held back", "reason", st.GuardReason)
		return ocf.Errorf(ocf.Degraded, "mass-failure guard holds evacuations back: %s", st.GuardReason)
	}
	// An evacuation stuck in flight holds its host back until an operator settles it.
	for _, h := range st.Hosts {
		for id, why := range h.Stuck {
			r.Log().Warn("a stuck evacuation holds its host back", "host", h.Host, "instance", id, "reason", why)
			return ocf.Errorf(ocf.Degraded, "%s held back: instance %s: %s (NovaEvacuate status)", h.Host, id, why)
		}
	}
	return nil
}

// novaDownSince is when monitor first saw Nova unreachable in this outage, recorded
// in path on first sight.
func novaDownSince(path string, now time.Time) time.Time {
	if b, err := os.ReadFile(path); err == nil {
		if t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(string(b))); err == nil && !t.After(now) {
			return t
		}
	}
	_ = os.WriteFile(path, []byte(now.UTC().Format(time.RFC3339Nano)+"\n"), 0o644)
	return now
}
