// Command testbed brings the end-to-end testbed (package e2e) up and down for humans:
//
//	testbed up [-computes compute1,compute2,compute3] [-controllers 2] [-agents bin] [-no-fencing]
//	testbed status                  nodes, BMCs and crm_mon of a controller
//	testbed exec NODE CMD [ARG...]  run a command inside a node (crm_mon, pcs, stonith_admin...)
//	testbed kill NODE               power a node off behind its BMC's back (its TCP peers see
//	                                the connections close)
//	testbed power-loss NODE         the same, with its link cut first: peers see nothing
//	testbed down                    stop everything the testbed started; cleans up a crashed one
//
// `up` starts `testbed serve` in the background, in its own session, with its log in
// <dir>/testbed.log, and returns once the cluster is online; serve owns the testbed (its
// BMCs and forwarders run in it) until `down` sends it SIGTERM. `up` on a running testbed
// only reports it. The state directory is -dir (default /var/tmp/novaha-e2e).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/novaha/novaha/test/e2e"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	cmd, args := os.Args[1], os.Args[2:]
	var err error
	switch cmd {
	case "up":
		err = up(args)
	case "serve":
		err = serve(args)
	case "down":
		err = down(args)
	case "status":
		err = status(args)
	case "exec":
		err = execIn(args)
	case "kill":
		err = kill("kill", args)
	case "power-loss":
		err = kill("power-loss", args)
	default:
		usage()
	}
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			os.Exit(ee.ExitCode())
		}
		fmt.Fprintln(os.Stderr, "testbed:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: testbed up|down|status|exec NODE CMD...|kill NODE|power-loss NODE [-dir DIR]")
	os.Exit(2)
}

// upFlags are shared by up and serve (up passes them on).
func upFlags(name string, args []string) (e2e.Config, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	var cfg e2e.Config
	var computes string
	var noFencing bool
	fs.StringVar(&cfg.Dir, "dir", e2e.DefaultDir, "state directory")
	fs.IntVar(&cfg.Controllers, "controllers", e2e.DefaultControllers, "number of controllers (ctl1..ctlN)")
	fs.StringVar(&computes, "computes", "compute1,compute2,compute3", "compute nodes, comma-separated (empty: none)")
	fs.StringVar(&cfg.AgentDir, "agents", "bin", "built agents to install in the nodes (make build); empty: none")
	fs.BoolVar(&noFencing, "no-fencing", false, "no fence_ipmi devices; stonith-enabled=false")
	fs.DurationVar(&cfg.BootDelay, "boot-delay", e2e.DefaultBootDelay, "BMC power on to node start")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	cfg.Computes = []string{}
	for _, c := range strings.Split(computes, ",") {
		if c = strings.TrimSpace(c); c != "" {
			cfg.Computes = append(cfg.Computes, c)
		}
	}
	cfg.Fencing = !noFencing && len(cfg.Computes) > 0
	if cfg.AgentDir != "" {
		abs, err := filepath.Abs(cfg.AgentDir)
		if err != nil {
			return cfg, err
		}
		cfg.AgentDir = abs
	}
	return cfg, nil
}

// dirFlag parses -dir, whose default is the running testbed's state directory.
func dirFlag(name string, args []string) (string, []string, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	def := e2e.DefaultDir
	if _, d, ok := e2e.Running(); ok && d != "" {
		def = d
	}
	dir := fs.String("dir", def, "state directory")
	if err := fs.Parse(args); err != nil {
		return "", nil, err
	}
	return *dir, fs.Args(), nil
}

func up(args []string) error {
	cfg, err := upFlags("up", args)
	if err != nil {
		return err
	}
	if pid, dir, ok := e2e.Running(); ok {
		if _, err := os.Stat(filepath.Join(dir, "ready")); err == nil && dir == cfg.Dir {
			fmt.Printf("testbed: already up (owner pid %d); `testbed status` shows it\n", pid)
			return nil
		}
		return fmt.Errorf("a testbed (pid %d, state in %s) is running, starting or stopping", pid, dir)
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return err
	}
	_ = os.Remove(filepath.Join(cfg.Dir, "ready"))
	self, err := os.Executable()
	if err != nil {
		return err
	}
	logPath := filepath.Join(cfg.Dir, "testbed.log")
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer log.Close()
	c := exec.Command(self, append([]string{"serve"}, args...)...)
	c.Stdout, c.Stderr = log, log
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := c.Start(); err != nil {
		return fmt.Errorf("starting testbed serve: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- c.Wait() }()
	fmt.Printf("testbed: starting (pid %d, log %s)\n", c.Process.Pid, logPath)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-exited:
			tail, _ := os.ReadFile(logPath)
			return fmt.Errorf("testbed serve exited (%v):\n%s", err, tail)
		case <-tick.C:
			if _, err := os.Stat(filepath.Join(cfg.Dir, "ready")); err == nil {
				fmt.Println("testbed: up")
				return status([]string{"-dir", cfg.Dir})
			}
		}
	}
}

// serve owns a testbed until SIGTERM or SIGINT.
func serve(args []string) error {
	cfg, err := upFlags("serve", args)
	if err != nil {
		return err
	}
	cfg.Log = os.Stdout
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	tb, err := e2e.Up(ctx, cfg)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(cfg.Dir, "ready"), nil, 0o644); err != nil {
		_ = tb.Down(context.Background())
		return err
	}
	<-ctx.Done()
	_ = os.Remove(filepath.Join(cfg.Dir, "ready"))
	dctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return tb.Down(dctx)
}

func down(args []string) error {
	dir, _, err := dirFlag("down", args)
	if err != nil {
		return err
	}
	if pid, rdir, ok := e2e.Running(); ok && pid > 0 && rdir == dir {
		fmt.Printf("testbed: stopping (pid %d)\n", pid)
		if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
			return fmt.Errorf("signalling the testbed's owner %d: %w", pid, err)
		}
		deadline := time.Now().Add(3 * time.Minute)
		for {
			if _, _, ok := e2e.Running(); !ok {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("testbed owner %d still running after 3 minutes; see %s/testbed.log", pid, dir)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	// A testbed whose owner died leaves its nodes and network: remove them.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := e2e.Recover(ctx); err != nil {
		return err
	}
	fmt.Println("testbed: down")
	return nil
}

func status(args []string) error {
	dir, _, err := dirFlag("status", args)
	if err != nil {
		return err
	}
	pid, _, ok := e2e.Running()
	if !ok {
		fmt.Println("testbed: not running")
		os.Exit(3)
	}
	fmt.Printf("testbed: owner pid %d, state in %s\n", pid, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nodes, _ := filepath.Glob(filepath.Join(dir, "nodes", "*"))
	for _, n := range nodes {
		out, _ := exec.CommandContext(ctx, "bash", filepath.Join(dir, "node.sh"), "status", filepath.Base(n)).CombinedOutput()
		fmt.Print(string(out))
	}
	for _, ctl := range nodes {
		name := filepath.Base(ctl)
		if !strings.HasPrefix(name, "ctl") {
			continue
		}
		c, err := e2e.Command(ctx, dir, name, "crm_mon", "-1", "-r")
		if err != nil {
			continue
		}
		c.Stdout, c.Stderr = os.Stdout, os.Stderr
		return c.Run()
	}
	return errors.New("no controller runs")
}

func execIn(args []string) error {
	dir, rest, err := dirFlag("exec", args)
	if err != nil {
		return err
	}
	if len(rest) < 2 {
		usage()
	}
	c, err := e2e.Command(context.Background(), dir, rest[0], rest[1:]...)
	if err != nil {
		return err
	}
	c.Stdin, c.Stdout, c.Stderr = os.Stdin, os.Stdout, os.Stderr
	return c.Run()
}

// kill runs node.sh kill or power-loss.
func kill(action string, args []string) error {
	dir, rest, err := dirFlag(action, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		usage()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "bash", filepath.Join(dir, "node.sh"), action, rest[0]).CombinedOutput()
	fmt.Print(string(out))
	return err
}
