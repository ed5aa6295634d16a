package ocf

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/novaha/novaha/lib/manpage"
)

// DefaultExitReasonPrefix is the exit-reason line's prefix when
// OCF_EXIT_REASON_PREFIX is not set.
const DefaultExitReasonPrefix = "ocf-exit-reason:"

// Main runs the agent as a process and returns its exit code:
//
//	os.Exit(agent.Main(os.Args, os.Environ(), os.Stdout, os.Stderr))
//
// SIGTERM and SIGINT cancel the handler's context.
func (a *Agent) Main(args, env []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	return int(a.Run(ctx, args, env, stdout, stderr))
}

// Run runs the action args[1] with the environment env (os.Environ's form) and returns
// the OCF exit code. Only meta-data, usage and the man page write to stdout; logs and
// the exit-reason line go to stderr. Run is safe for concurrent use.
func (a *Agent) Run(ctx context.Context, args, env []string, stdout, stderr io.Writer) Code {
	errw := &gate{w: stderr}
	envm := environ(env)
	var lg logs
	code, err := a.run(ctx, args, envm, stdout, errw, &lg)
	if code != Success {
		exitReason(errw, envm, lg, reasonOf(err))
	}
	lg.close()
	return code
}

// run does Run's work; it sets *lg once it knows the resource instance.
func (a *Agent) run(ctx context.Context, args []string, env map[string]string, stdout io.Writer, errw *gate, lg *logs) (code Code, err error) {
	defer func() {
		if p := recover(); p != nil {
			code, err = ErrGeneric, fmt.Errorf("internal error: %v", p)
			if lg.all != nil {
				lg.all.Error("internal error", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			}
		}
	}()
	if err := a.Check(); err != nil {
		return ErrGeneric, err
	}
	if len(args) < 2 || args[1] == "" {
		a.usage(errw)
		return ErrArgs, errors.New("no action given")
	}
	switch args[1] {
	case "meta-data", "metadata":
		if err := a.MetaData(stdout); err != nil {
			return ErrGeneric, fmt.Errorf("writing metadata: %w", err)
		}
		return Success, nil
	case "usage", "help", "--help", "-h":
		a.usage(stdout)
		return Success, nil
	case "manpage":
		if err := a.ManPage(stdout, manpage.SourceDate(env["SOURCE_DATE_EPOCH"])); err != nil {
			return ErrGeneric, fmt.Errorf("writing man page: %w", err)
		}
		return Success, nil
	}
	action := ActionName(args[1])
	if !knownAction(action) {
		a.usage(errw)
		return ErrArgs, fmt.Errorf("unknown action %q", args[1])
	}
	if action != ValidateAll && a.handler(action) == nil {
		return Unimplemented, fmt.Errorf("%s does not implement the %s action", a.Name, action)
	}

	instance := instanceOf(env)
	*lg = newLogs(errw, env, dialSyslog, fmt.Sprintf("%s(%s)", a.Name, instance), []any{"rsc", instance, "action", string(action)})
	r := a.newRequest(action, env, lg.all)
	start := time.Now()
	margin := safetyMargin(r.timeout)
	ctx, cancel := context.WithDeadline(ctx, start.Add(r.timeout-margin))
	defer cancel()

	err = a.dispatch(ctx, r, margin/2)
	code = CodeOf(err)
	if !code.Valid() {
		code, err = ErrGeneric, fmt.Errorf("invalid OCF exit code %d: %w", int(code), err)
	}
	level := slog.LevelInfo
	if action == Monitor || action == ValidateAll {
		level = slog.LevelDebug
	}
	lg.all.Log(ctx, level, "finished", "result", code.String(), "elapsed", time.Since(start).Round(time.Millisecond))
	if code == Success && reasonOf(err) != "" {
		lg.all.Info(reasonOf(err))
	}
	return code, err
}

// knownAction reports whether n is an action of the OCF standard, which an agent may
// not implement (Unimplemented), as opposed to an unknown one (ErrArgs).
func knownAction(n ActionName) bool {
	if declarable(n) {
		return true
	}
	switch n {
	case "status", "recover", "restart", "methods", "reload-agent":
		return true
	}
	return false
}

// lenient reports whether an action runs whatever the parameters (see the package
// documentation).
func lenient(n ActionName) bool { return n == Stop || n == Demote || n == Notify }

// dispatch applies the validation rules of r's action, then runs its handler.
func (a *Agent) dispatch(ctx context.Context, r *Request, grace time.Duration) error {
	h := a.handler(r.action)
	switch {
	case lenient(r.action):
		if r.configErr != nil {
			r.log.Warn("running despite invalid parameters", "error", r.configErr.Error())
		}
		return a.call(ctx, r, h, grace)

	case r.probe:
		if r.configErr != nil {
			return Errorf(NotRunning, "probe: not running here with invalid parameters: %w", r.configErr)
		}
		if err := a.validate(ctx, r, grace); err != nil {
			if CodeOf(err) == NotInstalled {
				return err
			}
			return Errorf(NotRunning, "probe: not running here with this configuration: %w", err)
		}
		err := a.call(ctx, r, h, grace)
		if CodeOf(err) == ErrConfigured {
			return Errorf(NotRunning, "probe: %w", err)
		}
		return err

	default:
		if r.configErr != nil {
			return &Error{Code: ErrConfigured, Err: r.configErr}
		}
		if err := a.validate(ctx, r, grace); err != nil {
			return err
		}
		if r.action == ValidateAll {
			return nil
		}
		return a.call(ctx, r, h, grace)
	}
}

// validate runs the agent's Validate; a plain error from it means ErrConfigured.
func (a *Agent) validate(ctx context.Context, r *Request, grace time.Duration) error {
	if a.Validate == nil {
		return nil
	}
	err := a.call(ctx, r, a.Validate, grace)
	if err == nil {
		return nil
	}
	if _, ok := errors.AsType[*Error](err); ok {
		return err
	}
	if _, ok := errors.AsType[Code](err); ok {
		return err
	}
	return &Error{Code: ErrConfigured, Err: err}
}

// call runs h, turning a panic into ErrGeneric and giving up grace after ctx expires
// if h has not returned by then.
func (a *Agent) call(ctx context.Context, r *Request, h Handler, grace time.Duration) error {
	done := make(chan error, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				r.log.Error("handler panicked", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				done <- Errorf(ErrGeneric, "%s: internal error: %v", r.action, p)
			}
		}()
		done <- h(ctx, r)
	}()

	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case err = <-done:
		case <-t.C:
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return Errorf(ErrGeneric, "%s timed out: no result %s before the %s operation timeout", r.action, formatDuration(safetyMargin(r.timeout)-grace), formatDuration(r.timeout))
			}
			return Errorf(ErrGeneric, "%s interrupted: %v", r.action, context.Cause(ctx))
		}
	}
	if err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) && CodeOf(err) == ErrGeneric {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return Errorf(ErrGeneric, "%s timed out (operation timeout %s): %w", r.action, formatDuration(r.timeout), err)
		}
		return Errorf(ErrGeneric, "%s interrupted: %w", r.action, err)
	}
	return err
}

// exitReason writes the exit-reason line, the last thing on stderr, and sends the
// reason to syslog.
func exitReason(errw *gate, env map[string]string, lg logs, reason string) {
	reason = strings.Join(strings.Fields(reason), " ")
	if reason == "" {
		return
	}
	if lg.sys != nil {
		lg.sys.Error(reason)
	}
	prefix, ok := env["OCF_EXIT_REASON_PREFIX"]
	if !ok || prefix == "" {
		prefix = DefaultExitReasonPrefix
	}
	errw.last([]byte(prefix + reason + "\n"))
}

// usage writes the agent's usage: its actions and parameters.
func (a *Agent) usage(w io.Writer) {
	var b strings.Builder
	fmt.Fprintf(&b, "usage: %s %s\n\n", a.Name, a.actionList())
	fmt.Fprintf(&b, "%s (ocf:%s:%s %s): %s\n\n", a.Name, Provider, a.Name, a.Version, strings.Join(strings.Fields(a.ShortDesc), " "))
	b.WriteString("Parameters are read from OCF_RESKEY_<name> environment variables:\n")
	for _, p := range a.Params {
		fmt.Fprintf(&b, "  %-24s %s %s\n", p.Name, strings.Join(strings.Fields(p.ShortDesc), " "), p.facts())
	}
	b.WriteString("\nSee the man page ocf_" + Provider + "_" + a.Name + "(7).\n")
	io.WriteString(w, b.String())
}
