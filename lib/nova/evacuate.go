package nova

import (
	"context"
	"fmt"

	"github.com/gophercloud/gophercloud/v2"
)

// Microversions of the evacuate action.
var (
	// MicroversionNoSharedStorage (2.14) drops onSharedStorage (Nova detects shared
	// storage itself, and refuses the field) and adminPass from the answer.
	MicroversionNoSharedStorage = Microversion{2, 14}
	// MicroversionEvacuateRunning (2.94) is the last that brings an evacuated
	// instance back in its earlier power state (an ACTIVE one running).
	MicroversionEvacuateRunning = Microversion{2, 94}
	// MicroversionEvacuateStopped (2.95) leaves every evacuated instance SHUTOFF on
	// its new host.
	MicroversionEvacuateStopped = Microversion{2, 95}
)

// EvacuateMicroversion is the microversion Evacuate sends for opts: min(server max,
// 2.94) so that instances come back running, or 2.95 when Stopped is asked and Nova
// offers it. A Nova without 2.95 cannot leave running instances stopped: it then gets
// min(server max, 2.94), which keeps each instance's power state (a SHUTOFF instance
// stays off), and the client logs a warning once.
func (c *Client) EvacuateMicroversion(opts EvacuateOpts) Microversion {
	if opts.Stopped && c.max.AtLeast(MicroversionEvacuateStopped) {
		return MicroversionEvacuateStopped
	}
	if c.max.AtLeast(MicroversionEvacuateRunning) {
		return MicroversionEvacuateRunning
	}
	return c.max
}

// ToEvacuateMap is the request body at microversion mv: {"evacuate": {...}} with the
// destination when one is given, onSharedStorage only before 2.14 (where Nova requires
// it), never adminPass (Nova makes one when needed) and never force (2.29 to 2.67: the
// scheduler must check a named destination).
//
// It exists because gophercloud's servers.EvacuateOpts always sends onSharedStorage,
// which Nova rejects from 2.14.
func (o EvacuateOpts) ToEvacuateMap(mv Microversion, onSharedStorage bool) map[string]any {
	inner := map[string]any{}
	if o.Host != "" {
		inner["host"] = o.Host
	}
	if !mv.AtLeast(MicroversionNoSharedStorage) {
		inner["onSharedStorage"] = onSharedStorage
	}
	return map[string]any{"evacuate": inner}
}

// Evacuate asks Nova to rebuild the server on another host (POST
// /servers/{id}/action). It is sent once, never retried: Nova's 200 only means the
// request was accepted, so the outcome must be confirmed through the migration
// records and the server's state. Nova answers 400 while the source host is not
// known to be down (or with a bad destination), 404 for an unknown server, 409 when
// the server's state forbids it; StatusCode tells them apart.
func (c *Client) Evacuate(ctx context.Context, serverID string, opts EvacuateOpts) error {
	if serverID == "" {
		return fmt.Errorf("evacuating: no server id")
	}
	mv := c.EvacuateMicroversion(opts)
	if opts.Stopped && !mv.AtLeast(MicroversionEvacuateStopped) {
		c.mu.Lock()
		first := !c.warned
		c.warned = true
		c.mu.Unlock()
		if first {
			c.log.Warn("Nova cannot leave evacuated instances stopped before microversion 2.95: they keep their power state",
				"max_microversion", c.max.String())
		}
	}
	sc := c.at(mv)
	body := opts.ToEvacuateMap(mv, c.cfg.OnSharedStorage)
	op := "evacuating server " + serverID
	if opts.Host != "" {
		op += " to " + opts.Host
	}
	_, err := sc.Post(ctx, sc.ServiceURL("servers", serverID, "action"), body, nil, &gophercloud.RequestOpts{OkCodes: []int{200}})
	return wrapErr("Nova", op, err)
}
