// Package fence is the fence-agent framework: an agent declares its parameters and
// implements a small Device interface; this package does everything else that
// Pacemaker, pcs and operators expect of a fence agent (stdin and command-line parsing,
// defaults, validation, password scripts, the action dispatch with its verification
// loops, output strings and exit codes, metadata, --help and the man page).
package fence

import (
	"fmt"
	"strings"
)

// Type is the type of a parameter's value, as advertised in the metadata.
type Type int

// Parameter types. Second is an integer number of seconds.
const (
	String Type = iota
	Integer
	Second
	Boolean
	Select
)

func (t Type) String() string {
	switch t {
	case Integer:
		return "integer"
	case Second:
		return "second"
	case Boolean:
		return "boolean"
	case Select:
		return "select"
	default:
		return "string"
	}
}

// Param declares one agent parameter. Its Name is the stdin key and the metadata name;
// the long command-line option is Name with '_' replaced by '-'.
type Param struct {
	Name string
	// Deprecated is the historical name this parameter replaces ("ipaddr" for "ip"). It is
	// accepted on stdin and listed in the metadata as deprecated, with Name obsoleting it.
	Deprecated string
	// Aliases are further stdin names accepted silently and never advertised.
	Aliases []string
	// Short is the single-letter command-line flag, or 0.
	Short rune
	// ArgName names the value in --help and getopt ("--ip=[ip]"); defaults to the type.
	// A Boolean with an ArgName takes an explicit value on the command line
	// (--disable-timeout=false); one without is a switch (--lanplus).
	ArgName string
	Type    Type
	Choices []string // for Select
	Default string
	// Required parameters must be set for every action except metadata, help, list and
	// monitor style actions (see Agent.actionNeedsTarget).
	Required bool
	// Secret values are never logged, printed or given a default in the metadata.
	Secret bool
	Help   string
	// Hidden parameters are parsed but not advertised (Pacemaker's nodename).
	Hidden bool
	// Ignored parameters are accepted and advertised only so that a device definition
	// written for the agent we replace keeps working; setting one changes nothing.
	Ignored bool
}

// LongOpt is the command-line long option name, without the dashes.
func (p *Param) LongOpt() string { return strings.ReplaceAll(p.Name, "_", "-") }

// getopt renders the option as fence-agents show it: "-a, --ip=[ip]".
func (p *Param) getopt() string {
	var b strings.Builder
	if p.Short != 0 {
		fmt.Fprintf(&b, "-%c, ", p.Short)
	}
	b.WriteString("--")
	b.WriteString(p.LongOpt())
	if p.Type != Boolean || p.ArgName != "" {
		arg := p.ArgName
		if arg == "" {
			arg = p.Type.String()
			if p.Type == Select {
				arg = "value"
			}
		}
		fmt.Fprintf(&b, "=[%s]", arg)
	}
	return b.String()
}

// Names of the parameters the framework owns or offers to every agent. Agents use these
// constants with Options accessors so that one grep finds every use.
const (
	ParamAction             = "action"
	ParamPlug               = "plug"
	ParamIP                 = "ip"
	ParamIPPort             = "ipport"
	ParamUsername           = "username"
	ParamPassword           = "password"
	ParamPasswordScript     = "password_script"
	ParamPortAsIP           = "port_as_ip"
	ParamMissingAsOff       = "missing_as_off"
	ParamMethod             = "method"
	ParamNodename           = "nodename"
	ParamQuiet              = "quiet"
	ParamVerbose            = "verbose"
	ParamVerboseLevel       = "verbose_level"
	ParamDebugFile          = "debug_file"
	ParamVersion            = "version"
	ParamHelp               = "help"
	ParamDelay              = "delay"
	ParamDisableTimeout     = "disable_timeout"
	ParamLoginTimeout       = "login_timeout"
	ParamPowerTimeout       = "power_timeout"
	ParamPowerWait          = "power_wait"
	ParamShellTimeout       = "shell_timeout"
	ParamStonithStatusSleep = "stonith_status_sleep"
	ParamRetryOn            = "retry_on"
)

// Common parameters an agent may include in its Params. They carry the names, flags and
// help that operators know from fence-agents.

// IP is the address of the fencing device (-a, --ip; old name ipaddr).
func IP(required bool) Param {
	return Param{Name: ParamIP, Deprecated: "ipaddr", Short: 'a', ArgName: "ip", Type: String,
		Required: required, Help: "IP address or hostname of fencing device"}
}

// IPPort is the TCP/UDP port of the fencing device (-u, --ipport).
func IPPort(def int) Param {
	return Param{Name: ParamIPPort, Short: 'u', ArgName: "port", Type: Integer,
		Default: fmt.Sprint(def), Help: "TCP/UDP port to use for connection with device"}
}

// Username is the login name (-l, --username; old name login).
func Username(required bool) Param {
	return Param{Name: ParamUsername, Deprecated: "login", Short: 'l', ArgName: "name", Type: String,
		Required: required, Help: "Login name"}
}

// Password is the login password (-p, --password; old name passwd). Prefer stdin or
// password_script: a password on the command line is visible to every local user.
func Password() Param {
	return Param{Name: ParamPassword, Deprecated: "passwd", Short: 'p', ArgName: "password", Type: String,
		Secret: true, Help: "Login password or passphrase"}
}

// PasswordScript names a command whose standard output is the password (-S; old name
// passwd_script).
func PasswordScript() Param {
	return Param{Name: ParamPasswordScript, Deprecated: "passwd_script", Short: 'S', ArgName: "script",
		Type: String, Help: "Script to run to retrieve password"}
}

// Plug identifies the target on the device (-n, --plug; old name port).
func Plug(required bool, help string) Param {
	if help == "" {
		help = "Physical plug number on device, UUID or identification of machine"
	}
	return Param{Name: ParamPlug, Deprecated: "port", Short: 'n', ArgName: "id", Type: String,
		Required: required, Help: help}
}

// PortAsIP makes the plug an alias of the device address, so one device definition can
// fence several hosts by their BMC addresses.
func PortAsIP() Param {
	return Param{Name: ParamPortAsIP, Type: Boolean, Default: "0",
		Help: `Make "port/plug" to be an alias to IP address`}
}

// MissingAsOff reports a target the device does not know as powered off.
func MissingAsOff() Param {
	return Param{Name: ParamMissingAsOff, Type: Boolean, Default: "0",
		Help: "Missing port returns OFF instead of failure"}
}

// Method selects how reboot is done: onoff (verified off, then on) or cycle.
func Method() Param {
	return Param{Name: ParamMethod, Short: 'm', ArgName: "method", Type: Select,
		Choices: []string{"onoff", "cycle"}, Default: "onoff",
		Help: "Method to fence: onoff, or cycle (which novaha performs as a verified off, then on)"}
}

// Separator is the field separator of list output (-C, --separator), default ",".
// Agents that list targets get it automatically.
func Separator() Param {
	return Param{Name: "separator", Short: 'C', ArgName: "char", Type: String, Default: ",",
		Help: "Separator for CSV created by 'list' operation"}
}

// frameworkParams are appended to every agent's own parameters, in this order.
func frameworkParams() []Param {
	return []Param{
		{Name: ParamAction, Aliases: []string{"option"}, Short: 'o', ArgName: "action", Type: String,
			Help: "Fencing action"},
		{Name: ParamNodename, Hidden: true, Type: String, Help: "Name of the node being fenced (set by Pacemaker)"},
		{Name: ParamQuiet, Short: 'q', Type: Boolean,
			Help: "Disable logging to stderr. Does not affect --verbose or --debug-file or logging to syslog."},
		{Name: ParamVerbose, Short: 'v', Type: Boolean,
			Help: "Verbose mode. Multiple -v flags can be stacked on the command line (e.g., -vvv) to increase verbosity."},
		{Name: ParamVerboseLevel, ArgName: "level", Type: Integer,
			Help: "Level of debugging detail in output. Defaults to the number of --verbose flags specified on the command line, or to 1 if verbose=1 in a stonith device configuration (i.e., on stdin)."},
		{Name: ParamDebugFile, Deprecated: "debug", Short: 'D', ArgName: "debugfile", Type: String,
			Help: "Debugging to output file"},
		{Name: ParamVersion, Short: 'V', Type: Boolean, Help: "Display version information and exit"},
		{Name: ParamHelp, Short: 'h', Type: Boolean, Help: "Display this help and exit"},
		{Name: ParamDelay, ArgName: "seconds", Type: Second, Default: "0",
			Help: "Wait X seconds before fencing is started"},
		{Name: ParamDisableTimeout, ArgName: "true/false", Type: Boolean,
			Help: "Disable timeout (true/false) (default: true when run from Pacemaker 2.0+)"},
		{Name: ParamLoginTimeout, ArgName: "seconds", Type: Second, Default: "5",
			Help: "Wait X seconds for cmd prompt after login"},
		{Name: ParamPowerTimeout, ArgName: "seconds", Type: Second, Default: "20",
			Help: "Test X seconds for status change after ON/OFF"},
		{Name: ParamPowerWait, ArgName: "seconds", Type: Second, Default: "0",
			Help: "Wait X seconds after issuing ON/OFF"},
		{Name: ParamShellTimeout, ArgName: "seconds", Type: Second, Default: "3",
			Help: "Wait X seconds for cmd prompt after issuing command"},
		{Name: ParamStonithStatusSleep, ArgName: "seconds", Type: Second, Default: "1",
			Help: "Sleep X seconds between status calls during a STONITH action"},
		{Name: ParamRetryOn, ArgName: "attempts", Type: Integer, Default: "1",
			Help: "Count of attempts to retry power on"},
	}
}
