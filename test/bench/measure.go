package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
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

// measure runs c n times (after one warm-up run) and records wall time and the peak
// resident set size the kernel reports for the child.
func measure(ctx context.Context, c command, n int) sample {
	s := sample{label: c.label}
	for i := -1; i < n; i++ {
		if c.before != nil {
			if err := c.before(ctx); err != nil {
				s.failures++
				s.lastOutput = "preparing the run: " + err.Error()
				continue
			}
		}
		cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		cmd := exec.CommandContext(cctx, c.argv[0], c.argv[1:]...)
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
		if cmd.ProcessState != nil {
			if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok && ru.Maxrss > s.maxRSSKiB {
				s.maxRSSKiB = ru.Maxrss
			}
		}
	}
	return s
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }
