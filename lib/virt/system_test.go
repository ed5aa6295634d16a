package virt

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/novaha/novaha/lib/virt/virttest"
	"github.com/novaha/novaha/lib/virt/virturi"
)

// These tests run a real QEMU guest under the machine's libvirtd (qemu:///system),
// locally and over SSH.

func TestKVMGuest(t *testing.T) {
	sys := virttest.StartSystemTest(t)
	g := virttest.NewGuestTest(t, sys, false)
	t.Logf("guest %s (%s), KVM: %t", g.Name, g.UUID, g.KVM)
	c := dial(t, Config{URI: sys.URI})
	wantState(t, c, g.Name, Running)
	wantState(t, c, g.UUID, Running)
	pid := g.PID()
	if !virttest.ProcessAlive(pid) {
		t.Fatalf("the guest's QEMU (pid %d) is not running", pid)
	}

	start := time.Now()
	if err := c.Destroy(ctx(t), g.Name); err != nil {
		t.Fatal(err)
	}
	t.Logf("destroyed in %v", time.Since(start))
	wantState(t, c, g.Name, Shutoff)
	if virttest.ProcessAlive(pid) {
		t.Errorf("QEMU (pid %d) still runs after Destroy", pid)
	}
	if st, err := g.State(ctx(t)); err != nil || st != "shut off" {
		t.Errorf("virsh domstate after Destroy: %q, %v", st, err)
	}

	if err := c.Start(ctx(t), g.UUID); err != nil {
		t.Fatal(err)
	}
	wantState(t, c, g.Name, Running)
	if newPID := g.PID(); newPID == pid || !virttest.ProcessAlive(newPID) {
		t.Errorf("after Start, QEMU pid %d (before: %d) is not a new running process", newPID, pid)
	}
	if st, err := g.State(ctx(t)); err != nil || st != "running" {
		t.Errorf("virsh domstate after Start: %q, %v", st, err)
	}

	doms, err := c.Domains(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, d := range doms {
		if d.Name == g.Name {
			found = d.UUID == g.UUID && d.State == Running
		}
	}
	if !found {
		t.Errorf("Domains does not list %s (%s) running: %+v", g.Name, g.UUID, doms)
	}
}

func TestSSH(t *testing.T) {
	sys := virttest.StartSystemTest(t)
	sshd := virttest.StartSSHDTest(t)
	g := virttest.NewGuestTest(t, sys, true)

	t.Run("ssh command with a key", func(t *testing.T) {
		uri, err := virturi.SSH{Host: sshd.Host, Port: sshd.Port, User: sshd.User, KeyFile: sshd.KeyFile, Command: sshd.SSHCommand}.URI()
		if err != nil {
			t.Fatal(err)
		}
		c := dial(t, Config{URI: uri, ReadOnly: true})
		wantState(t, c, g.Name, Shutoff)
	})
	t.Run("libssh with an encrypted key", func(t *testing.T) {
		uri, err := virturi.SSH{Host: sshd.Host, Port: sshd.Port, User: sshd.User, KeyFile: sshd.EncryptedKeyFile,
			Libssh: true, KnownHosts: sshd.KnownHosts}.URI()
		if err != nil {
			t.Fatal(err)
		}
		var log syncBuffer
		c := dial(t, Config{URI: uri, Password: sshd.Passphrase, Logger: debugLogger(&log)})
		wantState(t, c, g.Name, Shutoff)
		if strings.Contains(log.String(), sshd.Passphrase) {
			t.Errorf("the passphrase is in the debug log:\n%s", log.String())
		}
		_, err = Dial(ctx(t), Config{URI: uri, Password: "wrong-" + sshd.Passphrase})
		if err == nil {
			t.Fatal("logged in with a wrong passphrase")
		}
		t.Logf("wrong passphrase: %v", err)
		if strings.Contains(err.Error(), sshd.Passphrase) {
			t.Errorf("the passphrase is in the error %q", err)
		}
	})
	t.Run("unknown host keys are refused", func(t *testing.T) {
		empty := filepath.Join(t.TempDir(), "known_hosts")
		if err := os.WriteFile(empty, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		wrapper := filepath.Join(t.TempDir(), "ssh")
		script := fmt.Sprintf("#!/bin/sh\nexec ssh -F /dev/null -o UserKnownHostsFile=%s -o GlobalKnownHostsFile=/dev/null \"$@\"\n", empty)
		if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		for _, s := range []virturi.SSH{
			{Host: sshd.Host, Port: sshd.Port, User: sshd.User, KeyFile: sshd.KeyFile, Command: wrapper},
			{Host: sshd.Host, Port: sshd.Port, User: sshd.User, KeyFile: sshd.KeyFile, Libssh: true, KnownHosts: empty},
		} {
			uri, err := s.URI()
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			_, err = Dial(ctx(t), Config{URI: uri})
			if err == nil {
				t.Errorf("%s: connected to a host whose key is unknown", uri)
				continue
			}
			t.Logf("%s: %v (%v)", uri, err, time.Since(start))
			if errors.Is(err, ErrInvalidConfig) || !strings.Contains(strings.ToLower(err.Error()), "host key") {
				t.Errorf("%s: %v should say that the host key is not known", uri, err)
			}
		}
	})
}
