package bmcsim

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Actions of Event.
const (
	ActionStatus  = "status"   // power read (Get Chassis Status); Value "1" on, "0" off
	ActionOn      = "on"       // power up requested (also the second half of a cycle)
	ActionOff     = "off"      // power down requested (also the first half of a cycle)
	ActionReset   = "reset"    // hard reset
	ActionSoftOff = "soft-off" // soft shutdown request
	ActionBooted  = "booted"   // the host finished booting: BootDelay passed, OnCommand ran
	// Boot-device and identify requests are "set-boot" and "set-identify", with Value.
)

// Event is one line of the chassis log.
type Event struct {
	Time   time.Time
	Action string
	Value  string
}

func (e Event) String() string {
	s := e.Time.Format("15:04:05.000") + " " + e.Action
	if e.Value != "" {
		s += " " + e.Value
	}
	return s
}

// parseLog reads "<unix seconds>.<nanoseconds> <action> [value]" lines; malformed lines
// are skipped.
func parseLog(data []byte) []Event {
	var evs []Event
	for _, line := range lines(data) {
		f := strings.Fields(string(line))
		if len(f) < 2 {
			continue
		}
		t, err := parseUnix(f[0])
		if err != nil {
			continue
		}
		evs = append(evs, Event{Time: t, Action: f[1], Value: strings.Join(f[2:], " ")})
	}
	return evs
}

func parseUnix(s string) (time.Time, error) {
	sec, frac, _ := strings.Cut(s, ".")
	secs, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		return time.Time{}, err
	}
	var nsec int64
	if frac != "" {
		if len(frac) > 9 {
			frac = frac[:9]
		}
		frac += strings.Repeat("0", 9-len(frac))
		if nsec, err = strconv.ParseInt(frac, 10, 64); err != nil {
			return time.Time{}, fmt.Errorf("timestamp %q: %w", s, err)
		}
	}
	return time.Unix(secs, nsec), nil
}

// Actions lists the actions of evs, in order, leaving out the ones in skip: handy for
// asserting on a sequence, e.g. Actions(ev, ActionStatus) == [off on].
func Actions(evs []Event, skip ...string) []string {
	var out []string
outer:
	for _, e := range evs {
		for _, s := range skip {
			if e.Action == s {
				continue outer
			}
		}
		out = append(out, e.Action)
	}
	return out
}
