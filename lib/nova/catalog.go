package nova

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
)

// The evacuation controller also reads Placement (free capacity of the destination
// hosts) and Glance (image properties of the evacuable rule). Their endpoints come
// from the Keystone catalog, found once per client on first use.

// ErrNoEndpoint: the Keystone catalog has no endpoint of a service the call needs.
var ErrNoEndpoint = errors.New("no endpoint in the Keystone catalog")

// Service types of the catalog.
const (
	typePlacement = "placement"
	typeImage     = "image"
)

// catalogService returns a client of the catalog's service typ (placement, image).
//
// A client set up from a cached token has no catalog: it authenticates once to read
// one (and uses the new token from then on).
func (c *Client) catalogService(ctx context.Context, typ string) (*gophercloud.ServiceClient, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if sc, ok := c.others[typ]; ok {
		return sc, nil
	}
	if c.provider.EndpointLocator == nil {
		p, err := c.newProvider()
		if err != nil {
			return nil, err
		}
		if err := openstack.Authenticate(ctx, p, c.ao); err != nil {
			return nil, wrapErr("Keystone", "reading the service catalog", err)
		}
		c.provider.CopyTokenFrom(p)
		c.provider.EndpointLocator = p.EndpointLocator
	}
	if typ != typePlacement && typ != typeImage {
		return nil, fmt.Errorf("unknown service type %q", typ)
	}
	eo := c.eo
	// Version 0: no version discovery request (gophercloud's has no deadline).
	eo.Type, eo.Aliases, eo.Version = typ, nil, 0
	endpoint, err := c.provider.EndpointLocator(eo)
	if err != nil {
		var nf *gophercloud.ErrEndpointNotFound
		if errors.As(err, &nf) || strings.Contains(err.Error(), "No suitable endpoint") {
			return nil, fmt.Errorf("%w: no %s %s endpoint%s", ErrNoEndpoint, eo.Availability, typ, inRegion(eo.Region))
		}
		return nil, wrapErr("Keystone", "finding "+typ+" in the catalog", err)
	}
	sc := &gophercloud.ServiceClient{ProviderClient: c.provider, Endpoint: endpoint, Type: typ}
	if typ == typeImage && !strings.HasSuffix(strings.TrimSuffix(endpoint, "/"), "/v2") {
		// Glance is usually listed without its version.
		sc.ResourceBase = endpoint + "v2/"
	}
	if c.others == nil {
		c.others = map[string]*gophercloud.ServiceClient{}
	}
	c.others[typ] = sc
	return sc, nil
}
