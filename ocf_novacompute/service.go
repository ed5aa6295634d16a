package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/novaha/novaha/lib/daemon"
	"github.com/novaha/novaha/lib/ocf"
	"github.com/novaha/novaha/lib/systemd"
)

// processSpec is nova-compute as process mode runs it.
func processSpec(r *ocf.Request, e env) (daemon.Spec, error) {
	args := []string{"--config-file", r.String(paramNovaConf)}
	if r.IsSet(paramArgs) {
		var err error
		if args, err = splitArgs(r.String(paramArgs)); err != nil {
			return daemon.Spec{}, fmt.Errorf("%s: %w", paramArgs, err)
		}
	}
	pid := r.String(paramPidFile)
	if pid == "" {
		pid = filepath.Join(r.StateDir(), "NovaCompute-"+strings.ReplaceAll(r.Instance(), "/", "_")+".pid")
	}
	if !filepath.IsAbs(pid) {
		return daemon.Spec{}, fmt.Errorf("%s %q: not an absolute path", paramPidFile, pid)
	}
	if !filepath.IsAbs(r.String(paramLogFile)) {
		return daemon.Spec{}, fmt.Errorf("%s %q: not an absolute path", paramLogFile, r.String(paramLogFile))
	}
	return daemon.Spec{Command: r.String(paramCommand), Args: args, PidFile: pid,
		LogFile: r.String(paramLogFile), Env: childEnv(e.environ())}, nil
}

// childEnv is the agent's environment without Pacemaker's OCF variables: the
// resource's parameters, the Nova password among them, are not nova-compute's.
func childEnv(environ []string) []string {
	out := make([]string, 0, len(environ))
	for _, kv := range environ {
		if strings.HasPrefix(kv, "OCF_") || strings.HasPrefix(kv, "HA_") || strings.HasPrefix(kv, "PCMK_") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// splitArgs splits s into words as a POSIX shell would, with single and double quotes
// and backslashes, without expansions.
func splitArgs(s string) ([]string, error) {
	var (
		words []string
		cur   strings.Builder
		in    bool // inside a word
		quote rune
	)
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		c := rs[i]
		switch {
		case quote == '\'':
			if c == '\'' {
				quote = 0
			} else {
				cur.WriteRune(c)
			}
		case quote == '"':
			switch {
			case c == '"':
				quote = 0
			case c == '\\' && i+1 < len(rs) && strings.ContainsRune(`"\$`+"`", rs[i+1]):
				i++
				cur.WriteRune(rs[i])
			default:
				cur.WriteRune(c)
			}
		case c == '\'' || c == '"':
			quote, in = c, true
		case c == '\\':
			if i+1 < len(rs) {
				i++
				cur.WriteRune(rs[i])
				in = true
			}
		case c == ' ' || c == '\t' || c == '\n':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(c)
			in = true
		}
	}
	if quote != 0 {
		return nil, errors.New("unterminated quote")
	}
	if in {
		words = append(words, cur.String())
	}
	return words, nil
}

// defaultUnit is the distribution's nova-compute unit, from os-release's ID and ID_LIKE.
func defaultUnit(osRelease string) string {
	b, err := os.ReadFile(osRelease)
	if err != nil {
		return unitDebian
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok || (k != "ID" && k != "ID_LIKE") {
			continue
		}
		for _, id := range strings.Fields(strings.Trim(v, `"'`)) {
			switch id {
			case "rhel", "fedora", "centos", "rocky", "almalinux":
				return unitRHEL
			}
		}
	}
	return unitDebian
}

type processSvc struct {
	spec  daemon.Spec
	grace time.Duration
}

func (p *processSvc) running(context.Context) (bool, error) {
	if err := p.spec.Installed(); err != nil {
		return false, ocf.Errorf(ocf.NotInstalled, "%s: %w", paramCommand, err)
	}
	pid, _, err := daemon.Running(p.spec)
	return pid != 0, err
}

func (p *processSvc) start(context.Context) error {
	pid, stale, err := daemon.Running(p.spec)
	if err != nil || pid != 0 {
		return err
	}
	if stale {
		_ = os.Remove(p.spec.PidFile)
	}
	_, err = daemon.Start(p.spec)
	return err
}

func (p *processSvc) stop(ctx context.Context) error { return daemon.Stop(ctx, p.spec, p.grace) }
func (p *processSvc) where() string                  { return "its log file " + p.spec.LogFile }
func (p *processSvc) close()                         {}

// errUnitFailed: the unit's processes are gone, and systemd keeps the unit "failed"
// (even after a stop) until it is started again or reset.
var errUnitFailed = errors.New("has failed")

type systemdSvc struct {
	m    unitManager
	unit string
}

func (s *systemdSvc) running(ctx context.Context) (bool, error) {
	u, err := s.m.Unit(ctx, s.unit)
	if errors.Is(err, systemd.ErrNoUnit) || (err == nil && !u.Found()) {
		return false, ocf.Errorf(ocf.NotInstalled, "systemd has no unit %s", s.unit)
	}
	if err != nil {
		return false, err
	}
	if u.ActiveState == "failed" {
		return false, fmt.Errorf("unit %s: %w (%s)", s.unit, errUnitFailed, u.SubState)
	}
	return u.Running(), nil
}

func (s *systemdSvc) start(ctx context.Context) error { return s.m.Start(ctx, s.unit) }
func (s *systemdSvc) stop(ctx context.Context) error  { return s.m.Stop(ctx, s.unit) }
func (s *systemdSvc) where() string                   { return "journalctl -u " + s.unit }
func (s *systemdSvc) close()                          { s.m.Close() }
