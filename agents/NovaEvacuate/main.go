// Command NovaEvacuate is the OCF resource agent ocf:novaha:NovaEvacuate: it runs the
// evacuation controller (lib/evacuation) of the cluster, one instance per cluster, as
// a long-running process of its own. start launches the controller and returns once
// it has finished a round; monitor checks that it is alive and making progress; stop
// ends it. It is a drop-in replacement for ocf:openstack:NovaEvacuate: it accepts the
// same parameters, and also clouds.yaml and the controller's own settings.
//
// The same binary is the controller: `NovaEvacuate controller` (hidden, run by start
// only) reads its configuration from an inherited pipe, never from argv or the
// environment. `NovaEvacuate status` prints the controllers' status files for
// operators.
package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/novaha/novaha/lib/evacuation"
	"github.com/novaha/novaha/lib/nova"
	"github.com/novaha/novaha/lib/novaconn"
	"github.com/novaha/novaha/lib/ocf"
)

// *nova.Client is the controller's Nova.
var _ evacuation.Nova = (*nova.Client)(nil)

// Parameter names of this agent, beyond the Nova connection's (lib/novaconn).
const (
	paramNoSharedStorage = "no_shared_storage"
	paramVerbose         = "verbose"
	paramDelay           = "evacuate_delay"
	paramSelection       = "instance_selection"
	paramIncludeError    = "include_error"
	paramStopped         = "stopped"
	paramTargetHosts     = "target_hosts"
	paramPriorityKey     = "priority_key"
	paramMaxInFlight     = "max_in_flight"
	paramPerDestination  = "per_destination"
	paramMaxFenced       = "max_fenced_percent"
	paramRetryTimeout    = "retry_timeout"
	paramInterval        = "interval"
	paramStateDir        = "state_dir"
	paramNovaDownTimeout = "nova_down_timeout"
	paramStock           = "stock_evacuate"
)

// Defaults of the agent's own parameters.
const (
	// defaultNovaDownTimeout is how long monitor tolerates a controller that cannot
	// reach Nova or Keystone before it fails the resource (see monitor).
	defaultNovaDownTimeout = 5 * time.Minute
	// defaultSelection is fence_evacuate's rule, which the stock NovaEvacuate applies.
	defaultSelection = evacuation.SelectTagged
)

// Subcommands beside the OCF actions.
const (
	cmdController = "controller" // the controller process, started by start
	cmdStatus     = "status"     // the status table, for operators
)

// env is what the agent reaches outside itself; tests replace it.
type env struct {
	getenv func(string) string
	// exe is the program start runs as the controller.
	exe func() (string, error)
	// dial checks the credentials at start.
	dial func(ctx context.Context, cfg nova.Config) (*nova.Client, error)
	now  func() time.Time
	euid func() int
}

func defaultEnv() env {
	return env{getenv: os.Getenv, exe: os.Executable, dial: nova.Dial, now: time.Now, euid: os.Geteuid}
}

func agent(e env) *ocf.Agent {
	params := append(novaconn.Params(),
		ocf.Param{Name: paramNoSharedStorage, Type: ocf.Boolean, Default: "false",
			ShortDesc: "Instances are not on shared storage (only for Nova before microversion 2.14)",
			LongDesc: `Tell Nova that the instances' disks are not on storage shared with the destination.
Only a Nova older than microversion 2.14 (Mitaka) needs to be told; later ones find out
themselves, and the parameter is then ignored.`},
		ocf.Param{Name: paramVerbose, Type: ocf.Boolean, Default: "false",
			ShortDesc: "Log the controller's debug messages (every request to Nova)"},
		ocf.Param{Name: paramDelay, Type: ocf.Duration, Default: "0",
			ShortDesc: "How long to wait after a host is fenced before evacuating it",
			LongDesc: `How long after a host was fenced (the time in its novaha:fenced marker; for a host a
stock fence_compute fenced, from when the controller first sees it) its evacuation
starts, as the stock agent's evacuate_delay: for storage that needs time to release the
host's locks. 0 evacuates at once.`},
		ocf.Param{Name: paramSelection, Type: ocf.String, Default: string(defaultSelection),
			ShortDesc: "Which instances to evacuate: tagged, ha_enabled or all",
			LongDesc: `Which instances of a fenced host are evacuated. tagged is fence_evacuate's rule (the
stock agent's): the instances whose flavor has the extra spec evacuable=true or whose image
has the property evacuable=true or the tag evacuable; when none of the host's instances is
tagged, all of them. ha_enabled is Masakari's: the instances whose metadata has
HA_Enabled=True. all is every instance.`},
		ocf.Param{Name: paramIncludeError, Type: ocf.Boolean, Default: "false",
			ShortDesc: "Evacuate the instances in ERROR too",
			LongDesc:  "Evacuate the instances in ERROR too (Nova rebuilds them); by default they are left where they are."},
		ocf.Param{Name: paramStopped, Type: ocf.Boolean, Default: "false",
			ShortDesc: "Leave the evacuated instances stopped (Nova 2.95 or later)",
			LongDesc: `Leave every evacuated instance stopped on its new host (Nova microversion 2.95, 2023.1
Antelope, or later). By default instances come back as they were: running ones running,
stopped ones stopped. A Nova without 2.95 always does the latter, with a warning.`},
		ocf.Param{Name: paramTargetHosts, Type: ocf.String,
			ShortDesc: "The only hosts to evacuate to (reserved hosts), comma-separated",
			LongDesc: `Compute hosts (Nova host names, comma- or space-separated) that are the only destinations
of evacuations: reserved hosts kept empty for failures. They are used while enabled and up.
By default every healthy compute host is a destination, weighed by its free capacity.`},
		ocf.Param{Name: paramPriorityKey, Type: ocf.String, Default: evacuation.DefaultPriorityKey,
			ShortDesc: "Server metadata key of an instance's evacuation priority",
			LongDesc: `Server metadata key whose integer value is an instance's priority: higher goes first,
and no instance starts rebuilding while one of a higher priority is not finished. Instances
without it have priority 0.`},
		ocf.Param{Name: paramMaxInFlight, Type: ocf.Integer, Default: fmt.Sprint(evacuation.DefaultMaxInFlight),
			ShortDesc: "Most evacuations in flight over the whole cloud"},
		ocf.Param{Name: paramPerDestination, Type: ocf.Integer, Default: fmt.Sprint(evacuation.DefaultPerDestination),
			ShortDesc: "Most evacuations in flight to one destination host",
			LongDesc: `Most evacuations in flight to one destination host. A compute host rebuilds its
evacuated instances one after another: a small number keeps it busy without flooding it.`},
		ocf.Param{Name: paramMaxFenced, Type: ocf.Integer, Default: fmt.Sprint(evacuation.DefaultMaxFencedPercent),
			ShortDesc: "Mass-failure guard: evacuate nothing when more than this percentage of compute hosts is fenced",
			LongDesc: `The mass-failure guard: when more than this percentage of the compute hosts is fenced at
once (a network partition, a broken control plane), nothing is evacuated, the controller
logs it at every round and monitor reports the resource degraded until it clears. 100
disables the guard.`},
		ocf.Param{Name: paramRetryTimeout, Type: ocf.Duration, Default: formatDuration(evacuation.DefaultRetryTimeout),
			ShortDesc: "How long one instance that Nova keeps refusing is retried before it is recorded as failed"},
		ocf.Param{Name: paramInterval, Type: ocf.Duration, Default: formatDuration(evacuation.DefaultInterval),
			ShortDesc: "Pause between two reconcile rounds of the controller"},
		ocf.Param{Name: paramStateDir, Type: ocf.String,
			ShortDesc: "Directory of the controller's pid and status files (default: HA_RSCTMP)",
			LongDesc: `Directory of the controller's pid file, status file and own log, named after the
resource: NovaEvacuate-<resource>.pid, .status.json, .log. The controller logs to syslog
(HA_LOGFACILITY) when Pacemaker runs it, with its warnings and errors and any crash output
also in the .log file; to the .log file alone otherwise. Default HA_RSCTMP
(/run/resource-agents).`},
		ocf.Param{Name: paramNovaDownTimeout, Type: ocf.Duration, Default: formatDuration(defaultNovaDownTimeout),
			ShortDesc: "How long Nova may stay unreachable before monitor fails the resource",
			LongDesc: `How long the controller may fail to reach Keystone or Nova before monitor fails the
resource, so that Pacemaker restarts it (on another node, if this node's network is the
cause). The controller never records anything as done while Nova is unreachable, so
waiting is safe; 0 never fails the resource for it.`},
		ocf.Param{Name: paramStock, Type: ocf.Boolean, Default: "true",
			ShortDesc: "Also evacuate the hosts a stock fence_compute fenced (node attribute evacuate=yes)",
			LongDesc: `Also evacuate the hosts that a stock fence_compute fenced: forced down in Nova, with the
Pacemaker node attribute evacuate=yes, and set the attribute to no once they are evacuated,
as the stock NovaEvacuate does (through attrd_updater). fence_nova sets the attribute too,
so that either controller works with it.`},
	)
	return &ocf.Agent{
		Name:      "NovaEvacuate",
		Version:   "1.0",
		ShortDesc: "Evacuates the instances of fenced OpenStack compute hosts",
		LongDesc: `NovaEvacuate runs novaha's evacuation controller, once per cluster: it moves the instances
of the compute hosts that fence_nova (or a stock fence_compute) fenced to healthy hosts,
in parallel, spread by free capacity, confirming each through Nova's migration records,
then marks the host evacuated so that it may return. All its state is in Nova: Pacemaker
may stop, kill or move it at any moment, and it carries on with no instance evacuated
twice.

start launches the controller as a process of its own (logging to syslog) and returns
once it has finished its first round; monitor checks that the process is alive and
makes progress, and reports the resource degraded while the mass-failure guard holds
evacuations back; stop ends it.

"NovaEvacuate status" prints what the controllers of this node do: every fenced host,
its phase and counts. It accepts the parameters of ocf:openstack:NovaEvacuate.`,
		Params:   params,
		Validate: func(ctx context.Context, r *ocf.Request) error { return validate(r, e) },
		Actions: []ocf.Action{
			{Name: ocf.Start, Timeout: 60 * time.Second, Handler: func(ctx context.Context, r *ocf.Request) error { return start(ctx, r, e) }},
			{Name: ocf.Stop, Timeout: 30 * time.Second, Handler: func(ctx context.Context, r *ocf.Request) error { return stop(ctx, r, e) }},
			{Name: ocf.Monitor, Timeout: 20 * time.Second, Interval: 10 * time.Second,
				Handler: func(ctx context.Context, r *ocf.Request) error { return monitor(ctx, r, e) }},
		},
	}
}

// formatDuration writes a default time as the metadata shows it: "10min", "1s".
func formatDuration(d time.Duration) string {
	switch {
	case d%time.Minute == 0:
		return fmt.Sprintf("%dmin", d/time.Minute)
	case d%time.Second == 0:
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return d.String()
}

// splitHosts reads a list of host names separated by commas or spaces.
func splitHosts(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' })
}

func main() {
	e := defaultEnv()
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case cmdController:
			os.Exit(runController(os.Args, e))
		case cmdStatus:
			os.Exit(statusCommand(os.Args[2:], e, os.Stdout, os.Stderr))
		}
	}
	os.Exit(agent(e).Main(os.Args, os.Environ(), os.Stdout, os.Stderr))
}
