// Command bench runs novaha's agents and the Python agents they replace side by side,
// on the same targets in one run, and prints wall time and peak memory of each action.
//
//	go run ./test/bench -bin ./bin [-n 20]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/novaha/novaha/test/bmcsim"
)

func main() {
	bin := flag.String("bin", "bin", "directory of the built agents")
	n := flag.Int("n", 20, "runs of each fast action")
	flag.Parse()
	if err := run(context.Background(), os.Stdout, *bin, *n); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// pair is one action measured with our agent and with the one it replaces.
type pair struct {
	title  string
	ours   command
	theirs *command
	n      int
}

func run(ctx context.Context, w io.Writer, bin string, n int) error {
	bin, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	ipmi := filepath.Join(bin, "fence_ipmi")
	if _, err := os.Stat(ipmi); err != nil {
		return fmt.Errorf("%s: build the agents first (make build)", ipmi)
	}
	if err := bmcsim.Available(); err != nil {
		return err
	}
	bmc, err := bmcsim.Start(ctx, bmcsim.Options{})
	if err != nil {
		return fmt.Errorf("starting the BMC simulator: %w", err)
	}
	defer bmc.Stop()

	stdin := func(action string, extra ...string) string {
		return strings.Join(append([]string{"action=" + action, "ip=" + bmc.Host, fmt.Sprintf("ipport=%d", bmc.Port),
			"username=" + bmc.Username, "password=" + bmc.Password, "lanplus=1", "cipher=3"}, extra...), "\n") + "\n"
	}
	python := []string{"PYTHONWARNINGS=ignore"}
	ipmilan, haveIpmilan := lookPath("fence_ipmilan")
	theirs := func(c command) *command {
		if !haveIpmilan {
			return nil
		}
		return &c
	}

	pairs := []pair{
		{title: "metadata", n: n,
			ours:   command{label: "fence_ipmi", argv: []string{ipmi, "-o", "metadata"}, codes: []int{0}},
			theirs: theirs(command{label: "fence_ipmilan", argv: []string{ipmilan, "-o", "metadata"}, env: python, codes: []int{0}})},
		{title: "status (ipmi_sim, lanplus, cipher 3)", n: n,
			ours:   command{label: "fence_ipmi", argv: []string{ipmi}, stdin: stdin("status"), codes: []int{0, 2}},
			theirs: theirs(command{label: "fence_ipmilan", argv: []string{ipmilan}, stdin: stdin("status"), env: python, codes: []int{0, 2}})},
		{title: "monitor", n: n,
			ours:   command{label: "fence_ipmi", argv: []string{ipmi}, stdin: stdin("monitor"), codes: []int{0}},
			theirs: theirs(command{label: "fence_ipmilan", argv: []string{ipmilan}, stdin: stdin("monitor"), env: python, codes: []int{0}})},
		{title: "reboot, defaults", n: max(3, n/4),
			ours:   command{label: "fence_ipmi", argv: []string{ipmi}, stdin: stdin("reboot"), codes: []int{0}},
			theirs: theirs(command{label: "fence_ipmilan", argv: []string{ipmilan}, stdin: stdin("reboot"), env: python, codes: []int{0}})},
		{title: "reboot, power_wait=0", n: max(3, n/4),
			ours:   command{label: "fence_ipmi", argv: []string{ipmi}, stdin: stdin("reboot", "power_wait=0"), codes: []int{0}},
			theirs: theirs(command{label: "fence_ipmilan", argv: []string{ipmilan}, stdin: stdin("reboot", "power_wait=0"), env: python, codes: []int{0}})},
	}

	fmt.Fprintf(w, "novaha bench, %s, %d runs per fast action (after one warm-up), BMC: ipmi_sim on %s\n\n",
		time.Now().UTC().Format(time.RFC3339), n, bmc.Addr())
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "action\tagent\tmedian\tmin\tpeak RSS\tfailed\tspeed-up")
	failed := false
	for _, p := range pairs {
		ours := measure(ctx, p.ours, p.n)
		row(tw, p.title, ours, "")
		failed = failed || ours.failures > 0
		if p.theirs != nil {
			th := measure(ctx, *p.theirs, p.n)
			ratio := ""
			if ours.median() > 0 {
				ratio = fmt.Sprintf("%.1fx", float64(th.median())/float64(ours.median()))
			}
			row(tw, p.title, th, ratio)
		}
	}
	tw.Flush()
	if !haveIpmilan {
		fmt.Fprintln(w, "\nfence_ipmilan is not installed (make deps): no comparison")
	}
	if failed {
		return fmt.Errorf("some runs of our agent failed")
	}
	return nil
}

func row(w io.Writer, title string, s sample, ratio string) {
	fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%.1f MiB\t%d\t%s\n", title, s.label, ms(s.median()), ms(s.min()),
		float64(s.maxRSSKiB)/1024, s.failures, ratio)
	if s.failures > 0 {
		fmt.Fprintf(w, "\t\tlast failure: %s\n", s.lastOutput)
	}
}

func lookPath(name string) (string, bool) {
	p, err := exec.LookPath(name)
	return p, err == nil
}
