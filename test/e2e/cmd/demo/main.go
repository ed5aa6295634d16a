// Command demo shows instance HA on real components (make demo): the Nova sandbox
// (test/nova), the multi-node testbed (test/e2e: two controllers, pacemaker_remote
// computes, a simulated BMC each), the admin guide's configuration (configure.sh:
// fence_ipmi + fence_nova per compute, NovaEvacuate, NovaCompute), servers booted over
// the computes; then one compute is killed, and it prints the recovery as it happens:
// fenced by its BMC, forced down in Nova, its servers evacuated one by one, recorded
// evacuated, the host back and enabled; then the timeline. At the end it puts everything
// back (servers deleted, testbed down, the sandbox's own nova-compute running) unless
// -keep. Root only, Debian 12; run it under flock /tmp/novaha-nova.lock (make demo does).
//
//	go run ./test/e2e/cmd/demo -bin ./bin [-servers 6] [-power-loss] [-keep]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/novaha/novaha/test/e2e"
	"github.com/novaha/novaha/test/nova"
)

func main() {
	bin := flag.String("bin", "bin", "directory of the built agents")
	servers := flag.Int("servers", 6, "servers to boot, round-robin over the computes")
	powerLoss := flag.Bool("power-loss", false, "cut the host's link before killing it (as a real power failure: only the remote connection's monitor notices)")
	keep := flag.Bool("keep", false, "leave the testbed up and the servers in place (make e2e-down, then test/nova/sandbox compute start computeN)")
	verbose := flag.Bool("v", false, "show the scripts' output")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	d := &demo{start: time.Now(), servers: *servers, powerLoss: *powerLoss, keep: *keep, bin: *bin}
	if *verbose {
		d.log = os.Stderr
	}
	err := d.run(ctx)
	d.cleanup()
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

type demo struct {
	start     time.Time
	servers   int
	powerLoss bool
	keep      bool
	bin       string
	log       io.Writer

	sb      *nova.Sandbox
	tc      *nova.Client
	tb      *e2e.Testbed
	hosts   []string
	stopped []string // hosts whose sandbox nova-compute the demo stopped
	prefix  string
}

func (d *demo) say(format string, args ...any) {
	fmt.Printf("[%7.1fs] %s\n", time.Since(d.start).Seconds(), fmt.Sprintf(format, args...))
}

func (d *demo) run(ctx context.Context) error {
	d.say("starting the Nova sandbox (installs its packages the first time: minutes)")
	sb, err := nova.Ensure(ctx, nova.Options{Install: true, Log: d.log})
	if err != nil {
		return err
	}
	d.sb, d.hosts = sb, sb.Computes
	if d.tc, err = sb.Client(ctx); err != nil {
		return err
	}
	if len(d.hosts) < 2 {
		return fmt.Errorf("the sandbox has %d compute hosts: evacuation needs 2", len(d.hosts))
	}
	for _, h := range d.hosts {
		svc, err := d.tc.ComputeService(ctx, h)
		if err != nil {
			return err
		}
		if !e2e.Healthy(svc) {
			return fmt.Errorf("%s is not healthy in Nova (%s, %s, forced_down=%t): put it back first", h, svc.State, svc.Status, svc.ForcedDown)
		}
	}
	d.say("Nova runs: compute hosts %s", strings.Join(d.hosts, ", "))

	d.say("starting the cluster: controllers ctl1, ctl2; %s as pacemaker_remote nodes, each in its own namespaces with a simulated BMC", strings.Join(d.hosts, ", "))
	for _, h := range d.hosts {
		if err := sb.StopCompute(ctx, h); err != nil {
			return err
		}
		d.stopped = append(d.stopped, h)
	}
	if d.tb, err = e2e.Up(ctx, e2e.Config{Computes: d.hosts, AgentDir: d.bin, Fencing: true, Log: d.log}); err != nil {
		return err
	}
	d.say("cluster online after %v", d.tb.Online.Round(100*time.Millisecond))
	d.say("configuring instance HA as docs/admin-guide.md says (test/e2e/configure.sh): fence_ipmi + fence_nova per compute, NovaEvacuate, NovaCompute")
	cctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	err = d.tb.Configure(cctx, sb, d.tc, d.hosts)
	cancel()
	if err != nil {
		return err
	}
	if out, err := d.tb.Pcs(ctx, "status", "resources"); err == nil {
		fmt.Println(indent(out))
	}
	d.say("NovaCompute runs nova-compute inside every compute node; Nova reports them up")

	d.prefix = fmt.Sprintf("demo%d", time.Now().Unix())
	d.say("booting %d servers over %s", d.servers, strings.Join(d.hosts, ", "))
	all, err := sb.Seed(ctx, nova.SeedOptions{Servers: d.servers, Prefix: d.prefix, Hosts: d.hosts})
	if err != nil {
		return err
	}
	victim := d.hosts[0]
	var on []nova.Server
	for _, s := range all {
		if s.Host == victim {
			on = append(on, s)
		}
	}
	d.say("%d servers ACTIVE, %d of them on %s", len(all), len(on), victim)
	bmc, ok := d.tb.BMC(victim)
	if !ok {
		return fmt.Errorf("no BMC for %s", victim)
	}

	killed := time.Now()
	how := "killing"
	kill := d.tb.Kill
	if d.powerLoss {
		how, kill = "cutting the power of", d.tb.PowerLoss
	}
	d.say("%s %s (every process of the node dies at once)", how, victim)
	if err := kill(ctx, victim); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	r, err := e2e.WatchRecovery(wctx, d.tc, bmc, victim, on, killed, func(e string) { d.say("%s", e) })
	cancel()
	if err != nil {
		return fmt.Errorf("%w\n%s", err, r)
	}
	if ctl := d.evacuateNode(ctx); ctl != "" {
		if out, err := d.tb.Run(ctx, ctl, "/usr/lib/ocf/resource.d/novaha/NovaEvacuate", "status"); err == nil {
			d.say("NovaEvacuate status on %s:", ctl)
			fmt.Println(indent(out))
		}
	}
	fmt.Println()
	fmt.Printf("Timeline of %s (from the kill):\n", victim)
	for _, e := range r.Timeline {
		fmt.Println("  " + e)
	}
	fmt.Printf("\n%d servers: kill to the last ACTIVE elsewhere %.1fs; host back and enabled after %.1fs.\n",
		len(on), r.LastActive.Sub(killed).Seconds(), r.Back.Sub(killed).Seconds())
	return nil
}

// evacuateNode is the controller where nova-evacuate runs, "" if none.
func (d *demo) evacuateNode(ctx context.Context) string {
	s, err := d.tb.Status(ctx)
	if err != nil {
		return ""
	}
	if on := e2e.ActiveOn(s, "nova-evacuate"); len(on) == 1 {
		return on[0]
	}
	return ""
}

// cleanup puts the sandbox back as the demo found it, unless -keep.
func (d *demo) cleanup() {
	if d.keep {
		if d.tb != nil {
			d.say("kept: the testbed runs (make e2e-status, make e2e-down); after it, test/nova/sandbox compute start for %s", strings.Join(d.stopped, ", "))
		}
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if d.prefix != "" {
		d.say("deleting the demo's servers")
		if err := d.sb.Unseed(ctx, d.prefix); err != nil {
			d.say("unseed: %v", err)
		}
	}
	if d.tb != nil {
		d.say("taking the cluster down")
		if err := d.tb.Down(ctx); err != nil {
			d.say("down: %v", err)
		}
	}
	for _, h := range d.stopped {
		if err := e2e.RestoreHost(ctx, d.sb, d.tc, h); err != nil {
			d.say("%v", err)
		}
	}
	if len(d.stopped) > 0 {
		d.say("the sandbox's own nova-compute runs again for %s", strings.Join(d.stopped, ", "))
	}
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}
