// Package novatest is a fake Keystone and Nova on an httptest server, for the unit tests
// of lib/nova and of the agents that use it. It keeps compute service records, applies
// Nova's rules to their updates (microversion 2.53 and the older per-action calls),
// records every request exactly (method, path, query, microversion header, body) so
// that tests can check what was sent, and lets tests inject failures.
//
// It also models what evacuation needs (servers.go): servers, their evacuation with
// Nova's rules per microversion, migration records, hypervisors, Placement's
// allocation candidates and Glance's images.
package novatest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Credentials the fake Keystone accepts.
const (
	Username      = "admin"
	Password      = "s3cret-pw"
	Project       = "admin"
	AppCredID     = "0123456789abcdef"
	AppCredSecret = "app-cred-s3cret"
	Token         = "gAAAA-fake-token" // the default token
)

// Service is one compute service record of the fake Nova.
type Service struct {
	ID             string
	Host           string
	Binary         string // "" means nova-compute
	Disabled       bool
	DisabledReason string // "" means none (null)
	ForcedDown     bool
	// Alive: the service's heartbeat is recent (its state is "up" unless forced down).
	Alive bool
	// StaleHeartbeat: alive as Nova sees it, but no new heartbeat comes (its record's
	// updated_at stays): the last one of a process that has just stopped.
	StaleHeartbeat bool
	// VCPUs and RAMMB are the compute node's capacity; 0 means 64 and 131072.
	VCPUs, RAMMB int
	// EvacuationsDone: evacuation migrations from the host are "done" but not
	// cleaned up by a restarted nova-compute; Nova then refuses forced_down=false.
	EvacuationsDone bool
}

// Request is one request as the fake received it.
type Request struct {
	Method       string
	Path         string // without the service prefix (/compute/v2.1, /identity)
	Query        string
	Microversion string // X-OpenStack-Nova-API-Version
	OpenStackAPI string // OpenStack-API-Version
	Token        string // X-Auth-Token
	Body         string
	// Service is "identity", "compute", "placement" or "image".
	Service string
}

func (r Request) String() string {
	s := r.Method + " " + r.Path
	if r.Query != "" {
		s += "?" + r.Query
	}
	if r.Body != "" {
		s += " " + r.Body
	}
	return s
}

// Fault is an injected failure: the next Count requests whose "METHOD /path" starts
// with Match get Status (or a dropped connection when Status is 0).
type Fault struct {
	Match  string
	Status int
	Count  int
	Body   string
}

// Server is the fake. Its fields may be changed between requests while holding Lock.
type Server struct {
	*httptest.Server
	t  testing.TB
	mu sync.Mutex
	// MaxMicroversion is what the version document offers (default 2.93, Zed's).
	MaxMicroversion string
	// NoInternalEndpoint leaves the internal compute endpoint out of the catalog.
	NoInternalEndpoint bool
	// NoPlacement leaves Placement out of the catalog.
	NoPlacement bool
	// Token is the token Keystone issues and Nova accepts (default Token); changing
	// it revokes the old one.
	Token    string
	services []*Service
	requests []Request
	faults   []*Fault
	cloud    // servers.go
}

// New starts a fake with the given services; it stops when the test ends.
func New(t testing.TB, services ...Service) *Server {
	s := &Server{t: t, MaxMicroversion: "2.93", Token: Token, cloud: newCloud()}
	for i := range services {
		sv := services[i]
		if sv.Binary == "" {
			sv.Binary = "nova-compute"
		}
		if sv.ID == "" {
			sv.ID = fmt.Sprintf("00000000-0000-4000-8000-%012d", i+1)
		}
		s.services = append(s.services, &sv)
	}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

// AuthURL is the fake Keystone's versioned URL.
func (s *Server) AuthURL() string { return s.URL + "/identity/v3" }

// ComputeURL is the fake Nova's endpoint, as the catalog gives it.
func (s *Server) ComputeURL() string { return s.URL + "/compute/v2.1" }

// Lock and Unlock guard changes to the fake's state during a test.
func (s *Server) Lock()   { s.mu.Lock() }
func (s *Server) Unlock() { s.mu.Unlock() }

// Service returns the record of host's nova-compute service (a copy).
func (s *Server) Service(host string) Service {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sv := range s.services {
		if sv.Host == host && sv.Binary == "nova-compute" {
			return *sv
		}
	}
	s.t.Fatalf("novatest: no service on %s", host)
	return Service{}
}

// Update changes host's service record.
func (s *Server) Update(host string, f func(*Service)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sv := range s.services {
		if sv.Host == host {
			f(sv)
			return
		}
	}
	s.t.Fatalf("novatest: no service on %s", host)
}

// Requests returns the requests received so far and forgets them.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.requests
	s.requests = nil
	return r
}

// NovaRequests is Requests without Keystone's and the version document's, as
// "METHOD /path?query body" strings.
func (s *Server) NovaRequests() []string {
	var out []string
	for _, r := range s.Requests() {
		if r.Service == "compute" && (strings.HasPrefix(r.Path, "/os-") || strings.HasPrefix(r.Path, "/servers") || strings.HasPrefix(r.Path, "/flavors")) {
			out = append(out, r.String())
		}
	}
	return out
}

// Fail injects a fault.
func (s *Server) Fail(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &f)
}

func (s *Server) fault(key string) *Fault {
	for _, f := range s.faults {
		if f.Count > 0 && strings.HasPrefix(key, f.Match) {
			f.Count--
			return f
		}
	}
	return nil
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	path := r.URL.Path
	service := ""
	for _, p := range []string{"/compute/v2.1", "/identity", "/placement", "/image"} {
		if rest, ok := strings.CutPrefix(path, p); ok {
			service, path = p, rest
			break
		}
	}
	if path == "" {
		path = "/"
	}
	req := Request{Method: r.Method, Path: path, Query: r.URL.RawQuery, Body: string(body),
		Microversion: r.Header.Get("X-OpenStack-Nova-API-Version"), OpenStackAPI: r.Header.Get("OpenStack-API-Version"),
		Token: r.Header.Get("X-Auth-Token"), Service: strings.TrimPrefix(service, "/")}
	if req.Service == "compute/v2.1" {
		req.Service = "compute"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, req)
	s.advance()
	if f := s.fault(r.Method + " " + path); f != nil {
		if f.Status == 0 {
			hj, ok := w.(http.Hijacker)
			if ok {
				if c, _, err := hj.Hijack(); err == nil {
					_ = c.Close()
					return
				}
			}
		}
		http.Error(w, f.Body, f.Status)
		return
	}
	switch service {
	case "/identity":
		s.keystone(w, r, path, body)
	case "/compute/v2.1":
		if path != "/" && req.Token != s.Token {
			novaError(w, http.StatusUnauthorized, "The request you have made requires authentication.")
			return
		}
		s.nova(w, r, req)
	case "/placement", "/image":
		if req.Token != s.Token {
			writeJSON(w, http.StatusUnauthorized, map[string]any{"error": map[string]any{"code": 401, "message": "unauthorized"}})
			return
		}
		if service == "/placement" {
			s.placement(w, r, req)
		} else {
			s.glance(w, r, req)
		}
	default:
		http.NotFound(w, r)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func novaError(w http.ResponseWriter, status int, msg string) {
	key := map[int]string{400: "badRequest", 401: "unauthorized", 404: "itemNotFound", 406: "notAcceptable", 409: "conflictingRequest"}[status]
	if key == "" {
		key = "computeFault"
	}
	writeJSON(w, status, map[string]any{key: map[string]any{"code": status, "message": msg}})
}

func (s *Server) keystone(w http.ResponseWriter, r *http.Request, path string, body []byte) {
	switch {
	case r.Method == http.MethodGet && (path == "/" || path == ""):
		writeJSON(w, 300, map[string]any{"versions": map[string]any{"values": []any{map[string]any{
			"id": "v3.14", "status": "stable",
			"links": []any{map[string]any{"rel": "self", "href": s.URL + "/identity/v3/"}}}}}})
	case r.Method == http.MethodPost && path == "/v3/auth/tokens":
		var req struct {
			Auth struct {
				Identity struct {
					Methods  []string `json:"methods"`
					Password struct {
						User struct {
							Name     string `json:"name"`
							Password string `json:"password"`
							Domain   struct {
								Name string `json:"name"`
							} `json:"domain"`
						} `json:"user"`
					} `json:"password"`
					AppCred struct {
						ID     string `json:"id"`
						Secret string `json:"secret"`
					} `json:"application_credential"`
				} `json:"identity"`
			} `json:"auth"`
		}
		if err := json.Unmarshal(body, &req); err != nil {
			writeJSON(w, 400, map[string]any{"error": map[string]any{"code": 400, "message": "malformed"}})
			return
		}
		id := req.Auth.Identity
		ok := (id.Password.User.Name == Username && id.Password.User.Password == Password && id.Password.User.Domain.Name == "Default") ||
			(id.AppCred.ID == AppCredID && id.AppCred.Secret == AppCredSecret)
		if !ok {
			writeJSON(w, 401, map[string]any{"error": map[string]any{"code": 401, "title": "Unauthorized",
				"message": "The request you have made requires authentication."}})
			return
		}
		eps := []any{map[string]any{"interface": "public", "region": "RegionOne", "region_id": "RegionOne", "url": s.ComputeURL(), "id": "e1"}}
		if !s.NoInternalEndpoint {
			eps = append(eps, map[string]any{"interface": "internal", "region": "RegionOne", "region_id": "RegionOne", "url": s.ComputeURL(), "id": "e2"})
		}
		w.Header().Set("X-Subject-Token", s.Token)
		catalog := []any{map[string]any{"type": "compute", "name": "nova", "id": "c1", "endpoints": eps}}
		for _, svc := range []struct{ typ, name, url string }{{"placement", "placement", s.URL + "/placement"}, {"image", "glance", s.URL + "/image"}} {
			if s.NoPlacement && svc.typ == "placement" {
				continue
			}
			catalog = append(catalog, map[string]any{"type": svc.typ, "name": svc.name, "id": svc.name, "endpoints": []any{
				map[string]any{"interface": "public", "region": "RegionOne", "region_id": "RegionOne", "url": svc.url, "id": svc.name + "1"},
				map[string]any{"interface": "internal", "region": "RegionOne", "region_id": "RegionOne", "url": svc.url, "id": svc.name + "2"}}})
		}
		writeJSON(w, 201, map[string]any{"token": map[string]any{
			"expires_at": "2099-01-01T00:00:00.000000Z", "methods": id.Methods, "catalog": catalog,
		}})
	default:
		http.NotFound(w, r)
	}
}

func atLeast(mv string, major, minor int) bool {
	a, b, ok := strings.Cut(mv, ".")
	x, _ := strconv.Atoi(a)
	y, _ := strconv.Atoi(b)
	return ok && (x > major || (x == major && y >= minor))
}

func (sv *Service) view(mv string) map[string]any {
	state := "down"
	if sv.Alive && !sv.ForcedDown {
		state = "up"
	}
	status := "enabled"
	if sv.Disabled {
		status = "disabled"
	}
	// A live service's heartbeat has just updated its record; a dead one's is old.
	updated := "2026-01-01T00:00:00.000000"
	if sv.Alive && !sv.StaleHeartbeat {
		updated = time.Now().UTC().Format("2006-01-02T15:04:05.000000")
	}
	var reason any
	if sv.DisabledReason != "" {
		reason = sv.DisabledReason
	}
	m := map[string]any{"binary": sv.Binary, "host": sv.Host, "zone": "nova", "status": status, "state": state,
		"updated_at": updated, "disabled_reason": reason}
	if atLeast(mv, 2, 53) {
		m["id"] = sv.ID
	} else {
		n, _ := strconv.Atoi(sv.ID[len(sv.ID)-4:])
		m["id"] = n
	}
	if atLeast(mv, 2, 11) {
		m["forced_down"] = sv.ForcedDown
	}
	return m
}

func (s *Server) nova(w http.ResponseWriter, r *http.Request, req Request) {
	mv := req.Microversion
	if mv == "" {
		mv = "2.1"
	}
	maj, min := mustSplit(mv)
	if !atLeast(s.MaxMicroversion, maj, min) || !atLeast(mv, 2, 1) {
		novaError(w, http.StatusNotAcceptable, fmt.Sprintf("Version %s is not supported by the API.", mv))
		return
	}
	switch {
	case r.Method == http.MethodGet && req.Path == "/":
		writeJSON(w, 200, map[string]any{"version": map[string]any{"id": "v2.1", "status": "CURRENT",
			"version": s.MaxMicroversion, "min_version": "2.1"}})
	case r.Method == http.MethodGet && req.Path == "/os-services":
		q := r.URL.Query()
		out := []any{}
		for _, sv := range s.services {
			if (q.Get("host") == "" || q.Get("host") == sv.Host) && (q.Get("binary") == "" || q.Get("binary") == sv.Binary) {
				out = append(out, sv.view(mv))
			}
		}
		writeJSON(w, 200, map[string]any{"services": out})
	case r.Method == http.MethodPut && strings.HasPrefix(req.Path, "/os-services/"):
		s.updateService(w, mv, strings.TrimPrefix(req.Path, "/os-services/"), []byte(req.Body))
	case s.evacuationAPI(w, r, req, mv):
	default:
		novaError(w, http.StatusNotFound, "not found")
	}
}

func mustSplit(mv string) (int, int) {
	a, b, _ := strings.Cut(mv, ".")
	x, _ := strconv.Atoi(a)
	y, _ := strconv.Atoi(b)
	return x, y
}

func (s *Server) byHost(host, binary string) *Service {
	for _, sv := range s.services {
		if sv.Host == host && sv.Binary == binary {
			return sv
		}
	}
	return nil
}

func (s *Server) byID(id string) *Service {
	for _, sv := range s.services {
		if sv.ID == id {
			return sv
		}
	}
	return nil
}

const evacuationsDoneMsg = "Unable to force up host %s as `done` evacuation migration records remain associated with the host. " +
	"Ensure the compute service has been restarted, allowing these records to move to `completed` before retrying this request."

// updateService applies Nova's rules (nova/api/openstack/compute/services.py, Zed).
func (s *Server) updateService(w http.ResponseWriter, mv, id string, body []byte) {
	var b map[string]any
	if err := json.Unmarshal(body, &b); err != nil {
		novaError(w, 400, "malformed body")
		return
	}
	if atLeast(mv, 2, 53) {
		for k := range b {
			if k != "status" && k != "disabled_reason" && k != "forced_down" {
				novaError(w, 400, fmt.Sprintf("Additional properties are not allowed ('%s' was unexpected)", k))
				return
			}
		}
		sv := s.byID(id)
		if sv == nil {
			novaError(w, 404, "Service "+id+" could not be found.")
			return
		}
		if sv.Binary != "nova-compute" {
			novaError(w, 400, "Only nova-compute services can be updated.")
			return
		}
		reason, hasReason := b["disabled_reason"].(string)
		if _, present := b["disabled_reason"]; present && (!hasReason || reason == "" || len([]rune(reason)) > 255) {
			novaError(w, 400, "Invalid input for field/attribute disabled_reason.")
			return
		}
		changed := false
		if st, ok := b["status"]; ok {
			switch st {
			case "enabled":
				if hasReason {
					novaError(w, 400, "Specifying 'disabled_reason' with status 'enabled' is invalid.")
					return
				}
				sv.Disabled, sv.DisabledReason = false, ""
			case "disabled":
				sv.Disabled, sv.DisabledReason = true, reason
			default:
				novaError(w, 400, "Invalid input for field/attribute status.")
				return
			}
			changed = true
		}
		if fd, ok := b["forced_down"]; ok {
			v, isBool := fd.(bool)
			if !isBool {
				novaError(w, 400, "Invalid input for field/attribute forced_down.")
				return
			}
			if !v && sv.EvacuationsDone {
				novaError(w, 400, fmt.Sprintf(evacuationsDoneMsg, sv.Host))
				return
			}
			sv.ForcedDown = v
			changed = true
		}
		if !changed {
			novaError(w, 400, "No updates were requested. Fields 'status' or 'forced_down' should be specified.")
			return
		}
		writeJSON(w, 200, map[string]any{"service": sv.view(mv)})
		return
	}
	host, _ := b["host"].(string)
	binary, _ := b["binary"].(string)
	sv := s.byHost(host, binary)
	if sv == nil {
		novaError(w, 404, fmt.Sprintf("Host '%s' is not mapped to any cell", host))
		return
	}
	switch id {
	case "enable":
		sv.Disabled, sv.DisabledReason = false, ""
	case "disable":
		sv.Disabled, sv.DisabledReason = true, ""
	case "disable-log-reason":
		reason, _ := b["disabled_reason"].(string)
		if reason == "" {
			novaError(w, 400, "Missing disabled reason field")
			return
		}
		sv.Disabled, sv.DisabledReason = true, reason
	case "force-down":
		if !atLeast(mv, 2, 11) {
			novaError(w, 404, "Unknown action")
			return
		}
		v, ok := b["forced_down"].(bool)
		if !ok {
			novaError(w, 400, "Missing forced_down field")
			return
		}
		if !v && sv.EvacuationsDone {
			novaError(w, 400, fmt.Sprintf(evacuationsDoneMsg, sv.Host))
			return
		}
		sv.ForcedDown = v
	default:
		novaError(w, 404, "Unknown action")
		return
	}
	writeJSON(w, 200, map[string]any{"service": map[string]any{"host": host, "binary": binary}})
}

// Hosts lists the fake's compute hosts, sorted.
func (s *Server) Hosts() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, sv := range s.services {
		out = append(out, sv.Host)
	}
	sort.Strings(out)
	return out
}
