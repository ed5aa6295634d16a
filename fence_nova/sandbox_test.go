package main

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/novaha/novaha/lib/fence"
	"github.com/novaha/novaha/lib/nova"
)

// These tests run fence_nova against the real Nova control plane of test/nova/sandbox
// (start it with `test/nova/sandbox start`). They fence one compute host of it
// (NOVA_SANDBOX_HOST, default the last one) and put its record back as they found it.
// They run only with NOVA_SANDBOX_TESTS=1.

type realNova struct {
	cloudsFile string
	client     *nova.Client
	host       string
	found      nova.Service // the host's record as found
}

func sandbox(t *testing.T) *realNova {
	t.Helper()
	if os.Getenv("NOVA_SANDBOX_TESTS") != "1" {
		t.Skip("real Nova tests: set NOVA_SANDBOX_TESTS=1 with test/nova/sandbox running")
	}
	dir := os.Getenv("NOVA_SANDBOX_DIR")
	if dir == "" {
		dir = "/var/tmp/novaha-nova"
	}
	rn := &realNova{cloudsFile: filepath.Join(dir, "clouds.yaml")}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := nova.Dial(ctx, nova.Config{Cloud: "novaha-sandbox", CloudsFile: rn.cloudsFile})
	if err != nil {
		t.Fatalf("the Nova sandbox does not answer (test/nova/sandbox start): %v", err)
	}
	rn.client = c
	all, err := c.ComputeServices(ctx)
	if err != nil || len(all) == 0 {
		t.Fatalf("no compute host in the sandbox: %v", err)
	}
	rn.host = all[len(all)-1].Host
	if h := os.Getenv("NOVA_SANDBOX_HOST"); h != "" {
		rn.host = h
	}
	found := rn.record(t)
	rn.found = found
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s, err := nova.ComputeService(ctx, c, rn.host)
		if err == nil {
			u := nova.ServiceUpdate{ForcedDown: &found.ForcedDown, Status: found.Status}
			if !found.Enabled() {
				u.DisabledReason = found.DisabledReason
			}
			_, err = c.UpdateService(ctx, s, u)
		}
		if err != nil {
			t.Errorf("restoring %s: %v", rn.host, err)
		}
		c.Close()
	})
	return rn
}

func (rn *realNova) record(t *testing.T) nova.Service {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := nova.ComputeService(ctx, rn.client, rn.host)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (rn *realNova) update(t *testing.T, u nova.ServiceUpdate) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := rn.client.UpdateService(ctx, rn.record(t), u); err != nil {
		t.Fatal(err)
	}
}

// run runs fence_nova in-process against the sandbox, with clouds.yaml, as a
// deployment would, and extra stdin lines.
func (rn *realNova) run(t *testing.T, lines ...string) result {
	t.Helper()
	e := defaultEnv()
	e.attrd = func(*slog.Logger) attrd { return &fakeAttrd{outside: true} } // no cluster here
	e.getenv = func(string) string { return "" }
	stdin := "cloud=novaha-sandbox\nclouds_yaml=" + rn.cloudsFile + "\n" + strings.Join(lines, "\n") + "\n"
	var out, errb bytes.Buffer
	code := agent(e).Run(context.Background(), fence.Invocation{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb,
		Getenv: func(string) string { return "" }})
	return result{code, out.String(), errb.String()}
}

func expect(t *testing.T, what string, r result, code int, stdout, stderr string) {
	t.Helper()
	if r.code != code || (stdout != "" && r.stdout != stdout) || !strings.Contains(r.stderr, stderr) {
		t.Fatalf("%s: exit %d stdout %q stderr %q; want %d %q %q", what, r.code, r.stdout, r.stderr, code, stdout, stderr)
	}
}

func TestRealNovaLifecycle(t *testing.T) {
	rn := sandbox(t)
	plug := "plug=" + rn.host
	// Start from a host in service.
	rn.update(t, nova.ServiceUpdate{ForcedDown: nova.LiftForceDown, Status: "enabled"})
	alive := rn.record(t).Up()

	expect(t, "monitor", rn.run(t, "action=monitor"), 0, "", "")
	expect(t, "status of a host in service", rn.run(t, "action=status", plug), 0, "Status: ON\n", "")
	if r := rn.run(t, "action=list"); r.code != 0 || !strings.Contains(r.stdout, rn.host+",\n") {
		t.Fatalf("list: %+v", r)
	}

	expect(t, "off", rn.run(t, "action=off", plug), 0, "Success: Powered OFF\n", "")
	s := rn.record(t)
	m, ok := nova.ParseMarker(s.DisabledReason)
	if !s.ForcedDown || s.Enabled() || !ok || m.Phase != nova.Fenced || s.Up() {
		t.Fatalf("after off: %+v", s)
	}
	expect(t, "off again", rn.run(t, "action=off", plug), 0, "Success: Already OFF\n", "")
	if again := rn.record(t); again.DisabledReason != s.DisabledReason {
		t.Errorf("a second off rewrote the marker: %q -> %q", s.DisabledReason, again.DisabledReason)
	}
	expect(t, "status of a fenced host", rn.run(t, "action=status", plug), 2, "Status: OFF\n", "")

	expect(t, "on before the evacuation", rn.run(t, "action=on", plug, "power_timeout=2"), 1, "",
		"Timed out waiting to power ON: the evacuation of "+rn.host+" is not finished (fenced)")

	// The evacuation controller's part: the host is evacuated.
	rn.update(t, nova.ServiceUpdate{Status: "disabled", DisabledReason: nova.Marker{Phase: nova.Evacuated}.String()})
	expect(t, "on once evacuated", rn.run(t, "action=on", plug), 0, "Success: Powered ON\n", "")
	s = rn.record(t)
	switch {
	case s.ForcedDown:
		t.Errorf("still forced down after on: %+v", s)
	case alive && !s.Enabled():
		t.Errorf("nova-compute is up but the service was not enabled: %+v", s)
	case !alive && s.Enabled():
		t.Errorf("enabled although nova-compute is not up: %+v", s)
	}
}

func TestRealNovaKeepsTheOperatorsDisable(t *testing.T) {
	rn := sandbox(t)
	plug := "plug=" + rn.host
	rn.update(t, nova.ServiceUpdate{ForcedDown: nova.LiftForceDown, Status: "disabled", DisabledReason: "novaha test: maintenance"})
	expect(t, "off of an operator-disabled host", rn.run(t, "action=off", plug), 0, "Success: Powered OFF\n", "")
	s := rn.record(t)
	m, _ := nova.ParseMarker(s.DisabledReason)
	if !s.ForcedDown || !m.OperatorDisabled || m.OperatorReason != "novaha test: maintenance" {
		t.Fatalf("after off: %+v", s)
	}
	m.Phase, m.At, m.Moved = nova.Evacuated, time.Time{}, 0
	rn.update(t, nova.ServiceUpdate{Status: "disabled", DisabledReason: m.String()})
	expect(t, "on", rn.run(t, "action=on", plug), 0, "Success: Powered ON\n", "")
	if s := rn.record(t); s.ForcedDown || s.Enabled() || s.DisabledReason != "novaha test: maintenance" {
		t.Errorf("after on: %+v", s)
	}
}

func TestRealNovaFailures(t *testing.T) {
	rn := sandbox(t)
	expect(t, "unknown host", rn.run(t, "action=off", "plug=no-such-host-novaha"), 1, "",
		`no nova-compute service on "no-such-host-novaha"`)
	expect(t, "wrong password", rn.run(t, "action=monitor", "password=not-the-password"), 1, "",
		"Keystone refused the credentials (HTTP 401) while authenticating")
	// Keystone down, without stopping the sandbox's: a port where nothing listens.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String() + "/v3"
	_ = l.Close()
	r := rn.run(t, "action=monitor", "auth_url="+dead)
	expect(t, "Keystone down", r, 1, "", "Keystone is unreachable while authenticating")
	if n := strings.Count(r.stderr, "\n"); n != 1 {
		t.Errorf("Keystone down: %d lines, want one:\n%s", n, r.stderr)
	}
	if s := rn.record(t); s.ForcedDown != rn.found.ForcedDown || s.DisabledReason != rn.found.DisabledReason {
		t.Errorf("a failed run changed the host: %+v, found %+v", s, rn.found)
	}
}
