package nova

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/novaha/novaha/lib/clock"
)

// Defaults of Config.
const (
	DefaultDomain    = "Default"  // user and project domain, as in fence_compute
	DefaultInterface = "internal" // catalog interface, fence_compute's internalURL

	DefaultRetryAttempts = 5                      // attempts of one request in all
	DefaultRetryBase     = 200 * time.Millisecond // first pause between attempts
	DefaultRetryMax      = 2 * time.Second        // longest pause between attempts
)

// ErrInvalidConfig is wrapped by every error of Config.Validate.
var ErrInvalidConfig = errors.New("invalid OpenStack configuration")

// Config describes how to reach Keystone and Nova. The zero value of every field means
// its default; Validate checks it without any network access; Dial uses it.
//
// Fields given here override the clouds.yaml entry named by Cloud, field by field.
// Secrets (Password, ApplicationCredentialSecret) never appear in errors, in log
// lines, or when a Config is printed with any fmt verb or logged with slog.
type Config struct {
	// AuthURL is Keystone's URL, with its version (http://keystone:5000/v3) or
	// without it (then the version document is read). Required unless Cloud supplies it.
	AuthURL string
	// Username and Password authenticate with Keystone v3's password method.
	Username string
	Password string `json:"-"`
	// UserDomainName is the user's domain; empty means the clouds.yaml entry's, or
	// DefaultDomain.
	UserDomainName string
	// ProjectName scopes the token (fence_compute's tenant_name).
	ProjectName string
	// ProjectDomainName is the project's domain; empty means the clouds.yaml entry's,
	// or DefaultDomain.
	ProjectDomainName string
	// ApplicationCredentialID (or ApplicationCredentialName with Username) and
	// ApplicationCredentialSecret authenticate with a Keystone application credential
	// instead of a password. Such a credential carries its own project scope.
	ApplicationCredentialID     string
	ApplicationCredentialName   string
	ApplicationCredentialSecret string `json:"-"`
	// RegionName selects the region in the service catalog; empty means any.
	RegionName string
	// Interface selects the catalog endpoint: public, internal or admin (publicURL,
	// internalURL and adminURL are accepted too); empty means the clouds.yaml entry's,
	// or DefaultInterface.
	Interface string

	// Cloud names an entry of clouds.yaml (and of secure.yaml beside it, for secrets).
	// Empty means none, unless the OS_CLOUD environment variable names one.
	Cloud string
	// CloudsFile is the clouds.yaml to read; empty means OS_CLIENT_CONFIG_FILE, then
	// ./clouds.yaml, ~/.config/openstack/clouds.yaml and /etc/openstack/clouds.yaml.
	CloudsFile string

	// CACertFile is a PEM bundle of the authorities that sign Keystone's and Nova's
	// certificates; empty means the system's.
	CACertFile string
	// Insecure turns TLS certificate verification off. It is off by default.
	Insecure bool

	// RetryAttempts bounds the attempts of one request that fails with a connection
	// error or a 5xx answer; 0 means DefaultRetryAttempts, 1 means no retry. Every
	// request is also bounded by its context's deadline: no attempt is started that
	// the deadline would cut short by its pause alone.
	RetryAttempts int
	// RetryBase is the first pause between attempts, doubled after each; 0 means
	// DefaultRetryBase. RetryMax caps the pause; 0 means DefaultRetryMax.
	RetryBase time.Duration
	RetryMax  time.Duration

	// TokenCacheDir keeps the Keystone token between runs (see tokencache.go): a
	// directory only this user may enter, on a tmpfs. Empty means no cache.
	TokenCacheDir string
	// FreshToken authenticates with Keystone even when a cached token is valid (and
	// caches the new one): for health checks, which must reach Keystone.
	FreshToken bool

	// OnSharedStorage is what evacuate requests tell a Nova older than microversion
	// 2.14 (before Mitaka), which cannot find out itself whether the instances' disks
	// are on storage shared with the destination; from 2.14 Nova detects it and this
	// is not sent. ocf:openstack:NovaEvacuate's no_shared_storage is its opposite.
	OnSharedStorage bool

	// Logger receives debug records (requests, retries, the negotiated microversion),
	// never secrets; nil discards them.
	Logger *slog.Logger
	// Clock paces the retries; nil means real time. Tests replace it.
	Clock Clock
	// Transport carries the HTTP requests under the retries; nil means a transport
	// built from CACertFile and Insecure. Tests give an httptest server's.
	Transport http.RoundTripper
	// Getenv reads OS_CLOUD; nil means os.Getenv.
	Getenv func(string) string
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
}

// cloudName is Cloud, or OS_CLOUD.
func (c Config) cloudName() string {
	if c.Cloud != "" {
		return c.Cloud
	}
	getenv := c.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	return getenv("OS_CLOUD")
}

// Validate checks the configuration offline and returns the first problem, wrapping
// ErrInvalidConfig. Files (clouds.yaml, the CA bundle) are read by Dial, not here:
// pcs validates a device on one node, and the files may be deployed on the others.
func (c Config) Validate() error {
	cloud := c.cloudName()
	if c.AuthURL == "" && cloud == "" {
		return invalid("no Keystone URL: set auth_url, or name a clouds.yaml entry with cloud")
	}
	if c.AuthURL != "" {
		u, err := url.Parse(c.AuthURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return invalid("auth_url %q is not an http(s) URL", redactURL(c.AuthURL))
		}
		if u.User != nil {
			return invalid("auth_url must not carry credentials")
		}
	}
	if _, err := availability(c.Interface); err != nil {
		return err
	}
	appCred := c.ApplicationCredentialID != "" || c.ApplicationCredentialName != ""
	if cloud == "" {
		switch {
		case appCred && c.ApplicationCredentialSecret == "":
			return invalid("an application credential needs its secret")
		case c.ApplicationCredentialName != "" && c.Username == "":
			return invalid("an application credential given by name needs the user name")
		case !appCred && c.Username == "":
			return invalid("no user name: set username (login), an application credential, or cloud")
		}
	}
	if c.RetryAttempts < 0 || c.RetryBase < 0 || c.RetryMax < 0 {
		return invalid("negative retry settings")
	}
	return nil
}

// availability maps an interface name to gophercloud's; "" is DefaultInterface.
func availability(s string) (gophercloud.Availability, error) {
	switch strings.TrimSuffix(strings.ToLower(s), "url") {
	case "", "internal":
		return gophercloud.AvailabilityInternal, nil
	case "public":
		return gophercloud.AvailabilityPublic, nil
	case "admin":
		return gophercloud.AvailabilityAdmin, nil
	}
	return "", invalid("endpoint type %q is not one of public, internal, admin (or publicURL, internalURL, adminURL)", s)
}

// options resolves the configuration into gophercloud's authentication and endpoint
// options and the TLS settings, reading clouds.yaml when a cloud is named.
func (c Config) options() (gophercloud.AuthOptions, gophercloud.EndpointOpts, *tls.Config, error) {
	var (
		ao      gophercloud.AuthOptions
		eo      gophercloud.EndpointOpts
		tlsConf *tls.Config
	)
	if cloud := c.cloudName(); cloud != "" {
		var err error
		if ao, eo, tlsConf, err = c.parseCloud(cloud); err != nil {
			return ao, eo, nil, err
		}
		if ao.TokenID != "" && ao.Password == "" && ao.ApplicationCredentialSecret == "" {
			return ao, eo, nil, invalid("clouds.yaml entry %q uses a token: a fence agent needs a password or an application credential", cloud)
		}
	}
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&ao.IdentityEndpoint, c.AuthURL)
	set(&ao.Username, c.Username)
	set(&ao.Password, c.Password)
	set(&ao.DomainName, c.UserDomainName)
	set(&ao.ApplicationCredentialID, c.ApplicationCredentialID)
	set(&ao.ApplicationCredentialName, c.ApplicationCredentialName)
	set(&ao.ApplicationCredentialSecret, c.ApplicationCredentialSecret)
	set(&eo.Region, c.RegionName)
	if c.Interface != "" || eo.Availability == "" {
		av, err := availability(c.Interface)
		if err != nil {
			return ao, eo, nil, err
		}
		eo.Availability = av
	}
	if ao.IdentityEndpoint == "" {
		return ao, eo, nil, invalid("no Keystone URL in the options or in clouds.yaml")
	}
	if ao.ApplicationCredentialID != "" || ao.ApplicationCredentialName != "" {
		// An application credential is scoped already; Keystone refuses another scope.
		ao.Scope = nil
		ao.TenantID, ao.TenantName = "", ""
		if ao.ApplicationCredentialID != "" {
			ao.Username, ao.UserID, ao.DomainName, ao.DomainID = "", "", "", ""
		}
	} else {
		if ao.DomainName == "" && ao.DomainID == "" {
			ao.DomainName = DefaultDomain
		}
		scope := gophercloud.AuthScope{}
		if ao.Scope != nil {
			scope = *ao.Scope
		}
		if c.ProjectName != "" {
			scope = gophercloud.AuthScope{ProjectName: c.ProjectName, DomainName: c.ProjectDomainName}
		} else if c.ProjectDomainName != "" && scope.ProjectName != "" {
			scope.DomainName, scope.DomainID = c.ProjectDomainName, ""
		}
		if scope.ProjectName != "" && scope.DomainName == "" && scope.DomainID == "" {
			scope.DomainName = DefaultDomain
		}
		if scope != (gophercloud.AuthScope{}) {
			ao.Scope = &scope
		}
		// gophercloud would build a second scope from these.
		ao.TenantID, ao.TenantName = "", ""
	}
	if c.CACertFile != "" || c.Insecure {
		if tlsConf == nil {
			tlsConf = &tls.Config{MinVersion: tls.VersionTLS12}
		} else {
			tlsConf = tlsConf.Clone()
		}
		if c.CACertFile != "" {
			pem, err := os.ReadFile(c.CACertFile)
			if err != nil {
				return ao, eo, nil, invalid("CA bundle: %v", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return ao, eo, nil, invalid("CA bundle %s holds no PEM certificate", c.CACertFile)
			}
			tlsConf.RootCAs = pool
		}
		if c.Insecure {
			tlsConf.InsecureSkipVerify = true // #nosec G402: the operator asked for it
		}
	}
	return ao, eo, tlsConf, nil
}

// withDefaults fills the zero values.
func (c Config) withDefaults() Config {
	if c.RetryAttempts == 0 {
		c.RetryAttempts = DefaultRetryAttempts
	}
	if c.RetryBase == 0 {
		c.RetryBase = DefaultRetryBase
	}
	if c.RetryMax == 0 {
		c.RetryMax = DefaultRetryMax
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Clock == nil {
		c.Clock = clock.Real{}
	}
	return c
}

func redacted(secret string) string {
	if secret == "" {
		return `""`
	}
	return "<redacted>"
}

// String prints the configuration with its secrets redacted.
func (c Config) String() string {
	return fmt.Sprintf("nova.Config{AuthURL:%q Username:%q Password:%s UserDomainName:%q ProjectName:%q ProjectDomainName:%q "+
		"ApplicationCredentialID:%q ApplicationCredentialName:%q ApplicationCredentialSecret:%s RegionName:%q Interface:%q "+
		"Cloud:%q CloudsFile:%q CACertFile:%q Insecure:%t}",
		redactURL(c.AuthURL), c.Username, redacted(c.Password), c.UserDomainName, c.ProjectName, c.ProjectDomainName,
		c.ApplicationCredentialID, c.ApplicationCredentialName, redacted(c.ApplicationCredentialSecret), c.RegionName,
		c.Interface, c.Cloud, c.CloudsFile, c.CACertFile, c.Insecure)
}

// Format prints String for every verb, so that no verb can print the secrets.
func (c Config) Format(f fmt.State, verb rune) { _, _ = f.Write([]byte(c.String())) }

// LogValue logs the configuration with its secrets redacted.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("auth_url", redactURL(c.AuthURL)), slog.String("username", c.Username),
		slog.String("password", redacted(c.Password)), slog.String("project", c.ProjectName),
		slog.String("application_credential_secret", redacted(c.ApplicationCredentialSecret)),
		slog.String("region", c.RegionName), slog.String("interface", c.Interface),
		slog.String("cloud", c.Cloud), slog.Bool("insecure", c.Insecure))
}

// Clock is the passage of time as this package's loops see it; tests replace it.
type Clock = clock.Clock
