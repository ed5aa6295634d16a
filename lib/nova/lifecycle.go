package nova

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// ServiceAPI is what the lifecycle needs of Nova. *Client implements it; tests of
// the agents may fake it.
type ServiceAPI interface {
	ListServices(ctx context.Context, opts ListServicesOpts) ([]Service, error)
	UpdateService(ctx context.Context, s Service, u ServiceUpdate) (Service, error)
}

var _ ServiceAPI = (*Client)(nil)

// HostState is where a compute host stands in the lifecycle (DESIGN.md, "The host
// lifecycle"), as read from its nova-compute service record.
type HostState int

// Host states.
const (
	// Healthy: not forced down and no lifecycle marker (enabled, or disabled by an
	// operator).
	Healthy HostState = iota
	// ForcedDownElsewhere: forced down, but not by novaha (no marker): by an
	// operator, or by fence_compute.
	ForcedDownElsewhere
	// StateFenced, StateEvacuating, StateEvacuated: the marker's phase. The force-down
	// may have been lifted by hand meanwhile; Fence puts it back.
	StateFenced
	StateEvacuating
	StateEvacuated
	// Returning: evacuated and no longer forced down; the service is enabled (or
	// the operator's disable restored) once it reports up.
	Returning
)

var stateNames = map[HostState]string{Healthy: "healthy", ForcedDownElsewhere: "forced down (not by novaha)",
	StateFenced: "fenced", StateEvacuating: "evacuating", StateEvacuated: "evacuated", Returning: "returning"}

func (s HostState) String() string { return stateNames[s] }

// StateOf classifies a nova-compute service record.
func StateOf(s Service) HostState {
	m, ok := ParseMarker(s.DisabledReason)
	switch {
	case !ok && s.ForcedDown:
		return ForcedDownElsewhere
	case !ok:
		return Healthy
	case m.Phase == Evacuated && !s.ForcedDown:
		return Returning
	case m.Phase == Evacuated:
		return StateEvacuated
	case m.Phase == Evacuating:
		return StateEvacuating
	}
	return StateFenced
}

// FindComputeService returns the one nova-compute service of the host that name
// designates (see MatchHost). With a known Nova host name, pass domain "" and the
// exact name: the match is then a filtered list of one host.
func FindComputeService(ctx context.Context, api ServiceAPI, name, domain string) (Service, error) {
	all, err := api.ListServices(ctx, ListServicesOpts{Binary: BinaryCompute})
	if err != nil {
		return Service{}, err
	}
	hosts := make([]string, 0, len(all))
	for _, s := range all {
		hosts = append(hosts, s.Host)
	}
	host, err := MatchHost(name, domain, hosts)
	if err != nil {
		return Service{}, err
	}
	var found []Service
	for _, s := range all {
		if s.Host == host {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		return Service{}, fmt.Errorf("%w: %d nova-compute services on %s", ErrAmbiguousHost, len(found), host)
	}
	return found[0], nil
}

// ComputeService reads the nova-compute service of the Nova host named exactly host.
func ComputeService(ctx context.Context, api ServiceAPI, host string) (Service, error) {
	list, err := api.ListServices(ctx, ListServicesOpts{Host: host, Binary: BinaryCompute})
	if err != nil {
		return Service{}, err
	}
	switch len(list) {
	case 0:
		return Service{}, fmt.Errorf("%w: no nova-compute service on %q", ErrNoSuchHost, host)
	case 1:
		return list[0], nil
	}
	return Service{}, fmt.Errorf("%w: %d nova-compute services on %s", ErrAmbiguousHost, len(list), host)
}

// Fence records the host of service s as fenced, durably, in Nova: it forces the
// service down first (so that Nova does not wait for a dead host when it is
// disabled, and allows evacuation at once), then disables it with a
// "novaha:fenced <time>" marker that keeps the operator's earlier disable.
//
// It is idempotent: a service already forced down that carries a lifecycle marker is
// left as it is (its evacuation may be under way or done); one forced down without a
// marker (by fence_compute or by hand) gets its marker; one an operator had disabled
// is fenced all the same, its disable kept in the marker. The returned record is Nova's
// answer to the last change, checked: forced down, disabled, marked.
func Fence(ctx context.Context, api ServiceAPI, s Service, now time.Time) (Service, error) {
	return FenceWith(ctx, api, s, now, FenceOptions{})
}

// FenceOptions adjust FenceWith.
type FenceOptions struct {
	// BeforeMark runs once the service is forced down and before the fence marker is
	// written, only when FenceWith writes one (or when a fenced host's marker does not
	// record that the stock controller was told: then, if told, the marker is
	// rewritten to say so). fence_nova sets evacuate=yes for the
	// stock NovaEvacuate there, so that no marker exists whose evacuate=no could be a
	// stale one from an earlier cycle. told is whether the stock controller was told
	// (recorded in the marker: Marker.StockEvacuate); an error stops the fence before
	// the marker.
	BeforeMark func(ctx context.Context) (told bool, err error)
}

// FenceWith is Fence with options.
func FenceWith(ctx context.Context, api ServiceAPI, s Service, now time.Time, opts FenceOptions) (Service, error) {
	m, marked := ParseMarker(s.DisabledReason)
	if s.ForcedDown && marked && !s.Enabled() {
		if m.Phase != Fenced || m.StockEvacuate || opts.BeforeMark == nil {
			return s, nil
		}
		// Fenced without telling the stock controller (off run outside Pacemaker):
		// tell it now, and record that in the marker, its time kept.
		told, err := opts.BeforeMark(ctx)
		if err != nil || !told {
			return s, err
		}
		m.StockEvacuate = true
		got, err := api.UpdateService(ctx, s, ServiceUpdate{Status: "disabled", DisabledReason: m.String()})
		if err != nil {
			return s, err
		}
		if gm, ok := ParseMarker(got.DisabledReason); !got.ForcedDown || got.Enabled() || !ok || gm.Phase != Fenced || !gm.StockEvacuate {
			return got, fmt.Errorf("Nova did not keep the fence marker of %s (disabled_reason %q)", s.Host, got.DisabledReason)
		}
		return got, nil
	}
	next := NextMarker(s, Fenced, now)
	var err error
	if !s.ForcedDown {
		if s, err = api.UpdateService(ctx, s, ServiceUpdate{ForcedDown: ForceDown}); err != nil {
			return s, err
		}
		if !s.ForcedDown {
			return s, fmt.Errorf("Nova did not record %s as forced down", s.Host)
		}
	}
	if opts.BeforeMark != nil {
		if next.StockEvacuate, err = opts.BeforeMark(ctx); err != nil {
			return s, err
		}
	}
	if s, err = api.UpdateService(ctx, s, ServiceUpdate{Status: "disabled", DisabledReason: next.String()}); err != nil {
		return s, err
	}
	if !s.ForcedDown || s.Enabled() {
		return s, fmt.Errorf("Nova did not record %s as forced down and disabled (forced_down=%t, status=%s)", s.Host, s.ForcedDown, s.Status)
	}
	if m, ok := ParseMarker(s.DisabledReason); !ok || m.Phase != Fenced || m.StockEvacuate != next.StockEvacuate {
		return s, fmt.Errorf("Nova did not keep the fence marker of %s (disabled_reason %q)", s.Host, s.DisabledReason)
	}
	return s, nil
}

// WaitError says why a lifecycle step must wait. It wraps ErrWaiting.
type WaitError struct{ Reason string }

func (e *WaitError) Error() string { return e.Reason }

// Unwrap makes errors.Is(err, ErrWaiting) true.
func (e *WaitError) Unwrap() error { return ErrWaiting }

// Elsewhere is what an evacuation controller that writes no novaha markers (the stock
// NovaEvacuate, through the Pacemaker attribute "evacuate") says of a host.
type Elsewhere int

// What the other controller says.
const (
	ElsewhereUnknown    Elsewhere = iota // nothing: no attribute, or not under Pacemaker
	ElsewhereInProgress                  // evacuate=yes: the evacuation is pending or under way
	ElsewhereDone                        // evacuate=no: the evacuation is finished
)

// UnfenceOptions adjust Unfence.
type UnfenceOptions struct {
	// Elsewhere reports what another evacuation controller says of the host; nil
	// means novaha's markers only. An error makes the host wait: not knowing what the
	// stock controller says must never unfence.
	Elsewhere func(ctx context.Context) (Elsewhere, error)
}

// Unfence lets the host of service s return, once that is safe: when its evacuation is
// finished (novaha:evacuated) or it was never fenced by novaha. It lifts the force-down
// and then restores the service's status (see Restore).
//
// What the stock NovaEvacuate says counts as follows. evacuate=yes makes any host
// wait. evacuate=no counts as "evacuated" only for a host waiting for that controller:
// one fenced by novaha whose marker records that evacuate=yes was set before the
// marker was written (Marker.StockEvacuate), so that the no came after it; a host
// forced down without a novaha marker (fence_compute's cycle) needs no evacuate=no to
// return. A novaha:fenced marker without it (off run outside Pacemaker) and a
// novaha:evacuating one (novaha's controller is at work) wait for novaha:evacuated: an
// evacuate=no left from an earlier cycle must not unfence a host nothing evacuated.
//
// It returns a *WaitError (wrapping ErrWaiting) while the host must wait: its
// evacuation is not finished, what the stock controller says cannot be read, or Nova
// refuses to lift the force-down because the host's nova-compute has not restarted yet
// to clean up the evacuated instances (Nova keeps the evacuations "done" until then).
// Calling it again later is safe.
func Unfence(ctx context.Context, api ServiceAPI, s Service, opts UnfenceOptions) (Service, error) {
	st := StateOf(s)
	m, _ := ParseMarker(s.DisabledReason)
	other := ElsewhereUnknown
	if opts.Elsewhere != nil && st != StateEvacuated && st != Returning {
		var err error
		if other, err = opts.Elsewhere(ctx); err != nil {
			return s, &WaitError{fmt.Sprintf("cannot read what the stock NovaEvacuate says of %s (%v); waiting", s.Host, err)}
		}
	}
	stockDone := other == ElsewhereDone && st == StateFenced && m.StockEvacuate
	switch {
	case other == ElsewhereInProgress:
		return s, &WaitError{fmt.Sprintf("the evacuation of %s is not finished (Pacemaker attribute evacuate=yes)", s.Host)}
	case (st == StateFenced || st == StateEvacuating) && !stockDone:
		why := st.String()
		if other == ElsewhereDone {
			why += "; evacuate=no is ignored: the marker does not record that the stock NovaEvacuate was told of this fence"
		}
		return s, &WaitError{fmt.Sprintf("the evacuation of %s is not finished (%s)", s.Host, why)}
	}
	// A stock fence_compute fenced it (forced down, no marker) and the stock
	// NovaEvacuate is done: the return is ours now that fence_compute's on does not run.
	stockFenced := st == ForcedDownElsewhere && other == ElsewhereDone
	if stockDone || stockFenced {
		// The stock NovaEvacuate finished without writing our marker: record the host
		// as evacuated while it is still forced down, then lift. Interrupted in
		// between, the host reads evacuated and forced down, and the next on lifts it.
		m := NextMarker(s, Evacuated, time.Time{})
		if stockFenced && s.DisabledReason == "" {
			// fence_compute disables the service without a reason, and its own on
			// enables it again whatever it was before: that disable is the fence's.
			m.OperatorDisabled = false
		}
		m.Source = "attrd"
		got, err := api.UpdateService(ctx, s, ServiceUpdate{Status: "disabled", DisabledReason: m.String()})
		if err != nil {
			return s, err
		}
		if gm, ok := ParseMarker(got.DisabledReason); !ok || gm.Phase != Evacuated {
			return got, fmt.Errorf("Nova did not keep the evacuated marker of %s (disabled_reason %q)", s.Host, got.DisabledReason)
		}
		s = got
	}
	if s.ForcedDown {
		prev := s
		got, err := api.UpdateService(ctx, s, ServiceUpdate{ForcedDown: LiftForceDown})
		if err != nil {
			if isEvacuationsPending(err) {
				return s, &WaitError{fmt.Sprintf("Nova keeps %s forced down until its nova-compute restarts and cleans up its evacuated instances", s.Host)}
			}
			return s, err
		}
		if got.ForcedDown {
			return got, fmt.Errorf("Nova still records %s as forced down", s.Host)
		}
		s = got
		if s.DisabledReason == "" {
			s.DisabledReason = prev.DisabledReason
		}
	}
	return Restore(ctx, api, s)
}

// isEvacuationsPending recognises Nova's refusal to lift a force-down while
// evacuation migrations from the host are "done" but not yet cleaned up by its
// restarted nova-compute (Nova 400 "Unable to force up host ...").
func isEvacuationsPending(err error) bool {
	var e *Error
	return errors.As(err, &e) && (e.Status == http.StatusBadRequest || e.Status == http.StatusConflict) &&
		strings.Contains(e.Message, "evacuation")
}

// Restore gives a returning host (evacuated, no longer forced down) its service status
// back: the operator's own disable and reason, if the host had been disabled before
// the fence; otherwise enabled, but only once Nova reports the service up, so that
// nothing is scheduled to a host whose nova-compute is not running. Until then the
// host stays disabled with its marker, and Restore can be called again (fence_nova's
// on does so when it finds the host returning). A host not in the lifecycle is left
// alone.
func Restore(ctx context.Context, api ServiceAPI, s Service) (Service, error) {
	m, ok := ParseMarker(s.DisabledReason)
	if !ok || s.ForcedDown || m.Phase != Evacuated {
		return s, nil
	}
	var u ServiceUpdate
	switch {
	case m.OperatorDisabled:
		u = ServiceUpdate{Status: "disabled", DisabledReason: m.OperatorReason}
	case s.Up():
		u = ServiceUpdate{Status: "enabled"}
	default:
		return s, nil
	}
	got, err := api.UpdateService(ctx, s, u)
	if err != nil {
		return s, err
	}
	if _, still := ParseMarker(got.DisabledReason); still {
		return got, fmt.Errorf("Nova kept the lifecycle marker of %s after restoring it", s.Host)
	}
	return got, nil
}
