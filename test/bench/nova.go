package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/novaha/novaha/lib/nova"
)

// fenceCompute is the Python agent fence_nova replaces.
const fenceCompute = "/usr/sbin/fence_compute"

// novaSuite compares fence_nova with fence_compute: metadata always; status and off
// against the real Nova sandbox (test/nova/sandbox) when it runs. Both agents fence the
// same sandbox host with the same credentials; before each off run the host is
// returned to service (not timed), and afterwards it is left as it was found.
//
// Debian 12's fence_compute crashes on Python 3.11 (inspect.getargspec is gone): it is
// compared as a copy patched to getfullargspec, made in a temporary directory.
func novaSuite(ctx context.Context, bin string, n int) (suite, error) {
	ours := filepath.Join(bin, "fence_nova")
	if _, err := os.Stat(ours); err != nil {
		return suite{}, fmt.Errorf("%s: build the agents first (make build)", ours)
	}
	python := []string{"PYTHONWARNINGS=ignore"}
	var notes []string
	theirs, cleanup, err := patchedPython(fenceCompute)
	if err != nil {
		notes = append(notes, "fence_compute: "+err.Error()+": no comparison")
	}
	compare := func(c command, args ...string) *command {
		if theirs == "" {
			return nil
		}
		c.label, c.argv, c.env = "fence_compute", append([]string{theirs}, args...), python
		return &c
	}
	pairs := []pair{{title: "metadata", n: n,
		ours:   command{label: "fence_nova", argv: []string{ours, "-o", "metadata"}, codes: []int{0}},
		theirs: compare(command{codes: []int{0}}, "-o", "metadata")}}

	setup := "no Nova sandbox"
	sb, err := sandboxTarget(ctx)
	stop := cleanup
	if err != nil {
		notes = append(notes, "status and off not measured: "+err.Error()+" (start it with test/nova/sandbox start)")
	} else {
		setup = fmt.Sprintf("real Nova (test/nova/sandbox, microversion up to %s), compute host %s", sb.client.MaxMicroversion(), sb.host)
		stdin := func(action string) string {
			return strings.Join([]string{"action=" + action, "plug=" + sb.host, "auth_url=" + sb.authURL, "login=" + sb.username,
				"passwd=" + sb.password, "tenant_name=" + sb.project, "endpoint_type=" + sb.endpoint}, "\n") + "\n"
		}
		reset := func(ctx context.Context) error { return sb.returnToService(ctx) }
		offRuns := max(3, n/4)
		pairs = append(pairs,
			pair{title: "status (real Nova)", n: offRuns,
				ours:   command{label: "fence_nova", argv: []string{ours}, stdin: stdin("status"), codes: []int{0}, before: reset},
				theirs: compare(command{stdin: stdin("status"), codes: []int{0}, before: reset})},
			pair{title: "off (real Nova)", n: offRuns,
				ours:   command{label: "fence_nova", argv: []string{ours}, stdin: stdin("off"), codes: []int{0}, before: reset},
				theirs: compare(command{stdin: stdin("off"), codes: []int{0}, before: reset})},
			pair{title: "off, token_cache=0 (real Nova)", n: offRuns,
				ours: command{label: "fence_nova", argv: []string{ours}, stdin: stdin("off") + "token_cache=0\n", codes: []int{0}, before: reset}},
		)
		notes = append(notes, "fence_nova keeps its Keystone token between runs (token_cache=1, the default; monitor keeps it "+
			"fresh under Pacemaker): the warm-up run logs in, the measured ones reuse the token. The token_cache=0 row logs in every run.")
		stop = func() {
			if err := sb.restore(context.Background()); err != nil {
				fmt.Fprintf(os.Stderr, "bench: restoring %s in the sandbox: %v\n", sb.host, err)
			}
			sb.client.Close()
			cleanup()
		}
	}
	return suite{setup: setup, pairs: pairs, note: strings.Join(notes, "\n"), stop: stop}, nil
}

// patchedPython copies a Python fence agent (fence_compute, fence_evacuate) into a
// temporary directory with inspect.getargspec replaced by getfullargspec, which is all
// Debian 12's need on Python 3.11.
func patchedPython(agent string) (path string, cleanup func(), err error) {
	src, err := os.ReadFile(agent)
	if err != nil {
		return "", func() {}, errors.New("not installed (make deps)")
	}
	dir, err := os.MkdirTemp("", "novaha-bench-")
	if err != nil {
		return "", func() {}, err
	}
	path = filepath.Join(dir, filepath.Base(agent))
	patched := bytes.ReplaceAll(src, []byte("inspect.getargspec("), []byte("inspect.getfullargspec("))
	if err := os.WriteFile(path, patched, 0o755); err != nil {
		_ = os.RemoveAll(dir)
		return "", func() {}, err
	}
	return path, func() { _ = os.RemoveAll(dir) }, nil
}

// sandbox is one compute host of the Nova sandbox, and how to reach it.
type sandbox struct {
	client                               *nova.Client
	authURL, username, password, project string
	endpoint                             string
	host                                 string
	before                               nova.Service // as found, restored at the end
}

// sandboxTarget connects to the sandbox with its clouds.yaml and picks the compute
// host to fence: NOVA_BENCH_HOST, or the last one.
func sandboxTarget(ctx context.Context) (*sandbox, error) {
	dir := os.Getenv("NOVA_SANDBOX_DIR")
	if dir == "" {
		dir = "/var/tmp/novaha-nova"
	}
	cloudsFile := filepath.Join(dir, "clouds.yaml")
	if _, err := os.Stat(cloudsFile); err != nil {
		return nil, fmt.Errorf("no Nova sandbox (%s)", cloudsFile)
	}
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	cfg := nova.Config{Cloud: "novaha-sandbox", CloudsFile: cloudsFile}
	c, err := nova.Dial(cctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("the Nova sandbox does not answer: %w", err)
	}
	all, err := c.ComputeServices(cctx)
	if err != nil || len(all) == 0 {
		c.Close()
		return nil, fmt.Errorf("the Nova sandbox has no compute host (%v)", err)
	}
	sb := &sandbox{client: c, host: all[len(all)-1].Host}
	if h := os.Getenv("NOVA_BENCH_HOST"); h != "" {
		sb.host = h
	}
	if sb.before, err = nova.ComputeService(cctx, c, sb.host); err != nil {
		c.Close()
		return nil, err
	}
	// fence_compute reads no clouds.yaml: both agents get the same explicit options.
	if err := sb.readCredentials(cloudsFile); err != nil {
		c.Close()
		return nil, err
	}
	return sb, nil
}

// readCredentials takes the options both agents are given from the sandbox's clouds.yaml.
func (sb *sandbox) readCredentials(cloudsFile string) error {
	data, err := os.ReadFile(cloudsFile)
	if err != nil {
		return err
	}
	get := func(key string) string {
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok && k == key {
				return strings.Trim(strings.TrimSpace(v), `"'`)
			}
		}
		return ""
	}
	sb.authURL, sb.username, sb.password, sb.project = get("auth_url"), get("username"), get("password"), get("project_name")
	sb.endpoint = get("interface")
	if sb.endpoint == "" {
		sb.endpoint = "public"
	}
	sb.endpoint += "URL"
	if sb.authURL == "" || sb.username == "" || sb.password == "" {
		return fmt.Errorf("%s lacks auth_url, username or password", cloudsFile)
	}
	return nil
}

// returnToService lifts the force-down and enables the host, whoever fenced it.
func (sb *sandbox) returnToService(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	s, err := nova.ComputeService(ctx, sb.client, sb.host)
	if err != nil {
		return err
	}
	if !s.ForcedDown && s.Enabled() {
		return nil
	}
	_, err = sb.client.UpdateService(ctx, s, nova.ServiceUpdate{ForcedDown: nova.LiftForceDown, Status: "enabled"})
	return err
}

// restore puts the host's record back as it was found.
func (sb *sandbox) restore(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	s, err := nova.ComputeService(ctx, sb.client, sb.host)
	if err != nil {
		return err
	}
	u := nova.ServiceUpdate{ForcedDown: &sb.before.ForcedDown, Status: sb.before.Status}
	if !sb.before.Enabled() {
		u.DisabledReason = sb.before.DisabledReason
	}
	_, err = sb.client.UpdateService(ctx, s, u)
	return err
}
