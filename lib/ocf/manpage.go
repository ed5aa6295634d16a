package ocf

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/novaha/novaha/lib/manpage"
)

// ManPage writes the agent's ocf_novaha_<Name>(7) man page, generated from the same
// declaration as the metadata and the usage. date is the page's date (see
// manpage.SourceDate); the hidden manpage action takes it from SOURCE_DATE_EPOCH.
func (a *Agent) ManPage(w io.Writer, date string) error {
	if err := a.Check(); err != nil {
		return err
	}
	var params []manpage.Item
	var synopsis []string
	for _, p := range a.Params {
		tag := p.Name
		if len(p.Aliases) > 0 {
			tag += " (old name: " + strings.Join(p.Aliases, ", ") + ")"
		}
		params = append(params, manpage.Item{Tag: tag, Text: p.description() + "\n\n" + p.facts()})
		arg := fmt.Sprintf("OCF_RESKEY_%s=%s", p.Name, p.Type)
		if !p.Required {
			arg = "[" + arg + "]"
		}
		synopsis = append(synopsis, arg)
	}
	synopsis = append(synopsis, a.Name+" "+a.actionList())

	var actions []manpage.Item
	for _, act := range a.metaActions() {
		text := actionHelp(act.Name) + " Suggested timeout: " + formatDuration(act.Timeout) + "."
		if act.Name == Monitor {
			if act.Interval > 0 {
				text += " Interval: " + formatDuration(act.Interval) + "."
			}
			text += fmt.Sprintf(" Depth (OCF_CHECK_LEVEL): %d.", act.Depth)
			if act.Role != "" {
				text += " Role: " + act.Role + "."
			}
		}
		actions = append(actions, manpage.Item{Tag: string(act.Name), Text: text})
	}

	page := manpage.Page{
		Name:     "ocf_" + Provider + "_" + a.Name,
		Section:  "7",
		Date:     date,
		Source:   strings.TrimSpace(Provider + " " + a.Version),
		Manual:   Provider + " OCF resource agents",
		Short:    a.ShortDesc,
		Synopsis: synopsis,
		Sections: []manpage.Section{
			{Title: "DESCRIPTION", Paragraphs: []string{
				a.LongDesc,
				fmt.Sprintf("The agent is used as ocf:%s:%s and installed as /usr/lib/ocf/resource.d/%s/%s. Pacemaker runs it with the action as its only argument and the parameters in OCF_RESKEY_<name> environment variables.", Provider, a.Name, Provider, a.Name),
			}},
			{Title: "PARAMETERS", Items: params},
			{Title: "ACTIONS", Items: actions},
			{Title: "PROBES AND STOPS", Paragraphs: []string{
				"A probe (monitor with interval 0, which Pacemaker runs on every node) reports a configuration that fails validation as not running (7), or as not installed (5) where a needed program or file is missing on that node, never as an error: nothing can run here with that configuration.",
				"A stop never fails because of the configuration, since Pacemaker fences a node whose stop failed: the agent stops what it can find, and fails only when it cannot tell whether the resource is stopped.",
			}},
			{Title: "EXIT STATUS", Items: []manpage.Item{
				{Tag: "0", Text: "Success; monitor: running."},
				{Tag: "1", Text: "Generic error; the reason is on standard error."},
				{Tag: "2", Text: "Missing or unknown action."},
				{Tag: "3", Text: "Action not implemented by this agent."},
				{Tag: "4", Text: "Insufficient privileges."},
				{Tag: "5", Text: "Something the agent needs is not installed on this node."},
				{Tag: "6", Text: "The configuration is invalid."},
				{Tag: "7", Text: "monitor: not running."},
				{Tag: "8, 9, 190, 191", Text: "monitor: running promoted, failed promoted, degraded, degraded promoted."},
			}},
			{Title: "ENVIRONMENT", Items: []manpage.Item{
				{Tag: "OCF_RESKEY_<name>", Text: "The parameters."},
				{Tag: "OCF_RESOURCE_INSTANCE", Text: "The resource's name, which tags the logs and keys the runtime state."},
				{Tag: "OCF_RESKEY_CRM_meta_timeout, OCF_RESKEY_CRM_meta_interval", Text: "The operation's timeout and interval in milliseconds, set by Pacemaker; the agent gives up a safety margin before the timeout, with a reason."},
				{Tag: "OCF_CHECK_LEVEL", Text: "The monitor depth."},
				{Tag: "HA_RSCTMP", Text: "Directory for runtime state, by default " + DefaultStateDir + "."},
				{Tag: "HA_debug", Text: "Log debug messages when set and not 0."},
				{Tag: "HA_LOGFACILITY", Text: "Also log to syslog with this facility (Pacemaker exports HA_logfacility); none disables it."},
				{Tag: "OCF_EXIT_REASON_PREFIX", Text: "Prefix of the exit-reason line on standard error, by default ocf-exit-reason:."},
			}},
			{Title: "EXAMPLE", Verbatim: a.pcsExample()},
			{Title: "SEE ALSO", Paragraphs: []string{"pcs(8), crm_resource(8), ocf-tester(8)"}},
		},
	}
	return page.Write(w)
}

// description is the parameter's long description, or its short one.
func (p Param) description() string {
	if strings.TrimSpace(p.LongDesc) != "" {
		return p.LongDesc
	}
	return p.ShortDesc
}

// facts are the parameter's type, requirement and default, as one line:
// "(required, integer, unique)" or "(optional, string, default "x")".
func (p Param) facts() string {
	f := []string{"optional"}
	if p.Required {
		f[0] = "required"
	}
	f = append(f, p.Type.String())
	if p.Unique {
		f = append(f, "unique")
	}
	if p.Secret {
		f = append(f, "secret: never logged")
	}
	if d := p.metaDefault(); d != "" {
		f = append(f, fmt.Sprintf("default %q", d))
	}
	return "(" + strings.Join(f, ", ") + ")"
}

// actionList is "{start|stop|monitor|...}" for the usage and the synopsis.
func (a *Agent) actionList() string {
	var names []string
	for _, act := range a.metaActions() {
		if !slices.Contains(names, string(act.Name)) {
			names = append(names, string(act.Name))
		}
	}
	names = append(names, "usage")
	return "{" + strings.Join(names, "|") + "}"
}

// pcsExample is a pcs command creating the resource with its required parameters and
// its advertised recurring monitors, one argument group per line.
func (a *Agent) pcsExample() []string {
	lines := []string{fmt.Sprintf("pcs resource create my-%s ocf:%s:%s", strings.ToLower(a.Name), Provider, a.Name)}
	for _, p := range a.Params {
		if p.Required {
			lines = append(lines, fmt.Sprintf("    %s=<%s>", p.Name, p.Type))
		}
	}
	for _, act := range a.Actions {
		if act.Name != Monitor || act.Interval == 0 {
			continue
		}
		op := fmt.Sprintf("    op monitor interval=%s timeout=%s", formatDuration(act.Interval), formatDuration(act.Timeout))
		if act.Depth > 0 {
			op += fmt.Sprintf(" OCF_CHECK_LEVEL=%d", act.Depth)
		}
		if act.Role != "" {
			op += " role=" + act.Role
		}
		lines = append(lines, op)
	}
	for i := range lines[:len(lines)-1] {
		lines[i] += " \\"
	}
	return lines
}

// actionHelp is the one-line description of an action, for the man page.
func actionHelp(n ActionName) string {
	switch n {
	case Start:
		return "Starts the resource; succeeds if it is already running."
	case Stop:
		return "Stops the resource; succeeds if it is already stopped."
	case Monitor:
		return "Reports whether the resource is running (0), cleanly stopped (7) or failed."
	case Promote:
		return "Promotes the resource."
	case Demote:
		return "Demotes the resource."
	case Notify:
		return "Handles a clone notification."
	case Reload:
		return "Applies changed non-unique parameters without a restart."
	case MigrateTo:
		return "Migrates the resource to another node (run on the source)."
	case MigrateFrom:
		return "Completes a migration (run on the target)."
	case ValidateAll:
		return "Checks the parameters offline."
	case MetaData:
		return "Prints the agent's OCF metadata (alias metadata)."
	}
	return ""
}
