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
