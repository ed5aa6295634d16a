// Command fence_libvirt-backend carries out fence_libvirt's device actions (on, off,
// reboot, status, list, list-status, monitor) through libvirt's client library. It is
// not run directly: fence_libvirt, which answers metadata and validate-all without
// loading libvirt, replaces itself with it (installed in /usr/libexec/novaha), passing
// its arguments and stdin on. The official binding loads libvirt.so.0 as the program
// starts (about 15 ms and 14 MiB), which is why it lives in a program of its own.
package main

import (
	"context"
	"errors"

	"github.com/novaha/novaha/agents/fence_libvirt/internal/spec"
	"github.com/novaha/novaha/lib/fence"
	"github.com/novaha/novaha/lib/virt"
)

// agent is fence_libvirt's declaration with the libvirt connection.
func agent() *fence.Agent {
	a := spec.Agent()
	// Shared by every session of one run, so that a transient domain this run
	// destroyed (libvirt forgets it once it stops) reads as OFF after a reconnection.
	destroyed := &virt.DestroyedSet{}
	a.Open = func(ctx context.Context, o *fence.Options) (fence.Device, error) {
		return open(ctx, o, destroyed)
	}
	return a
}

// config maps the options onto the libvirt client's configuration.
func config(o *fence.Options) (virt.Config, error) {
	u, err := spec.URI(o)
	if err != nil {
		return virt.Config{}, err
	}
	return virt.Config{
		URI:      u,
		Username: o.String(fence.ParamUsername),
		Password: o.Password(),
		// Reading needs no more: the read-only socket, the least privilege.
		ReadOnly: readOnly(o.Action()),
	}, nil
}

func readOnly(action string) bool {
	switch action {
	case "status", "list", "list-status", "monitor":
		return true
	}
	return false
}

func open(ctx context.Context, o *fence.Options, destroyed *virt.DestroyedSet) (fence.Device, error) {
	cfg, err := config(o)
	if err != nil {
		return nil, err
	}
	cfg.Destroyed = destroyed
	c, err := virt.Dial(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return hypervisor{c}, nil
}

// hypervisor adapts the libvirt client to the framework: a plug is a domain.
type hypervisor struct{ c *virt.Client }

func (h hypervisor) Status(ctx context.Context, plug string) (fence.State, error) {
	s, err := h.c.State(ctx, plug)
	switch {
	case errors.Is(err, virt.ErrNoDomain):
		return fence.Unknown, noSuchPlug{err}
	case err != nil:
		return fence.Unknown, err
	case s.Off():
		return fence.Off, nil
	}
	return fence.On, nil
}

// noSuchPlug reads as libvirt's "domain not found" and is fence.ErrNoSuchPlug, so that
// missing_as_off applies.
type noSuchPlug struct{ err error }

func (n noSuchPlug) Error() string   { return n.err.Error() }
func (n noSuchPlug) Unwrap() []error { return []error{fence.ErrNoSuchPlug, n.err} }

func (h hypervisor) SetPower(ctx context.Context, plug string, on bool) error {
	var err error
	if on {
		err = h.c.Start(ctx, plug)
	} else {
		err = h.c.Destroy(ctx, plug)
	}
	if errors.Is(err, virt.ErrPending) && errors.Is(err, context.DeadlineExceeded) {
		// Sent, and libvirt is still at it (destroy waits for QEMU to exit, start for
		// it to boot): the framework's status polling tells whether it took effect.
		return nil
	}
	return err
}

func (h hypervisor) List(ctx context.Context) ([]fence.Outlet, error) {
	doms, err := h.c.Domains(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]fence.Outlet, 0, len(doms))
	for _, d := range doms {
		st := fence.On
		if d.State.Off() {
			st = fence.Off
		}
		out = append(out, fence.Outlet{Name: d.Name, Alias: d.UUID, State: st})
	}
	return out, nil
}

func (h hypervisor) Close(ctx context.Context) error { return h.c.Close(ctx) }

func main() { agent().Main() }
