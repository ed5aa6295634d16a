package virttest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The machine's own libvirt sockets.
const (
	systemSocket   = "/run/libvirt/libvirt-sock"
	virtlogdSocket = "/run/libvirt/virtlogd-sock"
	// SystemURI is the system QEMU driver.
	SystemURI = "qemu:///system"
)

// System is libvirtd serving qemu:///system on the machine's own socket: one this
// package started, or the one that was already running (then Stop leaves it alone).
type System struct {
	URI      string // SystemURI
	dir      string
	libvirtd *proc
	virtlogd *proc
}

// StartSystem makes sure libvirtd serves qemu:///system, with virtlogd beside it, and
// starts whichever of the two is not running. The first start probes QEMU's
// capabilities, which takes a few seconds; libvirt caches them.
func StartSystem(ctx context.Context) (*System, error) {
	if err := Available("libvirtd", "virtlogd", "virsh", "qemu-system-x86_64"); err != nil {
		return nil, err
	}
	s := &System{URI: SystemURI}
	dir, err := shortTempDir("novaha-libvirtd")
	if err != nil {
		return nil, err
	}
	s.dir = dir
	ok := false
	defer func() {
		if !ok {
			s.Stop()
		}
	}()
	if !listening(virtlogdSocket) {
		// QEMU's output goes through virtlogd: without it no domain starts.
		s.virtlogd, err = start(dir, "virtlogd", nil, nil, "virtlogd")
		if err != nil {
			return nil, err
		}
		if err := waitUntil(ctx, s.virtlogd, "virtlogd's socket", func() bool { return listening(virtlogdSocket) }); err != nil {
			return nil, err
		}
	}
	if !listening(systemSocket) {
		s.libvirtd, err = start(dir, "libvirtd", nil, nil, "libvirtd")
		if err != nil {
			return nil, err
		}
		if err := waitUntil(ctx, s.libvirtd, "libvirtd's socket", func() bool { return listening(systemSocket) }); err != nil {
			return nil, err
		}
	}
	// virsh waits for the drivers to finish starting.
	if _, err := Virsh(ctx, s.URI, "version"); err != nil {
		if s.libvirtd != nil {
			err = fmt.Errorf("%w\nlibvirtd: %s", err, s.libvirtd.tail())
		}
		return nil, err
	}
	ok = true
	return s, nil
}

// StartSystemTest is StartSystem for a test, stopped when it ends.
func StartSystemTest(t testing.TB) *System {
	t.Helper()
	Require(t, "libvirtd", "virtlogd", "virsh", "qemu-system-x86_64")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := StartSystem(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// Started reports whether this package started libvirtd (rather than finding it).
func (s *System) Started() bool { return s.libvirtd != nil }

// Stop ends the daemons this package started (libvirtd first; the domains it runs are
// not stopped by that, so remove them first) and removes their directory.
func (s *System) Stop() {
	s.libvirtd.stop(15 * time.Second)
	s.virtlogd.stop(5 * time.Second)
	if s.dir != "" {
		_ = os.RemoveAll(s.dir)
	}
}

// TestDaemon is a private libvirtd with only libvirt's built-in test driver (no QEMU, no
// networks, no storage), on sockets of its own. Its test:///default hypervisor has one
// running domain, "test", and keeps its state for as long as the daemon runs (a
// connection held open by the daemon's owner keeps libvirt from resetting it).
//
// It also listens on 127.0.0.1 over TCP, where it requires a SASL login (DIGEST-MD5,
// which libvirt accepts on plain TCP since it encrypts) as SASLUser with SASLPassword.
type TestDaemon struct {
	Dir    string
	Socket string // the read-write Unix socket
	// URI reaches the test driver through the Unix socket, without authentication.
	URI string
	// TCPURI reaches it over TCP, with a SASL login.
	TCPURI       string
	SASLUser     string
	SASLPassword string

	daemon   *proc
	holder   *proc
	holderIn *os.File
}

// StartTestDaemon starts a TestDaemon in a new directory under /tmp.
func StartTestDaemon(ctx context.Context) (*TestDaemon, error) {
	if err := Available("libvirtd", "virsh", "saslpasswd2"); err != nil {
		return nil, err
	}
	dir, err := shortTempDir("novaha-virtd")
	if err != nil {
		return nil, err
	}
	d := &TestDaemon{Dir: dir, Socket: filepath.Join(dir, "libvirt-sock"), SASLUser: "fencer",
		SASLPassword: "pw-" + randomHex(12)}
	d.URI = "test+unix:///default?socket=" + d.Socket
	ok := false
	defer func() {
		if !ok {
			d.Stop()
		}
	}()
	// An empty driver directory: libvirtd loads no driver module (they would share
	// state with the machine's own daemon) and serves only the built-in test driver.
	if err := os.Mkdir(filepath.Join(dir, "drivers"), 0o755); err != nil {
		return nil, err
	}
	if err := d.sasl(ctx); err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		err = d.startDaemon(ctx, port)
		if err == nil {
			break
		}
		if attempt == 2 {
			return nil, err
		}
	}
	// Hold a connection, so that the test driver keeps its state between clients.
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	d.holderIn = w
	d.holder, err = start(dir, "virsh-holder", nil, r, "virsh", "-q", "-c", d.URI)
	r.Close()
	if err != nil {
		return nil, err
	}
	if _, err := Virsh(ctx, d.URI, "list", "--all"); err != nil {
		return nil, err
	}
	ok = true
	return d, nil
}

// sasl writes the SASL configuration (found through SASL_CONF_PATH) and user database.
func (d *TestDaemon) sasl(ctx context.Context) error {
	db := filepath.Join(d.Dir, "passwd.db")
	conf := fmt.Sprintf("mech_list: digest-md5\nsasldb_path: %s\n", db)
	if err := os.WriteFile(filepath.Join(d.Dir, "libvirt.conf"), []byte(conf), 0o600); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "saslpasswd2", "-p", "-c", "-a", "libvirt", "-f", db, d.SASLUser)
	cmd.Stdin = strings.NewReader(d.SASLPassword)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("saslpasswd2: %v: %s", err, out)
	}
	return nil
}

func (d *TestDaemon) startDaemon(ctx context.Context, port int) error {
	conf := fmt.Sprintf(`unix_sock_dir = %q
unix_sock_rw_perms = "0700"
auth_unix_rw = "none"
auth_unix_ro = "none"
listen_tls = 0
listen_tcp = 1
listen_addr = "127.0.0.1"
tcp_port = "%d"
auth_tcp = "sasl"
`, d.Dir, port)
	confPath := filepath.Join(d.Dir, "libvirtd.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		return err
	}
	env := []string{"LIBVIRT_DRIVER_DIR=" + filepath.Join(d.Dir, "drivers"), "SASL_CONF_PATH=" + d.Dir}
	p, err := start(d.Dir, "libvirtd", env, nil, "libvirtd", "--listen", "-f", confPath, "-p", filepath.Join(d.Dir, "libvirtd.pid"))
	if err != nil {
		return err
	}
	if err := waitUntil(ctx, p, "the test libvirtd's socket", func() bool { return listening(d.Socket) }); err != nil {
		p.stop(5 * time.Second)
		return err
	}
	d.daemon = p
	d.TCPURI = fmt.Sprintf("test+tcp://127.0.0.1:%d/default", port)
	return nil
}

// StartTestDaemonTest is StartTestDaemon for a test, stopped when it ends.
func StartTestDaemonTest(t testing.TB) *TestDaemon {
	t.Helper()
	Require(t, "libvirtd", "virsh", "saslpasswd2")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d, err := StartTestDaemon(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Stop)
	return d
}

// Pause freezes the daemon (SIGSTOP): it accepts connections and requests and answers
// none, like a hypervisor that hangs. Resume undoes it.
func (d *TestDaemon) Pause() error { return d.daemon.cmd.Process.Signal(syscall.SIGSTOP) }

// Resume lets a paused daemon go on (SIGCONT).
func (d *TestDaemon) Resume() error { return d.daemon.cmd.Process.Signal(syscall.SIGCONT) }

// Stop ends the daemon and removes its directory.
func (d *TestDaemon) Stop() {
	if d.daemon != nil {
		_ = d.Resume()
	}
	if d.holderIn != nil {
		d.holderIn.Close()
	}
	d.holder.stop(5 * time.Second)
	d.daemon.stop(10 * time.Second)
	_ = os.RemoveAll(d.Dir)
}
