// Command NovaCompute (built from ocf_novacompute) is the OCF resource agent
// ocf:novaha:NovaCompute: it runs nova-compute on a compute node, as a clone on the
// compute nodes (pacemaker_remote nodes), and brings the node back into Nova after a
// fence. start waits, when the host is fenced in Nova, until its instances are
// evacuated, then starts nova-compute, lifts the force-down and re-enables the service
// once Nova reports it up. stop stops nova-compute only. monitor checks that
// nova-compute runs locally and, at depth 10, that Nova sees it up. It replaces
// nova-compute-wait and the old ocf:openstack:NovaCompute.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/novaha/novaha/lib/clock"
	"github.com/novaha/novaha/lib/nova"
	"github.com/novaha/novaha/lib/novaconn"
	"github.com/novaha/novaha/lib/ocf"
	"github.com/novaha/novaha/lib/systemd"
	"github.com/novaha/novaha/lib/version"
)

// Parameter names of this agent, beyond the Nova connection's (lib/novaconn).
const (
	paramEvacuationDelay = "evacuation_delay"
	paramServiceManager  = "service_manager"
	paramUnit            = "unit"
	paramNovaConf        = "nova_conf"
	paramCommand         = "command"
	paramArgs            = "args"
	paramPidFile         = "pid_file"
	paramLogFile         = "log_file"
	paramStopGrace       = "stop_grace"
)

// Service managers.
const (
	managerSystemd = "systemd"
	managerProcess = "process"
)

// Defaults.
const (
	defaultNovaConf = "/etc/nova/nova.conf"
	defaultCommand  = "/usr/bin/nova-compute"
	defaultLogFile  = "/var/log/nova/nova-compute-ocf.log"
	// Units of the distributions' packages.
	unitRHEL   = "openstack-nova-compute.service"
	unitDebian = "nova-compute.service"
	// deepDepth is the OCF_CHECK_LEVEL from which monitor also asks Nova.
	deepDepth = 10
	// pollInterval paces the waits for Nova (evacuation, force-down, service up).
	pollInterval = 2 * time.Second
)

// env is what the agent reaches outside itself; tests replace parts of it.
type env struct {
	// dialNova connects to Nova.
	dialNova func(ctx context.Context, cfg nova.Config) (novaAPI, error)
	// dialSystemd connects to systemd.
	dialSystemd func(ctx context.Context) (unitManager, error)
	clock       clock.Clock
	getenv      func(string) string
	environ     func() []string
	hostname    func() (string, error)
	// systemdBooted tells whether systemd runs this machine (sd_booted).
	systemdBooted func() bool
	// osRelease is /etc/os-release, which picks the default unit.
	osRelease string
	euid      int
	// attrdPath and attrdRun replace attrd_updater's path and its run in tests; empty
	// and nil use the real tool.
	attrdPath string
	attrdRun  func(ctx context.Context, path string, args ...string) ([]byte, error)
	// exe is this program, which start runs as the background start.
	exe func() (string, error)
	// background is set in the background start (background.go).
	background bool
}

// novaAPI is the part of *nova.Client the agent uses.
type novaAPI interface {
	nova.ServiceAPI
	Close()
}

// unitManager is the part of *systemd.Manager the agent uses.
type unitManager interface {
	Start(ctx context.Context, unit string) error
	Stop(ctx context.Context, unit string) error
	Unit(ctx context.Context, unit string) (systemd.Unit, error)
	Close()
}

func defaultEnv() env {
	return env{
		dialNova: func(ctx context.Context, cfg nova.Config) (novaAPI, error) { return nova.Dial(ctx, cfg) },
		dialSystemd: func(ctx context.Context) (unitManager, error) {
			return systemd.Dial(ctx)
		},
		systemdBooted: func() bool {
			_, err := os.Stat("/run/systemd/system") // sd_booted's test
			return err == nil
		},
		clock:     clock.Real{},
		getenv:    os.Getenv,
		environ:   os.Environ,
		hostname:  os.Hostname,
		osRelease: "/etc/os-release",
		euid:      os.Geteuid(),
		exe:       os.Executable,
	}
}

func agent(e env) *ocf.Agent {
	params := append(novaconn.Params(), novaconn.DomainParam(),
		ocf.Param{Name: paramEvacuationDelay, Type: ocf.Duration, Default: "0",
			ShortDesc: "How long to wait after the host's evacuation is recorded, before starting nova-compute",
			LongDesc: `When the host was fenced, start waits until the evacuation controller has recorded its
instances as evacuated (novaha:evacuated in the service's disabled reason), then this much
longer before it starts nova-compute: time for shared storage to release the instances' locks.
Not used when the host was not fenced.`},
		ocf.Param{Name: paramServiceManager, Type: ocf.String, Default: managerSystemd,
			ShortDesc: "How nova-compute is run: systemd or process",
			LongDesc: `systemd starts and stops the unit (see unit) over D-Bus and waits for each job's result.
process runs command with args itself, detached in its own session, with a pid file (hosts
without systemd, containers).`},
		ocf.Param{Name: paramUnit, Type: ocf.String,
			ShortDesc: "systemd unit of nova-compute (default: " + unitRHEL + " on RHEL and Fedora, " + unitDebian + " elsewhere)"},
		ocf.Param{Name: paramNovaConf, Type: ocf.String, Default: defaultNovaConf,
			ShortDesc: "nova.conf, read for the host name Nova knows ([DEFAULT] host)",
			LongDesc: `The host name Nova knows is [DEFAULT] host of this file; without it, the machine's fully
qualified name, else its short name (with domain appended when set). In process mode the
default args give this file to nova-compute.`},
		ocf.Param{Name: paramCommand, Type: ocf.String, Default: defaultCommand,
			ShortDesc: "process mode: the nova-compute program"},
		ocf.Param{Name: paramArgs, Type: ocf.String,
			ShortDesc: "process mode: its arguments, split as a shell would (default: --config-file <nova_conf>)"},
		ocf.Param{Name: paramPidFile, Type: ocf.String,
			ShortDesc: "process mode: pid file (default: NovaCompute-<instance>.pid in HA_RSCTMP)"},
		ocf.Param{Name: paramLogFile, Type: ocf.String, Default: defaultLogFile,
			ShortDesc: "process mode: the file nova-compute's stdout and stderr are appended to"},
		ocf.Param{Name: paramStopGrace, Type: ocf.Duration, Default: "20s",
			ShortDesc: "process mode: how long stop waits after SIGTERM before SIGKILL"},
	)
	return &ocf.Agent{
		Name:      "NovaCompute",
		Version:   version.Version,
		ShortDesc: "Runs nova-compute and returns a fenced compute host to Nova once it is evacuated",
		LongDesc: `NovaCompute runs nova-compute on an OpenStack compute node, as a clone on the compute nodes
(usually pacemaker_remote nodes), and brings the host back into Nova after it was fenced.

start: when the host is fenced in Nova (fence_nova's novaha:fenced or novaha:evacuating in
the service's disabled reason), it waits until the evacuation controller records it
novaha:evacuated, and evacuation_delay longer; a host forced down without a novaha marker
(a stock fence_compute) waits while its node attribute evacuate is yes. That wait runs in a
process of its own: start returns at once, and monitor reports the resource degraded (190),
saying what it waits for, until it is over, so that a long evacuation never holds up the
cluster's other actions (Pacemaker runs no new transition while an action runs). Then it starts nova-compute, lifts the
force-down (Nova refuses until the restarted nova-compute has cleaned up its evacuated
instances, so start retries meanwhile), waits until Nova reports the service up and
enables it again, unless an operator had disabled it before the fence: that disable and its
reason are restored. A host that was not fenced starts at once and waits only for the
service to report up. start is bounded by its timeout (the background wait by 24 hours)
and says what it was waiting for when the timeout expires.

stop ends a start still waiting in the background, stops nova-compute and never touches
Nova's records.

monitor checks that nova-compute runs on this node (the systemd unit's state, or the pid
file and the process), with no Nova call; with OCF_CHECK_LEVEL=10 it also checks that
Nova reports the service up.

The Nova connection parameters are fence_nova's (and fence_compute's).`,
		Params:   params,
		Validate: func(ctx context.Context, r *ocf.Request) error { return validate(r, e) },
		Actions: []ocf.Action{
			{Name: ocf.Start, Timeout: 600 * time.Second, Handler: func(ctx context.Context, r *ocf.Request) error { return start(ctx, r, e) }},
			{Name: ocf.Stop, Timeout: 60 * time.Second, Handler: func(ctx context.Context, r *ocf.Request) error { return stop(ctx, r, e) }},
			{Name: ocf.Monitor, Timeout: 20 * time.Second, Interval: 10 * time.Second, Handler: func(ctx context.Context, r *ocf.Request) error { return monitor(ctx, r, e) }},
			{Name: ocf.Monitor, Timeout: 30 * time.Second, Interval: 60 * time.Second, Depth: deepDepth},
			{Name: ocf.ValidateAll, Timeout: 20 * time.Second},
			{Name: ocf.MetaData, Timeout: 5 * time.Second},
		},
	}
}

func validate(r *ocf.Request, e env) error {
	if err := novaconn.Validate(r, e.getenv); err != nil {
		return err
	}
	switch m := r.String(paramServiceManager); m {
	case managerSystemd:
	case managerProcess:
		spec, err := processSpec(r, e)
		if err != nil {
			return err
		}
		if err := spec.Installed(); err != nil {
			return ocf.Errorf(ocf.NotInstalled, "%s: %w", paramCommand, err)
		}
	default:
		return fmt.Errorf("%s=%q: want %s or %s", paramServiceManager, m, managerSystemd, managerProcess)
	}
	return nil
}

// svc is nova-compute on this node, as the service manager runs it.
type svc interface {
	// running reports whether nova-compute runs. An ocf.NotInstalled error says it
	// cannot run here at all.
	running(ctx context.Context) (bool, error)
	start(ctx context.Context) error
	stop(ctx context.Context) error
	// where says where to look when it does not start ("unit x", "log file y").
	where() string
	close()
}

func service(ctx context.Context, r *ocf.Request, e env) (svc, error) {
	if r.String(paramServiceManager) == managerProcess {
		spec, err := processSpec(r, e)
		if err != nil {
			return nil, err
		}
		return &processSvc{spec: spec, grace: r.Duration(paramStopGrace)}, nil
	}
	unit := r.String(paramUnit)
	if unit == "" {
		unit = defaultUnit(e.osRelease)
	}
	m, err := e.dialSystemd(ctx)
	if err != nil {
		return nil, err
	}
	return &systemdSvc{m: m, unit: unit}, nil
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == cmdBackground {
		os.Exit(runBackground(os.Args, defaultEnv(), os.Stdin, os.Stderr))
	}
	os.Exit(agent(defaultEnv()).Main(os.Args, os.Environ(), os.Stdout, os.Stderr))
}
