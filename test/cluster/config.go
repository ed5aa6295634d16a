package cluster

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"syscall"
)

// validName is what the harness accepts for cluster and node names: they are written
// into corosync.conf and the CIB verbatim.
var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

// renderCorosyncConf returns a corosync.conf for a one-node cluster on 127.0.0.1.
// Corosync logs to stderr only (the harness captures it); no syslog, no log file.
func renderCorosyncConf(clusterName, nodeName string) ([]byte, error) {
	if !validName.MatchString(clusterName) {
		return nil, fmt.Errorf("invalid cluster name %q", clusterName)
	}
	if !validName.MatchString(nodeName) {
		return nil, fmt.Errorf("invalid node name %q", nodeName)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, `# Written by github.com/novaha/novaha/test/cluster for a test run; the machine's own
# file is restored when the run stops.
totem {
	version: 2
	cluster_name: %s
	transport: knet
	crypto_cipher: none
	crypto_hash: none
}

logging {
	to_stderr: yes
	to_logfile: no
	to_syslog: no
	timestamp: hires
	fileline: off
	debug: off
}

quorum {
	provider: corosync_votequorum
}

nodelist {
	node {
		name: %s
		nodeid: 1
		ring0_addr: 127.0.0.1
	}
}
`, clusterName, nodeName)
	return b.Bytes(), nil
}

// buildCIB makes a fresh CIB in dir/cib.xml with the given cluster properties, using
// Pacemaker's own tools offline (cibadmin --empty, then crm_attribute with CIB_file), so
// the schema version is whatever the installed Pacemaker wants. It returns the XML.
func buildCIB(ctx context.Context, dir string, props map[string]string, logf func(string, ...any)) ([]byte, error) {
	file := filepath.Join(dir, "cib.xml")
	out, err := runCommand(ctx, os.Environ(), logf, "cibadmin", "--empty")
	if err != nil {
		return nil, fmt.Errorf("generating an empty CIB: %w", err)
	}
	if err := os.WriteFile(file, []byte(out), 0o600); err != nil {
		return nil, fmt.Errorf("writing %s: %w", file, err)
	}
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	env := append(os.Environ(), "CIB_file="+file)
	for _, k := range keys {
		if _, err := runCommand(ctx, env, logf, "crm_attribute", "--type", "crm_config",
			"--name", k, "--update", props[k]); err != nil {
			return nil, fmt.Errorf("setting cluster property %s=%s in the fresh CIB: %w", k, props[k], err)
		}
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", file, err)
	}
	return b, nil
}

// owner is a numeric user and group.
type owner struct{ uid, gid int }

// lookupHacluster returns the uid of user hacluster and the gid of group haclient, the
// identity Pacemaker's unprivileged daemons run as.
func lookupHacluster() (owner, error) {
	u, err := user.Lookup("hacluster")
	if err != nil {
		return owner{}, fmt.Errorf("looking up user hacluster (is pacemaker installed?): %w", err)
	}
	g, err := user.LookupGroup("haclient")
	if err != nil {
		return owner{}, fmt.Errorf("looking up group haclient (is pacemaker installed?): %w", err)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return owner{}, fmt.Errorf("uid of hacluster %q: %w", u.Uid, err)
	}
	gid, err := strconv.Atoi(g.Gid)
	if err != nil {
		return owner{}, fmt.Errorf("gid of haclient %q: %w", g.Gid, err)
	}
	return owner{uid: uid, gid: gid}, nil
}

// checkReachable verifies that a process running as o can enter every directory on the
// way to dir, which Pacemaker's daemons need to write their log there.
func checkReachable(dir string, o owner) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("resolving %s: %w", dir, err)
	}
	for p := abs; ; p = filepath.Dir(p) {
		st, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("inspecting %s: %w", p, err)
		}
		if !canEnter(st, o) {
			return fmt.Errorf("%s (mode %v) cannot be entered by user hacluster, so Pacemaker's "+
				"daemons could not write their log under %s: choose a StateDir under /var/tmp, "+
				"or leave it empty", p, st.Mode().Perm(), abs)
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

// canEnter applies the execute-permission rules for user o to a directory.
func canEnter(st fs.FileInfo, o owner) bool {
	mode := st.Mode().Perm()
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return mode&0o001 != 0
	}
	switch {
	case int(sys.Uid) == o.uid:
		return mode&0o100 != 0
	case int(sys.Gid) == o.gid:
		return mode&0o010 != 0
	default:
		return mode&0o001 != 0
	}
}
