// Command bmcsim runs one simulated BMC (OpenIPMI's ipmi_sim, see package bmcsim) until
// it receives SIGINT or SIGTERM, for the end-to-end sandbox and for trying agents by hand:
//
//	go build -o bin/bmcsim ./test/bmcsim/cmd/bmcsim
//	bin/bmcsim -port 6230 -state-dir /tmp/bmc1 -off-command 'kill $(cat host.pid)' &
//	ipmitool -I lanplus -C 3 -H 127.0.0.1 -p 6230 -U admin -P password chassis power status
//
// Once the simulator answers it prints one line to stdout,
// "ready addr=127.0.0.1:6230 pid=<ipmi_sim pid> dir=<state dir>", and nothing else.
// The power state is <dir>/power and the chassis log <dir>/chassis.log. The password is
// a test credential; it may also come from $BMCSIM_PASSWORD.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/novaha/novaha/test/bmcsim"
)

func main() {
	var o bmcsim.Options
	flag.IntVar(&o.Port, "port", 0, "UDP port on 127.0.0.1 (0: a free one)")
	flag.StringVar(&o.Dir, "state-dir", "", "directory for configuration, power state and logs (default: a temporary one, removed at exit)")
	flag.StringVar(&o.Username, "user", bmcsim.DefaultUsername, "administrator user name")
	flag.StringVar(&o.Password, "password", envOr("BMCSIM_PASSWORD", bmcsim.DefaultPassword), "administrator password (test credential)")
	flag.StringVar(&o.OnCommand, "on-command", "", "shell command run when the host is powered on, after -boot-delay")
	flag.StringVar(&o.OffCommand, "off-command", "", "shell command run when the host is powered off")
	flag.DurationVar(&o.BootDelay, "boot-delay", 0, "time from power on to -on-command")
	flag.BoolVar(&o.InitiallyOff, "off", false, "start with the chassis powered off")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "bmcsim: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	startCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	b, err := bmcsim.Start(startCtx, o)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("ready addr=%s pid=%d dir=%s\n", b.Addr(), b.PID(), b.Dir)

	select {
	case <-ctx.Done():
	case <-b.Done():
	}
	if err := b.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "bmcsim:", err)
		os.Exit(1)
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
