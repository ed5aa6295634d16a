package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/novaha/novaha/lib/evacuation"
	"github.com/novaha/novaha/lib/ocf"
)

// statusCommand is `NovaEvacuate status [FILE|DIR]...`: it prints the status files of
// the controllers (by default those in OCF_RESKEY_state_dir, HA_RSCTMP or
// /run/resource-agents) as tables. It exits 0 when it printed one, 1 otherwise.
func statusCommand(args []string, e env, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		dir := e.getenv("OCF_RESKEY_" + paramStateDir)
		if dir == "" {
			dir = e.getenv("HA_RSCTMP")
		}
		if dir == "" {
			dir = ocf.DefaultStateDir
		}
		args = []string{dir}
	}
	var files []string
	for _, a := range args {
		if a == "-h" || a == "--help" {
			fmt.Fprintln(stdout, "usage: NovaEvacuate status [STATUS-FILE|STATE-DIR]...")
			return 0
		}
		fi, err := os.Stat(a)
		if err != nil {
			fmt.Fprintf(stderr, "NovaEvacuate status: %v\n", err)
			return 1
		}
		if !fi.IsDir() {
			files = append(files, a)
			continue
		}
		found, _ := filepath.Glob(filepath.Join(a, "NovaEvacuate-*.status.json"))
		files = append(files, found...)
	}
	if len(files) == 0 {
		fmt.Fprintf(stderr, "NovaEvacuate status: no controller status in %s: is the resource running on this node?\n", strings.Join(args, ", "))
		return 1
	}
	sort.Strings(files)
	for i, f := range files {
		st, err := evacuation.ReadStatus(f)
		if err != nil {
			fmt.Fprintf(stderr, "NovaEvacuate status: %v\n", err)
			return 1
		}
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		name := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "NovaEvacuate-"), ".status.json")
		writeStatus(stdout, name, st, e.now())
	}
	return 0
}

func ago(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t)
	if d < 0 {
		d = 0
	}
	return d.Round(time.Second).String() + " ago"
}

// writeStatus prints one controller's status.
func writeStatus(w io.Writer, name string, st evacuation.Status, now time.Time) {
	nova := "Nova reachable"
	if !st.NovaOK {
		nova = "Nova UNREACHABLE: " + st.Error
	}
	fmt.Fprintf(w, "NovaEvacuate %s: pid %d, round %d, updated %s, %s\n", name, st.PID, st.Round, ago(now, st.Updated), nova)
	if st.NovaOK && st.Error != "" {
		fmt.Fprintf(w, "last error: %s\n", st.Error)
	}
	if st.Guard {
		fmt.Fprintf(w, "MASS-FAILURE GUARD: nothing is evacuated: %s\n", st.GuardReason)
	}
	if len(st.Hosts) == 0 {
		fmt.Fprintln(w, "no fenced host")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tPHASE\tTOTAL\tMOVED\tFAILED\tPENDING\tSINCE")
	hosts := append([]evacuation.HostStatus(nil), st.Hosts...)
	sort.Slice(hosts, func(i, j int) bool { return hosts[i].Host < hosts[j].Host })
	for _, h := range hosts {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%s\n", h.Host, h.Phase, h.Total, h.Moved, h.Failed, h.Pending, ago(now, h.Since))
	}
	tw.Flush()
	for _, h := range hosts {
		ids := make([]string, 0, len(h.Failures))
		for id := range h.Failures {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			fmt.Fprintf(w, "  %s: instance %s failed: %s\n", h.Host, id, h.Failures[id])
		}
		ids = ids[:0]
		for id := range h.Stuck {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			fmt.Fprintf(w, "  %s: instance %s stuck: %s\n", h.Host, id, h.Stuck[id])
		}
	}
}
