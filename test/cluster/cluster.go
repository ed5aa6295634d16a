// Package cluster runs a real single-node Corosync/Pacemaker cluster on 127.0.0.1 for
// the project's tests and demo, the way these machines allow it: as root, without
// systemd, with policy-rc.d forbidding service starts.
//
// Start takes over the machine's cluster configuration for the duration of a run:
//
//   - /etc/corosync/corosync.conf is moved aside and replaced by a one-node
//     configuration; Stop puts the original back byte for byte (same inode, owner, mode
//     and times), or removes the file if there was none;
//   - /var/lib/pacemaker/{cib,pengine,blackbox,cores} and /var/lib/corosync are moved
//     aside the same way, so each run starts from a fresh CIB (with dc-deadtime=2s, so
//     the DC election does not wait its default 20 s) and leaves no history behind;
//   - corosync -f and pacemakerd run in the background, each in its own session.
//
// Everything the run changes is first recorded in a journal under
// /var/lib/novaha-testcluster, and a machine-wide flock there lets one run at a time
// proceed (go test runs packages in parallel: a second Start waits for the first Stop,
// as long as its context allows). If a test binary dies without calling Stop, the next
// Start finds the journal, kills the processes of the dead run and restores the machine
// before it starts anew. The processes of a run are identified by an environment variable
// (NOVAHA_TESTCLUSTER_RUN) that every Pacemaker daemon inherits from pacemakerd, which
// finds them even though they setsid() themselves and may outlive their parent. Cluster
// daemons without that variable belong to someone else: Start refuses to run and names
// them.
//
// Never fence the cluster's only node: Pacemaker then shuts down for good and takes
// corosync with it. Fence a fictitious node instead (say compute-1), mapped to a device
// through pcmk_host_list; it need not be a cluster member for stonith_admin --reboot to
// run the device's agent.
package cluster

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Options configures a test cluster. The zero value is usable.
type Options struct {
	// NodeName is the name of the single node, bound to 127.0.0.1. Default "node1".
	NodeName string
	// ClusterName is corosync's cluster_name. Default "novaha-test".
	ClusterName string
	// StateDir receives the run's files: the generated corosync.conf and CIB, the daemons'
	// logs (corosync.log, pacemaker.log) and anything tests want to put there (fence_dummy
	// status files, for instance). Pacemaker's unprivileged daemons write their log there,
	// so user hacluster must be able to enter it: t.TempDir() cannot be used (its parent
	// is mode 0700). Default: a new directory under /var/tmp, which Stop removes unless
	// KeepStateDir is set. A StateDir given here is created if needed and never removed.
	StateDir string
	// KeepStateDir keeps a default StateDir after Stop, for its logs.
	KeepStateDir bool
	// Properties are cluster properties written into the fresh CIB before Pacemaker
	// starts. dc-deadtime defaults to 2s; stonith-enabled to true.
	Properties map[string]string
	// Log receives the harness's progress messages and every command it runs, with its
	// duration. Nil discards them.
	Log io.Writer
	// StartTimeout bounds Start's wait for the cluster to come online (on top of ctx).
	// Default 60 s.
	StartTimeout time.Duration
	// StopTimeout bounds the graceful shutdown of pacemakerd before its processes are
	// killed. Default 30 s.
	StopTimeout time.Duration
	// CommandTimeout is the deadline of Run, Pcs and WaitIdle when their context has
	// none. Default 60 s.
	CommandTimeout time.Duration
}

// withDefaults fills in the defaults; it copies Properties rather than changing the
// caller's map.
func (o Options) withDefaults() Options {
	if o.NodeName == "" {
		o.NodeName = "node1"
	}
	if o.ClusterName == "" {
		o.ClusterName = "novaha-test"
	}
	props := map[string]string{"dc-deadtime": "2s", "stonith-enabled": "true"}
	for k, v := range o.Properties {
		props[k] = v
	}
	o.Properties = props
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 60 * time.Second
	}
	if o.StopTimeout <= 0 {
		o.StopTimeout = 30 * time.Second
	}
	if o.CommandTimeout <= 0 {
		o.CommandTimeout = 60 * time.Second
	}
	return o
}

// Timings are the durations Start and Stop measured.
type Timings struct {
	// CorosyncReady: from Start to corosync's "ready to provide service".
	CorosyncReady time.Duration
	// Online: from Start until crm_mon showed the node online and a DC elected.
	Online time.Duration
	// Stop: the whole of Stop, from SIGTERM to pacemakerd to the restored machine.
	Stop time.Duration
}

// Cluster is a running single-node cluster. Its methods may be called from several
// goroutines.
type Cluster struct {
	opts        Options
	paths       paths
	runID       string
	stateDir    string
	ownStateDir bool
	hacluster   owner

	logMu sync.Mutex // serializes writes to Options.Log

	mu         sync.Mutex
	lock       *lock
	journal    *journal
	corosync   *daemon
	pacemakerd *daemon
	timings    Timings
	stopped    bool
}

// daemon is a background process started by the harness.
type daemon struct {
	name string
	cmd  *exec.Cmd
	id   procID
	log  string        // where its stdout and stderr go
	done chan struct{} // closed once Wait returned
	err  error         // Wait's result, valid after done
}

// Start brings up a single-node cluster and returns once the node is online and a DC is
// elected, as `crm_mon -1 --output-as=xml` reports it (polled every 250 ms, each call
// with a 5 s deadline: crm_mon, like crmadmin -D, can hang while the daemons start).
//
// Start first waits for the machine-wide lock (as long as ctx allows: give it a
// deadline), then cleans up after any earlier run that did not stop (see Recover), and
// refuses to run beside cluster daemons it did not start. On failure it undoes
// everything it did; the error includes the tail of the daemons' logs.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	return start(ctx, opts, defaultPaths())
}

func start(ctx context.Context, opts Options, p paths) (_ *Cluster, err error) {
	t0 := time.Now()
	opts = opts.withDefaults()
	if os.Geteuid() != 0 {
		return nil, errors.New("cluster: starting Corosync and Pacemaker needs root")
	}
	for _, bin := range []string{"corosync", "pacemakerd", "crm_mon", "cibadmin", "crm_attribute", "crm_resource"} {
		if _, err := exec.LookPath(bin); err != nil {
			return nil, fmt.Errorf("cluster: %s not found (run test/deps.sh): %w", bin, err)
		}
	}
	conf, err := renderCorosyncConf(opts.ClusterName, opts.NodeName)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	hac, err := lookupHacluster()
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	// c is not the named result: a failing `return nil, err` must not hide it from the
	// deferred clean-up below.
	c := &Cluster{opts: opts, paths: p, runID: newRunID(), hacluster: hac}

	c.lock, err = acquireLock(ctx, p, c.logf)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	defer func() {
		if err != nil {
			// Undo whatever was done; teardown also releases the lock.
			cctx, cancel := context.WithTimeout(context.Background(), opts.StopTimeout+30*time.Second)
			defer cancel()
			if terr := c.teardown(cctx); terr != nil {
				err = errors.Join(err, fmt.Errorf("cluster: cleaning up after the failed start: %w", terr))
			}
		}
	}()

	if err := recoverCrashed(p, c.logf); err != nil {
		return nil, fmt.Errorf("cluster: recovering from an earlier run: %w", err)
	}
	if foreign, err := foreignDaemons(p.procDir); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	} else if len(foreign) > 0 {
		return nil, fmt.Errorf("cluster: refusing to start: cluster daemons not started by this "+
			"harness are running: %s; stop them first (they are not ours to kill)", describe(foreign))
	}

	if err := c.makeStateDir(); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	if err := os.WriteFile(filepath.Join(c.stateDir, "corosync.conf"), conf, 0o644); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	cib, err := buildCIB(ctx, c.stateDir, opts.Properties, c.logf)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}

	// From here on the machine changes: journal first, then the changes.
	items, err := planItems(p, c.runID)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	j := &journal{RunID: c.runID, OwnerPID: os.Getpid(), Started: t0, StateDir: c.stateDir, Items: items}
	if err := writeJournal(p, j); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	c.journal = j
	if err := saveItems(p, c.runID, items); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	if err := freshState(p, items, conf, cib, hac); err != nil {
		return nil, fmt.Errorf("cluster: preparing a fresh cluster state: %w", err)
	}
	c.logf("run %s: wrote %s (node %s on 127.0.0.1), fresh CIB; state in %s",
		c.runID, p.corosyncConf, opts.NodeName, c.stateDir)

	sctx, cancel := context.WithTimeout(ctx, opts.StartTimeout)
	defer cancel()
	if err := c.startCorosync(sctx); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	c.timings.CorosyncReady = time.Since(t0)
	if err := c.startPacemaker(); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	if err := c.waitOnline(sctx); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	c.timings.Online = time.Since(t0)

	// Record every process of the run, for the journal and the log.
	if ps, err := markedProcs(p.procDir, c.runID); err == nil {
		for _, pr := range ps {
			j.Procs = append(j.Procs, pr.procID)
		}
		if err := writeJournal(p, j); err != nil {
			return nil, fmt.Errorf("cluster: %w", err)
		}
	}
	c.logf("online after %v (corosync ready after %v): %v", c.timings.Online.Round(time.Millisecond),
		c.timings.CorosyncReady.Round(time.Millisecond), j.Procs)
	return c, nil
}

// Recover cleans up after harness runs that ended without Stop (a test binary killed by
// its -timeout, say), without starting anything: it kills their processes and restores
// corosync.conf and the state directories from their journal. Start does the same by
// itself; Recover is for callers that want the machine's own state first (to compare it
// with what Stop leaves) or a clean machine with no cluster at all. It waits for a live
// run to stop, as Start does.
func Recover(ctx context.Context, log io.Writer) error {
	c := &Cluster{opts: Options{Log: log}.withDefaults()}
	p := defaultPaths()
	l, err := acquireLock(ctx, p, c.logf)
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	err = recoverCrashed(p, c.logf)
	if rerr := l.release(); rerr != nil {
		err = errors.Join(err, rerr)
	}
	if err != nil {
		return fmt.Errorf("cluster: recovering from an earlier run: %w", err)
	}
	return nil
}

// newRunID returns a unique, sortable run identifier.
func newRunID() string {
	b := make([]byte, 4)
	rand.Read(b)
	return time.Now().UTC().Format("20060102T150405") + "-" + hex.EncodeToString(b)
}

// logf writes one progress line to Options.Log.
func (c *Cluster) logf(format string, args ...any) {
	c.logMu.Lock()
	defer c.logMu.Unlock()
	fmt.Fprintf(c.opts.Log, "cluster: "+format+"\n", args...)
}

// recoverCrashed cleans up after a run that ended without Stop: it kills the processes
// of any harness run (the caller holds the lock, so no live run owns them) and restores
// what the dead run's journal says it changed.
func recoverCrashed(p paths, logf func(string, ...any)) error {
	j, err := readJournal(p)
	if err != nil {
		return err
	}
	before, err := markedProcs(p.procDir, "")
	if err != nil {
		return err
	}
	if len(before) > 0 {
		logf("killing processes left by an earlier run that did not stop: %s", describe(before))
		killed, err := killMarked(p.procDir, "")
		if err != nil {
			return fmt.Errorf("killing the processes of an earlier run: %w", err)
		}
		if err := removeShm(p.shmDir, killed); err != nil {
			logf("removing stale libqb files: %v", err)
		}
	}
	if j == nil {
		return nil
	}
	logf("run %s (pid %d, started %s) did not stop: restoring what it changed; its files stay in %s",
		j.RunID, j.OwnerPID, j.Started.Format(time.RFC3339), j.StateDir)
	if err := restoreItems(j.Items); err != nil {
		return fmt.Errorf("restoring after run %s: %w", j.RunID, err)
	}
	return forgetRun(p, j.RunID)
}

// makeStateDir creates (or checks) the state directory and the pacemaker log in it.
func (c *Cluster) makeStateDir() error {
	if c.opts.StateDir == "" {
		dir, err := os.MkdirTemp("/var/tmp", "novaha-cluster-")
		if err != nil {
			return fmt.Errorf("creating the state directory: %w", err)
		}
		c.stateDir, c.ownStateDir = dir, true
	} else {
		dir, err := filepath.Abs(c.opts.StateDir)
		if err != nil {
			return fmt.Errorf("state directory: %w", err)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("creating the state directory: %w", err)
		}
		c.stateDir = dir
	}
	if err := os.Chmod(c.stateDir, 0o755); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	if err := checkReachable(c.stateDir, c.hacluster); err != nil {
		return err
	}
	logPath := filepath.Join(c.stateDir, "pacemaker.log")
	f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o660)
	if err != nil {
		return fmt.Errorf("creating the pacemaker log: %w", err)
	}
	f.Close()
	if err := os.Chown(logPath, c.hacluster.uid, c.hacluster.gid); err != nil {
		return fmt.Errorf("chown the pacemaker log: %w", err)
	}
	return nil
}

// daemonEnv is the environment of corosync and pacemakerd: a minimal one, as an init
// system would give (this process's PATH may put pyenv's python3 first, which cannot
// run Debian's fence agents), plus the run marker.
func (c *Cluster) daemonEnv(extra ...string) []string {
	env := []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"LANG=C.UTF-8",
		"HOME=/root",
		"PYTHONWARNINGS=ignore",
		markerEnv + "=" + c.runID,
	}
	return append(env, extra...)
}

// spawn starts a daemon in its own session with output to a file in the state dir.
func (c *Cluster) spawn(name, logName string, env []string, args ...string) (*daemon, error) {
	logPath := filepath.Join(c.stateDir, logName)
	out, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", logPath, err)
	}
	defer out.Close() // the child has its own copy
	cmd := exec.Command(name, args...)
	cmd.Env = env
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	d := &daemon{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	d.id = procID{PID: cmd.Process.Pid, Name: name}
	if pr, ok := readProc(c.paths.procDir, d.id.PID); ok {
		d.id.StartTime = pr.StartTime
	}
	go func() {
		d.err = cmd.Wait()
		close(d.done)
	}()
	c.logf("started %s", d.id)
	return d, nil
}

// exited reports whether the daemon has ended, and how.
func (d *daemon) exited() (bool, error) {
	select {
	case <-d.done:
		return true, d.err
	default:
		return false, nil
	}
}

// startCorosync starts `corosync -f` and waits until it is ready to provide service.
func (c *Cluster) startCorosync(ctx context.Context) error {
	d, err := c.spawn("corosync", "corosync.log", c.daemonEnv(), "-f")
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.corosync = d
	c.mu.Unlock()
	for {
		if b, err := os.ReadFile(d.log); err == nil && bytes.Contains(b, []byte("ready to provide service")) {
			return nil
		}
		if done, werr := d.exited(); done {
			return fmt.Errorf("corosync exited during start-up (%v):\n%s", werr, tail(d.log, 20))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for corosync to be ready: %w\n%s", ctx.Err(), tail(d.log, 20))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// startPacemaker starts pacemakerd, logging to the state directory and not to syslog.
func (c *Cluster) startPacemaker() error {
	d, err := c.spawn("pacemakerd", "pacemakerd.out", c.daemonEnv(
		"PCMK_logfile="+filepath.Join(c.stateDir, "pacemaker.log"),
		"PCMK_logfacility=none",
	))
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.pacemakerd = d
	c.mu.Unlock()
	return nil
}

// waitOnline polls crm_mon until the node is online and a DC exists. Each poll has its
// own 5 s deadline (crm_mon, like crmadmin -D, can hang while the daemons start).
func (c *Cluster) waitOnline(ctx context.Context) error {
	var last error
	for {
		for _, d := range []*daemon{c.corosync, c.pacemakerd} {
			if done, werr := d.exited(); done {
				return fmt.Errorf("%s exited during start-up (%v)\n%s", d.name, werr, c.logTails(20))
			}
		}
		st, err := c.pollStatus(ctx)
		if err == nil && st.Ready(c.opts.NodeName) {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("not ready: pacemakerd %q, DC %q, nodes %+v", st.PacemakerdState, st.DC, st.Nodes)
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for node %s to be online with a DC: %w (last: %v)\n%s",
				c.opts.NodeName, ctx.Err(), last, c.logTails(20))
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// pollStatus runs crm_mon once with a 5 s deadline.
func (c *Cluster) pollStatus(ctx context.Context) (*Status, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := runCommand(ctx, c.cmdEnv(), nil, "crm_mon", "-1", "--output-as=xml")
	if err != nil {
		return nil, err
	}
	return parseStatus([]byte(out))
}

// Stop shuts the cluster down and puts the machine back as Start found it: SIGTERM to
// pacemakerd (which stops its daemons in order) and, once it has exited, to corosync;
// SIGKILL for whatever of the run is left after Options.StopTimeout (or when ctx ends);
// then it checks that no process of the run survives, restores corosync.conf and
// Pacemaker's and Corosync's state directories, removes the default state directory
// and releases the machine-wide lock. Stop is idempotent.
func (c *Cluster) Stop(ctx context.Context) error {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return nil
	}
	c.stopped = true
	c.mu.Unlock()
	t0 := time.Now()
	err := c.teardown(ctx)
	c.mu.Lock()
	c.timings.Stop = time.Since(t0)
	c.mu.Unlock()
	if err != nil {
		return fmt.Errorf("cluster: stop: %w", err)
	}
	c.logf("stopped in %v; machine restored", time.Since(t0).Round(time.Millisecond))
	return nil
}

// teardown stops the processes and restores the machine; it copes with any stage of a
// failed Start.
func (c *Cluster) teardown(ctx context.Context) error {
	var errs []error
	c.mu.Lock()
	pcmk, coro := c.pacemakerd, c.corosync
	c.mu.Unlock()

	gctx, cancel := context.WithTimeout(ctx, c.opts.StopTimeout)
	if pcmk != nil {
		c.stopDaemon(gctx, pcmk)
		// pacemakerd waits for its daemons before it exits; make sure of it anyway.
		c.waitRunGone(gctx, "pacemaker")
	}
	cancel()
	if coro != nil {
		cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		c.stopDaemon(cctx, coro)
		cancel()
	}
	killed, err := killMarked(c.paths.procDir, c.runID)
	if len(killed) > 0 {
		c.logf("killed leftover processes of the run: %v", killed)
	}
	if err != nil {
		errs = append(errs, err)
	}
	// Reap our two direct children if they were killed above.
	for _, d := range []*daemon{pcmk, coro} {
		if d != nil {
			select {
			case <-d.done:
			case <-time.After(5 * time.Second):
				errs = append(errs, fmt.Errorf("%s did not exit", d.id))
			}
		}
	}
	if left, err := markedProcs(c.paths.procDir, c.runID); err != nil {
		errs = append(errs, err)
	} else if len(left) > 0 {
		errs = append(errs, fmt.Errorf("processes of the run are still alive: %s", describe(left)))
	}
	var ours []procID
	for _, d := range []*daemon{pcmk, coro} {
		if d != nil {
			ours = append(ours, d.id)
		}
	}
	if c.journal != nil {
		ours = append(ours, c.journal.Procs...)
	}
	if err := removeShm(c.paths.shmDir, append(ours, killed...)); err != nil {
		errs = append(errs, fmt.Errorf("removing libqb files: %w", err))
	}

	if c.journal != nil {
		if err := restoreItems(c.journal.Items); err != nil {
			// Keep the journal: the next Start retries the restore.
			errs = append(errs, fmt.Errorf("restoring the machine (journal kept in %s): %w", c.paths.journalDir, err))
		} else if err := forgetRun(c.paths, c.runID); err != nil {
			errs = append(errs, err)
		}
	}
	if c.ownStateDir && !c.opts.KeepStateDir {
		if err := os.RemoveAll(c.stateDir); err != nil {
			errs = append(errs, fmt.Errorf("removing %s: %w", c.stateDir, err))
		}
	}
	if err := c.lock.release(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// stopDaemon sends SIGTERM and waits for the exit until ctx ends, then sends SIGKILL.
func (c *Cluster) stopDaemon(ctx context.Context, d *daemon) {
	if done, _ := d.exited(); done {
		return
	}
	t0 := time.Now()
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
		c.logf("%s exited %v after SIGTERM (%v)", d.id, time.Since(t0).Round(time.Millisecond), d.err)
	case <-ctx.Done():
		c.logf("%s did not exit within %v of SIGTERM: SIGKILL", d.id, time.Since(t0).Round(time.Millisecond))
		_ = d.cmd.Process.Kill()
	}
}

// waitRunGone waits until no process of the run whose name starts with prefix is alive.
func (c *Cluster) waitRunGone(ctx context.Context, prefix string) {
	ps, err := markedProcs(c.paths.procDir, c.runID)
	if err != nil {
		return
	}
	var ids []procID
	for _, p := range ps {
		if strings.HasPrefix(p.Name, prefix) {
			ids = append(ids, p.procID)
		}
	}
	waitGone(ctx, c.paths.procDir, ids)
}

// commandContext applies Options.CommandTimeout to a context without a deadline.
func (c *Cluster) commandContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, c.opts.CommandTimeout)
}

// cmdEnv is the environment of the CLIs that Run starts: this process's, with the
// Python fence agents' DeprecationWarnings silenced and no stray CIB_file.
func (c *Cluster) cmdEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "CIB_file=") || strings.HasPrefix(kv, markerEnv+"=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "PYTHONWARNINGS=ignore")
}

// Run runs any command (stonith_admin, crm_mon, crm_attribute, cibadmin ...) against
// the live cluster and returns its standard output. The command gets ctx's deadline, or
// Options.CommandTimeout if ctx has none; on timeout its whole process group is killed.
// A failure is a *CommandError carrying the exit code and both outputs.
func (c *Cluster) Run(ctx context.Context, name string, args ...string) (string, error) {
	ctx, cancel := c.commandContext(ctx)
	defer cancel()
	return runCommand(ctx, c.cmdEnv(), c.logf, name, args...)
}

// Pcs runs pcs against the live CIB (there is no pcsd). Without pcsd some resource
// creations need --force (ocf:pacemaker:remote, for one); pass it in args.
func (c *Cluster) Pcs(ctx context.Context, args ...string) (string, error) {
	return c.Run(ctx, "pcs", args...)
}

// WaitIdle waits until the cluster has settled: no pending or in-flight actions
// (crm_resource --wait), within ctx's deadline or Options.CommandTimeout.
func (c *Cluster) WaitIdle(ctx context.Context) error {
	ctx, cancel := c.commandContext(ctx)
	defer cancel()
	dl, _ := ctx.Deadline()
	secs := int(time.Until(dl).Seconds())
	if secs < 1 {
		secs = 1
	}
	if _, err := runCommand(ctx, c.cmdEnv(), c.logf, "crm_resource", "--wait",
		"--timeout="+strconv.Itoa(secs)+"s"); err != nil {
		return fmt.Errorf("cluster: waiting for the cluster to settle: %w", err)
	}
	return nil
}

// Status returns crm_mon's view of the cluster.
func (c *Cluster) Status(ctx context.Context) (*Status, error) {
	out, err := c.Run(ctx, "crm_mon", "-1", "--output-as=xml")
	if err != nil {
		return nil, fmt.Errorf("cluster: status: %w", err)
	}
	st, err := parseStatus([]byte(out))
	if err != nil {
		return nil, fmt.Errorf("cluster: status: %w", err)
	}
	return st, nil
}

// FenceHistory returns the fencing history of node ("*" for all nodes), failed and
// pending operations included (stonith_admin --history NODE --verbose).
func (c *Cluster) FenceHistory(ctx context.Context, node string) ([]FenceEvent, error) {
	out, err := c.Run(ctx, "stonith_admin", "--history", node, "--verbose", "--output-as=xml")
	if err != nil {
		return nil, fmt.Errorf("cluster: fencing history of %s: %w", node, err)
	}
	evs, err := parseHistory([]byte(out))
	if err != nil {
		return nil, fmt.Errorf("cluster: fencing history of %s: %w", node, err)
	}
	return evs, nil
}

// NodeName is the name of the cluster's node.
func (c *Cluster) NodeName() string { return c.opts.NodeName }

// StateDir is the directory holding the run's files and logs.
func (c *Cluster) StateDir() string { return c.stateDir }

// RunID identifies the run (the value of NOVAHA_TESTCLUSTER_RUN in its daemons).
func (c *Cluster) RunID() string { return c.runID }

// Timings returns what Start (and, once it returned, Stop) measured.
func (c *Cluster) Timings() Timings {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.timings
}

// Processes lists the run's live processes (corosync, pacemakerd, its daemons and any
// fence agent they are running).
func (c *Cluster) Processes() ([]string, error) {
	ps, err := markedProcs(c.paths.procDir, c.runID)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	var out []string
	for _, p := range ps {
		out = append(out, p.procID.String())
	}
	return out, nil
}

// DumpLogs writes the last lines of corosync's and Pacemaker's logs to w, for a failed
// test to show before Stop removes them.
func (c *Cluster) DumpLogs(w io.Writer, lines int) {
	io.WriteString(w, c.logTails(lines))
}

func (c *Cluster) logTails(lines int) string {
	var b strings.Builder
	for _, name := range []string{"corosync.log", "pacemakerd.out", "pacemaker.log"} {
		path := filepath.Join(c.stateDir, name)
		fmt.Fprintf(&b, "--- %s (last %d lines)\n%s", path, lines, tail(path, lines))
	}
	return b.String()
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(%v)\n", err)
	}
	defer f.Close()
	var ring []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		ring = append(ring, sc.Text())
		if len(ring) > n {
			ring = ring[1:]
		}
	}
	if len(ring) == 0 {
		return ""
	}
	return strings.Join(ring, "\n") + "\n"
}

// CommandError is a command that failed: it exited non-zero, was killed, or timed out.
type CommandError struct {
	Args     []string
	ExitCode int // -1 if it did not exit normally (killed, timed out, not started)
	Stdout   string
	Stderr   string
	Err      error
}

// Error renders the command, its exit status and its standard error.
func (e *CommandError) Error() string {
	msg := strings.TrimSpace(e.Stderr)
	if msg == "" {
		msg = strings.TrimSpace(e.Stdout)
	}
	if len(msg) > 2000 {
		msg = msg[:2000] + "..."
	}
	return fmt.Sprintf("%s: %v: %s", strings.Join(e.Args, " "), e.Err, msg)
}

// Unwrap returns the underlying error (an *exec.ExitError, or a context error).
func (e *CommandError) Unwrap() error { return e.Err }

// ExitCode returns the exit code behind err: 0 for nil, the command's exit code for a
// *CommandError, -1 otherwise.
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	var ce *CommandError
	if errors.As(err, &ce) {
		return ce.ExitCode
	}
	return -1
}

// runCommand runs a command in its own process group, killed as a whole when ctx ends.
// logf (if not nil) gets the command line, its result and its duration.
func runCommand(ctx context.Context, env []string, logf func(string, ...any), name string, args ...string) (string, error) {
	t0 := time.Now()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	err := cmd.Run()
	argv := append([]string{name}, args...)
	if logf != nil {
		logf("$ %s  (%v, exit %d)", strings.Join(argv, " "), time.Since(t0).Round(time.Millisecond), cmd.ProcessState.ExitCode())
	}
	if err != nil {
		code := -1
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		}
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", err, ctx.Err())
			code = -1
		}
		return stdout.String(), &CommandError{Args: argv, ExitCode: code, Stdout: stdout.String(), Stderr: stderr.String(), Err: err}
	}
	return stdout.String(), nil
}
