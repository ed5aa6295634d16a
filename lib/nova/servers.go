package nova

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"time"

	"github.com/gophercloud/gophercloud/v2"
)

// Microversions of the server listing.
var (
	// MicroversionEmbeddedFlavor (2.47) embeds each server's flavor with its extra
	// specs, so that the evacuable rule needs no call per flavor.
	MicroversionEmbeddedFlavor = Microversion{2, 47}
	// MicroversionDownCells (2.69) lists the servers of an unreachable cell with
	// status UNKNOWN instead of leaving them out: a host whose instances cannot be
	// read must not look empty.
	MicroversionDownCells = Microversion{2, 69}
)

// StatusUnknown is the status of a server whose cell Nova cannot reach (2.69+).
const StatusUnknown = "UNKNOWN"

// serversMicroversion is 2.69 when Nova offers it, else 2.47, else the highest (then
// the flavors' extra specs are read one flavor at a time).
func (c *Client) serversMicroversion() Microversion {
	switch {
	case c.max.AtLeast(MicroversionDownCells):
		return MicroversionDownCells
	case c.max.AtLeast(MicroversionEmbeddedFlavor):
		return MicroversionEmbeddedFlavor
	}
	return c.max
}

func (o ListServersOpts) query() url.Values {
	q := url.Values{}
	if o.Host != "" {
		q.Set("host", o.Host)
	}
	if o.AllTenants {
		q.Set("all_tenants", "1")
	}
	return q
}

// serverJSON is a server of GET /servers/detail, at any microversion.
type serverJSON struct {
	ID        string            `json:"id"`
	Name      string            `json:"name"`
	Status    string            `json:"status"`
	TaskState *string           `json:"OS-EXT-STS:task_state"`
	VMState   *string           `json:"OS-EXT-STS:vm_state"`
	Host      *string           `json:"OS-EXT-SRV-ATTR:host"`
	Flavor    json.RawMessage   `json:"flavor"`
	Image     json.RawMessage   `json:"image"`
	Metadata  map[string]string `json:"metadata"`
	Tags      []string          `json:"tags"`
	Updated   string            `json:"updated"`
}

// flavorJSON is the embedded flavor (2.47+: extra_specs) or its reference (before).
type flavorJSON struct {
	ID         string            `json:"id"`
	ExtraSpecs map[string]string `json:"extra_specs"`
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// server converts a listed server; flavorID is set before 2.47.
func (j serverJSON) server(defaultHost string) (s Server, flavorID string, err error) {
	s = Server{ID: j.ID, Name: j.Name, Status: j.Status, TaskState: str(j.TaskState), VMState: str(j.VMState),
		Host: str(j.Host), Metadata: j.Metadata, Tags: j.Tags}
	if s.ID == "" {
		return s, "", fmt.Errorf("a server without id")
	}
	if s.Host == "" && s.Status == StatusUnknown {
		// A server of a down cell, listed because it matched the host filter: as
		// far as anyone knows, it is still there.
		s.Host = defaultHost
	}
	if len(j.Flavor) > 0 && string(j.Flavor) != "null" {
		var f flavorJSON
		if err := json.Unmarshal(j.Flavor, &f); err != nil {
			return s, "", fmt.Errorf("server %s: flavor: %w", s.ID, err)
		}
		s.FlavorExtraSpecs, flavorID = f.ExtraSpecs, f.ID
	}
	// The image is {"id": ...}, or "" for a server booted from a volume.
	var img struct {
		ID string `json:"id"`
	}
	if len(j.Image) > 0 && j.Image[0] == '{' {
		if err := json.Unmarshal(j.Image, &img); err != nil {
			return s, "", fmt.Errorf("server %s: image: %w", s.ID, err)
		}
		s.ImageID = img.ID
	}
	if j.Updated != "" {
		if t, err := parseTime(j.Updated); err == nil {
			s.Updated = t
		}
	}
	return s, flavorID, nil
}

// parseTime reads Nova's timestamps: RFC 3339, or without a zone (os-migrations),
// which is UTC.
func parseTime(v string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999", "2006-01-02T15:04:05"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time", v)
}

// ListServers lists the servers of opts.Host (GET /servers/detail, every page), with
// their embedded flavors' extra specs.
func (c *Client) ListServers(ctx context.Context, opts ListServersOpts) ([]Server, error) {
	mv := c.serversMicroversion()
	sc := c.at(mv)
	op := "listing servers"
	if opts.Host != "" {
		op += " of " + opts.Host
	}
	u := sc.ServiceURL("servers", "detail")
	if q := opts.query().Encode(); q != "" {
		u += "?" + q
	}
	var out []Server
	var flavorIDs []string // parallel to out, before 2.47
	err := listPages(ctx, sc, u, "servers_links", op, func(doc map[string]json.RawMessage) (int, error) {
		var list []serverJSON
		if err := json.Unmarshal(doc["servers"], &list); err != nil {
			return 0, fmt.Errorf("servers: %w", err)
		}
		for _, j := range list {
			s, fid, err := j.server(opts.Host)
			if err != nil {
				return 0, err
			}
			out = append(out, s)
			flavorIDs = append(flavorIDs, fid)
		}
		return len(list), nil
	})
	if err != nil {
		return nil, err
	}
	if !mv.AtLeast(MicroversionEmbeddedFlavor) {
		if err := c.fillExtraSpecs(ctx, out, flavorIDs); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// fillExtraSpecs reads the extra specs of each distinct flavor once (Nova before 2.47).
// A flavor deleted since the server was booted has none to read.
func (c *Client) fillExtraSpecs(ctx context.Context, servers []Server, flavorIDs []string) error {
	sc := c.at(c.max)
	specs := map[string]map[string]string{}
	for i := range servers {
		id := flavorIDs[i]
		if id == "" {
			continue
		}
		m, ok := specs[id]
		if !ok {
			var doc struct {
				ExtraSpecs map[string]string `json:"extra_specs"`
			}
			_, err := sc.Get(ctx, sc.ServiceURL("flavors", id, "os-extra-specs"), &doc, &gophercloud.RequestOpts{OkCodes: []int{200}})
			if err != nil && StatusCode(wrapErr("Nova", "", err)) != 404 {
				return wrapErr("Nova", "reading the extra specs of flavor "+id, err)
			}
			m = doc.ExtraSpecs
			specs[id] = m
		}
		servers[i].FlavorExtraSpecs = m
	}
	return nil
}
