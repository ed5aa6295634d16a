package ocf

import (
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// MetaData writes the agent's OCF 1.0 metadata, valid against resource-agents'
// ra-api-1.dtd (ocf-tester checks it; pcs and crm_resource read it). Secret
// parameters never show a default; aliases are listed after their parameter.
func (a *Agent) MetaData(w io.Writer) error {
	if err := a.Check(); err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString(`<?xml version="1.0"?>` + "\n")
	b.WriteString(`<!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd">` + "\n")
	fmt.Fprintf(&b, `<resource-agent name="%s"`, xmlEscape(a.Name))
	if a.Version != "" {
		fmt.Fprintf(&b, ` version="%s"`, xmlEscape(a.Version))
	}
	b.WriteString(">\n")
	b.WriteString("  <version>1.0</version>\n")
	writeDesc(&b, "  ", a.LongDesc, a.ShortDesc)

	b.WriteString("  <parameters>\n")
	for _, p := range a.Params {
		writeParam(&b, p.Name, p.Required, p.Unique, p.LongDesc, p.ShortDesc, p.Type, p.metaDefault())
		for _, alias := range p.Aliases {
			writeParam(&b, alias, false, p.Unique,
				fmt.Sprintf("Deprecated: the old name of %s, accepted for compatibility; %s wins when both are set.", p.Name, p.Name),
				"Deprecated: use "+p.Name, p.Type, "")
		}
	}
	b.WriteString("  </parameters>\n")

	b.WriteString("  <actions>\n")
	for _, act := range a.metaActions() {
		fmt.Fprintf(&b, `    <action name="%s" timeout="%s"`, act.Name, formatDuration(act.Timeout))
		if act.Name == Monitor {
			if act.Interval > 0 {
				fmt.Fprintf(&b, ` interval="%s"`, formatDuration(act.Interval))
			}
			fmt.Fprintf(&b, ` depth="%d"`, act.Depth)
			if act.Role != "" {
				fmt.Fprintf(&b, ` role="%s"`, xmlEscape(act.Role))
			}
		}
		b.WriteString("/>\n")
	}
	b.WriteString("  </actions>\n")
	b.WriteString("</resource-agent>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func writeParam(b *strings.Builder, name string, required, unique bool, long, short string, t Type, def string) {
	fmt.Fprintf(b, `    <parameter name="%s" unique="%s" required="%s">`+"\n", xmlEscape(name), bit(unique), bit(required))
	writeDesc(b, "      ", long, short)
	fmt.Fprintf(b, `      <content type="%s"`, t)
	if def != "" {
		fmt.Fprintf(b, ` default="%s"`, xmlEscape(def))
	}
	b.WriteString("/>\n")
	b.WriteString("    </parameter>\n")
}

// writeDesc writes a longdesc (which falls back to the short one) and a shortdesc.
func writeDesc(b *strings.Builder, indent, long, short string) {
	if strings.TrimSpace(long) == "" {
		long = short
	}
	fmt.Fprintf(b, "%s<longdesc lang=\"en\">\n%s\n%s</longdesc>\n", indent, xmlEscape(strings.TrimSpace(long)), indent)
	fmt.Fprintf(b, "%s<shortdesc lang=\"en\">%s</shortdesc>\n", indent, xmlEscape(strings.Join(strings.Fields(short), " ")))
}

// metaDefault is the default the metadata advertises: none for a secret.
func (p Param) metaDefault() string {
	if p.Secret {
		return ""
	}
	return p.Default
}

// metaActions are the actions the metadata and the man page advertise: the agent's,
// then validate-all and meta-data unless the agent declares them.
func (a *Agent) metaActions() []Action {
	acts := append([]Action(nil), a.Actions...)
	for _, own := range []struct {
		name ActionName
		def  time.Duration
	}{{ValidateAll, DefaultValidateTimeout}, {MetaData, DefaultMetaDataTimeout}} {
		if a.timeout(own.name, 0) == 0 {
			acts = append(acts, Action{Name: own.name, Timeout: own.def})
		}
	}
	return acts
}

func bit(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// xmlEscape escapes s for XML text and attribute values, keeping newlines, and
// replaces what XML 1.0 cannot carry (control characters, invalid UTF-8) with '?'.
func xmlEscape(s string) string {
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == '&':
			b.WriteString("&amp;")
		case r == '<':
			b.WriteString("&lt;")
		case r == '>':
			b.WriteString("&gt;")
		case r == '"':
			b.WriteString("&quot;")
		case r == '\'':
			b.WriteString("&apos;")
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD"):
			b.WriteByte('?')
		case r < 0x20 && r != '\n' && r != '\t' && r != '\r', r == 0xFFFE, r == 0xFFFF:
			b.WriteByte('?')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
