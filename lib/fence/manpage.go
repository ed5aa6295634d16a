package fence

import (
	"fmt"
	"io"
	"strings"

	"github.com/novaha/novaha/lib/manpage"
)

// WriteManPage writes the agent's fence_xxx(8) man page, generated from the same
// parameter table as the metadata and --help, so the three never disagree.
func (a *Agent) WriteManPage(w io.Writer) error {
	var opts []manpage.Item
	for _, p := range a.allParams() {
		if p.Hidden {
			continue
		}
		help := sentence(p.Help)
		if p.Type == Select {
			help += " Values: " + strings.Join(p.Choices, ", ") + "."
		}
		if p.Default != "" && !p.Secret {
			help += " Default: " + p.Default + "."
		}
		if p.Required {
			help += " Required."
		}
		stdin := "On stdin: " + p.Name
		if p.Deprecated != "" {
			stdin += " (or " + p.Deprecated + ", deprecated)"
		}
		opts = append(opts, manpage.Item{Tag: p.getopt(), Text: help + " " + stdin + "."})
	}
	var acts []manpage.Item
	for _, act := range a.actions() {
		acts = append(acts, manpage.Item{Tag: act, Text: actionHelp(act, a.Fabric)})
	}
	page := manpage.Page{
		Name:    a.Name,
		Section: "8",
		Source:  "novaha " + a.version(),
		Manual:  "novaha fence agents",
		Short:   a.ShortDesc,
		Synopsis: []string{
			a.Name + " [OPTION]...",
			"printf 'action=status\\n" + a.exampleParam() + "=...\\n' | " + a.Name,
		},
		Sections: []manpage.Section{
			{Title: "DESCRIPTION", Paragraphs: []string{oneLine(a.LongDesc),
				"With arguments, the agent reads GNU-style options. Without arguments, as Pacemaker runs it, it reads key=value lines on standard input; names may use - or _, old names are accepted, the last occurrence wins, and booleans accept 1/yes/on/true and 0/no/off/false."}},
			{Title: "OPTIONS", Items: opts},
			{Title: "ACTIONS", Items: acts},
			{Title: "EXIT STATUS", Items: []manpage.Item{
				{Tag: "0", Text: "Success; for status, the target is ON."},
				{Tag: "1", Text: "Failure, including bad options and timeouts."},
				{Tag: "2", Text: "status: the target is OFF."},
			}},
		},
	}
	if err := page.Write(w); err != nil {
		return fmt.Errorf("writing man page: %w", err)
	}
	return nil
}

func actionHelp(act string, fabric bool) string {
	switch act {
	case "on":
		if fabric {
			return "Unfence the target (run automatically by Pacemaker when the target rejoins)."
		}
		return "Power the target on and verify it."
	case "off":
		if fabric {
			return "Fence the target (default action)."
		}
		return "Power the target off and verify it."
	case "reboot":
		return "Power off (verified), then power on (best effort). Default action."
	case "status":
		return "Print Status: ON (exit 0) or Status: OFF (exit 2)."
	case "list":
		return "List the targets, one name,alias per line."
	case "list-status":
		return "List the targets with their state: name,alias,ON|OFF|UNKNOWN."
	case "monitor":
		return "Check that the fencing device is reachable and answers."
	case "metadata":
		return "Print the agent's metadata XML (alias meta-data)."
	case "manpage":
		return "Print this man page."
	case "validate-all":
		return "Check the options offline and exit 0 or 1."
	}
	return ""
}

// sentence ends s with a full stop, so that appended notes read as sentences.
func sentence(s string) string {
	s = strings.TrimSpace(s)
	if s == "" || strings.HasSuffix(s, ".") {
		return s
	}
	return s + "."
}

// exampleParam names the parameter the synopsis shows beside the action: the target
// for agents that take one, else the device address.
func (a *Agent) exampleParam() string {
	for _, p := range a.Params {
		if p.Name == ParamPlug && p.Required {
			return ParamPlug
		}
	}
	if a.hasParam(ParamIP) || !a.hasParam(ParamPlug) {
		return ParamIP
	}
	return ParamPlug
}
