// Command dummyagent is a test-only OCF resource agent built on lib/ocf, in the spirit
// of ocf:heartbeat:Dummy: it "runs" while a state file in HA_RSCTMP exists. The
// framework's tests build it and run it under ocf-tester.
package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/novaha/novaha/lib/ocf"
)

func main() {
	os.Exit(agent().Main(os.Args, os.Environ(), os.Stdout, os.Stderr))
}

func agent() *ocf.Agent {
	return &ocf.Agent{
		Name:      "Dummy",
		Version:   "0.1",
		ShortDesc: "Test agent that runs while its state file exists",
		LongDesc: `A test-only agent: start writes a state file in HA_RSCTMP, stop removes it,
monitor reports whether it exists.

At depth 10, monitor also checks that the file holds the value of fake.`,
		Params: []ocf.Param{
			{Name: "state", Type: ocf.String, Unique: true,
				ShortDesc: "State file",
				LongDesc:  "Absolute path of the state file; by default Dummy-<instance>.state in HA_RSCTMP."},
			{Name: "fake", Aliases: []string{"fake_value"}, Type: ocf.String, Default: "dummy",
				ShortDesc: "Value written to the state file"},
			{Name: "count", Type: ocf.Integer, Default: "1",
				ShortDesc: "A positive integer"},
			{Name: "delay", Type: ocf.Duration, Default: "0",
				ShortDesc: "How long start takes"},
			{Name: "binary", Type: ocf.String, Default: "/bin/sh",
				ShortDesc: "A program that must be installed"},
			{Name: "verbose", Type: ocf.Boolean, Default: "false",
				ShortDesc: "Log more"},
			{Name: "password", Type: ocf.String, Secret: true,
				ShortDesc: "A secret that is never logged"},
		},
		Validate: validate,
		Actions: []ocf.Action{
			{Name: ocf.Start, Timeout: 20 * time.Second, Handler: start},
			{Name: ocf.Stop, Timeout: 20 * time.Second, Handler: stop},
			{Name: ocf.Monitor, Timeout: 20 * time.Second, Interval: 10 * time.Second, Handler: monitor},
			{Name: ocf.Monitor, Timeout: 30 * time.Second, Interval: 60 * time.Second, Depth: 10},
		},
	}
}

func stateFile(r *ocf.Request) string {
	if s := r.String("state"); s != "" {
		return s
	}
	return filepath.Join(r.StateDir(), "Dummy-"+strings.ReplaceAll(r.Instance(), "/", "_")+".state")
}

func validate(_ context.Context, r *ocf.Request) error {
	if _, err := os.Stat(r.String("binary")); err != nil {
		return ocf.Errorf(ocf.NotInstalled, "binary %s: %w", r.String("binary"), err)
	}
	if s := r.String("state"); s != "" && !filepath.IsAbs(s) {
		return fmt.Errorf("state %q: not an absolute path", s)
	}
	if r.Int("count") < 1 {
		return fmt.Errorf("count %d: want at least 1", r.Int("count"))
	}
	return nil
}

func start(ctx context.Context, r *ocf.Request) error {
	if d := r.Duration("delay"); d > 0 {
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return fmt.Errorf("waiting %s: %w", d, ctx.Err())
		}
	}
	f := stateFile(r)
	if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(f, []byte(r.String("fake")+"\n"), 0o644); err != nil {
		return err
	}
	if r.Bool("verbose") {
		r.Log().Info("started", "state", f, "password_set", r.IsSet("password"))
	}
	return nil
}

func stop(_ context.Context, r *ocf.Request) error {
	err := os.Remove(stateFile(r))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func monitor(_ context.Context, r *ocf.Request) error {
	b, err := os.ReadFile(stateFile(r))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return ocf.NotRunning
	case err != nil:
		return err
	case r.Depth() >= 10 && strings.TrimSpace(string(b)) != r.String("fake"):
		return ocf.Errorf(ocf.ErrGeneric, "state file holds %q, want %q", strings.TrimSpace(string(b)), r.String("fake"))
	}
	return nil
}
