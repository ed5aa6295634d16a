package ocf_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/novaha/novaha/lib/ocf"
)

// raMetadata mirrors ra-api-1.dtd.
type raMetadata struct {
	XMLName   xml.Name `xml:"resource-agent"`
	Name      string   `xml:"name,attr"`
	Version   string   `xml:"version,attr"`
	OCF       string   `xml:"version"`
	LongDesc  desc     `xml:"longdesc"`
	ShortDesc desc     `xml:"shortdesc"`
	Params    []struct {
		Name      string `xml:"name,attr"`
		Required  string `xml:"required,attr"`
		Unique    string `xml:"unique,attr"`
		LongDesc  desc   `xml:"longdesc"`
		ShortDesc desc   `xml:"shortdesc"`
		Content   struct {
			Type    string  `xml:"type,attr"`
			Default *string `xml:"default,attr"`
		} `xml:"content"`
	} `xml:"parameters>parameter"`
	Actions []struct {
		Name     string `xml:"name,attr"`
		Timeout  string `xml:"timeout,attr"`
		Interval string `xml:"interval,attr"`
		Depth    string `xml:"depth,attr"`
		Role     string `xml:"role,attr"`
	} `xml:"actions>action"`
}

type desc struct {
	Lang string `xml:"lang,attr"`
	Text string `xml:",chardata"`
}

func TestMetaData(t *testing.T) {
	f := newFixture()
	f.agent.LongDesc = "Line one & <two>.\n\nA \"quoted\" 'second' paragraph."
	res := run(t, f.agent, []string{"meta-data"})
	if res.code != ocf.Success || res.stderr != "" {
		t.Fatalf("meta-data: %s, stderr %q", res.code, res.stderr)
	}
	wantHead := "<?xml version=\"1.0\"?>\n<!DOCTYPE resource-agent SYSTEM \"ra-api-1.dtd\">\n<resource-agent name=\"Test\" version=\"1.2.3\">\n"
	if !strings.HasPrefix(res.stdout, wantHead) {
		t.Errorf("metadata starts:\n%.200s\nwant:\n%s", res.stdout, wantHead)
	}
	var md raMetadata
	if err := xml.Unmarshal([]byte(res.stdout), &md); err != nil {
		t.Fatalf("metadata is not XML: %v\n%s", err, res.stdout)
	}
	if md.Name != "Test" || md.Version != "1.2.3" || md.OCF != "1.0" {
		t.Errorf("name %q version %q OCF version %q", md.Name, md.Version, md.OCF)
	}
	if md.LongDesc.Lang != "en" || strings.TrimSpace(md.LongDesc.Text) != f.agent.LongDesc {
		t.Errorf("longdesc %+v", md.LongDesc)
	}
	if md.ShortDesc.Lang != "en" || md.ShortDesc.Text != "A test agent" {
		t.Errorf("shortdesc %+v", md.ShortDesc)
	}

	type param struct{ name, required, unique, typ, def string }
	var got []param
	for _, p := range md.Params {
		d := "-"
		if p.Content.Default != nil {
			d = *p.Content.Default
		}
		got = append(got, param{p.Name, p.Required, p.Unique, p.Content.Type, d})
		if p.LongDesc.Lang != "en" || p.ShortDesc.Lang != "en" || p.LongDesc.Text == "" || p.ShortDesc.Text == "" {
			t.Errorf("parameter %s: descriptions %+v %+v", p.Name, p.LongDesc, p.ShortDesc)
		}
	}
	want := []param{
		{"name", "1", "1", "string", "-"},
		{"port", "0", "0", "integer", "8774"},
		{"insecure", "0", "0", "boolean", "false"},
		{"wait", "0", "0", "time", "30s"},
		{"password", "0", "0", "string", "-"},
		{"project_name", "0", "0", "string", "admin"},
		{"tenant_name", "0", "0", "string", "-"},
	}
	if len(got) != len(want) {
		t.Fatalf("parameters %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("parameter %d: %+v, want %+v", i, got[i], want[i])
		}
	}

	var acts []string
	for _, a := range md.Actions {
		s := a.Name + " " + a.Timeout
		if a.Interval != "" || a.Depth != "" {
			s += " " + a.Interval + " " + a.Depth
		}
		acts = append(acts, s)
	}
	wantActs := "start 20s|stop 7s|monitor 20s 10s 0|notify 5s|validate-all 20s|meta-data 5s"
	if strings.Join(acts, "|") != wantActs {
		t.Errorf("actions %q, want %q", strings.Join(acts, "|"), wantActs)
	}
}

func TestMetaDataDeclaredFrameworkTimeouts(t *testing.T) {
	f := newFixture()
	f.agent.Actions = append(f.agent.Actions,
		ocf.Action{Name: ocf.ValidateAll, Timeout: 90 * time.Second},
		ocf.Action{Name: ocf.Monitor, Timeout: 500 * time.Millisecond, Interval: time.Minute, Depth: 10},
	)
	res := run(t, f.agent, []string{"meta-data"})
	for _, want := range []string{
		`<action name="validate-all" timeout="90s"/>`,
		`<action name="monitor" timeout="500ms" interval="60s" depth="10"/>`,
		`<action name="meta-data" timeout="5s"/>`,
	} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("metadata lacks %s:\n%s", want, res.stdout)
		}
	}
	if strings.Count(res.stdout, `name="validate-all"`) != 1 {
		t.Error("validate-all advertised twice")
	}
	var timeout time.Duration
	f.validate = func(_ context.Context, r *ocf.Request) error { timeout = r.Timeout(); return nil }
	run(t, f.agent, []string{"validate-all"}, valid...)
	if timeout != 90*time.Second {
		t.Errorf("validate-all timeout %s, want the declared 90s", timeout)
	}
}

// TestMetaDataValidatesAgainstDTD checks tricky metadata with xmllint against
// resource-agents' ra-api-1.dtd, as ocf-tester and pcs would read it.
func TestMetaDataValidatesAgainstDTD(t *testing.T) {
	xmllint, dtd := xmlTools(t)
	f := newFixture()
	f.agent.ShortDesc = `Quotes " and ' & <angles>`
	f.agent.LongDesc = "Control \x01 characters, invalid \xff UTF-8, ünïcödé ✓\n\n]]> and <!-- comment -->"
	f.agent.Params[1].Default = "8774"
	f.agent.Params = append(f.agent.Params, ocf.Param{Name: "note", Type: ocf.String, Default: `<&"'>`, ShortDesc: "x"})
	res := run(t, f.agent, []string{"meta-data"})
	file := filepath.Join(t.TempDir(), "md.xml")
	if err := os.WriteFile(file, []byte(res.stdout), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(xmllint, "--noout", "--dtdvalid", dtd, file).CombinedOutput(); err != nil {
		t.Errorf("xmllint --dtdvalid: %v\n%s\n%s", err, out, res.stdout)
	}
}

func xmlTools(t *testing.T) (xmllint, dtd string) {
	t.Helper()
	xmllint, err := exec.LookPath("xmllint")
	if err != nil {
		t.Skip("xmllint is not installed (Debian package libxml2-utils); metadata not validated against the DTD")
	}
	dtd = "/usr/share/resource-agents/ra-api-1.dtd"
	if _, err := os.Stat(dtd); err != nil {
		t.Skipf("%s is missing (Debian package resource-agents); metadata not validated against the DTD", dtd)
	}
	return xmllint, dtd
}

func TestManPage(t *testing.T) {
	f := newFixture()
	var b bytes.Buffer
	if err := f.agent.ManPage(&b, "2026-01-01"); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, want := range []string{
		`.TH "OCF_NOVAHA_TEST" "7" "2026\-01\-01" "novaha 1.2.3" "novaha OCF resource agents"`,
		"ocf_novaha_Test \\- A test agent\n",
		"OCF_RESKEY_name=string\n[OCF_RESKEY_port=integer]\n",
		"Test {start|stop|monitor|notify|validate\\-all|meta\\-data|usage}\n",
		"\\fBproject_name (old name: tenant_name)\\fR\n",
		"(required, string, unique)",
		`(optional, integer, default "8774")`,
		"(optional, string, secret: never logged)",
		"\\fBmonitor\\fR\nReports whether the resource is running (0), cleanly stopped (7) or failed. Suggested timeout: 20s. Interval: 10s. Depth (OCF_CHECK_LEVEL): 0.\n",
		"pcs resource create my\\-test ocf:novaha:Test \\e\n    name=<string> \\e\n    op monitor interval=10s timeout=20s\n",
		".SH \"PROBES AND STOPS\"",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("man page lacks %q", want)
		}
	}

	res := run(t, f.agent, []string{"manpage"}, "SOURCE_DATE_EPOCH=1767225600")
	if !strings.Contains(res.stdout, `"7" "2026\-01\-01"`) {
		t.Errorf("manpage action ignores SOURCE_DATE_EPOCH:\n%.300s", res.stdout)
	}

	groff, err := exec.LookPath("groff")
	if err != nil {
		t.Skip("groff is not installed; rendering not checked")
	}
	cmd := exec.Command(groff, "-man", "-Tutf8", "-ww", "-z")
	cmd.Stdin = &b
	if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("groff -ww: %v\n%s", err, out)
	}
}

func TestCheck(t *testing.T) {
	h := func(context.Context, *ocf.Request) error { return nil }
	base := func() *ocf.Agent {
		return &ocf.Agent{
			Name: "X", ShortDesc: "s", LongDesc: "l",
			Params: []ocf.Param{{Name: "p", Type: ocf.Integer, Default: "1", ShortDesc: "p"}},
			Actions: []ocf.Action{
				{Name: ocf.Start, Timeout: time.Second, Handler: h},
				{Name: ocf.Stop, Timeout: time.Second, Handler: h},
				{Name: ocf.Monitor, Timeout: time.Second, Interval: time.Second, Handler: h},
			},
		}
	}
	if err := base().Check(); err != nil {
		t.Fatalf("valid agent: %v", err)
	}
	tests := []struct {
		name   string
		change func(a *ocf.Agent)
		want   string
	}{
		{"no name", func(a *ocf.Agent) { a.Name = "" }, `agent name ""`},
		{"bad name", func(a *ocf.Agent) { a.Name = "a/b" }, `agent name "a/b"`},
		{"no short description", func(a *ocf.Agent) { a.ShortDesc = " " }, "no ShortDesc"},
		{"no long description", func(a *ocf.Agent) { a.LongDesc = "" }, "no LongDesc"},
		{"bad parameter name", func(a *ocf.Agent) { a.Params[0].Name = "auth-url" }, `parameter "auth-url": want letters`},
		{"reserved parameter", func(a *ocf.Agent) { a.Params[0].Name = "CRM_meta_timeout" }, "reserved by Pacemaker"},
		{"duplicate parameter", func(a *ocf.Agent) { a.Params = append(a.Params, a.Params[0]) }, `parameter "p": declared twice`},
		{"alias clash", func(a *ocf.Agent) {
			a.Params = append(a.Params, ocf.Param{Name: "q", Aliases: []string{"p"}, ShortDesc: "q"})
		}, `parameter "p": declared twice`},
		{"bad type", func(a *ocf.Agent) { a.Params[0].Type = 9 }, "unknown type 9"},
		{"bad default", func(a *ocf.Agent) { a.Params[0].Default = "one" }, `default "one": not an integer`},
		{"secret with default", func(a *ocf.Agent) { a.Params[0].Secret = true }, "a secret has no default"},
		{"required with default", func(a *ocf.Agent) { a.Params[0].Required = true }, "a required parameter has no default"},
		{"parameter without description", func(a *ocf.Agent) { a.Params[0].ShortDesc = "" }, "parameter p: no ShortDesc"},
		{"no stop", func(a *ocf.Agent) { a.Actions = a.Actions[:1] }, "action stop: required"},
		{"no handler", func(a *ocf.Agent) { a.Actions[0].Handler = nil }, "action start: no Handler"},
		{"no timeout", func(a *ocf.Agent) { a.Actions[0].Timeout = 0 }, "action start: no timeout"},
		{"unknown action", func(a *ocf.Agent) {
			a.Actions = append(a.Actions, ocf.Action{Name: "status", Timeout: time.Second, Handler: h})
		}, `action "status": not an OCF 1.0 action`},
		{"start twice", func(a *ocf.Agent) { a.Actions = append(a.Actions, a.Actions[0]) }, "action start: declared twice"},
		{"second monitor with a handler", func(a *ocf.Agent) {
			a.Actions = append(a.Actions, ocf.Action{Name: ocf.Monitor, Timeout: time.Second, Interval: time.Minute, Handler: h})
		}, "only the first monitor has a Handler"},
		{"same monitor interval twice", func(a *ocf.Agent) {
			a.Actions = append(a.Actions, ocf.Action{Name: ocf.Monitor, Timeout: time.Second, Interval: time.Second})
		}, "interval 1s declared twice"},
		{"interval on start", func(a *ocf.Agent) { a.Actions[0].Interval = time.Second }, "interval, depth and role are for monitor"},
		{"bad role", func(a *ocf.Agent) { a.Actions[2].Role = "Promoted" }, `role "Promoted"`},
		{"promote without demote", func(a *ocf.Agent) {
			a.Actions = append(a.Actions, ocf.Action{Name: ocf.Promote, Timeout: time.Second, Handler: h})
		}, "declare both or neither"},
		{"handler on validate-all", func(a *ocf.Agent) {
			a.Actions = append(a.Actions, ocf.Action{Name: ocf.ValidateAll, Timeout: time.Second, Handler: h})
		}, "run by the framework"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := base()
			tt.change(a)
			err := a.Check()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Check() = %v, want an error containing %q", err, tt.want)
			}
			for _, action := range []string{"start", "meta-data"} {
				var stdout, stderr bytes.Buffer
				if code := a.Run(context.Background(), []string{"X", action}, nil, &stdout, &stderr); code != ocf.ErrGeneric || stdout.Len() > 0 {
					t.Errorf("%s with a broken declaration: %s, stdout %q", action, code, stdout.String())
				}
			}
			if err := a.MetaData(&bytes.Buffer{}); err == nil {
				t.Error("MetaData of a broken declaration succeeded")
			}
		})
	}
}
