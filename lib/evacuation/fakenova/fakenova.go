// Package fakenova is an in-memory Nova for the tests and benchmarks of the evacuation
// controller: compute services, servers, evacuation migrations and destination hosts
// that rebuild their evacuated instances one at a time, in simulated time (the
// clock.Clock the test gives it). It applies Nova's rules to evacuate requests (409
// while an instance has a task, 400 while its host is up, vm_state active, stopped
// or error only), counts every call per API and every evacuation it accepted per
// instance, and lets tests inject 409s, server errors, timeouts (before or after
// Nova acted), scheduling failures and rebuilds that end in ERROR.
package fakenova

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/novaha/novaha/lib/clock"
	"github.com/novaha/novaha/lib/nova"
)

// API names, for call counts and injected failures.
const (
	APIListServices   = "ListServices"
	APIUpdateService  = "UpdateService"
	APIListServers    = "ListServers"
	APIListMigrations = "ListMigrations"
	APIEvacuate       = "Evacuate"
	APIHypervisors    = "Hypervisors"
	APIImage          = "ImageProperties"
)

// DefaultRebuildTime is how long a destination takes to rebuild one evacuated
// instance: measured on the Nova sandbox (testbed.md).
const DefaultRebuildTime = 1750 * time.Millisecond

// Nova is the fake. Its methods are safe for concurrent use.
type Nova struct {
	mu  sync.Mutex
	clk clock.Clock

	// RebuildTime is how long a destination takes per instance (DefaultRebuildTime).
	RebuildTime time.Duration
	// Hook, when set, is called on every call before ("before") and after ("after")
	// Nova acts, without the lock held, with the call's subject (the instance of an
	// evacuation, the host of a listing, else ""). The crash tests cancel the caller's
	// context there: the call then fails, having acted or not.
	Hook func(api, phase, subject string)
	// Lenient accepts evacuate requests for instances that have a task (Nova answers
	// 409): the tests then check that the controller itself never asks twice.
	Lenient bool

	services map[string]*nova.Service
	order    []string // hosts, in creation order
	hosts    map[string]*host
	servers  map[string]*server
	byHost   map[string]map[string]*server
	migs     map[string][]*nova.Migration // by source host
	nextMig  int
	images   map[string]image
	down     bool

	calls    map[string]int
	accepted map[string]int
	faults   map[string][]error // api -> errors of its next calls
	instFail map[string][]fault // instance -> what its next evacuations do
	busy     map[string]bool    // hosts with queued rebuilds
	refused  map[string]bool    // hosts the scheduler refuses
	stalled  map[string]*job    // instance -> its evacuation stuck in accepted
}

type fault int

const (
	faultError       fault = iota + 1 // the request fails (error in errs)
	faultLoseAnswer                   // Nova acts, the answer is lost (timeout)
	faultNoValidHost                  // scheduling fails: migration error, instance stays
	faultRebuild                      // the rebuild fails on the destination: instance ERROR there
	faultStall                        // accepted, then nothing: the cast to the destination is lost
)

type host struct {
	vcpus, ram         int
	usedVCPUs, usedRAM int
	queue              []*job
	busyUntil          time.Time
}

type server struct {
	nova.Server
	vcpus, ram int
	errs       []error // injected errors of the next evacuate requests
}

type job struct {
	mig      *nova.Migration
	srv      *server
	accepted time.Time
	start    time.Time
	started  bool
	stopped  bool
	outcome  fault
}

type image struct {
	props map[string]string
	tags  []string
}

// New returns an empty fake Nova on clock clk.
func New(clk clock.Clock) *Nova {
	return &Nova{
		clk: clk, RebuildTime: DefaultRebuildTime,
		services: map[string]*nova.Service{}, hosts: map[string]*host{}, servers: map[string]*server{},
		byHost: map[string]map[string]*server{}, migs: map[string][]*nova.Migration{}, images: map[string]image{},
		calls: map[string]int{}, accepted: map[string]int{}, faults: map[string][]error{},
		instFail: map[string][]fault{}, busy: map[string]bool{}, refused: map[string]bool{},
		stalled: map[string]*job{},
	}
}

// AddHost adds a healthy compute host (enabled, up) with its capacity.
func (f *Nova) AddHost(name string, vcpus, ramMB int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.services[name] = &nova.Service{ID: nova.ServiceID(fmt.Sprintf("svc-%s", name)), Binary: nova.BinaryCompute,
		Host: name, Status: "enabled", State: "up", UpdatedAt: f.clk.Now().UTC().Format(time.RFC3339)}
	f.order = append(f.order, name)
	f.hosts[name] = &host{vcpus: vcpus, ram: ramMB}
	f.byHost[name] = map[string]*server{}
}

// ServerSpec describes a server to add.
type ServerSpec struct {
	ID, Host string
	// Status is ACTIVE (default), SHUTOFF or ERROR, or any other Nova status.
	Status           string
	TaskState        string
	Metadata         map[string]string
	FlavorExtraSpecs map[string]string
	ImageID          string
	VCPUs, RAMMB     int
}

var vmStates = map[string]string{"ACTIVE": "active", "SHUTOFF": "stopped", "ERROR": "error", "PAUSED": "paused",
	"SUSPENDED": "suspended", "SHELVED": "shelved", "RESCUE": "rescued", "BUILD": "building"}

// AddServer adds a server on its host.
func (f *Nova) AddServer(s ServerSpec) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s.Status == "" {
		s.Status = "ACTIVE"
	}
	if s.VCPUs == 0 {
		s.VCPUs = 1
	}
	if s.RAMMB == 0 {
		s.RAMMB = 512
	}
	srv := &server{Server: nova.Server{ID: s.ID, Name: "vm-" + s.ID, Status: s.Status, TaskState: s.TaskState,
		VMState: vmStates[s.Status], Host: s.Host, FlavorExtraSpecs: s.FlavorExtraSpecs, ImageID: s.ImageID,
		Metadata: s.Metadata, Updated: f.clk.Now()}, vcpus: s.VCPUs, ram: s.RAMMB}
	f.servers[s.ID] = srv
	f.place(srv, s.Host)
}

func (f *Nova) place(srv *server, to string) {
	if old := f.byHost[srv.Host]; old != nil {
		delete(old, srv.ID)
		if h := f.hosts[srv.Host]; h != nil {
			h.usedVCPUs -= srv.vcpus
			h.usedRAM -= srv.ram
		}
	}
	srv.Host = to
	if f.byHost[to] == nil {
		f.byHost[to] = map[string]*server{}
	}
	f.byHost[to][srv.ID] = srv
	if h := f.hosts[to]; h != nil {
		h.usedVCPUs += srv.vcpus
		h.usedRAM += srv.ram
	}
}

// RefuseHost makes the scheduler refuse every evacuation to a host (as for a host
// whose resources Placement cannot claim): the migration ends in error.
func (f *Nova) RefuseHost(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refused[name] = true
}

// SetTask sets a server's task_state, as another operation would.
func (f *Nova) SetTask(id, task string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.servers[id].TaskState = task
}

// SetImage sets an image's properties and tags.
func (f *Nova) SetImage(id string, props map[string]string, tags []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.images[id] = image{props: props, tags: tags}
}

// Crash kills a host: its service stops reporting (down), its servers stay recorded on it.
func (f *Nova) Crash(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.services[name].State = "down"
}

// Fence records a host as fence_nova does: forced down, disabled, novaha:fenced marker.
func (f *Nova) Fence(name string, at time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.services[name]
	m := nova.NextMarker(*s, nova.Fenced, at)
	s.ForcedDown, s.State, s.Status, s.DisabledReason = true, "down", "disabled", m.String()
}

// ForceDown forces a host down without a marker, as the stock fence_compute does.
func (f *Nova) ForceDown(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.services[name]
	s.ForcedDown, s.State = true, "down"
}

// SetService replaces a host's service record fields (tests of odd states).
func (f *Nova) SetService(name string, edit func(s *nova.Service)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	edit(f.services[name])
}

// Service returns a host's service record.
func (f *Nova) Service(name string) nova.Service {
	f.mu.Lock()
	defer f.mu.Unlock()
	return *f.services[name]
}

// SetDown makes every call fail as if Nova (or Keystone) were unreachable.
func (f *Nova) SetDown(down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = down
}

// FailNext makes the next calls to api fail with errs, one each, before Nova acts.
func (f *Nova) FailNext(api string, errs ...error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults[api] = append(f.faults[api], errs...)
}

// FailEvacuate makes the next evacuate requests of an instance fail with errs, one
// each, before Nova acts.
func (f *Nova) FailEvacuate(id string, errs ...error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.servers[id].errs = append(f.servers[id].errs, errs...)
	for range errs {
		f.instFail[id] = append(f.instFail[id], faultError)
	}
}

// LoseAnswer makes the next evacuate request of an instance act and then time out.
func (f *Nova) LoseAnswer(id string) { f.addFault(id, faultLoseAnswer) }

// NoValidHost makes the next evacuation of an instance fail in scheduling: the
// migration ends in error, the instance stays on its host.
func (f *Nova) NoValidHost(id string) { f.addFault(id, faultNoValidHost) }

// FailRebuild makes the next evacuation of an instance fail on its destination: the
// migration ends failed, the instance in ERROR on the destination.
func (f *Nova) FailRebuild(id string) { f.addFault(id, faultRebuild) }

// Stall makes the next evacuation of an instance stop after Nova accepted it: the
// migration stays accepted and the instance on its host, task_state rebuilding, until
// Unstall.
func (f *Nova) Stall(id string) { f.addFault(id, faultStall) }

// Unstall lets a stalled evacuation go on to its destination, as if its compute host
// finally took the request.
func (f *Nova) Unstall(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	j := f.stalled[id]
	if j == nil {
		return
	}
	delete(f.stalled, id)
	j.accepted = f.clk.Now()
	f.hosts[j.mig.DestCompute].queue = append(f.hosts[j.mig.DestCompute].queue, j)
	f.busy[j.mig.DestCompute] = true
}

func (f *Nova) addFault(id string, k fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.instFail[id] = append(f.instFail[id], k)
}

// Errors of the kinds the controller meets.
func Conflict(id string) error {
	return &nova.Error{Service: "Nova", Op: "evacuating " + id, Status: http.StatusConflict,
		Message: "Cannot 'evacuate' instance " + id + " while it is in task_state rebuilding"}
}

// ServerError is a 503.
func ServerError(op string) error {
	return &nova.Error{Service: "Nova", Op: op, Status: http.StatusServiceUnavailable, Message: "Service Unavailable"}
}

// Timeout is a request without an answer.
func Timeout(op string) error {
	return fmt.Errorf("Nova did not answer in time while %s: %w", op, errors.Join(nova.ErrUnreachable, context.DeadlineExceeded))
}

func badRequest(op string, status int, msg string) error {
	return &nova.Error{Service: "Nova", Op: op, Status: status, Message: msg}
}

// Calls returns the number of calls per API.
func (f *Nova) Calls() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]int, len(f.calls))
	for k, v := range f.calls {
		out[k] = v
	}
	return out
}

// ResetCalls sets every call count to zero.
func (f *Nova) ResetCalls() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.calls)
}

// Accepted returns how many evacuate requests of each instance Nova accepted.
func (f *Nova) Accepted() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]int, len(f.accepted))
	for k, v := range f.accepted {
		out[k] = v
	}
	return out
}

// Server returns a server as Nova has it now.
func (f *Nova) Server(id string) nova.Server {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.advance(f.clk.Now())
	return cloneServer(&f.servers[id].Server)
}

// Servers returns every server, sorted by id.
func (f *Nova) Servers() []nova.Server {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.advance(f.clk.Now())
	out := make([]nova.Server, 0, len(f.servers))
	for _, s := range f.servers {
		out = append(out, cloneServer(&s.Server))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Migrations returns every migration from a source host.
func (f *Nova) Migrations(source string) []nova.Migration {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.advance(f.clk.Now())
	var out []nova.Migration
	for _, m := range f.migs[source] {
		out = append(out, *m)
	}
	return out
}

// Idle reports whether no rebuild is queued or running.
func (f *Nova) Idle() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.advance(f.clk.Now())
	return len(f.busy) == 0
}

func cloneServer(s *nova.Server) nova.Server {
	c := *s
	c.Metadata = cloneMap(s.Metadata)
	c.FlavorExtraSpecs = cloneMap(s.FlavorExtraSpecs)
	c.Tags = slices.Clone(s.Tags)
	return c
}

func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// enter counts a call and runs the hook's before phase; it returns an error when the
// call fails before Nova acts.
func (f *Nova) enter(ctx context.Context, api, subject, op string) error {
	if f.Hook != nil {
		f.Hook(api, "before", subject)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[api]++
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("Nova did not answer while %s: %w", op, errors.Join(nova.ErrUnreachable, err))
	}
	if f.down {
		return fmt.Errorf("Nova is unreachable while %s: connection refused: %w", op, nova.ErrUnreachable)
	}
	if q := f.faults[api]; len(q) > 0 {
		f.faults[api] = q[1:]
		return q[0]
	}
	return nil
}

// leave runs the hook's after phase: a context ended there loses Nova's answer.
func (f *Nova) leave(ctx context.Context, api, subject, op string) error {
	if f.Hook != nil {
		f.Hook(api, "after", subject)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("Nova did not answer while %s: %w", op, errors.Join(nova.ErrUnreachable, err))
	}
	return nil
}

// ListServices lists the service records that match opts.
func (f *Nova) ListServices(ctx context.Context, opts nova.ListServicesOpts) ([]nova.Service, error) {
	const op = "listing compute services"
	if err := f.enter(ctx, APIListServices, "", op); err != nil {
		return nil, err
	}
	f.mu.Lock()
	var out []nova.Service
	for _, h := range f.order {
		s := f.services[h]
		if (opts.Host == "" || opts.Host == s.Host) && (opts.Binary == "" || opts.Binary == s.Binary) {
			out = append(out, *s)
		}
	}
	f.mu.Unlock()
	return out, f.leave(ctx, APIListServices, "", op)
}

// UpdateService applies u as Nova does and returns the record.
func (f *Nova) UpdateService(ctx context.Context, s nova.Service, u nova.ServiceUpdate) (nova.Service, error) {
	op := "updating the service of " + s.Host
	if err := f.enter(ctx, APIUpdateService, s.Host, op); err != nil {
		return nova.Service{}, err
	}
	if _, err := u.ToServiceUpdateMap(); err != nil {
		return nova.Service{}, badRequest(op, http.StatusBadRequest, err.Error())
	}
	f.mu.Lock()
	rec := f.services[s.Host]
	if rec == nil || rec.ID != s.ID {
		f.mu.Unlock()
		return nova.Service{}, badRequest(op, http.StatusNotFound, "Service not found")
	}
	if u.ForcedDown != nil {
		rec.ForcedDown = *u.ForcedDown
		if rec.ForcedDown {
			rec.State = "down"
		}
	}
	switch u.Status {
	case "enabled":
		rec.Status, rec.DisabledReason = "enabled", ""
	case "disabled":
		rec.Status = "disabled"
		if u.DisabledReason != "" {
			rec.DisabledReason = u.DisabledReason
		}
	}
	out := *rec
	f.mu.Unlock()
	return out, f.leave(ctx, APIUpdateService, s.Host, op)
}

// ListServers lists the servers on opts.Host, sorted by id.
func (f *Nova) ListServers(ctx context.Context, opts nova.ListServersOpts) ([]nova.Server, error) {
	op := "listing the servers of " + opts.Host
	if err := f.enter(ctx, APIListServers, opts.Host, op); err != nil {
		return nil, err
	}
	if opts.Host == "" {
		return nil, errors.New("fakenova: ListServers needs a host")
	}
	f.mu.Lock()
	f.advance(f.clk.Now())
	list := f.byHost[opts.Host]
	out := make([]nova.Server, 0, len(list))
	for _, s := range list {
		out = append(out, cloneServer(&s.Server))
	}
	f.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, f.leave(ctx, APIListServers, opts.Host, op)
}

// ListMigrations lists the migrations from opts.SourceCompute.
func (f *Nova) ListMigrations(ctx context.Context, opts nova.ListMigrationsOpts) ([]nova.Migration, error) {
	op := "listing the migrations from " + opts.SourceCompute
	if err := f.enter(ctx, APIListMigrations, opts.SourceCompute, op); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.advance(f.clk.Now())
	var out []nova.Migration
	for _, m := range f.migs[opts.SourceCompute] {
		if (opts.MigrationType == "" || m.MigrationType == opts.MigrationType) &&
			// Nova filters changes-since on updated_at: a NULL one never matches.
			(opts.ChangesSince.IsZero() || (!m.UpdatedAt.IsZero() && !m.UpdatedAt.Before(opts.ChangesSince))) {
			out = append(out, *m)
		}
	}
	f.mu.Unlock()
	return out, f.leave(ctx, APIListMigrations, opts.SourceCompute, op)
}

// Hypervisors reports every compute host's free capacity.
func (f *Nova) Hypervisors(ctx context.Context) ([]nova.Hypervisor, error) {
	const op = "listing hypervisors"
	if err := f.enter(ctx, APIHypervisors, "", op); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.advance(f.clk.Now())
	out := make([]nova.Hypervisor, 0, len(f.order))
	for _, name := range f.order {
		h := f.hosts[name]
		out = append(out, nova.Hypervisor{Host: name, VCPUsFree: h.vcpus - h.usedVCPUs, RAMFreeMB: h.ram - h.usedRAM})
	}
	f.mu.Unlock()
	return out, f.leave(ctx, APIHypervisors, "", op)
}

// ImageProperties returns an image's properties and tags.
func (f *Nova) ImageProperties(ctx context.Context, id string) (map[string]string, []string, error) {
	op := "reading image " + id
	if err := f.enter(ctx, APIImage, id, op); err != nil {
		return nil, nil, err
	}
	f.mu.Lock()
	img, ok := f.images[id]
	f.mu.Unlock()
	if !ok {
		return nil, nil, badRequest(op, http.StatusNotFound, "Image not found")
	}
	return cloneMap(img.props), slices.Clone(img.tags), f.leave(ctx, APIImage, id, op)
}

// Evacuate applies Nova's rules to an evacuate request and, when it is accepted,
// records the migration and queues the rebuild on the destination.
func (f *Nova) Evacuate(ctx context.Context, id string, opts nova.EvacuateOpts) error {
	op := "evacuating " + id
	if err := f.enter(ctx, APIEvacuate, id, op); err != nil {
		return err
	}
	lose, err := f.evacuate(id, opts, op)
	if err != nil {
		return err
	}
	if err := f.leave(ctx, APIEvacuate, id, op); err != nil {
		return err
	}
	if lose {
		return Timeout(op)
	}
	return nil
}

func (f *Nova) evacuate(id string, opts nova.EvacuateOpts, op string) (lose bool, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.clk.Now()
	f.advance(now)
	srv := f.servers[id]
	if srv == nil {
		return false, badRequest(op, http.StatusNotFound, "Instance "+id+" could not be found.")
	}
	var outcome fault
	if q := f.instFail[id]; len(q) > 0 {
		outcome = q[0]
		f.instFail[id] = q[1:]
		if outcome == faultError {
			e := srv.errs[0]
			srv.errs = srv.errs[1:]
			return false, e
		}
	}
	src := f.services[srv.Host]
	if src != nil && src.State == "up" && !src.ForcedDown {
		return false, badRequest(op, http.StatusBadRequest, "Compute service of "+srv.Host+" is still in use.")
	}
	if srv.TaskState != "" && !f.Lenient {
		return false, badRequest(op, http.StatusConflict, fmt.Sprintf("Cannot 'evacuate' instance %s while it is in task_state %s", id, srv.TaskState))
	}
	switch srv.VMState {
	case "active", "stopped", "error":
	default:
		return false, badRequest(op, http.StatusConflict, fmt.Sprintf("Cannot 'evacuate' instance %s while it is in vm_state %s", id, srv.VMState))
	}
	dest := opts.Host
	if dest != "" {
		if _, ok := f.services[dest]; !ok {
			return false, badRequest(op, http.StatusNotFound, "Compute host "+dest+" could not be found.")
		}
		if dest == srv.Host {
			return false, badRequest(op, http.StatusBadRequest, "The target host can't be the same one.")
		}
	} else {
		dest = f.schedule(srv.Host)
	}
	f.nextMig++
	m := &nova.Migration{ID: f.nextMig, UUID: fmt.Sprintf("mig-%d", f.nextMig), InstanceUUID: id,
		SourceCompute: srv.Host, DestCompute: dest, Status: "accepted", MigrationType: "evacuation",
		CreatedAt: now} // updated_at stays NULL until the status changes, as in Nova's database
	f.migs[srv.Host] = append(f.migs[srv.Host], m)
	srv.TaskState, srv.Updated = "rebuilding", now
	f.accepted[id]++
	j := &job{mig: m, srv: srv, accepted: now, stopped: opts.Stopped, outcome: outcome}
	if dest == "" || f.hosts[dest] == nil {
		j.outcome = faultNoValidHost
		dest = srv.Host
	}
	if j.outcome == faultStall {
		f.stalled[id] = j
		return false, nil
	}
	h := f.hosts[dest]
	if dest == srv.Host {
		// No destination: fails at once, as the conductor's NoValidHost does.
		f.finish(j, now)
		return outcome == faultLoseAnswer, nil
	}
	h.queue = append(h.queue, j)
	f.busy[dest] = true
	return outcome == faultLoseAnswer, nil
}

// schedule is the scheduler: the healthy host with the shortest queue.
func (f *Nova) schedule(source string) string {
	best := ""
	for _, name := range f.order {
		s := f.services[name]
		if name == source || s.ForcedDown || s.State != "up" || s.Status != "enabled" {
			continue
		}
		if best == "" || len(f.hosts[name].queue) < len(f.hosts[best].queue) {
			best = name
		}
	}
	return best
}

// advance runs the destinations' rebuilds up to now: each host rebuilds its queue
// one instance after another, RebuildTime each.
func (f *Nova) advance(now time.Time) {
	for name := range f.busy {
		h := f.hosts[name]
		for len(h.queue) > 0 {
			j := h.queue[0]
			if !j.started {
				start := j.accepted
				if h.busyUntil.After(start) {
					start = h.busyUntil
				}
				if start.After(now) {
					break
				}
				j.started, j.start = true, start
				s := f.services[name]
				if j.outcome == faultNoValidHost || f.refused[name] || s.ForcedDown || s.State != "up" || s.Status != "enabled" {
					j.outcome = faultNoValidHost
					f.finish(j, start)
					h.queue = h.queue[1:]
					continue
				}
				// Nova moves the instance to its destination before it rebuilds it.
				f.place(j.srv, name)
				j.srv.TaskState, j.srv.Updated = "rebuild_spawning", start
				j.mig.Status, j.mig.UpdatedAt = "pre-migrating", start
				h.busyUntil = start.Add(f.RebuildTime)
			}
			end := j.start.Add(f.RebuildTime)
			if end.After(now) {
				break
			}
			f.finish(j, end)
			h.queue = h.queue[1:]
		}
		if len(h.queue) == 0 {
			delete(f.busy, name)
		}
	}
}

// finish ends an evacuation as Nova does, at time at.
func (f *Nova) finish(j *job, at time.Time) {
	s := j.srv
	s.TaskState, s.Updated = "", at
	j.mig.UpdatedAt = at
	switch j.outcome {
	case faultNoValidHost:
		j.mig.Status = "error"
	case faultRebuild:
		j.mig.Status = "failed"
		s.Status, s.VMState = "ERROR", "error"
	default:
		j.mig.Status = "done"
		// Up to 2.94 Nova restores the vm_state (a stopped instance stays stopped);
		// from 2.95 it may be asked to leave it stopped.
		if j.stopped || s.VMState == "stopped" {
			s.Status, s.VMState = "SHUTOFF", "stopped"
		} else {
			s.Status, s.VMState = "ACTIVE", "active"
		}
	}
}
