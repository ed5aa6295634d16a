package nova

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"github.com/gophercloud/gophercloud/v2"
)

// BinaryCompute is the binary of the compute services this package manages.
const BinaryCompute = "nova-compute"

// Service is one service record as Nova reports it (GET /os-services).
type Service struct {
	// ID is the service's UUID from microversion 2.53, its integer id before.
	ID     ServiceID `json:"id"`
	Binary string    `json:"binary"`
	Host   string    `json:"host"`
	Zone   string    `json:"zone"`
	// Status is "enabled" or "disabled": whether the scheduler may use the host.
	Status string `json:"status"`
	// State is "up" or "down": whether Nova hears the service's heartbeat, and
	// always "down" while ForcedDown is set.
	State string `json:"state"`
	// ForcedDown is set by fencing: Nova then treats the host as down at once,
	// without waiting for service_down_time, and allows evacuation.
	ForcedDown     bool   `json:"forced_down"`
	DisabledReason string `json:"disabled_reason"`
	UpdatedAt      string `json:"updated_at"`
}

// Enabled reports whether the service's status is enabled.
func (s Service) Enabled() bool { return s.Status == "enabled" }

// Up reports whether Nova considers the service up.
func (s Service) Up() bool { return s.State == "up" }

// ServiceID is a service's id: a UUID string, or an integer before microversion 2.53.
type ServiceID string

// UnmarshalJSON accepts a string or a number.
func (id *ServiceID) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*id = ServiceID(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("service id %s is neither a string nor a number", b)
	}
	*id = ServiceID(n.String())
	return nil
}

// ListServicesOpts filters ListServices; empty fields match everything.
type ListServicesOpts struct {
	Host   string
	Binary string
}

func (o ListServicesOpts) query() string {
	q := url.Values{}
	if o.Binary != "" {
		q.Set("binary", o.Binary)
	}
	if o.Host != "" {
		q.Set("host", o.Host)
	}
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}

// ListServices lists the service records that match opts.
func (c *Client) ListServices(ctx context.Context, opts ListServicesOpts) ([]Service, error) {
	var out struct {
		Services []Service `json:"services"`
	}
	sc := c.at(c.servicesMicroversion())
	_, err := sc.Get(ctx, sc.ServiceURL("os-services")+opts.query(), &out, &gophercloud.RequestOpts{OkCodes: []int{200}})
	if err != nil {
		return nil, wrapErr("Nova", "listing compute services", err)
	}
	return out.Services, nil
}

// ServiceUpdate changes a compute service record. Unset fields are left as they are.
//
// It exists because gophercloud's services.UpdateOpts cannot send forced_down=false
// (its field is a plain bool with omitempty): lifting a force-down would silently do
// nothing.
type ServiceUpdate struct {
	// Status is "enabled", "disabled", or "" to leave it.
	Status string
	// DisabledReason goes with Status "disabled"; Nova keeps none when it is empty,
	// and clears it whenever a service is enabled.
	DisabledReason string
	// ForcedDown, when set, forces the service down (true) or lifts that (false).
	ForcedDown *bool
}

// ForceDown and LiftForceDown are the two ForcedDown values.
var (
	ForceDown     = ptr(true)
	LiftForceDown = ptr(false)
)

func ptr[T any](v T) *T { return &v }

// ToServiceUpdateMap is the request body at microversion 2.53.
func (u ServiceUpdate) ToServiceUpdateMap() (map[string]any, error) {
	m := map[string]any{}
	switch u.Status {
	case "":
		if u.DisabledReason != "" {
			return nil, fmt.Errorf("a disabled reason needs status disabled")
		}
	case "enabled":
		if u.DisabledReason != "" {
			return nil, fmt.Errorf("Nova refuses a disabled reason with status enabled")
		}
		m["status"] = u.Status
	case "disabled":
		m["status"] = u.Status
		if u.DisabledReason != "" {
			m["disabled_reason"] = u.DisabledReason
		}
	default:
		return nil, fmt.Errorf("status %q is neither enabled nor disabled", u.Status)
	}
	if u.ForcedDown != nil {
		m["forced_down"] = *u.ForcedDown
	}
	if len(m) == 0 {
		return nil, fmt.Errorf("an empty service update")
	}
	return m, nil
}

// describe names the update for error messages: "forcing down", "disabling".
func (u ServiceUpdate) describe() string {
	var parts []string
	if u.ForcedDown != nil {
		if *u.ForcedDown {
			parts = append(parts, "forcing down")
		} else {
			parts = append(parts, "lifting the force-down of")
		}
	}
	switch u.Status {
	case "enabled":
		parts = append(parts, "enabling")
	case "disabled":
		parts = append(parts, "disabling")
	}
	return strings.Join(parts, " and ")
}

// UpdateService applies u to the service s and returns the record as Nova reports it
// afterwards.
//
// From microversion 2.53 this is one PUT /os-services/{uuid}, whose answer is the
// updated record. Before (2.11 to 2.52, documented fallback) the service is named by
// host and binary, each change is its own call (PUT /os-services/force-down, then
// disable-log-reason, disable or enable) and the record is read back afterwards.
func (c *Client) UpdateService(ctx context.Context, s Service, u ServiceUpdate) (Service, error) {
	body, err := u.ToServiceUpdateMap()
	if err != nil {
		return Service{}, err
	}
	op := u.describe() + " " + s.Host
	if c.servicesMicroversion().AtLeast(MicroversionServiceUUID) {
		var out struct {
			Service Service `json:"service"`
		}
		sc := c.at(MicroversionServiceUUID)
		_, err := sc.Put(ctx, sc.ServiceURL("os-services", string(s.ID)), body, &out, &gophercloud.RequestOpts{OkCodes: []int{200}})
		if err != nil {
			return Service{}, wrapErr("Nova", op, err)
		}
		return out.Service, nil
	}
	sc := c.at(MicroversionForcedDown)
	put := func(action string, b map[string]any) error {
		b["host"], b["binary"] = s.Host, s.Binary
		_, err := sc.Put(ctx, sc.ServiceURL("os-services", action), b, nil, &gophercloud.RequestOpts{OkCodes: []int{200}})
		return wrapErr("Nova", op, err)
	}
	if u.ForcedDown != nil {
		if err := put("force-down", map[string]any{"forced_down": *u.ForcedDown}); err != nil {
			return Service{}, err
		}
	}
	switch {
	case u.Status == "disabled" && u.DisabledReason != "":
		err = put("disable-log-reason", map[string]any{"disabled_reason": u.DisabledReason})
	case u.Status == "disabled":
		err = put("disable", map[string]any{})
	case u.Status == "enabled":
		err = put("enable", map[string]any{})
	}
	if err != nil {
		return Service{}, err
	}
	list, err := c.ListServices(ctx, ListServicesOpts{Host: s.Host, Binary: s.Binary})
	if err != nil {
		return Service{}, err
	}
	for _, got := range list {
		if got.ID == s.ID {
			return got, nil
		}
	}
	return Service{}, fmt.Errorf("the %s service of %s vanished while %s", s.Binary, s.Host, op)
}

// servicesMicroversion is the microversion of the services calls: 2.53 when Nova
// offers it, else 2.11.
func (c *Client) servicesMicroversion() Microversion {
	if c.max.AtLeast(MicroversionServiceUUID) {
		return MicroversionServiceUUID
	}
	return MicroversionForcedDown
}

// ComputeServices lists the nova-compute services.
func (c *Client) ComputeServices(ctx context.Context) ([]Service, error) {
	return c.ListServices(ctx, ListServicesOpts{Binary: BinaryCompute})
}
