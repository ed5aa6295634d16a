package fence

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// maxStdinLine bounds one stdin line; Pacemaker's lines are short, and a runaway writer
// must not make the agent allocate without limit.
const maxStdinLine = 64 * 1024

// Options holds the parsed, typed parameters of one agent run.
type Options struct {
	params []*Param
	lookup map[string]*Param // every accepted name, '-' folded to '_'
	raw    map[string]string // canonical name -> value as given (or default)
	given  map[string]bool   // canonical name -> set by the caller, not a default

	ints  map[string]int64
	bools map[string]bool

	verboseCount int
	warnings     []string // parse warnings, logged once logging is set up
	password     string   // resolved from password or password_script
	log          *slog.Logger
}

func newOptions(params []*Param) *Options {
	o := &Options{
		params: params,
		lookup: make(map[string]*Param, 2*len(params)),
		raw:    make(map[string]string, len(params)),
		given:  make(map[string]bool, len(params)),
		ints:   make(map[string]int64),
		bools:  make(map[string]bool),
	}
	for _, p := range params {
		o.lookup[p.Name] = p
		if p.Deprecated != "" {
			o.lookup[foldName(p.Deprecated)] = p
		}
		for _, a := range p.Aliases {
			o.lookup[foldName(a)] = p
		}
	}
	return o
}

// foldName makes "auth-url" and "auth_url" the same key.
func foldName(s string) string { return strings.ReplaceAll(s, "-", "_") }

func (o *Options) param(name string) *Param { return o.lookup[foldName(name)] }

func (o *Options) set(p *Param, v string) {
	o.raw[p.Name] = v
	o.given[p.Name] = true
}

func (o *Options) warnf(format string, args ...any) {
	o.warnings = append(o.warnings, fmt.Sprintf(format, args...))
}

// parseStdin reads Pacemaker's key=value lines. It never fails on content: unknown names
// and malformed booleans are warnings, as operators expect from fence-agents; it fails
// only when stdin cannot be read.
func (o *Options) parseStdin(r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), maxStdinLine)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, _ := strings.Cut(line, "=")
		name = strings.TrimSpace(name)
		value = strings.TrimSpace(value)
		if len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"' {
			value = value[1 : len(value)-1]
		}
		p := o.param(name)
		if p == nil {
			// Only the name: the value could be a secret under an unexpected key.
			o.warnf("Parse error: Ignoring unknown option '%s'", name)
			continue
		}
		if p.Type == Boolean {
			b, ok := parseBool(value)
			if !ok {
				o.warnf("Parse error: Ignoring option '%s' because it does not have a valid boolean value", name)
				continue
			}
			value = boolString(b)
			if p.Name == ParamVerbose {
				// The last occurrence wins, for verbose too.
				o.verboseCount = map[bool]int{true: 1, false: 0}[b]
			}
		}
		o.set(p, value)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("reading standard input: a line is longer than %d bytes", maxStdinLine)
		}
		return fmt.Errorf("reading standard input: %w", err)
	}
	return nil
}

// flagValue adapts one parameter to pflag.
type flagValue struct {
	o *Options
	p *Param
}

func (f flagValue) String() string { return "" }
func (f flagValue) Type() string   { return f.p.Type.String() }
func (f flagValue) Set(s string) error {
	if f.p.Type == Boolean {
		b, ok := parseBool(s)
		if !ok {
			return fmt.Errorf("%q is not a boolean (use 1/0, yes/no, on/off, true/false)", s)
		}
		s = boolString(b)
		if f.p.Name == ParamVerbose && b {
			f.o.verboseCount++
		}
	}
	f.o.set(f.p, s)
	return nil
}

// parseFlags reads GNU-style options. Errors are the operator's and are reported as
// "Parse error: ...".
func (o *Options) parseFlags(name string, args []string) error {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.SortFlags = false
	for _, p := range o.params {
		if p.Hidden {
			continue
		}
		var short string
		if p.Short != 0 {
			short = string(p.Short)
		}
		fl := fs.VarPF(flagValue{o, p}, p.LongOpt(), short, p.Help)
		if p.Type == Boolean && p.ArgName == "" {
			fl.NoOptDefVal = "true"
		}
	}
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("Parse error: %v", err)
	}
	if rest := fs.Args(); len(rest) > 0 {
		o.warnf("Unused arguments on command line: %s", strings.Join(rest, " "))
	}
	return nil
}

// applyDefaults fills in every parameter the caller did not give.
func (o *Options) applyDefaults(overrides map[string]string) {
	for _, p := range o.params {
		if o.given[p.Name] {
			continue
		}
		if d, ok := overrides[p.Name]; ok {
			o.raw[p.Name] = d
		} else if p.Default != "" {
			o.raw[p.Name] = p.Default
		}
	}
}

// typecheck converts every value to its type; the first bad value is the error, worded
// as fence-agents word it.
func (o *Options) typecheck() error {
	for _, p := range o.params {
		v, ok := o.raw[p.Name]
		if !ok {
			continue
		}
		switch p.Type {
		case Integer, Second:
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil || (p.Type == Second && n < 0) {
				if p.Type == Second {
					return fmt.Errorf("Failed: The value you have entered for --%s is not a valid time in seconds", p.LongOpt())
				}
				return fmt.Errorf("Failed: The value you have entered for --%s is not a valid integer", p.LongOpt())
			}
			if p.Type == Second && n > int64(maxSeconds) {
				return fmt.Errorf("Failed: The value you have entered for --%s is too large", p.LongOpt())
			}
			o.ints[p.Name] = n
		case Boolean:
			b, ok := parseBool(v)
			if !ok {
				return fmt.Errorf("Failed: The value you have entered for --%s is not a valid boolean", p.LongOpt())
			}
			o.bools[p.Name] = b
		case Select:
			found := false
			for _, c := range p.Choices {
				if strings.EqualFold(c, v) {
					o.raw[p.Name] = c
					found = true
				}
			}
			if !found {
				return fmt.Errorf("Failed: You have to enter a valid choice for --%s from the valid values: %s",
					p.LongOpt(), strings.Join(p.Choices, ", "))
			}
		}
	}
	return nil
}

// maxSeconds keeps durations far from overflowing time.Duration.
const maxSeconds = 100 * 365 * 24 * 3600

func parseBool(s string) (value, ok bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "yes", "on", "true", "y", "t":
		return true, true
	case "0", "no", "off", "false", "n", "f":
		return false, true
	}
	return false, false
}

func boolString(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// String returns a string parameter's value, or its default, or "".
func (o *Options) String(name string) string { return o.raw[foldName(name)] }

// Int returns an integer or second parameter's value.
func (o *Options) Int(name string) int { return int(o.ints[foldName(name)]) }

// Bool returns a boolean parameter's value.
func (o *Options) Bool(name string) bool { return o.bools[foldName(name)] }

// Seconds returns a second parameter's value as a duration.
func (o *Options) Seconds(name string) time.Duration {
	return time.Duration(o.ints[foldName(name)]) * time.Second
}

// IsSet reports whether the caller gave the parameter (defaults do not count).
func (o *Options) IsSet(name string) bool {
	p := o.param(name)
	return p != nil && o.given[p.Name]
}

// Action is the requested action, normalised.
func (o *Options) Action() string { return o.raw[ParamAction] }

// Plug is the target identifier ("" for single-target devices).
func (o *Options) Plug() string { return o.raw[ParamPlug] }

// Password is the password given directly or produced by password_script.
func (o *Options) Password() string { return o.password }

// VerboseLevel is verbose_level if given, else the number of -v flags (or 1 for
// verbose=1 on stdin).
// It reads the raw value because logging is set up before the values are type-checked.
func (o *Options) VerboseLevel() int {
	if o.given[ParamVerboseLevel] {
		if n, err := strconv.Atoi(strings.TrimSpace(o.raw[ParamVerboseLevel])); err == nil && n >= 0 {
			return n
		}
	}
	return o.verboseCount
}

// Log is the agent's logger, for devices that log their own protocol detail at debug
// level (shown with -v). It is never nil.
func (o *Options) Log() *slog.Logger {
	if o.log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.log
}

// LogValue renders the options for debug logs with every secret masked.
func (o *Options) LogValue() slog.Value {
	names := make([]string, 0, len(o.given))
	for n := range o.given {
		names = append(names, n)
	}
	sort.Strings(names)
	attrs := make([]slog.Attr, 0, len(names))
	for _, n := range names {
		v := o.raw[n]
		if p := o.lookup[n]; p != nil && p.Secret {
			v = "[hidden]"
		}
		attrs = append(attrs, slog.String(n, v))
	}
	return slog.GroupValue(attrs...)
}
