package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/novaha/novaha/lib/virt/virttest"
	"github.com/novaha/novaha/test/agenttest"
)

// These tests run the built agent, as Pacemaker does (no arguments, options on stdin),
// against real libvirt daemons: a private test-driver libvirtd (test+unix, SASL over
// TCP), the machine's libvirtd with a real QEMU/KVM guest, and the same over SSH.

// The agent and its backend, in libexec/ beside it as make builds them.
var agentBuild = agenttest.Build{Name: "fence_libvirt", Tags: []string{"libvirt_dlopen"},
	Backend: backend, BackendPkg: "./backend"}

func TestMain(m *testing.M) {
	code := m.Run()
	agentBuild.Remove()
	os.Exit(code)
}

// binary builds fence_libvirt and its backend once per test run, as make does (dlopen
// build).
func binary(t *testing.T) string {
	t.Helper()
	return agentBuild.Path(t)
}

type outcome struct {
	code           int
	stdout, stderr string
	elapsed        time.Duration
}

func (o outcome) String() string {
	return fmt.Sprintf("exit %d after %v\nstdout: %s\nstderr: %s", o.code, o.elapsed.Round(time.Millisecond), o.stdout, o.stderr)
}

// exe runs argv with stdin and extra environment, bounded to a minute.
func exe(t *testing.T, stdin string, env []string, argv ...string) outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Env = append(os.Environ(), append([]string{"PCMK_service="}, env...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	o := outcome{stdout: out.String(), stderr: errb.String(), elapsed: time.Since(start)}
	if ee, ok := err.(*exec.ExitError); ok {
		o.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running %s: %v", argv[0], err)
	}
	return o
}

func fenceLibvirt(t *testing.T, stdin string, env ...string) outcome {
	t.Helper()
	return exe(t, stdin, env, binary(t))
}

func lines(kv ...string) string { return strings.Join(kv, "\n") + "\n" }

func expect(t *testing.T, what string, o outcome, code int, stdout string) {
	t.Helper()
	if o.code != code || !strings.Contains(o.stdout, stdout) {
		t.Fatalf("%s: want exit %d and %q\n%s", what, code, stdout, o)
	}
}

// A libvirtd that serves the test driver: off, status and on are separate processes that
// see one another's effect, as they do on a real hypervisor.
func TestTestDaemon(t *testing.T) {
	d := virttest.StartTestDaemonTest(t)
	base := []string{"uri=" + d.URI, "plug=test", "nodename=compute-1"}
	run := func(action string, extra ...string) outcome {
		return fenceLibvirt(t, lines(append(append([]string{"action=" + action}, base...), extra...)...))
	}
	expect(t, "status", run("status"), 0, "Status: ON")
	expect(t, "off", run("off"), 0, "Success: Powered OFF")
	expect(t, "status after off", run("status"), 2, "Status: OFF")
	if st, err := virttest.Virsh(context.Background(), d.URI, "domstate", "test"); err != nil || st != "shut off" {
		t.Errorf("virsh domstate after off: %q, %v", st, err)
	}
	expect(t, "list-status", run("list-status"), 0, "test,6695eb01-f6a4-8304-79aa-97f2502e193f,OFF")
	expect(t, "on", run("on"), 0, "Success: Powered ON")
	expect(t, "status after on", run("status"), 0, "Status: ON")
	expect(t, "reboot", run("reboot"), 0, "Success: Rebooted")
	expect(t, "monitor", run("monitor"), 0, "")
	expect(t, "status of an unknown domain", run("status", "plug=nosuch"), 1, "")
}

// SASL user name and password reach libvirt from stdin or from password_script, never
// from the command line; a wrong password fails without being shown.
func TestSASL(t *testing.T) {
	d := virttest.StartTestDaemonTest(t)
	base := []string{"action=status", "uri=" + d.TCPURI, "plug=test", "username=" + d.SASLUser}
	expect(t, "password on stdin", fenceLibvirt(t, lines(append(base, "password="+d.SASLPassword)...)), 0, "Status: ON")
	script := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho '"+d.SASLPassword+"'\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	expect(t, "password_script", fenceLibvirt(t, lines(append(base, "password_script="+script)...)), 0, "Status: ON")
	// The same from the command line (for an operator at a shell): -S, not -p.
	o := exe(t, "", nil, binary(t), "-o", "status", "--uri", d.TCPURI, "-n", "test", "-l", d.SASLUser, "-S", script)
	expect(t, "-S on the command line", o, 0, "Status: ON")

	o = fenceLibvirt(t, lines(append(base, "password=not-"+d.SASLPassword, "verbose=1")...))
	if o.code != 1 || !strings.Contains(o.stderr, "authentication failed") || strings.Contains(o.stderr, d.SASLPassword) {
		t.Errorf("wrong password: want exit 1, an authentication failure, and no password in the output\n%s", o)
	}
	o = fenceLibvirt(t, lines(base...))
	if o.code != 1 || o.elapsed > 5*time.Second {
		t.Errorf("no password: want a quick exit 1 (never a prompt)\n%s", o)
	}
}

// An unreachable hypervisor fails within the timeouts, with "timed out": a peer that
// accepts connections and never answers, and a libvirtd that hangs (SIGSTOP).
func TestUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var held []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	})
	silent := "test+tcp://" + l.Addr().String() + "/default"

	d := virttest.StartTestDaemonTest(t)
	if err := d.Pause(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = d.Resume() }()

	for _, tc := range []struct {
		name, stdin string
		limit       time.Duration
	}{
		{"status, silent peer", lines("action=status", "plug=test", "uri="+silent, "login_timeout=1"), time.Second},
		{"off, silent peer", lines("action=off", "plug=test", "uri="+silent, "login_timeout=1"), time.Second},
		{"status, hung libvirtd", lines("action=status", "plug=test", "uri="+d.URI, "login_timeout=2"), 2 * time.Second},
		{"list, hung libvirtd", lines("action=list", "uri="+d.URI, "login_timeout=1"), time.Second},
		// Under Pacemaker power_timeout defers to Pacemaker's, but each exchange is
		// still bounded.
		{"off under Pacemaker, hung libvirtd", lines("action=off", "plug=test", "uri="+d.URI, "login_timeout=1"), time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var env []string
			if strings.Contains(tc.name, "Pacemaker") {
				env = []string{"PCMK_service=pacemaker-fenced"}
			}
			o := fenceLibvirt(t, tc.stdin, env...)
			if o.code != 1 || !strings.Contains(o.stderr, "timed out") {
				t.Errorf("want exit 1 and \"timed out\"\n%s", o)
			}
			if o.elapsed > tc.limit+time.Second {
				t.Errorf("took %v, the limit was %v", o.elapsed, tc.limit)
			}
			if strings.Count(strings.TrimSpace(o.stderr), "\n") > 1 {
				t.Errorf("the failure should be one line (plus the usage hint at most):\n%s", o.stderr)
			}
		})
	}
}

// Without libvirt.so.0 the agent still describes and validates itself, and fails a
// device action with one clear line. The library is hidden by a bind mount in a private
// mount namespace.
func TestMissingLibrary(t *testing.T) {
	virttest.Require(t, "virsh")
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("no unshare (util-linux)")
	}
	lib, err := filepath.EvalSymlinks("/usr/lib/x86_64-linux-gnu/libvirt.so.0")
	if err != nil {
		t.Skipf("libvirt.so.0 is not where Debian puts it: %v", err)
	}
	hide := func(args ...string) outcome {
		script := `mount --bind /dev/null "$1" && shift && exec "$@"`
		return exe(t, "", nil, append([]string{"unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", lib, binary(t)},
			args...)...)
	}
	o := hide("-o", "status", "-n", "test", "--uri", "test:///default")
	if o.code != 1 || !strings.Contains(o.stderr, "libvirt.so.0 cannot be loaded") || strings.Count(o.stderr, "\n") != 1 {
		t.Errorf("status without libvirt.so.0: want exit 1 and one line naming libvirt.so.0\n%s", o)
	}
	if strings.Contains(o.stderr, "mount") {
		t.Fatalf("hiding the library failed:\n%s", o)
	}
	expect(t, "metadata without libvirt.so.0", hide("-o", "metadata"), 0, `<resource-agent name="fence_libvirt"`)
	expect(t, "validate-all without libvirt.so.0", hide("-o", "validate-all", "--uri", "qemu+tls://hv1/system"), 0, "")
}

// A real QEMU/KVM guest under the machine's libvirtd: off really stops its QEMU, on
// starts it again, list shows it.
func TestKVMGuest(t *testing.T) {
	sys := virttest.StartSystemTest(t)
	g := virttest.NewGuestTest(t, sys, false)
	ctx := context.Background()
	run := func(action string, extra ...string) outcome {
		return fenceLibvirt(t, lines(append([]string{"action=" + action, "plug=" + g.Name}, extra...)...))
	}
	expect(t, "status", run("status"), 0, "Status: ON")
	expect(t, "status by UUID", run("status", "plug="+g.UUID), 0, "Status: ON")
	pid := g.PID()
	if !virttest.ProcessAlive(pid) {
		t.Fatalf("QEMU (pid %d) is not running", pid)
	}
	o := run("off")
	expect(t, "off", o, 0, "Success: Powered OFF")
	t.Logf("off took %v", o.elapsed)
	if virttest.ProcessAlive(pid) {
		t.Errorf("QEMU (pid %d) still runs after off", pid)
	}
	if st, err := g.State(ctx); err != nil || st != "shut off" {
		t.Errorf("virsh domstate after off: %q, %v", st, err)
	}
	expect(t, "status after off", run("status"), 2, "Status: OFF")
	expect(t, "list", run("list"), 0, g.Name+","+g.UUID+"\n")
	expect(t, "list-status", run("list-status"), 0, g.Name+","+g.UUID+",OFF\n")

	expect(t, "on", run("on"), 0, "Success: Powered ON")
	if st, err := g.State(ctx); err != nil || st != "running" {
		t.Errorf("virsh domstate after on: %q, %v", st, err)
	}
	pid = g.PID()
	expect(t, "list-status", run("list-status"), 0, g.Name+","+g.UUID+",ON\n")

	o = run("reboot")
	expect(t, "reboot", o, 0, "Success: Rebooted")
	t.Logf("reboot took %v", o.elapsed)
	if virttest.ProcessAlive(pid) || !virttest.ProcessAlive(g.PID()) {
		t.Errorf("reboot: the old QEMU (pid %d) should be gone and a new one (pid %d) running", pid, g.PID())
	}
}

// fence_virsh's parameters reach the same hypervisor over SSH, and give the answers
// fence_virsh gives.
func TestFenceVirshDropIn(t *testing.T) {
	sys := virttest.StartSystemTest(t)
	sshd := virttest.StartSSHDTest(t)
	g := virttest.NewGuestTest(t, sys, false)
	virsh := []string{"ip=" + sshd.Host, fmt.Sprintf("ipport=%d", sshd.Port), "username=" + sshd.User,
		"identity_file=" + sshd.KeyFile, "ssh_path=" + sshd.SSHCommand, "plug=" + g.Name}

	ours := fenceLibvirt(t, lines(append([]string{"action=status"}, virsh...)...))
	expect(t, "status over qemu+ssh", ours, 0, "Status: ON")
	t.Logf("fence_libvirt status over ssh: %v", ours.elapsed)
	if fv, err := exec.LookPath("fence_virsh"); err == nil {
		theirs := exe(t, lines(append([]string{"action=status"}, virsh...)...), []string{"PYTHONWARNINGS=ignore"}, fv)
		t.Logf("fence_virsh status over ssh: %v", theirs.elapsed)
		if theirs.code != ours.code || strings.TrimSpace(theirs.stdout) != strings.TrimSpace(ours.stdout) {
			t.Errorf("fence_virsh answers differently:\nfence_virsh %s\nfence_libvirt %s", theirs, ours)
		}
	}
	expect(t, "off over qemu+ssh", fenceLibvirt(t, lines(append([]string{"action=off"}, virsh...)...)), 0, "Success: Powered OFF")
	if st, err := g.State(context.Background()); err != nil || st != "shut off" {
		t.Errorf("virsh domstate after off over ssh: %q, %v", st, err)
	}
	expect(t, "list over qemu+ssh", fenceLibvirt(t, lines(append([]string{"action=list"}, virsh...)...)), 0, g.Name+",")

	// A passphrase-protected key, with the passphrase as password: libvirt's libssh
	// transport, which checks the host key in $HOME/.ssh/known_hosts.
	libssh := []string{"action=on", "ip=" + sshd.Host, fmt.Sprintf("ipport=%d", sshd.Port), "login=" + sshd.User,
		"identity_file=" + sshd.EncryptedKeyFile, "passwd=" + sshd.Passphrase, "port=" + g.Name}
	o := fenceLibvirt(t, lines(libssh...), "HOME="+sshd.Home)
	expect(t, "on over qemu+libssh", o, 0, "Success: Powered ON")
	if strings.Contains(o.stderr, sshd.Passphrase) {
		t.Errorf("the passphrase is in the output:\n%s", o)
	}
	o = fenceLibvirt(t, lines(append(libssh, "passwd=wrong")...), "HOME="+sshd.Home)
	if o.code != 1 || strings.Contains(o.stderr, sshd.Passphrase) {
		t.Errorf("wrong passphrase: want exit 1, without the passphrase in the output\n%s", o)
	}
}
