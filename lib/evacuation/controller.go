package evacuation

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/novaha/novaha/lib/clock"
	"github.com/novaha/novaha/lib/nova"
)

// Controller is the evacuation controller: Run calls Round every Interval.
//
// Everything that matters lives in Nova: the hosts to evacuate (forced down, with a
// novaha:fenced or novaha:evacuating marker, or with the stock evacuate=yes
// attribute), and the evacuation of each instance (its migration records, its host,
// task_state and status). What the controller keeps in memory only paces retries and
// logs: a controller killed at any point and started again, here or on another node,
// carries on from what Nova says, with no instance evacuated twice.
type Controller struct {
	cfg   Config
	clk   clock.Clock
	log   *slog.Logger
	round int64

	// The memory that does not matter: losing it delays or repeats a log line,
	// never evacuates twice nor leaves an instance behind.
	retries  map[string]*retry    // instance -> transient failures of its evacuate requests
	refused  map[string]string    // instance -> why Nova refused it for good (this process)
	busy     map[string]time.Time // instance -> since when it is busy with another task
	prio     map[string]int       // instance -> priority, seen while it was on its host
	tagMode  map[string]bool      // host -> only the tagged instances (SelectTagged)
	images   map[string]imageInfo
	logged   map[string]string // instance -> the last outcome logged
	notified map[string]string // host -> the last host decision logged
	memo     map[string]*hostMemo
	// stockSeen: host -> when this process first saw it fenced without a marker (the
	// start of its evacuate_delay; lost, the delay runs again: later, never sooner).
	stockSeen map[string]time.Time
	hyps      []nova.Hypervisor // the last reading of the destinations' capacity
	hypsAt    time.Time
}

// hypervisorsTTL is how long a reading of the destinations' capacity is used.
const hypervisorsTTL = 10 * time.Second

// retry is the transient failures of one instance's evacuate requests.
type retry struct {
	first, next time.Time
	attempts    int
	reason      string
	avoid       string // the destination of the last failed request
}

type imageInfo struct {
	evacuable bool
	at        time.Time
}

// New checks the configuration and returns a controller.
func New(cfg Config) (*Controller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("evacuation controller: %w", err)
	}
	cfg = cfg.withDefaults()
	return &Controller{
		cfg: cfg, clk: cfg.Clock, log: cfg.Log,
		retries: map[string]*retry{}, refused: map[string]string{}, busy: map[string]time.Time{},
		prio: map[string]int{}, tagMode: map[string]bool{}, images: map[string]imageInfo{},
		logged: map[string]string{}, notified: map[string]string{}, memo: map[string]*hostMemo{},
		stockSeen: map[string]time.Time{},
	}, nil
}

// Run runs rounds until ctx ends, writing the status file after each, and returns nil
// then: stopping is not an error.
func (c *Controller) Run(ctx context.Context) error {
	for {
		st := c.Round(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if c.cfg.StatusFile != "" {
			if err := WriteStatus(c.cfg.StatusFile, st); err != nil {
				c.log.Error("status file not written", "error", err)
			}
		}
		if err := c.clk.Sleep(ctx, c.cfg.Interval); err != nil {
			return nil
		}
	}
}

// Migration statuses of an evacuation, as Nova's compute and conductor set them.
func migrationDone(status string) bool { return status == "done" || status == "completed" }
func migrationFailed(status string) bool {
	return status == "failed" || status == "error" || status == "cancelled"
}

// migrationInFlight: accepted, pre-migrating, migrating, and any status this code does
// not know, so that an unknown state is never taken for a chance to evacuate again.
func migrationInFlight(status string) bool { return !migrationDone(status) && !migrationFailed(status) }

// cycleMargin widens the window of a host's fence cycle (from its marker's time) for
// clock differences between the cluster and Nova.
const cycleMargin = 2 * time.Minute

// instState is where one instance of a fenced host stands in a round.
type instState int

const (
	stPending  instState = iota // to be evacuated, may be requested now
	stWaiting                   // to be evacuated, not now (busy, or pausing after a failure)
	stInFlight                  // an evacuation is under way
	stMoved                     // evacuated: Nova's migration is done and it left the host
	stFailed                    // recorded as failed, for good
)

var stateWords = map[instState]string{stPending: "pending", stWaiting: "waiting", stInFlight: "in flight",
	stMoved: "moved", stFailed: "failed"}

type instance struct {
	id     string
	host   *hostWork
	srv    *nova.Server // nil once it left the host
	state  instState
	prio   int
	dest   string
	reason string
	stuck  bool // in flight past the retry timeout
}

// unfinished: it still holds its host back.
func (i *instance) unfinished() bool { return i.state < stMoved }

// hostWork is one fenced host in a round.
type hostWork struct {
	svc    nova.Service
	host   string
	marked bool // carries a novaha marker; false: the stock evacuate=yes only
	marker nova.Marker
	stock  bool // the attribute evacuate=yes is set
	since  time.Time
	insts  []*instance
	// skipped: the instances the selection rule leaves on the host.
	skipped []string
	ready   bool // its instances and migrations were read this round
}

// Round reads Nova once and takes the next steps: marks fenced hosts evacuating,
// requests the evacuations that may start now, and marks the hosts whose instances
// are all handled evacuated. It returns the status of the round.
func (c *Controller) Round(ctx context.Context) (st Status) {
	c.round++
	st = Status{PID: c.cfg.PID, Round: c.round, NovaOK: true, Hosts: []HostStatus{}}
	defer func() { st.Updated = c.clk.Now() }()
	fail := func(err error) {
		st.NovaOK = false
		if st.Error == "" {
			st.Error = err.Error()
		}
	}

	services, err := c.listServices(ctx)
	if err != nil {
		c.log.Error("cannot read the compute services; nothing done this round", "error", err)
		fail(err)
		return st
	}
	requested := map[string]bool{}
	stockKnown := c.cfg.Stock != nil
	if c.cfg.Stock != nil {
		hosts, err := c.callStockRequested(ctx)
		if err != nil {
			// Without the attribute, the hosts fenced by a stock fence_compute wait; the
			// ones with a novaha marker do not need it.
			c.log.Warn("cannot read the Pacemaker attribute evacuate", "error", err)
			stockKnown = false
		}
		for _, h := range hosts {
			requested[h] = true
		}
	}

	now := c.clk.Now()
	var work []*hostWork
	var dests []nova.Service
	fenced := 0
	for _, s := range services {
		m, marked := nova.ParseMarker(s.DisabledReason)
		act := s.ForcedDown && ((marked && (m.Phase == nova.Fenced || m.Phase == nova.Evacuating)) ||
			(!marked && requested[s.Host]))
		if act || (s.ForcedDown && marked && m.Phase == nova.Evacuated) {
			fenced++
		}
		switch {
		case act:
			hw := &hostWork{svc: s, host: s.Host, marked: marked, marker: m, stock: requested[s.Host]}
			if marked {
				hw.since = m.At
			}
			work = append(work, hw)
		case marked && !s.ForcedDown && (m.Phase == nova.Fenced || m.Phase == nova.Evacuating):
			// Invariant 1: an instance leaves only a host recorded as fenced, which
			// includes Nova's force-down; someone lifted it.
			c.noteHost(s.Host, "not-forced-down", slog.LevelWarn,
				"host carries a fence marker but is not forced down: not evacuating it", "marker", s.DisabledReason)
		case !s.ForcedDown && s.Enabled() && s.Up() && !marked:
			dests = append(dests, s)
		}
	}
	slices.SortFunc(work, func(a, b *hostWork) int { return cmp.Compare(a.host, b.host) })

	if fenced > 0 && fenced*100 > c.cfg.MaxFencedPercent*len(services) {
		st.Guard = true
		st.GuardReason = fmt.Sprintf("%d of %d compute hosts are fenced, more than %d%%: evacuating nothing",
			fenced, len(services), c.cfg.MaxFencedPercent)
		c.log.Error("MASS-FAILURE GUARD: "+st.GuardReason+"; a partition or a broken control plane? "+
			"fix the cause or raise max_fenced_percent", "fenced", fenced, "hosts", len(services))
		for _, hw := range work {
			st.Hosts = append(st.Hosts, HostStatus{Host: hw.host, Phase: c.phaseOf(hw), Since: hw.since})
		}
		return st
	}

	// Forget the hosts that left the lifecycle without this controller (unfenced by hand).
	for h := range c.memo {
		if !slices.ContainsFunc(work, func(hw *hostWork) bool { return hw.host == h }) {
			delete(c.memo, h)
		}
	}
	for h := range c.stockSeen {
		if !slices.ContainsFunc(work, func(hw *hostWork) bool { return hw.host == h && !hw.marked }) {
			delete(c.stockSeen, h)
		}
	}
	toRead, othersTop := c.plan(work, now)
	for _, hw := range work {
		if !toRead[hw] {
			continue
		}
		if err := c.readHost(ctx, hw, now); err != nil {
			if !errors.Is(err, errDelayed) {
				c.log.Error("cannot read the fenced host's instances; retrying next round", "host", hw.host, "error", err)
				fail(err)
			}
		}
	}
	c.dispatch(ctx, work, dests, othersTop, now, fail)

	for _, hw := range work {
		if !hw.ready {
			// Not read this round: what the last read found, if any.
			if m := c.memo[hw.host]; m != nil {
				hs := m.status
				hs.Phase = c.phaseOf(hw)
				st.Hosts = append(st.Hosts, hs)
			} else {
				st.Hosts = append(st.Hosts, HostStatus{Host: hw.host, Phase: c.phaseOf(hw), Since: hw.since})
			}
			continue
		}
		hs := HostStatus{Host: hw.host, Phase: c.phaseOf(hw), Since: hw.since}
		for _, i := range hw.insts {
			hs.Total++
			switch i.state {
			case stMoved:
				hs.Moved++
			case stFailed:
				hs.Failed++
				if hs.Failures == nil {
					hs.Failures = map[string]string{}
				}
				hs.Failures[i.id] = i.reason
			default:
				hs.Pending++
				if i.stuck {
					if hs.Stuck == nil {
						hs.Stuck = map[string]string{}
					}
					hs.Stuck[i.id] = i.reason
				}
			}
		}
		// Without the stock attribute this round, a host that has it would keep it:
		// wait for a round that reads it.
		if hw.ready && hs.Pending == 0 && (c.cfg.Stock == nil || stockKnown) {
			if err := c.finishHost(ctx, hw, hs.Moved, hs.Failed); err != nil {
				c.log.Error("cannot record the host as evacuated; retrying next round", "host", hw.host, "error", err)
				fail(err)
			} else {
				hs.Phase = nova.Evacuated.String()
			}
		}
		if hs.Phase != nova.Evacuated.String() {
			c.remember(hw, hs, now)
		}
		st.Hosts = append(st.Hosts, hs)
	}
	return st
}

// hostMemo is what the last read of a fenced host found. It only saves calls: the
// hosts that wait for a free slot, with nothing in flight, are not read again every
// round. Lost, the host is read again.
type hostMemo struct {
	read     time.Time
	inFlight int
	pending  map[int]int // priority -> instances pending or waiting
	top      int         // the highest priority of its unfinished instances
	status   HostStatus
}

// refreshEvery is how often a fenced host is read even when nothing is expected of it,
// so that the status shows what others (an operator) did meanwhile.
const refreshEvery = 30 * time.Second

func (c *Controller) remember(hw *hostWork, hs HostStatus, now time.Time) {
	m := &hostMemo{read: now, top: math.MinInt, pending: map[int]int{}, status: hs}
	for _, i := range hw.insts {
		switch {
		case i.state == stInFlight:
			m.inFlight++
		case i.unfinished():
			m.pending[i.prio]++
		}
		if i.unfinished() && !i.stuck {
			m.top = max(m.top, i.prio)
		}
	}
	c.memo[hw.host] = m
}

// plan chooses the fenced hosts to read this round: the ones never read, or being
// marked, or with evacuations in flight (to confirm them), or not read for a while;
// then, host after host, the ones with pending instances of the highest priority left,
// as long as free slots remain for them. Evacuating host after host, rather than a
// little of each, returns each host sooner. othersTop is the highest priority left on
// the hosts not read, for the priority barrier.
func (c *Controller) plan(work []*hostWork, now time.Time) (map[*hostWork]bool, int) {
	read := map[*hostWork]bool{}
	top := math.MinInt
	for _, hw := range work {
		if m := c.memo[hw.host]; m != nil {
			top = max(top, m.top)
		}
	}
	free := c.cfg.MaxInFlight
	var rest []*hostWork
	for _, hw := range work {
		m := c.memo[hw.host]
		if m == nil || m.inFlight > 0 || now.Sub(m.read) >= refreshEvery || !hw.marked || hw.marker.Phase != nova.Evacuating {
			read[hw] = true
			if m != nil {
				// Its evacuations in flight may end before this round's requests: count
				// the slots they hold as free, so that the next hosts are read in time.
				free -= m.pending[top]
			}
			continue
		}
		rest = append(rest, hw)
	}
	othersTop := math.MinInt
	for _, hw := range rest {
		m := c.memo[hw.host]
		if free > 0 && m.pending[top] > 0 {
			read[hw] = true
			free -= m.pending[top]
			continue
		}
		othersTop = max(othersTop, m.top)
	}
	return read, othersTop
}

func (c *Controller) phaseOf(hw *hostWork) string {
	if hw.marked {
		return hw.marker.Phase.String()
	}
	return nova.Fenced.String()
}

var errDelayed = errors.New("evacuation delayed")

// readHost marks a fenced host evacuating and reads its migrations and instances.
func (c *Controller) readHost(ctx context.Context, hw *hostWork, now time.Time) error {
	if !hw.marked && c.cfg.Delay > 0 {
		// No marker dates the fence of a stock fence_compute: the delay counts from
		// the first sight of the host.
		first, ok := c.stockSeen[hw.host]
		if !ok {
			first = now
			c.stockSeen[hw.host] = now
		}
		if now.Before(first.Add(c.cfg.Delay)) {
			c.noteHost(hw.host, "delayed", slog.LevelInfo, "host fenced (evacuate=yes); evacuation delayed",
				"until", first.Add(c.cfg.Delay))
			return errDelayed
		}
	}
	if hw.marked && hw.marker.Phase == nova.Fenced {
		if c.cfg.Delay > 0 && now.Before(hw.marker.At.Add(c.cfg.Delay)) {
			c.noteHost(hw.host, "delayed", slog.LevelInfo, "host fenced; evacuation delayed",
				"until", hw.marker.At.Add(c.cfg.Delay))
			return errDelayed
		}
		next := nova.NextMarker(hw.svc, nova.Evacuating, now)
		got, err := c.updateService(ctx, hw.svc, nova.ServiceUpdate{Status: "disabled", DisabledReason: next.String()})
		if err != nil {
			return fmt.Errorf("marking %s evacuating: %w", hw.host, err)
		}
		m, ok := nova.ParseMarker(got.DisabledReason)
		if !ok || m.Phase != nova.Evacuating || !got.ForcedDown {
			return fmt.Errorf("Nova did not keep the evacuating marker of %s (disabled_reason %q, forced_down=%t)",
				hw.host, got.DisabledReason, got.ForcedDown)
		}
		hw.svc, hw.marker, hw.since = got, m, m.At
		c.noteHost(hw.host, "evacuating", slog.LevelInfo, "host fenced: evacuating its instances", "action", "mark evacuating", "outcome", "done")
	}
	// Not filtered with changes-since: Nova compares it with updated_at, which stays
	// NULL until a migration changes status, so a just accepted evacuation would be
	// missing. The fence cycle is kept by created_at, here.
	opts := nova.ListMigrationsOpts{SourceCompute: hw.host, MigrationType: "evacuation"}
	cycle := time.Time{}
	if hw.marked && !hw.since.IsZero() {
		cycle = hw.since.Add(-cycleMargin)
	}
	// Migrations first, then servers: an evacuation seen in flight may be done by the
	// time the servers are listed, but one seen done has already taken its instance
	// off the host (Nova moves it before it records the migration done).
	migs, err := c.listMigrations(ctx, opts)
	if err != nil {
		return err
	}
	servers, err := c.listServers(ctx, hw.host)
	if err != nil {
		return err
	}
	byInst := map[string][]nova.Migration{}
	for _, m := range migs {
		if m.SourceCompute != hw.host || (m.MigrationType != "" && m.MigrationType != "evacuation") ||
			(!cycle.IsZero() && !m.CreatedAt.IsZero() && m.CreatedAt.Before(cycle)) {
			continue
		}
		byInst[m.InstanceUUID] = append(byInst[m.InstanceUUID], m)
	}
	onHost := map[string]*nova.Server{}
	for k := range servers {
		onHost[servers[k].ID] = &servers[k]
	}
	sel, err := c.selection(ctx, hw, servers)
	if err != nil {
		return err
	}
	ids := make([]string, 0, len(onHost)+len(byInst))
	for id := range onHost {
		ids = append(ids, id)
	}
	for id := range byInst {
		if onHost[id] == nil {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		if i := c.classify(hw, id, onHost[id], byInst[id], sel[id], now); i != nil {
			hw.insts = append(hw.insts, i)
		}
	}
	hw.ready = true
	return nil
}

// classify places one instance of a fenced host; nil when it is not to be evacuated.
func (c *Controller) classify(hw *hostWork, id string, srv *nova.Server, migs []nova.Migration, selected bool, now time.Time) *instance {
	i := &instance{id: id, host: hw, srv: srv}
	if srv != nil {
		i.prio = c.priority(srv)
		c.prio[id] = i.prio
	} else if p, ok := c.prio[id]; ok {
		i.prio = p
	} else {
		// Not seen on its host by this process: it may be of any priority.
		i.prio = math.MaxInt
	}
	if srv != nil && srv.Status == nova.StatusUnknown {
		// Listed from a cell Nova cannot reach: neither its state, nor its metadata for
		// the selection rule, nor its migrations can be read. Its host waits for the
		// cell, however long: marked evacuated, the host would return with it. Its
		// priority is unknown too: it holds no other instance back.
		i.prio = math.MinInt
		i.state, i.reason = stWaiting, "Nova cannot reach the instance's cell (status UNKNOWN)"
		c.logInstance(i)
		return i
	}
	slices.SortStableFunc(migs, func(a, b nova.Migration) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	if srv != nil && !hw.marked {
		// A host fenced without a marker (stock fence_compute) has no fence cycle to
		// keep its migrations by. An instance still on the host after an evacuation
		// Nova records done has come back since (Nova moves an instance before it
		// records its evacuation done, and migrations are read before servers): that
		// evacuation, and what came before it, belong to an earlier failure.
		for k := len(migs) - 1; k >= 0; k-- {
			if migrationDone(migs[k].Status) {
				migs = migs[k+1:]
				break
			}
		}
	}
	failedAttempts := 0
	for _, m := range migs {
		if migrationFailed(m.Status) {
			failedAttempts++
		}
	}
	if len(migs) > 0 {
		last := migs[len(migs)-1]
		i.dest = last.DestCompute
		switch {
		case migrationInFlight(last.Status):
			i.state = stInFlight
			changed := last.UpdatedAt
			if changed.IsZero() {
				changed = last.CreatedAt // never updated since Nova accepted it
			}
			// Stuck past the retry timeout, it still holds its host back: a returning
			// nova-compute destroys its local copy of every instance with an evacuation
			// accepted or pre-migrating from it, and the destination never rebuilt this
			// one (on local storage, the instance would be lost). An operator settles
			// it; monitor reports it meanwhile.
			if !changed.IsZero() && now.Sub(changed) > c.cfg.RetryTimeout {
				i.stuck = true
				i.reason = fmt.Sprintf("evacuation to %q stuck in status %s since %s: the host is held back until it ends",
					last.DestCompute, last.Status, changed.UTC().Format(time.RFC3339))
			}
		case migrationDone(last.Status) && srv == nil:
			i.state = stMoved
		case migrationDone(last.Status):
			// Never evacuate again what Nova says it evacuated.
			i.state = stFailed
			i.reason = fmt.Sprintf("Nova records the evacuation to %s %s but the instance is still on the host", last.DestCompute, last.Status)
		case srv == nil:
			i.state = stFailed
			i.reason = fmt.Sprintf("evacuation to %s %s; the instance is on %s now", last.DestCompute, last.Status, last.DestCompute)
		case failedAttempts >= c.cfg.MaxAttempts:
			i.state = stFailed
			i.reason = fmt.Sprintf("%d evacuations failed (last to %q: %s)", failedAttempts, last.DestCompute, last.Status)
		default:
			// It failed before leaving the host: evacuate it again, whatever its status
			// now (a failed evacuation may leave it in ERROR).
			i.state = c.candidate(i, now)
		}
		c.logInstance(i)
		return i
	}
	if srv == nil {
		return nil
	}
	if !selected {
		hw.skipped = append(hw.skipped, id)
		if c.logged[id] != "not selected" {
			c.logged[id] = "not selected"
			c.log.Info("instance", "host", hw.host, "instance", id, "action", "skip", "outcome", "not selected",
				"reason", fmt.Sprintf("selection rule %s, status %s", c.cfg.Select, srv.Status))
		}
		return nil
	}
	i.state = c.candidate(i, now)
	c.logInstance(i)
	return i
}

// candidate decides whether an instance still on its fenced host may be evacuated now.
func (c *Controller) candidate(i *instance, now time.Time) instState {
	srv := i.srv
	if why, ok := c.refused[i.id]; ok {
		i.reason = why
		return stFailed
	}
	if srv.TaskState != "" {
		since, ok := c.busy[i.id]
		if !ok {
			c.busy[i.id] = now
			since = now
		}
		if now.Sub(since) > c.cfg.RetryTimeout {
			i.reason = fmt.Sprintf("busy with task %s for longer than %v", srv.TaskState, c.cfg.RetryTimeout)
			return stFailed
		}
		i.reason = "busy with task " + srv.TaskState
		return stWaiting
	}
	delete(c.busy, i.id)
	if !evacuableState(srv) {
		i.reason = fmt.Sprintf("Nova does not evacuate an instance in status %s", srv.Status)
		return stFailed
	}
	if r := c.retries[i.id]; r != nil {
		if now.Sub(r.first) > c.cfg.RetryTimeout {
			i.reason = fmt.Sprintf("evacuate request failed %d times over %v: %s", r.attempts, c.cfg.RetryTimeout, r.reason)
			return stFailed
		}
		if now.Before(r.next) {
			i.reason = "retrying after: " + r.reason
			return stWaiting
		}
	}
	return stPending
}

// evacuableState: Nova evacuates instances whose vm_state is active, stopped or error.
func evacuableState(s *nova.Server) bool {
	switch s.VMState {
	case "active", "stopped", "error":
		return true
	case "":
		return s.Status == "ACTIVE" || s.Status == "SHUTOFF" || s.Status == "ERROR"
	}
	return false
}

// dispatch requests the evacuations that may start now: the pending instances of the
// highest priority, spread over the destinations by load and free capacity, at most
// PerDestination in flight on each and MaxInFlight in all.
func (c *Controller) dispatch(ctx context.Context, work []*hostWork, dests []nova.Service, othersTop int, now time.Time, fail func(error)) {
	var pending []*instance
	inFlight := 0
	load := map[string]int{}
	top := othersTop // the highest priority among the instances left to do
	for _, hw := range work {
		for _, i := range hw.insts {
			// A stuck evacuation holds its host back, not the others: no slot, no
			// priority barrier.
			if !i.unfinished() || i.stuck {
				continue
			}
			top = max(top, i.prio)
			switch i.state {
			case stInFlight:
				inFlight++
				load[i.dest]++
			case stPending:
				pending = append(pending, i)
			}
		}
	}
	if len(pending) == 0 || inFlight >= c.cfg.MaxInFlight {
		return
	}
	// Within a priority, host after host: a host returns once all its instances are
	// handled, so finishing one before starting the next returns each sooner.
	slices.SortStableFunc(pending, func(a, b *instance) int {
		return cmp.Or(cmp.Compare(b.prio, a.prio), cmp.Compare(a.host.host, b.host.host))
	})

	cands := c.destinations(ctx, dests, fail)
	if len(cands) == 0 {
		c.noteHost("", "no-destination", slog.LevelWarn, "no healthy destination host: waiting", "pending", len(pending))
		return
	}
	c.noteHost("", "no-destination", slog.LevelInfo, "") // forget the warning
	for _, i := range pending {
		if i.prio < top {
			// Every instance of a higher priority finishes before this one starts.
			break
		}
		if inFlight >= c.cfg.MaxInFlight {
			return
		}
		// After a failed evacuation, another destination than the one that failed, if
		// there is one.
		avoid := i.dest
		if r := c.retries[i.id]; avoid == "" && r != nil {
			avoid = r.avoid
		}
		d := c.pick(cands, load, i.host.host, avoid)
		if d == nil && avoid != "" {
			d = c.pick(cands, load, i.host.host, "")
		}
		if d == nil {
			return // every destination is busy: the next round goes on
		}
		err := c.evacuate(ctx, i.id, nova.EvacuateOpts{Host: d.Host, Stopped: c.cfg.Stopped})
		if err == nil {
			delete(c.retries, i.id)
			i.state, i.dest, i.reason = stInFlight, d.Host, ""
			inFlight++
			load[d.Host]++
			c.log.Info("evacuate", "host", i.host.host, "instance", i.id, "action", "evacuate", "destination", d.Host,
				"priority", i.prio, "outcome", "requested")
			c.logged[i.id] = "in flight"
			continue
		}
		c.refusal(i, d.Host, err, now)
		if isUnknownOutcome(err) {
			// Nova is struggling, or did not answer: no more requests this round; the
			// next one reads what became of this one before anything else.
			if errors.Is(err, nova.ErrUnreachable) {
				fail(err)
			}
			return
		}
	}
}

// refusal records a failed evacuate request. A request without an answer may have
// reached Nova: the next round's migrations and task_state tell, before any other.
func (c *Controller) refusal(i *instance, dest string, err error, now time.Time) {
	code := nova.StatusCode(err)
	log := c.log.With("host", i.host.host, "instance", i.id, "action", "evacuate", "destination", dest, "error", err)
	// A 404 is not taken for a deleted instance: Nova answers it for an unknown
	// destination too (a compute host not yet mapped to its cell). A deleted instance
	// is no longer listed on its host next round, and is then left alone; one still
	// listed is retried, on another destination.
	switch {
	case code >= 400 && code < 500 && code != http.StatusNotFound && code != http.StatusConflict && code != http.StatusTooManyRequests &&
		code != http.StatusUnauthorized && code != http.StatusForbidden:
		i.state, i.reason = stFailed, fmt.Sprintf("Nova refused the evacuation: %v", err)
		c.refused[i.id] = i.reason
		log.Error("evacuate", "outcome", "refused for good")
		return
	}
	r := c.retries[i.id]
	if r == nil {
		r = &retry{first: now}
		c.retries[i.id] = r
	}
	r.attempts++
	r.reason, r.avoid = err.Error(), dest
	pause := c.cfg.RetryBase << min(r.attempts-1, 16)
	r.next = now.Add(min(pause, c.cfg.RetryMax))
	i.state, i.reason = stWaiting, "retrying after: "+r.reason
	log.Warn("evacuate", "outcome", "failed, will retry", "attempt", r.attempts, "retry_at", r.next)
}

// isUnknownOutcome: the request may or may not have reached Nova.
func isUnknownOutcome(err error) bool {
	return errors.Is(err, nova.ErrUnreachable) || errors.Is(err, context.DeadlineExceeded) || nova.StatusCode(err) >= 500
}

// dest is one destination candidate of a round.
type dest = nova.Hypervisor

// destinations returns the candidate destinations: the healthy compute hosts (only the
// target hosts, when set), with their free capacity when Nova reports it.
func (c *Controller) destinations(ctx context.Context, healthy []nova.Service, fail func(error)) []*dest {
	allowed := map[string]bool{}
	for _, s := range healthy {
		allowed[s.Host] = true
	}
	if len(c.cfg.TargetHosts) > 0 {
		only := map[string]bool{}
		for _, h := range c.cfg.TargetHosts {
			only[h] = allowed[h]
		}
		allowed = only
	}
	// The capacity only orders the destinations, and the load of this controller's
	// own evacuations is counted apart: a reading of a few seconds ago does.
	var err error
	hyps := c.hyps
	if c.hyps == nil || c.clk.Now().Sub(c.hypsAt) >= hypervisorsTTL {
		if hyps, err = c.hypervisors(ctx); err != nil {
			c.log.Warn("cannot read the hypervisors' free capacity; spreading by load only", "error", err)
			c.hyps = nil
		} else {
			c.hyps, c.hypsAt = hyps, c.clk.Now()
		}
	}
	var out []*dest
	seen := map[string]bool{}
	for _, h := range hyps {
		if allowed[h.Host] && !seen[h.Host] {
			seen[h.Host] = true
			out = append(out, &dest{Host: h.Host, VCPUsFree: h.VCPUsFree, RAMFreeMB: h.RAMFreeMB})
		}
	}
	if err != nil || len(hyps) == 0 {
		for _, s := range healthy {
			if allowed[s.Host] && !seen[s.Host] {
				seen[s.Host] = true
				out = append(out, &dest{Host: s.Host, VCPUsFree: -1, RAMFreeMB: -1})
			}
		}
	}
	slices.SortFunc(out, func(a, b *dest) int { return cmp.Compare(a.Host, b.Host) })
	return out
}

// pick returns the destination with a free slot, the least loaded, then the one with
// the most free memory, then vCPUs; nil when every one is full. A host that reports
// no free memory or vCPU at all is left out.
func (c *Controller) pick(cands []*dest, load map[string]int, source, avoid string) *dest {
	var best *dest
	for _, d := range cands {
		if d.Host == source || d.Host == avoid || load[d.Host] >= c.cfg.PerDestination || d.RAMFreeMB == 0 || d.VCPUsFree == 0 {
			continue
		}
		if best == nil || cmp.Or(cmp.Compare(load[d.Host], load[best.Host]), cmp.Compare(best.RAMFreeMB, d.RAMFreeMB),
			cmp.Compare(best.VCPUsFree, d.VCPUsFree)) < 0 {
			best = d
		}
	}
	return best
}

// finishHost records a host whose instances are all moved or failed: the stock
// attribute first, then the marker, so that an interruption in between leaves a host
// still marked evacuating, which the next round finishes again.
func (c *Controller) finishHost(ctx context.Context, hw *hostWork, moved, failed int) error {
	if hw.stock && c.cfg.Stock != nil {
		if err := c.callStockDone(ctx, hw.host); err != nil {
			return fmt.Errorf("setting evacuate=no on %s: %w", hw.host, err)
		}
	}
	if hw.marked {
		next := nova.NextMarker(hw.svc, nova.Evacuated, c.clk.Now())
		next.Moved, next.Failed = moved, failed
		got, err := c.updateService(ctx, hw.svc, nova.ServiceUpdate{Status: "disabled", DisabledReason: next.String()})
		if err != nil {
			return err
		}
		if m, ok := nova.ParseMarker(got.DisabledReason); !ok || m.Phase != nova.Evacuated {
			return fmt.Errorf("Nova did not keep the evacuated marker of %s (disabled_reason %q)", hw.host, got.DisabledReason)
		}
	}
	c.log.Info("host evacuated", "host", hw.host, "action", "mark evacuated", "moved", moved, "failed", failed, "outcome", "done")
	for _, id := range hw.skipped {
		delete(c.logged, id)
	}
	for _, i := range hw.insts {
		delete(c.retries, i.id)
		delete(c.refused, i.id)
		delete(c.busy, i.id)
		delete(c.prio, i.id)
		delete(c.logged, i.id)
	}
	delete(c.tagMode, hw.host)
	delete(c.memo, hw.host)
	delete(c.stockSeen, hw.host)
	for k := range c.notified {
		if strings.HasPrefix(k, hw.host+"\x00") {
			delete(c.notified, k)
		}
	}
	return nil
}

// logInstance logs an instance's state when it changed since the last round.
func (c *Controller) logInstance(i *instance) {
	word := stateWords[i.state]
	if c.logged[i.id] == word+i.reason {
		return
	}
	c.logged[i.id] = word + i.reason
	level := slog.LevelInfo
	switch {
	case i.state == stFailed || i.stuck:
		level = slog.LevelError
	case i.state == stPending:
		return // the request, or its refusal, is the decision to log
	}
	if i.stuck {
		word = "stuck"
	}
	c.log.Log(context.Background(), level, "instance", "host", i.host.host, "instance", i.id, "action", "check",
		"destination", i.dest, "outcome", word, "reason", i.reason)
}

// noteHost logs a host-level decision once, until it changes; an empty msg forgets it.
func (c *Controller) noteHost(host, key string, level slog.Level, msg string, args ...any) {
	if msg == "" {
		delete(c.notified, host+"\x00"+key)
		return
	}
	k := host + "\x00" + key
	if c.notified[k] == msg {
		return
	}
	c.notified[k] = msg
	c.log.Log(context.Background(), level, msg, append([]any{"host", host}, args...)...)
}
