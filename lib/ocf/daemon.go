package ocf

import (
	"io"
	"log/slog"
)

// DaemonLogger is the logger of a long-running process that an agent starts (such
// as NovaEvacuate's controller), with the agents' own policy: to syslog, tagged tag,
// when HA_LOGFACILITY (or HA_logfacility) in env names a facility and syslog answers,
// with only warnings and errors also written to w; to w alone otherwise. Records on w
// carry their time: unlike an agent's stderr, nobody stamps them. debug shows debug
// records (as HA_debug does for the agents). close ends the syslog connection.
func DaemonLogger(w io.Writer, env []string, tag string, debug bool, attrs ...any) (log *slog.Logger, close func()) {
	return daemonLogger(w, environ(env), dialSyslog, tag, debug, attrs)
}

func daemonLogger(w io.Writer, env map[string]string, dial dialFunc, tag string, debug bool, attrs []any) (*slog.Logger, func()) {
	level := slog.LevelInfo
	if debug {
		level = slog.LevelDebug
	}
	wLevel := level
	var handlers []slog.Handler
	closeFn := func() {}
	if facility, ok := syslogFacility(env); ok {
		if sw, err := dial(facility, tag); err == nil {
			handlers = append(handlers, newSyslogHandler(sw, level))
			closeFn = func() { sw.Close() }
			wLevel = max(level, slog.LevelWarn)
		}
	}
	handlers = append(handlers, slog.NewTextHandler(&gate{w: w}, &slog.HandlerOptions{Level: wLevel}))
	return slog.New(slog.NewMultiHandler(handlers...)).With(attrs...), closeFn
}
