package fence

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Agent declares a fence agent. Its main package fills one of these and calls Main.
type Agent struct {
	Name      string // fence_xxx, as installed in /usr/sbin
	ShortDesc string
	LongDesc  string
	VendorURL string
	Version   string

	// Params are the agent's own parameters, in the order --help and the metadata show
	// them; the framework appends its standard ones (action, timing, logging).
	Params []Param
	// Defaults overrides the framework's defaults for its standard parameters
	// (for example power_wait for a device that needs a pause after switching).
	Defaults map[string]string

	// Fabric agents (fabric fencing, such as cutting a host off in Nova) have no reboot
	// action, default to off, and advertise "on" as automatic so Pacemaker unfences.
	Fabric bool
	// Lists says the Device implements Lister, so list and list-status are offered.
	Lists bool

	// Validate checks the agent's own parameter combinations, offline.
	Validate func(o *Options) error
	// Open connects to the device. Its context carries login_timeout.
	Open func(ctx context.Context, o *Options) (Device, error)
	// Backend, instead of Open, names a separate program that carries out the device
	// actions (on, off, reboot, status, list, list-status, monitor), for agents whose
	// device library is costly to load (libvirt's C library, loaded as a program starts).
	// Pacemaker runs the agent for its metadata at every start, pcs for validate-all:
	// those, the man page, --help and option errors are answered from the parameter
	// table without that library. For a device action the agent replaces itself with the
	// backend: the same PID (Pacemaker's timeout kills it), the same arguments, the same
	// stdin (which carries the password). The backend is the same Agent (the same Params)
	// with Open set. Backend is a file name, looked up in $NOVAHA_LIBEXECDIR if set, else
	// beside the agent's executable (libexec/ in a build, ../libexec/novaha installed),
	// else in LibexecDir.
	Backend string

	// Clock is for tests; nil means real time.
	Clock Clock
}

// Exit codes of a fence agent.
const (
	ExitSuccess = 0
	ExitFailure = 1
	ExitOff     = 2 // status: the target is off
)

// actions in the order the metadata lists them.
func (a *Agent) actions() []string {
	acts := []string{"on", "off"}
	if !a.Fabric {
		acts = append(acts, "reboot")
	}
	acts = append(acts, "status")
	if a.Lists {
		acts = append(acts, "list", "list-status")
	}
	return append(acts, "monitor", "metadata", "manpage", "validate-all")
}

func (a *Agent) defaultAction() string {
	if a.Fabric {
		return "off"
	}
	return "reboot"
}

func (a *Agent) hasParam(name string) bool {
	for i := range a.Params {
		if a.Params[i].Name == name {
			return true
		}
	}
	return false
}

// allParams is the agent's parameters followed by the framework's, with the action's
// default and help filled in for this agent.
func (a *Agent) allParams() []*Param {
	fw := frameworkParams()
	out := make([]*Param, 0, len(a.Params)+len(fw))
	for i := range a.Params {
		p := a.Params[i]
		out = append(out, &p)
	}
	if a.Lists && !a.hasParam("separator") {
		sep := Separator()
		out = append(out, &sep)
	}
	for i := range fw {
		p := fw[i]
		if p.Name == ParamAction {
			p.Default = a.defaultAction()
			p.Help = "Fencing action (" + strings.Join(a.actions(), ", ") + ")"
		}
		if d, ok := a.Defaults[p.Name]; ok {
			p.Default = d
		}
		out = append(out, &p)
	}
	return out
}

// Check reports declaration mistakes: duplicate names or flags, defaults of the wrong
// type, secrets with defaults. Every agent's tests call it.
func (a *Agent) Check() error {
	var errs []error
	if !strings.HasPrefix(a.Name, "fence_") {
		errs = append(errs, fmt.Errorf("agent name %q must start with fence_", a.Name))
	}
	switch {
	case a.Open == nil && a.Backend == "":
		errs = append(errs, errors.New("agent has no Open function and no Backend"))
	case a.Open != nil && a.Backend != "":
		errs = append(errs, errors.New("agent has both an Open function and a Backend: Open would never be used"))
	case a.Backend != "" && (a.Backend != filepath.Base(a.Backend) || a.Backend == "." || a.Backend == ".."):
		errs = append(errs, fmt.Errorf("backend %q must be a file name, without a directory", a.Backend))
	}
	names := map[string]bool{}
	shorts := map[rune]string{}
	params := a.allParams()
	for _, p := range params {
		for i, n := range append([]string{p.Name, p.Deprecated}, p.Aliases...) {
			// An old name that differs only by '-' (fence_compute's "project-domain")
			// is listed in the metadata but is the same stdin key.
			if n == "" || (i == 1 && foldName(n) == p.Name) {
				continue
			}
			if names[foldName(n)] {
				errs = append(errs, fmt.Errorf("parameter name %q declared twice", n))
			}
			names[foldName(n)] = true
		}
		if p.Short != 0 {
			if other, dup := shorts[p.Short]; dup {
				errs = append(errs, fmt.Errorf("short flag -%c used by %s and %s", p.Short, other, p.Name))
			}
			shorts[p.Short] = p.Name
		}
		if p.Secret && p.Default != "" {
			errs = append(errs, fmt.Errorf("secret parameter %s has a default", p.Name))
		}
		if p.Type == Select && len(p.Choices) == 0 {
			errs = append(errs, fmt.Errorf("select parameter %s has no choices", p.Name))
		}
		if p.Help == "" {
			errs = append(errs, fmt.Errorf("parameter %s has no help", p.Name))
		}
	}
	o := newOptions(params)
	o.applyDefaults(nil)
	if err := o.typecheck(); err != nil {
		errs = append(errs, fmt.Errorf("defaults: %w", err))
	}
	return errors.Join(errs...)
}

// validate checks what every action but the informational ones needs. needTarget is false
// for list-style actions, which need no plug.
func (a *Agent) validate(o *Options, needTarget bool) error {
	if err := o.typecheck(); err != nil {
		return err
	}
	portAsIP := o.Bool(ParamPortAsIP)
	if portAsIP && o.Plug() != "" {
		o.raw[ParamIP] = o.Plug()
	}
	for _, p := range o.params {
		if !p.Required || o.raw[p.Name] != "" {
			continue
		}
		switch p.Name {
		case ParamIP:
			// With port_as_ip the address comes as the plug of each request, which
			// validation (pcs, stonith_admin --validate) does not always give.
			if portAsIP && !needTarget {
				continue
			}
			return errors.New("Failed: You have to enter fence address")
		case ParamUsername:
			return errors.New("Failed: You have to set login name")
		case ParamPassword:
			if o.raw[ParamPasswordScript] == "" {
				return errors.New("Failed: You have to enter password or password script")
			}
		case ParamPlug:
			if needTarget && !portAsIP {
				return errors.New("Failed: You have to enter plug number or machine identification")
			}
		default:
			return fmt.Errorf("Failed: You have to set %s (--%s)", p.Name, p.LongOpt())
		}
	}
	if a.Validate != nil {
		if err := a.Validate(o); err != nil {
			return fmt.Errorf("Failed: %w", err)
		}
	}
	return nil
}

// passwordScriptTimeout bounds password_script when no other limit is known.
const passwordScriptTimeout = 30 * time.Second

// resolvePassword runs password_script when given. Its output is the secret: it is never
// logged, and its failure is reported without it.
func resolvePassword(ctx context.Context, o *Options) error {
	o.password = o.raw[ParamPassword]
	script := o.raw[ParamPasswordScript]
	if script == "" {
		return nil
	}
	sctx, cancel := context.WithTimeout(ctx, passwordScriptTimeout)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(sctx, "/bin/sh", "-c", script)
	cmd.Stdout = &out
	cmd.Stderr = io.Discard
	// The script may start children that hold stdout open: end its whole process
	// group, and stop waiting for the pipe shortly after.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		switch {
		case ctx.Err() != nil:
			return errors.New("Failed: password_script interrupted")
		case sctx.Err() != nil:
			return fmt.Errorf("Failed: password_script timed out after %s", passwordScriptTimeout)
		}
		return fmt.Errorf("Failed: password_script failed: %v", err)
	}
	o.password = strings.TrimRight(out.String(), "\r\n")
	return nil
}
