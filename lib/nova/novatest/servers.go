package novatest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Instance is one server of the fake Nova.
type Instance struct {
	ID      string // "" means a generated UUID
	Name    string
	Project string // "" means Project
	// Status is ACTIVE (default), SHUTOFF, ERROR, ...; VMState follows from it
	// unless set. TaskState is "" when idle.
	Status    string
	VMState   string
	TaskState string
	Host      string
	// Flavor: its id, extra specs and size (default 1 vCPU, 512 MiB).
	FlavorID         string
	FlavorExtraSpecs map[string]string
	VCPUs, RAMMB     int
	ImageID          string // "" for a server booted from a volume
	Metadata         map[string]string
	Tags             []string
	// Refuse409 is how many more evacuate requests Nova refuses with 409.
	Refuse409 int
	// FailRebuild makes every rebuild on a destination fail: the server ends in
	// ERROR there and its migration "failed".
	FailRebuild bool
	created     int
}

// Migration is one migration record of the fake Nova.
type Migration struct {
	ID            int
	UUID          string
	InstanceUUID  string
	SourceCompute string
	DestCompute   string
	Status        string // accepted, done, failed, error
	MigrationType string
	CreatedAt     time.Time
	UpdatedAt     time.Time
	// doneAt is when the rebuild ends; stopped: the instance is left SHUTOFF.
	doneAt  time.Time
	stopped bool
}

// Image is one image of the fake Glance.
type Image struct {
	ID         string
	Name       string
	Properties map[string]string
	Tags       []string
}

// cloud is the fake's model of servers, migrations and images.
type cloud struct {
	// Now is the fake's time (default time.Now): timestamps and rebuild ends.
	Now func() time.Time
	// RebuildTime is how long a destination takes to rebuild one instance; each
	// destination rebuilds one at a time, as real computes do. 0 means the rebuild
	// has ended at the next request.
	RebuildTime time.Duration
	// PageSize is Nova's osapi_max_limit: the longest page of a listing (default 1000).
	PageSize int
	// Stats: Evacuate requests accepted, by server.
	evacuations map[string]int
	instances   []*Instance
	migrations  []*Migration
	images      map[string]*Image
	serial      int
	busyUntil   map[string]time.Time // destination -> end of its last rebuild
}

func newCloud() cloud {
	return cloud{Now: time.Now, PageSize: 1000, evacuations: map[string]int{}, images: map[string]*Image{}, busyUntil: map[string]time.Time{}}
}

func (c *cloud) uuid(kind int) string {
	c.serial++
	return fmt.Sprintf("%08d-0000-4000-9000-%012d", kind, c.serial)
}

// AddServers adds servers to the fake and returns their ids.
func (s *Server) AddServers(list ...Instance) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for _, in := range list {
		in := in
		if in.ID == "" {
			in.ID = s.uuid(1)
		}
		if in.Name == "" {
			in.Name = "server-" + in.ID[len(in.ID)-4:]
		}
		if in.Project == "" {
			in.Project = Project
		}
		if in.Status == "" {
			in.Status = "ACTIVE"
		}
		if in.VMState == "" {
			in.VMState = vmStateOf(in.Status)
		}
		if in.FlavorID == "" {
			in.FlavorID = "1"
		}
		if in.VCPUs == 0 {
			in.VCPUs = 1
		}
		if in.RAMMB == 0 {
			in.RAMMB = 512
		}
		in.created = len(s.instances)
		s.instances = append(s.instances, &in)
		ids = append(ids, in.ID)
	}
	return ids
}

func vmStateOf(status string) string {
	switch status {
	case "SHUTOFF":
		return "stopped"
	case "ERROR":
		return "error"
	}
	return strings.ToLower(status)
}

// AddImage adds an image to the fake Glance.
func (s *Server) AddImage(img Image) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.images[img.ID] = &img
}

// Instance returns a copy of a server, after applying the rebuilds that have ended.
func (s *Server) Instance(id string) Instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	if in := s.instance(id); in != nil {
		return *in
	}
	s.t.Fatalf("novatest: no server %s", id)
	return Instance{}
}

// Instances returns copies of every server, after applying the rebuilds that have ended.
func (s *Server) Instances() []Instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	out := make([]Instance, 0, len(s.instances))
	for _, in := range s.instances {
		out = append(out, *in)
	}
	return out
}

// UpdateInstance changes a server.
func (s *Server) UpdateInstance(id string, f func(*Instance)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	in := s.instance(id)
	if in == nil {
		s.t.Fatalf("novatest: no server %s", id)
		return
	}
	f(in)
}

// Migrations returns copies of the migration records, after applying the rebuilds
// that have ended.
func (s *Server) Migrations() []Migration {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	out := make([]Migration, 0, len(s.migrations))
	for _, m := range s.migrations {
		out = append(out, *m)
	}
	return out
}

// Evacuations is how many evacuate requests Nova accepted for the server.
func (s *Server) Evacuations(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.evacuations[id]
}

// SetNow replaces the fake's clock.
func (s *Server) SetNow(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Now = now
}

// SetRebuildTime sets how long each destination takes per instance.
func (s *Server) SetRebuildTime(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.RebuildTime = d
}

func (c *cloud) instance(id string) *Instance {
	for _, in := range c.instances {
		if in.ID == id {
			return in
		}
	}
	return nil
}

// advance ends the rebuilds whose time has come, as the destination computes would.
func (c *cloud) advance() {
	now := c.Now()
	for _, m := range c.migrations {
		if m.Status != "accepted" || m.doneAt.After(now) {
			continue
		}
		in := c.instance(m.InstanceUUID)
		m.UpdatedAt = now
		if in == nil {
			m.Status = "error"
			continue
		}
		in.TaskState, in.Host = "", m.DestCompute
		switch {
		case in.FailRebuild:
			in.Status, in.VMState, m.Status = "ERROR", "error", "failed"
		case m.stopped || in.VMState == "stopped":
			in.Status, in.VMState, m.Status = "SHUTOFF", "stopped", "done"
		default:
			in.Status, in.VMState, m.Status = "ACTIVE", "active", "done"
		}
	}
}

// evacuationAPI serves the calls of evacuation; it reports whether it served req.
func (s *Server) evacuationAPI(w http.ResponseWriter, r *http.Request, req Request, mv string) bool {
	switch {
	case r.Method == http.MethodGet && req.Path == "/servers/detail":
		s.listServers(w, r.URL.Query(), mv)
	case r.Method == http.MethodPost && strings.HasPrefix(req.Path, "/servers/") && strings.HasSuffix(req.Path, "/action"):
		s.serverAction(w, strings.TrimSuffix(strings.TrimPrefix(req.Path, "/servers/"), "/action"), []byte(req.Body), mv)
	case r.Method == http.MethodGet && req.Path == "/os-migrations":
		s.listMigrations(w, r.URL.Query(), mv)
	case r.Method == http.MethodGet && req.Path == "/os-hypervisors/detail":
		s.listHypervisors(w, r.URL.Query(), mv)
	case r.Method == http.MethodGet && strings.HasPrefix(req.Path, "/flavors/") && strings.HasSuffix(req.Path, "/os-extra-specs"):
		id := strings.TrimSuffix(strings.TrimPrefix(req.Path, "/flavors/"), "/os-extra-specs")
		for _, in := range s.instances {
			if in.FlavorID == id {
				writeJSON(w, 200, map[string]any{"extra_specs": nonNil(in.FlavorExtraSpecs)})
				return true
			}
		}
		novaError(w, 404, "Flavor "+id+" could not be found.")
	default:
		return false
	}
	return true
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// page cuts list (in order) after marker, to limit entries; next is set when the
// page is full, as Nova does.
func page[T any](list []T, key func(T) string, q url.Values, max int) (out []T, next string, err error) {
	limit := max
	if l := q.Get("limit"); l != "" {
		n, e := strconv.Atoi(l)
		if e != nil || n < 0 {
			return nil, "", fmt.Errorf("Invalid input for field/attribute limit.")
		}
		limit = min(n, max)
	}
	start := 0
	if m := q.Get("marker"); m != "" {
		start = -1
		for i, x := range list {
			if key(x) == m {
				start = i + 1
			}
		}
		if start < 0 {
			return nil, "", fmt.Errorf("marker [%s] not found", m)
		}
	}
	end := min(len(list), start+limit)
	out = list[start:end]
	if len(out) == limit && len(out) > 0 {
		nq := url.Values{}
		for k, v := range q {
			if k != "marker" {
				nq[k] = v
			}
		}
		nq.Set("limit", strconv.Itoa(limit))
		nq.Set("marker", key(out[len(out)-1]))
		next = nq.Encode()
	}
	return out, next, nil
}

func (s *Server) links(path, next string) []any {
	if next == "" {
		return nil
	}
	// Nova builds links from its own host name: the client must not depend on it.
	return []any{map[string]any{"rel": "next", "href": "http://nova.internal.example:8774/v2.1" + path + "?" + next}}
}

func (s *Server) listServers(w http.ResponseWriter, q url.Values, mv string) {
	var match []*Instance
	for _, in := range s.instances {
		if h := q.Get("host"); h != "" && in.Host != h {
			continue
		}
		if q.Get("all_tenants") == "" && in.Project != Project {
			continue
		}
		match = append(match, in)
	}
	list, next, err := page(match, func(in *Instance) string { return in.ID }, q, s.PageSize)
	if err != nil {
		novaError(w, 400, err.Error())
		return
	}
	out := []any{}
	for _, in := range list {
		var image any = ""
		if in.ImageID != "" {
			image = map[string]any{"id": in.ImageID, "links": []any{}}
		}
		flavor := map[string]any{"id": in.FlavorID, "links": []any{}}
		if atLeast(mv, 2, 47) {
			flavor = map[string]any{"original_name": "flavor-" + in.FlavorID, "vcpus": in.VCPUs, "ram": in.RAMMB, "disk": 1,
				"ephemeral": 0, "swap": 0, "extra_specs": nonNil(in.FlavorExtraSpecs)}
		}
		var task any
		if in.TaskState != "" {
			task = in.TaskState
		}
		m := map[string]any{"id": in.ID, "name": in.Name, "status": in.Status, "tenant_id": in.Project,
			"OS-EXT-STS:task_state": task, "OS-EXT-STS:vm_state": in.VMState, "OS-EXT-SRV-ATTR:host": in.Host,
			"flavor": flavor, "image": image, "metadata": nonNil(in.Metadata), "updated": "2026-01-01T00:00:00Z"}
		if atLeast(mv, 2, 26) {
			tags := in.Tags
			if tags == nil {
				tags = []string{}
			}
			m["tags"] = tags
		}
		out = append(out, m)
	}
	doc := map[string]any{"servers": out}
	if l := s.links("/servers/detail", next); l != nil {
		doc["servers_links"] = l
	}
	writeJSON(w, 200, doc)
}

// serverAction applies Nova Zed's evacuate rules (nova/api/openstack/compute/evacuate.py
// and compute/api.py).
func (s *Server) serverAction(w http.ResponseWriter, id string, body []byte, mv string) {
	var b map[string]map[string]any
	if err := json.Unmarshal(body, &b); err != nil || len(b) != 1 {
		novaError(w, 400, "malformed action")
		return
	}
	ev, ok := b["evacuate"]
	if !ok {
		novaError(w, 400, "only evacuate is modelled")
		return
	}
	allowed := map[string]bool{"host": true, "adminPass": true}
	if !atLeast(mv, 2, 14) {
		allowed["onSharedStorage"] = true
		if _, ok := ev["onSharedStorage"].(bool); !ok {
			novaError(w, 400, "Invalid input for field/attribute evacuate. Value: "+string(body)+". 'onSharedStorage' is a required property")
			return
		}
	}
	if atLeast(mv, 2, 29) && !atLeast(mv, 2, 68) {
		allowed["force"] = true
	}
	for k := range ev {
		if !allowed[k] {
			novaError(w, 400, fmt.Sprintf("Invalid input for field/attribute evacuate. Additional properties are not allowed ('%s' was unexpected)", k))
			return
		}
	}
	in := s.instance(id)
	if in == nil {
		novaError(w, 404, "Instance "+id+" could not be found.")
		return
	}
	src := s.byHost(in.Host, "nova-compute")
	if src != nil && src.Alive && !src.ForcedDown {
		novaError(w, 400, fmt.Sprintf("Compute service of %s is still in use.", in.Host))
		return
	}
	dest, _ := ev["host"].(string)
	if dest != "" {
		d := s.byHost(dest, "nova-compute")
		if d == nil {
			novaError(w, 404, fmt.Sprintf("Compute host %s could not be found.", dest))
			return
		}
		if dest == in.Host {
			novaError(w, 400, "The target host can't be the same one.")
			return
		}
	}
	if in.Refuse409 > 0 {
		in.Refuse409--
		novaError(w, 409, fmt.Sprintf("Cannot 'evacuate' instance %s while it is in a state that forbids it", id))
		return
	}
	if in.TaskState != "" || (in.VMState != "active" && in.VMState != "stopped" && in.VMState != "error") {
		novaError(w, 409, fmt.Sprintf("Cannot 'evacuate' instance %s while it is in task_state %s", id, in.TaskState))
		return
	}
	now := s.Now()
	m := &Migration{ID: len(s.migrations) + 1, UUID: s.uuid(2), InstanceUUID: id, SourceCompute: in.Host, Status: "accepted",
		MigrationType: "evacuation", CreatedAt: now, UpdatedAt: now, stopped: atLeast(mv, 2, 95)}
	if dest == "" {
		dest = s.schedule(in)
	}
	s.migrations = append(s.migrations, m)
	s.evacuations[id]++
	if dest == "" {
		// NoValidHost: the conductor gives up; the server stays where it is.
		m.Status = "error"
	} else {
		m.DestCompute = dest
		start := now
		if busy := s.busyUntil[dest]; busy.After(start) {
			start = busy
		}
		m.doneAt = start.Add(s.RebuildTime)
		s.busyUntil[dest] = m.doneAt
		in.TaskState, in.Status = "rebuilding", "REBUILD"
	}
	if atLeast(mv, 2, 14) {
		writeJSON(w, 200, map[string]any{})
	} else {
		writeJSON(w, 200, map[string]any{"adminPass": "generated-pass"})
	}
}

// schedule picks the up, enabled host with the fewest servers, or "".
func (s *Server) schedule(in *Instance) string {
	best, n := "", 0
	for _, sv := range s.services {
		if sv.Binary != "nova-compute" || sv.Host == in.Host || sv.Disabled || sv.ForcedDown || !sv.Alive {
			continue
		}
		c := 0
		for _, o := range s.instances {
			if o.Host == sv.Host {
				c++
			}
		}
		if best == "" || c < n {
			best, n = sv.Host, c
		}
	}
	return best
}

func novaTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format("2006-01-02T15:04:05.000000")
}

func (s *Server) listMigrations(w http.ResponseWriter, q url.Values, mv string) {
	if !atLeast(mv, 2, 59) && (q.Has("limit") || q.Has("marker") || q.Has("changes-since")) {
		novaError(w, 400, "Additional properties are not allowed")
		return
	}
	var since time.Time
	if v := q.Get("changes-since"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			novaError(w, 400, "Invalid input for query parameters changes-since.")
			return
		}
		since = t
	}
	var match []*Migration
	for _, m := range s.migrations {
		if (q.Get("source_compute") == "" || q.Get("source_compute") == m.SourceCompute) &&
			(q.Get("migration_type") == "" || q.Get("migration_type") == m.MigrationType) &&
			(since.IsZero() || !m.UpdatedAt.Before(since)) {
			match = append(match, m)
		}
	}
	// Nova lists the newest first.
	sort.SliceStable(match, func(i, j int) bool { return match[i].ID > match[j].ID })
	list, next := match, ""
	if atLeast(mv, 2, 59) {
		var err error
		list, next, err = page(match, func(m *Migration) string { return m.UUID }, q, s.PageSize)
		if err != nil {
			novaError(w, 400, err.Error())
			return
		}
	}
	out := []any{}
	for _, m := range list {
		var dest any
		if m.DestCompute != "" {
			dest = m.DestCompute
		}
		e := map[string]any{"id": m.ID, "instance_uuid": m.InstanceUUID, "source_compute": m.SourceCompute, "dest_compute": dest,
			"status": m.Status, "created_at": novaTime(m.CreatedAt), "updated_at": novaTime(m.UpdatedAt)}
		if atLeast(mv, 2, 23) {
			e["migration_type"] = m.MigrationType
		}
		if atLeast(mv, 2, 59) {
			e["uuid"] = m.UUID
		}
		out = append(out, e)
	}
	doc := map[string]any{"migrations": out}
	if l := s.links("/os-migrations", next); l != nil {
		doc["migrations_links"] = l
	}
	writeJSON(w, 200, doc)
}

// NodeUUID is the compute node (and resource provider) UUID of a host's service.
func NodeUUID(serviceID string) string { return "c0" + serviceID[2:] }

// usage is what the servers on host use.
func (s *Server) usage(host string) (vcpus, ram int) {
	for _, in := range s.instances {
		if in.Host == host {
			vcpus += in.VCPUs
			ram += in.RAMMB
		}
	}
	return vcpus, ram
}

func capacity(sv *Service) (vcpus, ram int) {
	vcpus, ram = sv.VCPUs, sv.RAMMB
	if vcpus == 0 {
		vcpus = 64
	}
	if ram == 0 {
		ram = 131072
	}
	return vcpus, ram
}

func (s *Server) listHypervisors(w http.ResponseWriter, q url.Values, mv string) {
	var computes []*Service
	for _, sv := range s.services {
		if sv.Binary == "nova-compute" {
			computes = append(computes, sv)
		}
	}
	key := func(sv *Service) string {
		if atLeast(mv, 2, 53) {
			return NodeUUID(sv.ID)
		}
		return sv.ID[len(sv.ID)-4:]
	}
	list, next, err := page(computes, key, q, s.PageSize)
	if err != nil {
		novaError(w, 400, err.Error())
		return
	}
	out := []any{}
	for _, sv := range list {
		state := "down"
		if sv.Alive && !sv.ForcedDown {
			state = "up"
		}
		status := "enabled"
		if sv.Disabled {
			status = "disabled"
		}
		h := map[string]any{"hypervisor_hostname": sv.Host, "state": state, "status": status, "hypervisor_type": "fake",
			"service": map[string]any{"host": sv.Host, "id": sv.ID}}
		if atLeast(mv, 2, 53) {
			h["id"] = NodeUUID(sv.ID)
		} else {
			n, _ := strconv.Atoi(sv.ID[len(sv.ID)-4:])
			h["id"] = n
		}
		if !atLeast(mv, 2, 88) {
			vc, ram := capacity(sv)
			uv, ur := s.usage(sv.Host)
			h["vcpus"], h["vcpus_used"], h["memory_mb"], h["memory_mb_used"], h["free_ram_mb"] = vc, uv, ram, ur, ram-ur
		}
		out = append(out, h)
	}
	doc := map[string]any{"hypervisors": out}
	if l := s.links("/os-hypervisors/detail", next); l != nil && atLeast(mv, 2, 33) {
		doc["hypervisors_links"] = l
	}
	writeJSON(w, 200, doc)
}

// placement serves GET /allocation_candidates?resources=VCPU:a,MEMORY_MB:b (1.10+).
func (s *Server) placement(w http.ResponseWriter, r *http.Request, req Request) {
	v, ok := strings.CutPrefix(req.OpenStackAPI, "placement ")
	if r.Method != http.MethodGet || req.Path != "/allocation_candidates" || !ok || !atLeast(v, 1, 10) {
		writeJSON(w, 404, map[string]any{"errors": []any{map[string]any{"status": 404, "title": "Not Found"}}})
		return
	}
	want := map[string]int{}
	for _, part := range strings.Split(r.URL.Query().Get("resources"), ",") {
		k, n, _ := strings.Cut(part, ":")
		want[k], _ = strconv.Atoi(n)
	}
	summaries := map[string]any{}
	for _, sv := range s.services {
		if sv.Binary != "nova-compute" {
			continue
		}
		vc, ram := capacity(sv)
		uv, ur := s.usage(sv.Host)
		if vc-uv < want["VCPU"] || ram-ur < want["MEMORY_MB"] {
			continue
		}
		summaries[NodeUUID(sv.ID)] = map[string]any{"resources": map[string]any{
			"VCPU": map[string]any{"capacity": vc, "used": uv}, "MEMORY_MB": map[string]any{"capacity": ram, "used": ur}}}
	}
	writeJSON(w, 200, map[string]any{"allocation_requests": []any{}, "provider_summaries": summaries})
}

// glance serves GET /v2/images/{id}.
func (s *Server) glance(w http.ResponseWriter, r *http.Request, req Request) {
	id, ok := strings.CutPrefix(req.Path, "/v2/images/")
	img := s.images[id]
	if r.Method != http.MethodGet || !ok || img == nil {
		http.Error(w, "404 Not Found", http.StatusNotFound)
		return
	}
	doc := map[string]any{"id": img.ID, "name": img.Name, "status": "active", "visibility": "public", "min_ram": 0,
		"protected": false, "tags": append([]string{}, img.Tags...)}
	for k, v := range img.Properties {
		doc[k] = v
	}
	writeJSON(w, 200, doc)
}
