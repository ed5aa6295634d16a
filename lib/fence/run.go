package fence

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"log/syslog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/novaha/novaha/lib/clock"
	"github.com/novaha/novaha/lib/version"
)

// Invocation is everything one run of an agent reads and writes, so that tests can run
// an agent in-process.
type Invocation struct {
	Args   []string // command-line arguments, without the program name
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
	// Syslog opens the syslog connection; nil disables syslog.
	Syslog func() (Syslog, error)
	// Exec hands a device action over to the agent's Backend: its path, its argv
	// (argv[0] included) and the stdin bytes the agent already read (nil when the options
	// came as arguments and stdin was left unread). It returns the exit code, or an error
	// when the backend could not be run. Main uses ExecBackend, which replaces the
	// process; nil runs the backend as a child process with this invocation's streams
	// and this process's environment.
	Exec func(path string, argv []string, stdin []byte) (int, error)
}

// Main runs the agent as a program and exits with its exit code. SIGTERM and SIGINT
// cancel the action. (At its own timeout Pacemaker sends SIGKILL to the agent's process
// group, without warning: the agent's own bounds must end it first where that matters.)
func (a *Agent) Main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	code := a.Run(ctx, Invocation{
		Args:   os.Args[1:],
		Stdin:  os.Stdin,
		Stdout: os.Stdout,
		Stderr: os.Stderr,
		Getenv: os.Getenv,
		Syslog: func() (Syslog, error) { return syslog.New(syslog.LOG_DAEMON|syslog.LOG_INFO, a.Name) },
		Exec:   ExecBackend,
	})
	stop()
	os.Exit(code)
}

// run is the state of one agent run.
type run struct {
	a      *Agent
	o      *Options
	out    io.Writer
	log    *slog.Logger
	clock  Clock
	t      timing
	dev    Device
	closer func()
}

// timing is the typed form of the timing options.
type timing struct {
	login, shell, power, powerWait, statusSleep, delay time.Duration
	retryOn                                            int
	// unbounded: disable_timeout is in force, so power_timeout defers to Pacemaker's
	// own timeout. login_timeout and shell_timeout still bound each single exchange:
	// a request without an answer is never worth waiting for indefinitely.
	unbounded bool
}

// Run executes one invocation and returns the exit code. A panic in an agent or a
// library is a bug, but it must still end as a failure (exit 1, one line), never as
// Go's exit 2, which Pacemaker would read as "Status: OFF".
func (a *Agent) Run(ctx context.Context, inv Invocation) (code int) {
	defer func() {
		if v := recover(); v != nil {
			if inv.Stderr != nil {
				fmt.Fprintf(inv.Stderr, "Failed: internal error in %s (please report it): %v\n", a.Name, v)
			}
			code = ExitFailure
		}
	}()
	if inv.Getenv == nil {
		inv.Getenv = func(string) string { return "" }
	}
	if inv.Stdin == nil {
		inv.Stdin = strings.NewReader("")
	}
	clk := a.Clock
	if clk == nil {
		clk = clock.Real{}
	}
	o := newOptions(a.allParams())
	var parseErr error
	// stdin as read, for the Backend: it must see what this process consumed.
	var stdin []byte
	if len(inv.Args) > 0 {
		parseErr = o.parseFlags(a.Name, inv.Args)
	} else if a.Backend != "" {
		var buf bytes.Buffer
		parseErr = o.parseStdin(io.TeeReader(inv.Stdin, &buf))
		stdin = append([]byte{}, buf.Bytes()...) // never nil: stdin was read
	} else {
		parseErr = o.parseStdin(inv.Stdin)
	}
	o.applyDefaults(nil)
	action := normaliseAction(o.raw[ParamAction], a.Fabric)
	o.raw[ParamAction] = action

	if parseErr == nil {
		switch {
		case o.given[ParamHelp] && o.raw[ParamHelp] == "1":
			a.writeUsage(inv.Stdout)
			return ExitSuccess
		case o.given[ParamVersion] && o.raw[ParamVersion] == "1":
			fmt.Fprintln(inv.Stdout, a.version())
			return ExitSuccess
		case action == "metadata":
			if err := a.WriteMetadata(inv.Stdout); err != nil {
				fmt.Fprintf(inv.Stderr, "Failed: writing metadata: %v\n", err)
				return ExitFailure
			}
			return ExitSuccess
		case action == "manpage":
			if err := a.WriteManPage(inv.Stdout); err != nil {
				fmt.Fprintf(inv.Stderr, "Failed: writing man page: %v\n", err)
				return ExitFailure
			}
			return ExitSuccess
		}
		// The backend parses, validates and logs again: handing over before logging
		// keeps each warning to one copy.
		if a.Backend != "" && a.acceptsAction(action) && deviceAction(action) {
			return a.handOff(ctx, inv, stdin)
		}
	}

	r := &run{a: a, o: o, out: inv.Stdout, clock: clk}
	r.log, r.closer = a.openLog(o, inv, clk)
	o.log = r.log
	defer r.closer()
	for _, w := range o.warnings {
		r.log.Warn(w)
	}
	if parseErr != nil {
		return r.usageFail(parseErr.Error())
	}
	if !a.acceptsAction(action) {
		return r.usageFail(fmt.Sprintf("Failed: Unrecognised action '%s'", action))
	}
	// list-style actions and validate-all need no target: pcs validates with a dummy one
	// or none, and stonith_admin --validate gives none.
	needTarget := action != "list" && action != "list-status" && action != "monitor" && action != "validate-all"
	if err := a.validate(o, needTarget); err != nil {
		if action == "validate-all" {
			r.log.Error(err.Error())
			return r.usageFail("validate-all failed")
		}
		return r.usageFail(err.Error())
	}
	if action == "validate-all" {
		return ExitSuccess
	}
	r.log.Debug("options", "options", o)
	for _, p := range o.params {
		if p.Ignored && o.given[p.Name] {
			r.log.Debug("parameter accepted for compatibility and ignored", "parameter", p.Name)
		}
	}
	r.t = timingOf(o, inv.Getenv)
	if action == "monitor" && o.Bool(ParamPortAsIP) && o.raw[ParamIP] == "" {
		// With port_as_ip and no fixed address, each request names its own BMC: there
		// is no device to check until one arrives. Failing here would keep Pacemaker
		// from ever starting the device.
		r.log.Info("monitor: no fixed device address (port_as_ip); options checked")
		return ExitSuccess
	}
	if err := resolvePassword(ctx, o); err != nil {
		return r.fail(err.Error())
	}
	return r.execute(ctx, action)
}

func normaliseAction(s string, fabric bool) string {
	s = strings.ToLower(strings.TrimSpace(s))
	switch s {
	case "meta-data":
		return "metadata"
	case "enable":
		if fabric {
			return "on"
		}
	case "disable":
		if fabric {
			return "off"
		}
	}
	return s
}

func (a *Agent) acceptsAction(action string) bool {
	for _, x := range a.actions() {
		if x == action {
			return true
		}
	}
	return false
}

func (a *Agent) version() string {
	if a.Version != "" {
		return a.Version
	}
	return version.Version
}

func timingOf(o *Options, getenv func(string) string) timing {
	t := timing{
		login:       o.Seconds(ParamLoginTimeout),
		shell:       o.Seconds(ParamShellTimeout),
		power:       o.Seconds(ParamPowerTimeout),
		powerWait:   o.Seconds(ParamPowerWait),
		statusSleep: o.Seconds(ParamStonithStatusSleep),
		delay:       o.Seconds(ParamDelay),
		retryOn:     o.Int(ParamRetryOn),
	}
	if o.given[ParamDisableTimeout] {
		t.unbounded = o.Bool(ParamDisableTimeout)
	} else {
		t.unbounded = getenv("PCMK_service") == "pacemaker-fenced"
	}
	if t.statusSleep <= 0 {
		// A zero sleep would poll the device as fast as it answers.
		t.statusSleep = 100 * time.Millisecond
	}
	if t.retryOn < 0 {
		t.retryOn = 0
	}
	return t
}

// openLog builds the logger: stderr (unless quiet; warnings, or everything when
// verbose), syslog (info and up, or everything when verbose) and the debug file.
func (a *Agent) openLog(o *Options, inv Invocation, clk Clock) (*slog.Logger, func()) {
	verbose := o.VerboseLevel() > 0
	level := slog.LevelWarn
	sysLevel := slog.LevelInfo
	if verbose {
		level, sysLevel = slog.LevelDebug, slog.LevelDebug
	}
	var sinks []sink
	closers := []func(){}
	// Raw value: logging is set up before type checking, so that its errors are logged.
	if quiet, _ := parseBool(o.raw[ParamQuiet]); !quiet {
		sinks = append(sinks, sink{w: inv.Stderr, level: level})
	}
	if inv.Syslog != nil {
		if s, err := inv.Syslog(); err == nil && s != nil {
			sinks = append(sinks, sink{syslog: s, level: sysLevel})
			if c, ok := s.(io.Closer); ok {
				closers = append(closers, func() { _ = c.Close() })
			}
		}
	}
	var fileErr error
	if path := o.raw[ParamDebugFile]; path != "" {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			fileErr = err
		} else {
			sinks = append(sinks, sink{w: f, level: slog.LevelDebug})
			closers = append(closers, func() { _ = f.Close() })
		}
	}
	l := newLogger(sinks, clk.Now)
	if fileErr != nil {
		l.Warn("Unable to open debug file", "error", fileErr.Error())
	}
	return l, func() {
		for _, c := range closers {
			c()
		}
	}
}

func (r *run) usageFail(msg string) int {
	r.log.Error(msg)
	r.log.Error("Please use '-h' for usage")
	return ExitFailure
}

func (r *run) fail(msg string) int {
	r.log.Error(msg)
	return ExitFailure
}

// withTimeout bounds one exchange with the device. A zero duration leaves ctx as it is.
func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}

// describe words an error for the operator. A deadline always reads "timed out", which
// is what Pacemaker and operators look for.
func describe(err error, limit string, d time.Duration) string {
	msg := err.Error()
	switch {
	case errors.Is(err, context.DeadlineExceeded) && !strings.Contains(strings.ToLower(msg), "timed out"):
		return fmt.Sprintf("%s: timed out after %s (%s)", msg, d, limit)
	case errors.Is(err, context.Canceled):
		return msg + ": interrupted"
	}
	return msg
}
