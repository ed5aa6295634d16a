package ocf

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// parseValue parses s as a value of type t: a string, an int, a bool or a
// time.Duration. Errors never quote s, which may be a secret.
func parseValue(t Type, s string) (any, error) {
	switch t {
	case String:
		return s, nil
	case Integer:
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 0)
		if err != nil {
			var ne *strconv.NumError
			if errors.As(err, &ne) && errors.Is(ne.Err, strconv.ErrRange) {
				return nil, errors.New("integer out of range")
			}
			return nil, errors.New("not an integer")
		}
		return int(n), nil
	case Boolean:
		return parseBool(s)
	case Duration:
		return parseDuration(s)
	}
	return nil, fmt.Errorf("unknown type %d", int(t))
}

// parseBool accepts 1/yes/true/on and 0/no/false/off, in any case.
func parseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "yes", "true", "on":
		return true, nil
	case "0", "no", "false", "off":
		return false, nil
	}
	return false, errors.New("not a boolean (want 1/yes/true/on or 0/no/false/off)")
}

// parseDuration parses an OCF time: "30" (seconds), "30s", "500ms", "2min", "1h",
// with Pacemaker's unit spellings, or a Go duration ("1m30s"). Negative times are
// rejected.
func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	i := strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	num, unit := s, ""
	if i >= 0 {
		num, unit = s[:i], strings.ToLower(strings.TrimSpace(s[i:]))
	}
	if num != "" {
		mult, ok := map[string]time.Duration{
			"": time.Second, "s": time.Second, "sec": time.Second,
			"ms": time.Millisecond, "msec": time.Millisecond,
			"us": time.Microsecond, "usec": time.Microsecond,
			"m": time.Minute, "min": time.Minute,
			"h": time.Hour, "hr": time.Hour,
		}[unit]
		if ok {
			n, err := strconv.ParseInt(num, 10, 64)
			if err != nil || n > int64(1<<63-1)/int64(mult) {
				return 0, errors.New("time out of range")
			}
			return time.Duration(n) * mult, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, errors.New("not a time (want seconds, or a number with a unit: 500ms, 30s, 2min, 1h)")
	}
	if d < 0 {
		return 0, errors.New("negative time")
	}
	return d, nil
}

// formatDuration renders d as the metadata and the man page advertise it: "20s",
// "500ms".
func formatDuration(d time.Duration) string {
	switch {
	case d%time.Second == 0:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	case d%time.Millisecond == 0:
		return strconv.FormatInt(int64(d/time.Millisecond), 10) + "ms"
	}
	return d.String()
}
