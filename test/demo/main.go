// Command demo shows a host failure recovered through a real Pacemaker cluster: a
// compute host (a process behind an ipmi_sim BMC) hangs, Pacemaker fences it with
// fence_ipmi, the BMC powers it off (verified) and on, and the host comes back. It
// prints each step as it happens and the timeline at the end.
//
//	go run ./test/demo -bin ./bin      (make demo; as root on Debian 12 after make deps)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/novaha/novaha/test/bmcsim"
	"github.com/novaha/novaha/test/cluster"
)

func main() {
	bin := flag.String("bin", "bin", "directory of the built agents")
	verbose := flag.Bool("v", false, "show every command the harness runs")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	d := &demo{out: os.Stdout, start: time.Now()}
	if *verbose {
		d.harnessLog = os.Stderr
	}
	if err := d.run(ctx, *bin); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

const host = "compute-1"

type event struct {
	at   time.Time
	what string
}

type demo struct {
	out        io.Writer
	harnessLog io.Writer
	start      time.Time
	timeline   []event
	failedAt   time.Time
}

func (d *demo) say(format string, args ...any) {
	fmt.Fprintf(d.out, "[%6.2fs] %s\n", time.Since(d.start).Seconds(), fmt.Sprintf(format, args...))
}

func (d *demo) mark(at time.Time, what string) { d.timeline = append(d.timeline, event{at, what}) }

// hostScript is the stand-in compute host: it writes a heartbeat five times a second.
const hostScript = `bash -c 'while :; do date +%s.%N > heartbeat.tmp && mv heartbeat.tmp heartbeat; sleep 0.2; done' </dev/null >/dev/null 2>&1 & echo $! > host.pid`

func (d *demo) run(ctx context.Context, bin string) error {
	if os.Geteuid() != 0 {
		return errors.New("run as root: the demo starts corosync and pacemaker on this machine")
	}
	agentPath, err := filepath.Abs(filepath.Join(bin, "fence_ipmi"))
	if err != nil {
		return err
	}
	if _, err := os.Stat(agentPath); err != nil {
		return fmt.Errorf("%s: run make build first", agentPath)
	}
	if err := bmcsim.Available(); err != nil {
		return fmt.Errorf("%w (make deps installs it)", err)
	}

	fmt.Fprintln(d.out, "novaha demo: a hung compute host fenced through Pacemaker with fence_ipmi")
	fmt.Fprintln(d.out, "(Nova force-down and evacuation join this chain with fence_nova and NovaEvacuate.)")
	fmt.Fprintln(d.out)

	stateDir, err := os.MkdirTemp("", "novaha-demo-bmc")
	if err != nil {
		return err
	}
	defer os.RemoveAll(stateDir)
	bmc, err := bmcsim.Start(ctx, bmcsim.Options{
		Dir: stateDir, InitiallyOff: true, BootDelay: 3 * time.Second,
		Password:   "Demo-Pa55",
		OnCommand:  hostScript,
		OffCommand: `[ -f host.pid ] && kill -9 "$(cat host.pid)"; rm -f host.pid heartbeat`,
	})
	if err != nil {
		return fmt.Errorf("starting the BMC simulator: %w", err)
	}
	defer func() {
		bmc.Stop()
		killHost(stateDir)
	}()
	d.say("BMC of %s (ipmi_sim) listening on %s", host, bmc.Addr())

	link := "/usr/sbin/fence_ipmi"
	if fi, err := os.Lstat(link); err == nil && fi.Mode()&os.ModeSymlink == 0 {
		return fmt.Errorf("%s is installed (a package?): the demo will not replace it", link)
	}
	os.Remove(link)
	if err := os.Symlink(agentPath, link); err != nil {
		return fmt.Errorf("installing %s: %w", link, err)
	}
	defer os.Remove(link)

	d.say("starting a single-node Corosync/Pacemaker cluster on 127.0.0.1 ...")
	c, err := cluster.Start(ctx, cluster.Options{NodeName: "controller-1", Log: d.harnessLog})
	if err != nil {
		return fmt.Errorf("starting the cluster: %w", err)
	}
	defer func() {
		d.say("stopping the cluster")
		if err := c.Stop(context.Background()); err != nil {
			fmt.Fprintln(os.Stderr, "demo: stopping the cluster:", err)
		}
	}()
	d.say("cluster online (controller-1) in %s", c.Timings().Online.Round(10*time.Millisecond))

	create := []string{"stonith", "create", "fence-ipmi-" + host, "fence_ipmi", "ip=" + bmc.Host,
		fmt.Sprintf("ipport=%d", bmc.Port), "username=" + bmc.Username, "password=" + bmc.Password,
		"lanplus=1", "cipher=3", "pcmk_host_list=" + host}
	shown := strings.Replace(strings.Join(create, " "), "password="+bmc.Password, "password=...", 1)
	d.say("pcs %s", shown)
	if out, err := c.Pcs(ctx, create...); err != nil {
		return fmt.Errorf("pcs stonith create: %v\n%s", err, out)
	}
	if err := c.WaitIdle(ctx); err != nil {
		return err
	}

	d.say("powering %s on through its BMC and waiting for it to boot", host)
	if out, err := c.Run(ctx, "stonith_admin", "--unfence", host, "--timeout", "60"); err != nil {
		return fmt.Errorf("powering the host on: %v\n%s", err, out)
	}
	if err := waitHeartbeat(ctx, stateDir, time.Time{}, 30*time.Second); err != nil {
		return fmt.Errorf("the host did not boot: %w", err)
	}
	d.say("%s is up (heartbeat every 0.2 s)", host)

	// The failure: the host hangs. SIGSTOP freezes it, as a kernel hang or a dead NIC
	// would look from outside: alive for its BMC, silent for everyone else.
	pid, err := hostPID(stateDir)
	if err != nil {
		return err
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		return fmt.Errorf("freezing the host: %w", err)
	}
	d.failedAt = time.Now()
	d.mark(d.failedAt, host+" hangs (its process is frozen)")
	d.say("FAILURE: %s hangs", host)

	// Detection: two seconds without a heartbeat. (With pacemaker_remote computes,
	// Pacemaker itself notices the lost connection; that arrives with the sandbox.)
	for {
		age, err := heartbeatAge(stateDir)
		if err == nil && age > 2*time.Second {
			break
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
	d.mark(time.Now(), "failure detected: no heartbeat for 2 s")
	d.say("no heartbeat from %s for 2 s: asking Pacemaker to fence it", host)

	fenceStart := time.Now()
	d.mark(fenceStart, "stonith_admin --reboot "+host)
	done := make(chan error, 1)
	go func() {
		out, err := c.Run(ctx, "stonith_admin", "--reboot", host, "--timeout", "60")
		if err != nil {
			err = fmt.Errorf("%v\n%s", err, out)
		}
		done <- err
	}()
	seen := 0
	var fenceErr error
	for waiting := true; waiting; {
		select {
		case fenceErr = <-done:
			waiting = false
		case <-time.After(20 * time.Millisecond):
		}
		seen = d.showBMC(bmc, fenceStart, seen)
	}
	if fenceErr != nil {
		return fmt.Errorf("fencing failed: %w", fenceErr)
	}
	d.mark(time.Now(), "Pacemaker: "+host+" fenced (reboot succeeded)")
	d.say("Pacemaker reports %s fenced", host)

	if err := waitHeartbeat(ctx, stateDir, fenceStart, 30*time.Second); err != nil {
		return fmt.Errorf("the host did not come back: %w", err)
	}
	d.showBMC(bmc, fenceStart, seen)
	d.mark(time.Now(), host+" back: heartbeat again")
	d.say("%s is back", host)

	hist, err := c.FenceHistory(ctx, host)
	if err == nil {
		for _, e := range hist {
			d.say("fence history: %s of %s by %s: %s (%s)", e.Action, e.Target, e.Delegate, e.Status, e.Completed)
		}
	}
	d.printTimeline()
	return nil
}

// showBMC prints the BMC's power events after from that were not shown yet.
func (d *demo) showBMC(bmc *bmcsim.BMC, from time.Time, seen int) int {
	evs, err := bmc.Log()
	if err != nil {
		return seen
	}
	var relevant []bmcsim.Event
	for _, e := range evs {
		if !e.Time.Before(from) {
			relevant = append(relevant, e)
		}
	}
	for _, e := range relevant[min(seen, len(relevant)):] {
		var what string
		switch {
		case e.Action == bmcsim.ActionOff:
			what = "BMC: power off (host process killed)"
		case e.Action == bmcsim.ActionStatus && e.Value == "0":
			what = "BMC: status read OFF (fence_ipmi verifies the power is off)"
		case e.Action == bmcsim.ActionOn:
			what = "BMC: power on"
		case e.Action == bmcsim.ActionBooted:
			what = "BMC: host booted"
		default:
			continue
		}
		d.mark(e.Time, what)
		fmt.Fprintf(d.out, "[%6.2fs] %s\n", e.Time.Sub(d.start).Seconds(), what)
	}
	return len(relevant)
}

func (d *demo) printTimeline() {
	fmt.Fprintf(d.out, "\nTimeline (from the failure):\n")
	for _, e := range d.timeline {
		fmt.Fprintf(d.out, "  %+8.3fs  %s\n", e.at.Sub(d.failedAt).Seconds(), e.what)
	}
}

func hostPID(dir string) (int, error) {
	data, err := os.ReadFile(filepath.Join(dir, "host.pid"))
	if err != nil {
		return 0, fmt.Errorf("the host is not running: %w", err)
	}
	return strconv.Atoi(strings.TrimSpace(string(data)))
}

func killHost(dir string) {
	if pid, err := hostPID(dir); err == nil {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

func heartbeatAge(dir string) (time.Duration, error) {
	data, err := os.ReadFile(filepath.Join(dir, "heartbeat"))
	if err != nil {
		return 0, err
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(string(data)), 64)
	if err != nil {
		return 0, err
	}
	return time.Since(time.Unix(0, int64(f*1e9))), nil
}

// waitHeartbeat waits for a heartbeat written after since.
func waitHeartbeat(ctx context.Context, dir string, since time.Time, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if age, err := heartbeatAge(dir); err == nil && age < time.Second && time.Now().Add(-age).After(since) {
			return nil
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("no heartbeat within %s", limit)
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
