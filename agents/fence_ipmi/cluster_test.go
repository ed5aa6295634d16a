package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/novaha/novaha/test/bmcsim"
	"github.com/novaha/novaha/test/cluster"
)

// TestFencingThroughPacemaker fences a host through a real Pacemaker cluster: the
// device is created with pcs, and pacemaker-fenced runs the agent with its stdin
// protocol. The host is a fictitious node (never the cluster's only member).
func TestFencingThroughPacemaker(t *testing.T) {
	if os.Getenv("NOVAHA_CLUSTER_TESTS") != "1" {
		t.Skip("needs a real cluster on this machine: set NOVAHA_CLUSTER_TESTS=1 (make test does)")
	}
	b, alive := hostBMC(t, bmcsim.Options{Password: "Bmc-Pa55"})
	if r := runAgent(t, stdinFor(b, "on")); r.code != 0 {
		t.Fatalf("on: %+v", r)
	}
	waitFor(t, "the host to boot", alive)

	// Pacemaker finds fence agents in /usr/sbin only.
	link := "/usr/sbin/fence_ipmi"
	if _, err := os.Lstat(link); err == nil {
		t.Skipf("%s exists (installed package?): not replacing it", link)
	}
	if err := os.Symlink(binary(t), link); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(link) })

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := cluster.StartTest(ctx, t, cluster.Options{})
	pcs := func(args ...string) {
		t.Helper()
		if out, err := c.Pcs(ctx, args...); err != nil {
			t.Fatalf("pcs %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	pcs("stonith", "create", "fence-compute-1", "fence_ipmi", "ip="+b.Host, fmt.Sprintf("ipport=%d", b.Port),
		"username="+b.Username, "password="+b.Password, "lanplus=1", "cipher=3", "pcmk_host_list=compute-1")
	if err := c.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	pid := func() string {
		data, _ := os.ReadFile(filepath.Join(b.Dir, "host.pid"))
		return strings.TrimSpace(string(data))
	}
	before := pid()

	start := time.Now()
	if out, err := c.Run(ctx, "stonith_admin", "--reboot", "compute-1", "--timeout", "60"); err != nil {
		t.Fatalf("stonith_admin --reboot: %v\n%s", err, out)
	}
	t.Logf("stonith_admin --reboot compute-1 through fence_ipmi: %s", time.Since(start).Round(time.Millisecond))
	evs, _ := b.Log()
	if !statusAfter(evs, bmcsim.ActionOff, "0") || bmcsim.Actions(evs, bmcsim.ActionStatus)[len(bmcsim.Actions(evs, bmcsim.ActionStatus))-1] != bmcsim.ActionOn {
		t.Errorf("reboot through Pacemaker should verify off, then power on:\n%v", evs)
	}
	waitFor(t, "the host to boot again", alive)
	if pid() == before {
		t.Errorf("the host was not restarted")
	}

	if out, err := c.Run(ctx, "stonith_admin", "--fence", "compute-1", "--timeout", "60"); err != nil {
		t.Fatalf("stonith_admin --fence: %v\n%s", err, out)
	}
	if on, _ := b.PowerState(); on || alive() {
		t.Errorf("after --fence the host is still up (power on=%v)", on)
	}
	if out, err := c.Run(ctx, "stonith_admin", "--unfence", "compute-1", "--timeout", "60"); err != nil {
		t.Fatalf("stonith_admin --unfence: %v\n%s", err, out)
	}
	waitFor(t, "the host to boot after unfencing", alive)

	if err := c.CheckFenceHistory(ctx, "compute-1", "reboot", "off", "on"); err != nil {
		t.Error(err)
	}

	// A wrong password must fail the fencing, fast, and leave the host alone.
	pcs("stonith", "update", "fence-compute-1", "password=Wr0ng-Secret")
	if err := c.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	out, err := c.Run(ctx, "stonith_admin", "--fence", "compute-1", "--timeout", "30")
	if err == nil {
		t.Fatalf("fencing with a wrong password succeeded:\n%s", out)
	}
	t.Logf("fencing with a wrong password failed after %s (exit %d)", time.Since(start).Round(time.Millisecond), cluster.ExitCode(err))
	if on, _ := b.PowerState(); !on || !alive() {
		t.Errorf("a failed fencing touched the host")
	}
	// What the agent says reaches the log through pacemaker-fenced.
	fenced, err := c.FencerLog()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range fenced {
		if strings.Contains(line, "Wr0ng-Secret") || strings.Contains(line, b.Password) {
			t.Errorf("a password reached the fencer's log: %s", line)
		}
	}
	logs := strings.Join(fenced, "\n")
	if !strings.Contains(logs, "fence_ipmi") {
		t.Errorf("the fencer's log never mentions fence_ipmi: is it the right log?")
	}
}
