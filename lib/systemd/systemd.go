// Package systemd controls systemd units over D-Bus (go-systemd and godbus): start and
// stop a unit and wait for the job's result, and read a unit's state. NovaCompute
// uses it to run nova-compute as a unit.
//
// Every call takes a context; its deadline bounds the call and the wait for the job.
// A job that ends with a result other than "done" is an error naming the result
// ("failed", "timeout", "dependency", "canceled").
package systemd

import (
	"context"
	"errors"
	"fmt"

	sd "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
)

// Manager is a connection to systemd's manager. Close it when done.
type Manager struct {
	conn *sd.Conn
}

// Dial connects to systemd: over the system bus, or, for root when the bus is not
// running, over systemd's private socket. The connection is closed when ctx is done.
func Dial(ctx context.Context) (*Manager, error) {
	c, err := sd.NewWithContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("connecting to systemd over D-Bus: %w", err)
	}
	return &Manager{conn: c}, nil
}

// DialAddress connects to the bus at a D-Bus address ("unix:path=/run/x/bus") on which
// some process owns org.freedesktop.systemd1: tests use it with a private bus. As
// with Dial, the connection is closed when ctx is done.
func DialAddress(ctx context.Context, address string) (*Manager, error) {
	c, err := sd.NewConnection(func() (*dbus.Conn, error) {
		conn, err := dbus.Dial(address, dbus.WithContext(ctx))
		if err != nil {
			return nil, err
		}
		if err := conn.Auth(nil); err != nil {
			conn.Close()
			return nil, err
		}
		if err := conn.Hello(); err != nil {
			conn.Close()
			return nil, err
		}
		return conn, nil
	})
	if err != nil {
		return nil, fmt.Errorf("connecting to systemd at %s: %w", address, err)
	}
	return &Manager{conn: c}, nil
}

// Close closes the connection.
func (m *Manager) Close() { m.conn.Close() }

// JobError is a job that ended with a result other than "done".
type JobError struct {
	Op, Unit, Result string
}

func (e *JobError) Error() string {
	return fmt.Sprintf("systemd could not %s %s: job result %q", e.Op, e.Unit, e.Result)
}

// Start starts unit (mode "replace", as systemctl start) and waits for the job.
func (m *Manager) Start(ctx context.Context, unit string) error {
	return m.job(ctx, "start", unit, m.conn.StartUnitContext)
}

// Stop stops unit (mode "replace", as systemctl stop) and waits for the job.
func (m *Manager) Stop(ctx context.Context, unit string) error {
	return m.job(ctx, "stop", unit, m.conn.StopUnitContext)
}

func (m *Manager) job(ctx context.Context, op, unit string, call func(context.Context, string, string, chan<- string) (int, error)) error {
	// Buffered: go-systemd sends the result while holding its lock, and this function
	// may have returned on the deadline by then.
	done := make(chan string, 1)
	if _, err := call(ctx, unit, "replace", done); err != nil {
		return fmt.Errorf("systemd: %s %s: %w", op, unit, err)
	}
	select {
	case r := <-done:
		if r != "done" {
			return &JobError{Op: op, Unit: unit, Result: r}
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("systemd: %s %s: the job did not finish in time: %w", op, unit, ctx.Err())
	}
}

// Unit is what systemd says of a unit: LoadState ("loaded", "not-found", "masked"...),
// ActiveState ("active", "activating", "inactive", "failed"...) and SubState.
type Unit struct {
	Name                             string
	LoadState, ActiveState, SubState string
}

// Running reports whether the unit is active, reloading or still starting.
func (u Unit) Running() bool {
	switch u.ActiveState {
	case "active", "reloading", "activating":
		return true
	}
	return false
}

// Found reports whether systemd knows the unit (it has a unit file).
func (u Unit) Found() bool { return u.LoadState != "not-found" && u.LoadState != "" }

// ErrNoUnit is wrapped when systemd has no such unit at all.
var ErrNoUnit = errors.New("no such unit")

// Unit reads a unit's load and active state.
func (m *Manager) Unit(ctx context.Context, unit string) (Unit, error) {
	u := Unit{Name: unit}
	for _, p := range []struct {
		name string
		dst  *string
	}{{"LoadState", &u.LoadState}, {"ActiveState", &u.ActiveState}, {"SubState", &u.SubState}} {
		prop, err := m.conn.GetUnitPropertyContext(ctx, unit, p.name)
		if err != nil {
			var de dbus.Error
			if errors.As(err, &de) && de.Name == "org.freedesktop.systemd1.NoSuchUnit" {
				return u, fmt.Errorf("systemd: %s: %w", unit, ErrNoUnit)
			}
			return u, fmt.Errorf("systemd: reading %s of %s: %w", p.name, unit, err)
		}
		s, ok := prop.Value.Value().(string)
		if !ok {
			return u, fmt.Errorf("systemd: %s of %s is %s, not a string", p.name, unit, prop.Value.Signature())
		}
		*p.dst = s
	}
	return u, nil
}
