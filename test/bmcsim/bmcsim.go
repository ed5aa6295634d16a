// Package bmcsim runs OpenIPMI's BMC simulator, ipmi_sim, for tests and for the end-to-end
// sandbox: a real IPMI 1.5 / 2.0 (RMCP+) LAN endpoint on 127.0.0.1 (or Options.Host)
// whose chassis power is a state file, and whose every chassis control request is
// appended to a log.
//
// ipmi_sim calls an external "chassis_control" program for power get/set; bmcsim writes
// that program (a bash script) so that powering off runs Options.OffCommand and powering
// on runs Options.OnCommand after Options.BootDelay, which lets the sandbox really stop
// and start a fake compute host's processes.
//
// ipmi_sim comes from the Debian package openipmi (test/deps.sh installs it). StartTest
// skips the test when it is missing, unless NOVAHA_REQUIRE_BMCSIM is set: CI, which
// installs it, should set that, so that a missing simulator fails instead of silently
// skipping.
//
// Facts about ipmi_sim 2.0.33 that shape this package: it supports cipher suite 3 but
// not 17; it binds its UDP port with address reuse, so a second simulator on the same port
// starts without error and steals packets (Start therefore checks the port is free); its
// socket is inherited by the programs it runs (the chassis script closes it before it
// starts anything long-lived); it runs the chassis program synchronously, so the BMC
// does not answer while OffCommand runs; it does not hold an RMCP+ login to the user's
// maximum privilege (a "user" account gets an administrator session if it asks), though
// it does refuse power control in a session opened at user level.
package bmcsim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Defaults of Options.
const (
	DefaultUsername = "admin"
	DefaultPassword = "password"
)

// Files in the state directory.
const (
	PowerFile    = "power"           // "1" or "0": the chassis power state
	LogFile      = "chassis.log"     // one line per chassis control request
	CommandsLog  = "commands.log"    // output of OnCommand and OffCommand
	SimOutput    = "ipmi_sim.out"    // ipmi_sim's own stdout and stderr
	LanConf      = "lan.conf"        // ipmi_sim -c
	EmuFile      = "sim.emu"         // ipmi_sim -f
	ChassisProg  = "chassis_control" // the program lan.conf names
	stoppedMark  = "stopped"         // tells pending boot jobs not to start the host
	lockFile     = "chassis.lock"    // held by every run of the chassis program
	bootJobs     = "boot.pids"       // PIDs of boot jobs (waiting out BootDelay)
	persistDir   = "ipmi_sim-state"  // ipmi_sim -s: kept users and SEL, wiped at start
	onScript     = "on.sh"
	offScript    = "off.sh"
	startTimeout = 10 * time.Second
)

// ErrNotInstalled reports that ipmi_sim (or bash, which the chassis script needs) is not
// on PATH.
var ErrNotInstalled = errors.New("bmcsim: ipmi_sim is not installed (Debian package openipmi; run test/deps.sh)")

// User is an extra BMC account beside the administrator of Options.
type User struct {
	Name, Password string
	// Privilege is the highest session privilege the user may have: "callback",
	// "user", "operator" or "admin" (not enforced by ipmi_sim for RMCP+ logins).
	Privilege string
}

// Options configure a simulated BMC. The zero value is usable.
type Options struct {
	// Username and Password of the administrator account (user 2); defaults
	// DefaultUsername and DefaultPassword. At most 16 and 20 bytes, printable, without
	// spaces or quotes (lan.conf cannot quote them).
	Username, Password string
	// Users are more accounts, numbered from 3.
	Users []User
	// BMCKey is the BMC key Kg for IPMI 2.0 two-key logins (up to 20 bytes, as text);
	// empty means one-key logins, as on most BMCs.
	BMCKey string

	// Host is the IPv4 address the simulator binds; default 127.0.0.1. The end-to-end
	// testbed binds an address of its bridge, so nodes in network namespaces reach it.
	Host string
	// Port is the UDP port on Host; 0 picks a free one.
	Port int
	// Dir holds the configuration, the power state and the logs. Empty means a new
	// temporary directory, removed by Stop. An existing power state in Dir is kept, so
	// a restarted simulator does not change the host's power.
	Dir string
	// InitiallyOff starts the chassis powered off. Otherwise the power is on (or what
	// Dir recorded), and OnCommand is not run at start: the host is whatever is running.
	InitiallyOff bool

	// OnCommand is a shell command (bash -c) run when the chassis is powered on, BootDelay
	// later, in the background; it is skipped if the power went off again meanwhile.
	// OffCommand runs when the chassis goes from on to off, before the BMC answers and
	// before the state file says off; keep it short. Both run with the state directory
	// as working directory, stdin from /dev/null and output to commands.log, with
	// BMCSIM_DIR set.
	OnCommand, OffCommand string
	// BootDelay is how long a powered-on host takes to boot (before OnCommand runs).
	BootDelay time.Duration
}

// BMC is a running ipmi_sim.
type BMC struct {
	// Host is the address it answers on (Options.Host); Port the UDP port.
	Host string
	Port int
	// Username and Password of the administrator account.
	Username, Password string
	// Dir is the state directory (see Options.Dir).
	Dir string

	cmd       *exec.Cmd
	done      chan struct{} // closed when ipmi_sim has exited
	waitErr   error         // valid after done
	removeDir bool
	stopOnce  sync.Once
	stopErr   error
}

// Available reports whether ipmi_sim and bash are installed (ErrNotInstalled if not).
func Available() error {
	for _, p := range []string{"ipmi_sim", "bash"} {
		if _, err := exec.LookPath(p); err != nil {
			return fmt.Errorf("%w: %s not found", ErrNotInstalled, p)
		}
	}
	return nil
}

// StartTest starts a simulator for a test and stops it when the test ends. It skips the
// test when ipmi_sim is not installed (fails it if NOVAHA_REQUIRE_BMCSIM is set), and
// fails it if the simulator cannot start. An empty Options.Dir becomes t.TempDir(). When
// the test fails, the chassis log and the command output are logged.
func StartTest(t testing.TB, opts Options) *BMC {
	t.Helper()
	if err := Available(); err != nil {
		if os.Getenv("NOVAHA_REQUIRE_BMCSIM") != "" {
			t.Fatalf("%v (NOVAHA_REQUIRE_BMCSIM is set)", err)
		}
		t.Skip(err)
	}
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	b, err := Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, f := range []string{LogFile, CommandsLog, SimOutput} {
				if data, err := os.ReadFile(filepath.Join(b.Dir, f)); err == nil && len(data) > 0 {
					t.Logf("bmcsim %s:\n%s", f, data)
				}
			}
		}
		if err := b.Stop(); err != nil {
			t.Errorf("bmcsim: %v", err)
		}
	})
	return b
}

// Start writes the configuration and starts ipmi_sim, returning once it answers RMCP
// pings. ctx bounds the start only; the simulator runs until Stop.
func Start(ctx context.Context, opts Options) (*BMC, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	if opts.Username == "" {
		opts.Username = DefaultUsername
	}
	if opts.Password == "" {
		opts.Password = DefaultPassword
	}
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	if err := opts.validate(); err != nil {
		return nil, err
	}

	b := &BMC{Host: opts.Host, Username: opts.Username, Password: opts.Password, Dir: opts.Dir}
	if b.Dir == "" {
		d, err := os.MkdirTemp("", "bmcsim-")
		if err != nil {
			return nil, fmt.Errorf("bmcsim: %w", err)
		}
		b.Dir, b.removeDir = d, true
	}
	dir, err := filepath.Abs(b.Dir)
	if err != nil {
		return nil, fmt.Errorf("bmcsim: %w", err)
	}
	b.Dir = dir

	port := opts.Port
	if port == 0 {
		if port, err = freeUDPPort(opts.Host); err != nil {
			return nil, err
		}
	} else if err := checkUDPPortFree(opts.Host, port); err != nil {
		return nil, err
	}
	b.Port = port

	if err := writeFiles(b.Dir, port, opts); err != nil {
		b.cleanup()
		return nil, err
	}
	if err := b.launch(); err != nil {
		b.cleanup()
		return nil, err
	}
	if err := b.waitReady(ctx); err != nil {
		_ = b.Stop()
		return nil, err
	}
	return b, nil
}

func (o Options) validate() error {
	if err := checkWord("username", o.Username, 16); err != nil {
		return err
	}
	if err := checkWord("password", o.Password, 20); err != nil {
		return err
	}
	for i, u := range o.Users {
		if err := checkWord(fmt.Sprintf("users[%d] name", i), u.Name, 16); err != nil {
			return err
		}
		if err := checkWord(fmt.Sprintf("users[%d] password", i), u.Password, 20); err != nil {
			return err
		}
		switch u.Privilege {
		case "callback", "user", "operator", "admin":
		default:
			return fmt.Errorf("bmcsim: users[%d] privilege %q: want callback, user, operator or admin", i, u.Privilege)
		}
	}
	if o.BMCKey != "" {
		if err := checkWord("BMC key", o.BMCKey, 20); err != nil {
			return err
		}
	}
	if ip := net.ParseIP(o.Host); ip == nil || ip.To4() == nil {
		return fmt.Errorf("bmcsim: host %q is not an IPv4 address", o.Host)
	}
	if o.Port < 0 || o.Port > 65535 {
		return fmt.Errorf("bmcsim: port %d out of range", o.Port)
	}
	if o.BootDelay < 0 {
		return fmt.Errorf("bmcsim: negative boot delay")
	}
	if strings.ContainsAny(o.Dir, "\"\n") {
		return fmt.Errorf("bmcsim: state directory %q: quotes and newlines are not allowed", o.Dir)
	}
	return nil
}

// checkWord accepts what lan.conf can hold between double quotes.
func checkWord(what, s string, max int) error {
	if s == "" || len(s) > max {
		return fmt.Errorf("bmcsim: %s must be 1 to %d bytes", what, max)
	}
	for _, r := range s {
		if r <= ' ' || r >= 0x7f || r == '"' || r == '\'' || r == '\\' || r == '#' {
			return fmt.Errorf("bmcsim: %s: only printable ASCII without spaces, quotes, backslashes or #", what)
		}
	}
	return nil
}

func freeUDPPort(host string) (int, error) {
	c, err := net.ListenPacket("udp4", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, fmt.Errorf("bmcsim: pick a free UDP port on %s: %w", host, err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port, nil
}

// checkUDPPortFree binds the port without address reuse: ipmi_sim would share a port
// with another simulator instead of failing.
func checkUDPPortFree(host string, port int) error {
	c, err := net.ListenPacket("udp4", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return fmt.Errorf("bmcsim: UDP port %d on %s is in use: %w", port, host, err)
	}
	return c.Close()
}

func (b *BMC) launch() error {
	persist := filepath.Join(b.Dir, persistDir)
	// Persisted users would override lan.conf's: start from the configuration each time.
	if err := os.RemoveAll(persist); err != nil {
		return fmt.Errorf("bmcsim: %w", err)
	}
	if err := os.MkdirAll(persist, 0o700); err != nil {
		return fmt.Errorf("bmcsim: %w", err)
	}
	_ = os.Remove(filepath.Join(b.Dir, stoppedMark))
	_ = os.Remove(filepath.Join(b.Dir, bootJobs))
	out, err := os.OpenFile(filepath.Join(b.Dir, SimOutput), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("bmcsim: %w", err)
	}
	defer out.Close() // the child has its own descriptor

	cmd := exec.Command("ipmi_sim", "-c", filepath.Join(b.Dir, LanConf), "-f", filepath.Join(b.Dir, EmuFile), "-s", persist, "-n")
	cmd.Dir = b.Dir
	cmd.Stdout, cmd.Stderr = out, out
	// A test binary that dies (timeout panic, SIGKILL) must not leave simulators behind.
	// Pdeathsig follows the forking OS thread, which Go only retires for goroutines that
	// exit while locked to their thread; nothing here does that.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("bmcsim: start ipmi_sim: %w", err)
	}
	b.cmd = cmd
	b.done = make(chan struct{})
	go func() {
		b.waitErr = cmd.Wait()
		close(b.done)
	}()
	return nil
}

// waitReady polls with RMCP presence pings until ipmi_sim answers, exits, or ctx ends.
func (b *BMC) waitReady(ctx context.Context) error {
	conn, err := net.Dial("udp4", b.Addr())
	if err != nil {
		return fmt.Errorf("bmcsim: %w", err)
	}
	defer conn.Close()
	ping := []byte{
		0x06, 0x00, 0xff, 0x06, // RMCP: version 1.0, no ACK, class ASF
		0x00, 0x00, 0x11, 0xbe, // ASF IANA enterprise number 4542
		0x80, 0x01, 0x00, 0x00, // presence ping, tag 1, reserved, no data
	}
	buf := make([]byte, 64)
	for {
		select {
		case <-b.done:
			return fmt.Errorf("bmcsim: ipmi_sim exited at start (%v): %s", b.waitErr, b.Output())
		case <-ctx.Done():
			return fmt.Errorf("bmcsim: ipmi_sim on %s did not answer RMCP pings: %w; output: %s", b.Addr(), ctx.Err(), b.Output())
		default:
		}
		if _, err := conn.Write(ping); err == nil {
			_ = conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			// ECONNREFUSED (not bound yet) returns at once: pace the retries anyway.
			start := time.Now()
			n, err := conn.Read(buf)
			if err == nil && n >= 9 && buf[8] == 0x40 { // presence pong
				return nil
			}
			if d := time.Since(start); d < 20*time.Millisecond {
				time.Sleep(20*time.Millisecond - d)
			}
		}
	}
}

// Addr is host:port of the simulator.
func (b *BMC) Addr() string { return net.JoinHostPort(b.Host, strconv.Itoa(b.Port)) }

// PID is ipmi_sim's process ID.
func (b *BMC) PID() int { return b.cmd.Process.Pid }

// Done is closed when ipmi_sim has exited, whether by Stop or not.
func (b *BMC) Done() <-chan struct{} { return b.done }

// Output is what ipmi_sim printed (start-up errors, mostly).
func (b *BMC) Output() string {
	data, _ := os.ReadFile(filepath.Join(b.Dir, SimOutput))
	return strings.TrimSpace(string(data))
}

// PowerState reads the chassis power from the state file, as the BMC reports it.
func (b *BMC) PowerState() (on bool, err error) {
	data, err := os.ReadFile(filepath.Join(b.Dir, PowerFile))
	if err != nil {
		return false, fmt.Errorf("bmcsim: power state: %w", err)
	}
	switch strings.TrimSpace(string(data)) {
	case "1":
		return true, nil
	case "0":
		return false, nil
	}
	return false, fmt.Errorf("bmcsim: power state file holds %q", data)
}

// SetPowerState changes the power behind the BMC's back, as a power button or a power
// failure would; no command runs and nothing is logged.
func (b *BMC) SetPowerState(on bool) error {
	return writeAtomic(filepath.Join(b.Dir, PowerFile), []byte(powerValue(on)+"\n"), 0o644)
}

// Log returns the chassis control requests recorded so far, oldest first.
func (b *BMC) Log() ([]Event, error) {
	data, err := os.ReadFile(filepath.Join(b.Dir, LogFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("bmcsim: %w", err)
	}
	return parseLog(data), nil
}

// WaitLog polls the log until cond holds for it, and returns that log. It fails when
// ctx ends first or ipmi_sim exits.
func (b *BMC) WaitLog(ctx context.Context, cond func([]Event) bool) ([]Event, error) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		ev, err := b.Log()
		if err != nil {
			return nil, err
		}
		if cond(ev) {
			return ev, nil
		}
		select {
		case <-ctx.Done():
			return ev, fmt.Errorf("bmcsim: waiting for chassis events: %w (log: %v)", ctx.Err(), ev)
		case <-b.done:
			return ev, fmt.Errorf("bmcsim: ipmi_sim exited while waiting for chassis events: %v", b.waitErr)
		case <-tick.C:
		}
	}
}

// Stop stops ipmi_sim (SIGTERM, then SIGKILL after 3 s): only its own process. It waits
// for a chassis program run in progress (a slow OffCommand, a boot) to finish, and a
// boot still pending after BootDelay is cancelled; processes OnCommand started are left
// alone, as a real BMC failing would leave its host running. Stop is idempotent; it
// reports an ipmi_sim that had exited by itself.
func (b *BMC) Stop() error {
	b.stopOnce.Do(func() { b.stopErr = b.stop() })
	return b.stopErr
}

func (b *BMC) stop() error {
	defer b.cleanup()
	if b.cmd == nil {
		return nil
	}
	_ = os.WriteFile(filepath.Join(b.Dir, stoppedMark), nil, 0o644)
	defer b.quiesce()
	select {
	case <-b.done:
		return fmt.Errorf("ipmi_sim had exited before Stop (%v): %s", b.waitErr, b.Output())
	default:
	}
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.done:
		return nil
	case <-time.After(3 * time.Second):
	}
	_ = b.cmd.Process.Kill()
	<-b.done
	return nil
}

// quiesce makes sure nothing writes into Dir once Stop returns: it waits (up to 10 s)
// for runs of the chassis program that outlived ipmi_sim (a slow OffCommand, say), then
// ends the boot jobs that are still waiting out BootDelay.
func (b *BMC) quiesce() {
	if f, err := os.OpenFile(filepath.Join(b.Dir, lockFile), os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
		deadline := time.Now().Add(10 * time.Second)
		for syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		f.Close() // releases the lock
	}
	data, _ := os.ReadFile(filepath.Join(b.Dir, bootJobs))
	var jobs []int
	for _, line := range strings.Fields(string(data)) {
		// A PID is only ours if the process still runs in Dir: PIDs get reused.
		if pid, err := strconv.Atoi(line); err == nil && b.ownsProcess(pid) {
			_ = syscall.Kill(pid, syscall.SIGTERM)
			jobs = append(jobs, pid)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range jobs {
		for b.ownsProcess(pid) && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// ownsProcess tells whether pid is a live process (not a zombie) working in Dir.
func (b *BMC) ownsProcess(pid int) bool {
	cwd, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/cwd")
	if err != nil || cwd != b.Dir {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	_, rest, _ := strings.Cut(string(stat), ") ")
	return !strings.HasPrefix(rest, "Z")
}

func (b *BMC) cleanup() {
	if b.removeDir {
		_ = os.RemoveAll(b.Dir)
	}
}

func powerValue(on bool) string {
	if on {
		return "1"
	}
	return "0"
}

func writeAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return fmt.Errorf("bmcsim: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("bmcsim: %w", err)
	}
	return nil
}

// lines splits data into complete lines; a last line still being written is dropped.
func lines(data []byte) [][]byte {
	if i := bytes.LastIndexByte(data, '\n'); i >= 0 {
		data = data[:i]
	} else {
		return nil
	}
	return bytes.Split(data, []byte{'\n'})
}
