package e2e

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Defaults of Config.
const (
	DefaultDir         = "/var/tmp/novaha-e2e"
	DefaultControllers = 2
	DefaultComputes    = 3
	// DefaultRemoted is where test/e2e/deps.sh extracts Debian's pacemaker-remote: the
	// package cannot be installed beside pacemaker (it declares a conflict and removes it).
	DefaultRemoted = "/opt/novaha-e2e/pacemaker-remote/usr/sbin/pacemaker-remoted"
	// DefaultBMCPortBase: the BMC of the Nth node (controllers first) answers on UDP port
	// base+N of the bridge address.
	DefaultBMCPortBase = 16230
	DefaultBootDelay   = 5 * time.Second
	// DefaultNovaDir is the Nova sandbox's state directory (test/nova), whose ports.env
	// names the ports to forward into the nodes.
	DefaultNovaDir = "/var/tmp/novaha-nova"
	// DefaultNovaPortBase is the sandbox's default port base, used when it has not
	// been started yet: Keystone +0, nova-api +1, Placement +2, Glance +3, Neutron +4,
	// MariaDB +6, AMQP +7.
	DefaultNovaPortBase = 16000
)

// The testbed's network: a bridge in the root namespace with the first address of
// the subnet (the BMCs listen there), and one veth per node.
const (
	subnetPrefix = "10.77.0."
	bridgeName   = "nha-e2e"
	bridgeAddr   = subnetPrefix + "1"
	prefixLen    = 24
)

// Config describes a testbed. The zero value is usable.
type Config struct {
	// Dir holds the state of the testbed: per-node roots and logs, the BMCs, the
	// generated scripts. Default DefaultDir. It is kept after Down, for its logs, and
	// reused (wiped node by node) by the next Up.
	Dir string
	// Controllers is the number of full cluster nodes (corosync + pacemakerd), named
	// ctl1..ctlN. Default DefaultControllers; at most 9.
	Controllers int
	// Computes are the pacemaker_remote nodes, named like the Nova sandbox's compute
	// hosts. Default compute1..compute<DefaultComputes>; at most 99.
	Computes []string
	// Remoted is the pacemaker-remoted binary. Default DefaultRemoted.
	Remoted string
	// AgentDir is a directory of built agents (make build's bin/): fence_* are installed
	// for the controllers' Pacemaker (overlay on /usr/sbin), the others as OCF agents of
	// provider novaha on every node. Empty installs none.
	AgentDir string
	// Fencing creates a fence_ipmi device per node, controllers included (pcs stonith
	// create, through its BMC), and leaves stonith-enabled on; needs AgentDir with
	// fence_ipmi. The controllers need theirs even when only computes are fenced: once a
	// device has provides=unfencing (fence_nova's), Pacemaker unfences every node before
	// it probes that device there, and unfencing a node no device can fence fails and
	// blocks every fence device's start. Without Fencing
	// stonith-enabled is false, as Pacemaker starts no resource (remote connections
	// included) with fencing enabled and no device.
	Fencing bool
	// BMCPortBase: see DefaultBMCPortBase.
	BMCPortBase int
	// BootDelay is the time from a BMC's power on to the node's start. Shorter than the
	// cluster takes to announce a fencing result, a rebooted node learns it was fenced
	// and stays down (testbed.md): keep it about 5 s.
	BootDelay time.Duration
	// NovaPorts are the TCP ports of 127.0.0.1 forwarded into every node, so processes
	// there reach the Nova sandbox as if it were local. Default: read from
	// <NOVA_SANDBOX_DIR, else DefaultNovaDir>/ports.env, else the sandbox's defaults.
	NovaPorts []int
	// Log receives progress lines. Nil discards them.
	Log io.Writer
	// StartTimeout bounds Up's wait for the cluster. Default 3 minutes.
	StartTimeout time.Duration
}

func (c Config) withDefaults() (Config, error) {
	if c.Dir == "" {
		c.Dir = DefaultDir
	}
	dir, err := filepath.Abs(c.Dir)
	if err != nil {
		return c, fmt.Errorf("state directory: %w", err)
	}
	c.Dir = dir
	if c.Controllers == 0 {
		c.Controllers = DefaultControllers
	}
	if c.Controllers < 1 || c.Controllers > 9 {
		return c, fmt.Errorf("controllers: %d, want 1 to 9", c.Controllers)
	}
	if c.Computes == nil {
		for i := 1; i <= DefaultComputes; i++ {
			c.Computes = append(c.Computes, fmt.Sprintf("compute%d", i))
		}
	}
	if len(c.Computes) > 99 {
		return c, fmt.Errorf("computes: %d, want at most 99", len(c.Computes))
	}
	seen := map[string]bool{}
	for _, h := range c.Computes {
		if !validName(h) || strings.HasPrefix(h, "ctl") {
			return c, fmt.Errorf("compute name %q: want [a-z0-9-], at most 11 characters, not ctl*", h)
		}
		if seen[h] {
			return c, fmt.Errorf("compute %q listed twice", h)
		}
		seen[h] = true
	}
	if c.Remoted == "" {
		c.Remoted = DefaultRemoted
	}
	if c.BMCPortBase == 0 {
		c.BMCPortBase = DefaultBMCPortBase
	}
	if c.BootDelay == 0 {
		c.BootDelay = DefaultBootDelay
	}
	if c.NovaPorts == nil {
		dir := os.Getenv("NOVA_SANDBOX_DIR") // the sandbox's own variable (test/nova)
		if dir == "" {
			dir = DefaultNovaDir
		}
		c.NovaPorts = novaPorts(dir)
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	if c.StartTimeout <= 0 {
		c.StartTimeout = 3 * time.Minute
	}
	if c.AgentDir != "" {
		if c.AgentDir, err = filepath.Abs(c.AgentDir); err != nil {
			return c, fmt.Errorf("agent directory: %w", err)
		}
	}
	if c.Fencing {
		if c.AgentDir == "" {
			return c, fmt.Errorf("fencing needs the agent directory (fence_ipmi)")
		}
		if _, err := os.Stat(filepath.Join(c.AgentDir, "fence_ipmi")); err != nil {
			return c, fmt.Errorf("fencing needs fence_ipmi in %s (make build): %w", c.AgentDir, err)
		}
	}
	return c, nil
}

// validName: node names become interface names ("nha-" + name, at most 15 bytes) and
// Pacemaker node names.
func validName(s string) bool {
	if s == "" || len(s) > 11 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

// novaPorts reads the Nova sandbox's ports.env (KEY_PORT=N lines); without one, the
// sandbox's default ports. epmd and Erlang distribution ports are not forwarded: only
// RabbitMQ itself uses them.
func novaPorts(novaDir string) []int {
	f, err := os.Open(filepath.Join(novaDir, "ports.env"))
	if err != nil {
		b := DefaultNovaPortBase
		return []int{b, b + 1, b + 2, b + 3, b + 4, b + 6, b + 7}
	}
	defer f.Close()
	var ports []int
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if !ok || !strings.HasSuffix(k, "_PORT") || k == "EPMD_PORT" || k == "RABBIT_DIST_PORT" {
			continue
		}
		if p, err := strconv.Atoi(v); err == nil && p > 0 && p < 65536 {
			ports = append(ports, p)
		}
	}
	return ports
}

// Node is one node of the testbed.
type Node struct {
	Name  string // ctlN or the compute's name; the Pacemaker node name
	Role  string // "controller" or "compute"
	Addr  string // its address on the testbed network
	NetNS string // its network namespace (ip netns)
	Veth  string // the root namespace's end of its veth pair
	// BMCPort is the UDP port of its BMC on the bridge address.
	BMCPort int
}

// nodes lists the controllers (10.77.0.11..) then the computes (10.77.0.101..).
func (c Config) nodes() []Node {
	var ns []Node
	for i := 1; i <= c.Controllers; i++ {
		name := fmt.Sprintf("ctl%d", i)
		ns = append(ns, Node{Name: name, Role: "controller", Addr: fmt.Sprintf("%s%d", subnetPrefix, 10+i),
			NetNS: "nha-" + name, Veth: "nha-" + name, BMCPort: c.BMCPortBase + len(ns) + 1})
	}
	for i, h := range c.Computes {
		ns = append(ns, Node{Name: h, Role: "compute", Addr: fmt.Sprintf("%s%d", subnetPrefix, 101+i),
			NetNS: "nha-" + h, Veth: "nha-" + h, BMCPort: c.BMCPortBase + len(ns) + 1})
	}
	return ns
}
