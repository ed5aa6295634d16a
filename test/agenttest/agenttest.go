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
)

// Build is the agent whose main package is the test's own directory.
type Build struct {
	Name string   // the binary's name, e.g. fence_ipmi
	Tags []string // build tags, e.g. libvirt_dlopen

	once sync.Once
	path string
	err  error
}

// Path builds the agent on first use and returns the binary's path; a failed build
// fails the test.
func (b *Build) Path(t testing.TB) string {
	t.Helper()
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", b.Name+"-test")
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(dir, b.Name)
		args := []string{"build", "-o", b.path}
		if len(b.Tags) > 0 {
			args = append(args, "-tags", strings.Join(b.Tags, ","))
		}
		out, err := exec.Command("go", append(args, ".")...).CombinedOutput()
		if err != nil {
			b.err = fmt.Errorf("go build %s: %v\n%s", b.Name, err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// Remove deletes the build; call it from TestMain after m.Run.
func (b *Build) Remove() {
	if b.path != "" {
		os.RemoveAll(filepath.Dir(b.path))
	}
}
