// Package daemon runs a long-lived program detached from the agent that starts it, and
// finds and stops it again from later, separate runs of the agent, through a pid file:
// the supervision an OCF agent needs when no service manager runs the program (hosts
// without systemd, containers, test sandboxes).
//
// The program runs in its own session (setsid), with stdin on /dev/null (or a file the
// caller gives, such as a pipe holding its secrets) and stdout and
// stderr appended to its own log file, so that it outlives the agent and never writes
// to the agent's pipes. The pid file is written atomically (a temporary file renamed).
// A pid is believed only while /proc/<pid>/cmdline is still the program's command line
// and the process is not a zombie: a stale pid file whose pid the kernel has given to
// another program is never taken for the daemon, and that program is never signalled.
package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Spec describes one daemon.
type Spec struct {
	// Command is the program, an absolute path or a name looked up in PATH; Args its
	// arguments (without argv[0]).
	Command string
	Args    []string
	// PidFile is where the pid is kept; LogFile receives stdout and stderr (appended).
	PidFile, LogFile string
	// Env is the program's environment; nil means the agent's own.
	Env []string
	// Stdin is the program's standard input; nil means /dev/null. A pipe the agent
	// has filled hands the program what must not be in its argv or environment (a
	// password): its contents sit in the pipe until the program reads them.
	Stdin *os.File
	// ProcRoot is /proc; tests may point it elsewhere.
	ProcRoot string
}

func (s Spec) proc() string {
	if s.ProcRoot == "" {
		return "/proc"
	}
	return s.ProcRoot
}

// path is Command resolved as exec resolves it.
func (s Spec) path() (string, error) {
	p, err := exec.LookPath(s.Command)
	if err != nil {
		return "", fmt.Errorf("%s: %w", s.Command, err)
	}
	if abs, err := filepath.Abs(p); err == nil {
		p = abs
	}
	return p, nil
}

// ErrNotFound is wrapped when Command cannot be found or run.
var ErrNotFound = errors.New("program not found")

// Installed checks that Command can be run.
func (s Spec) Installed() error {
	if _, err := s.path(); err != nil {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return nil
}

// Start starts the daemon and writes its pid file; it returns the pid. It does not
// check whether the daemon already runs: call Running first.
func Start(s Spec) (int, error) {
	path, err := s.path()
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	if err := os.MkdirAll(filepath.Dir(s.LogFile), 0o755); err != nil {
		return 0, fmt.Errorf("log directory: %w", err)
	}
	logf, err := os.OpenFile(s.LogFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return 0, fmt.Errorf("opening the log file: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(path, s.Args...)
	cmd.Env = s.Env
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = logf, logf
	if s.Stdin != nil {
		cmd.Stdin = s.Stdin // an *os.File: handed over as is, no copying goroutine
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("starting %s: %w", path, err)
	}
	pid := cmd.Process.Pid
	// The agent exits long before the daemon: nothing here waits for it.
	_ = cmd.Process.Release()
	s.awaitExec(pid, execWait)
	if err := WriteFile(s.PidFile, []byte(strconv.Itoa(pid)+"\n")); err != nil {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		return 0, fmt.Errorf("writing the pid file: %w", err)
	}
	return pid, nil
}

// StartWithInput starts the daemon as Start does, with input on its standard input: a
// pipe filled before the program starts, so that what must not be in its argv or
// environment (a password) reaches it without a file on disk. input must fit in a
// pipe's buffer (64 KiB on Linux): it is written at once.
func StartWithInput(s Spec, input []byte) (int, error) {
	if len(input) > maxInput {
		return 0, fmt.Errorf("input of %d bytes: more than the %d a pipe holds", len(input), maxInput)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return 0, fmt.Errorf("pipe: %w", err)
	}
	defer pr.Close()
	_, werr := pw.Write(input)
	if cerr := pw.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return 0, fmt.Errorf("writing to the pipe: %w", werr)
	}
	s.Stdin = pr
	return Start(s)
}

// maxInput is what StartWithInput writes into a pipe before the reader exists: the
// smallest pipe buffer Linux gives (16 pages of 4 KiB).
const maxInput = 64 << 10

// execWait bounds how long Start waits for the new process's command line.
const execWait = 5 * time.Second

// awaitExec waits until pid shows a command line, or is gone, or wait has passed.
// exec has returned in the child once cmd.Start returns, but the kernel sets the new
// program's argument area a moment later (create_elf_tables runs after the close-on-exec
// descriptors Go waits on are closed): a /proc/<pid>/cmdline read in between is empty,
// and Running, called right after Start, would take the new daemon for another program.
func (s Spec) awaitExec(pid int, wait time.Duration) {
	dir := filepath.Join(s.proc(), strconv.Itoa(pid))
	deadline := time.Now().Add(wait)
	for pause := 100 * time.Microsecond; ; pause = min(2*pause, 20*time.Millisecond) {
		if raw, err := os.ReadFile(filepath.Join(dir, "cmdline")); err != nil || len(raw) > 0 {
			return
		}
		if !live(dir) || time.Now().After(deadline) {
			return
		}
		time.Sleep(pause)
	}
}

// live reports whether the process of a /proc/<pid> directory exists and is not a zombie.
func live(dir string) bool {
	stat, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return false
	}
	// pid (comm) state ...: comm may contain spaces and parentheses.
	i := bytes.LastIndexByte(stat, ')')
	return i >= 0 && i+2 < len(stat) && stat[i+2] != 'Z' && stat[i+2] != 'X'
}

// WriteFile replaces name's contents atomically (a temporary file renamed), creating its
// directory: a reader, such as a later run of the agent, sees the old contents or the
// new, never a part.
func WriteFile(name string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), name)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
	}
	return err
}

// Running returns the daemon's pid when the pid file names a live process that is the
// daemon, and 0 otherwise (no pid file, a dead or zombie process, or a pid reused by
// another program). stale reports a pid file that names no running daemon.
func Running(s Spec) (pid int, stale bool, err error) {
	b, err := os.ReadFile(s.PidFile)
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("reading the pid file: %w", err)
	}
	pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, true, nil
	}
	if s.is(pid) {
		return pid, false, nil
	}
	return 0, true, nil
}

// is reports whether pid is a live process running the daemon's command line.
func (s Spec) is(pid int) bool {
	dir := filepath.Join(s.proc(), strconv.Itoa(pid))
	if !live(dir) {
		return false
	}
	raw, err := os.ReadFile(filepath.Join(dir, "cmdline"))
	if err != nil {
		return false
	}
	argv := strings.Split(strings.TrimSuffix(string(raw), "\x00"), "\x00")
	path, err := s.path()
	if err != nil {
		return false
	}
	return matches(argv, path, s.Args)
}

// matches reports whether argv runs path with args: path is argv[0], or argv[1] when
// path is a script run by its interpreter (#!), and args follow it exactly.
func matches(argv []string, path string, args []string) bool {
	for i := 0; i < 2 && i < len(argv); i++ {
		if argv[i] == path && slices.Equal(argv[i+1:], args) {
			return true
		}
	}
	return false
}

// Stop stops the daemon: SIGTERM to its process group, SIGKILL once grace has passed
// (or the context is about to end), then it waits for the process to be gone and
// removes the pid file. A daemon that is not running is not an error. Stop fails only
// when the process is still there at ctx's end.
func Stop(ctx context.Context, s Spec, grace time.Duration) error {
	pid, stale, err := Running(s)
	if err != nil {
		return err
	}
	if pid == 0 {
		if stale {
			_ = os.Remove(s.PidFile)
		}
		return nil
	}
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	_ = syscall.Kill(pid, syscall.SIGTERM) // in case it left its process group
	killAt := time.Now().Add(grace)
	if dl, ok := ctx.Deadline(); ok && dl.Add(-time.Second).Before(killAt) {
		killAt = dl.Add(-time.Second)
	}
	killed := false
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for s.is(pid) {
		if !killed && !time.Now().Before(killAt) {
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			_ = syscall.Kill(pid, syscall.SIGKILL)
			killed = true
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("process %d is still running after SIGKILL: %w", pid, ctx.Err())
		case <-tick.C:
		}
	}
	if err := os.Remove(s.PidFile); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing the pid file: %w", err)
	}
	return nil
}
