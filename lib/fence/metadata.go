package fence

import (
	"bufio"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
)

// esc escapes text for XML attributes and character data.
func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// WriteMetadata writes the fence-agent metadata that Pacemaker and pcs read. It has no
// <version> element on purpose: pcs then applies its lenient OCF 1.0 schema, which
// accepts the fence extras (getopt, deprecated, obsoletes).
func (a *Agent) WriteMetadata(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "<?xml version=\"1.0\" ?>\n<resource-agent name=\"%s\" shortdesc=\"%s\" >\n", esc(a.Name), esc(a.ShortDesc))
	fmt.Fprintf(bw, "<longdesc>%s</longdesc>\n", esc(oneLine(a.LongDesc)))
	fmt.Fprintf(bw, "<vendor-url>%s</vendor-url>\n", esc(a.VendorURL))
	bw.WriteString("<parameters>\n")
	for _, p := range a.allParams() {
		if p.Hidden {
			continue
		}
		extra := ""
		if p.Deprecated != "" {
			extra = fmt.Sprintf(" obsoletes=\"%s\"", esc(p.Deprecated))
		}
		a.writeParam(bw, p, p.Name, extra)
		if p.Deprecated != "" {
			a.writeParam(bw, p, p.Deprecated, " deprecated=\"1\"")
		}
	}
	bw.WriteString("</parameters>\n<actions>\n")
	for _, act := range a.actions() {
		if act == "on" {
			auto := 0
			if a.Fabric {
				auto = 1
			}
			fmt.Fprintf(bw, "\t<action name=\"on\" automatic=\"%d\"/>\n", auto)
			continue
		}
		fmt.Fprintf(bw, "\t<action name=\"%s\" />\n", act)
	}
	bw.WriteString("</actions>\n</resource-agent>\n")
	return bw.Flush()
}

func (a *Agent) writeParam(w *bufio.Writer, p *Param, name, extra string) {
	required := 0
	// With port_as_ip the address may come as the plug instead: pcs must not insist.
	if p.Required && !(p.Name == ParamIP && a.hasParam(ParamPortAsIP)) {
		required = 1
	}
	fmt.Fprintf(w, "\t<parameter name=\"%s\" unique=\"0\" required=\"%d\"%s>\n", esc(name), required, extra)
	fmt.Fprintf(w, "\t\t<getopt mixed=\"%s\" />\n", esc(p.getopt()))
	def := ""
	if p.Default != "" && !p.Secret {
		def = fmt.Sprintf(" default=\"%s\"", esc(p.Default))
	}
	if p.Type == Select {
		fmt.Fprintf(w, "\t\t<content type=\"select\"%s >\n", def)
		for _, c := range p.Choices {
			fmt.Fprintf(w, "\t\t\t<option value=\"%s\" />\n", esc(c))
		}
		w.WriteString("\t\t</content>\n")
	} else {
		fmt.Fprintf(w, "\t\t<content type=\"%s\"%s />\n", p.Type, def)
	}
	fmt.Fprintf(w, "\t\t<shortdesc lang=\"en\">%s</shortdesc>\n", esc(p.Help))
	w.WriteString("\t</parameter>\n")
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// writeUsage prints --help in the layout of fence-agents: the option in a 31-column
// field, its help wrapped at 85 columns.
func (a *Agent) writeUsage(w io.Writer) {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "Usage:\n\t%s [options]\nOptions:\n", a.Name)
	for _, p := range a.allParams() {
		if p.Hidden {
			continue
		}
		help := p.Help
		if p.Type == Select {
			help += " (" + strings.Join(p.Choices, "|") + ")"
		}
		if p.Default != "" && !p.Secret && p.Type != Boolean {
			help += " (default: " + p.Default + ")"
		}
		opt := p.getopt()
		if len(opt) > 30 {
			fmt.Fprintf(bw, "   %s\n%s", opt, strings.Repeat(" ", 34))
		} else {
			fmt.Fprintf(bw, "   %-31s", opt)
		}
		fmt.Fprintln(bw, wrap(help, 34, 85, 40))
	}
	_ = bw.Flush()
}

// wrap fills text starting at column first, continuing lines at column indent.
func wrap(text string, first, width, indent int) string {
	var b strings.Builder
	col := first
	for i, word := range strings.Fields(text) {
		if i > 0 {
			if col+1+len(word) > width {
				b.WriteString("\n")
				b.WriteString(strings.Repeat(" ", indent))
				col = indent
			} else {
				b.WriteString(" ")
				col++
			}
		}
		b.WriteString(word)
		col += len(word)
	}
	return b.String()
}
