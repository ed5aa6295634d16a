package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/novaha/novaha/lib/daemon"
	"github.com/novaha/novaha/lib/ocf"
)

// paths are the controller's files, named after the resource in the state directory.
type paths struct {
	PID    string `json:"pid"`    // lib/daemon's pid file
	Status string `json:"status"` // the controller's status after every round (lib/evacuation)
	Log    string `json:"log"`    // its stdout and stderr: crash output, and its log without syslog
	Lock   string `json:"lock"`   // held by the controller: one per resource on a node
	// NovaDown records since when monitor has seen the controller unable to reach
	// Nova (see monitor).
	NovaDown string `json:"nova_down"`
}

func pathsOf(r *ocf.Request) paths {
	dir := r.String(paramStateDir)
	if dir == "" {
		dir = r.StateDir()
	}
	base := filepath.Join(dir, "NovaEvacuate-"+strings.NewReplacer("/", "_", " ", "_").Replace(r.Instance()))
	return paths{PID: base + ".pid", Status: base + ".status.json", Log: base + ".log", Lock: base + ".lock", NovaDown: base + ".nova-down"}
}

// spec is the controller process of instance: this program, "controller <instance>".
func spec(exe, instance string, ps paths) daemon.Spec {
	return daemon.Spec{Command: exe, Args: []string{cmdController, instance}, PidFile: ps.PID, LogFile: ps.Log}
}

// launch starts the controller, detached (lib/daemon), with cfg on its standard input,
// so that no secret is in its argv or environment.
func launch(s daemon.Spec, cfg childConfig, environ []string) (int, error) {
	b, err := json.Marshal(cfg)
	if err != nil {
		return 0, fmt.Errorf("encoding the controller's configuration: %w", err)
	}
	s.Env = childEnviron(environ)
	pid, err := daemon.StartWithInput(s, b)
	if err != nil {
		return 0, fmt.Errorf("starting the controller: %w", err)
	}
	return pid, nil
}

// childEnviron is the agent's environment without its parameters: the controller
// gets those through the pipe, and the password must not sit in its environment.
func childEnviron(environ []string) []string {
	out := make([]string, 0, len(environ))
	for _, kv := range environ {
		if !strings.HasPrefix(kv, "OCF_RESKEY_") {
			out = append(out, kv)
		}
	}
	return out
}

// stopGrace is how long stop waits after SIGTERM before SIGKILL: half of what the
// stop operation has left.
func stopGrace(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return time.Until(dl) / 2
	}
	return 10 * time.Second
}
