package fence

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Syslog is the part of *log/syslog.Writer the framework uses.
type Syslog interface {
	Err(m string) error
	Warning(m string) error
	Info(m string) error
	Debug(m string) error
}

// sink is one destination with its own threshold.
type sink struct {
	w      io.Writer // nil for syslog
	syslog Syslog
	level  slog.Level
}

// logHandler writes "2006-01-02 15:04:05,000 LEVEL: message key=value" lines, the format
// operators know from fence-agents, to several sinks.
type logHandler struct {
	mu    *sync.Mutex
	sinks []sink
	attrs string
	now   func() time.Time
}

func newLogger(sinks []sink, now func() time.Time) *slog.Logger {
	return slog.New(&logHandler{mu: &sync.Mutex{}, sinks: sinks, now: now})
}

func (h *logHandler) Enabled(_ context.Context, l slog.Level) bool {
	for _, s := range h.sinks {
		if l >= s.level {
			return true
		}
	}
	return false
}

func (h *logHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	b.WriteString(h.attrs)
	r.Attrs(func(a slog.Attr) bool {
		writeAttr(&b, "", a)
		return true
	})
	msg := b.String()
	level := levelName(r.Level)
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, s := range h.sinks {
		if r.Level < s.level {
			continue
		}
		if s.syslog != nil {
			// Syslog failures must never fail the fencing action.
			switch {
			case r.Level >= slog.LevelError:
				_ = s.syslog.Err(msg)
			case r.Level >= slog.LevelWarn:
				_ = s.syslog.Warning(msg)
			case r.Level >= slog.LevelInfo:
				_ = s.syslog.Info(msg)
			default:
				_ = s.syslog.Debug(msg)
			}
			continue
		}
		fmt.Fprintf(s.w, "%s %s: %s\n", h.now().Format("2006-01-02 15:04:05,000"), level, msg)
	}
	return nil
}

func writeAttr(b *strings.Builder, prefix string, a slog.Attr) {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		for _, g := range v.Group() {
			writeAttr(b, prefix+a.Key+".", g)
		}
		return
	}
	s := v.String()
	if strings.ContainsAny(s, " \t\"=") || s == "" {
		s = fmt.Sprintf("%q", s)
	}
	fmt.Fprintf(b, " %s%s=%s", prefix, a.Key, s)
}

func (h *logHandler) WithAttrs(as []slog.Attr) slog.Handler {
	var b strings.Builder
	b.WriteString(h.attrs)
	for _, a := range as {
		writeAttr(&b, "", a)
	}
	c := *h
	c.attrs = b.String()
	return &c
}

// WithGroup is not used by the framework; groups are flattened into the key prefix.
func (h *logHandler) WithGroup(string) slog.Handler { return h }

func levelName(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "ERROR"
	case l >= slog.LevelWarn:
		return "WARNING"
	case l >= slog.LevelInfo:
		return "INFO"
	default:
		return "DEBUG"
	}
}
