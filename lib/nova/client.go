package nova

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/utils"

	"github.com/novaha/novaha/lib/version"
)

// Microversion is a Nova API microversion, such as 2.53.
type Microversion struct{ Major, Minor int }

// Microversions this package relies on.
var (
	// MicroversionForcedDown (2.11) added forced_down to the services API.
	MicroversionForcedDown = Microversion{2, 11}
	// MicroversionServiceUUID (2.53) identifies services by UUID and updates them
	// with one PUT /os-services/{id}: the preferred API.
	MicroversionServiceUUID = Microversion{2, 53}
)

// ParseMicroversion reads "2.53".
func ParseMicroversion(s string) (Microversion, error) {
	maj, min, ok := strings.Cut(strings.TrimSpace(s), ".")
	a, err1 := strconv.Atoi(maj)
	b, err2 := strconv.Atoi(min)
	if !ok || err1 != nil || err2 != nil || a < 0 || b < 0 {
		return Microversion{}, fmt.Errorf("%q is not a microversion", s)
	}
	return Microversion{a, b}, nil
}

func (m Microversion) String() string { return fmt.Sprintf("%d.%d", m.Major, m.Minor) }

// AtLeast reports whether m is o or later.
func (m Microversion) AtLeast(o Microversion) bool {
	return m.Major > o.Major || (m.Major == o.Major && m.Minor >= o.Minor)
}

// Client is an authenticated connection to Nova. It is safe for concurrent use.
type Client struct {
	cfg      Config
	log      *slog.Logger
	ao       gophercloud.AuthOptions
	eo       gophercloud.EndpointOpts
	provider *gophercloud.ProviderClient
	compute  *gophercloud.ServiceClient
	// max is the highest microversion Nova offers.
	max Microversion
	// transport's idle connections are closed by Close.
	transport http.RoundTripper

	// mu guards others: the clients of Placement and Glance, made on first use
	// (catalog.go), and warned (evacuate.go).
	mu     sync.Mutex
	others map[string]*gophercloud.ServiceClient
	warned bool
}

// Dial authenticates with Keystone, finds Nova in the service catalog and reads the
// microversions it offers; with a token cache holding a valid token for the same
// credentials, it uses that instead and makes no request at all. Every request is
// bounded by ctx.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	ao, eo, tlsConf, err := cfg.options()
	if err != nil {
		return nil, err
	}
	base := cfg.Transport
	if base == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = tlsConf
		base = t
	}
	c := &Client{cfg: cfg, log: cfg.Logger, ao: ao, eo: eo, transport: base}
	if c.provider, err = c.newProvider(); err != nil {
		return nil, err
	}
	if c.fromCache() {
		// A 401 from Nova (a revoked token) authenticates again, once.
		c.provider.ReauthFunc = c.reauthenticate
		return c, nil
	}
	start := cfg.Clock.Now()
	if err := openstack.Authenticate(ctx, c.provider, ao); err != nil {
		return nil, wrapErr("Keystone", "authenticating", err)
	}
	cfg.Logger.Debug("authenticated with Keystone", "elapsed", cfg.Clock.Now().Sub(start).Round(time.Millisecond))
	compute, err := openstack.NewComputeV2(c.provider, eo)
	if err != nil {
		var nf *gophercloud.ErrEndpointNotFound
		if errors.As(err, &nf) || strings.Contains(err.Error(), "No suitable endpoint") {
			return nil, fmt.Errorf("the Keystone catalog has no %s compute endpoint%s", eo.Availability, inRegion(eo.Region))
		}
		return nil, wrapErr("Keystone", "finding Nova in the catalog", err)
	}
	c.compute = compute
	if err := c.negotiate(ctx); err != nil {
		return nil, err
	}
	c.saveToken(c.provider)
	// Set only now: a refused login must not be tried twice.
	c.provider.ReauthFunc = c.reauthenticate
	return c, nil
}

// newProvider is an unauthenticated gophercloud provider on the retrying transport.
func (c *Client) newProvider() (*gophercloud.ProviderClient, error) {
	p, err := openstack.NewClient(c.ao.IdentityEndpoint)
	if err != nil {
		return nil, invalid("auth_url: %v", err)
	}
	p.HTTPClient = http.Client{Transport: &retryTransport{next: c.transport, clock: c.cfg.Clock, attempts: c.cfg.RetryAttempts,
		base: c.cfg.RetryBase, max: c.cfg.RetryMax, log: c.cfg.Logger}}
	p.UserAgent.Prepend("novaha/" + version.Version)
	return p, nil
}

// fromCache sets the client up from a cached token, if there is a valid one.
func (c *Client) fromCache() bool {
	if c.cfg.TokenCacheDir == "" || c.cfg.FreshToken {
		return false
	}
	secret, err := cacheSecret(c.cfg.TokenCacheDir, false)
	if err != nil {
		return false
	}
	t, ok := loadToken(c.cfg.TokenCacheDir, cacheKey(secret, c.ao, c.eo), c.cfg.Clock.Now())
	if !ok {
		return false
	}
	max, err := ParseMicroversion(t.MaxMicroversion)
	if err != nil || !max.AtLeast(MicroversionForcedDown) {
		return false
	}
	c.provider.SetToken(t.Token)
	c.compute = &gophercloud.ServiceClient{ProviderClient: c.provider, Endpoint: t.ComputeEndpoint, Type: "compute"}
	c.max = max
	c.log.Debug("using the cached Keystone token", "expires_at", t.ExpiresAt.Format(time.RFC3339),
		"endpoint", redactURL(t.ComputeEndpoint), "max_microversion", max.String())
	return true
}

// saveToken caches the token of provider; a failure only costs the next run a login.
func (c *Client) saveToken(p *gophercloud.ProviderClient) {
	if c.cfg.TokenCacheDir == "" {
		return
	}
	id, expires, ok := tokenOf(p)
	if !ok {
		return
	}
	t := cachedToken{Token: id, ExpiresAt: expires, ComputeEndpoint: c.compute.Endpoint, MaxMicroversion: c.max.String()}
	secret, err := cacheSecret(c.cfg.TokenCacheDir, true)
	if err != nil {
		c.log.Debug("could not cache the Keystone token", "error", err.Error())
		return
	}
	if err := saveToken(c.cfg.TokenCacheDir, cacheKey(secret, c.ao, c.eo), t, c.cfg.Clock.Now()); err != nil {
		c.log.Debug("could not cache the Keystone token", "error", err.Error())
	}
}

// reauthenticate gets a new token when Nova refused the one in use (gophercloud calls
// it on a 401, then repeats the request once).
func (c *Client) reauthenticate(ctx context.Context) error {
	c.log.Debug("Nova refused the token: authenticating again")
	p, err := c.newProvider()
	if err != nil {
		return err
	}
	if err := openstack.Authenticate(ctx, p, c.ao); err != nil {
		return wrapErr("Keystone", "authenticating again", err)
	}
	c.provider.CopyTokenFrom(p)
	if c.compute != nil && c.max != (Microversion{}) {
		c.saveToken(p)
	}
	return nil
}

func inRegion(r string) string {
	if r == "" {
		return ""
	}
	return " in region " + r
}

// negotiate reads Nova's version document: the highest microversion it offers.
func (c *Client) negotiate(ctx context.Context) error {
	endpoint, err := utils.BaseVersionedEndpoint(c.compute.Endpoint)
	if err != nil {
		return fmt.Errorf("Nova's endpoint %q: %v", redactURL(c.compute.Endpoint), err)
	}
	var doc struct {
		Version struct {
			ID         string `json:"id"`
			Version    string `json:"version"`
			MinVersion string `json:"min_version"`
		} `json:"version"`
	}
	_, err = c.compute.Get(ctx, endpoint, &doc, &gophercloud.RequestOpts{OkCodes: []int{200}})
	if err != nil {
		return wrapErr("Nova", "reading its API version", err)
	}
	if doc.Version.Version == "" {
		// A Nova without microversions (before Liberty) cannot force a host down.
		return fmt.Errorf("Nova at %s offers no microversions: at least %s is needed", redactURL(endpoint), MicroversionForcedDown)
	}
	max, err := ParseMicroversion(doc.Version.Version)
	if err != nil {
		return fmt.Errorf("Nova's version document: %v", err)
	}
	if !max.AtLeast(MicroversionForcedDown) {
		return fmt.Errorf("Nova offers microversions up to %s: at least %s (forced_down) is needed", max, MicroversionForcedDown)
	}
	c.max = max
	c.log.Debug("Nova API", "endpoint", redactURL(c.compute.Endpoint), "max_microversion", max.String())
	return nil
}

// MaxMicroversion is the highest microversion Nova offers.
func (c *Client) MaxMicroversion() Microversion { return c.max }

// at returns a service client that sends microversion m.
func (c *Client) at(m Microversion) *gophercloud.ServiceClient {
	sc := *c.compute
	sc.Microversion = m.String()
	return &sc
}

// Close releases the client's idle connections. The token is left to expire.
func (c *Client) Close() {
	if t, ok := c.transport.(interface{ CloseIdleConnections() }); ok {
		t.CloseIdleConnections()
	}
}
