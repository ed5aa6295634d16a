package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/novaha/novaha/lib/virt/virttest"
	"github.com/novaha/novaha/test/cluster"
)

// TestFencingThroughPacemaker fences a libvirt domain through a real Pacemaker cluster:
// the device is created with pcs, pacemaker-fenced runs fence_libvirt with its stdin
// protocol (the SASL password included), and fence_libvirt hands each device action to
// its backend. The fenced host is a fictitious node, compute-1, mapped to the test
// driver's domain "test" by pcmk_host_map (never the cluster's only member).
func TestFencingThroughPacemaker(t *testing.T) {
	if os.Getenv("NOVAHA_CLUSTER_TESTS") != "1" {
		t.Skip("needs a real cluster on this machine: set NOVAHA_CLUSTER_TESTS=1 (make test does)")
	}
	d := virttest.StartTestDaemonTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	state := func() string {
		t.Helper()
		st, err := virttest.Virsh(ctx, d.URI, "domstate", "test")
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	domID := func() string {
		t.Helper()
		id, err := virttest.Virsh(ctx, d.URI, "domid", "test")
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	if st := state(); st != "running" {
		t.Fatalf("the test domain is %q before fencing", st)
	}

	// Pacemaker finds fence agents in /usr/sbin only; the link resolves to the build,
	// beside which the agent finds its backend (libexec/).
	link := "/usr/sbin/fence_libvirt"
	if _, err := os.Lstat(link); err == nil {
		t.Skipf("%s exists (installed package?): not replacing it", link)
	}
	if err := os.Symlink(binary(t), link); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(link) })

	c := cluster.StartTest(ctx, t, cluster.Options{})
	pcs := func(args ...string) {
		t.Helper()
		if out, err := c.Pcs(ctx, args...); err != nil {
			t.Fatalf("pcs %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	// SASL over TCP: the password reaches the backend only through stdin.
	pcs("stonith", "create", "fence-compute-1", "fence_libvirt", "uri="+d.TCPURI, "username="+d.SASLUser,
		"password="+d.SASLPassword, "pcmk_host_map=compute-1:test")
	if err := c.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}

	before := domID()
	start := time.Now()
	if out, err := c.Run(ctx, "stonith_admin", "--reboot", "compute-1", "--timeout", "60"); err != nil {
		t.Fatalf("stonith_admin --reboot: %v\n%s", err, out)
	}
	t.Logf("stonith_admin --reboot compute-1 through fence_libvirt: %s", time.Since(start).Round(time.Millisecond))
	// Reboot is destroy then create: the domain runs again, under a new ID.
	if st, id := state(), domID(); st != "running" || id == before {
		t.Errorf("after --reboot the domain is %q with ID %s (was %s): not restarted", st, id, before)
	}

	if out, err := c.Run(ctx, "stonith_admin", "--fence", "compute-1", "--timeout", "60"); err != nil {
		t.Fatalf("stonith_admin --fence: %v\n%s", err, out)
	}
	if st := state(); st != "shut off" {
		t.Errorf("after --fence the domain is %q, want shut off", st)
	}
	if out, err := c.Run(ctx, "stonith_admin", "--unfence", "compute-1", "--timeout", "60"); err != nil {
		t.Fatalf("stonith_admin --unfence: %v\n%s", err, out)
	}
	if st := state(); st != "running" {
		t.Errorf("after --unfence the domain is %q, want running", st)
	}

	if err := c.CheckFenceHistory(ctx, "compute-1", "reboot", "off", "on"); err != nil {
		t.Error(err)
	}

	// A wrong password must fail the fencing and leave the domain alone.
	pcs("stonith", "update", "fence-compute-1", "password=Wr0ng-Secret")
	if err := c.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	out, err := c.Run(ctx, "stonith_admin", "--fence", "compute-1", "--timeout", "30")
	if err == nil {
		t.Fatalf("fencing with a wrong password succeeded:\n%s", out)
	}
	t.Logf("fencing with a wrong password failed (exit %d)", cluster.ExitCode(err))
	if st := state(); st != "running" {
		t.Errorf("a failed fencing touched the domain: it is %q", st)
	}
	// What the agent says reaches the log through pacemaker-fenced.
	fenced, err := c.FencerLog()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range fenced {
		if strings.Contains(line, "Wr0ng-Secret") || strings.Contains(line, d.SASLPassword) {
			t.Errorf("a password reached the fencer's log: %s", line)
		}
	}
	logs := strings.Join(fenced, "\n")
	if !strings.Contains(logs, "fence_libvirt") {
		t.Errorf("the fencer's log never mentions fence_libvirt: is it the right log?")
	}
	// The failure is the backend's (libvirt's SASL refusal), reached through the front.
	if !strings.Contains(logs, "authentication failed") {
		t.Errorf("the fencer's log does not show the agent's authentication failure")
	}
}
