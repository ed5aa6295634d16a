package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// command is one way of running an agent action.
type command struct {
	label string
	argv  []string
	stdin string
	env   []string
	// codes are the exit codes that count as a correct answer (status OFF is 2).
	codes []int
	// before, if set, prepares each run (puts the target back in its starting state);
	// it is not timed, and its failure counts as a failed run.
	before func(context.Context) error
}

// sample is the outcome of running a command n times.
type sample struct {
	label      string
	runs       []time.Duration
	maxRSSKiB  int64
	failures   int
	lastOutput string
}

func (s sample) median() time.Duration {
	if len(s.runs) == 0 {
		return 0
	}
	r := append([]time.Duration(nil), s.runs...)
	sort.Slice(r, func(i, j int) bool { return r[i] < r[j] })
	return r[len(r)/2]
}

func (s sample) min() time.Duration {
	m := time.Duration(0)
	for i, d := range s.runs {
		if i == 0 || d < m {
			m = d
		}
	}
	return m
}

// gnuTime is GNU time (Debian package time). The peak RSS that wait4 reports for a
// child of this Go program is not the child's own: Go starts children with vfork, and
// the kernel carries the parent's high-water mark into the child's across exec. So the
// bench's own size would be counted. GNU time is a small C program that forks
// normally: what it reports is the command's peak (plus at most its own ~2 MiB, the
// same for both agents of a pair).
const gnuTime = "/usr/bin/time"

// measure runs c n times (after one warm-up run) and records wall time and the peak
// resident set size of the command.
func measure(ctx context.Context, c command, n int) sample {
	s := sample{label: c.label}
	rssFile, err := os.CreateTemp("", "novaha-bench-rss")
	if err != nil {
		s.failures++
		s.lastOutput = err.Error()
		return s
	}
	rssFile.Close()
	defer os.Remove(rssFile.Name())
	argv := c.argv
	if _, err := os.Stat(gnuTime); err == nil {
		argv = append([]string{gnuTime, "-f", "%M", "-o", rssFile.Name()}, c.argv...)
	}
	for i := -1; i < n; i++ {
		if c.before != nil {
			if err := c.before(ctx); err != nil {
				s.failures++
				s.lastOutput = "preparing the run: " + err.Error()
				continue
			}
		}
		cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		cmd := exec.CommandContext(cctx, argv[0], argv[1:]...)
		cmd.Stdin = strings.NewReader(c.stdin)
		cmd.Env = append(os.Environ(), c.env...)
		var out bytes.Buffer
		cmd.Stdout = &out
		cmd.Stderr = io.Discard
		start := time.Now()
		err := cmd.Run()
		elapsed := time.Since(start)
		cancel()
		code := 0
		if err != nil {
			code = -1
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
		}
		ok := false
		for _, want := range c.codes {
			ok = ok || code == want
		}
		if !ok {
			s.failures++
			s.lastOutput = fmt.Sprintf("exit %d: %s", code, strings.TrimSpace(out.String()))
		}
		if i < 0 {
			continue // warm-up: page cache, Python bytecode
		}
		s.runs = append(s.runs, elapsed)
		if kib := readRSS(rssFile.Name()); kib > s.maxRSSKiB {
			s.maxRSSKiB = kib
		} else if argv[0] != gnuTime && cmd.ProcessState != nil {
			// Without GNU time: an upper bound (see gnuTime).
			if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok && ru.Maxrss > s.maxRSSKiB {
				s.maxRSSKiB = ru.Maxrss
			}
		}
	}
	return s
}

// readRSS reads GNU time's %M (KiB): the last line of its output file, after any
// "Command exited with non-zero status" line.
func readRSS(path string) int64 {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	lines := strings.Fields(strings.TrimSpace(string(data)))
	if len(lines) == 0 {
		return 0
	}
	n, err := strconv.ParseInt(lines[len(lines)-1], 10, 64)
	if err != nil {
		return 0
	}
	return n
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }
