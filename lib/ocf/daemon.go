package ocf

import (
	"io"
	"log/slog"
)

// DaemonLogger is the logger of a long-running process that an agent starts (such
// as NovaEvacuate's controller), with the agents' own policy: to syslog, tagged tag,
// when HA_LOGFACILITY (or HA_logfacility) in env names a facility and syslog answers,
// with only warnings and errors also written to w; to w alone otherwise. debug shows
// debug records (as HA_debug does for the agents). close ends the syslog connection.
func DaemonLogger(w io.Writer, env []string, tag string, debug bool, attrs ...any) (log *slog.Logger, close func()) {
	m := environ(env)
	if debug {
		m["HA_debug"] = "1"
	}
	l := newLogs(&gate{w: w}, m, dialSyslog, tag, attrs)
	return l.all, l.close
}
