// Package conformance checks every built agent with the real Pacemaker tools: the
// metadata schemas, pcs, crm_verify, stonith_admin and ocf-tester. An agent joins the
// suite by being built (make build puts it in bin/); nothing here names an agent, except
// the optional data files in testdata/ that describe extra parameter sets to try.
//
// The suite installs each agent as a symlink where Pacemaker looks for it (/usr/sbin for
// fence agents, /usr/lib/ocf/resource.d/novaha for OCF agents) and removes the links
// afterwards. It therefore runs only when NOVAHA_CONFORMANCE=1 (make conformance).
package conformance

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/novaha/novaha/lib/nova/novatest"
)

const (
	fenceDir = "/usr/sbin"
	ocfDir   = "/usr/lib/ocf/resource.d/novaha"
	fenceRNG = "/usr/share/cluster/relaxng/metadata.rng"
	ocfDTD   = "/usr/share/resource-agents/ra-api-1.dtd"
)

// agentMeta is the part of both metadata dialects the suite reads.
type agentMeta struct {
	Name    string `xml:"name,attr"`
	Version string `xml:"version"`
	Params  []struct {
		Name       string `xml:"name,attr"`
		Required   string `xml:"required,attr"`
		Deprecated string `xml:"deprecated,attr"`
		Obsoletes  string `xml:"obsoletes,attr"`
		Content    struct {
			Type    string `xml:"type,attr"`
			Default string `xml:"default,attr"`
			Options []struct {
				Value string `xml:"value,attr"`
			} `xml:"option"`
		} `xml:"content"`
	} `xml:"parameters>parameter"`
	Actions []struct {
		Name      string `xml:"name,attr"`
		Automatic string `xml:"automatic,attr"`
		Timeout   string `xml:"timeout,attr"`
	} `xml:"actions>action"`
}

type agent struct {
	name  string
	path  string // the built binary
	fence bool
}

func TestMain(m *testing.M) {
	if os.Getenv("NOVAHA_CONFORMANCE") != "1" {
		fmt.Println("conformance: skipped; run `make conformance` (installs agents as symlinks for the run)")
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// agents lists the executables in NOVAHA_BIN.
func agents(t *testing.T) []agent {
	t.Helper()
	dir := os.Getenv("NOVAHA_BIN")
	if dir == "" {
		t.Fatal("NOVAHA_BIN is not set: run make conformance")
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("reading %s: %v", dir, err)
	}
	var out []agent
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() || info.Mode()&0o111 == 0 {
			continue
		}
		out = append(out, agent{name: e.Name(), path: filepath.Join(dir, e.Name()), fence: strings.HasPrefix(e.Name(), "fence_")})
	}
	if len(out) == 0 {
		t.Fatalf("no agents in %s: run make build", dir)
	}
	return out
}

func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: run make deps", tool)
		}
	}
}

// run executes a command with a deadline and returns its combined output.
func run(t *testing.T, stdin string, env []string, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// install links the agent where Pacemaker finds it, for the duration of the test.
func install(t *testing.T, a agent) string {
	t.Helper()
	dir := fenceDir
	if !a.fence {
		dir = ocfDir
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	dst := filepath.Join(dir, a.name)
	if fi, err := os.Lstat(dst); err == nil {
		if fi.Mode()&os.ModeSymlink == 0 {
			t.Fatalf("%s exists and is not a link to a built agent (an installed package?): remove it to test the build", dst)
		}
		if err := os.Remove(dst); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(a.path, dst); err != nil {
		t.Fatalf("installing %s: %v", dst, err)
	}
	t.Cleanup(func() { os.Remove(dst) })
	return dst
}

func parseMeta(t *testing.T, data string) agentMeta {
	t.Helper()
	var m agentMeta
	if err := xml.Unmarshal([]byte(data), &m); err != nil {
		t.Fatalf("metadata does not parse: %v", err)
	}
	return m
}

// sample is a value pcs and the agent's validation will accept for a parameter.
func sample(name, typ, def string, options []string) string {
	switch {
	case def != "":
		return def
	case len(options) > 0:
		return options[0]
	}
	switch typ {
	case "integer", "second":
		return "1"
	case "boolean":
		return "0"
	}
	switch {
	case strings.Contains(name, "password") || strings.Contains(name, "secret"):
		return "not-a-real-secret"
	case name == "ip":
		return "127.0.0.1"
	case strings.HasSuffix(name, "_url"):
		return "http://127.0.0.1:5000/v3"
	case strings.Contains(name, "hex"):
		return "0a0b0c0d"
	}
	return "x"
}

// documented returns every current (non-deprecated) parameter with a sample value, and
// the required ones alone. Parameters pcs handles itself or refuses are left out.
func documented(m agentMeta) (all, required []string) {
	for _, p := range m.Params {
		if p.Deprecated == "1" || p.Name == "action" || p.Name == "help" || p.Name == "version" {
			continue
		}
		var opts []string
		for _, o := range p.Content.Options {
			opts = append(opts, o.Value)
		}
		kv := p.Name + "=" + sample(p.Name, p.Content.Type, p.Content.Default, opts)
		// password_script would run the sample as a command: leave it to its own test.
		// debug_file would create the file; both have tests of their own.
		if strings.HasSuffix(p.Name, "_script") || p.Name == "debug_file" {
			continue
		}
		all = append(all, kv)
		if p.Required == "1" {
			required = append(required, kv)
		}
	}
	return all, required
}

// extraSets reads testdata/<agent>.params: one parameter set per line, as pcs takes it.
// They hold the parameter sets of the agents we replace, to prove drop-in use.
func extraSets(t *testing.T, name string) [][]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name+".params"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var sets [][]string
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		sets = append(sets, strings.Fields(line))
	}
	return sets
}

func emptyCIB(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("cibadmin", "--empty").Output()
	if err != nil {
		t.Fatalf("cibadmin --empty: %v", err)
	}
	path := filepath.Join(t.TempDir(), "cib.xml")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestFenceAgents(t *testing.T) {
	need(t, "xmllint", "pcs", "crm_verify", "stonith_admin", "cibadmin")
	for _, a := range agents(t) {
		if !a.fence {
			continue
		}
		t.Run(a.name, func(t *testing.T) { checkFence(t, a) })
	}
}

func checkFence(t *testing.T, a agent) {
	install(t, a)
	md, err := run(t, "", nil, a.path, "-o", "metadata")
	if err != nil {
		t.Fatalf("-o metadata: %v\n%s", err, md)
	}
	file := filepath.Join(t.TempDir(), a.name+".xml")
	if err := os.WriteFile(file, []byte(md), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := run(t, "", nil, "xmllint", "--noout", "--relaxng", fenceRNG, file); err != nil {
		t.Errorf("metadata does not validate against %s: %v\n%s", fenceRNG, err, out)
	}
	if viaStdin, _ := run(t, "action=metadata\n", nil, a.path); viaStdin != md {
		t.Errorf("metadata on stdin differs from -o metadata")
	}
	m := parseMeta(t, md)
	if m.Name != a.name {
		t.Errorf("metadata names the agent %q, want %q", m.Name, a.name)
	}
	if m.Version != "" {
		t.Errorf("fence metadata must not have a <version> element (pcs then rejects the fence extras)")
	}
	checkNames(t, m)

	all, required := documented(m)
	t.Run("pcs describe", func(t *testing.T) {
		out, err := run(t, "", nil, "pcs", "stonith", "describe", a.name)
		if err != nil || !strings.Contains(out, a.name) {
			t.Errorf("pcs stonith describe: %v\n%s", err, out)
		}
	})
	t.Run("pcs create and crm_verify", func(t *testing.T) {
		cib := emptyCIB(t)
		sets := append([][]string{all, required}, extraSets(t, a.name)...)
		for i, set := range sets {
			args := append([]string{"-f", cib, "stonith", "create", fmt.Sprintf("dev%d", i), a.name}, set...)
			if out, err := run(t, "", nil, "pcs", args...); err != nil {
				t.Errorf("pcs stonith create %s %s: %v\n%s", a.name, strings.Join(set, " "), err, out)
			}
		}
		args := append([]string{"-f", cib, "stonith", "create", "bad", a.name}, required...)
		args = append(args, "no_such_option_novaha=1")
		out, err := run(t, "", nil, "pcs", args...)
		if err == nil || !strings.Contains(out, "no_such_option_novaha") {
			t.Errorf("pcs accepted an unknown option (%v):\n%s", err, out)
		}
		if out, err := run(t, "", nil, "crm_verify", "--xml-file", cib); err != nil {
			t.Errorf("crm_verify: %v\n%s", err, out)
		}
	})
	t.Run("stonith_admin validate", func(t *testing.T) {
		// Only complete sets: metadata cannot express "ip unless port_as_ip", so the
		// required parameters alone need not make a valid device.
		for _, set := range append([][]string{all}, extraSets(t, a.name)...) {
			args := []string{"--validate", "--agent", a.name}
			for _, kv := range set {
				args = append(args, "--option", kv)
			}
			out, err := run(t, "", nil, "stonith_admin", args...)
			if err != nil || !strings.Contains(out, "succeeded") {
				t.Errorf("stonith_admin --validate %s: %v\n%s", strings.Join(set, " "), err, out)
			}
		}
		// A type error must be refused.
		args := []string{"--validate", "--agent", a.name, "--option", "power_timeout=soon"}
		for _, kv := range all {
			if !strings.HasPrefix(kv, "power_timeout=") {
				args = append(args, "--option", kv)
			}
		}
		if out, err := run(t, "", nil, "stonith_admin", args...); err == nil {
			t.Errorf("stonith_admin --validate accepted power_timeout=soon:\n%s", out)
		}
	})
	t.Run("protocol", func(t *testing.T) {
		out, err := run(t, "action=dance\n", nil, a.path)
		if code := exitCode(err); code != 1 || !strings.Contains(out, "Failed: Unrecognised action 'dance'") {
			t.Errorf("unknown action: exit %d\n%s", code, out)
		}
		out, err = run(t, "", nil, a.path, "--no-such-flag")
		if code := exitCode(err); code != 1 || !strings.Contains(out, "Parse error") {
			t.Errorf("unknown flag: exit %d\n%s", code, out)
		}
		if out, err := run(t, "", nil, a.path, "-h"); err != nil || !strings.HasPrefix(out, "Usage:") {
			t.Errorf("-h: %v\n%s", err, out)
		}
		if out, err := run(t, "", nil, a.path, "-o", "manpage"); err != nil || !strings.Contains(out, ".TH") {
			t.Errorf("-o manpage: %v\n%s", err, out)
		}
	})
}

// checkNames verifies the deprecated/obsoletes pairing and that secrets have no default.
func checkNames(t *testing.T, m agentMeta) {
	t.Helper()
	names := map[string]bool{}
	for _, p := range m.Params {
		if names[p.Name] {
			t.Errorf("parameter %s listed twice", p.Name)
		}
		names[p.Name] = true
		if (strings.Contains(p.Name, "password") || strings.Contains(p.Name, "passwd")) &&
			!strings.Contains(p.Name, "script") && p.Content.Default != "" {
			t.Errorf("secret parameter %s has a default", p.Name)
		}
	}
	for _, p := range m.Params {
		if p.Obsoletes != "" && !names[p.Obsoletes] {
			t.Errorf("%s obsoletes %s, which is not listed", p.Name, p.Obsoletes)
		}
	}
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

func TestOCFAgents(t *testing.T) {
	var ocf []agent
	for _, a := range agents(t) {
		if !a.fence {
			ocf = append(ocf, a)
		}
	}
	need(t, "xmllint", "pcs", "crm_verify", "ocf-tester", "cibadmin")
	// The OCF framework's own test agent always joins, so this half of the suite is
	// exercised even before the first real OCF agent exists.
	ocf = append(ocf, buildDummy(t))
	sort.Slice(ocf, func(i, j int) bool { return ocf[i].name < ocf[j].name })
	for _, a := range ocf {
		t.Run(a.name, func(t *testing.T) { checkOCF(t, a) })
	}
}

// buildDummy builds lib/ocf's test agent into a directory user nobody can read, since
// ocf-tester runs meta-data as nobody.
func buildDummy(t *testing.T) agent {
	t.Helper()
	dir, err := os.MkdirTemp("", "novaha-conformance")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "Dummy")
	if out, err := run(t, "", nil, "go", "build", "-o", path, "../../lib/ocf/internal/dummyagent"); err != nil {
		t.Fatalf("building the OCF test agent: %v\n%s", err, out)
	}
	return agent{name: "Dummy", path: path}
}

func checkOCF(t *testing.T, a agent) {
	path := install(t, a)
	md, err := run(t, "", nil, a.path, "meta-data")
	if err != nil {
		t.Fatalf("meta-data: %v\n%s", err, md)
	}
	file := filepath.Join(t.TempDir(), a.name+".xml")
	if err := os.WriteFile(file, []byte(md), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := run(t, "", nil, "xmllint", "--noout", "--dtdvalid", ocfDTD, file); err != nil {
		t.Errorf("metadata does not validate against %s: %v\n%s", ocfDTD, err, out)
	}
	m := parseMeta(t, md)
	for _, act := range m.Actions {
		if act.Timeout == "" {
			t.Errorf("action %s has no timeout", act.Name)
		}
	}
	all, required := documented(m)
	cib := emptyCIB(t)
	for i, set := range append([][]string{all, required}, extraSets(t, a.name)...) {
		args := append([]string{"-f", cib, "resource", "create", fmt.Sprintf("r%d", i), "ocf:novaha:" + a.name}, set...)
		if out, err := run(t, "", nil, "pcs", args...); err != nil {
			t.Errorf("pcs resource create %s: %v\n%s", strings.Join(set, " "), err, out)
		}
	}
	args := append([]string{"-f", cib, "resource", "create", "bad", "ocf:novaha:" + a.name}, required...)
	if out, err := run(t, "", nil, "pcs", append(args, "no_such_option_novaha=1")...); err == nil {
		t.Errorf("pcs accepted an unknown option:\n%s", out)
	}
	// crm_verify needs fencing configured or disabled to judge resources at all.
	if out, err := run(t, "", nil, "pcs", "-f", cib, "property", "set", "stonith-enabled=false"); err != nil {
		t.Fatalf("pcs property set: %v\n%s", err, out)
	}
	if out, err := run(t, "", nil, "crm_verify", "--xml-file", cib); err != nil {
		t.Errorf("crm_verify: %v\n%s", err, out)
	}
	// ocf-tester runs the real start/monitor/stop cycle: it needs parameters that work
	// on this machine, from testdata/<Name>.ocf-tester (one -o k=v per line).
	params, err := os.ReadFile(filepath.Join("testdata", a.name+".ocf-tester"))
	if errors.Is(err, os.ErrNotExist) {
		t.Logf("no testdata/%s.ocf-tester: ocf-tester not run", a.name)
		return
	}
	params = withFakeNova(t, params)
	targs := []string{"-n", "conformance"}
	for _, l := range strings.Split(string(params), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			targs = append(targs, "-o", l)
		}
	}
	out, err := run(t, "", []string{"OCF_ROOT=/usr/lib/ocf", "HA_RSCTMP=" + t.TempDir()}, "ocf-tester", append(targs, path)...)
	if err != nil || !strings.Contains(out, "passed all tests") {
		t.Errorf("ocf-tester: %v\n%s", err, out)
	}
}

// withFakeNova fills in the placeholders of an ocf-tester parameter file: @TESTDATA@,
// the testdata directory; and, for an agent that needs a Nova (NovaEvacuate, and
// NovaCompute, which asks Nova before it starts nova-compute), @NOVA_AUTH_URL@ and
// @NOVA_PASSWORD@ of a fake one (user admin), with one healthy compute host, compute1,
// for the test's life.
func withFakeNova(t *testing.T, params []byte) []byte {
	dir, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	pairs := []string{"@TESTDATA@", dir}
	if bytes.Contains(params, []byte("@NOVA_")) {
		srv := novatest.New(t, novatest.Service{Host: "compute1", Alive: true})
		pairs = append(pairs, "@NOVA_AUTH_URL@", srv.AuthURL(), "@NOVA_PASSWORD@", novatest.Password)
	}
	return []byte(strings.NewReplacer(pairs...).Replace(string(params)))
}
