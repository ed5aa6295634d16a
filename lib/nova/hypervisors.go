package nova

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"

	"github.com/gophercloud/gophercloud/v2"
)

// Microversions of the hypervisor listing.
var (
	// MicroversionHypervisorUUID (2.53) identifies hypervisors by the compute node's
	// UUID, which is also its resource provider's in Placement.
	MicroversionHypervisorUUID = Microversion{2, 53}
	// MicroversionNoHypervisorStats (2.88) stopped reporting vcpus, memory_mb and
	// their usage: Placement has them.
	MicroversionNoHypervisorStats = Microversion{2, 88}
)

// placementMicroversion (1.10) is the first with GET /allocation_candidates, whose
// provider summaries give every provider's capacity and usage in one call.
const placementMicroversion = "1.10"

// hypervisorsMicroversion is min(server max, 2.88): the host of each compute node
// (and, before 2.88, its free capacity as Nova counts it).
func (c *Client) hypervisorsMicroversion() Microversion {
	if c.max.AtLeast(MicroversionNoHypervisorStats) {
		return MicroversionNoHypervisorStats
	}
	return c.max
}

type hypervisorJSON struct {
	ID       json.RawMessage `json:"id"`
	Hostname string          `json:"hypervisor_hostname"`
	Service  struct {
		Host string `json:"host"`
	} `json:"service"`
	// Before 2.88 only.
	VCPUs     *int `json:"vcpus"`
	VCPUsUsed *int `json:"vcpus_used"`
	FreeRAMMB *int `json:"free_ram_mb"`
}

// Hypervisors reports each compute node's host and free capacity.
//
// The nodes and their hosts come from GET /os-hypervisors/detail; the free capacity
// from Placement, in one GET /allocation_candidates?resources=VCPU:1,MEMORY_MB:1 whose
// provider summaries hold each provider's capacity (allocation ratios and reserved
// amounts applied) and usage. A node Placement leaves out of the candidates cannot
// take one more vCPU or MiB: its free capacity is 0. When Placement cannot be read
// (not in the catalog, down), the figures Nova reported before 2.88 are used, and
// without them the capacity is unknown (-1): the caller then spreads evenly.
func (c *Client) Hypervisors(ctx context.Context) ([]Hypervisor, error) {
	mv := c.hypervisorsMicroversion()
	sc := c.at(mv)
	var nodes []hypervisorJSON
	err := listPages(ctx, sc, sc.ServiceURL("os-hypervisors", "detail"), "hypervisors_links", "listing hypervisors",
		func(doc map[string]json.RawMessage) (int, error) {
			var list []hypervisorJSON
			if err := json.Unmarshal(doc["hypervisors"], &list); err != nil {
				return 0, fmt.Errorf("hypervisors: %w", err)
			}
			nodes = append(nodes, list...)
			return len(list), nil
		})
	if err != nil {
		return nil, err
	}
	var free map[string][2]int
	if mv.AtLeast(MicroversionHypervisorUUID) {
		free, err = c.placementFree(ctx)
		if err != nil {
			c.log.Debug("free capacity unknown: cannot read Placement", "error", err.Error())
		}
	}
	out := make([]Hypervisor, 0, len(nodes))
	for _, n := range nodes {
		h := Hypervisor{Host: n.Service.Host, VCPUsFree: -1, RAMFreeMB: -1}
		if h.Host == "" {
			h.Host = n.Hostname
		}
		var id string
		_ = json.Unmarshal(n.ID, &id) // a number before 2.53: no Placement match
		switch f, ok := free[id]; {
		case ok:
			h.VCPUsFree, h.RAMFreeMB = f[0], f[1]
		case free != nil && id != "":
			h.VCPUsFree, h.RAMFreeMB = 0, 0
		case n.VCPUs != nil && n.VCPUsUsed != nil && n.FreeRAMMB != nil:
			h.VCPUsFree, h.RAMFreeMB = max(0, *n.VCPUs-*n.VCPUsUsed), max(0, *n.FreeRAMMB)
		}
		out = append(out, h)
	}
	return out, nil
}

// placementFree is the free [vCPUs, MiB] of every resource provider that can take
// at least one of each, by provider UUID.
func (c *Client) placementFree(ctx context.Context) (map[string][2]int, error) {
	psc, err := c.catalogService(ctx, typePlacement)
	if err != nil {
		return nil, err
	}
	sc := *psc
	sc.Microversion = placementMicroversion
	q := url.Values{"resources": {"VCPU:1,MEMORY_MB:1"}}
	var doc struct {
		Summaries map[string]struct {
			Resources map[string]struct {
				Capacity int `json:"capacity"`
				Used     int `json:"used"`
			} `json:"resources"`
		} `json:"provider_summaries"`
	}
	_, err = sc.Get(ctx, sc.ServiceURL("allocation_candidates")+"?"+q.Encode(), &doc, &gophercloud.RequestOpts{OkCodes: []int{200}})
	if err != nil {
		return nil, wrapErr("Placement", "reading allocation candidates", err)
	}
	out := make(map[string][2]int, len(doc.Summaries))
	for id, s := range doc.Summaries {
		v, m := s.Resources["VCPU"], s.Resources["MEMORY_MB"]
		out[id] = [2]int{max(0, v.Capacity-v.Used), max(0, m.Capacity-m.Used)}
	}
	return out, nil
}
