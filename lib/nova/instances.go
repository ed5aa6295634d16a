package nova

import "time"

// The types of the evacuation API: servers, evacuation migrations and the evacuate
// request. The evacuation controller (lib/evacuation) depends on them through its
// Nova interface; *Client implements the calls.

// Server is one instance as GET /servers/detail reports it, reduced to what
// evacuation needs. Requested at microversion 2.47 or later, so that the flavor is
// embedded with its extra specs and no per-instance flavor lookup is needed.
type Server struct {
	ID     string
	Name   string
	Status string // ACTIVE, SHUTOFF, ERROR, REBUILD, ...
	// TaskState is OS-EXT-STS:task_state: "" when idle, "rebuilding",
	// "rebuild_spawning", ... during an evacuation.
	TaskState string
	// VMState is OS-EXT-STS:vm_state.
	VMState string
	// Host is OS-EXT-SRV-ATTR:host: the compute host the instance is on now.
	Host string
	// FlavorExtraSpecs are the embedded flavor's extra specs (2.47+).
	FlavorExtraSpecs map[string]string
	// ImageID is the image booted from; "" for a volume-backed instance.
	ImageID string
	// Metadata is the server's metadata (HA_Enabled, priorities, ...).
	Metadata map[string]string
	// Tags are the server's tags (2.26+).
	Tags    []string
	Updated time.Time
}

// ListServersOpts filters ListServers. Host is required by the evacuation
// controller: it lists one fenced host's instances, across all projects.
type ListServersOpts struct {
	Host       string
	AllTenants bool
}

// Migration is one record of GET /os-migrations.
type Migration struct {
	ID            int
	UUID          string // 2.59+
	InstanceUUID  string
	SourceCompute string
	DestCompute   string
	// Status of an evacuation: accepted, pre-migrating, migrating, done, completed,
	// failed, error.
	Status        string
	MigrationType string // "evacuation" for ours
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// ListMigrationsOpts filters ListMigrations: the controller asks once per host per
// round, migration_type=evacuation&source_compute=<host>.
type ListMigrationsOpts struct {
	SourceCompute string
	MigrationType string
	// ChangesSince, when not zero, limits the list to records changed since then.
	ChangesSince time.Time
}

// EvacuateOpts is one evacuate request. The client picks the request body for the
// microversion it negotiated: min(server max, 2.94) unless Stopped, which needs
// 2.95 or later (the instance is then left SHUTOFF on its new host).
type EvacuateOpts struct {
	// Host is the destination, or "" to let the scheduler choose.
	Host string
	// Stopped asks Nova to leave the instance stopped on its new host (2.95+).
	Stopped bool
}

// Hypervisor is one compute node's capacity as the controller weighs destinations.
type Hypervisor struct {
	Host string
	// VCPUsFree, RAMFreeMB: free capacity, from Placement's inventories and usages
	// (os-hypervisors stopped reporting them at 2.88). Negative when unknown.
	VCPUsFree int
	RAMFreeMB int
}
