package fence

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The hand-off to a Backend is tested with this test binary in three roles: the test
// itself; the front (an agent with a Backend, run by Main, when FENCE_TEST_FRONT=1); and
// the backend (when it is run under the backend's name), which reports what it received.
const testBackend = "fence_test-backend"

func TestMain(m *testing.M) {
	switch {
	case filepath.Base(os.Args[0]) == testBackend:
		os.Exit(fakeBackend())
	case os.Getenv("FENCE_TEST_FRONT") == "1":
		frontAgent().Main()
	}
	os.Exit(m.Run())
}

func frontAgent() *Agent {
	a := testAgent(nil, nil)
	a.Open = nil
	a.Backend = testBackend
	return a
}

// backendReport is what the fake backend received.
type backendReport struct {
	PID       int
	Argv      []string
	Stdin     string
	StdinFile string // what fd 0 is
	Env       []string
}

// fakeBackend prints a backendReport and exits with $FENCE_TEST_BACKEND_EXIT.
func fakeBackend() int {
	in, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "reading stdin:", err)
		return 99
	}
	fd0, _ := os.Readlink("/proc/self/fd/0")
	if err := json.NewEncoder(os.Stdout).Encode(backendReport{os.Getpid(), os.Args, string(in), fd0, os.Environ()}); err != nil {
		return 99
	}
	code, _ := strconv.Atoi(os.Getenv("FENCE_TEST_BACKEND_EXIT"))
	return code
}

// libexecWithBackend is a directory holding the fake backend (this test binary).
func libexecWithBackend(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.Symlink(self, filepath.Join(dir, testBackend)); err != nil {
		t.Fatal(err)
	}
	return dir
}

type frontRun struct {
	code           int
	pid            int
	stdout, stderr string
	report         *backendReport
}

// runFront runs this test binary as the front, as Pacemaker runs an agent.
func runFront(t *testing.T, libexec string, stdin string, env []string, args ...string) frontRun {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, self, args...)
	cmd.Args[0] = "fence_test"
	cmd.Env = append(os.Environ(), append([]string{"FENCE_TEST_FRONT=1", LibexecDirEnv + "=" + libexec}, env...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	r := frontRun{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("running the front: %v", err)
	}
	r.pid = cmd.Process.Pid
	var rep backendReport
	if json.Unmarshal(out.Bytes(), &rep) == nil && rep.PID != 0 {
		r.report = &rep
	}
	return r
}

// The front replaces itself with the backend: the same PID, the same arguments, and the
// stdin it consumed, byte for byte, through a memory file (never argv or the
// environment, since it carries the password); the backend's exit code is the agent's.
func TestBackendExec(t *testing.T) {
	libexec := libexecWithBackend(t)
	backendPath := filepath.Join(libexec, testBackend)
	// More than a pipe holds (64 KiB), so that a replay through a pipe would block.
	stdin := "# from pacemaker-fenced\naction=reboot\nplug=vm1\nip=10.0.0.1\npassword=Hunter2-secret\n" +
		strings.Repeat("# padding "+strings.Repeat("x", 90)+"\n", 1500) + "nodename=compute-1\n"

	r := runFront(t, libexec, stdin, nil)
	if r.code != 0 || r.report == nil {
		t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	rep := r.report
	if rep.PID != r.pid {
		t.Errorf("the backend ran as PID %d, the front was %d: not replaced in place", rep.PID, r.pid)
	}
	if rep.Stdin != stdin {
		t.Errorf("the backend's stdin differs from the front's (%d bytes, want %d)", len(rep.Stdin), len(stdin))
	}
	if !slices.Equal(rep.Argv, []string{backendPath}) {
		t.Errorf("argv %q, want just the backend's path", rep.Argv)
	}
	if !strings.HasPrefix(rep.StdinFile, "/memfd:") {
		t.Errorf("stdin is %s, want a memory file", rep.StdinFile)
	}
	for _, s := range append(rep.Argv, rep.Env...) {
		if strings.Contains(s, "Hunter2") {
			t.Errorf("the password is in the backend's argv or environment: %q", s)
		}
	}
	if r.stderr != "" {
		t.Errorf("the front wrote to stderr: %q", r.stderr)
	}

	// Options as arguments: stdin was not read, and is passed on untouched.
	r = runFront(t, libexec, "not read by the front\n", nil, "-o", "status", "-n", "vm1", "--ip", "10.0.0.1")
	if r.code != 0 || r.report == nil {
		t.Fatalf("with arguments: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if want := []string{backendPath, "-o", "status", "-n", "vm1", "--ip", "10.0.0.1"}; !slices.Equal(r.report.Argv, want) {
		t.Errorf("argv %q, want %q", r.report.Argv, want)
	}
	if r.report.Stdin != "not read by the front\n" || r.report.PID != r.pid {
		t.Errorf("with arguments: stdin %q, PID %d (front %d)", r.report.Stdin, r.report.PID, r.pid)
	}

	// The backend's exit code is the agent's: 2 is "Status: OFF", 1 a failure.
	for _, code := range []int{1, 2} {
		r = runFront(t, libexec, "action=status\nplug=vm1\nip=10.0.0.1\n", []string{fmt.Sprintf("FENCE_TEST_BACKEND_EXIT=%d", code)})
		if r.code != code || r.report == nil {
			t.Errorf("backend exit %d: the agent exited %d (stdout %q, stderr %q)", code, r.code, r.stdout, r.stderr)
		}
	}
}

// metadata, the man page, help, validate-all and option errors never reach the backend.
func TestBackendNotForInformationalActions(t *testing.T) {
	libexec := libexecWithBackend(t)
	env := []string{"FENCE_TEST_BACKEND_EXIT=7"}
	for _, tc := range []struct {
		stdin string
		args  []string
		code  int
		out   string
	}{
		{"", []string{"-o", "metadata"}, 0, `<resource-agent name="fence_test"`},
		{"action=meta-data\n", nil, 0, `<resource-agent name="fence_test"`},
		{"", []string{"-o", "manpage"}, 0, ".TH"},
		{"", []string{"--help"}, 0, "Usage"},
		{"action=validate-all\nip=10.0.0.1\n", nil, 0, ""},
		{"action=validate-all\n", nil, 1, ""},
		{"", []string{"-o", "status", "--no-such-flag"}, 1, ""},
		{"action=explode\nip=10.0.0.1\n", nil, 1, ""},
	} {
		r := runFront(t, libexec, tc.stdin, env, tc.args...)
		if r.report != nil || r.code != tc.code || !strings.Contains(r.stdout, tc.out) {
			t.Errorf("%q %q: exit %d (want %d), backend ran: %v\nstdout %q\nstderr %q", tc.stdin, tc.args, r.code, tc.code,
				r.report != nil, r.stdout, r.stderr)
		}
	}
}

// A missing backend is one line and exit 1 (never Go's 2, "Status: OFF"), and does not
// show the stdin.
func TestBackendMissing(t *testing.T) {
	empty := t.TempDir()
	// Not executable counts as missing.
	if err := os.WriteFile(filepath.Join(empty, testBackend), []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, action := range []string{"status", "off", "reboot", "monitor"} {
		r := runFront(t, empty, "action="+action+"\nplug=vm1\nip=10.0.0.1\npassword=Hunter2-secret\n", nil)
		if r.code != 1 || r.stdout != "" || strings.Count(r.stderr, "\n") != 1 ||
			!strings.Contains(r.stderr, testBackend+" is not installed") || !strings.Contains(r.stderr, filepath.Join(empty, testBackend)) {
			t.Errorf("%s without a backend: exit %d, stdout %q, stderr %q", action, r.code, r.stdout, r.stderr)
		}
		if strings.Contains(r.stderr, "Hunter2") {
			t.Errorf("the password is in %q", r.stderr)
		}
	}
}

// Without $NOVAHA_LIBEXECDIR the backend is looked up beside the agent's executable
// (libexec/, a build run in place; ../libexec/novaha, an installation), then in LibexecDir.
func TestBackendPath(t *testing.T) {
	a := frontAgent()
	noEnv := func(string) string { return "" }
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	beside := filepath.Join(filepath.Dir(self), BuildLibexecDir, testBackend)
	if _, err := os.Stat(beside); err == nil {
		t.Skipf("%s exists", beside)
	}
	_, err = a.backendPath(noEnv)
	installed := filepath.Join(filepath.Dir(self), "..", "libexec", "novaha", testBackend)
	if err == nil || !strings.Contains(err.Error(), beside+", "+installed+", "+filepath.Join(LibexecDir, testBackend)) {
		t.Errorf("lookup without the environment: %v", err)
	}
	dir := libexecWithBackend(t)
	p, err := a.backendPath(func(k string) string { return map[string]string{LibexecDirEnv: dir}[k] })
	if err != nil || p != filepath.Join(dir, testBackend) {
		t.Errorf("lookup in $%s: %q, %v", LibexecDirEnv, p, err)
	}
}

// Run in-process (no Exec given), the agent runs its backend as a child with the
// invocation's streams; given an Exec, it calls it with the path, argv and stdin.
func TestBackendInProcess(t *testing.T) {
	dir := libexecWithBackend(t)
	getenv := func(k string) string { return map[string]string{LibexecDirEnv: dir}[k] }
	t.Setenv("FENCE_TEST_BACKEND_EXIT", "2")
	stdin := "action=status\nplug=vm1\nip=10.0.0.1\npassword=pw\n"
	var out, errb bytes.Buffer
	code := frontAgent().Run(context.Background(), Invocation{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb, Getenv: getenv})
	var rep backendReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil || code != 2 || rep.Stdin != stdin {
		t.Errorf("child backend: exit %d, report %+v (%v), stderr %q", code, rep, err, errb.String())
	}

	var got struct {
		path  string
		argv  []string
		stdin []byte
	}
	code = frontAgent().Run(context.Background(), Invocation{
		Args: []string{"-o", "off", "-n", "vm1", "-a", "h"}, Stdin: strings.NewReader("x"), Stdout: io.Discard, Stderr: &errb, Getenv: getenv,
		Exec: func(path string, argv []string, stdin []byte) (int, error) {
			got.path, got.argv, got.stdin = path, argv, stdin
			return 0, errors.New("exec format error")
		},
	})
	if code != 1 || got.path != filepath.Join(dir, testBackend) || len(got.argv) != 7 || got.stdin != nil ||
		!strings.Contains(errb.String(), "exec format error") {
		t.Errorf("failing Exec: exit %d, %+v, stderr %q", code, got, errb.String())
	}
}

func TestBackendDeclaration(t *testing.T) {
	if err := frontAgent().Check(); err != nil {
		t.Errorf("front: %v", err)
	}
	both := frontAgent()
	both.Open = testAgent(nil, nil).Open
	if err := both.Check(); err == nil || !strings.Contains(err.Error(), "both") {
		t.Errorf("Open and Backend: %v", err)
	}
	dir := frontAgent()
	dir.Backend = "../sbin/x"
	if err := dir.Check(); err == nil || !strings.Contains(err.Error(), "file name") {
		t.Errorf("a backend with a directory: %v", err)
	}
	neither := frontAgent()
	neither.Backend = ""
	if err := neither.Check(); err == nil || !strings.Contains(err.Error(), "no Open") {
		t.Errorf("neither Open nor Backend: %v", err)
	}
}
