package evacuation

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/novaha/novaha/lib/nova"
)

// evacuableTag is fence_evacuate's flavor extra spec, image property and image tag.
const evacuableTag = "evacuable"

// haEnabledKey is Masakari's server metadata key.
const haEnabledKey = "HA_Enabled"

// imageTTL is how long an image's evacuable tag is remembered.
const imageTTL = 10 * time.Minute

// selection decides, for each instance on a fenced host, whether the rule selects it.
// An instance that Nova already tried to evacuate stays selected whatever the rule says
// now (classify sees to that).
//
// SelectTagged: fence_evacuate evacuates the tagged instances when any flavor or image
// of the cloud is tagged, else all. The controller reads the flavors embedded in the
// host's servers and their images only, so the rule holds per host: when one of the
// host's instances is tagged, only the tagged ones go; when none is, all go. The choice
// is made once per host and kept while the host is evacuated, because evacuating the
// tagged ones leaves untagged ones only. A controller restarted after every tagged
// instance of a host has left, before the host is marked evacuated, chooses again and
// evacuates the rest: more than asked, never fewer.
func (c *Controller) selection(ctx context.Context, hw *hostWork, servers []nova.Server) (map[string]bool, error) {
	sel := make(map[string]bool, len(servers))
	var tagged map[string]bool
	onlyTagged := false
	if c.cfg.Select == SelectTagged {
		tagged = make(map[string]bool, len(servers))
		for k := range servers {
			t, err := c.isTagged(ctx, &servers[k])
			if err != nil {
				return nil, err
			}
			tagged[servers[k].ID] = t
			onlyTagged = onlyTagged || t
		}
		if mode, ok := c.tagMode[hw.host]; ok {
			onlyTagged = mode
		} else {
			c.tagMode[hw.host] = onlyTagged
		}
	}
	for k := range servers {
		s := &servers[k]
		ok := true
		switch c.cfg.Select {
		case SelectTagged:
			ok = !onlyTagged || tagged[s.ID]
		case SelectHAEnabled:
			ok = trueString(s.Metadata[haEnabledKey])
		}
		if isError(s) && !c.cfg.IncludeError {
			ok = false
		}
		sel[s.ID] = ok
	}
	return sel, nil
}

func isError(s *nova.Server) bool {
	return s.VMState == "error" || (s.VMState == "" && s.Status == "ERROR")
}

// isTagged applies fence_evacuate's test: flavor extra spec evacuable=true, image
// property evacuable=true, or image tag evacuable.
func (c *Controller) isTagged(ctx context.Context, s *nova.Server) (bool, error) {
	if strings.EqualFold(strings.TrimSpace(s.FlavorExtraSpecs[evacuableTag]), "true") {
		return true, nil
	}
	if s.ImageID == "" {
		return false, nil
	}
	now := c.clk.Now()
	if info, ok := c.images[s.ImageID]; ok && now.Sub(info.at) < imageTTL {
		return info.evacuable, nil
	}
	props, tags, err := c.imageProperties(ctx, s.ImageID)
	if err != nil {
		return false, fmt.Errorf("reading image %s of instance %s: %w", s.ImageID, s.ID, err)
	}
	ev := strings.EqualFold(strings.TrimSpace(props[evacuableTag]), "true") || slices.Contains(tags, evacuableTag)
	c.images[s.ImageID] = imageInfo{evacuable: ev, at: now}
	return ev, nil
}

// trueString is oslo's bool_from_string, which Masakari applies to HA_Enabled.
func trueString(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "t", "true", "on", "y", "yes":
		return true
	}
	return false
}

// priority is the instance's priority from its metadata; 0 when absent or not an
// integer.
func (c *Controller) priority(s *nova.Server) int {
	v, ok := s.Metadata[c.cfg.PriorityKey]
	if !ok {
		return 0
	}
	p, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		c.log.Debug("instance priority is not an integer: using 0", "instance", s.ID, "key", c.cfg.PriorityKey, "value", v)
		return 0
	}
	return p
}

// The calls to Nova and Pacemaker, each bounded by CallTimeout.

func (c *Controller) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.cfg.CallTimeout)
}

func (c *Controller) listServices(ctx context.Context) ([]nova.Service, error) {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	return c.cfg.Nova.ListServices(ctx, nova.ListServicesOpts{Binary: nova.BinaryCompute})
}

func (c *Controller) updateService(ctx context.Context, s nova.Service, u nova.ServiceUpdate) (nova.Service, error) {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	return c.cfg.Nova.UpdateService(ctx, s, u)
}

func (c *Controller) listServers(ctx context.Context, host string) ([]nova.Server, error) {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	return c.cfg.Nova.ListServers(ctx, nova.ListServersOpts{Host: host, AllTenants: true})
}

func (c *Controller) listMigrations(ctx context.Context, opts nova.ListMigrationsOpts) ([]nova.Migration, error) {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	return c.cfg.Nova.ListMigrations(ctx, opts)
}

func (c *Controller) evacuate(ctx context.Context, id string, opts nova.EvacuateOpts) error {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	return c.cfg.Nova.Evacuate(ctx, id, opts)
}

func (c *Controller) hypervisors(ctx context.Context) ([]nova.Hypervisor, error) {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	return c.cfg.Nova.Hypervisors(ctx)
}

func (c *Controller) imageProperties(ctx context.Context, id string) (map[string]string, []string, error) {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	return c.cfg.Nova.ImageProperties(ctx, id)
}

func (c *Controller) callStockRequested(ctx context.Context) ([]string, error) {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	return c.cfg.Stock.Requested(ctx)
}

func (c *Controller) callStockDone(ctx context.Context, host string) error {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	return c.cfg.Stock.Done(ctx, host)
}
