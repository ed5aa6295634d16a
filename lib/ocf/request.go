package ocf

import (
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"time"
)

// DefaultStateDir is where runtime state lives when HA_RSCTMP is not set; like
// ocf-shellfuncs' default, it is emptied at boot.
const DefaultStateDir = "/run/resource-agents"

// Request is what a handler is given: the action, its parameters, parsed and typed,
// and what Pacemaker says about the operation.
//
// The typed accessors panic when asked for a parameter the agent does not declare or
// as the wrong type: that is a bug in the agent, which Run turns into ErrGeneric and
// the agent's tests find.
type Request struct {
	agent     *Agent
	action    ActionName
	env       map[string]string
	values    map[string]value
	configErr error
	instance  string
	interval  time.Duration
	probe     bool
	timeout   time.Duration
	depth     int
	stateDir  string
	log       *slog.Logger
}

// value is one parameter's effective value.
type value struct {
	raw    string // as given, or the default
	parsed any    // string, int, bool or time.Duration
	set    bool   // given explicitly (under its name or an alias)
}

// Action is the action being run.
func (r *Request) Action() ActionName { return r.action }

// Instance is the resource instance, OCF_RESOURCE_INSTANCE ("nova-compute:0" for a
// clone instance), or "default" when it is not set.
func (r *Request) Instance() string { return r.instance }

// IsProbe reports whether this is a probe: a monitor with interval 0 (or no interval
// at all), which Pacemaker runs on every node to find where the resource is active.
func (r *Request) IsProbe() bool { return r.probe }

// Interval is the operation's interval, from OCF_RESKEY_CRM_meta_interval.
func (r *Request) Interval() time.Duration { return r.interval }

// Timeout is the operation's whole timeout, from OCF_RESKEY_CRM_meta_timeout, else the
// action's declared timeout. The handler's context expires a safety margin earlier.
func (r *Request) Timeout() time.Duration { return r.timeout }

// Depth is the monitor depth, OCF_CHECK_LEVEL (0 when not set).
func (r *Request) Depth() int { return r.depth }

// StateDir is the directory for runtime state, HA_RSCTMP or DefaultStateDir. It may
// not exist yet: create it with os.MkdirAll(dir, 0o755) before writing.
func (r *Request) StateDir() string { return r.stateDir }

// Meta returns the resource or operation meta attribute name, as Pacemaker passes it
// in OCF_RESKEY_CRM_meta_<name> ("on_node", "notify_type", "clone_max").
func (r *Request) Meta(name string) (string, bool) {
	v, ok := r.env["OCF_RESKEY_CRM_meta_"+name]
	return v, ok
}

// LookupEnv returns an environment variable of the agent's process.
func (r *Request) LookupEnv(name string) (string, bool) {
	v, ok := r.env[name]
	return v, ok
}

// Environ is the agent's whole environment as it was given, sorted ("NAME=value"): what
// an agent hands to a process of its own that must act as a later run of itself would.
func (r *Request) Environ() []string {
	out := make([]string, 0, len(r.env))
	for k, v := range r.env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// Log is the logger for this action, tagged with the agent, resource instance and
// action.
func (r *Request) Log() *slog.Logger { return r.log }

// ConfigErr is what is wrong with the parameters, or nil. Only the lenient actions
// (stop, demote, notify) run with a non-nil ConfigErr; the bad parameters then read as
// their default, or as the zero value.
func (r *Request) ConfigErr() error { return r.configErr }

// IsSet reports whether parameter name was given (under its name or an alias) rather
// than defaulted.
func (r *Request) IsSet(name string) bool { return r.lookup(name).set }

// String is the value of parameter name as text (any type; the default if unset).
func (r *Request) String(name string) string { return r.lookup(name).raw }

// Int is the value of the Integer parameter name.
func (r *Request) Int(name string) int { return r.typed(name, Integer).(int) }

// Bool is the value of the Boolean parameter name.
func (r *Request) Bool(name string) bool { return r.typed(name, Boolean).(bool) }

// Duration is the value of the Duration parameter name.
func (r *Request) Duration(name string) time.Duration {
	return r.typed(name, Duration).(time.Duration)
}

func (r *Request) lookup(name string) value {
	v, ok := r.values[name]
	if !ok {
		panic(fmt.Sprintf("ocf: agent %s declares no parameter %q", r.agent.Name, name))
	}
	return v
}

func (r *Request) typed(name string, t Type) any {
	v := r.lookup(name)
	if p := r.agent.param(name); p.Type != t {
		panic(fmt.Sprintf("ocf: parameter %s is %s, not %s", name, p.Type, t))
	}
	return v.parsed
}

// environ turns an os.Environ-style list into a map; the first occurrence of a name
// wins, as with os.Getenv.
func environ(list []string) map[string]string {
	env := make(map[string]string, len(list))
	for _, kv := range list {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			continue
		}
		if _, dup := env[k]; !dup {
			env[k] = v
		}
	}
	return env
}

// newRequest reads everything the action needs from env. Problems with the
// parameters are collected in ConfigErr, never fatal here: what they mean depends on
// the action.
func (a *Agent) newRequest(action ActionName, env map[string]string, log *slog.Logger) *Request {
	r := &Request{
		agent:    a,
		action:   action,
		env:      env,
		values:   make(map[string]value, len(a.Params)),
		instance: instanceOf(env),
		stateDir: DefaultStateDir,
		log:      log,
	}
	if d := env["HA_RSCTMP"]; d != "" {
		r.stateDir = d
	}
	var errs []error

	// Pacemaker's own values are not the operator's: a malformed one is a warning.
	r.timeout = a.timeout(action, defaultTimeout(action))
	if s, ok := env["OCF_RESKEY_CRM_meta_timeout"]; ok {
		if ms, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64); err == nil && ms > 0 {
			r.timeout = time.Duration(ms) * time.Millisecond
		} else {
			log.Warn("ignoring malformed OCF_RESKEY_CRM_meta_timeout", "value", s, "timeout", r.timeout)
		}
	}
	intervalOK := true
	if s, ok := env["OCF_RESKEY_CRM_meta_interval"]; ok {
		ms, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil || ms < 0 {
			log.Warn("ignoring malformed OCF_RESKEY_CRM_meta_interval; not a probe", "value", s)
			intervalOK = false
		} else {
			r.interval = time.Duration(ms) * time.Millisecond
		}
	}
	r.probe = action == Monitor && intervalOK && r.interval == 0

	level, ok := env["OCF_CHECK_LEVEL"]
	if !ok {
		level, ok = env["OCF_RESKEY_OCF_CHECK_LEVEL"]
	}
	if ok && strings.TrimSpace(level) != "" {
		n, err := strconv.Atoi(strings.TrimSpace(level))
		if err != nil || n < 0 {
			errs = append(errs, fmt.Errorf("OCF_CHECK_LEVEL=%q: not a depth", level))
		} else {
			r.depth = n
		}
	}

	for _, p := range a.Params {
		v, err := readParam(p, env, log)
		if err != nil {
			errs = append(errs, err)
		}
		r.values[p.Name] = v
	}
	if len(errs) > 0 {
		msgs := make([]string, len(errs))
		for i, err := range errs {
			msgs[i] = err.Error()
		}
		r.configErr = errors.New(strings.Join(msgs, "; "))
	}

	var unknown []string
	for k := range env {
		name, ok := strings.CutPrefix(k, "OCF_RESKEY_")
		if ok && !reservedParam(name) && !a.declares(name) {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		log.Debug("ignoring parameters the agent does not declare", "names", strings.Join(unknown, ","))
	}
	return r
}

// readParam reads parameter p from env: under its name, else its first alias that is
// set, else its default. On a malformed value it returns the default with the error.
func readParam(p Param, env map[string]string, log *slog.Logger) (value, error) {
	raw, from := env["OCF_RESKEY_"+p.Name], p.Name
	for _, alias := range p.Aliases {
		if raw != "" {
			break
		}
		raw, from = env["OCF_RESKEY_"+alias], alias
	}
	if raw == "" {
		if p.Required {
			return defaultValue(p), fmt.Errorf("required parameter %s is not set", p.Name)
		}
		return defaultValue(p), nil
	}
	if from != p.Name {
		log.Debug("parameter given under its old name", "name", from, "use", p.Name)
	}
	parsed, err := parseValue(p.Type, raw)
	switch {
	case err != nil && p.Secret:
		return defaultValue(p), fmt.Errorf("parameter %s: %v", from, err)
	case err != nil:
		return defaultValue(p), fmt.Errorf("parameter %s=%q: %v", from, raw, err)
	}
	return value{raw: raw, parsed: parsed, set: true}, nil
}

// defaultValue is p's value when it is not set: its default, or the zero value of its
// type.
func defaultValue(p Param) value {
	if p.Default == "" {
		return value{parsed: zero(p.Type)}
	}
	parsed, _ := parseValue(p.Type, p.Default) // Check proved that it parses
	return value{raw: p.Default, parsed: parsed}
}

func zero(t Type) any {
	switch t {
	case Integer:
		return 0
	case Boolean:
		return false
	case Duration:
		return time.Duration(0)
	}
	return ""
}

// declares reports whether name is one of the agent's parameters or aliases.
func (a *Agent) declares(name string) bool {
	for _, p := range a.Params {
		if p.Name == name {
			return true
		}
		for _, alias := range p.Aliases {
			if alias == name {
				return true
			}
		}
	}
	return false
}

func instanceOf(env map[string]string) string {
	if s := env["OCF_RESOURCE_INSTANCE"]; s != "" {
		return s
	}
	return "default"
}

// defaultTimeout is an action's timeout when the agent declares none: Pacemaker's
// default operation timeout, and the framework's own for validate-all.
func defaultTimeout(action ActionName) time.Duration {
	if action == ValidateAll {
		return DefaultValidateTimeout
	}
	return 20 * time.Second
}

// safetyMargin is how long before the operation's timeout the handler's context
// expires: a tenth of it, at least 1s and at most 5s, never more than half of it.
func safetyMargin(timeout time.Duration) time.Duration {
	m := min(max(timeout/10, time.Second), 5*time.Second)
	return min(m, timeout/2)
}
