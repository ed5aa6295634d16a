// Package virttest starts the real libvirt daemons (and an SSH server) that the tests
// and benchmarks of libvirt fencing run against:
//
//   - System: libvirtd serving qemu:///system on the machine's own socket (with virtlogd,
//     which QEMU domains need), or the one already running; and Guest, a real QEMU/KVM
//     domain of 32 MiB with no disk, which boots into firmware and stays running;
//   - TestDaemon: a private libvirtd with only libvirt's built-in test driver, on its own
//     sockets, with a TCP listener that requires SASL (user name and password);
//   - SSHD: an sshd on 127.0.0.1 that lets root in with a key, for qemu+ssh and for
//     fence_virsh.
//
// It drives the daemons and virsh as programs and never imports the libvirt binding, so
// it builds without libvirt (go run ./test/bench needs no build tags). Every process it
// starts is ended by its PID; nothing it did not start is ever stopped.
package virttest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Programs the package runs, by Debian package.
var programs = map[string]string{
	"libvirtd":           "libvirt-daemon",
	"virtlogd":           "libvirt-daemon",
	"virsh":              "libvirt-clients",
	"qemu-system-x86_64": "qemu-system-x86",
	"saslpasswd2":        "sasl2-bin",
	"/usr/sbin/sshd":     "openssh-server",
	"ssh":                "openssh-client",
	"ssh-keygen":         "openssh-client",
}

// Available reports the first program of names (keys of the table above, all of them
// when none is given) that is missing, naming its Debian package.
func Available(names ...string) error {
	if len(names) == 0 {
		for n := range programs {
			names = append(names, n)
		}
	}
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			return fmt.Errorf("%s is not installed (Debian package %s; run test/deps.sh)", n, programs[n])
		}
	}
	return nil
}

// Require skips the test when a program is missing, or fails it when the environment
// says the test dependencies are installed (NOVAHA_REQUIRE_LIBVIRT, or
// NOVAHA_REQUIRE_BMCSIM, which make unit sets for all of them).
func Require(t testing.TB, names ...string) {
	t.Helper()
	if err := Available(names...); err != nil {
		if os.Getenv("NOVAHA_REQUIRE_LIBVIRT") != "" || os.Getenv("NOVAHA_REQUIRE_BMCSIM") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	if os.Geteuid() != 0 {
		t.Skip("the libvirt daemons and sshd need root")
	}
}

// proc is a daemon this package started.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

// start runs argv in the background with its output in dir/<name>.log.
func start(dir, name string, env []string, stdin *os.File, argv ...string) (*proc, error) {
	logPath := filepath.Join(dir, name+".log")
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if stdin != nil {
		cmd.Stdin = stdin
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// tail is the end of the process's log, for error messages.
func (p *proc) tail() string {
	data, _ := os.ReadFile(p.log)
	if len(data) > 2000 {
		data = data[len(data)-2000:]
	}
	return strings.TrimSpace(string(data))
}

// stop ends the process by its PID: SIGTERM, then SIGKILL after grace.
func (p *proc) stop(grace time.Duration) {
	if p == nil || p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// waitUntil polls cond every 50 ms until it holds, p exits, or ctx ends.
func waitUntil(ctx context.Context, p *proc, what string, cond func() bool) error {
	for !cond() {
		if p != nil && p.exited() {
			return fmt.Errorf("%s exited before %s: %s", p.name, what, p.tail())
		}
		select {
		case <-ctx.Done():
			msg := ""
			if p != nil {
				msg = ": " + p.tail()
			}
			return fmt.Errorf("waiting for %s: %w%s", what, ctx.Err(), msg)
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// listening reports whether something accepts connections on the Unix socket.
func listening(path string) bool {
	c, err := net.DialTimeout("unix", path, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// Virsh runs virsh on uri and returns its standard output, trimmed.
func Virsh(ctx context.Context, uri string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "virsh", append([]string{"-q", "-c", uri}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("virsh %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return strings.TrimSpace(out.String()), nil
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// shortTempDir makes a directory whose paths fit in a Unix socket address (108 bytes).
func shortTempDir(prefix string) (string, error) {
	dir, err := os.MkdirTemp("/tmp", prefix)
	if err != nil {
		return "", err
	}
	return dir, os.Chmod(dir, 0o755)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (it would crash the program first)
	return hex.EncodeToString(b)
}

// pidAlive reports whether a process exists (and is not a zombie).
func pidAlive(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] != 'Z'
}
