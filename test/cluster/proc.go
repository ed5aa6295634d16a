package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// markerEnv is the environment variable the harness sets on corosync and pacemakerd.
// Every Pacemaker daemon (and every fence agent they run) inherits it, including the
// ones that setsid() themselves or outlive pacemakerd, so it identifies the processes of
// a run for certain, whatever their parent or session. Its value is the run ID.
const markerEnv = "NOVAHA_TESTCLUSTER_RUN"

// isDaemon reports whether name is an executable of a Corosync/Pacemaker stack. Such a
// process without the marker belongs to somebody else.
func isDaemon(name string) bool {
	switch name {
	case "corosync", "pacemakerd", "pacemaker-based", "pacemaker-fenced", "pacemaker-execd",
		"pacemaker-attrd", "pacemaker-schedulerd", "pacemaker-controld",
		"pacemaker-remoted", "pacemaker_remoted":
		return true
	}
	return false
}

// procID names a process without ambiguity: a PID plus its start time (in clock ticks
// since boot), so a recycled PID is never mistaken for the process that had it.
type procID struct {
	PID       int    `json:"pid"`
	StartTime uint64 `json:"start_time"`
	Name      string `json:"name"`
}

// String renders "name[pid]".
func (p procID) String() string { return fmt.Sprintf("%s[%d]", p.Name, p.PID) }

// proc is what the harness reads about a process from /proc.
type proc struct {
	procID
	PPID   int
	State  byte   // R, S, D, Z, ...
	Marker string // value of markerEnv, "" if absent
	Marked bool   // markerEnv present
	// NetNS and MntNS identify its network and mount namespaces ("net:[4026531833]"),
	// "" if unreadable.
	NetNS, MntNS string
}

// parseStat reads the fields the harness needs from /proc/PID/stat. The command name is
// in parentheses and may itself contain spaces and parentheses, so the fields are
// counted from the last ')'.
func parseStat(b []byte) (comm string, state byte, ppid int, start uint64, err error) {
	open := bytes.IndexByte(b, '(')
	end := bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return "", 0, 0, 0, fmt.Errorf("malformed stat %q", b)
	}
	comm = string(b[open+1 : end])
	f := strings.Fields(string(b[end+1:]))
	// f[0] is field 3 (state); field N is f[N-3].
	if len(f) < 20 {
		return "", 0, 0, 0, fmt.Errorf("short stat %q", b)
	}
	state = f[0][0]
	if ppid, err = strconv.Atoi(f[1]); err != nil {
		return "", 0, 0, 0, fmt.Errorf("stat ppid: %w", err)
	}
	if start, err = strconv.ParseUint(f[19], 10, 64); err != nil {
		return "", 0, 0, 0, fmt.Errorf("stat starttime: %w", err)
	}
	return comm, state, ppid, start, nil
}

// readProc reads one process; ok is false if it vanished meanwhile.
func readProc(procDir string, pid int) (p proc, ok bool) {
	dir := filepath.Join(procDir, strconv.Itoa(pid))
	b, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return p, false
	}
	comm, state, ppid, start, err := parseStat(b)
	if err != nil {
		return p, false
	}
	p = proc{procID: procID{PID: pid, StartTime: start, Name: comm}, PPID: ppid, State: state}
	// The full executable name: comm is cut at 15 characters ("pacemaker-sched").
	if exe, err := os.Readlink(filepath.Join(dir, "exe")); err == nil {
		p.Name = filepath.Base(strings.TrimSuffix(exe, " (deleted)"))
	} else if cmd, err := os.ReadFile(filepath.Join(dir, "cmdline")); err == nil && len(cmd) > 0 {
		p.Name = filepath.Base(string(bytes.SplitN(cmd, []byte{0}, 2)[0]))
	}
	p.NetNS, _ = os.Readlink(filepath.Join(dir, "ns", "net"))
	p.MntNS, _ = os.Readlink(filepath.Join(dir, "ns", "mnt"))
	if env, err := os.ReadFile(filepath.Join(dir, "environ")); err == nil {
		prefix := []byte(markerEnv + "=")
		for _, kv := range bytes.Split(env, []byte{0}) {
			if bytes.HasPrefix(kv, prefix) {
				p.Marker, p.Marked = string(kv[len(prefix):]), true
			}
		}
	}
	return p, true
}

// scanProcs lists every process (zombies included: callers decide).
func scanProcs(procDir string) ([]proc, error) {
	entries, err := os.ReadDir(procDir)
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", procDir, err)
	}
	var out []proc
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if p, ok := readProc(procDir, pid); ok {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PID < out[j].PID })
	return out, nil
}

// markedProcs returns the live (non-zombie) processes that carry the marker; with
// runID "" those of any run of the harness.
func markedProcs(procDir, runID string) ([]proc, error) {
	all, err := scanProcs(procDir)
	if err != nil {
		return nil, err
	}
	var out []proc
	for _, p := range all {
		if p.State == 'Z' || !p.Marked || (runID != "" && p.Marker != runID) {
			continue
		}
		out = append(out, p)
	}
	return out, nil
}

// foreignDaemons returns the live cluster daemons that this harness did not start and
// that could meet its cluster. Daemons in both another network namespace and another
// mount namespace (the nodes of a multi-node testbed) cannot: they reach no port,
// socket, configuration or state file of this machine's.
func foreignDaemons(procDir string) ([]proc, error) {
	all, err := scanProcs(procDir)
	if err != nil {
		return nil, err
	}
	self, _ := readProc(procDir, os.Getpid())
	var out []proc
	for _, p := range all {
		if p.State != 'Z' && !p.Marked && isDaemon(p.Name) && !isolated(self, p) {
			out = append(out, p)
		}
	}
	return out, nil
}

// isolated reports whether p runs in both another network namespace and another mount
// namespace than self (the nodes of a multi-node testbed): it reaches no port, socket,
// configuration or state file of this machine's cluster.
func isolated(self, p proc) bool {
	return self.NetNS != "" && self.MntNS != "" && p.NetNS != "" && p.MntNS != "" &&
		p.NetNS != self.NetNS && p.MntNS != self.MntNS
}

// describe renders a process list for messages: "pacemakerd[123] (ppid 1, run X)".
func describe(ps []proc) string {
	var parts []string
	for _, p := range ps {
		s := fmt.Sprintf("%s (ppid %d, state %c", p.procID, p.PPID, p.State)
		if p.Marked {
			s += ", run " + p.Marker
		}
		parts = append(parts, s+")")
	}
	return strings.Join(parts, ", ")
}

// signalProc sends sig to p if the PID still names the same process.
func signalProc(procDir string, p procID, sig syscall.Signal) error {
	cur, ok := readProc(procDir, p.PID)
	if !ok || cur.StartTime != p.StartTime || cur.State == 'Z' {
		return nil // gone, or the PID was recycled
	}
	if err := syscall.Kill(p.PID, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signalling %s: %w", p, err)
	}
	return nil
}

// alive reports whether p still runs (a zombie does not count).
func alive(procDir string, p procID) bool {
	cur, ok := readProc(procDir, p.PID)
	return ok && cur.StartTime == p.StartTime && cur.State != 'Z'
}

// waitGone polls until none of ps is alive or ctx ends; it returns the survivors.
func waitGone(ctx context.Context, procDir string, ps []procID) []procID {
	for {
		var left []procID
		for _, p := range ps {
			if alive(procDir, p) {
				left = append(left, p)
			}
		}
		if len(left) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return left
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// killMarked sends SIGKILL to every live process of the run (any run if runID is "")
// and waits up to five seconds for them to die. It returns what it killed and an error
// naming any survivor.
func killMarked(procDir, runID string) ([]procID, error) {
	ps, err := markedProcs(procDir, runID)
	if err != nil {
		return nil, err
	}
	var ids []procID
	var errs []error
	for _, p := range ps {
		ids = append(ids, p.procID)
		if err := signalProc(procDir, p.procID, syscall.SIGKILL); err != nil {
			errs = append(errs, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if left := waitGone(ctx, procDir, ids); len(left) > 0 {
		errs = append(errs, fmt.Errorf("still alive after SIGKILL: %v", left))
	}
	return ids, errors.Join(errs...)
}

// removeShm deletes libqb's shared-memory IPC files of the given processes. A daemon
// that exits cleanly removes its own; one killed with SIGKILL leaves them behind.
// Names are qb-<server pid>-<client pid>-... and qb-<service>-<pid>-....
func removeShm(shmDir string, pids []procID) error {
	if len(pids) == 0 {
		return nil
	}
	entries, err := os.ReadDir(shmDir)
	if err != nil {
		return fmt.Errorf("listing %s: %w", shmDir, err)
	}
	want := map[string]bool{}
	for _, p := range pids {
		want[strconv.Itoa(p.PID)] = true
	}
	var errs []error
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "qb-") {
			continue
		}
		// Only the two fields after "qb-" name processes; later ones are counters.
		fields := strings.Split(e.Name(), "-")
		if len(fields) > 3 {
			fields = fields[1:3]
		}
		for _, field := range fields {
			if want[field] {
				if err := os.RemoveAll(filepath.Join(shmDir, e.Name())); err != nil {
					errs = append(errs, err)
				}
				break
			}
		}
	}
	return errors.Join(errs...)
}
