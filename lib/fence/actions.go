package fence

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/novaha/novaha/lib/clock"
)

// Clock is the passage of time as this package's loops see it; tests replace it.
type Clock = clock.Clock

// execute connects to the device and performs a device action.
func (r *run) execute(ctx context.Context, action string) int {
	if (action == "off" || action == "reboot") && r.t.delay > 0 {
		r.log.Info(fmt.Sprintf("Delay %d second(s) before logging in to the fence device", int(r.t.delay/time.Second)))
		if err := r.clock.Sleep(ctx, r.t.delay); err != nil {
			return r.fail("Failed: interrupted during delay")
		}
	}
	octx, cancel := withTimeout(ctx, r.t.login)
	dev, err := r.a.Open(octx, r.o)
	cancel()
	if err != nil {
		return r.fail("Failed: Unable to connect/login to fencing device: " + describe(err, "login_timeout", r.t.login))
	}
	r.dev = dev
	defer func() {
		// Closing must not be skipped because the action's context ended. r.dev, not
		// dev: a lost session may have been replaced.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.closeTimeout())
		defer cancel()
		if err := r.dev.Close(cctx); err != nil {
			r.log.Debug("closing the session failed", "error", err.Error())
		}
	}()

	switch action {
	case "on", "off":
		return r.onOff(ctx, action == "on")
	case "reboot":
		return r.reboot(ctx)
	case "status":
		return r.statusAction(ctx)
	case "monitor":
		return r.monitor(ctx)
	case "list", "list-status":
		return r.list(ctx, action == "list-status")
	}
	return r.usageFail(fmt.Sprintf("Failed: Unrecognised action '%s'", action))
}

// defaultPowerTimeout bounds the power-on step of reboot when power_timeout is 0.
const defaultPowerTimeout = 20 * time.Second

// reopen replaces the device session with a new one. A failure is only logged: the
// caller goes on polling and may try again.
func (r *run) reopen(ctx context.Context) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.closeTimeout())
	_ = r.dev.Close(cctx)
	cancel()
	octx, cancel := withTimeout(ctx, r.t.login)
	defer cancel()
	dev, err := r.a.Open(octx, r.o)
	if err != nil {
		r.log.Debug("logging in again failed", "error", describe(err, "login_timeout", r.t.login))
		r.dev = closedDevice{err}
		return
	}
	r.log.Debug("logged in to the fencing device again")
	r.dev = dev
}

// closedDevice stands for a session that could not be re-established: every call
// fails with the login error until the next reopen.
type closedDevice struct{ err error }

func (d closedDevice) Status(context.Context, string) (State, error) { return Unknown, d.err }
func (d closedDevice) SetPower(context.Context, string, bool) error  { return d.err }
func (d closedDevice) Close(context.Context) error                   { return nil }

func (r *run) closeTimeout() time.Duration {
	if r.t.shell > 0 {
		return r.t.shell
	}
	return 3 * time.Second
}

// status reads the target's power state within shell_timeout, applying missing_as_off.
func (r *run) status(ctx context.Context) (State, error) {
	cctx, cancel := withTimeout(ctx, r.t.shell)
	defer cancel()
	s, err := r.dev.Status(cctx, r.o.Plug())
	if err != nil {
		if errors.Is(err, ErrNoSuchPlug) && r.o.Bool(ParamMissingAsOff) {
			r.log.Info("target not found on the device, reported as OFF (missing_as_off)", "plug", r.o.Plug())
			return Off, nil
		}
		return Unknown, errors.New(describe(err, "shell_timeout", r.t.shell))
	}
	if s != On && s != Off {
		return Unknown, errors.New("the device reported an unknown power state")
	}
	return s, nil
}

func (r *run) statusFail(err error) int {
	return r.fail("Failed: Unable to obtain correct plug status or plug is not available: " + err.Error())
}

func (r *run) onOff(ctx context.Context, on bool) int {
	want := stateOf(on)
	s, err := r.status(ctx)
	if err != nil {
		return r.statusFail(err)
	}
	if s == want {
		if ra, ok := r.dev.(Reasserter); ok {
			cctx, cancel := withTimeout(ctx, r.t.shell)
			err := ra.Reassert(cctx, r.o.Plug(), on)
			cancel()
			if err != nil {
				return r.fail(fmt.Sprintf("Failed: the target is %s but its state could not be completed: %s",
					want, describe(err, "shell_timeout", r.t.shell)))
			}
		}
		r.log.Info("already "+want.String(), "plug", r.o.Plug())
		fmt.Fprintf(r.out, "Success: Already %s\n", want)
		return ExitSuccess
	}
	attempts := 1
	if on {
		attempts += r.t.retryOn
	}
	if err := r.setPower(ctx, on, attempts); err != nil {
		return r.fail(err.Error())
	}
	r.log.Info("powered "+want.String(), "plug", r.o.Plug())
	fmt.Fprintf(r.out, "Success: Powered %s\n", want)
	return ExitSuccess
}

func (r *run) reboot(ctx context.Context) int {
	s, err := r.status(ctx)
	if err != nil {
		return r.statusFail(err)
	}
	if r.o.String(ParamMethod) == "cycle" {
		// A power cycle cannot be verified: the host may never be seen off. Fencing
		// must be verified (DESIGN.md, invariant 2), so cycle means a verified off
		// followed by on, which is what operators want from it.
		r.log.Warn("method=cycle cannot be verified: doing a verified power off, then power on")
	}
	if s != Off {
		if err := r.setPower(ctx, false, 1); err != nil {
			return r.fail(err.Error())
		}
	}
	// The target is verified off: fencing succeeded. Powering on again is a courtesy;
	// its failure is logged, not returned, as with fence-agents. It is always bounded
	// by power_timeout, even under disable_timeout: Pacemaker kills an agent at its
	// own timeout without warning, and a host that never comes back must not turn a
	// successful fence into a timed-out one.
	if r.t.retryOn > 0 {
		bounded := *r
		bounded.t.unbounded = false
		if bounded.t.power <= 0 {
			bounded.t.power = defaultPowerTimeout
		}
		if err := bounded.setPower(ctx, true, r.t.retryOn); err != nil {
			r.log.Error("Timed out waiting to power ON", "error", err.Error())
		}
		r.dev = bounded.dev
	}
	r.log.Info("rebooted", "plug", r.o.Plug())
	fmt.Fprintln(r.out, "Success: Rebooted")
	return ExitSuccess
}

// setPower switches the target and verifies the new state by polling, up to attempts
// times. Only a state read back from the device counts as success.
func (r *run) setPower(ctx context.Context, on bool, attempts int) error {
	want := stateOf(on)
	var last error
	for i := 0; i < attempts; i++ {
		if ctx.Err() != nil {
			break
		}
		err := r.switchWhenReady(ctx, on)
		if errors.Is(err, ErrNotReady) {
			// The device's own condition was not met within the time allowed; another
			// attempt would only wait as long again.
			if ctx.Err() != nil {
				break
			}
			return fmt.Errorf("Failed: Timed out waiting to power %s: %s", want, err)
		}
		if err != nil {
			last = fmt.Errorf("Failed: Unable to power %s: %s", want, describe(err, "shell_timeout", r.t.shell))
			r.log.Warn("power request failed", "state", want.String(), "attempt", i+1, "error", last.Error())
			if i+1 < attempts && ctx.Err() == nil {
				r.reopen(ctx)
			}
			continue
		}
		if err := r.clock.Sleep(ctx, r.t.powerWait); err != nil {
			break
		}
		ok, err := r.waitFor(ctx, want)
		if ok {
			return nil
		}
		last = fmt.Errorf("Failed: Timed out waiting to power %s", want)
		if err != nil {
			last = fmt.Errorf("%w (last status error: %s)", last, err)
		}
		r.log.Warn("target did not reach the state in time", "state", want.String(), "attempt", i+1)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("Failed: interrupted while waiting to power %s: %w", want, ctx.Err())
	}
	if last == nil {
		last = fmt.Errorf("Failed: Timed out waiting to power %s", want)
	}
	return last
}

// switchWhenReady asks the device to switch the target, again every
// stonith_status_sleep for as long as it answers ErrNotReady, within power_timeout
// (unbounded under disable_timeout). Each request is bounded by shell_timeout.
func (r *run) switchWhenReady(ctx context.Context, on bool) error {
	deadline := r.clock.Now().Add(r.t.power)
	bounded := !r.t.unbounded && r.t.power > 0
	var said string
	for {
		cctx, cancel := withTimeout(ctx, r.t.shell)
		err := r.dev.SetPower(cctx, r.o.Plug(), on)
		cancel()
		if !errors.Is(err, ErrNotReady) {
			return err
		}
		if msg := err.Error(); msg != said {
			r.log.Info("waiting: "+msg, "plug", r.o.Plug())
			said = msg
		}
		if ctx.Err() != nil || (bounded && !r.clock.Now().Before(deadline)) {
			return err
		}
		if r.clock.Sleep(ctx, r.t.statusSleep) != nil {
			return err
		}
	}
}

// waitFor polls status every stonith_status_sleep until want is seen or power_timeout
// passes (unbounded under disable_timeout, where Pacemaker's timeout is the limit).
// Errors while polling are tolerated: a BMC may not answer while the host goes down.
func (r *run) waitFor(ctx context.Context, want State) (bool, error) {
	deadline := r.clock.Now().Add(r.t.power)
	// power_timeout=0 means no limit, as in fence-agents.
	bounded := !r.t.unbounded && r.t.power > 0
	var last error
	for {
		s, err := r.status(ctx)
		if err == nil && s == want {
			return true, nil
		}
		if err != nil {
			last = err
			r.log.Debug("status while waiting", "error", err.Error())
			// BMCs drop or reset sessions while a host goes down: log in again
			// rather than poll a dead session until the deadline.
			if ctx.Err() == nil {
				r.reopen(ctx)
			}
		}
		if ctx.Err() != nil || (bounded && !r.clock.Now().Before(deadline)) {
			return false, last
		}
		if err := r.clock.Sleep(ctx, r.t.statusSleep); err != nil {
			return false, last
		}
	}
}

func (r *run) statusAction(ctx context.Context) int {
	s, err := r.status(ctx)
	if err != nil {
		return r.statusFail(err)
	}
	fmt.Fprintf(r.out, "Status: %s\n", s)
	if s == Off {
		return ExitOff
	}
	return ExitSuccess
}

func (r *run) monitor(ctx context.Context) int {
	cctx, cancel := withTimeout(ctx, r.t.shell)
	defer cancel()
	var err error
	switch dev := r.dev.(type) {
	case Monitor:
		err = dev.Monitor(cctx)
	case Lister:
		_, err = dev.List(cctx)
	default:
		_, err = r.dev.Status(cctx, r.o.Plug())
		if errors.Is(err, ErrNoSuchPlug) {
			// The device answered; an unknown target is not a device failure.
			err = nil
		}
	}
	if err != nil {
		return r.fail("Failed: the fencing device is not available: " + describe(err, "shell_timeout", r.t.shell))
	}
	return ExitSuccess
}

// listName is what Pacemaker's list parser accepts as a target name.
var listName = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

func (r *run) list(ctx context.Context, withStatus bool) int {
	lister, ok := r.dev.(Lister)
	if !ok {
		return r.fail("Failed: this device cannot list its targets")
	}
	cctx, cancel := withTimeout(ctx, r.t.shell)
	defer cancel()
	outlets, err := lister.List(cctx)
	if err != nil {
		return r.fail("Failed: Unable to list the targets: " + describe(err, "shell_timeout", r.t.shell))
	}
	for _, ol := range outlets {
		// Pacemaker ignores list lines that contain "invalid" or "variable"; a name
		// outside the accepted characters would be misread. Say so instead of printing it.
		if !listable(ol.Name) {
			r.log.Warn("target name cannot be listed to Pacemaker", "name", fmt.Sprintf("%q", ol.Name))
			continue
		}
		alias := ol.Alias
		if !listable(alias) {
			alias = ""
		}
		sep := r.o.String("separator")
		if sep == "" {
			sep = ","
		}
		if withStatus {
			fmt.Fprintf(r.out, "%s%s%s%s%s\n", ol.Name, sep, alias, sep, ol.State)
		} else {
			fmt.Fprintf(r.out, "%s%s%s\n", ol.Name, sep, alias)
		}
	}
	return ExitSuccess
}

func listable(s string) bool {
	low := strings.ToLower(s)
	return listName.MatchString(s) && !strings.Contains(low, "invalid") && !strings.Contains(low, "variable")
}

func stateOf(on bool) State {
	if on {
		return On
	}
	return Off
}
