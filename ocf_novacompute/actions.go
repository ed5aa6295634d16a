package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/novaha/novaha/lib/daemon"
	"github.com/novaha/novaha/lib/nova"
	"github.com/novaha/novaha/lib/novaconn"
	"github.com/novaha/novaha/lib/ocf"
	"github.com/novaha/novaha/lib/pacemaker"
)

// stockAttribute is the node attribute of the stock fence_compute and NovaEvacuate:
// yes while the node's evacuation is pending or under way, no once it is done.
const stockAttribute = "evacuate"

// stockEvacuation reads what the node attribute evacuate says of this node. A host
// forced down by a stock fence_compute carries no novaha marker: the attribute is what
// tells that its evacuation is not finished. Outside Pacemaker, or without the node's
// name, nothing is known.
func stockEvacuation(r *ocf.Request, e env) func(ctx context.Context) (nova.Elsewhere, error) {
	a := &pacemaker.Attrd{Path: e.attrdPath, Run: e.attrdRun, Log: r.Log(),
		Getenv: func(k string) string { v, _ := r.LookupEnv(k); return v }}
	node, _ := r.Meta("on_node")
	return func(ctx context.Context) (nova.Elsewhere, error) {
		if node == "" {
			return nova.ElsewhereUnknown, nil
		}
		v, err := a.QueryPrivate(ctx, node, stockAttribute)
		switch {
		case errors.Is(err, pacemaker.ErrNoAttribute):
			return nova.ElsewhereUnknown, nil
		case err != nil:
			// Not knowing must not return the host: the caller waits.
			return nova.ElsewhereUnknown, fmt.Errorf("reading the node attribute %s of %s: %w", stockAttribute, node, err)
		case v == "yes":
			return nova.ElsewhereInProgress, nil
		case v == "no":
			return nova.ElsewhereDone, nil
		}
		return nova.ElsewhereUnknown, nil
	}
}

// novaConfHost is [DEFAULT] host of an oslo.config file, "" when it has none.
func novaConfHost(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	section := ""
	sc := bufio.NewScanner(f)
	host := ""
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[':
			section = strings.TrimSpace(strings.Trim(line, "[]"))
		case section == "DEFAULT":
			k, v, ok := strings.Cut(line, "=")
			if ok && strings.TrimSpace(k) == "host" {
				host = strings.TrimSpace(v) // the last one wins, as in oslo.config
			}
		}
	}
	return host, sc.Err()
}

// hostName is the name Nova knows this host by, and how it was found: nova.conf's
// [DEFAULT] host, else the FQDN, else the short name (with domain, when set, matched
// by lib/nova's rules).
func hostName(ctx context.Context, r *ocf.Request, e env) (name, from string, err error) {
	conf := r.String(paramNovaConf)
	h, cerr := novaConfHost(conf)
	if h != "" {
		return h, "[DEFAULT] host in " + conf, nil
	}
	if cerr != nil && !errors.Is(cerr, os.ErrNotExist) {
		r.Log().Warn("cannot read nova.conf; using the machine's name", "nova_conf", conf, "err", cerr)
	}
	short, err := e.hostname()
	if err != nil {
		return "", "", fmt.Errorf("host name: %w", err)
	}
	if strings.Contains(short, ".") {
		return short, "the host name (an FQDN)", nil
	}
	if fqdn := lookupFQDN(ctx, short); fqdn != "" {
		return fqdn, "the FQDN of the host name", nil
	}
	return short, "the short host name", nil
}

// lookupFQDN is what getfqdn() finds: a name with a domain among the names of the
// host's addresses (/etc/hosts, then DNS), "" when there is none.
func lookupFQDN(ctx context.Context, short string) string {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupHost(ctx, short)
	if err != nil {
		return ""
	}
	for _, a := range addrs {
		names, _ := net.DefaultResolver.LookupAddr(ctx, a)
		for _, n := range names {
			n = strings.TrimSuffix(n, ".")
			if strings.Contains(n, ".") && strings.EqualFold(nova.ShortName(n), short) {
				return n
			}
		}
	}
	return ""
}

func dialNova(ctx context.Context, r *ocf.Request, e env) (novaAPI, error) {
	cfg, err := novaconn.Resolve(ctx, r, novaconn.Env{Getenv: e.getenv, TokenCacheDir: novaconn.TokenCacheDir(e.euid, e.getenv)})
	if err != nil {
		return nil, err
	}
	return e.dialNova(ctx, cfg)
}

// findService reads this host's nova-compute service; ok is false when Nova has none
// yet (a new host: its nova-compute creates the record when it first starts).
func findService(ctx context.Context, api novaAPI, name, domain string) (s nova.Service, ok bool, err error) {
	s, err = nova.FindComputeService(ctx, api, name, domain)
	if errors.Is(err, nova.ErrNoSuchHost) {
		return s, false, nil
	}
	return s, err == nil, err
}

// waiting tells what start waits for, for the exit reason when its time runs out, and
// in the background for monitor (file).
type waiting struct{ what, file string }

func (w *waiting) set(r *ocf.Request, format string, args ...any) {
	what := fmt.Sprintf(format, args...)
	if what != w.what {
		r.Log().Info("waiting: " + what)
		if w.file != "" {
			if err := daemon.WriteFile(w.file, []byte(what)); err != nil {
				r.Log().Warn("cannot tell monitor what start waits for", "err", err)
			}
		}
	}
	w.what = what
}

// start returns the host to Nova and starts nova-compute. A host that must first wait
// for its evacuation (or for evacuation_delay) is handed to the background start
// (background.go) and start returns at once; the background start runs this same
// function to the end.
func start(ctx context.Context, r *ocf.Request, e env) (err error) {
	if e.background {
		defer func() { backgroundDone(r, err) }()
	} else if pid, err := backgroundRunning(r, e); err != nil {
		return err
	} else if pid != 0 {
		r.Log().Info("the start in the background runs already", "pid", pid)
		return nil
	}
	name, from, err := hostName(ctx, r, e)
	if err != nil {
		return err
	}
	domain := r.String(novaconn.Domain)
	r.Log().Info("Nova host name", "host", name, "from", from, "domain", domain)
	api, err := dialNova(ctx, r, e)
	if err != nil {
		return fmt.Errorf("Nova: %w", err)
	}
	defer api.Close()
	sv, err := service(ctx, r, e)
	if err != nil {
		return err
	}
	defer sv.close()

	var w waiting
	if e.background {
		w.file = backgroundFilesOf(r).Waiting
	}
	timedOut := func(err error) error {
		if ctx.Err() != nil && w.what != "" {
			return fmt.Errorf("start timed out after %s waiting for %s", r.Timeout().Round(time.Second), w.what)
		}
		return err
	}

	// 1. A fenced host waits until its instances are evacuated.
	s, known, err := findService(ctx, api, name, domain)
	if err != nil {
		return fmt.Errorf("reading the nova-compute service of %s: %w", name, err)
	}
	fenced := false
	elsewhere := stockEvacuation(r, e)
	for known {
		st := nova.StateOf(s)
		if st == nova.ForcedDownElsewhere {
			// Forced down without a novaha marker (a stock fence_compute): its
			// evacuation is finished when the attribute evacuate is no longer yes.
			other, err := elsewhere(ctx)
			switch {
			case err != nil:
				w.set(r, "the attribute evacuate of %s to be readable (%v)", s.Host, err)
			case other == nova.ElsewhereInProgress:
				w.set(r, "the evacuation of %s to finish (forced down, evacuate=yes)", s.Host)
			default:
				fenced = true
				st = nova.Healthy // nothing more to wait for
			}
		}
		if st != nova.StateFenced && st != nova.StateEvacuating && st != nova.ForcedDownElsewhere {
			fenced = fenced || st != nova.Healthy
			break
		}
		fenced = true
		if st != nova.ForcedDownElsewhere {
			w.set(r, "the evacuation of %s to finish (it is %s)", s.Host, st)
		}
		if !e.background {
			return startInBackground(r, e, w.what)
		}
		if err := e.clock.Sleep(ctx, pollInterval); err != nil {
			return timedOut(err)
		}
		if s, err = nova.ComputeService(ctx, api, s.Host); err != nil {
			return timedOut(fmt.Errorf("reading the nova-compute service of %s: %w", name, err))
		}
	}
	if d := r.Duration(paramEvacuationDelay); fenced && d > 0 {
		w.set(r, "evacuation_delay (%s) after the evacuation", d)
		if !e.background {
			return startInBackground(r, e, w.what)
		}
		if err := e.clock.Sleep(ctx, d); err != nil {
			return timedOut(err)
		}
	}

	// 2. nova-compute first: Nova lifts the force-down only once it has restarted.
	if err := sv.start(ctx); err != nil {
		return timedOut(fmt.Errorf("starting nova-compute: %w", err))
	}
	r.Log().Info("nova-compute started")

	// 3. Lift the force-down, wait for the service to report up, restore its status.
	// "Up" may still be the stopped nova-compute's last heartbeat (Nova counts a
	// service up for service_down_time after it): start waits until the record has
	// changed since it was read before the start by someone else than this agent, a
	// heartbeat of the new nova-compute, which begins once it serves RPC.
	seen, beat := s.UpdatedAt, false
	for {
		if ok, err := sv.running(ctx); err != nil || !ok {
			return fmt.Errorf("nova-compute does not run after its start (%v): see %s", err, sv.where())
		}
		if !known {
			if s, known, err = findService(ctx, api, name, domain); known {
				seen = s.UpdatedAt // registered: its heartbeats come next
			}
		} else {
			s, err = nova.ComputeService(ctx, api, s.Host)
			beat = beat || (err == nil && s.UpdatedAt != seen)
		}
		switch {
		case err != nil:
			return timedOut(fmt.Errorf("reading the nova-compute service of %s: %w", name, err))
		case !known:
			w.set(r, "nova-compute on %s to register with Nova", name)
		default:
			switch st := nova.StateOf(s); st {
			case nova.StateFenced, nova.StateEvacuating:
				return fmt.Errorf("%s was fenced again while starting (%s)", s.Host, st)
			}
			var got nova.Service
			got, err = nova.Unfence(ctx, api, s, nova.UnfenceOptions{Elsewhere: elsewhere})
			if got.UpdatedAt != s.UpdatedAt {
				seen = got.UpdatedAt // this agent's own write, not a heartbeat
			}
			var we *nova.WaitError
			switch {
			case errors.As(err, &we):
				w.set(r, "Nova to lift the force-down: %s", we.Reason)
			case err != nil:
				return timedOut(fmt.Errorf("returning %s to service: %w", s.Host, err))
			case !beat:
				w.set(r, "a heartbeat of the new nova-compute on %s in Nova", got.Host)
			case got.Up() && !got.ForcedDown && nova.StateOf(got) == nova.Healthy:
				r.Log().Info("nova-compute is up in Nova", "host", got.Host, "status", got.Status)
				return nil
			default:
				w.set(r, "Nova to report nova-compute on %s up", got.Host)
			}
		}
		if err := e.clock.Sleep(ctx, pollInterval); err != nil {
			return timedOut(err)
		}
	}
}

func stop(ctx context.Context, r *ocf.Request, e env) error {
	// First the background start, which may be about to start nova-compute.
	if err := stopBackground(ctx, r, e); err != nil {
		return err
	}
	sv, err := service(ctx, r, e)
	if err != nil && !e.systemdBooted() {
		// Not booted with systemd: no unit of it can be running.
		r.Log().Info("systemd is not running here: nova-compute's unit cannot run", "err", err)
		return nil
	}
	if err != nil {
		return err
	}
	defer sv.close()
	if err := sv.stop(ctx); err != nil {
		return fmt.Errorf("stopping nova-compute: %w", err)
	}
	// A stop succeeds only when nova-compute is known to be stopped.
	running, err := sv.running(ctx)
	if ocf.CodeOf(err) == ocf.NotInstalled || errors.Is(err, errUnitFailed) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("checking that nova-compute stopped: %w", err)
	}
	if running {
		return errors.New("nova-compute still runs after stop")
	}
	return nil
}

func monitor(ctx context.Context, r *ocf.Request, e env) error {
	if err, ok := backgroundState(r, e); ok {
		return err
	}
	sv, err := service(ctx, r, e)
	if err != nil {
		if !r.IsProbe() {
			return err
		}
		if ocf.CodeOf(err) == ocf.NotInstalled || r.String(paramServiceManager) == managerProcess || !e.systemdBooted() {
			// No nova-compute, or no systemd on this node: nothing of ours can run here.
			r.Log().Debug("probe: no service manager", "err", err)
			return ocf.NotInstalled
		}
		// systemd runs but did not answer. 5 would ban the clone from this node until
		// someone cleans it up, for what may be a busy bus; 7 lets Pacemaker start it,
		// and start tells whether systemd really cannot be reached.
		r.Log().Warn("probe: systemd did not answer; reporting not running", "err", err)
		return ocf.NotRunning
	}
	defer sv.close()
	running, err := sv.running(ctx)
	switch {
	case err != nil && r.IsProbe():
		if ocf.CodeOf(err) == ocf.NotInstalled {
			return ocf.NotInstalled
		}
		r.Log().Debug("probe", "err", err)
		return ocf.NotRunning
	case err != nil:
		return err
	case !running:
		return ocf.NotRunning
	case r.Depth() < deepDepth:
		return nil
	}
	name, from, err := hostName(ctx, r, e)
	if err != nil {
		return err
	}
	r.Log().Debug("Nova host name", "host", name, "from", from)
	api, err := dialNova(ctx, r, e)
	if err != nil {
		return fmt.Errorf("Nova: %w", err)
	}
	defer api.Close()
	s, known, err := findService(ctx, api, name, r.String(novaconn.Domain))
	switch {
	case err != nil:
		return fmt.Errorf("reading the nova-compute service of %s: %w", name, err)
	case !known:
		return fmt.Errorf("Nova has no nova-compute service for %s", name)
	case !s.Up():
		return fmt.Errorf("nova-compute runs but Nova reports %s down (forced_down=%t)", s.Host, s.ForcedDown)
	}
	return nil
}
