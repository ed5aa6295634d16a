package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/novaha/novaha/test/agenttest"
	"github.com/novaha/novaha/test/bmcsim"
)

// These tests run the built agent against OpenIPMI's ipmi_sim, whose chassis control
// records every power action and really stops and starts a stand-in host process.

var agentBuild = agenttest.Build{Name: "fence_ipmi"}

func TestMain(m *testing.M) {
	code := m.Run()
	agentBuild.Remove()
	os.Exit(code)
}

// binary builds fence_ipmi once per test run.
func binary(t *testing.T) string {
	t.Helper()
	return agentBuild.Path(t)
}

type outcome struct {
	code           int
	stdout, stderr string
	elapsed        time.Duration
}

func runAgent(t *testing.T, stdin string, args ...string) outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary(t), args...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Env = append(os.Environ(), "PCMK_service=")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	o := outcome{stdout: out.String(), stderr: errb.String(), elapsed: time.Since(start)}
	if ee, ok := err.(*exec.ExitError); ok {
		o.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running fence_ipmi: %v", err)
	}
	return o
}

// hostBMC starts a simulator whose "host" is a sleep process: power off kills it, power
// on starts it again after a short boot.
func hostBMC(t *testing.T, opts bmcsim.Options) (*bmcsim.BMC, func() bool) {
	t.Helper()
	if err := bmcsim.Available(); err != nil {
		t.Skip(err)
	}
	opts.OnCommand = `sleep 600 & echo $! > host.pid`
	opts.OffCommand = `[ -f host.pid ] && kill -9 "$(cat host.pid)"; rm -f host.pid`
	if opts.BootDelay == 0 {
		opts.BootDelay = 200 * time.Millisecond
	}
	opts.InitiallyOff = true
	opts.Dir = t.TempDir()
	// The stand-in host outlives the simulator, as a real host would: end it once the
	// simulator (registered later, so stopped first) can start no more.
	t.Cleanup(func() {
		if data, err := os.ReadFile(filepath.Join(opts.Dir, "host.pid")); err == nil {
			_ = exec.Command("kill", "-9", strings.TrimSpace(string(data))).Run()
		}
	})
	b := bmcsim.StartTest(t, opts)
	alive := func() bool {
		data, err := os.ReadFile(filepath.Join(b.Dir, "host.pid"))
		if err != nil {
			return false
		}
		return exec.Command("kill", "-0", strings.TrimSpace(string(data))).Run() == nil
	}
	return b, alive
}

func stdinFor(b *bmcsim.BMC, action string, extra ...string) string {
	lines := []string{"action=" + action, "ip=" + b.Host, fmt.Sprintf("ipport=%d", b.Port),
		"username=" + b.Username, "password=" + b.Password, "lanplus=1", "cipher=3", "nodename=compute-1"}
	return strings.Join(append(lines, extra...), "\n") + "\n"
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestPowerCycleOfARealHost(t *testing.T) {
	b, alive := hostBMC(t, bmcsim.Options{})

	if r := runAgent(t, stdinFor(b, "status")); r.code != 2 || r.stdout != "Status: OFF\n" {
		t.Fatalf("status of an off host: %+v", r)
	}
	if r := runAgent(t, stdinFor(b, "on")); r.code != 0 || r.stdout != "Success: Powered ON\n" {
		t.Fatalf("on: %+v", r)
	}
	waitFor(t, "the host to boot", alive)
	if r := runAgent(t, stdinFor(b, "status")); r.code != 0 || r.stdout != "Status: ON\n" {
		t.Fatalf("status of an on host: %+v", r)
	}

	r := runAgent(t, stdinFor(b, "off"))
	if r.code != 0 || r.stdout != "Success: Powered OFF\n" {
		t.Fatalf("off: %+v", r)
	}
	// Success was reported only after the power was read back as off, and the host
	// process was gone by then (the chassis control kills it before answering).
	if on, err := b.PowerState(); err != nil || on {
		t.Fatalf("power after off: on=%v err=%v", on, err)
	}
	if alive() {
		t.Fatal("the host process survived off")
	}
	evs, _ := b.Log()
	if !statusAfter(evs, bmcsim.ActionOff, "0") {
		t.Errorf("off was not verified by a status read: %v", evs)
	}
	if r := runAgent(t, stdinFor(b, "off")); r.code != 0 || r.stdout != "Success: Already OFF\n" {
		t.Fatalf("second off: %+v", r)
	}
}

// statusAfter reports whether a status read with value v follows the last action a.
func statusAfter(evs []bmcsim.Event, a, v string) bool {
	last := -1
	for i, e := range evs {
		if e.Action == a {
			last = i
		}
	}
	if last < 0 {
		return false
	}
	for _, e := range evs[last+1:] {
		if e.Action == bmcsim.ActionStatus && e.Value == v {
			return true
		}
	}
	return false
}

func TestRebootReallyCycles(t *testing.T) {
	b, alive := hostBMC(t, bmcsim.Options{})
	if r := runAgent(t, stdinFor(b, "on")); r.code != 0 {
		t.Fatalf("on: %+v", r)
	}
	waitFor(t, "the host to boot", alive)
	before, _ := os.ReadFile(filepath.Join(b.Dir, "host.pid"))

	r := runAgent(t, stdinFor(b, "reboot"))
	if r.code != 0 || r.stdout != "Success: Rebooted\n" {
		t.Fatalf("reboot: %+v", r)
	}
	evs, _ := b.Log()
	// The off must be verified (a status read of 0) before the on is sent.
	off, verified, on := -1, -1, -1
	for i, e := range evs {
		switch {
		case e.Action == bmcsim.ActionOff && off < 0:
			off = i
		case e.Action == bmcsim.ActionStatus && e.Value == "0" && off >= 0 && verified < 0:
			verified = i
		case e.Action == bmcsim.ActionOn && verified >= 0 && on < 0:
			on = i
		}
	}
	if off < 0 || verified < 0 || on < 0 {
		t.Fatalf("want off, a status read of off, then on; log:\n%v", evs)
	}
	waitFor(t, "the host to boot again", alive)
	after, _ := os.ReadFile(filepath.Join(b.Dir, "host.pid"))
	if bytes.Equal(before, after) {
		t.Errorf("the host process was not restarted (pid %s)", before)
	}
}

// method=cycle cannot be verified, so it is done as a verified off, then on.
func TestMethodCycle(t *testing.T) {
	b, _ := hostBMC(t, bmcsim.Options{})
	if r := runAgent(t, stdinFor(b, "on")); r.code != 0 {
		t.Fatalf("on: %+v", r)
	}
	r := runAgent(t, stdinFor(b, "reboot", "method=cycle"))
	if r.code != 0 || r.stdout != "Success: Rebooted\n" || !strings.Contains(r.stderr, "cannot be verified") {
		t.Fatalf("reboot method=cycle: %+v", r)
	}
	evs, _ := b.Log()
	if !statusAfter(evs, bmcsim.ActionOff, "0") {
		t.Errorf("method=cycle did not verify the power off: %v", evs)
	}
	if acts := bmcsim.Actions(evs, bmcsim.ActionStatus); strings.Join(acts, " ") != "on booted off on" && strings.Join(acts, " ") != "on off on" &&
		!strings.HasPrefix(strings.Join(acts, " "), "on booted off on") {
		t.Errorf("actions %v, want on, off, on", acts)
	}
}

func TestCommandLineAndPasswordScript(t *testing.T) {
	b, _ := hostBMC(t, bmcsim.Options{Password: "Scr1pted-Secret"})
	script := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho Scr1pted-Secret\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	r := runAgent(t, "", "-o", "status", "-a", b.Host, "-u", fmt.Sprint(b.Port), "-l", b.Username, "-S", script, "-P", "-C", "3", "-v")
	if r.code != 2 || r.stdout != "Status: OFF\n" {
		t.Fatalf("status: %+v", r)
	}
	if strings.Contains(r.stderr, "Scr1pted-Secret") {
		t.Errorf("verbose output leaks the password: %s", r.stderr)
	}
}

func TestCipherNegotiationAndPrivilege(t *testing.T) {
	b, _ := hostBMC(t, bmcsim.Options{Users: []bmcsim.User{{Name: "op", Password: "oppass", Privilege: "operator"}}})
	base := stdinFor(b, "status")
	// Without cipher=: the agent picks what the BMC offers.
	noCipher := strings.Replace(base, "cipher=3\n", "", 1)
	if r := runAgent(t, noCipher); r.code != 2 {
		t.Errorf("negotiated cipher suite: %+v", r)
	}
	op := strings.NewReplacer("username="+b.Username, "username=op", "password="+b.Password, "password=oppass").Replace(base)
	if r := runAgent(t, op+"privlvl=operator\n"); r.code != 2 {
		t.Errorf("operator privilege: %+v", r)
	}
	// A user-level session may read the power but not switch it: off must fail, and
	// must say so rather than time out.
	r := runAgent(t, strings.Replace(op, "action=status", "action=on", 1)+"privlvl=user\n")
	if r.code != 1 || r.stdout != "" {
		t.Errorf("power on at user privilege: %+v", r)
	}
	t.Logf("power on at user privilege: %s", strings.TrimSpace(r.stderr))
	if on, _ := b.PowerState(); on {
		t.Errorf("a user-privilege session switched the power on")
	}
}

func TestKgKey(t *testing.T) {
	b, _ := hostBMC(t, bmcsim.Options{BMCKey: "kgkey"})
	hexKey := fmt.Sprintf("%x", "kgkey")
	if r := runAgent(t, stdinFor(b, "status", "hexadecimal_kg="+hexKey)); r.code != 2 {
		t.Errorf("with the right Kg: %+v", r)
	}
	r := runAgent(t, stdinFor(b, "status", "hexadecimal_kg="+fmt.Sprintf("%x", "wrong"), "login_timeout=3"))
	if r.code != 1 || strings.Contains(r.stderr, hexKey) {
		t.Errorf("with a wrong Kg: %+v", r)
	}
}

func TestFailuresAreFastAndClear(t *testing.T) {
	b, _ := hostBMC(t, bmcsim.Options{})
	const loginTimeout, powerTimeout = 3 * time.Second, 20 * time.Second

	t.Run("wrong password", func(t *testing.T) {
		stdin := strings.Replace(stdinFor(b, "off"), "password="+b.Password, "password=Wr0ng-Secret", 1) + "login_timeout=3\n"
		r := runAgent(t, stdin)
		if r.code != 1 || !strings.Contains(strings.ToLower(r.stderr), "auth") {
			t.Errorf("exit %d stderr %q", r.code, r.stderr)
		}
		if strings.Contains(r.stderr, "Wr0ng-Secret") || r.stdout != "" {
			t.Errorf("the password leaked or stdout is not empty: %+v", r)
		}
		if r.elapsed > loginTimeout+time.Second {
			t.Errorf("took %s", r.elapsed)
		}
		t.Logf("wrong password reported in %s: %s", r.elapsed, strings.TrimSpace(r.stderr))
	})
	t.Run("unreachable BMC", func(t *testing.T) {
		stdin := strings.Replace(stdinFor(b, "off"), fmt.Sprintf("ipport=%d", b.Port), "ipport=9", 1) + "login_timeout=3\n"
		r := runAgent(t, stdin)
		if r.code != 1 || !strings.Contains(r.stderr, "timed out") && !strings.Contains(r.stderr, "refused") {
			t.Errorf("exit %d stderr %q", r.code, r.stderr)
		}
		if r.elapsed > loginTimeout+time.Second || r.elapsed > loginTimeout+powerTimeout {
			t.Errorf("took %s", r.elapsed)
		}
		t.Logf("unreachable BMC reported in %s: %s", r.elapsed, strings.TrimSpace(r.stderr))
	})
	t.Run("silent BMC", func(t *testing.T) {
		// A BMC that swallows packets: stop the simulator process but keep the port bound
		// by nothing that answers. A UDP socket that reads and never replies does that.
		conn := silentUDP(t)
		stdin := strings.NewReplacer("ip="+b.Host+"\n", "ip=127.0.0.1\n", fmt.Sprintf("ipport=%d", b.Port), "ipport="+conn).Replace(stdinFor(b, "off")) + "login_timeout=2\n"
		r := runAgent(t, stdin)
		if r.code != 1 || !strings.Contains(r.stderr, "timed out") {
			t.Errorf("exit %d stderr %q", r.code, r.stderr)
		}
		if r.elapsed > 2*time.Second+time.Second {
			t.Errorf("took %s, login_timeout is 2 s", r.elapsed)
		}
		t.Logf("silent BMC reported in %s: %s", r.elapsed, strings.TrimSpace(r.stderr))
	})
}
