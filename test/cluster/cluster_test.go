package cluster

// Tests that start a real cluster. They take over the machine's corosync.conf and
// Pacemaker's state for their duration, so they run only when asked:
//
//	NOVAHA_CLUSTER_TESTS=1 go test ./test/cluster/
//	go test ./test/cluster/ -cluster

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var clusterFlag = flag.Bool("cluster", false, "run the tests that start a real Corosync/Pacemaker cluster "+
	"(they take over /etc/corosync/corosync.conf and /var/lib/pacemaker while they run)")

// requireCluster skips the test unless cluster tests were asked for.
func requireCluster(t *testing.T) {
	t.Helper()
	if !*clusterFlag && os.Getenv("NOVAHA_CLUSTER_TESTS") != "1" {
		t.Skip("starts a real Corosync/Pacemaker cluster and takes over the machine's " +
			"/etc/corosync/corosync.conf and /var/lib/pacemaker while it runs: " +
			"set NOVAHA_CLUSTER_TESTS=1 or pass -cluster to run it")
	}
	if os.Geteuid() != 0 {
		t.Fatal("cluster tests need root")
	}
	// A crashed earlier run would make the machine's state look like that run's.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := Recover(ctx, testLog{t}); err != nil {
		t.Fatal(err)
	}
}

// machineRoots are the paths a run must leave exactly as it found them.
func machineRoots() []string {
	p := defaultPaths()
	return append([]string{p.corosyncConf, p.pacemakerDir, p.corosyncDir}, p.runtime...)
}

// startForTest starts a cluster and arranges for its logs to be shown if the test fails
// and for it to be stopped at the end, if the test did not stop it itself.
func startForTest(ctx context.Context, t *testing.T) *Cluster {
	t.Helper()
	c, err := Start(ctx, Options{Log: testLog{t}})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Stop(context.Background()); err != nil {
			t.Errorf("Stop (cleanup): %v", err)
		}
	})
	t.Cleanup(func() { // runs first
		if t.Failed() {
			var b strings.Builder
			c.DumpLogs(&b, 40)
			t.Log(b.String())
		}
	})
	return c
}

// assertNoClusterProcess fails if any Corosync/Pacemaker process runs, ours or not, in
// reach of this machine's cluster (the nodes of test/e2e's testbed, isolated, may run).
func assertNoClusterProcess(t *testing.T) {
	t.Helper()
	all, err := scanProcs("/proc")
	if err != nil {
		t.Fatal(err)
	}
	self, _ := readProc("/proc", os.Getpid())
	for _, p := range all {
		if p.State != 'Z' && (p.Marked || isDaemon(p.Name)) && !isolated(self, p) {
			t.Errorf("process left after Stop: %s", describe([]proc{p}))
		}
	}
}

func TestClusterFencing(t *testing.T) {
	requireCluster(t)
	t0 := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	before := takeSnapshot(t, machineRoots()...)

	c := startForTest(ctx, t)
	tOnline := time.Since(t0)

	// The running cluster: our node, online, the DC, with quorum and fencing enabled.
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n, ok := st.Node(c.NodeName())
	if !ok || !n.Online || !n.IsDC || st.DC != c.NodeName() || !st.Quorate || !st.StonithEnabled {
		t.Fatalf("status after Start: %+v", st)
	}
	if conf, err := os.ReadFile(defaultPaths().corosyncConf); err != nil || !strings.Contains(string(conf), "ring0_addr: 127.0.0.1") {
		t.Fatalf("corosync.conf during the run: %v\n%s", err, conf)
	}
	procs, err := c.Processes()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"corosync", "pacemakerd", "pacemaker-based", "pacemaker-fenced",
		"pacemaker-execd", "pacemaker-attrd", "pacemaker-schedulerd", "pacemaker-controld"} {
		if !strings.Contains(strings.Join(procs, " "), want+"[") {
			t.Errorf("%s not among the run's processes %v", want, procs)
		}
	}

	// A fence_dummy device for a fictitious node (never fence the only node). type=file
	// keeps the power state in status_file: "off" after off, "on" after reboot.
	statusFile := filepath.Join(c.StateDir(), "compute-1.status")
	if _, err := c.Pcs(ctx, "stonith", "create", "d1", "fence_dummy", "pcmk_host_list=compute-1",
		"type=file", "status_file="+statusFile); err != nil {
		t.Fatalf("pcs stonith create: %v", err)
	}
	if err := c.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	if out, err := c.Run(ctx, "stonith_admin", "--list-registered"); err != nil || !hasLine(out, "d1") {
		t.Errorf("stonith_admin --list-registered: %v\n%s", err, out)
	}
	if out, err := c.Run(ctx, "stonith_admin", "--list", "compute-1"); err != nil || !hasLine(out, "d1") {
		t.Errorf("stonith_admin --list compute-1: %v\n%s", err, out)
	}
	if st, err = c.Status(ctx); err != nil {
		t.Fatal(err)
	}
	if d1, ok := st.Resource("d1"); !ok || d1.Agent != "stonith:fence_dummy" || !d1.Active || d1.Failed ||
		d1.Role != "Started" || len(d1.Nodes) != 1 || d1.Nodes[0] != c.NodeName() {
		t.Errorf("crm_mon's d1: %+v (found %v)", d1, ok)
	}

	// Reboot, then off ("--fence"), through the cluster.
	tr := time.Now()
	if _, err := c.Run(ctx, "stonith_admin", "--reboot", "compute-1", "--timeout", "30"); ExitCode(err) != 0 {
		t.Fatalf("stonith_admin --reboot compute-1: exit %d: %v", ExitCode(err), err)
	}
	tReboot := time.Since(tr)
	if b, _ := os.ReadFile(statusFile); string(b) != "on" {
		t.Errorf("fence_dummy status after reboot: %q, want on", b)
	}
	to := time.Now()
	if _, err := c.Run(ctx, "stonith_admin", "--fence", "compute-1", "--timeout", "30"); ExitCode(err) != 0 {
		t.Fatalf("stonith_admin --fence compute-1: exit %d: %v", ExitCode(err), err)
	}
	tOff := time.Since(to)
	if b, _ := os.ReadFile(statusFile); string(b) != "off" {
		t.Errorf("fence_dummy status after off: %q, want off", b)
	}
	hist, err := c.FenceHistory(ctx, "compute-1")
	if err != nil {
		t.Fatal(err)
	}
	for _, action := range []string{"reboot", "off"} {
		if !hasEvent(hist, action, "compute-1", "success") {
			t.Errorf("no successful %s of compute-1 in the history %+v", action, hist)
		}
	}
	for _, e := range hist {
		if e.Delegate != c.NodeName() {
			t.Errorf("fenced by %q, not by the device's node: %+v", e.Delegate, e)
		}
	}
	if out, err := c.Run(ctx, "stonith_admin", "--history", "compute-1"); err != nil ||
		!strings.Contains(out, "reboot of compute-1 successful") {
		t.Errorf("stonith_admin --history compute-1 (text): %v\n%s", err, out)
	}

	// Failures come back as exit codes and history entries: a node no device can fence,
	// and a device whose agent fails (fence_dummy type=fail; disable_timeout=false with
	// power_timeout=1 makes it give up after a second instead of looping until
	// Pacemaker's timeout).
	if _, err := c.Run(ctx, "stonith_admin", "--reboot", "compute-9", "--timeout", "10"); ExitCode(err) <= 0 {
		t.Errorf("fencing a node without a device: exit %d (%v), want a failure", ExitCode(err), err)
	} else {
		t.Logf("fencing a node without a device: exit %d: %v", ExitCode(err), err)
	}
	if _, err := c.Pcs(ctx, "stonith", "create", "d2", "fence_dummy", "pcmk_host_list=compute-2",
		"type=fail", "power_timeout=1", "disable_timeout=false"); err != nil {
		t.Fatalf("pcs stonith create d2: %v", err)
	}
	if err := c.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	tf := time.Now()
	if _, err := c.Run(ctx, "stonith_admin", "--reboot", "compute-2", "--timeout", "20"); ExitCode(err) <= 0 {
		t.Errorf("fencing through a failing device: exit %d (%v), want a failure", ExitCode(err), err)
	} else {
		t.Logf("fencing through a failing device: exit %d after %v: %v", ExitCode(err), time.Since(tf).Round(time.Millisecond), err)
	}
	if hist, err := c.FenceHistory(ctx, "compute-2"); err != nil || !hasEvent(hist, "reboot", "compute-2", "failed") {
		t.Errorf("no failed reboot of compute-2 in the history: %+v %v", hist, err)
	}

	// The only node was never fenced and is still there.
	if hist, err := c.FenceHistory(ctx, c.NodeName()); err != nil || len(hist) != 0 {
		t.Errorf("the cluster's own node has a fencing history: %+v %v", hist, err)
	}
	if st, err = c.Status(ctx); err != nil || !st.Ready(c.NodeName()) {
		t.Fatalf("cluster not ready after the fencing tests: %+v %v", st, err)
	}

	// Stop: nothing left, the machine as it was.
	stateDir := c.StateDir()
	ts := time.Now()
	if err := c.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	tStop := time.Since(ts)
	assertNoClusterProcess(t)
	if d := before.diff(takeSnapshot(t, machineRoots()...)); d != "" {
		t.Errorf("machine not restored:\n%s", d)
	}
	if _, err := os.Stat(stateDir); !os.IsNotExist(err) {
		t.Errorf("state directory %s left behind: %v", stateDir, err)
	}
	if _, err := os.Stat(defaultPaths().journalFile()); !os.IsNotExist(err) {
		t.Errorf("journal left behind: %v", err)
	}
	tm := c.Timings()
	t.Logf("timings: corosync ready %v, online %v (measured by the test %v), stonith_admin --reboot %v, "+
		"--fence (off) %v, stop %v (measured by the test %v), whole test %v",
		tm.CorosyncReady.Round(time.Millisecond), tm.Online.Round(time.Millisecond),
		tOnline.Round(time.Millisecond), tReboot.Round(time.Millisecond), tOff.Round(time.Millisecond),
		tm.Stop.Round(time.Millisecond), tStop.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
}

// TestClusterCrashRecovery abandons a running cluster the way a test binary that dies
// would (lock dropped, nothing stopped, nothing restored) and checks that the next
// Start kills the orphans, restores the machine and starts cleanly.
func TestClusterCrashRecovery(t *testing.T) {
	requireCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	before := takeSnapshot(t, machineRoots()...)

	c1, err := Start(ctx, Options{Log: testLog{t}, KeepStateDir: true})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	// The dead run's files stay for inspection; remove them at the end.
	t.Cleanup(func() { os.RemoveAll(c1.StateDir()) })
	if _, err := c1.Pcs(ctx, "property", "set", "cluster-recheck-interval=7min"); err != nil {
		t.Fatalf("pcs property set: %v", err)
	}
	old, err := markedProcs("/proc", c1.RunID())
	if err != nil || len(old) < 8 {
		t.Fatalf("processes of the first run: %s %v", describe(old), err)
	}
	// "Crash": the kernel drops a dead process's flock; nothing else happens.
	if err := c1.lock.release(); err != nil {
		t.Fatal(err)
	}

	var log strings.Builder
	c2, err := Start(ctx, Options{Log: &log})
	t.Log(log.String())
	if err != nil {
		t.Fatalf("Start after a crashed run: %v", err)
	}
	t.Cleanup(func() {
		if err := c2.Stop(context.Background()); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	if !strings.Contains(log.String(), "did not stop") {
		t.Errorf("recovery not reported in the log")
	}
	for _, p := range old {
		if alive("/proc", p.procID) {
			t.Errorf("process of the crashed run still alive: %s", p.procID)
		}
	}
	// A fresh CIB: the crashed run's property is gone.
	if out, err := c2.Run(ctx, "crm_attribute", "--type", "crm_config", "--name", "cluster-recheck-interval",
		"--query", "--quiet"); err == nil && strings.Contains(out, "7min") {
		t.Errorf("the crashed run's CIB survived: %q", out)
	}
	if st, err := c2.Status(ctx); err != nil || !st.Ready(c2.NodeName()) {
		t.Fatalf("second cluster not ready: %+v %v", st, err)
	}
	if err := c2.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	assertNoClusterProcess(t)
	if d := before.diff(takeSnapshot(t, machineRoots()...)); d != "" {
		t.Errorf("machine not restored:\n%s", d)
	}
}

// hasLine reports whether out has a line equal to s (after trimming).
func hasLine(out, s string) bool {
	for _, l := range strings.Split(out, "\n") {
		if strings.TrimSpace(l) == s {
			return true
		}
	}
	return false
}

// hasEvent reports whether the history holds an event with that action, target and status.
func hasEvent(evs []FenceEvent, action, target, status string) bool {
	for _, e := range evs {
		if e.Action == action && e.Target == target && e.Status == status {
			return true
		}
	}
	return false
}

// TestClusterRefusesForeignDaemons: a cluster daemon that the harness did not start
// (here a stand-in named corosync) makes Start refuse, name it, and change nothing.
func TestClusterRefusesForeignDaemons(t *testing.T) {
	requireCluster(t)
	before := takeSnapshot(t, machineRoots()...)
	fake := fakeDaemon(t, "corosync", "")
	time.Sleep(100 * time.Millisecond) // let exec finish, so /proc shows the new image
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := Start(ctx, Options{Log: testLog{t}})
	if err == nil {
		c.Stop(context.Background())
		t.Fatal("Start ran beside a foreign corosync")
	}
	t.Logf("Start: %v", err)
	if want := fmt.Sprintf("corosync[%d]", fake.Process.Pid); !strings.Contains(err.Error(), want) ||
		!strings.Contains(err.Error(), "not started by this harness") {
		t.Errorf("error does not name %s as foreign: %v", want, err)
	}
	if !alive("/proc", procID{PID: fake.Process.Pid, StartTime: startTime(t, fake.Process.Pid)}) {
		t.Error("the foreign process was killed")
	}
	if d := before.diff(takeSnapshot(t, machineRoots()...)); d != "" {
		t.Errorf("machine changed:\n%s", d)
	}
	if _, err := os.Stat(defaultPaths().journalFile()); !os.IsNotExist(err) {
		t.Errorf("journal left behind: %v", err)
	}
}

// TestClusterFailedStartCleansUp: a Start that gives up (here: the node cannot be
// online within one second) stops what it started and restores the machine.
func TestClusterFailedStartCleansUp(t *testing.T) {
	requireCluster(t)
	before := takeSnapshot(t, machineRoots()...)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := Start(ctx, Options{Log: testLog{t}, StartTimeout: time.Second})
	if err == nil {
		c.Stop(context.Background())
		t.Skip("the cluster came online within a second; nothing to test")
	}
	t.Logf("Start: %.300s...", err)
	if !strings.Contains(err.Error(), "waiting for") {
		t.Errorf("unexpected failure: %v", err)
	}
	assertNoClusterProcess(t)
	if d := before.diff(takeSnapshot(t, machineRoots()...)); d != "" {
		t.Errorf("machine not restored:\n%s", d)
	}
	if _, err := os.Stat(defaultPaths().journalFile()); !os.IsNotExist(err) {
		t.Errorf("journal left behind: %v", err)
	}
}
