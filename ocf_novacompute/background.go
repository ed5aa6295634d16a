package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/novaha/novaha/lib/daemon"
	"github.com/novaha/novaha/lib/ocf"
)

// A fenced host's start cannot finish before the evacuation controller has moved the
// host's instances, which takes minutes, or forever while the mass-failure guard holds.
// Pacemaker computes no new transition while an action of the current one runs, so a
// start that waited in place would hold up the whole cluster: no fencing of another
// failed host, no recovery of the controller running the evacuation (the end-to-end
// test saw the guard's release wait ten minutes for two such starts to time out, and
// their failures then banned nova-compute from both hosts). So start hands the wait to
// a process of its own, "NovaCompute start-in-background <instance>", and returns;
// monitor reports the resource degraded, with what it waits for, until that process
// has started nova-compute and returned the host to Nova.

// cmdBackground is the subcommand of the background start.
const cmdBackground = "start-in-background"

// backgroundTimeout bounds the background start: past it, it fails and monitor fails
// the resource, so that Pacemaker starts it again.
const backgroundTimeout = 24 * time.Hour

// maxEnvironSize bounds what the background start reads from its pipe.
const maxEnvironSize = 60 << 10

// backgroundFiles are the background start's files, in the state directory.
type backgroundFiles struct {
	PID, Log string
	// Waiting holds what it waits for now; Failed why it failed.
	Waiting, Failed string
}

func backgroundFilesOf(r *ocf.Request) backgroundFiles {
	base := filepath.Join(r.StateDir(), "NovaCompute-"+strings.NewReplacer("/", "_", " ", "_").Replace(r.Instance())+".start")
	return backgroundFiles{PID: base + ".pid", Log: base + ".log", Waiting: base + ".waiting", Failed: base + ".failed"}
}

func backgroundSpec(r *ocf.Request, e env) (daemon.Spec, backgroundFiles, error) {
	f := backgroundFilesOf(r)
	exe, err := e.exe()
	if err != nil {
		return daemon.Spec{}, f, fmt.Errorf("finding this program: %w", err)
	}
	return daemon.Spec{Command: exe, Args: []string{cmdBackground, r.Instance()}, PidFile: f.PID, LogFile: f.Log}, f, nil
}

// backgroundRunning is the pid of the background start, 0 when none runs.
func backgroundRunning(r *ocf.Request, e env) (int, error) {
	sp, _, err := backgroundSpec(r, e)
	if err != nil {
		return 0, err
	}
	pid, _, err := daemon.Running(sp)
	return pid, err
}

// startInBackground launches the background start with the agent's environment on a
// pipe: the parameters, the password among them, are in neither its argv nor its
// environment.
func startInBackground(r *ocf.Request, e env, waitingFor string) error {
	sp, f, err := backgroundSpec(r, e)
	if err != nil {
		return err
	}
	// start has checked that none runs; an earlier one's failure is over.
	if err := os.Remove(f.Failed); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing %s: %w", f.Failed, err)
	}
	environ := r.Environ()
	b, err := json.Marshal(environ)
	if err != nil {
		return fmt.Errorf("encoding the environment: %w", err)
	}
	if err := daemon.WriteFile(f.Waiting, []byte(waitingFor)); err != nil {
		return err
	}
	sp.Env = childEnv(environ)
	pid, err := daemon.StartWithInput(sp, b)
	if err != nil {
		return fmt.Errorf("starting in the background: %w", err)
	}
	r.Log().Info("start continues in the background: monitor reports degraded until it is done",
		"pid", pid, "waiting_for", waitingFor, "log", f.Log)
	return nil
}

// runBackground is the background start: the start action, with no deadline but
// backgroundTimeout, run with the environment the agent's start gave it.
func runBackground(args []string, e env, stdin io.Reader, stderr io.Writer) int {
	if len(args) != 3 {
		fmt.Fprintf(stderr, "NovaCompute %s: run by the start action only\n", cmdBackground)
		return int(ocf.ErrArgs)
	}
	var environ []string
	if err := json.NewDecoder(io.LimitReader(stdin, maxEnvironSize)).Decode(&environ); err != nil {
		fmt.Fprintf(stderr, "NovaCompute %s: reading the environment: %v\n", cmdBackground, err)
		return int(ocf.ErrArgs)
	}
	kept := environ[:0]
	for _, kv := range environ {
		if !strings.HasPrefix(kv, "OCF_RESKEY_CRM_meta_timeout=") {
			kept = append(kept, kv)
		}
	}
	environ = append(kept, fmt.Sprintf("OCF_RESKEY_CRM_meta_timeout=%d", backgroundTimeout.Milliseconds()))
	e.background = true
	return agent(e).Main([]string{args[0], string(ocf.Start)}, environ, io.Discard, stderr)
}

// backgroundDone records the end of the background start: why it failed, if it did,
// for monitor, and no more waiting.
func backgroundDone(r *ocf.Request, err error) {
	f := backgroundFilesOf(r)
	if err != nil {
		if werr := daemon.WriteFile(f.Failed, []byte(err.Error())); werr != nil {
			r.Log().Error("cannot record the failure for monitor", "err", werr)
		}
	}
	_ = os.Remove(f.Waiting)
}

// backgroundState is what monitor reports while a background start runs or after it
// failed; ok is false when there is none, and monitor looks at nova-compute itself.
func backgroundState(r *ocf.Request, e env) (err error, ok bool) {
	pid, err := backgroundRunning(r, e)
	if err != nil {
		return err, true
	}
	f := backgroundFilesOf(r)
	if pid != 0 {
		what, _ := os.ReadFile(f.Waiting)
		if len(what) == 0 {
			what = []byte("nova-compute to start")
		}
		return ocf.Errorf(ocf.Degraded, "starting in the background (pid %d): waiting for %s", pid, what), true
	}
	if r.IsProbe() {
		return nil, false
	}
	if why, rerr := os.ReadFile(f.Failed); rerr == nil {
		return fmt.Errorf("the start in the background failed: %s (see %s)", why, f.Log), true
	}
	return nil, false
}

// stopBackground ends a background start and forgets it.
func stopBackground(ctx context.Context, r *ocf.Request, e env) error {
	sp, f, err := backgroundSpec(r, e)
	if err != nil {
		return err
	}
	if err := daemon.Stop(ctx, sp, 5*time.Second); err != nil {
		return fmt.Errorf("stopping the start in the background: %w", err)
	}
	for _, name := range []string{f.Failed, f.Waiting} {
		if err := os.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("removing %s: %w", name, err)
		}
	}
	return nil
}
