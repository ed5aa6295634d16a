// Package ocf is the OCF resource-agent framework. An agent's main package declares
// an Agent: its parameters and a handler per action. Run does everything else that
// Pacemaker, pcs, ocf-tester and operators expect of an OCF resource agent: action
// dispatch, parameter defaults and typed parsing, validation, probe and stop
// semantics, operation timeouts, exit codes and the exit-reason line, logging, the
// OCF 1.0 metadata and the ocf_novaha_<Name>(7) man page.
//
// A main package is:
//
//	func main() { os.Exit(agent().Main(os.Args, os.Environ(), os.Stdout, os.Stderr)) }
//
// # Actions and validation
//
// argv[1] is the action. meta-data (alias metadata) prints the metadata; usage (alias
// help) prints the usage; validate-all checks the parameters and runs Agent.Validate.
// A hidden action, manpage, prints the man page (the build runs it to generate
// docs/, with SOURCE_DATE_EPOCH for the date); it is not an OCF action and is not
// advertised in the metadata. The other actions run the agent's handlers, after the
// parameters have been read:
//
//   - start, monitor, promote, reload, migrate_to and migrate_from are strict: a
//     missing required parameter or a malformed value is ErrConfigured, then
//     Agent.Validate runs, and only a configuration that passes reaches the handler.
//   - A probe (monitor with OCF_RESKEY_CRM_meta_interval 0 or unset, as
//     ocf-shellfuncs' ocf_is_probe has it) runs on every node, including nodes where
//     nothing is configured. A configuration that fails there is reported as
//     NotRunning (the resource cannot be running here with that configuration), or as
//     NotInstalled where Validate says so; never as an error, because Pacemaker takes
//     a probe's ErrConfigured as a fatal, cluster-wide failure of the resource. The
//     monitor handler's own ErrConfigured is turned into NotRunning in a probe too.
//   - stop, demote and notify are lenient: Pacemaker fences the node when a stop
//     fails, so the framework never fails them on its own account. The handler runs
//     even when the parameters are wrong, with Request.ConfigErr set and the
//     defaults (or zero values) in place of the bad values, and Validate is not run.
//     A stop handler returns nil only when it knows the resource is stopped, and an
//     error when it cannot tell: then fencing is the right outcome.
//
// Known OCF actions the agent does not declare (promote on an agent that is not
// promotable, notify, reload, migrate_to...) exit Unimplemented; a missing or unknown
// action prints the usage on stderr and exits ErrArgs.
//
// # Results
//
// A handler returns nil for Success, a Code for a result without a reason (`return
// ocf.NotRunning`), an error from Errorf for a result with a reason, or any other
// error for ErrGeneric with the error's text as the reason. The reason is printed as
// exactly one line, `ocf-exit-reason:<reason>` (or OCF_EXIT_REASON_PREFIX's value),
// the last line the agent writes to stderr. A handler that panics fails with
// ErrGeneric and the panic as the reason.
//
// # Timeouts
//
// The handler's context expires a safety margin before the operation's timeout
// (OCF_RESKEY_CRM_meta_timeout, else the action's declared Timeout): a tenth of it,
// at least 1 s and at most 5 s, and never more than half of it. If the handler has
// not returned by then plus half the margin, the action fails with a reason saying it
// timed out, before Pacemaker kills the process without one.
//
// # Logging
//
// Request.Log writes to stderr, which Pacemaker keeps in its log, tagged with the
// resource instance and the action. When HA_LOGFACILITY (or HA_logfacility; pacemakerd
// exports both) names a syslog facility other than "none" and syslog answers, messages
// go to syslog, tagged "<Name>(<resource instance>)", and only warnings and errors
// also to stderr, so that Pacemaker does not log routine messages a second time. The
// exit reason goes to syslog too. Debug messages are shown when HA_debug is set and
// not 0. Routine monitors log nothing above debug.
package ocf

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Provider is the OCF provider of every novaha agent: agents are installed as
// /usr/lib/ocf/resource.d/novaha/<Name> and used as ocf:novaha:<Name>.
const Provider = "novaha"

// Agent declares an OCF resource agent. It is read-only once built: Run may be called
// any number of times, concurrently.
type Agent struct {
	// Name is the agent's type, "NovaCompute": its file name under
	// /usr/lib/ocf/resource.d/novaha/ and the metadata's resource-agent name.
	Name string
	// Version is the agent's version, advertised in the metadata and the man page.
	Version string
	// ShortDesc is a one-line description; LongDesc the full description, in
	// paragraphs separated by blank lines.
	ShortDesc, LongDesc string
	// Params are the agent's parameters, in the order they are documented.
	Params []Param
	// Validate checks the parsed parameters offline (no network, no cluster): it
	// runs for validate-all, and before the handler of start, monitor, promote,
	// reload, migrate_to and migrate_from. Return Errorf(NotInstalled, ...) for what
	// is missing on this node (a program, a file), Errorf(ErrPerm, ...) for
	// permissions; any other error means ErrConfigured. Nil means parameters only.
	Validate Handler
	// Actions are the agent's actions with their metadata. start, stop and monitor
	// are required; promote and demote go together. See Action.
	Actions []Action
}

// Handler runs one action. See the package documentation for what it returns.
type Handler func(ctx context.Context, r *Request) error

// ActionName is an OCF action.
type ActionName string

// The actions an agent may declare. ValidateAll and MetaData are run by the
// framework: declare them only to change their advertised timeout, with no Handler.
const (
	Start       ActionName = "start"
	Stop        ActionName = "stop"
	Monitor     ActionName = "monitor"
	Promote     ActionName = "promote"
	Demote      ActionName = "demote"
	Notify      ActionName = "notify"
	Reload      ActionName = "reload"
	MigrateTo   ActionName = "migrate_to"
	MigrateFrom ActionName = "migrate_from"
	ValidateAll ActionName = "validate-all"
	MetaData    ActionName = "meta-data"
)

// Default timeouts of the framework's own actions, as advertised in the metadata.
const (
	DefaultMetaDataTimeout = 5 * time.Second
	DefaultValidateTimeout = 20 * time.Second
)

// Action declares one action: its handler and what the metadata advertises for it
// (pcs copies these into the resource's operations when it creates the resource).
//
// Monitor may be declared several times, for different intervals, depths or roles;
// only the first monitor carries the Handler, which sees the depth in Request.Depth.
type Action struct {
	Name    ActionName
	Handler Handler
	// Timeout is the advertised (suggested minimum) timeout. Required.
	Timeout time.Duration
	// Interval, Depth and Role are for monitor: the recurring interval (0 for none),
	// the OCF_CHECK_LEVEL, and the role ("Master" or "Slave", OCF 1.0 names) this
	// monitor is for, or "".
	Interval time.Duration
	Depth    int
	Role     string
}

// Type is a parameter's type.
type Type int

// Parameter types. Boolean accepts 1/yes/true/on and 0/no/false/off in any case.
// Duration is an OCF time: a number of seconds, or a number with a unit (ms, s, m,
// h, Pacemaker's spellings msec, sec, min, hr, and Go's "1m30s"); it is advertised
// with content type "time".
const (
	String Type = iota
	Integer
	Boolean
	Duration
)

// String returns the content type the metadata advertises for t.
func (t Type) String() string {
	switch t {
	case String:
		return "string"
	case Integer:
		return "integer"
	case Boolean:
		return "boolean"
	case Duration:
		return "time"
	}
	return fmt.Sprintf("Type(%d)", int(t))
}

// Param declares one parameter, given to the agent as OCF_RESKEY_<Name>. An empty
// value is the same as no value (as `${OCF_RESKEY_x:=default}` has it in shell agents).
type Param struct {
	// Name is the parameter's name: letters, digits and underscores.
	Name string
	// Aliases are older names also accepted, for drop-in compatibility with the
	// agents novaha replaces. Each is advertised as its own parameter marked
	// deprecated (OCF 1.0 has no attribute for it); Name wins when both are set.
	Aliases []string
	Type    Type
	// Default is used when the parameter is not set, in the parameter's own syntax.
	// Required and Secret parameters have none.
	Default string
	// Required parameters must be set (see the package documentation for which
	// actions require them).
	Required bool
	// Unique parameters must differ between resources of this agent.
	Unique bool
	// Secret values are never logged, never quoted in errors and never given a
	// default in the metadata.
	Secret bool
	// ShortDesc is a one-line description; LongDesc (defaults to ShortDesc) the full
	// one.
	ShortDesc, LongDesc string
}

var (
	agentNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)
	paramNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// declarable reports whether an agent may declare name.
func declarable(name ActionName) bool {
	switch name {
	case Start, Stop, Monitor, Promote, Demote, Notify, Reload, MigrateTo, MigrateFrom, ValidateAll, MetaData:
		return true
	}
	return false
}

// Check reports what is wrong with the declaration, all problems at once. Run checks
// it before anything else; an agent's tests should call it.
func (a *Agent) Check() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if !agentNameRE.MatchString(a.Name) {
		bad("agent name %q: want letters, digits, '_', '.', '-'", a.Name)
	}
	if strings.TrimSpace(a.ShortDesc) == "" {
		bad("agent %s: no ShortDesc", a.Name)
	}
	if strings.TrimSpace(a.LongDesc) == "" {
		bad("agent %s: no LongDesc", a.Name)
	}

	seen := map[string]bool{}
	for _, p := range a.Params {
		for _, n := range append([]string{p.Name}, p.Aliases...) {
			switch {
			case !paramNameRE.MatchString(n):
				bad("parameter %q: want letters, digits and '_'", n)
			case reservedParam(n):
				bad("parameter %q: reserved by Pacemaker", n)
			case seen[n]:
				bad("parameter %q: declared twice", n)
			}
			seen[n] = true
		}
		if p.Type < String || p.Type > Duration {
			bad("parameter %s: unknown type %d", p.Name, int(p.Type))
			continue
		}
		if strings.TrimSpace(p.ShortDesc) == "" {
			bad("parameter %s: no ShortDesc", p.Name)
		}
		if p.Default != "" {
			if p.Secret {
				bad("parameter %s: a secret has no default", p.Name)
			}
			if p.Required {
				bad("parameter %s: a required parameter has no default", p.Name)
			}
			if _, err := parseValue(p.Type, p.Default); err != nil {
				bad("parameter %s: default %q: %v", p.Name, p.Default, err)
			}
		}
	}

	declared := map[ActionName]bool{}
	monitors := map[string]bool{}
	for _, act := range a.Actions {
		n := act.Name
		if !declarable(n) {
			bad("action %q: not an OCF 1.0 action an agent declares", n)
			continue
		}
		if act.Timeout <= 0 {
			bad("action %s: no timeout", n)
		}
		if n != Monitor && (act.Interval != 0 || act.Depth != 0 || act.Role != "") {
			bad("action %s: interval, depth and role are for monitor", n)
		}
		framework := n == ValidateAll || n == MetaData
		switch {
		case declared[n] && n != Monitor:
			bad("action %s: declared twice", n)
		case framework && act.Handler != nil:
			bad("action %s: run by the framework, declare it without a Handler", n)
		case !framework && !declared[n] && act.Handler == nil:
			bad("action %s: no Handler", n)
		case declared[n] && act.Handler != nil:
			bad("action monitor: only the first monitor has a Handler")
		}
		if n == Monitor {
			if act.Interval < 0 || act.Depth < 0 {
				bad("action monitor: negative interval or depth")
			}
			if act.Role != "" && act.Role != "Master" && act.Role != "Slave" {
				bad("action monitor: role %q: want Master or Slave", act.Role)
			}
			key := fmt.Sprint(act.Interval, "/", act.Role)
			if monitors[key] {
				bad("action monitor: interval %s declared twice for role %q", act.Interval, act.Role)
			}
			monitors[key] = true
		}
		declared[n] = true
	}
	for _, n := range []ActionName{Start, Stop, Monitor} {
		if !declared[n] {
			bad("action %s: required", n)
		}
	}
	if declared[Promote] != declared[Demote] {
		bad("actions promote and demote: declare both or neither")
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("ocf agent %s: %w", a.Name, err)
	}
	return nil
}

// reservedParam reports whether n is a name Pacemaker passes as OCF_RESKEY_<n> on its
// own account.
func reservedParam(n string) bool {
	return strings.HasPrefix(n, "CRM_meta_") || n == "crm_feature_set" || n == "OCF_CHECK_LEVEL"
}

// handler is the handler of action name, nil if the agent does not declare it.
func (a *Agent) handler(name ActionName) Handler {
	for _, act := range a.Actions {
		if act.Name == name {
			return act.Handler
		}
	}
	return nil
}

// timeout is the declared timeout of action name, or def.
func (a *Agent) timeout(name ActionName, def time.Duration) time.Duration {
	for _, act := range a.Actions {
		if act.Name == name && act.Timeout > 0 {
			return act.Timeout
		}
	}
	return def
}

// param is the declaration of parameter name, or nil.
func (a *Agent) param(name string) *Param {
	for i := range a.Params {
		if a.Params[i].Name == name {
			return &a.Params[i]
		}
	}
	return nil
}

// promotable reports whether the agent declares promote (and so demote).
func (a *Agent) promotable() bool { return a.handler(Promote) != nil }
