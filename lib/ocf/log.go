package ocf

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"log/syslog"
	"strings"
	"sync"
)

// syslogWriter is the part of *syslog.Writer the logger uses.
type syslogWriter interface {
	Err(m string) error
	Warning(m string) error
	Info(m string) error
	Debug(m string) error
	Close() error
}

// dialFunc connects to syslog.
type dialFunc func(facility syslog.Priority, tag string) (syslogWriter, error)

// dialSyslog connects to the local syslog daemon.
func dialSyslog(facility syslog.Priority, tag string) (syslogWriter, error) {
	return syslog.Dial("", "", facility|syslog.LOG_INFO, tag)
}

// logs are the destinations of one run: the logger handlers use (stderr and, if
// configured, syslog) and the syslog part alone, for the exit reason, which goes to
// stderr once as the exit-reason line.
type logs struct {
	all    *slog.Logger
	sys    *slog.Logger // nil without syslog
	closer io.Closer    // nil without syslog
}

// newLogs builds the loggers for one run from the environment, the way ocf-shellfuncs
// does: debug messages when HA_debug is set and not 0; syslog when HA_LOGFACILITY (or
// HA_logfacility; pacemakerd exports both) names a facility other than "none".
// Syslog is best effort: if it cannot be reached, stderr takes everything. With
// syslog, stderr only takes warnings and errors: Pacemaker logs an agent's stderr
// itself (as "error output"), so routine messages would otherwise be logged twice.
func newLogs(stderr io.Writer, env map[string]string, dial dialFunc, tag string, attrs []any) logs {
	level := slog.LevelInfo
	if d := env["HA_debug"]; d != "" && d != "0" {
		level = slog.LevelDebug
	}
	var l logs
	stderrLevel := level
	var handlers []slog.Handler
	if facility, ok := syslogFacility(env); ok {
		if w, err := dial(facility, tag); err == nil {
			sh := newSyslogHandler(w, level)
			handlers = append(handlers, sh)
			l.sys = slog.New(sh).With(attrs...)
			l.closer = w
			stderrLevel = max(level, slog.LevelWarn)
		}
	}
	opts := &slog.HandlerOptions{Level: stderrLevel, ReplaceAttr: dropTime}
	handlers = append(handlers, slog.NewTextHandler(stderr, opts))
	l.all = slog.New(slog.NewMultiHandler(handlers...)).With(attrs...)
	return l
}

func (l logs) close() {
	if l.closer != nil {
		l.closer.Close()
	}
}

func dropTime(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

// syslogFacility is the facility HA_LOGFACILITY or HA_logfacility names, if any.
func syslogFacility(env map[string]string) (syslog.Priority, bool) {
	name := env["HA_LOGFACILITY"]
	if name == "" {
		name = env["HA_logfacility"]
	}
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "", "none":
		return 0, false
	case "kern":
		return syslog.LOG_KERN, true
	case "user":
		return syslog.LOG_USER, true
	case "mail":
		return syslog.LOG_MAIL, true
	case "auth":
		return syslog.LOG_AUTH, true
	case "syslog":
		return syslog.LOG_SYSLOG, true
	case "authpriv":
		return syslog.LOG_AUTHPRIV, true
	case "cron":
		return syslog.LOG_CRON, true
	case "local0":
		return syslog.LOG_LOCAL0, true
	case "local1":
		return syslog.LOG_LOCAL1, true
	case "local2":
		return syslog.LOG_LOCAL2, true
	case "local3":
		return syslog.LOG_LOCAL3, true
	case "local4":
		return syslog.LOG_LOCAL4, true
	case "local5":
		return syslog.LOG_LOCAL5, true
	case "local6":
		return syslog.LOG_LOCAL6, true
	case "local7":
		return syslog.LOG_LOCAL7, true
	}
	return syslog.LOG_DAEMON, true
}

// syslogHandler formats records as slog's text handler does, without time and level
// (syslog has both), and sends each at its level's priority.
type syslogHandler struct {
	w     syslogWriter
	mu    *sync.Mutex
	buf   *bytes.Buffer
	text  slog.Handler // writes into buf
	level slog.Level
}

func newSyslogHandler(w syslogWriter, level slog.Level) *syslogHandler {
	buf := &bytes.Buffer{}
	drop := func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && (a.Key == slog.TimeKey || a.Key == slog.LevelKey) {
			return slog.Attr{}
		}
		return a
	}
	return &syslogHandler{
		w:     w,
		mu:    &sync.Mutex{},
		buf:   buf,
		text:  slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug, ReplaceAttr: drop}),
		level: level,
	}
}

func (h *syslogHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h *syslogHandler) Handle(ctx context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.buf.Reset()
	if err := h.text.Handle(ctx, r); err != nil {
		return err
	}
	msg := strings.TrimSuffix(h.buf.String(), "\n")
	switch {
	case r.Level >= slog.LevelError:
		return h.w.Err(msg)
	case r.Level >= slog.LevelWarn:
		return h.w.Warning(msg)
	case r.Level >= slog.LevelInfo:
		return h.w.Info(msg)
	}
	return h.w.Debug(msg)
}

func (h *syslogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.text = h.text.WithAttrs(attrs)
	return &c
}

func (h *syslogHandler) WithGroup(name string) slog.Handler {
	c := *h
	c.text = h.text.WithGroup(name)
	return &c
}

// gate serializes writes to the agent's stderr and shuts it once the exit-reason line
// is written, so that the reason stays the last line even if a timed-out handler
// still logs.
type gate struct {
	mu     sync.Mutex
	w      io.Writer
	closed bool
}

func (g *gate) Write(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return len(p), nil
	}
	return g.w.Write(p)
}

// last writes p and shuts the gate.
func (g *gate) last(p []byte) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.closed {
		g.w.Write(p)
	}
	g.closed = true
}
