package virt

import (
	"sync"

	"libvirt.org/go/libvirt"
)

// State is a domain's state as libvirt reports it (virDomainState).
type State int

// Domain states, with libvirt's values.
const (
	NoState     = State(libvirt.DOMAIN_NOSTATE)
	Running     = State(libvirt.DOMAIN_RUNNING)
	Blocked     = State(libvirt.DOMAIN_BLOCKED)
	Paused      = State(libvirt.DOMAIN_PAUSED)
	Shutdown    = State(libvirt.DOMAIN_SHUTDOWN) // being shut down: still running
	Shutoff     = State(libvirt.DOMAIN_SHUTOFF)
	Crashed     = State(libvirt.DOMAIN_CRASHED)
	PMSuspended = State(libvirt.DOMAIN_PMSUSPENDED)
)

// String names the state as virsh domstate does.
func (s State) String() string {
	switch s {
	case NoState:
		return "no state"
	case Running:
		return "running"
	case Blocked:
		return "idle"
	case Paused:
		return "paused"
	case Shutdown:
		return "in shutdown"
	case Shutoff:
		return "shut off"
	case Crashed:
		return "crashed"
	case PMSuspended:
		return "pmsuspended"
	}
	return "unknown"
}

// Off reports whether the domain is shut off: no QEMU process, no guest CPU, no I/O.
// Every other state counts as on, for fencing: a paused, suspended or crashed guest
// still holds its disks and may resume, and one "in shutdown" is still running (the
// guest may never finish shutting down).
func (s State) Off() bool { return s == Shutoff }

// Domain is one domain of a hypervisor, as listed.
type Domain struct {
	Name  string
	UUID  string
	State State
}

// DestroyedSet remembers the domains a program shut off with Destroy, by the name or
// UUID it asked for. It may be shared by several Clients, and used concurrently.
type DestroyedSet struct {
	mu  sync.Mutex
	ids map[string]bool
}

func (d *DestroyedSet) add(ids ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ids == nil {
		d.ids = map[string]bool{}
	}
	for _, id := range ids {
		if id != "" {
			d.ids[id] = true
		}
	}
}

// Contains reports whether Destroy shut off the domain named or identified by id.
func (d *DestroyedSet) Contains(id string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ids[id]
}
