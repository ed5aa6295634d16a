// Package pacemaker drives Pacemaker through its command-line tools, which are its
// stable interface: attrd_updater for node attributes (later crm_attribute, crm_node,
// crm_mon). Every call is bounded by its context.
package pacemaker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"time"
)

// maxToolTime bounds one run of a Pacemaker tool when the context allows longer.
const maxToolTime = 10 * time.Second

// UnderPacemaker reports whether the process was started by Pacemaker: by the fencer
// (fence agents) or by the executor (resource agents).
func UnderPacemaker(getenv func(string) string) bool {
	return getenv("PCMK_service") != "" || getenv("OCF_RESOURCE_INSTANCE") != ""
}

// Attrd reads and writes node attributes through attrd_updater. The zero value is
// ready to use. Outside Pacemaker, or where attrd_updater is not installed, its calls
// do nothing and say so in a debug record: a fence agent run by hand must not fail
// because there is no cluster to tell.
type Attrd struct {
	// Path is attrd_updater's path; empty means looking it up in PATH, then /usr/sbin.
	Path string
	// Getenv tells whether the process runs under Pacemaker; nil means os.Getenv.
	Getenv func(string) string
	// Log receives the debug records; nil discards them.
	Log *slog.Logger
	// Run executes the tool and returns its standard output; nil runs it for real.
	// Tests replace it.
	Run func(ctx context.Context, path string, args ...string) ([]byte, error)
}

// ErrNoAttribute: the attribute is not set for the node.
var ErrNoAttribute = errors.New("attribute not set")

func (a *Attrd) log() *slog.Logger {
	if a.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return a.Log
}

// tool returns attrd_updater's path, or "" (with a debug record) when attributes
// cannot be used here.
func (a *Attrd) tool() string {
	getenv := a.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	if !UnderPacemaker(getenv) {
		a.log().Debug("not running under Pacemaker: node attributes skipped")
		return ""
	}
	if a.Path != "" {
		return a.Path
	}
	if p, err := exec.LookPath("attrd_updater"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/attrd_updater"); err == nil {
		return "/usr/sbin/attrd_updater"
	}
	a.log().Debug("attrd_updater is not installed: node attributes skipped")
	return ""
}

// Available reports whether node attributes can be used here: under Pacemaker, with
// attrd_updater installed. Where they cannot, SetPrivate does nothing and succeeds.
func (a *Attrd) Available() bool { return a.tool() != "" }

func (a *Attrd) run(ctx context.Context, path string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, maxToolTime)
	defer cancel()
	if a.Run != nil {
		return a.Run(ctx, path, args...)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if err != nil {
		msg := strings.Join(strings.Fields(stderr.String()), " ")
		if ctx.Err() != nil {
			return nil, fmt.Errorf("attrd_updater %s: timed out", strings.Join(args, " "))
		}
		return stdout.Bytes(), fmt.Errorf("attrd_updater %s: %v: %s", strings.Join(args, " "), err, msg)
	}
	return stdout.Bytes(), nil
}

// SetPrivate sets the private attribute name of node to value (attrd_updater -p: kept
// by the attribute manager, never written to the CIB). It does nothing outside
// Pacemaker or without attrd_updater.
func (a *Attrd) SetPrivate(ctx context.Context, node, name, value string) error {
	path := a.tool()
	if path == "" {
		return nil
	}
	args := []string{"-n", name, "-U", value, "-N", node, "-p"}
	if _, err := a.run(ctx, path, args...); err != nil {
		return err
	}
	a.log().Debug("node attribute set", "node", node, "name", name, "value", value)
	return nil
}

// queryValue matches attrd_updater -Q's line: name="evacuate" host="compute-1" value="yes".
var queryValue = regexp.MustCompile(`\bvalue="([^"]*)"`)

// QueryPrivate reads the private attribute name of node. It returns ErrNoAttribute
// when the attribute is not set, and also outside Pacemaker or without attrd_updater.
func (a *Attrd) QueryPrivate(ctx context.Context, node, name string) (string, error) {
	path := a.tool()
	if path == "" {
		return "", ErrNoAttribute
	}
	out, err := a.run(ctx, path, "-n", name, "-Q", "-N", node, "-p")
	if err != nil {
		if strings.Contains(err.Error(), "does not exist") || strings.Contains(err.Error(), "No such") {
			return "", ErrNoAttribute
		}
		return "", err
	}
	m := queryValue.FindSubmatch(out)
	if m == nil {
		return "", ErrNoAttribute
	}
	return string(m[1]), nil
}

// queryLine matches one line of attrd_updater -Q -A: name="evacuate" host="compute-1" value="yes".
var queryLine = regexp.MustCompile(`\bhost="([^"]*)"\s+value="([^"]*)"`)

// QueryAll reads the attribute name of every node that has it: node -> value. Outside
// Pacemaker or without attrd_updater, and when no node has it, the map is empty.
func (a *Attrd) QueryAll(ctx context.Context, name string) (map[string]string, error) {
	out := map[string]string{}
	path := a.tool()
	if path == "" {
		return out, nil
	}
	b, err := a.run(ctx, path, "-n", name, "-Q", "-A")
	if err != nil {
		if strings.Contains(err.Error(), "does not exist") || strings.Contains(err.Error(), "No such") {
			return out, nil
		}
		return nil, err
	}
	for _, m := range queryLine.FindAllSubmatch(b, -1) {
		out[string(m[1])] = string(m[2])
	}
	return out, nil
}
