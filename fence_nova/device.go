package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/novaha/novaha/lib/fence"
	"github.com/novaha/novaha/lib/nova"
	"github.com/novaha/novaha/lib/pacemaker"
)

// attrEvacuate is the private node attribute that the stock NovaEvacuate watches:
// "yes" when a host is to be evacuated, "no" once it has been.
const attrEvacuate = "evacuate"

// device is Nova seen as a fencing device: each plug is a compute host, fenced by
// forcing its nova-compute service down.
//
// Status is OFF while Nova has the service forced down, whatever its other fields:
//
//	Nova state/status   forced_down   status   meaning
//	up, enabled         no            ON       healthy
//	up, disabled        no            ON       disabled by an operator, or returning
//	down, enabled       no            ON       crashed or unreachable, not fenced yet
//	down, disabled      no            ON       an operator-disabled host that died: not fenced yet
//	down, any           yes           OFF      fenced (by fence_nova, fence_compute or by hand)
//
// fence_compute reports "down, disabled" as OFF, so its off skips a host that an
// operator had disabled before it died; fence_nova fences it.
type device struct {
	api    nova.ServiceAPI
	close  func()
	attrd  attrd
	domain string
	now    func() time.Time
	log    *slog.Logger
	hosts  map[string]string // plug -> Nova host name, matched once per run
	// fresh is the record Status just read: the framework reads the status right
	// before it switches, so the switch uses that record instead of reading it again.
	fresh *nova.Service
}

// current is the record Status has just read, or a new read.
func (d *device) current(ctx context.Context, plug string) (nova.Service, error) {
	if f := d.fresh; f != nil && d.hosts[plug] == f.Host {
		d.fresh = nil
		return *f, nil
	}
	return d.service(ctx, plug)
}

// service reads the nova-compute service of the host plug designates.
func (d *device) service(ctx context.Context, plug string) (nova.Service, error) {
	d.fresh = nil
	var s nova.Service
	var err error
	if host, ok := d.hosts[plug]; ok {
		s, err = nova.ComputeService(ctx, d.api, host)
	} else {
		s, err = nova.FindComputeService(ctx, d.api, plug, d.domain)
	}
	if errors.Is(err, nova.ErrNoSuchHost) {
		return s, fmt.Errorf("%w: %w", fence.ErrNoSuchPlug, err)
	}
	if err != nil {
		return s, err
	}
	if _, ok := d.hosts[plug]; !ok && s.Host != plug {
		d.log.Debug("cluster node matched to Nova host", "plug", plug, "host", s.Host)
	}
	d.hosts[plug] = s.Host
	d.log.Debug("nova-compute service", "host", s.Host, "state", s.State, "status", s.Status,
		"forced_down", s.ForcedDown, "disabled_reason", s.DisabledReason, "lifecycle", nova.StateOf(s).String())
	return s, nil
}

func (d *device) Status(ctx context.Context, plug string) (fence.State, error) {
	s, err := d.service(ctx, plug)
	if err != nil {
		return fence.Unknown, err
	}
	d.fresh = &s
	return stateOf(s), nil
}

func stateOf(s nova.Service) fence.State {
	if s.ForcedDown {
		return fence.Off
	}
	return fence.On
}

func (d *device) SetPower(ctx context.Context, plug string, on bool) error {
	s, err := d.current(ctx, plug)
	if err != nil {
		return err
	}
	if on {
		return d.unfence(ctx, plug, s)
	}
	return d.fence(ctx, plug, s)
}

// fence records the host as fenced in Nova and tells the stock NovaEvacuate: once the
// host is forced down, and before its marker is written, it sets evacuate=yes, and
// fails if it cannot. The stock controller relies on that attribute, and writing it
// first overwrites an evacuate=no left from an earlier cycle, which on must never take
// for this cycle's end; the marker records that it was written (evacuate=yes in it).
func (d *device) fence(ctx context.Context, plug string, s nova.Service) error {
	told := false
	got, err := nova.FenceWith(ctx, d.api, s, d.now(), nova.FenceOptions{BeforeMark: func(ctx context.Context) (bool, error) {
		ok, err := d.markForEvacuation(ctx, plug)
		told = ok
		return ok, err
	}})
	if err != nil {
		return err
	}
	if got.DisabledReason != s.DisabledReason {
		d.log.Info("recorded as fenced in Nova", "host", got.Host, "disabled_reason", got.DisabledReason)
	}
	switch nova.StateOf(got) {
	case nova.StateFenced, nova.StateEvacuating:
		if !told {
			// Already fenced: set it again, in case attrd lost it.
			if _, err := d.markForEvacuation(ctx, plug); err != nil {
				return err
			}
		}
	}
	return nil
}

// markForEvacuation sets evacuate=yes for the stock NovaEvacuate. It reports whether
// it did: outside Pacemaker there is no attribute to set.
func (d *device) markForEvacuation(ctx context.Context, plug string) (bool, error) {
	if !d.attrd.Available() {
		return false, nil
	}
	if err := d.attrd.SetPrivate(ctx, plug, attrEvacuate, "yes"); err != nil {
		return false, fmt.Errorf("could not set the node attribute evacuate=yes, which the stock NovaEvacuate relies on: %w", err)
	}
	return true, nil
}

// notReady makes a lib/nova wait the framework's ErrNotReady, keeping its message.
type notReady struct{ error }

func (e notReady) Unwrap() []error { return []error{e.error, fence.ErrNotReady} }

func (d *device) unfence(ctx context.Context, plug string, s nova.Service) error {
	got, err := nova.Unfence(ctx, d.api, s, nova.UnfenceOptions{Elsewhere: d.elsewhere(plug)})
	if errors.Is(err, nova.ErrWaiting) {
		return notReady{err}
	}
	if err != nil {
		return err
	}
	d.reportReturn(got)
	return nil
}

// elsewhere reads what the stock NovaEvacuate says of the node (evacuate=yes/no).
func (d *device) elsewhere(plug string) func(ctx context.Context) (nova.Elsewhere, error) {
	return func(ctx context.Context) (nova.Elsewhere, error) {
		v, err := d.attrd.QueryPrivate(ctx, plug, attrEvacuate)
		switch {
		case errors.Is(err, pacemaker.ErrNoAttribute):
			return nova.ElsewhereUnknown, nil
		case err != nil:
			// Not knowing what the stock controller says must not unfence: Unfence waits.
			return nova.ElsewhereUnknown, fmt.Errorf("reading the node attribute evacuate: %w", err)
		case v == "yes":
			return nova.ElsewhereInProgress, nil
		case v == "no":
			return nova.ElsewhereDone, nil
		}
		return nova.ElsewhereUnknown, nil
	}
}

func (d *device) reportReturn(s nova.Service) {
	switch nova.StateOf(s) {
	case nova.Returning:
		d.log.Info("force-down lifted; nova-compute does not report up yet, so the service stays disabled until it does "+
			"(NovaCompute's start, or fence_nova -o on run again, enables it)", "host", s.Host)
	default:
		d.log.Info("unfenced in Nova", "host", s.Host, "status", s.Status, "disabled_reason", s.DisabledReason)
	}
}

// Reassert completes a host's record when it already reads in the wanted state: off
// gives a forced-down host its disable and marker (an interrupted run, or a host forced
// down by fence_compute or by hand) and sets evacuate=yes again while its evacuation
// is pending; on enables a returning host once its service reports up, and completes
// the return of a host whose force-down was lifted before it was recorded as evacuated.
func (d *device) Reassert(ctx context.Context, plug string, on bool) error {
	s, err := d.current(ctx, plug)
	if err != nil {
		return err
	}
	if !on {
		return d.fence(ctx, plug, s)
	}
	switch nova.StateOf(s) {
	case nova.Returning:
		got, err := nova.Restore(ctx, d.api, s)
		if err != nil {
			return err
		}
		d.reportReturn(got)
	case nova.StateFenced, nova.StateEvacuating:
		// The force-down was lifted (by hand, or by an on interrupted before it wrote
		// the evacuated marker): complete the return if the evacuation is known to be
		// finished, else leave the host disabled with its marker.
		got, err := nova.Unfence(ctx, d.api, s, nova.UnfenceOptions{Elsewhere: d.elsewhere(plug)})
		if errors.Is(err, nova.ErrWaiting) {
			d.log.Warn("the force-down was lifted while the evacuation is not finished; the host stays disabled", "host", s.Host,
				"disabled_reason", s.DisabledReason, "reason", err.Error())
			return nil
		}
		if err != nil {
			return err
		}
		d.reportReturn(got)
	}
	return nil
}

// List gives every compute host; a host whose Nova name is an FQDN is listed under its
// short name too (when no other host shares it), as fence_compute does, so that
// Pacemaker's dynamic host list matches clusters of short node names.
func (d *device) List(ctx context.Context) ([]fence.Outlet, error) {
	all, err := d.api.ListServices(ctx, nova.ListServicesOpts{Binary: nova.BinaryCompute})
	if err != nil {
		return nil, err
	}
	shorts := map[string]int{}
	for _, s := range all {
		shorts[nova.ShortName(s.Host)]++
	}
	var out []fence.Outlet
	for _, s := range all {
		out = append(out, fence.Outlet{Name: s.Host, State: stateOf(s)})
		if short := nova.ShortName(s.Host); short != s.Host && shorts[short] == 1 {
			out = append(out, fence.Outlet{Name: short, State: stateOf(s)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Monitor checks that Keystone (Open authenticated) and Nova answer: fence_compute
// reports success even when Nova is down.
func (d *device) Monitor(ctx context.Context) error {
	_, err := d.api.ListServices(ctx, nova.ListServicesOpts{Binary: nova.BinaryCompute})
	return err
}

func (d *device) Close(context.Context) error {
	if d.close != nil {
		d.close()
	}
	return nil
}
