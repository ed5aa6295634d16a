// Package systemdtest runs a private dbus-daemon with a fake systemd manager on it, for
// the tests of lib/systemd and of the agents that use it. The fake knows the units a
// test declares, runs their start and stop jobs (each job's result can be set, or held
// back to test deadlines) and answers their LoadState, ActiveState and SubState.
package systemdtest

import (
	"bufio"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
)

const (
	busName     = "org.freedesktop.systemd1"
	managerPath = dbus.ObjectPath("/org/freedesktop/systemd1")
	managerIf   = "org.freedesktop.systemd1.Manager"
	unitPrefix  = "/org/freedesktop/systemd1/unit"
)

// Systemd is the fake manager on its private bus.
type Systemd struct {
	// Address is the private bus's D-Bus address.
	Address string

	conn   *dbus.Conn
	daemon *exec.Cmd
	mu     sync.Mutex
	units  map[string]*unit
	jobs   int
	calls  []string
}

type unit struct {
	active string
	// result is the next job's result; "" means "done". hold keeps the job from
	// finishing at all.
	result string
	hold   bool
}

// Start starts a dbus-daemon on a socket in a temporary directory and the fake on it,
// both stopped when the test ends. The test is skipped, saying why, when dbus-daemon
// cannot run here.
func Start(t testing.TB) *Systemd {
	t.Helper()
	s, err := New(t.TempDir())
	var ne *NotAvailableError
	switch {
	case errors.As(err, &ne):
		t.Skipf("%v: skipping the systemd D-Bus tests", err)
	case err != nil:
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// NotAvailableError says that dbus-daemon is missing or cannot run here.
type NotAvailableError struct{ Reason string }

func (e *NotAvailableError) Error() string { return e.Reason }

// New starts a dbus-daemon with its socket in dir and the fake on it, outside a test
// (the benchmarks use it). Close stops both.
func New(dir string) (*Systemd, error) {
	bin, err := exec.LookPath("dbus-daemon")
	if err != nil {
		return nil, &NotAvailableError{"dbus-daemon is not installed (Debian package dbus-daemon; test/deps.sh installs it)"}
	}
	addr := "unix:path=" + filepath.Join(dir, "bus")
	cmd := exec.Command(bin, "--session", "--nofork", "--nopidfile", "--address="+addr, "--print-address=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	// Its stderr only says that an unprivileged fd limit could not be raised.
	cmd.Stderr = nil
	if err := cmd.Start(); err != nil {
		return nil, &NotAvailableError{fmt.Sprintf("dbus-daemon cannot run here (%v)", err)}
	}
	s := &Systemd{units: map[string]*unit{}, daemon: cmd}
	line := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(out).ReadString('\n')
		line <- strings.TrimSpace(l)
	}()
	select {
	case a := <-line:
		if a == "" {
			s.Close()
			return nil, &NotAvailableError{"dbus-daemon exited without printing its address"}
		}
		s.Address = a
	case <-time.After(20 * time.Second):
		s.Close()
		return nil, &NotAvailableError{"dbus-daemon printed no address in 20 s"}
	}
	if err := s.serve(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Systemd) serve() error {
	conn, err := dbus.Dial(s.Address)
	if err != nil {
		return fmt.Errorf("connecting to the private bus: %w", err)
	}
	s.conn = conn
	if err := conn.Auth(nil); err != nil {
		return fmt.Errorf("authenticating on the private bus: %w", err)
	}
	if err := conn.Hello(); err != nil {
		return fmt.Errorf("hello on the private bus: %w", err)
	}
	if err := conn.Export(manager{s}, managerPath, managerIf); err != nil {
		return err
	}
	if err := conn.ExportSubtree(properties{s}, unitPrefix, "org.freedesktop.DBus.Properties"); err != nil {
		return err
	}
	if r, err := conn.RequestName(busName, dbus.NameFlagDoNotQueue); err != nil || r != dbus.RequestNameReplyPrimaryOwner {
		return fmt.Errorf("owning %s on the private bus: %v %v", busName, r, err)
	}
	return nil
}

// Close stops the fake and its dbus-daemon.
func (s *Systemd) Close() {
	if s.conn != nil {
		s.conn.Close()
	}
	_ = s.daemon.Process.Kill()
	_ = s.daemon.Wait()
}

// AddUnit declares a unit in ActiveState active ("inactive", "active", "failed").
func (s *Systemd) AddUnit(name, active string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.units[name] = &unit{active: active}
}

// SetResult makes the next job on unit end with result ("failed", "timeout"...);
// hold makes it never end.
func (s *Systemd) SetResult(name, result string, hold bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.units[name].result, s.units[name].hold = result, hold
}

// SetActive changes a unit's ActiveState, as its process dying would.
func (s *Systemd) SetActive(name, active string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.units[name].active = active
}

// Active is a unit's ActiveState ("" when unknown).
func (s *Systemd) Active(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u := s.units[name]; u != nil {
		return u.active
	}
	return ""
}

// Calls lists the manager calls received, "StartUnit name mode".
func (s *Systemd) Calls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.calls...)
}

// escape is systemd's bus path escaping of a unit name.
func escape(name string) string {
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || (c >= '0' && c <= '9' && i > 0) {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "_%02x", c)
		}
	}
	return b.String()
}

type manager struct{ s *Systemd }

func (m manager) StartUnit(name, mode string) (dbus.ObjectPath, *dbus.Error) {
	return m.s.job("StartUnit", name, mode, "active")
}

func (m manager) StopUnit(name, mode string) (dbus.ObjectPath, *dbus.Error) {
	return m.s.job("StopUnit", name, mode, "inactive")
}

func (s *Systemd) job(method, name, mode, after string) (dbus.ObjectPath, *dbus.Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, method+" "+name+" "+mode)
	u := s.units[name]
	if u == nil {
		return "", &dbus.Error{Name: "org.freedesktop.systemd1.NoSuchUnit", Body: []any{"Unit " + name + " not found."}}
	}
	s.jobs++
	path := dbus.ObjectPath(fmt.Sprintf("/org/freedesktop/systemd1/job/%d", s.jobs))
	result := u.result
	switch {
	case result == "" && method == "StopUnit" && u.active == "failed":
		// systemd keeps a failed unit failed through a stop, until it is started or reset.
		result = "done"
	case result == "":
		result = "done"
		u.active = after
	case method == "StartUnit":
		u.active = "failed"
	}
	if !u.hold {
		id := uint32(s.jobs)
		// After the reply, as systemd does: the job finishes later.
		go func() {
			_ = s.conn.Emit(managerPath, managerIf+".JobRemoved", id, path, name, result)
		}()
	}
	return path, nil
}

type properties struct{ s *Systemd }

// Get answers org.freedesktop.DBus.Properties.Get on a unit's object.
func (p properties) Get(msg dbus.Message, iface, prop string) (dbus.Variant, *dbus.Error) {
	path, _ := msg.Headers[dbus.FieldPath].Value().(dbus.ObjectPath)
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	var u *unit
	for name, cand := range p.s.units {
		if string(path) == unitPrefix+"/"+escape(name) {
			u = cand
		}
	}
	load, active := "loaded", ""
	if u == nil {
		load, active = "not-found", "inactive" // as systemd answers for an unknown unit
	} else {
		active = u.active
	}
	switch prop {
	case "LoadState":
		return dbus.MakeVariant(load), nil
	case "ActiveState":
		return dbus.MakeVariant(active), nil
	case "SubState":
		sub := map[string]string{"active": "running", "inactive": "dead", "failed": "failed"}[active]
		return dbus.MakeVariant(sub), nil
	}
	return dbus.Variant{}, &dbus.Error{Name: "org.freedesktop.DBus.Error.UnknownProperty", Body: []any{"no property " + prop}}
}
