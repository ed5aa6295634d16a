package cluster

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
)

// snapshot describes files and trees exactly enough to prove they were put back: type,
// permission bits, owner, size, modification time, content hash, link target. One line
// per path, keyed by path.
type snapshot map[string]string

// takeSnapshot records every path under each root (a root that does not exist is
// recorded as absent).
func takeSnapshot(t *testing.T, roots ...string) snapshot {
	t.Helper()
	s := snapshot{}
	for _, root := range roots {
		if _, err := os.Lstat(root); os.IsNotExist(err) {
			s[root] = "absent"
			continue
		}
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			st, err := os.Lstat(path)
			if err != nil {
				return err
			}
			sys := st.Sys().(*syscall.Stat_t)
			line := fmt.Sprintf("%v uid=%d gid=%d size=%d mtime=%d", st.Mode(), sys.Uid, sys.Gid,
				st.Size(), st.ModTime().UnixNano())
			switch {
			case st.Mode()&fs.ModeSymlink != 0:
				target, _ := os.Readlink(path)
				line += " -> " + target
			case st.Mode().IsRegular():
				b, err := os.ReadFile(path)
				if err != nil {
					return err
				}
				sum := sha256.Sum256(b)
				line += " sha256=" + hex.EncodeToString(sum[:])
			}
			s[path] = line
			return nil
		})
		if err != nil {
			t.Fatalf("snapshot of %s: %v", root, err)
		}
	}
	return s
}

// diff lists the differences between two snapshots, one per line.
func (s snapshot) diff(other snapshot) string {
	keys := map[string]bool{}
	for k := range s {
		keys[k] = true
	}
	for k := range other {
		keys[k] = true
	}
	var sorted []string
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	var b strings.Builder
	for _, k := range sorted {
		a, ok1 := s[k]
		o, ok2 := other[k]
		switch {
		case !ok1:
			fmt.Fprintf(&b, "+ %s: %s\n", k, o)
		case !ok2:
			fmt.Fprintf(&b, "- %s: %s\n", k, a)
		case a != o:
			fmt.Fprintf(&b, "~ %s:\n    before %s\n    after  %s\n", k, a, o)
		}
	}
	return b.String()
}
