package virttest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// SSHD is an sshd on 127.0.0.1 that lets root in with either of two keys, and nothing
// else. Nothing of the machine's SSH configuration is touched: the clients are given the
// host key through KnownHosts, SSHCommand and Home.
type SSHD struct {
	Dir  string
	Host string // 127.0.0.1
	Port int
	User string // root
	// KeyFile is a private key without passphrase.
	KeyFile string
	// EncryptedKeyFile is a private key protected by Passphrase.
	EncryptedKeyFile string
	Passphrase       string
	// KnownHosts holds this server's host key, for [127.0.0.1]:Port.
	KnownHosts string
	// SSHCommand is an ssh wrapper that trusts KnownHosts (and nothing else) and
	// ignores ~/.ssh/config: give it as ssh_path to fence_virsh and fence_libvirt.
	SSHCommand string
	// Home is a home directory whose .ssh/known_hosts is KnownHosts, for clients that
	// read $HOME (libvirt's libssh transport in fence_libvirt).
	Home string

	proc *proc
}

// StartSSHD starts an SSHD in a new directory under /tmp.
func StartSSHD(ctx context.Context) (*SSHD, error) {
	if err := Available("/usr/sbin/sshd", "ssh", "ssh-keygen"); err != nil {
		return nil, err
	}
	dir, err := shortTempDir("novaha-sshd")
	if err != nil {
		return nil, err
	}
	s := &SSHD{Dir: dir, Host: "127.0.0.1", User: "root", Passphrase: "pp-" + randomHex(8),
		KeyFile: filepath.Join(dir, "id_plain"), EncryptedKeyFile: filepath.Join(dir, "id_encrypted"),
		KnownHosts: filepath.Join(dir, "known_hosts"), SSHCommand: filepath.Join(dir, "ssh"),
		Home: filepath.Join(dir, "home")}
	ok := false
	defer func() {
		if !ok {
			s.Stop()
		}
	}()
	hostKey := filepath.Join(dir, "host_ed25519")
	for _, k := range []struct{ path, pass string }{{hostKey, ""}, {s.KeyFile, ""}, {s.EncryptedKeyFile, s.Passphrase}} {
		if out, err := exec.CommandContext(ctx, "ssh-keygen", "-q", "-t", "ed25519", "-N", k.pass, "-C", "novaha-test",
			"-f", k.path).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("ssh-keygen: %v: %s", err, out)
		}
	}
	var auth []byte
	for _, k := range []string{s.KeyFile, s.EncryptedKeyFile} {
		pub, err := os.ReadFile(k + ".pub")
		if err != nil {
			return nil, err
		}
		auth = append(auth, pub...)
	}
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), auth, 0o600); err != nil {
		return nil, err
	}
	// sshd needs its privilege separation directory, which Debian creates at boot.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		if s.Port, err = freePort(); err != nil {
			return nil, err
		}
		err = s.startDaemon(ctx, hostKey)
		if err == nil {
			break
		}
		if attempt == 2 {
			return nil, err
		}
	}
	hostPub, err := os.ReadFile(hostKey + ".pub")
	if err != nil {
		return nil, err
	}
	fields := strings.Fields(string(hostPub))
	line := fmt.Sprintf("[%s]:%d %s %s\n", s.Host, s.Port, fields[0], fields[1])
	if err := os.WriteFile(s.KnownHosts, []byte(line), 0o600); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(s.Home, ".ssh"), 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(s.Home, ".ssh", "known_hosts"), []byte(line), 0o600); err != nil {
		return nil, err
	}
	wrapper := fmt.Sprintf("#!/bin/sh\nexec ssh -F /dev/null -o UserKnownHostsFile=%s -o GlobalKnownHostsFile=/dev/null "+
		"-o StrictHostKeyChecking=yes -o IdentitiesOnly=yes \"$@\"\n", s.KnownHosts)
	if err := os.WriteFile(s.SSHCommand, []byte(wrapper), 0o755); err != nil {
		return nil, err
	}
	ok = true
	return s, nil
}

func (s *SSHD) startDaemon(ctx context.Context, hostKey string) error {
	conf := fmt.Sprintf(`Port %d
ListenAddress %s
HostKey %s
AuthorizedKeysFile %s
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PidFile %s
LogLevel VERBOSE
MaxStartups 100
`, s.Port, s.Host, hostKey, filepath.Join(s.Dir, "authorized_keys"), filepath.Join(s.Dir, "sshd.pid"))
	confPath := filepath.Join(s.Dir, "sshd_config")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		return err
	}
	p, err := start(s.Dir, "sshd", nil, nil, "/usr/sbin/sshd", "-D", "-e", "-f", confPath)
	if err != nil {
		return err
	}
	addr := net.JoinHostPort(s.Host, strconv.Itoa(s.Port))
	if err := waitUntil(ctx, p, "sshd's port", func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	}); err != nil {
		p.stop(5 * time.Second)
		return err
	}
	s.proc = p
	return nil
}

// StartSSHDTest is StartSSHD for a test, stopped when it ends.
func StartSSHDTest(t testing.TB) *SSHD {
	t.Helper()
	Require(t, "/usr/sbin/sshd", "ssh", "ssh-keygen")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := StartSSHD(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// Stop ends sshd and removes its directory. Sessions still open end with their clients.
func (s *SSHD) Stop() {
	s.proc.stop(5 * time.Second)
	_ = os.RemoveAll(s.Dir)
}
