package nova

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Client is a minimal admin client of the sandbox's Keystone v3 and Nova, for tests'
// own setup and checks (the agents under test use their own client). Standard library
// only, so the test harness does not depend on the project's Nova library.
type Client struct {
	creds map[string]string
	http  *http.Client

	mu      sync.Mutex
	token   string
	compute string // the compute endpoint from the catalog, e.g. http://127.0.0.1:16001/v2.1
}

// NewClient returns a client for the OS_* credentials in creds (see ReadOpenrc).
func NewClient(creds map[string]string) *Client {
	return &Client{creds: creds, http: &http.Client{Timeout: 60 * time.Second}}
}

// Authenticate gets a project-scoped token and the compute endpoint.
func (c *Client) Authenticate(ctx context.Context) error {
	domain := func(k string) string {
		if v := c.creds[k]; v != "" {
			return v
		}
		return "Default"
	}
	body := map[string]any{"auth": map[string]any{
		"identity": map[string]any{
			"methods": []string{"password"},
			"password": map[string]any{"user": map[string]any{
				"name":     c.creds["OS_USERNAME"],
				"password": c.creds["OS_PASSWORD"],
				"domain":   map[string]string{"name": domain("OS_USER_DOMAIN_NAME")},
			}},
		},
		"scope": map[string]any{"project": map[string]any{
			"name":   c.creds["OS_PROJECT_NAME"],
			"domain": map[string]string{"name": domain("OS_PROJECT_DOMAIN_NAME")},
		}},
	}}
	b, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, "POST",
		strings.TrimRight(c.creds["OS_AUTH_URL"], "/")+"/auth/tokens", bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("keystone: %w", err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("keystone: POST /auth/tokens: %s", resp.Status)
	}
	var tok struct {
		Token struct {
			Catalog []struct {
				Type      string `json:"type"`
				Endpoints []struct {
					Interface string `json:"interface"`
					URL       string `json:"url"`
				} `json:"endpoints"`
			} `json:"catalog"`
		} `json:"token"`
	}
	if err := json.Unmarshal(rb, &tok); err != nil {
		return fmt.Errorf("keystone: token: %w", err)
	}
	compute := ""
	for _, svc := range tok.Token.Catalog {
		if svc.Type != "compute" {
			continue
		}
		for _, ep := range svc.Endpoints {
			if ep.Interface == "public" {
				compute = ep.URL
			}
		}
	}
	if compute == "" {
		return fmt.Errorf("keystone: no public compute endpoint in the catalog")
	}
	c.mu.Lock()
	c.token = resp.Header.Get("X-Subject-Token")
	c.compute = strings.TrimRight(compute, "/")
	c.mu.Unlock()
	return nil
}

// Error is a Nova answer outside 2xx.
type Error struct {
	Method, Path string
	Status       int
	Body         string
}

func (e *Error) Error() string {
	return fmt.Sprintf("nova: %s %s: %d %s", e.Method, e.Path, e.Status, e.Body)
}

// Compute calls the compute API: path relative to the endpoint (e.g. "/os-services"),
// microversion "" for none, body marshalled to JSON unless nil, answer unmarshalled into
// out unless nil. A 401 re-authenticates once.
func (c *Client) Compute(ctx context.Context, method, path, microversion string, body, out any) error {
	for attempt := 0; ; attempt++ {
		c.mu.Lock()
		token, base := c.token, c.compute
		c.mu.Unlock()
		var rd io.Reader
		if body != nil {
			b, err := json.Marshal(body)
			if err != nil {
				return err
			}
			rd = bytes.NewReader(b)
		}
		req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
		if err != nil {
			return err
		}
		req.Header.Set("X-Auth-Token", token)
		req.Header.Set("Accept", "application/json")
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if microversion != "" {
			req.Header.Set("OpenStack-API-Version", "compute "+microversion)
		}
		resp, err := c.http.Do(req)
		if err != nil {
			return fmt.Errorf("nova: %s %s: %w", method, path, err)
		}
		rb, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("nova: %s %s: %w", method, path, err)
		}
		if resp.StatusCode == http.StatusUnauthorized && attempt == 0 {
			if err := c.Authenticate(ctx); err != nil {
				return err
			}
			continue
		}
		if resp.StatusCode/100 != 2 {
			return &Error{Method: method, Path: path, Status: resp.StatusCode, Body: strings.TrimSpace(string(rb))}
		}
		if out != nil && len(rb) > 0 {
			if err := json.Unmarshal(rb, out); err != nil {
				return fmt.Errorf("nova: %s %s: %w", method, path, err)
			}
		}
		return nil
	}
}

// Service is a row of GET /os-services (microversion 2.53: UUIDs).
type Service struct {
	ID             string `json:"id"`
	Binary         string `json:"binary"`
	Host           string `json:"host"`
	Status         string `json:"status"`
	State          string `json:"state"`
	ForcedDown     bool   `json:"forced_down"`
	DisabledReason string `json:"disabled_reason"`
	UpdatedAt      string `json:"updated_at"` // changes with every heartbeat
}

// ComputeService returns the nova-compute service of host.
func (c *Client) ComputeService(ctx context.Context, host string) (Service, error) {
	var out struct {
		Services []Service `json:"services"`
	}
	if err := c.Compute(ctx, "GET", "/os-services?binary=nova-compute&host="+url.QueryEscape(host), "2.53", nil, &out); err != nil {
		return Service{}, err
	}
	if len(out.Services) != 1 {
		return Service{}, fmt.Errorf("nova: %d nova-compute services on %s", len(out.Services), host)
	}
	return out.Services[0], nil
}

// UpdateService sends PUT /os-services/{id} at 2.53 with the given fields
// (forced_down, status, disabled_reason).
func (c *Client) UpdateService(ctx context.Context, id string, fields map[string]any) (Service, error) {
	var out struct {
		Service Service `json:"service"`
	}
	err := c.Compute(ctx, "PUT", "/os-services/"+id, "2.53", fields, &out)
	return out.Service, err
}

// ServerDetail is the part of a server the tests look at.
type ServerDetail struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Status    string `json:"status"`
	Host      string `json:"OS-EXT-SRV-ATTR:host"`
	TaskState string `json:"OS-EXT-STS:task_state"`
}

// Server returns one server (admin view, with its host).
func (c *Client) Server(ctx context.Context, id string) (ServerDetail, error) {
	var out struct {
		Server ServerDetail `json:"server"`
	}
	err := c.Compute(ctx, "GET", "/servers/"+id, "2.74", nil, &out)
	return out.Server, err
}

// Migration is a row of GET /os-migrations (2.59: with UUIDs).
type Migration struct {
	UUID          string `json:"uuid"`
	InstanceUUID  string `json:"instance_uuid"`
	Status        string `json:"status"`
	SourceCompute string `json:"source_compute"`
	DestCompute   string `json:"dest_compute"`
	MigrationType string `json:"migration_type"`
	CreatedAt     string `json:"created_at"`
	UpdatedAt     string `json:"updated_at"`
}

// Evacuations lists the evacuation migrations off host, one call for all instances.
func (c *Client) Evacuations(ctx context.Context, host string) ([]Migration, error) {
	var out struct {
		Migrations []Migration `json:"migrations"`
	}
	err := c.Compute(ctx, "GET", "/os-migrations?migration_type=evacuation&source_compute="+url.QueryEscape(host), "2.59", nil, &out)
	return out.Migrations, err
}

// LatestByInstance keeps each instance's newest migration.
func LatestByInstance(migs []Migration) map[string]Migration {
	latest := map[string]Migration{}
	for _, m := range migs {
		if prev, ok := latest[m.InstanceUUID]; !ok || m.CreatedAt > prev.CreatedAt {
			latest[m.InstanceUUID] = m
		}
	}
	return latest
}

// Evacuate asks Nova to evacuate a server, letting the scheduler choose, at microversion
// 2.29 (no onSharedStorage: Nova detects shared storage itself since 2.14, and the
// instance stays ACTIVE until 2.95).
func (c *Client) Evacuate(ctx context.Context, id string) error {
	return c.Compute(ctx, "POST", "/servers/"+id+"/action", "2.29",
		map[string]any{"evacuate": map[string]any{}}, nil)
}
