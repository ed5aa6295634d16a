// Package e2e runs a multi-node Corosync/Pacemaker testbed on one machine, for the
// end-to-end scenario of instance HA: controllers (corosync + pacemakerd) and compute
// nodes (pacemaker_remote), each in its own network, mount, UTS and PID namespaces, joined
// by a bridge on 10.77.0.0/24; one simulated BMC (ipmi_sim, test/bmcsim) per node whose
// power off kills the node's whole PID namespace and whose power on boots it again; and
// forwarders that make the Nova sandbox (test/nova, 127.0.0.1 of the root
// namespace) reachable on 127.0.0.1 inside every node.
//
// Nothing of the machine's own cluster configuration is touched: each node mounts its own
// /etc/corosync, /etc/pacemaker, /var/lib/pacemaker, /var/lib/corosync, /var/log, /run and
// /dev/shm over the machine's, in its mount namespace only (see node-init.sh). Pacemaker's
// IPC uses abstract unix sockets, which exist per network namespace, so the nodes neither
// see each other's daemons nor the single-node cluster of test/cluster, which other tests
// run at the same time.
//
// One testbed runs at a time: Up takes a machine-wide flock (LockFile), waiting for it as
// long as its context allows, and holds it until Down. Up first cleans up after a testbed whose owner died without Down (its state
// file names its nodes, namespaces and links). The owner is the process that called Up: a test
// binary, or `testbed serve` behind the `testbed up` command (test/e2e/cmd/testbed).
package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/novaha/novaha/test/bmcsim"
	"github.com/novaha/novaha/test/cluster"
)

//go:embed node.sh
var nodeScript []byte

//go:embed node-init.sh
var nodeInitScript []byte

// Files in Config.Dir.
const (
	stateFile = "state.json"
	readyFile = "ready" // written by `testbed serve` once Up returned
)

// The environment of commands run inside nodes: an init system's, not the caller's
// (pyenv's python3 first on PATH cannot run Debian's Python tools).
var nodeEnv = []string{
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	"LANG=C.UTF-8", "HOME=/root", "PYTHONWARNINGS=ignore",
}

// state is what a crashed owner leaves for the next Up to clean up.
type state struct {
	OwnerPID int    `json:"owner_pid"`
	Bridge   string `json:"bridge"`
	Nodes    []Node `json:"nodes"`
}

// Testbed is a running testbed. Its methods may be called from several goroutines.
type Testbed struct {
	cfg   Config
	nodes []Node
	lock  *os.File

	logMu sync.Mutex

	mu       sync.Mutex
	bmcs     map[string]*bmcsim.BMC
	forwards []*forwarder
	down     bool

	// Online is how long Up took until every node was online.
	Online time.Duration
}

// Up builds the network, starts the nodes, the BMCs and the forwarders, configures the
// cluster (remote connections for the computes, fence_ipmi devices if Config.Fencing)
// and returns once crm_mon shows every controller and every compute online. On failure
// it undoes what it did.
func Up(ctx context.Context, cfg Config) (_ *Testbed, err error) {
	t0 := time.Now()
	cfg, err = cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("e2e: %w", err)
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("e2e: network namespaces and cluster daemons need root")
	}
	for _, bin := range []string{"ip", "unshare", "nsenter", "flock", "setsid", "corosync", "pacemakerd", "pcs", "crm_mon", "cibadmin", "crm_attribute"} {
		if _, err := exec.LookPath(bin); err != nil {
			return nil, fmt.Errorf("e2e: %s not found (run test/e2e/deps.sh): %w", bin, err)
		}
	}
	if len(cfg.Computes) > 0 {
		if _, err := os.Stat(cfg.Remoted); err != nil {
			return nil, fmt.Errorf("e2e: pacemaker-remoted (run test/e2e/deps.sh): %w", err)
		}
	}
	if err := bmcsim.Available(); err != nil {
		return nil, fmt.Errorf("e2e: %w", err)
	}
	tb := &Testbed{cfg: cfg, nodes: cfg.nodes(), bmcs: map[string]*bmcsim.BMC{}}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("e2e: %w", err)
	}
	var prevDir string
	if tb.lock, prevDir, err = takeLock(ctx, cfg.Dir); err != nil {
		return nil, fmt.Errorf("e2e: %w", err)
	}
	defer func() {
		if err != nil {
			if derr := tb.Down(context.Background()); derr != nil {
				err = errors.Join(err, fmt.Errorf("e2e: cleaning up after the failed start: %w", derr))
			}
		}
	}()
	if err := writeScripts(cfg.Dir); err != nil {
		return nil, fmt.Errorf("e2e: %w", err)
	}
	dirs := []string{cfg.Dir}
	if prevDir != "" && prevDir != cfg.Dir {
		dirs = append(dirs, prevDir)
	}
	for _, d := range dirs {
		if err := recoverCrashed(ctx, d, tb.logf); err != nil {
			return nil, fmt.Errorf("e2e: cleaning up after an earlier testbed in %s: %w", d, err)
		}
	}
	if err := writeState(cfg.Dir, state{OwnerPID: os.Getpid(), Bridge: bridgeName, Nodes: tb.nodes}); err != nil {
		return nil, fmt.Errorf("e2e: %w", err)
	}
	if err := tb.network(ctx); err != nil {
		return nil, fmt.Errorf("e2e: network: %w", err)
	}
	if err := tb.writeNodes(ctx); err != nil {
		return nil, fmt.Errorf("e2e: node files: %w", err)
	}
	if err := tb.startForwarders(); err != nil {
		return nil, fmt.Errorf("e2e: forwarding the Nova sandbox's ports: %w", err)
	}
	if err := tb.startBMCs(ctx); err != nil {
		return nil, fmt.Errorf("e2e: %w", err)
	}
	for _, n := range tb.nodes {
		if out, err := tb.nodeCmd(ctx, "start", n.Name); err != nil {
			return nil, fmt.Errorf("e2e: starting %s: %w: %s", n.Name, err, out)
		}
	}
	tb.logf("nodes started: %s", strings.Join(tb.names(""), " "))

	sctx, cancel := context.WithTimeout(ctx, cfg.StartTimeout)
	defer cancel()
	if _, err := tb.WaitStatus(sctx, "the controllers to form a cluster", func(s *cluster.Status) bool {
		return s.DC != "" && tb.online(s, tb.names("controller")) && s.Quorate
	}); err != nil {
		return nil, fmt.Errorf("e2e: %w", err)
	}
	tb.logf("controllers online after %v", time.Since(t0).Round(time.Millisecond))
	if err := tb.configure(sctx); err != nil {
		return nil, fmt.Errorf("e2e: configuring the cluster: %w", err)
	}
	if _, err := tb.WaitStatus(sctx, "every node online", func(s *cluster.Status) bool {
		return tb.online(s, tb.names(""))
	}); err != nil {
		return nil, fmt.Errorf("e2e: %w", err)
	}
	tb.Online = time.Since(t0)
	tb.logf("testbed online after %v: %s", tb.Online.Round(time.Millisecond), strings.Join(tb.names(""), " "))
	return tb, nil
}

// Nodes lists the testbed's nodes, controllers first.
func (tb *Testbed) Nodes() []Node { return append([]Node(nil), tb.nodes...) }

// Dir is the state directory.
func (tb *Testbed) Dir() string { return tb.cfg.Dir }

// BMC returns the simulated BMC of a node.
func (tb *Testbed) BMC(node string) (*bmcsim.BMC, bool) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	b, ok := tb.bmcs[node]
	return b, ok
}

// names lists the node names of a role ("" for all).
func (tb *Testbed) names(role string) []string {
	var out []string
	for _, n := range tb.nodes {
		if role == "" || n.Role == role {
			out = append(out, n.Name)
		}
	}
	return out
}

func (tb *Testbed) online(s *cluster.Status, names []string) bool {
	for _, name := range names {
		if n, ok := s.Node(name); !ok || !n.Online {
			return false
		}
	}
	return true
}

func (tb *Testbed) logf(format string, args ...any) {
	tb.logMu.Lock()
	defer tb.logMu.Unlock()
	fmt.Fprintf(tb.cfg.Log, "e2e: %s "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, args...)...)
}

// Down stops the BMCs, kills every node, closes the forwarders and removes the network;
// the state directory stays, for its logs. It is idempotent.
func (tb *Testbed) Down(ctx context.Context) error {
	tb.mu.Lock()
	if tb.down {
		tb.mu.Unlock()
		return nil
	}
	tb.down = true
	bmcs, fwds := tb.bmcs, tb.forwards
	tb.bmcs, tb.forwards = nil, nil
	tb.mu.Unlock()

	var errs []error
	// BMCs first: a pending boot must not start a node after it was killed.
	for name, b := range bmcs {
		if err := b.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("BMC of %s: %w", name, err))
		}
	}
	for _, f := range fwds {
		f.close()
	}
	if err := teardown(ctx, tb.cfg.Dir, state{Bridge: bridgeName, Nodes: tb.nodes}, tb.logf); err != nil {
		errs = append(errs, err)
	}
	if err := os.Remove(filepath.Join(tb.cfg.Dir, stateFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	if tb.lock != nil {
		tb.lock.Close()
		tb.lock = nil
	}
	tb.logf("down")
	if len(errs) > 0 {
		return fmt.Errorf("e2e: down: %w", errors.Join(errs...))
	}
	return nil
}

// LockFile is the testbed's machine-wide lock: there is one testbed network per machine
// (bridge nha-e2e, 10.77.0.0/24, namespaces nha-*), whatever the state directory. Its
// holder writes "PID DIR" into it; the kernel drops the lock when the holder dies, and the
// next Up finds the dead testbed's state directory there.
const LockFile = "/run/lock/novaha-e2e.lock"

// takeLock takes the lock, waiting (polling) as long as ctx allows, and returns the
// state directory its previous holder recorded.
func takeLock(ctx context.Context, dir string) (_ *os.File, prevDir string, _ error) {
	f, err := os.OpenFile(LockFile, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, "", err
	}
	for syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
		select {
		case <-ctx.Done():
			f.Close()
			pid, odir, _ := readLock()
			return nil, "", fmt.Errorf("a testbed is running (pid %d, state in %s): stop it first (testbed down): %w",
				pid, odir, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
	_, prevDir, _ = readLock()
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(fmt.Sprintf("%d %s\n", os.Getpid(), dir)), 0)
	}
	return f, prevDir, nil
}

func readLock() (pid int, dir string, err error) {
	b, err := os.ReadFile(LockFile)
	if err != nil {
		return 0, "", err
	}
	p, d, _ := strings.Cut(strings.TrimSpace(string(b)), " ")
	pid, _ = strconv.Atoi(p)
	return pid, d, nil
}

// Running reports the PID and state directory of the process that owns the running
// testbed, if one does.
func Running() (pid int, dir string, ok bool) {
	f, err := os.Open(LockFile)
	if err != nil {
		return 0, "", false
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err == nil {
		return 0, "", false // nobody holds it
	}
	pid, dir, _ = readLock()
	return pid, dir, true
}

// Recover cleans up after a testbed whose owner died without Down (the last state
// directory the lock names); it fails if a testbed is running.
func Recover(ctx context.Context) error {
	// Only a free lock: a running testbed is not a crashed one.
	nowait, cancel := context.WithCancel(ctx)
	cancel()
	l, prev, err := takeLock(nowait, "")
	if err != nil {
		return fmt.Errorf("e2e: %w", err)
	}
	defer l.Close()
	if prev == "" {
		return nil
	}
	if err := recoverCrashed(ctx, prev, func(string, ...any) {}); err != nil {
		return fmt.Errorf("e2e: %w", err)
	}
	return nil
}

func writeState(dir string, s state) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, stateFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, stateFile))
}

// recoverCrashed tears down what the state file of a dead owner names. The caller holds
// the lock, so no live testbed owns it.
func recoverCrashed(ctx context.Context, dir string, logf func(string, ...any)) error {
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var s state
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("reading %s: %w", stateFile, err)
	}
	logf("testbed of pid %d did not stop: removing its nodes and network", s.OwnerPID)
	// Boot jobs of its BMCs (bmcsim runs them in the BMC's directory) would start nodes.
	for _, n := range s.Nodes {
		killInDir(filepath.Join(dir, "bmc", n.Name))
	}
	if err := teardown(ctx, dir, s, logf); err != nil {
		return err
	}
	return os.Remove(filepath.Join(dir, stateFile))
}

// killInDir kills the processes whose working directory is dir.
func killInDir(dir string) {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if cwd, err := os.Readlink(filepath.Join("/proc", e.Name(), "cwd")); err == nil && cwd == dir {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// teardown kills the nodes and deletes their links, namespaces and the bridge.
func teardown(ctx context.Context, dir string, s state, logf func(string, ...any)) error {
	var errs []error
	for _, n := range s.Nodes {
		if _, err := os.Stat(filepath.Join(dir, "nodes", n.Name, "node.env")); err != nil {
			continue // never written: never started
		}
		if out, err := runIn(ctx, dir, "bash", filepath.Join(dir, "node.sh"), "kill", n.Name); err != nil {
			errs = append(errs, fmt.Errorf("killing %s: %w: %s", n.Name, err, out))
		}
	}
	for _, n := range s.Nodes {
		if linkExists(ctx, n.Veth) {
			if out, err := run(ctx, "ip", "link", "del", n.Veth); err != nil {
				errs = append(errs, fmt.Errorf("ip link del %s: %w: %s", n.Veth, err, out))
			}
		}
		if _, err := os.Stat(filepath.Join("/run/netns", n.NetNS)); err == nil {
			if out, err := run(ctx, "ip", "netns", "del", n.NetNS); err != nil {
				errs = append(errs, fmt.Errorf("ip netns del %s: %w: %s", n.NetNS, err, out))
			}
		}
	}
	if s.Bridge != "" && linkExists(ctx, s.Bridge) {
		if out, err := run(ctx, "ip", "link", "del", s.Bridge); err != nil {
			errs = append(errs, fmt.Errorf("ip link del %s: %w: %s", s.Bridge, err, out))
		}
	}
	return errors.Join(errs...)
}

func linkExists(ctx context.Context, name string) bool {
	_, err := run(ctx, "ip", "link", "show", "dev", name)
	return err == nil
}

// network creates the bridge (with the BMCs' address) and one namespace and veth pair per
// node; inside, the veth end is eth0 with the node's address, and lo is up (the
// forwarders listen on 127.0.0.1 there).
func (tb *Testbed) network(ctx context.Context) error {
	steps := [][]string{
		{"link", "add", bridgeName, "type", "bridge"},
		{"addr", "add", fmt.Sprintf("%s/%d", bridgeAddr, prefixLen), "dev", bridgeName},
		{"link", "set", bridgeName, "up"},
	}
	for _, n := range tb.nodes {
		steps = append(steps,
			[]string{"netns", "add", n.NetNS},
			[]string{"link", "add", n.Veth, "type", "veth", "peer", "name", "eth0", "netns", n.NetNS},
			[]string{"link", "set", n.Veth, "master", bridgeName, "up"},
			[]string{"-n", n.NetNS, "addr", "add", fmt.Sprintf("%s/%d", n.Addr, prefixLen), "dev", "eth0"},
			[]string{"-n", n.NetNS, "link", "set", "eth0", "up"},
			[]string{"-n", n.NetNS, "link", "set", "lo", "up"},
		)
	}
	for _, s := range steps {
		if out, err := run(ctx, "ip", s...); err != nil {
			return fmt.Errorf("ip %s: %w: %s", strings.Join(s, " "), err, out)
		}
	}
	tb.logf("network: bridge %s %s/%d, %d namespaces", bridgeName, bridgeAddr, prefixLen, len(tb.nodes))
	return nil
}

func writeScripts(dir string) error {
	for name, data := range map[string][]byte{"node.sh": nodeScript, "node-init.sh": nodeInitScript} {
		tmp := filepath.Join(dir, name+".tmp")
		if err := os.WriteFile(tmp, data, 0o755); err != nil {
			return err
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			return err
		}
	}
	return nil
}

// writeNodes gives every node a fresh root: its configuration, empty cluster state
// and logs, and the agents to install.
func (tb *Testbed) writeNodes(ctx context.Context) error {
	hac, err := hacluster()
	if err != nil {
		return err
	}
	authkey := make([]byte, 256)
	if _, err := rand.Read(authkey); err != nil {
		return err
	}
	conf := corosyncConf(tb.nodes, tb.cfg.Controllers)
	cib, err := tb.initialCIB(ctx)
	if err != nil {
		return err
	}
	for _, n := range tb.nodes {
		nd := filepath.Join(tb.cfg.Dir, "nodes", n.Name)
		if err := os.RemoveAll(nd); err != nil {
			return err
		}
		root := filepath.Join(nd, "root")
		dirs := []struct {
			path     string
			mode     os.FileMode
			uid, gid int
		}{
			{"etc/corosync", 0o755, 0, 0},
			{"etc/pacemaker", 0o750, 0, hac.gid},
			{"var/lib/corosync", 0o700, 0, 0},
			{"var/lib/pacemaker", 0o755, 0, 0},
			{"var/lib/pacemaker/cib", 0o750, hac.uid, hac.gid},
			{"var/lib/pacemaker/pengine", 0o750, hac.uid, hac.gid},
			{"var/lib/pacemaker/blackbox", 0o750, hac.uid, hac.gid},
			{"var/lib/pacemaker/cores", 0o750, hac.uid, hac.gid},
			{"var/log", 0o755, 0, 0},
			{"var/log/corosync", 0o755, 0, 0},
			{"var/log/pacemaker", 0o770, hac.uid, hac.gid},
		}
		for _, d := range dirs {
			p := filepath.Join(root, d.path)
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
			if err := os.Chmod(p, d.mode); err != nil {
				return err
			}
			if err := os.Chown(p, d.uid, d.gid); err != nil {
				return err
			}
		}
		files := []fileSpec{
			{"etc/pacemaker/authkey", authkey, 0o640, hac.uid, hac.gid},
			{"var/log/pacemaker/pacemaker.log", nil, 0o660, hac.uid, hac.gid},
		}
		if n.Role == "controller" {
			files = append(files,
				fileSpec{"etc/corosync/corosync.conf", []byte(conf), 0o644, 0, 0},
				fileSpec{"var/lib/pacemaker/cib/cib.xml", cib, 0o600, hac.uid, hac.gid})
		}
		for _, f := range files {
			p := filepath.Join(root, f.path)
			if err := os.WriteFile(p, f.data, f.mode); err != nil {
				return err
			}
			if err := os.Chown(p, f.uid, f.gid); err != nil {
				return err
			}
		}
		overlays, err := tb.installAgents(root)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(nd, "overlays"), []byte(strings.Join(overlays, "\n")+"\n"), 0o644); err != nil {
			return err
		}
		env := fmt.Sprintf("ROLE=%s\nNETNS=%s\nVETH=%s\nADDR=%s\nREMOTED=%s\n", n.Role, n.NetNS, n.Veth, n.Addr, shellQuote(tb.cfg.Remoted))
		if err := os.WriteFile(filepath.Join(nd, "node.env"), []byte(env), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// fileSpec is a file of a node's root, with its owner and mode.
type fileSpec struct {
	path     string
	data     []byte
	mode     os.FileMode
	uid, gid int
}

// installAgents links the built agents into the node's overlay directories and returns
// the directories to overlay: fence agents where Pacemaker looks for them (/usr/sbin), OCF
// agents under provider novaha.
func (tb *Testbed) installAgents(root string) ([]string, error) {
	if tb.cfg.AgentDir == "" {
		return nil, nil
	}
	entries, err := os.ReadDir(tb.cfg.AgentDir)
	if err != nil {
		return nil, fmt.Errorf("agent directory: %w", err)
	}
	const sbin, ocf = "/usr/sbin", "/usr/lib/ocf/resource.d"
	used := map[string]bool{}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || strings.HasSuffix(name, ".log") {
			continue
		}
		dst := filepath.Join(root, "overlay", ocf, "novaha", name)
		top := ocf
		if strings.HasPrefix(name, "fence_") {
			dst, top = filepath.Join(root, "overlay", sbin, name), sbin
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return nil, err
		}
		if err := os.Symlink(filepath.Join(tb.cfg.AgentDir, name), dst); err != nil {
			return nil, err
		}
		used[top] = true
	}
	var out []string
	for _, d := range []string{sbin, ocf} {
		if used[d] {
			out = append(out, d)
		}
	}
	return out, nil
}

// corosyncConf: knet without crypto (the network exists only between the namespaces),
// the controllers as members; two controllers run with two_node (quorum with one).
func corosyncConf(nodes []Node, controllers int) string {
	var b strings.Builder
	b.WriteString(`# Written by novaha's end-to-end testbed (test/e2e).
totem {
  version: 2
  cluster_name: novaha-e2e
  transport: knet
  crypto_cipher: none
  crypto_hash: none
  token: 3000
}
nodelist {
`)
	id := 0
	for _, n := range nodes {
		if n.Role != "controller" {
			continue
		}
		id++
		fmt.Fprintf(&b, "  node {\n    ring0_addr: %s\n    name: %s\n    nodeid: %d\n  }\n", n.Addr, n.Name, id)
	}
	b.WriteString("}\nquorum {\n  provider: corosync_votequorum\n")
	if controllers == 2 {
		b.WriteString("  two_node: 1\n")
	}
	b.WriteString(`}
logging {
  to_logfile: yes
  logfile: /var/log/corosync/corosync.log
  to_syslog: no
  to_stderr: no
  timestamp: on
}
`)
	return b.String()
}

// initialCIB is an empty CIB with the testbed's cluster properties: dc-deadtime 2 s (a
// fresh CIB otherwise waits 20 s for the DC election) and stonith-enabled as configured.
func (tb *Testbed) initialCIB(ctx context.Context) ([]byte, error) {
	dir, err := os.MkdirTemp(tb.cfg.Dir, "cib-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	out, err := run(ctx, "cibadmin", "--empty")
	if err != nil {
		return nil, fmt.Errorf("cibadmin --empty: %w: %s", err, out)
	}
	file := filepath.Join(dir, "cib.xml")
	if err := os.WriteFile(file, []byte(out), 0o600); err != nil {
		return nil, err
	}
	props := [][2]string{{"dc-deadtime", "2s"}, {"stonith-enabled", strconv.FormatBool(tb.cfg.Fencing)}}
	for _, p := range props {
		cmd := exec.CommandContext(ctx, "crm_attribute", "--type", "crm_config", "--name", p[0], "--update", p[1])
		cmd.Env = append(os.Environ(), "CIB_file="+file)
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("crm_attribute %s=%s: %w: %s", p[0], p[1], err, out)
		}
	}
	return os.ReadFile(file)
}

// configure adds the computes as remote nodes and, with Config.Fencing, one fence_ipmi
// device per node through its BMC.
func (tb *Testbed) configure(ctx context.Context) error {
	for _, n := range tb.nodes {
		if n.Role != "compute" {
			continue
		}
		// reconnect_interval: after a failed connection (the node is down or was fenced)
		// the controller retries every 5 s instead of giving up on the node.
		if out, err := tb.Pcs(ctx, "resource", "create", n.Name, "ocf:pacemaker:remote",
			"server="+n.Addr, "reconnect_interval=5s", "op", "monitor", "interval=5s", "--force"); err != nil {
			return fmt.Errorf("pcs resource create %s: %w: %s", n.Name, err, out)
		}
	}
	if !tb.cfg.Fencing {
		return nil
	}
	for _, n := range tb.nodes {
		b, _ := tb.BMC(n.Name)
		if out, err := tb.Pcs(ctx, "stonith", "create", "ipmi-"+n.Name, "fence_ipmi",
			"ip="+b.Host, "ipport="+strconv.Itoa(b.Port), "username="+b.Username, "password="+b.Password,
			"lanplus=1", "cipher=3", "pcmk_host_list="+n.Name); err != nil {
			return fmt.Errorf("pcs stonith create ipmi-%s: %w: %s", n.Name, err, out)
		}
	}
	return nil
}

// startBMCs starts one simulated BMC per node on the bridge address: power off runs
// `node.sh kill`, power on `node.sh start` after BootDelay.
func (tb *Testbed) startBMCs(ctx context.Context) error {
	for _, n := range tb.nodes {
		dir := filepath.Join(tb.cfg.Dir, "bmc", n.Name)
		// A fresh power state and log: the node is about to be started.
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		script := shellQuote(filepath.Join(tb.cfg.Dir, "node.sh"))
		b, err := bmcsim.Start(ctx, bmcsim.Options{
			Host: bridgeAddr, Port: n.BMCPort, Dir: dir,
			OffCommand: "bash " + script + " kill " + n.Name,
			OnCommand:  "bash " + script + " start " + n.Name,
			BootDelay:  tb.cfg.BootDelay,
		})
		if err != nil {
			return fmt.Errorf("BMC of %s: %w", n.Name, err)
		}
		tb.mu.Lock()
		tb.bmcs[n.Name] = b
		tb.mu.Unlock()
	}
	return nil
}

// nodeCmd runs node.sh.
func (tb *Testbed) nodeCmd(ctx context.Context, action, node string) (string, error) {
	return runIn(ctx, tb.cfg.Dir, "bash", filepath.Join(tb.cfg.Dir, "node.sh"), action, node)
}

// Kill powers a node off at once, as a power failure would (behind its BMC's back: the
// BMC still reports power on).
func (tb *Testbed) Kill(ctx context.Context, node string) error {
	if out, err := tb.nodeCmd(ctx, "kill", node); err != nil {
		return fmt.Errorf("e2e: killing %s: %w: %s", node, err, out)
	}
	return nil
}

// PowerLoss takes the node's link down, then kills it: unlike Kill, its peers learn
// nothing from it (no TCP reset or FIN gets out), as with a real power failure. Start
// (or its BMC's power on) brings the link up again.
func (tb *Testbed) PowerLoss(ctx context.Context, node string) error {
	if out, err := tb.nodeCmd(ctx, "power-loss", node); err != nil {
		return fmt.Errorf("e2e: power loss of %s: %w: %s", node, err, out)
	}
	return nil
}

// Start boots a node that is off (without its BMC).
func (tb *Testbed) Start(ctx context.Context, node string) error {
	if out, err := tb.nodeCmd(ctx, "start", node); err != nil {
		return fmt.Errorf("e2e: starting %s: %w: %s", node, err, out)
	}
	return nil
}

// NodeRunning reports whether the node's process tree is up.
func (tb *Testbed) NodeRunning(ctx context.Context, node string) bool {
	_, err := tb.nodeCmd(ctx, "status", node)
	return err == nil
}

// Command returns a command that runs inside a node's namespaces (network, mount, UTS
// and PID) with an init system's environment, as if the node ran it.
func Command(ctx context.Context, dir, node string, args ...string) (*exec.Cmd, error) {
	if dir == "" {
		dir = DefaultDir
	}
	out, err := runIn(ctx, dir, "bash", filepath.Join(dir, "node.sh"), "init-pid", node)
	if err != nil {
		return nil, fmt.Errorf("e2e: node %s: %w: %s", node, err, strings.TrimSpace(out))
	}
	pid := strings.TrimSpace(out)
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"--target", pid, "--net", "--mount", "--uts", "--pid", "--"}, args...)...)
	cmd.Env = append([]string(nil), nodeEnv...)
	cmd.Dir = "/"
	return cmd, nil
}

// Run runs a command inside a node and returns its combined output.
func (tb *Testbed) Run(ctx context.Context, node string, args ...string) (string, error) {
	cmd, err := Command(ctx, tb.cfg.Dir, node, args...)
	if err != nil {
		return "", err
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	return out.String(), err
}

// controller is the first controller whose node runs (pcs and crm_mon run there).
func (tb *Testbed) controller(ctx context.Context) string {
	for _, n := range tb.names("controller") {
		if tb.NodeRunning(ctx, n) {
			return n
		}
	}
	return "ctl1"
}

// Pcs runs pcs on a controller, with a 2-minute deadline unless ctx has one.
func (tb *Testbed) Pcs(ctx context.Context, args ...string) (string, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
	}
	return tb.Run(ctx, tb.controller(ctx), append([]string{"pcs"}, args...)...)
}

// Status runs `crm_mon -1 --output-as=xml` on a controller (5 s deadline: crm_mon can
// hang while the daemons start).
func (tb *Testbed) Status(ctx context.Context) (*cluster.Status, error) {
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cmd, err := Command(sctx, tb.cfg.Dir, tb.controller(ctx), "crm_mon", "-1", "--output-as=xml")
	if err != nil {
		return nil, err
	}
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("crm_mon: %w", err)
	}
	return cluster.ParseStatus(out)
}

// WaitStatus polls Status every 250 ms until cond holds or ctx ends.
func (tb *Testbed) WaitStatus(ctx context.Context, what string, cond func(*cluster.Status) bool) (*cluster.Status, error) {
	var last *cluster.Status
	var lastErr error
	for {
		s, err := tb.Status(ctx)
		if err == nil && cond(s) {
			return s, nil
		}
		if err == nil {
			last = s
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return last, fmt.Errorf("waiting for %s: %w (last status %s, last error %v)", what, ctx.Err(), describeStatus(last), lastErr)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// describeStatus renders nodes and resources for error messages.
func describeStatus(s *cluster.Status) string {
	if s == nil {
		return "none"
	}
	var parts []string
	for _, n := range s.Nodes {
		parts = append(parts, fmt.Sprintf("%s online=%v unclean=%v", n.Name, n.Online, n.Unclean))
	}
	for _, r := range s.Resources {
		p := fmt.Sprintf("%s %s on %v failed=%v", r.ID, r.Role, r.Nodes, r.Failed)
		if r.Pending != "" {
			p += " pending=" + r.Pending
		}
		parts = append(parts, p)
	}
	return fmt.Sprintf("DC %q quorate=%v: %s", s.DC, s.Quorate, strings.Join(parts, "; "))
}

func run(ctx context.Context, name string, args ...string) (string, error) {
	return runIn(ctx, "/", name, args...)
}

func runIn(ctx context.Context, dir, name string, args ...string) (string, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Minute)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append([]string(nil), nodeEnv...)
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

type owner struct{ uid, gid int }

func hacluster() (owner, error) {
	u, err := user.Lookup("hacluster")
	if err != nil {
		return owner{}, fmt.Errorf("user hacluster (is pacemaker installed?): %w", err)
	}
	g, err := user.LookupGroup("haclient")
	if err != nil {
		return owner{}, fmt.Errorf("group haclient (is pacemaker installed?): %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(g.Gid)
	return owner{uid, gid}, nil
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// Process is a process of a node, as the root namespace sees it.
type Process struct {
	PID       int
	StartTime string // field 22 of /proc/PID/stat: with PID, names the process for certain
	Name      string
}

// Processes lists the live processes of a running node's PID namespace.
func (tb *Testbed) Processes(ctx context.Context, node string) ([]Process, error) {
	out, err := tb.nodeCmd(ctx, "init-pid", node)
	if err != nil {
		return nil, fmt.Errorf("e2e: node %s: %w: %s", node, err, out)
	}
	ns, err := os.Readlink(filepath.Join("/proc", strings.TrimSpace(out), "ns", "pid"))
	if err != nil {
		return nil, fmt.Errorf("e2e: node %s: %w", node, err)
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var ps []Process
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		if l, err := os.Readlink(filepath.Join("/proc", e.Name(), "ns", "pid")); err != nil || l != ns {
			continue
		}
		if p, ok := readProcess(e.Name()); ok {
			ps = append(ps, p)
		}
	}
	return ps, nil
}

// Alive reports whether p still runs (a zombie does not count).
func (p Process) Alive() bool {
	cur, ok := readProcess(strconv.Itoa(p.PID))
	return ok && cur.StartTime == p.StartTime
}

func readProcess(pid string) (Process, bool) {
	b, err := os.ReadFile(filepath.Join("/proc", pid, "stat"))
	if err != nil {
		return Process{}, false
	}
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return Process{}, false
	}
	f := strings.Fields(string(b[end+1:]))
	if len(f) < 20 || f[0] == "Z" {
		return Process{}, false
	}
	n, _ := strconv.Atoi(pid)
	return Process{PID: n, StartTime: f[19], Name: string(b[open+1 : end])}, true
}
