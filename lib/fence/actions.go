package fence

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Clock is the passage of time as the verification loops see it; tests replace it.
type Clock interface {
	Now() time.Time
	// Sleep waits d or until ctx ends, whichever is first.
	Sleep(ctx context.Context, d time.Duration) error
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }
func (realClock) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

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
		// Closing must not be skipped because the action's context ended.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.closeTimeout())
		defer cancel()
		if err := dev.Close(cctx); err != nil {
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
	if cy, ok := r.dev.(Cycler); ok && r.o.String(ParamMethod) == "cycle" {
		var last error
		for i := 0; i < 1+r.t.retryOn; i++ {
			cctx, cancel := withTimeout(ctx, r.t.shell)
			last = cy.Cycle(cctx, r.o.Plug())
			cancel()
			if last == nil {
				break
			}
			r.log.Warn("power cycle failed", "attempt", i+1, "error", describe(last, "shell_timeout", r.t.shell))
		}
		if last != nil {
			return r.fail("Failed: Unable to power cycle: " + describe(last, "shell_timeout", r.t.shell))
		}
		r.log.Info("power cycled (method=cycle, not verified)", "plug", r.o.Plug())
		fmt.Fprintln(r.out, "Success: Rebooted")
		return ExitSuccess
	}
	if s != Off {
		if err := r.setPower(ctx, false, 1); err != nil {
			return r.fail(err.Error())
		}
	}
	// The target is verified off: fencing succeeded. Powering on again is a courtesy;
	// its failure is logged, not returned, as with fence-agents.
	if r.t.retryOn > 0 {
		if err := r.setPower(ctx, true, r.t.retryOn); err != nil {
			r.log.Error("Timed out waiting to power ON", "error", err.Error())
		}
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
		cctx, cancel := withTimeout(ctx, r.t.shell)
		err := r.dev.SetPower(cctx, r.o.Plug(), on)
		cancel()
		if err != nil {
			last = fmt.Errorf("Failed: Unable to power %s: %s", want, describe(err, "shell_timeout", r.t.shell))
			r.log.Warn("power request failed", "state", want.String(), "attempt", i+1, "error", last.Error())
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

// waitFor polls status every stonith_status_sleep until want is seen or power_timeout
// passes (unbounded under disable_timeout, where Pacemaker's timeout is the limit).
// Errors while polling are tolerated: a BMC may not answer while the host goes down.
func (r *run) waitFor(ctx context.Context, want State) (bool, error) {
	deadline := r.clock.Now().Add(r.t.power)
	var last error
	for {
		s, err := r.status(ctx)
		if err == nil && s == want {
			return true, nil
		}
		if err != nil {
			last = err
			r.log.Debug("status while waiting", "error", err.Error())
		}
		if ctx.Err() != nil || (!r.t.unbounded && !r.clock.Now().Before(deadline)) {
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
		low := strings.ToLower(ol.Name + ol.Alias)
		if !listName.MatchString(ol.Name) || strings.Contains(low, "invalid") || strings.Contains(low, "variable") {
			r.log.Warn("target name cannot be listed to Pacemaker", "name", fmt.Sprintf("%q", ol.Name))
			continue
		}
		alias := ol.Alias
		if alias != "" && (!listName.MatchString(alias)) {
			alias = ""
		}
		if withStatus {
			fmt.Fprintf(r.out, "%s,%s,%s\n", ol.Name, alias, ol.State)
		} else {
			fmt.Fprintf(r.out, "%s,%s\n", ol.Name, alias)
		}
	}
	return ExitSuccess
}

func stateOf(on bool) State {
	if on {
		return On
	}
	return Off
}
