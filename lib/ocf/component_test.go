package ocf_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/novaha/novaha/lib/ocf"
)

// The test-only agent lib/ocf/internal/dummyagent, built once per test binary into a
// directory user nobody can read (ocf-tester runs meta-data as nobody).
var dummy struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if dummy.dir != "" {
		os.RemoveAll(dummy.dir)
	}
	os.Exit(code)
}

func dummyAgent(t *testing.T) string {
	t.Helper()
	gocmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH to build the test agent")
	}
	dummy.once.Do(func() {
		dummy.dir, dummy.err = os.MkdirTemp("", "novaha-ocf-dummy-")
		if dummy.err != nil {
			return
		}
		if dummy.err = os.Chmod(dummy.dir, 0o755); dummy.err != nil {
			return
		}
		dummy.path = filepath.Join(dummy.dir, "Dummy")
		out, err := exec.Command(gocmd, "build", "-o", dummy.path, "github.com/novaha/novaha/lib/ocf/internal/dummyagent").CombinedOutput()
		if err != nil {
			dummy.err = errors.New(string(out))
		}
	})
	if dummy.err != nil {
		t.Fatalf("building the test agent: %v", dummy.err)
	}
	return dummy.path
}

// runAgent runs the agent binary with a clean environment plus env.
func runAgent(t *testing.T, path, action string, env ...string) result {
	t.Helper()
	cmd := exec.Command(path, action)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("running %s %s: %v", path, action, err)
	}
	return result{code: ocf.Code(cmd.ProcessState.ExitCode()), stdout: stdout.String(), stderr: stderr.String()}
}

// TestDummyAgent drives the built agent through a resource's life, as separate
// processes with state in HA_RSCTMP.
func TestDummyAgent(t *testing.T) {
	agent := dummyAgent(t)
	tmp := t.TempDir()
	base := []string{"HA_RSCTMP=" + tmp, "OCF_RESOURCE_INSTANCE=rsc1", "OCF_ROOT=/usr/lib/ocf"}
	probe, recurring := "OCF_RESKEY_CRM_meta_interval=0", "OCF_RESKEY_CRM_meta_interval=10000"
	missing := "OCF_RESKEY_binary=/nonexistent/nova-compute"
	steps := []struct {
		action string
		env    []string
		want   ocf.Code
		reason string
	}{
		{"monitor", []string{recurring}, ocf.NotRunning, ""},
		{"monitor", []string{probe}, ocf.NotRunning, ""},
		{"start", nil, ocf.Success, ""},
		{"monitor", []string{recurring}, ocf.Success, ""},
		{"monitor", []string{probe}, ocf.Success, ""},
		{"monitor", []string{recurring, "OCF_CHECK_LEVEL=10"}, ocf.Success, ""},
		{"monitor", []string{recurring, "OCF_CHECK_LEVEL=10", "OCF_RESKEY_fake_value=other"}, ocf.ErrGeneric, `state file holds "dummy", want "other"`},
		{"start", []string{"OCF_RESKEY_fake=two"}, ocf.Success, ""},
		{"monitor", []string{recurring, "OCF_CHECK_LEVEL=10", "OCF_RESKEY_fake=two"}, ocf.Success, ""},
		{"stop", nil, ocf.Success, ""},
		{"stop", nil, ocf.Success, ""},
		{"monitor", []string{recurring}, ocf.NotRunning, ""},
		{"monitor", []string{probe, missing}, ocf.NotInstalled, "binary /nonexistent/nova-compute: stat /nonexistent/nova-compute: no such file or directory"},
		{"monitor", []string{recurring, missing}, ocf.NotInstalled, "binary /nonexistent/nova-compute: stat /nonexistent/nova-compute: no such file or directory"},
		{"monitor", []string{probe, "OCF_RESKEY_count=many"}, ocf.NotRunning, `probe: not running here with invalid parameters: parameter count="many": not an integer`},
		{"start", []string{missing}, ocf.NotInstalled, "binary /nonexistent/nova-compute: stat /nonexistent/nova-compute: no such file or directory"},
		{"start", []string{"OCF_RESKEY_count=0"}, ocf.ErrConfigured, "count 0: want at least 1"},
		{"start", []string{"OCF_RESKEY_count=many", "OCF_RESKEY_password=hunter2"}, ocf.ErrConfigured, `parameter count="many": not an integer`},
		{"stop", []string{missing, "OCF_RESKEY_count=many"}, ocf.Success, ""},
		{"validate-all", []string{"OCF_RESKEY_state=relative/path"}, ocf.ErrConfigured, `state "relative/path": not an absolute path`},
		{"validate-all", []string{"OCF_RESKEY_verbose=sometimes"}, ocf.ErrConfigured, `parameter verbose="sometimes": not a boolean (want 1/yes/true/on or 0/no/false/off)`},
		{"start", []string{"OCF_RESKEY_delay=30s", "OCF_RESKEY_CRM_meta_timeout=400"}, ocf.ErrGeneric, "start timed out (operation timeout 400ms): waiting 30s: context deadline exceeded"},
		{"monitor", []string{recurring}, ocf.NotRunning, ""},
		{"promote", nil, ocf.Unimplemented, "Dummy does not implement the promote action"},
		{"frobnicate", nil, ocf.ErrArgs, `unknown action "frobnicate"`},
	}
	for i, s := range steps {
		res := runAgent(t, agent, s.action, append(append([]string(nil), base...), s.env...)...)
		reason, _ := res.reason()
		if res.code != s.want || reason != s.reason {
			t.Errorf("step %d, %s %v: exit %s, reason %q; want %s, %q\nstderr:\n%s", i, s.action, s.env, res.code, reason, s.want, s.reason, res.stderr)
		}
		if strings.Count(res.stderr, ocf.DefaultExitReasonPrefix) > 1 {
			t.Errorf("step %d: several exit-reason lines:\n%s", i, res.stderr)
		}
		if strings.Contains(res.stderr, "hunter2") {
			t.Errorf("step %d: the secret on stderr:\n%s", i, res.stderr)
		}
		if s.action != "start" || s.want != ocf.Success {
			continue
		}
		b, err := os.ReadFile(filepath.Join(tmp, "Dummy-rsc1.state"))
		if err != nil || len(b) == 0 {
			t.Errorf("step %d: no state file after start: %v", i, err)
		}
	}
}

// TestDummyAgentSIGTERM checks that Main cancels the handler's context on SIGTERM.
func TestDummyAgentSIGTERM(t *testing.T) {
	agent := dummyAgent(t)
	cmd := exec.Command(agent, "start")
	// With HA_debug, the agent logs the undeclared parameter once it runs the action,
	// after Main has set up its signal handling.
	cmd.Env = []string{"HA_RSCTMP=" + t.TempDir(), "OCF_RESKEY_delay=30s", "HA_debug=1", "OCF_RESKEY_undeclared=1"}
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stderr := bufio.NewReader(pipe)
	first, err := stderr.ReadString('\n')
	if err != nil || !strings.Contains(first, "undeclared") {
		t.Fatalf("first stderr line %q, %v", first, err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(stderr)
	cmd.Wait()
	res := result{code: ocf.Code(cmd.ProcessState.ExitCode()), stderr: first + string(rest)}
	if reason, _ := res.reason(); res.code != ocf.ErrGeneric || reason != "start interrupted: waiting 30s: context canceled" {
		t.Errorf("after SIGTERM: exit %s, reason %q\n%s", res.code, reason, res.stderr)
	}
}

// TestDummyAgentMetaDataDTD validates the built agent's metadata with xmllint, reading
// it from stdin as ocf-tester does.
func TestDummyAgentMetaDataDTD(t *testing.T) {
	xmllint, dtd := xmlTools(t)
	agent := dummyAgent(t)
	md, err := exec.Command(agent, "meta-data").Output()
	if err != nil {
		t.Fatalf("meta-data: %v", err)
	}
	cmd := exec.Command(xmllint, "--noout", "--dtdvalid", dtd, "-")
	cmd.Stdin = bytes.NewReader(md)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("xmllint --dtdvalid %s: %v\n%s", dtd, err, out)
	}
}

// TestOCFTester runs resource-agents' own conformance script on the built agent.
func TestOCFTester(t *testing.T) {
	tester, err := exec.LookPath("ocf-tester")
	if err != nil {
		tester = "/usr/sbin/ocf-tester"
		if _, err := os.Stat(tester); err != nil {
			t.Skip("ocf-tester is not installed (Debian package resource-agents)")
		}
	}
	xmlTools(t) // ocf-tester validates the metadata with xmllint and the DTD
	agent := dummyAgent(t)
	cmd := exec.Command(tester, "-n", "test", "-o", "fake=hello", "-o", "password=hunter2", agent)
	cmd.Env = append(os.Environ(), "OCF_ROOT=/usr/lib/ocf", "HA_RSCTMP="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), agent+" passed all tests") {
		t.Errorf("ocf-tester: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "hunter2") {
		t.Errorf("the secret in ocf-tester's output:\n%s", out)
	}
	t.Logf("ocf-tester:\n%s", out)
}
