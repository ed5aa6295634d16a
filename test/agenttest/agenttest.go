// Package agenttest builds an agent's binary for tests that run it as Pacemaker does:
// once per test binary, as make builds it, in a temporary directory removed at the end.
package agenttest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/novaha/novaha/lib/fence"
)

// Build is the agent whose main package is the test's own directory.
type Build struct {
	Name string   // the binary's name, e.g. fence_ipmi
	Tags []string // build tags, e.g. libvirt_dlopen
	// Backend and BackendPkg, for an agent with a fence.Agent Backend: the backend's
	// binary name and its main package (relative to the test's directory), built into
	// libexec/ beside the agent, where the agent finds it as in make's build.
	Backend, BackendPkg string

	once sync.Once
	path string
	err  error
}

// Path builds the agent (and its backend) on first use and returns the agent binary's
// path; a failed build fails the test.
func (b *Build) Path(t testing.TB) string {
	t.Helper()
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", b.Name+"-test")
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(dir, b.Name)
		if b.err = b.build(b.path, "."); b.err == nil && b.Backend != "" {
			b.err = b.build(filepath.Join(dir, fence.BuildLibexecDir, b.Backend), b.BackendPkg)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// LibexecDir builds the agent and returns the directory of its backend, for tests that
// run the agent in-process (fence.LibexecDirEnv).
func (b *Build) LibexecDir(t testing.TB) string {
	return filepath.Join(filepath.Dir(b.Path(t)), fence.BuildLibexecDir)
}

func (b *Build) build(out, pkg string) error {
	args := []string{"build", "-o", out}
	if len(b.Tags) > 0 {
		args = append(args, "-tags", strings.Join(b.Tags, ","))
	}
	if res, err := exec.Command("go", append(args, pkg)...).CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, res)
	}
	return nil
}

// Remove deletes the build; call it from TestMain after m.Run.
func (b *Build) Remove() {
	if b.path != "" {
		os.RemoveAll(filepath.Dir(b.path))
	}
}
