package e2e

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/novaha/novaha/test/bmcsim"
	"github.com/novaha/novaha/test/cluster"
	"github.com/novaha/novaha/test/nova"
)

// The instance-HA scenario of issue 6, shared by TestEvacuationScenario (assertions)
// and the demo (cmd/demo, make demo: the same steps told to a human).

// ConfigureScript is configure.sh's absolute path (this package's source directory).
func ConfigureScript() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "test/e2e/configure.sh"
	}
	return filepath.Join(filepath.Dir(file), "configure.sh")
}

// StopSandboxComputes stops the sandbox's own nova-compute of hosts: the testbed's nodes
// run theirs (two copies would fight over one service record).
func StopSandboxComputes(ctx context.Context, sb *nova.Sandbox, hosts []string) error {
	for _, h := range hosts {
		if err := sb.StopCompute(ctx, h); err != nil {
			return err
		}
	}
	return nil
}

// Configure runs configure.sh on ctl1 for the sandbox sb, then waits until NovaEvacuate
// runs on a controller, NovaCompute on every one of hosts, and Nova reports each host
// up, enabled and not forced down.
func (tb *Testbed) Configure(ctx context.Context, sb *nova.Sandbox, tc *nova.Client, hosts []string) error {
	if out, err := tb.Run(ctx, "ctl1", "env", "NOVA_SANDBOX_DIR="+sb.Dir, ConfigureScript()); err != nil {
		return fmt.Errorf("configure.sh: %w\n%s", err, out)
	}
	if _, err := tb.WaitStatus(ctx, "nova-evacuate on a controller, nova-compute on every compute", func(s *cluster.Status) bool {
		ev := ActiveOn(s, "nova-evacuate")
		return len(ev) == 1 && strings.HasPrefix(ev[0], "ctl") && sameSet(ActiveOn(s, "nova-compute"), hosts)
	}); err != nil {
		return err
	}
	for _, h := range hosts {
		if err := WaitService(ctx, tc, h, "up and enabled", Healthy); err != nil {
			return err
		}
	}
	return nil
}

// Recovery is what WatchRecovery saw of one killed host.
type Recovery struct {
	Host       string
	Killed     time.Time
	PowerOff   time.Time // the BMC's off event
	ForcedDown time.Time // first seen forced down in Nova
	Evacuated  time.Time // first seen with novaha:evacuated
	LastActive time.Time // the last server ACTIVE elsewhere
	Back       time.Time // up, enabled, not forced down again
	Servers    int
	Timeline   []string
}

// String says where a recovery stands, with its timeline.
func (r *Recovery) String() string {
	return fmt.Sprintf("%s: power off %t, forced down %t, evacuated %t, back %t\n%s", r.Host,
		!r.PowerOff.IsZero(), !r.ForcedDown.IsZero(), !r.Evacuated.IsZero(), !r.Back.IsZero(),
		strings.Join(r.Timeline, "\n"))
}

// WatchRecovery follows a killed host's recovery every second until the host is back
// and every one of servers is ACTIVE on another host, or ctx ends. Each step is added
// to the timeline, and passed to note, as soon as it is seen.
func WatchRecovery(ctx context.Context, tc *nova.Client, bmc *bmcsim.BMC, host string, servers []nova.Server, killed time.Time, note func(string)) (*Recovery, error) {
	r := &Recovery{Host: host, Killed: killed, Servers: len(servers)}
	add := func(format string, args ...any) {
		e := fmt.Sprintf("%7.1fs  ", time.Since(killed).Seconds()) + fmt.Sprintf(format, args...)
		r.Timeline = append(r.Timeline, e)
		if note != nil {
			note(e)
		}
	}
	active := map[string]bool{}
	for r.Back.IsZero() || len(active) < len(servers) {
		if r.PowerOff.IsZero() {
			if evs, err := bmc.Log(); err == nil {
				for _, e := range evs {
					if e.Action == bmcsim.ActionOff && e.Time.After(killed) {
						r.PowerOff = e.Time
						add("fenced: %s's BMC powered it off (logged %.1fs after the kill)", host, e.Time.Sub(killed).Seconds())
						break
					}
				}
			}
		}
		if svc, err := tc.ComputeService(ctx, host); err == nil {
			if r.ForcedDown.IsZero() && svc.ForcedDown {
				r.ForcedDown = time.Now()
				add("forced down in Nova (%s, %q)", svc.Status, svc.DisabledReason)
			}
			if r.Evacuated.IsZero() && strings.Contains(svc.DisabledReason, "novaha:evacuated") {
				r.Evacuated = time.Now()
				add("NovaEvacuate recorded %s evacuated (%q)", host, svc.DisabledReason)
			}
			if !r.ForcedDown.IsZero() && r.Back.IsZero() && Healthy(svc) {
				r.Back = time.Now()
				add("%s back: nova-compute up under NovaCompute, force-down lifted, enabled", host)
			}
		}
		for _, s := range servers {
			if active[s.ID] {
				continue
			}
			d, err := tc.Server(ctx, s.ID)
			if err == nil && d.Status == "ACTIVE" && d.Host != host && d.Host != "" && d.TaskState == "" {
				active[s.ID] = true
				if len(active) == len(servers) {
					r.LastActive = time.Now()
				}
				add("evacuated %d/%d: %s ACTIVE on %s", len(active), len(servers), d.Name, d.Host)
			}
		}
		if r.Back.IsZero() || len(active) < len(servers) {
			select {
			case <-ctx.Done():
				return r, fmt.Errorf("%s not recovered (%d/%d servers ACTIVE elsewhere): %w", host, len(active), len(servers), ctx.Err())
			case <-time.After(time.Second):
			}
		}
	}
	return r, nil
}

// Healthy: reported up, enabled, not forced down.
func Healthy(s nova.Service) bool {
	return s.State == "up" && s.Status == "enabled" && !s.ForcedDown
}

// WaitService polls host's nova-compute service until cond holds or ctx ends.
func WaitService(ctx context.Context, tc *nova.Client, host, what string, cond func(nova.Service) bool) error {
	for {
		svc, err := tc.ComputeService(ctx, host)
		if err == nil && cond(svc) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not %s in Nova: %+v, %v", host, what, svc, err)
		case <-time.After(time.Second):
		}
	}
}

// RestoreHost brings a host back to how the sandbox keeps it: its own nova-compute
// running, not forced down (Nova refuses while done evacuations remain: retried),
// enabled.
func RestoreHost(ctx context.Context, sb *nova.Sandbox, tc *nova.Client, host string) error {
	if err := sb.StartCompute(ctx, host); err != nil {
		return fmt.Errorf("restore %s: %w", host, err)
	}
	svc, err := tc.ComputeService(ctx, host)
	if err != nil {
		return fmt.Errorf("restore %s: %w", host, err)
	}
	for svc.ForcedDown {
		up, err := tc.UpdateService(ctx, svc.ID, map[string]any{"forced_down": false})
		var nerr *nova.Error
		if errors.As(err, &nerr) && nerr.Status == 400 && ctx.Err() == nil {
			time.Sleep(time.Second)
			continue
		}
		if err != nil {
			return fmt.Errorf("restore %s: %w", host, err)
		}
		svc = up
	}
	if svc.Status != "enabled" {
		if _, err := tc.UpdateService(ctx, svc.ID, map[string]any{"status": "enabled"}); err != nil {
			return fmt.Errorf("restore %s: %w", host, err)
		}
	}
	return nil
}

// ActiveOn lists the nodes where the primitive id (or a clone instance of it) is
// started, with no operation pending. crm_mon counts a resource whose start is under way
// as active (role "Starting" in its XML, pending="Starting" in some versions);
// NovaCompute's start on a host takes until Nova has seen a heartbeat of the new
// nova-compute, and a test that took that for started killed nova-compute under the
// start (which then failed, and Pacemaker left the host without nova-compute).
func ActiveOn(s *cluster.Status, id string) []string {
	var nodes []string
	for _, r := range s.Resources {
		if (r.ID == id || strings.HasPrefix(r.ID, id+":")) && r.Active && !r.Failed && r.Pending == "" && settled(r.Role) {
			nodes = append(nodes, r.Nodes...)
		}
	}
	sort.Strings(nodes)
	return nodes
}

// settled: a role with no action under way (crm_mon shows "Starting", "Stopping",
// "Migrating" ... as the role of a resource whose operation is pending).
func settled(role string) bool {
	switch role {
	case "Started", "Promoted", "Unpromoted", "Master", "Slave":
		return true
	}
	return false
}

func sameSet(a, b []string) bool {
	a, b = append([]string(nil), a...), append([]string(nil), b...)
	sort.Strings(a)
	sort.Strings(b)
	return strings.Join(dedup(a), ",") == strings.Join(dedup(b), ",")
}

// dedup drops repetitions of the previous element.
func dedup(s []string) []string {
	var out []string
	for _, v := range s {
		if len(out) == 0 || out[len(out)-1] != v {
			out = append(out, v)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
