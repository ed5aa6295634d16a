package nova

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// The host lifecycle is kept durably in the nova-compute service's disabled_reason,
// so that it survives any restart of the cluster or of the agents (see DESIGN.md, "The
// host lifecycle"). This file is the one place that writes and reads those markers:
//
//	novaha:fenced 2026-01-02T03:04:05Z
//	novaha:fenced 2026-01-02T03:04:05Z evacuate=yes   (the stock NovaEvacuate was told)
//	novaha:evacuating
//	novaha:evacuated moved=12 failed=1
//	novaha:evacuated source=attrd      (the stock NovaEvacuate said so)
//
// When an operator had disabled the service before the host was fenced, the marker
// keeps that, and the operator's own reason, so that they can be restored when the
// host returns:
//
//	novaha:fenced 2026-01-02T03:04:05Z; was disabled: replacing DIMM B2
//	novaha:evacuated moved=3 failed=0; was disabled
//
// A marker is at most 255 characters (Nova's limit): the operator's reason is
// shortened to fit.

// MarkerPrefix starts every lifecycle marker.
const MarkerPrefix = "novaha:"

// Phase is the step of the lifecycle a marker records.
type Phase int

// Lifecycle phases.
const (
	// Fenced: fence_nova forced the host down and disabled it; its instances are to
	// be evacuated.
	Fenced Phase = iota + 1
	// Evacuating: the evacuation controller is moving the host's instances.
	Evacuating
	// Evacuated: every instance was handled (moved, or recorded as failed); the
	// host may return.
	Evacuated
)

var phaseNames = map[Phase]string{Fenced: "fenced", Evacuating: "evacuating", Evacuated: "evacuated"}

func (p Phase) String() string {
	if n, ok := phaseNames[p]; ok {
		return n
	}
	return "phase(" + strconv.Itoa(int(p)) + ")"
}

// maxReason is Nova's limit on disabled_reason.
const maxReason = 255

const wasDisabled = "; was disabled"

// Marker is one lifecycle marker.
type Marker struct {
	Phase Phase
	// At is when the phase began; always set for Fenced, optional otherwise.
	At time.Time
	// Moved and Failed count the instances of an Evacuated host.
	Moved, Failed int
	// Source names who reported an evacuation that novaha did not do ("attrd": the
	// stock NovaEvacuate, through the Pacemaker attribute); the counts are then unknown.
	Source string
	// StockEvacuate records, on a Fenced marker, that fence_nova's off set the
	// Pacemaker attribute evacuate=yes for the stock NovaEvacuate before writing the
	// marker: an evacuate=no read later was then written after it, by that controller
	// (see Unfence). A marker without it never trusts evacuate=no, which may be stale.
	StockEvacuate bool
	// OperatorDisabled records that the service was disabled before the fence, by
	// someone else than novaha; OperatorReason is that disable's reason ("" if none).
	OperatorDisabled bool
	OperatorReason   string
}

// String formats the marker as it is stored in disabled_reason.
func (m Marker) String() string {
	var b strings.Builder
	b.WriteString(MarkerPrefix)
	b.WriteString(m.Phase.String())
	if !m.At.IsZero() {
		b.WriteByte(' ')
		b.WriteString(m.At.UTC().Format(time.RFC3339))
	}
	switch {
	case m.Source != "":
		fmt.Fprintf(&b, " source=%s", m.Source)
	case m.Phase == Evacuated:
		fmt.Fprintf(&b, " moved=%d failed=%d", m.Moved, m.Failed)
	}
	if m.StockEvacuate {
		b.WriteString(" evacuate=yes")
	}
	if m.OperatorDisabled {
		b.WriteString(wasDisabled)
		if m.OperatorReason != "" {
			b.WriteString(": ")
			room := maxReason - utf8.RuneCountInString(b.String())
			b.WriteString(truncateRunes(m.OperatorReason, room))
		}
	}
	return b.String()
}

func truncateRunes(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	if n == 1 {
		return "…"
	}
	return string(r[:n-1]) + "…"
}

// ParseMarker reads a disabled_reason. ok is false when the reason is not a novaha
// marker (an operator's reason, or none): the host is then not in the lifecycle.
func ParseMarker(reason string) (m Marker, ok bool) {
	rest, found := strings.CutPrefix(strings.TrimSpace(reason), MarkerPrefix)
	if !found {
		return Marker{}, false
	}
	head, tail, disabled := strings.Cut(rest, wasDisabled)
	if disabled {
		m.OperatorDisabled = true
		m.OperatorReason = strings.TrimPrefix(tail, ": ")
	}
	fields := strings.Fields(head)
	if len(fields) == 0 {
		return Marker{}, false
	}
	for p, name := range phaseNames {
		if fields[0] == name {
			m.Phase = p
		}
	}
	if m.Phase == 0 {
		return Marker{}, false
	}
	for _, f := range fields[1:] {
		k, v, kv := strings.Cut(f, "=")
		switch {
		case !kv:
			if t, err := time.Parse(time.RFC3339, f); err == nil {
				m.At = t
			}
		case k == "moved":
			m.Moved, _ = strconv.Atoi(v)
		case k == "failed":
			m.Failed, _ = strconv.Atoi(v)
		case k == "source":
			m.Source = v
		case k == "evacuate":
			m.StockEvacuate = v == "yes"
		}
		// Unknown fields are left for later versions.
	}
	return m, true
}

// NextMarker is the marker for moving the service s to phase p at time at, keeping
// what s records of the operator's own disable: from its marker when it has one,
// else from its current status and reason.
func NextMarker(s Service, p Phase, at time.Time) Marker {
	m := Marker{Phase: p, At: at}
	if old, ok := ParseMarker(s.DisabledReason); ok {
		m.OperatorDisabled, m.OperatorReason = old.OperatorDisabled, old.OperatorReason
	} else if !s.Enabled() {
		m.OperatorDisabled, m.OperatorReason = true, s.DisabledReason
	}
	return m
}
