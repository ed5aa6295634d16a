package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// paths names every place on the machine that the harness reads or changes. Production
// code uses defaultPaths; the unit tests point it at a temporary tree.
type paths struct {
	corosyncConf string   // /etc/corosync/corosync.conf
	pacemakerDir string   // /var/lib/pacemaker: the CIB and the scheduler's inputs
	pacemakerSub []string // its subdirectories that hold state (moved aside for a run)
	corosyncDir  string   // /var/lib/corosync: ringid files
	runtime      []string // runtime files the daemons create (removed if they did)
	journalDir   string   // the harness's own fixed directory: lock, journal, saved originals
	procDir      string   // /proc
	shmDir       string   // /dev/shm: libqb's shared-memory IPC files
}

// defaultPaths returns the real locations on a Debian machine.
func defaultPaths() paths {
	return paths{
		corosyncConf: "/etc/corosync/corosync.conf",
		pacemakerDir: "/var/lib/pacemaker",
		pacemakerSub: []string{"cib", "pengine", "blackbox", "cores"},
		corosyncDir:  "/var/lib/corosync",
		runtime:      []string{"/run/crm", "/run/corosync.pid"},
		journalDir:   "/var/lib/novaha-testcluster",
		procDir:      "/proc",
		shmDir:       "/dev/shm",
	}
}

// Item kinds: what the harness does with a path for the duration of a run.
const (
	// kindMove: the original (file or directory) is moved aside into the journal
	// directory and put back at the end; the run gets a fresh, empty one.
	kindMove = "move"
	// kindMeta: only the owner, mode and modification time are recorded and restored
	// (Pacemaker chowns /var/lib/pacemaker to hacluster when it starts).
	kindMeta = "meta"
	// kindCreated: a runtime file or directory; removed at the end if it did not exist
	// before the run, left alone if it did.
	kindCreated = "created"
)

// item is one path the harness changes, with what is needed to put it back.
type item struct {
	Path    string      `json:"path"`
	Kind    string      `json:"kind"`
	Existed bool        `json:"existed"`
	Dir     bool        `json:"dir,omitempty"`
	Mode    fs.FileMode `json:"mode,omitempty"`
	UID     int         `json:"uid,omitempty"`
	GID     int         `json:"gid,omitempty"`
	ModTime time.Time   `json:"mtime,omitempty"`
	Backup  string      `json:"backup,omitempty"` // where kindMove keeps the original
}

// journal is the crash-safe record of a run: written before the harness changes anything
// on the machine, removed only after everything was put back. A journal found by Start
// belongs to a run that crashed (the lock tells a live run from a dead one).
type journal struct {
	RunID    string    `json:"run_id"`
	OwnerPID int       `json:"owner_pid"`
	Started  time.Time `json:"started"`
	StateDir string    `json:"state_dir"`
	Items    []item    `json:"items"`
	// Procs are the daemons the run started, for the record; what makes a process
	// provably ours is the marker in its environment (see markerEnv).
	Procs []procID `json:"procs,omitempty"`
}

func (p paths) journalFile() string { return filepath.Join(p.journalDir, "journal.json") }
func (p paths) lockFile() string    { return filepath.Join(p.journalDir, "lock") }
func (p paths) savedDir(runID string) string {
	return filepath.Join(p.journalDir, "saved", runID)
}

// forgetRun removes a run's saved originals (already put back) and its journal. The
// lock file stays: unlinking a flock file while another process waits on it would let
// a third one lock a new file and run beside the waiter.
func forgetRun(p paths, runID string) error {
	if err := os.RemoveAll(p.savedDir(runID)); err != nil {
		return fmt.Errorf("removing the saved originals of run %s: %w", runID, err)
	}
	os.Remove(filepath.Dir(p.savedDir(runID))) // only if empty
	if err := os.Remove(p.journalFile()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing the journal of run %s: %w", runID, err)
	}
	return nil
}

// readJournal returns the journal left on disk, or nil if there is none.
func readJournal(p paths) (*journal, error) {
	b, err := os.ReadFile(p.journalFile())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading journal: %w", err)
	}
	var j journal
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("parsing journal %s: %w", p.journalFile(), err)
	}
	return &j, nil
}

// writeJournal replaces the journal atomically and durably.
func writeJournal(p paths, j *journal) error {
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding journal: %w", err)
	}
	if err := os.MkdirAll(p.journalDir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", p.journalDir, err)
	}
	if err := writeFileAtomic(p.journalFile(), b, 0o600); err != nil {
		return fmt.Errorf("writing journal: %w", err)
	}
	return nil
}

// writeFileAtomic writes data to a temporary file beside path, syncs it and renames it
// over path, so a crash leaves either the old or the new content.
func writeFileAtomic(path string, data []byte, mode fs.FileMode) error {
	tmp := path + ".novaha-tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	_, werr := f.Write(data)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Chmod(tmp, mode); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// planItems records the current state of every path the run will change. Nothing is
// changed yet.
func planItems(p paths, runID string) ([]item, error) {
	var items []item
	add := func(path, kind string, backupName string) error {
		it := item{Path: path, Kind: kind}
		st, err := os.Lstat(path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return fmt.Errorf("inspecting %s: %w", path, err)
		default:
			it.Existed = true
			it.Dir = st.IsDir()
			it.Mode = st.Mode()
			it.ModTime = st.ModTime()
			if sys, ok := st.Sys().(*syscall.Stat_t); ok {
				it.UID, it.GID = int(sys.Uid), int(sys.Gid)
			}
			if kind == kindMove {
				it.Backup = filepath.Join(p.savedDir(runID), backupName)
			}
		}
		items = append(items, it)
		return nil
	}
	// Order matters: restore walks the list backwards, so parents' metadata is put
	// back after their children.
	if err := add(p.pacemakerDir, kindMeta, ""); err != nil {
		return nil, err
	}
	for _, sub := range p.pacemakerSub {
		if err := add(filepath.Join(p.pacemakerDir, sub), kindMove, "pacemaker-"+sub); err != nil {
			return nil, err
		}
	}
	if err := add(p.corosyncDir, kindMove, "corosync-state"); err != nil {
		return nil, err
	}
	if err := add(p.corosyncConf, kindMove, "corosync.conf"); err != nil {
		return nil, err
	}
	for _, r := range p.runtime {
		if err := add(r, kindCreated, ""); err != nil {
			return nil, err
		}
	}
	return items, nil
}

// saveItems moves the originals aside, in order. It stops at the first error; the
// caller then restores, which copes with a partly done save.
func saveItems(p paths, runID string, items []item) error {
	if err := os.MkdirAll(p.savedDir(runID), 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", p.savedDir(runID), err)
	}
	for _, it := range items {
		if it.Kind != kindMove || !it.Existed {
			continue
		}
		if err := moveTree(it.Path, it.Backup); err != nil {
			return fmt.Errorf("saving %s: %w", it.Path, err)
		}
	}
	return nil
}

// restoreItems puts the machine back as planItems found it: it removes what the run
// created and moves the originals back. It is idempotent and safe after a crash at any
// point of saveItems or of an earlier restoreItems: an original whose backup is missing
// was either never moved or already put back, and is left alone.
func restoreItems(items []item) error {
	var errs []error
	for i := len(items) - 1; i >= 0; i-- {
		it := items[i]
		switch it.Kind {
		case kindMove:
			if !it.Existed {
				if err := os.RemoveAll(it.Path); err != nil {
					errs = append(errs, fmt.Errorf("removing %s: %w", it.Path, err))
				}
				continue
			}
			if _, err := os.Lstat(it.Backup); err != nil {
				if !errors.Is(err, fs.ErrNotExist) {
					errs = append(errs, fmt.Errorf("inspecting backup of %s: %w", it.Path, err))
				}
				continue
			}
			if err := os.RemoveAll(it.Path); err != nil {
				errs = append(errs, fmt.Errorf("removing the run's %s: %w", it.Path, err))
				continue
			}
			if err := moveTree(it.Backup, it.Path); err != nil {
				errs = append(errs, fmt.Errorf("restoring %s from %s: %w", it.Path, it.Backup, err))
			}
		case kindMeta:
			if !it.Existed {
				if err := os.RemoveAll(it.Path); err != nil {
					errs = append(errs, fmt.Errorf("removing %s: %w", it.Path, err))
				}
				continue
			}
			if err := applyMeta(it.Path, it.Mode, it.UID, it.GID, it.ModTime); err != nil {
				errs = append(errs, fmt.Errorf("restoring owner and mode of %s: %w", it.Path, err))
			}
		case kindCreated:
			if it.Existed {
				continue
			}
			if err := os.RemoveAll(it.Path); err != nil {
				errs = append(errs, fmt.Errorf("removing %s: %w", it.Path, err))
			}
		}
	}
	return errors.Join(errs...)
}

// freshState gives the run empty state directories (same owner and mode as the
// originals, or hacluster:haclient 0750 for Pacemaker's if there were none), the
// generated corosync.conf and the fresh CIB.
func freshState(p paths, items []item, corosyncConf, cibXML []byte, hacluster owner) error {
	byPath := map[string]item{}
	for _, it := range items {
		byPath[it.Path] = it
	}
	mkdir := func(path string, def fs.FileMode, uid, gid int) error {
		it := byPath[path]
		mode, u, g := def, uid, gid
		if it.Existed && it.Dir {
			mode, u, g = it.Mode.Perm(), it.UID, it.GID
		}
		if err := os.MkdirAll(path, mode); err != nil {
			return fmt.Errorf("creating %s: %w", path, err)
		}
		return applyMeta(path, mode|fs.ModeDir, u, g, time.Time{})
	}
	if err := mkdir(p.pacemakerDir, 0o755, 0, 0); err != nil {
		return err
	}
	for _, sub := range p.pacemakerSub {
		if err := mkdir(filepath.Join(p.pacemakerDir, sub), 0o750, hacluster.uid, hacluster.gid); err != nil {
			return err
		}
	}
	if err := mkdir(p.corosyncDir, 0o755, 0, 0); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p.corosyncConf), 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", filepath.Dir(p.corosyncConf), err)
	}
	if err := writeFileAtomic(p.corosyncConf, corosyncConf, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", p.corosyncConf, err)
	}
	cib := filepath.Join(p.pacemakerDir, "cib", "cib.xml")
	if err := writeFileAtomic(cib, cibXML, 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", cib, err)
	}
	if err := os.Lchown(cib, hacluster.uid, hacluster.gid); err != nil {
		return fmt.Errorf("chown %s: %w", cib, err)
	}
	return nil
}

// applyMeta sets owner, permission bits and (unless zero) the modification time.
func applyMeta(path string, mode fs.FileMode, uid, gid int, mtime time.Time) error {
	if err := os.Lchown(path, uid, gid); err != nil {
		return err
	}
	if mode&fs.ModeSymlink == 0 {
		if err := os.Chmod(path, mode.Perm()|mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)); err != nil {
			return err
		}
		if !mtime.IsZero() {
			if err := os.Chtimes(path, mtime, mtime); err != nil {
				return err
			}
		}
	}
	return nil
}

// moveTree renames src to dst, copying (owner, mode and times preserved) and then
// removing src when they are on different file systems.
func moveTree(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	err := os.Rename(src, dst)
	if err == nil || !errors.Is(err, syscall.EXDEV) {
		return err
	}
	os.RemoveAll(dst)
	if err := copyTree(src, dst); err != nil {
		os.RemoveAll(dst)
		return fmt.Errorf("copying across file systems: %w", err)
	}
	return os.RemoveAll(src)
}

// copyTree copies a file, symlink or directory tree with owners, modes and times (but
// a symlink's own times: the standard library has no lutimes).
func copyTree(src, dst string) error {
	st, err := os.Lstat(src)
	if err != nil {
		return err
	}
	uid, gid := -1, -1
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		uid, gid = int(sys.Uid), int(sys.Gid)
	}
	switch {
	case st.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		if err := os.Symlink(target, dst); err != nil {
			return err
		}
		return os.Lchown(dst, uid, gid)
	case st.IsDir():
		if err := os.Mkdir(dst, 0o700); err != nil {
			return err
		}
		entries, err := os.ReadDir(src)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if err := copyTree(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())); err != nil {
				return err
			}
		}
	case st.Mode().IsRegular():
		in, err := os.Open(src)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		if err := out.Close(); err != nil {
			return err
		}
	default:
		return fmt.Errorf("%s: cannot copy a %v", src, st.Mode().Type())
	}
	return applyMeta(dst, st.Mode(), uid, gid, st.ModTime())
}

// lock is the machine-wide lock that makes one harness run at a time: `go test ./...`
// runs packages in parallel, and two clusters cannot share corosync.conf. The kernel
// drops a flock when its holder dies, so a held lock means a live run.
type lock struct{ f *os.File }

// acquireLock waits (polling, until ctx ends) for the machine-wide lock and writes the
// holder's PID into it for the benefit of the next waiter's error message.
func acquireLock(ctx context.Context, p paths, logf func(string, ...any)) (*lock, error) {
	if err := os.MkdirAll(p.journalDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating %s: %w", p.journalDir, err)
	}
	f, err := os.OpenFile(p.lockFile(), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening lock: %w", err)
	}
	waiting := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", p.lockFile(), err)
		}
		holder := readHolder(p.lockFile())
		if !waiting {
			logf("another test cluster is running (%s); waiting for it", holder)
			waiting = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("another test cluster holds %s (%s): %w", p.lockFile(), holder, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
	if err := f.Truncate(0); err != nil {
		f.Close()
		return nil, fmt.Errorf("writing lock: %w", err)
	}
	if _, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0); err != nil {
		f.Close()
		return nil, fmt.Errorf("writing lock: %w", err)
	}
	return &lock{f: f}, nil
}

// readHolder describes the process named in the lock file.
func readHolder(path string) string {
	b, _ := os.ReadFile(path)
	pid := strings.TrimSpace(string(b))
	if pid == "" {
		return "holder unknown"
	}
	cmd, _ := os.ReadFile(filepath.Join("/proc", pid, "cmdline"))
	return fmt.Sprintf("held by pid %s %s", pid, strings.TrimSpace(strings.ReplaceAll(string(cmd), "\x00", " ")))
}

// release drops the lock. It is safe to call more than once.
func (l *lock) release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // closing the last descriptor drops the flock
	l.f = nil
	if err != nil {
		return fmt.Errorf("releasing lock: %w", err)
	}
	return nil
}
