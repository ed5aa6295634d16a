// Command bench runs novaha's agents and the Python agents they replace side by side,
// on the same targets in one run, and prints wall time and peak memory of each action.
//
//	go run ./test/bench -bin ./bin [-n 20] [-suite ipmi|libvirt|nova|novacompute|evacuate]
//
// The evacuate suite (about 15 minutes on the real Nova sandbox) runs only when asked.
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
	only := flag.String("suite", "", "run only this suite: ipmi, libvirt, nova, novacompute or evacuate")
	flag.Parse()
	if err := run(context.Background(), os.Stdout, *bin, *n, *only); err != nil {
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

// suite is a set of pairs on targets of their own, started by the suite.
type suite struct {
	name  string
	setup string // what the targets are, for the report
	pairs []pair
	note  string // printed under the table (a comparison left out, for instance)
	// report, if set, runs a measurement of its own that does not fit the table's
	// runs of one command, and prints it after the table.
	report func(context.Context, io.Writer) error
	stop   func()
}

func run(ctx context.Context, w io.Writer, bin string, n int, only string) error {
	bin, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	var suites []suite
	defer func() {
		for _, s := range suites {
			s.stop()
		}
	}()
	starters := []struct {
		name  string
		start func(context.Context, string, int) (suite, error)
	}{{"ipmi", ipmiSuite}, {"libvirt", libvirtSuite}, {"nova", novaSuite}, {"novacompute", novacomputeSuite},
		{"evacuate", evacuateSuite}}
	known := false
	for _, st := range starters {
		known = known || only == st.name
	}
	if only != "" && !known {
		return fmt.Errorf("unknown suite %q (ipmi, libvirt, nova, novacompute, evacuate)", only)
	}
	for _, st := range starters {
		if (only != "" && st.name != only) || (only == "" && st.name == "evacuate") {
			continue
		}
		s, err := st.start(ctx, bin, n)
		if err != nil {
			return fmt.Errorf("%s: %w", st.name, err)
		}
		s.name = st.name
		suites = append(suites, s)
	}

	fmt.Fprintf(w, "novaha bench, %s, %d runs per fast action (after one warm-up)\n", time.Now().UTC().Format(time.RFC3339), n)
	for _, s := range suites {
		fmt.Fprintf(w, "%s: %s\n", s.name, s.setup)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "action\tagent\tmedian\tmin\tpeak RSS\tfailed\tspeed-up")
	failed := false
	for _, s := range suites {
		for _, p := range s.pairs {
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
	}
	tw.Flush()
	for _, s := range suites {
		if s.report != nil {
			fmt.Fprintln(w)
			if err := s.report(ctx, w); err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
		}
	}
	for _, s := range suites {
		if s.note != "" {
			fmt.Fprintf(w, "\n%s\n", s.note)
		}
	}
	if failed {
		return fmt.Errorf("some runs of our agent failed")
	}
	return nil
}

// ipmiSuite compares fence_ipmi with fence_ipmilan on OpenIPMI's simulator.
func ipmiSuite(ctx context.Context, bin string, n int) (suite, error) {
	ipmi := filepath.Join(bin, "fence_ipmi")
	if _, err := os.Stat(ipmi); err != nil {
		return suite{}, fmt.Errorf("%s: build the agents first (make build)", ipmi)
	}
	if err := bmcsim.Available(); err != nil {
		return suite{}, err
	}
	bmc, err := bmcsim.Start(ctx, bmcsim.Options{})
	if err != nil {
		return suite{}, fmt.Errorf("starting the BMC simulator: %w", err)
	}

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
	s := suite{setup: "BMC: ipmi_sim on " + bmc.Addr(), pairs: pairs, stop: func() { _ = bmc.Stop() }}
	if !haveIpmilan {
		s.note = "fence_ipmilan is not installed (make deps): no comparison"
	}
	return s, nil
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
