package fence

import (
	"context"
	"errors"
)

// State is a target's power state.
type State int

// Power states. Unknown is never a successful status.
const (
	Unknown State = iota
	On
	Off
)

func (s State) String() string {
	switch s {
	case On:
		return "ON"
	case Off:
		return "OFF"
	default:
		return "UNKNOWN"
	}
}

// ErrNoSuchPlug is returned (wrapped) by Device.Status when the device does not know the
// target. With missing_as_off the framework reports such a target as OFF.
var ErrNoSuchPlug = errors.New("no such plug")

// ErrNotReady is returned (wrapped) by Device.SetPower when the device cannot make the
// switch yet but will be able to later: fence_nova's on waits until the host's instances
// have been evacuated. The framework then calls SetPower again every
// stonith_status_sleep, within power_timeout (Pacemaker's own timeout under
// disable_timeout), and reports a time-out with the error's text when that passes.
var ErrNotReady = errors.New("not ready")

// Device is an open connection to a fencing device. Every call gets a context whose
// deadline the framework derives from the timing options; implementations must honour it.
type Device interface {
	// Status returns the power state of plug ("" for single-target devices).
	Status(ctx context.Context, plug string) (State, error)
	// SetPower asks the device to switch plug on or off. It need not wait for the
	// change: the framework verifies it by polling Status.
	SetPower(ctx context.Context, plug string, on bool) error
	// Close ends the session; it is called once, with its own short deadline.
	Close(ctx context.Context) error
}

// Outlet is one target a device can fence, as printed by list and list-status.
type Outlet struct {
	Name  string
	Alias string
	State State
}

// Lister is implemented by devices that can enumerate their targets (list, list-status).
type Lister interface {
	List(ctx context.Context) ([]Outlet, error)
}

// Monitor is implemented by devices with a health check of their own; without it the
// framework's monitor action lists the targets or reads the status.
type Monitor interface {
	Monitor(ctx context.Context) error
}

// Reasserter is implemented by devices whose target state is more than the power state
// they report: fence_nova's off also records the host for evacuation. When the target
// already reads in the wanted state, the framework calls Reassert (within shell_timeout)
// before it reports "Success: Already ON/OFF", so that re-running an action completes
// what an interrupted run left undone. A Reassert error fails the action.
type Reasserter interface {
	Reassert(ctx context.Context, plug string, on bool) error
}
