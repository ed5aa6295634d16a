package fence

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Where an agent's Backend is looked up.
const (
	// LibexecDir is where the packages install backends.
	LibexecDir = "/usr/libexec/novaha"
	// LibexecDirEnv names the environment variable that, when set, is the only
	// directory searched: for tests, and for builds run where they were built.
	LibexecDirEnv = "NOVAHA_LIBEXECDIR"
	// BuildLibexecDir is the directory beside the agent's executable that holds the
	// backends of a build that is not installed (make build: bin/ and bin/libexec/).
	BuildLibexecDir = "libexec"
	// installedLibexecDir is LibexecDir relative to the agent's executable's directory,
	// for an installation under another prefix (/usr/local/sbin, /usr/local/libexec/novaha).
	installedLibexecDir = "../libexec/novaha"
)

// deviceAction reports whether the action needs the device, and so its Backend when
// the agent has one. Everything else (metadata, man page, help, validate-all, option
// errors) is answered from the parameter table alone.
func deviceAction(action string) bool {
	switch action {
	case "metadata", "manpage", "validate-all":
		return false
	}
	return true
}

// backendPath finds the agent's Backend: in $NOVAHA_LIBEXECDIR alone when it is set;
// otherwise beside the running executable (the real one, symbolic links resolved) in
// BuildLibexecDir (a build run in place) or in ../libexec/novaha (installed under any
// prefix), then in LibexecDir.
func (a *Agent) backendPath(getenv func(string) string) (string, error) {
	var dirs []string
	if d := getenv(LibexecDirEnv); d != "" {
		dirs = []string{d}
	} else {
		if exe, err := os.Executable(); err == nil {
			here := filepath.Dir(exe)
			dirs = append(dirs, filepath.Join(here, BuildLibexecDir), filepath.Join(here, installedLibexecDir))
		}
		if !slices.Contains(dirs, LibexecDir) {
			dirs = append(dirs, LibexecDir)
		}
	}
	tried := make([]string, 0, len(dirs))
	for _, d := range dirs {
		p := filepath.Join(d, a.Backend)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
		tried = append(tried, p)
	}
	return "", fmt.Errorf("Failed: %s cannot carry out this action: its backend %s is not installed (looked for %s)",
		a.Name, a.Backend, strings.Join(tried, ", "))
}

// handOff runs the device action in the Backend, with the same arguments and the stdin
// bytes already read (nil: stdin was not read, it is passed on as it is).
func (a *Agent) handOff(ctx context.Context, inv Invocation, stdin []byte) int {
	path, err := a.backendPath(inv.Getenv)
	if err != nil {
		fmt.Fprintln(inv.Stderr, err)
		return ExitFailure
	}
	// A SIGTERM that came while stdin was read would be lost by the exec.
	if ctx.Err() != nil {
		fmt.Fprintln(inv.Stderr, "Failed: interrupted")
		return ExitFailure
	}
	argv := append([]string{path}, inv.Args...)
	run := inv.Exec
	if run == nil {
		run = func(path string, argv []string, stdin []byte) (int, error) {
			return runChild(ctx, inv, path, argv, stdin)
		}
	}
	code, err := run(path, argv, stdin)
	if err != nil {
		// Never the stdin: it holds the password.
		fmt.Fprintf(inv.Stderr, "Failed: running %s: %v\n", path, err)
		return ExitFailure
	}
	return code
}

// ExecBackend replaces the process with the backend at path (execve): the same PID, so
// that Pacemaker's timeout, which kills the agent's process, still reaches the action.
// The stdin bytes the agent consumed become the backend's stdin again through an
// anonymous memory file, never through argv or the environment, since they carry the
// password. It returns only when the replacement failed.
func ExecBackend(path string, argv []string, stdin []byte) (int, error) {
	if stdin != nil {
		if err := replaceStdin(stdin); err != nil {
			return ExitFailure, err
		}
	}
	err := syscall.Exec(path, argv, os.Environ())
	return ExitFailure, err
}

// replaceStdin makes file descriptor 0 an in-memory file holding data, read from the
// start.
func replaceStdin(data []byte) error {
	fd, err := unix.MemfdCreate("stdin", unix.MFD_CLOEXEC)
	if err != nil {
		return fmt.Errorf("creating a memory file for stdin: %w", err)
	}
	f := os.NewFile(uintptr(fd), "stdin")
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("writing stdin to a memory file: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("rewinding the stdin memory file: %w", err)
	}
	// dup3 without O_CLOEXEC: the copy on 0 survives the exec, the original does not.
	if err := unix.Dup3(int(f.Fd()), 0, 0); err != nil {
		return fmt.Errorf("replacing stdin: %w", err)
	}
	return nil
}

// runChild runs the backend as a child process with the invocation's streams: for
// agents run in-process (tests), which cannot be replaced.
func runChild(ctx context.Context, inv Invocation, path string, argv []string, stdin []byte) (int, error) {
	cmd := exec.CommandContext(ctx, path)
	cmd.Args = argv
	cmd.Stdin = inv.Stdin
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	cmd.Stdout, cmd.Stderr = inv.Stdout, inv.Stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() >= 0 {
		return ee.ExitCode(), nil
	}
	if err != nil {
		return ExitFailure, err
	}
	return ExitSuccess, nil
}
