// Package evacuation is the evacuation controller behind ocf:novaha:NovaEvacuate: a
// level-triggered reconcile loop that moves the instances of fenced compute hosts
// to healthy ones (DESIGN.md, "The host lifecycle").
package evacuation

import (
	"context"
	"time"

	"github.com/novaha/novaha/lib/nova"
)

// Nova is what the controller needs of Nova. *nova.Client implements it; the tests
// use an in-memory model of services, servers and migrations.
type Nova interface {
	nova.ServiceAPI
	ListServers(ctx context.Context, opts nova.ListServersOpts) ([]nova.Server, error)
	ListMigrations(ctx context.Context, opts nova.ListMigrationsOpts) ([]nova.Migration, error)
	Evacuate(ctx context.Context, serverID string, opts nova.EvacuateOpts) error
	// Hypervisors reports the free capacity of the compute nodes, to spread the
	// evacuations over the destinations.
	Hypervisors(ctx context.Context) ([]nova.Hypervisor, error)
	// ImageProperties returns an image's properties and tags (for the evacuable
	// rule of fence_evacuate); called only when the selection rule needs them.
	ImageProperties(ctx context.Context, imageID string) (props map[string]string, tags []string, err error)
}

// Status is what the controller writes after every round to its status file, for
// the agent's monitor and for operators (`NovaEvacuate status`). Writers replace
// the file atomically (write a temporary file, rename).
type Status struct {
	// PID of the controller process.
	PID int `json:"pid"`
	// Updated is when the last round ended, successful or not. Monitor fails when it
	// is older than a few rounds: the controller is stuck.
	Updated time.Time `json:"updated"`
	Round   int64     `json:"round"`
	// NovaOK is false when the last round could not read Nova or Keystone.
	NovaOK bool   `json:"nova_ok"`
	Error  string `json:"error,omitempty"`
	// Guard is set while the mass-failure guard holds evacuations back; monitor then
	// reports degraded, not failed.
	Guard       bool         `json:"guard"`
	GuardReason string       `json:"guard_reason,omitempty"`
	Hosts       []HostStatus `json:"hosts"`
}

// HostStatus is one fenced host in progress.
type HostStatus struct {
	Host    string `json:"host"`
	Phase   string `json:"phase"` // fenced, evacuating, evacuated
	Total   int    `json:"total"`
	Moved   int    `json:"moved"`
	Failed  int    `json:"failed"`
	Pending int    `json:"pending"`
	// Failures: instance id -> reason, for the permanent ones.
	Failures map[string]string `json:"failures,omitempty"`
	// Stuck: instance id -> reason, for evacuations in flight past the retry timeout,
	// which hold the host back (counted in Pending).
	Stuck map[string]string `json:"stuck,omitempty"`
	Since time.Time         `json:"since"`
}
