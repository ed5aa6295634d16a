package cluster

// Tests of the harness's parts that need neither root nor a cluster; they always run.

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestRenderCorosyncConf(t *testing.T) {
	b, err := renderCorosyncConf("novaha-test", "node1")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"cluster_name: novaha-test", "name: node1", "ring0_addr: 127.0.0.1",
		"provider: corosync_votequorum", "to_syslog: no"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("corosync.conf lacks %q:\n%s", want, b)
		}
	}
	for _, bad := range []string{"", "a b", "x}\nnodelist {", "-x", strings.Repeat("n", 64)} {
		if _, err := renderCorosyncConf("c", bad); err == nil {
			t.Errorf("node name %q accepted", bad)
		}
	}
}

const monXML = `<pacemaker-result api-version="2.25" request="crm_mon -1 --output-as=xml">
  <pacemakerd sys_from="pacemakerd" state="running" last_updated="2026-11-21 23:33:01Z"/>
  <summary>
    <stack type="corosync"/>
    <current_dc present="true" version="2.1.5-a3f44794f94" name="node1" id="1" with_quorum="true" mixed_version="false"/>
    <nodes_configured number="1"/>
    <cluster_options stonith-enabled="true" symmetric-cluster="true" no-quorum-policy="stop"/>
  </summary>
  <nodes>
    <node name="node1" id="1" online="true" standby="false" maintenance="false" unclean="false" is_dc="true" type="member"/>
  </nodes>
  <resources>
    <resource id="d1" resource_agent="stonith:fence_dummy" role="Started" active="true" failed="false" nodes_running_on="1">
      <node name="node1" id="1" cached="true"/>
    </resource>
    <group id="g" number_resources="3">
      <resource id="r1" resource_agent="ocf:pacemaker:Dummy" role="Stopped" active="false" failed="false" nodes_running_on="0"/>
      <resource id="r2" resource_agent="ocf:pacemaker:Dummy" role="Started" active="true" failed="false" nodes_running_on="1" pending="Starting">
        <node name="node1" id="1" cached="true"/>
      </resource>
      <resource id="r3" resource_agent="ocf:pacemaker:Dummy" role="Starting" active="true" failed="false" nodes_running_on="1">
        <node name="node1" id="1" cached="true"/>
      </resource>
    </group>
    <clone id="c-clone" multi_state="false">
      <resource id="c" resource_agent="ocf:pacemaker:Dummy" role="Started" active="true" failed="true" nodes_running_on="1">
        <node name="node1" id="1" cached="true"/>
      </resource>
    </clone>
  </resources>
  <status code="0" message="OK"/>
</pacemaker-result>`

func TestParseStatus(t *testing.T) {
	st, err := parseStatus([]byte(monXML))
	if err != nil {
		t.Fatal(err)
	}
	if st.DC != "node1" || !st.Quorate || !st.StonithEnabled || st.PacemakerdState != "running" {
		t.Errorf("summary: %+v", st)
	}
	if !st.Ready("node1") || st.Ready("node2") {
		t.Errorf("Ready: node1 %v node2 %v", st.Ready("node1"), st.Ready("node2"))
	}
	d1, ok := st.Resource("d1")
	if !ok || d1.Agent != "stonith:fence_dummy" || !d1.Active || d1.Role != "Started" ||
		len(d1.Nodes) != 1 || d1.Nodes[0] != "node1" {
		t.Errorf("d1: %+v", d1)
	}
	if r1, ok := st.Resource("r1"); !ok || r1.Active {
		t.Errorf("r1 (in a group): %+v %v", r1, ok)
	}
	if r2, ok := st.Resource("r2"); !ok || !r2.Active || r2.Pending != "Starting" {
		t.Errorf("r2 (start pending): %+v %v", r2, ok)
	}
	// Pacemaker 2.1.5 shows a pending start as the role (crm_mon XML).
	if r3, ok := st.Resource("r3"); !ok || !r3.Active || r3.Role != "Starting" {
		t.Errorf("r3 (start pending, 2.1.5): %+v %v", r3, ok)
	}
	if d1.Pending != "" {
		t.Errorf("d1 pending %q", d1.Pending)
	}
	if c, ok := st.Resource("c"); !ok || !c.Failed {
		t.Errorf("c (in a clone): %+v %v", c, ok)
	}
	// No DC yet: not ready, even with the node online.
	noDC := strings.Replace(monXML, `present="true"`, `present="false"`, 1)
	if st, err := parseStatus([]byte(noDC)); err != nil || st.Ready("node1") || st.DC != "" {
		t.Errorf("without DC: %+v %v", st, err)
	}
	if _, err := parseStatus([]byte("crm_mon: Error: cluster is not available on this node")); err == nil {
		t.Error("garbage parsed")
	}
}

func TestParseHistory(t *testing.T) {
	out := `<pacemaker-result api-version="2.25" request="stonith_admin --history * --verbose --output-as=xml">
  <list name="fencing history" count="2">
    <fence_event action="reboot" target="compute-2" client="stonith_admin.22260" origin="node1" status="failed" exit-reason="Fence agent did not complete within 20s" delegate="node1" completed="2026-11-21 23:35:31Z"/>
    <fence_event action="off" target="compute-1" client="stonith_admin.22245" origin="node1" status="success" delegate="node1" completed="2026-11-21 23:35:08Z"/>
  </list>
  <status code="0" message="OK"/>
</pacemaker-result>`
	evs, err := parseHistory([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 {
		t.Fatalf("events: %+v", evs)
	}
	if e := evs[0]; e.Action != "reboot" || e.Target != "compute-2" || e.Status != "failed" ||
		!strings.Contains(e.ExitReason, "did not complete") {
		t.Errorf("first: %+v", e)
	}
	if e := evs[1]; e.Action != "off" || e.Status != "success" || e.Delegate != "node1" {
		t.Errorf("second: %+v", e)
	}
}

func TestParseStat(t *testing.T) {
	stat := "4242 (a (weird) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10"
	comm, state, ppid, start, err := parseStat([]byte(stat))
	if err != nil {
		t.Fatal(err)
	}
	if comm != "a (weird) name" || state != 'S' || ppid != 1 || start != 987654 {
		t.Errorf("got %q %c %d %d", comm, state, ppid, start)
	}
	if _, _, _, _, err := parseStat([]byte("4242 (x) S 1")); err == nil {
		t.Error("short stat accepted")
	}
}

// fakePaths lays out a miniature machine in a temporary directory.
func fakePaths(root string) paths {
	return paths{
		corosyncConf: filepath.Join(root, "etc/corosync/corosync.conf"),
		pacemakerDir: filepath.Join(root, "var/lib/pacemaker"),
		pacemakerSub: []string{"cib", "pengine", "blackbox", "cores"},
		corosyncDir:  filepath.Join(root, "var/lib/corosync"),
		runtime:      []string{filepath.Join(root, "run/crm"), filepath.Join(root, "run/corosync.pid")},
		journalDir:   filepath.Join(root, "var/lib/novaha-testcluster"),
		procDir:      "/proc",
		shmDir:       filepath.Join(root, "dev/shm"),
	}
}

func mustWrite(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

// TestSaveRestore runs a whole save / fresh state / restore cycle on a fake machine,
// then the crash cases: a restore after a save that stopped half-way, and a second
// restore of an already restored machine.
func TestSaveRestore(t *testing.T) {
	root := t.TempDir()
	p := fakePaths(root)
	mustWrite(t, p.corosyncConf, "# the machine's own\ntotem {}\n", 0o640)
	mustWrite(t, filepath.Join(p.pacemakerDir, "cib/cib.xml"), "<cib old/>", 0o600)
	mustWrite(t, filepath.Join(p.pacemakerDir, "pengine/pe-input-7.bz2"), "x", 0o640)
	if err := os.MkdirAll(filepath.Join(p.pacemakerDir, "blackbox"), 0o750); err != nil {
		t.Fatal(err)
	}
	// cores is missing; so are /var/lib/corosync, /run/crm and /run/corosync.pid.
	if err := os.Symlink("cib.xml", filepath.Join(p.pacemakerDir, "cib/link")); err != nil {
		t.Fatal(err)
	}
	old := time.Date(2023, 7, 9, 0, 0, 0, 0, time.UTC)
	os.Chtimes(p.pacemakerDir, old, old)
	roots := []string{p.corosyncConf, p.pacemakerDir, p.corosyncDir, p.runtime[0], p.runtime[1]}
	before := takeSnapshot(t, roots...)
	me := owner{uid: os.Getuid(), gid: os.Getgid()}

	items, err := planItems(p, "run1")
	if err != nil {
		t.Fatal(err)
	}
	if err := writeJournal(p, &journal{RunID: "run1", Items: items}); err != nil {
		t.Fatal(err)
	}
	if err := saveItems(p, "run1", items); err != nil {
		t.Fatal(err)
	}
	if err := freshState(p, items, []byte("ours\n"), []byte("<cib new/>"), me); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p.corosyncConf); string(b) != "ours\n" {
		t.Errorf("corosync.conf during the run: %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(p.pacemakerDir, "cib/cib.xml")); string(b) != "<cib new/>" {
		t.Errorf("cib during the run: %q", b)
	}
	if _, err := os.Stat(filepath.Join(p.pacemakerDir, "pengine/pe-input-7.bz2")); !os.IsNotExist(err) {
		t.Errorf("old pe-input visible during the run: %v", err)
	}
	// What the daemons would create.
	mustWrite(t, filepath.Join(p.pacemakerDir, "cib/cib-1.raw"), "r", 0o600)
	mustWrite(t, filepath.Join(p.corosyncDir, "ringid_1"), "1", 0o600)
	mustWrite(t, p.runtime[1], "123\n", 0o644)
	os.MkdirAll(p.runtime[0], 0o750)
	os.Chmod(p.pacemakerDir, 0o700)

	// The journal on disk is what a crashed run leaves: restore from it.
	j, err := readJournal(p)
	if err != nil || j == nil {
		t.Fatalf("journal: %v %v", j, err)
	}
	if err := restoreItems(j.Items); err != nil {
		t.Fatal(err)
	}
	if d := before.diff(takeSnapshot(t, roots...)); d != "" {
		t.Errorf("not restored:\n%s", d)
	}
	// Restoring twice changes nothing.
	if err := restoreItems(j.Items); err != nil {
		t.Fatal(err)
	}
	if d := before.diff(takeSnapshot(t, roots...)); d != "" {
		t.Errorf("second restore changed:\n%s", d)
	}

	// A save that stopped after the first two moves (a crash): restore puts them back
	// and leaves the rest, which was never moved, alone.
	items2, err := planItems(p, "run2")
	if err != nil {
		t.Fatal(err)
	}
	moved := 0
	for _, it := range items2 {
		if it.Kind == kindMove && it.Existed && moved < 2 {
			if err := moveTree(it.Path, it.Backup); err != nil {
				t.Fatal(err)
			}
			moved++
		}
	}
	if err := restoreItems(items2); err != nil {
		t.Fatal(err)
	}
	if d := before.diff(takeSnapshot(t, roots...)); d != "" {
		t.Errorf("not restored after a half-done save:\n%s", d)
	}
}

// TestSaveRestoreNoConf: a machine without corosync.conf gets none back.
func TestSaveRestoreNoConf(t *testing.T) {
	p := fakePaths(t.TempDir())
	items, err := planItems(p, "r")
	if err != nil {
		t.Fatal(err)
	}
	if err := saveItems(p, "r", items); err != nil {
		t.Fatal(err)
	}
	me := owner{uid: os.Getuid(), gid: os.Getgid()}
	if err := freshState(p, items, []byte("ours\n"), []byte("<cib/>"), me); err != nil {
		t.Fatal(err)
	}
	if err := restoreItems(items); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{p.corosyncConf, p.pacemakerDir, p.corosyncDir} {
		if _, err := os.Lstat(path); !os.IsNotExist(err) {
			t.Errorf("%s left behind: %v", path, err)
		}
	}
}

func TestCopyTree(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	mustWrite(t, filepath.Join(src, "a/b.txt"), "hello", 0o640)
	os.Symlink("a/b.txt", filepath.Join(src, "l"))
	os.Chmod(filepath.Join(src, "a"), 0o711)
	before := takeSnapshot(t, src)
	dst := filepath.Join(t.TempDir(), "dst")
	if err := copyTree(src, dst); err != nil {
		t.Fatal(err)
	}
	after := takeSnapshot(t, dst)
	// The standard library cannot set a symlink's own times (no lutimes): the copy
	// fallback keeps everything else of a link.
	linkTime := regexp.MustCompile(` mtime=\d+ ->`)
	for k, v := range before {
		rel, _ := filepath.Rel(src, k)
		got := after[filepath.Join(dst, rel)]
		got, v = linkTime.ReplaceAllString(got, " ->"), linkTime.ReplaceAllString(v, " ->")
		if got != v {
			t.Errorf("%s: %s, copied as %s", rel, v, got)
		}
	}
}

// fakeDaemon runs a copy of sleep under a daemon's name, with or without the marker.
func fakeDaemon(t *testing.T, name, marker string) *exec.Cmd {
	t.Helper()
	return fakeDaemonIn(t, name, marker, 0)
}

// fakeDaemonIn is fakeDaemon in new namespaces (syscall.CLONE_NEW* flags).
func fakeDaemonIn(t *testing.T, name, marker string, namespaces uintptr) *exec.Cmd {
	t.Helper()
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep binary")
	}
	b, err := os.ReadFile(sleep)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "60")
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	if marker != "" {
		cmd.Env = append(cmd.Env, markerEnv+"="+marker)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: namespaces}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})
	return cmd
}

func TestProcessIdentification(t *testing.T) {
	foreign := fakeDaemon(t, "pacemaker-controld", "")
	ours := fakeDaemon(t, "pacemaker-fenced", "run-a")
	other := fakeDaemon(t, "corosync", "run-b")
	// A node of a testbed (own network and mount namespaces) shares nothing with a
	// cluster started here; one that shares either does.
	isolated := fakeDaemonIn(t, "corosync", "", syscall.CLONE_NEWNET|syscall.CLONE_NEWNS)
	netOnly := fakeDaemonIn(t, "pacemakerd", "", syscall.CLONE_NEWNET)
	time.Sleep(100 * time.Millisecond) // let exec finish, so /proc shows the new image

	fd, err := foreignDaemons("/proc")
	if err != nil {
		t.Fatal(err)
	}
	found, foundNetOnly := false, false
	for _, p := range fd {
		if p.PID == ours.Process.Pid || p.PID == other.Process.Pid {
			t.Errorf("marked process reported as foreign: %s", describe([]proc{p}))
		}
		if p.PID == isolated.Process.Pid {
			t.Errorf("a daemon in its own network and mount namespaces reported as foreign: %s", describe([]proc{p}))
		}
		foundNetOnly = foundNetOnly || p.PID == netOnly.Process.Pid
		found = found || p.PID == foreign.Process.Pid
	}
	if !found {
		t.Errorf("foreign pacemaker-controld[%d] not found in %s", foreign.Process.Pid, describe(fd))
	}
	if !foundNetOnly {
		t.Errorf("pacemakerd[%d] in the machine's mount namespace not found in %s", netOnly.Process.Pid, describe(fd))
	}

	mine, err := markedProcs("/proc", "run-a")
	if err != nil {
		t.Fatal(err)
	}
	if len(mine) != 1 || mine[0].PID != ours.Process.Pid || mine[0].Name != "pacemaker-fenced" {
		t.Fatalf("run-a: %s", describe(mine))
	}
	killed, err := killMarked("/proc", "run-a")
	if err != nil || len(killed) != 1 {
		t.Fatalf("killMarked: %v %v", killed, err)
	}
	if alive("/proc", killed[0]) {
		t.Error("killed process still alive")
	}
	if left, _ := markedProcs("/proc", "run-b"); len(left) != 1 {
		t.Errorf("run-b's process was touched: %s", describe(left))
	}
	if !alive("/proc", procID{PID: other.Process.Pid, StartTime: startTime(t, other.Process.Pid)}) {
		t.Error("run-b's process died")
	}
	// A recycled PID (other start time) is not signalled.
	if err := signalProc("/proc", procID{PID: other.Process.Pid, StartTime: 1}, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if p, ok := readProc("/proc", other.Process.Pid); !ok || p.State == 'Z' {
		t.Error("a process with another start time was killed")
	}
}

// startTime returns the start time of a live process.
func startTime(t *testing.T, pid int) uint64 {
	t.Helper()
	p, ok := readProc("/proc", pid)
	if !ok {
		t.Fatalf("process %d gone", pid)
	}
	return p.StartTime
}

func TestRemoveShm(t *testing.T) {
	dir := t.TempDir()
	names := []string{"qb-100-200-28-abc", "qb-300-100-9-x", "qb-corosync-100-blackbox-data",
		"qb-300-400-100-y", "qb-500-600-7-z", "other-100"}
	for _, n := range names {
		mustWrite(t, filepath.Join(dir, n, "data"), "", 0o600)
	}
	if err := removeShm(dir, []procID{{PID: 100}}); err != nil {
		t.Fatal(err)
	}
	var got []string
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		got = append(got, e.Name())
	}
	want := "other-100 qb-300-400-100-y qb-500-600-7-z"
	if strings.Join(got, " ") != want {
		t.Errorf("left %v, want %s", got, want)
	}
}

func TestCheckReachable(t *testing.T) {
	base := t.TempDir()
	closed := filepath.Join(base, "closed")
	open := filepath.Join(closed, "open")
	os.MkdirAll(open, 0o755)
	os.Chmod(closed, 0o700)
	nobody := owner{uid: 65534, gid: 65534}
	if os.Getuid() == 65534 {
		t.Skip("running as nobody")
	}
	if err := checkReachable(open, nobody); err == nil || !strings.Contains(err.Error(), closed) {
		t.Errorf("closed parent not reported: %v", err)
	}
	os.Chmod(closed, 0o711)
	os.Chmod(base, 0o711)
	if err := checkReachable(open, nobody); err != nil && !strings.Contains(err.Error(), filepath.Dir(base)) {
		t.Errorf("open path refused: %v", err)
	}
}

func TestLockExcludes(t *testing.T) {
	p := fakePaths(t.TempDir())
	ctx := context.Background()
	l1, err := acquireLock(ctx, p, func(string, ...any) {})
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	var logged []string
	_, err = acquireLock(short, p, func(f string, a ...any) { logged = append(logged, f) })
	if err == nil || !strings.Contains(err.Error(), "held by pid") {
		t.Fatalf("second lock: %v", err)
	}
	if len(logged) == 0 {
		t.Error("waiting was not logged")
	}
	if err := l1.release(); err != nil {
		t.Fatal(err)
	}
	l2, err := acquireLock(ctx, p, func(string, ...any) {})
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	l2.release()
	l2.release() // idempotent
}

func TestRunCommand(t *testing.T) {
	out, err := runCommand(context.Background(), os.Environ(), nil, "sh", "-c", "echo out; echo err >&2; exit 3")
	if ExitCode(err) != 3 || out != "out\n" {
		t.Fatalf("out %q err %v", out, err)
	}
	if !strings.Contains(err.Error(), "err") {
		t.Errorf("stderr missing from %v", err)
	}
	// A timeout kills the whole process group, grandchildren included.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	_, err = runCommand(ctx, os.Environ(), nil, "sh", "-c", "sleep 30 & sleep 30; wait")
	if ExitCode(err) != -1 || time.Since(t0) > 5*time.Second {
		t.Errorf("timeout: %v after %v", err, time.Since(t0))
	}
	if ExitCode(nil) != 0 || ExitCode(io.EOF) != -1 {
		t.Error("ExitCode of nil / foreign error")
	}
}

func TestOptionsDefaults(t *testing.T) {
	props := map[string]string{"dc-deadtime": "5s", "x": "y"}
	o := Options{Properties: props}.withDefaults()
	if o.NodeName != "node1" || o.ClusterName != "novaha-test" || o.Log == nil {
		t.Errorf("defaults: %+v", o)
	}
	if o.Properties["dc-deadtime"] != "5s" || o.Properties["stonith-enabled"] != "true" || o.Properties["x"] != "y" {
		t.Errorf("properties: %v", o.Properties)
	}
	if len(props) != 2 {
		t.Error("caller's map changed")
	}
}
