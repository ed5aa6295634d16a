// Command fence_nova is a Pacemaker fence agent that fences a compute host in
// OpenStack Nova: it forces the host's nova-compute service down and disables it with
// a lifecycle marker, so that Nova knows at once and durably that the host is fenced
// and its instances can be evacuated; and it unfences the host (automatically, when
// it rejoins the cluster) once the evacuation is finished. It is the second device of
// a compute node's fencing topology level, after the power fence, and a drop-in
// replacement for fence_compute: it accepts the same parameters.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/novaha/novaha/lib/fence"
	"github.com/novaha/novaha/lib/nova"
	"github.com/novaha/novaha/lib/pacemaker"
)

// Parameter names of this agent, beyond the framework's.
const (
	paramAuthURL         = "auth_url"
	paramEndpointType    = "endpoint_type"
	paramRegion          = "region_name"
	paramTenant          = "tenant_name"
	paramProjectDomain   = "project_domain"
	paramUserDomain      = "user_domain"
	paramInsecure        = "insecure"
	paramCACert          = "cacert"
	paramCloud           = "cloud"
	paramCloudsYAML      = "clouds_yaml"
	paramAppCredID       = "application_credential_id"
	paramAppCredName     = "application_credential_name"
	paramAppCredSecret   = "application_credential_secret"
	paramDomain          = "domain"
	paramComputeDomain   = "compute_domain"
	paramRecordOnly      = "record_only"
	paramInstanceFilter  = "instance_filtering"
	paramNoSharedStorage = "no_shared_storage"
	paramTokenCache      = "token_cache"
	paramPlugSeparator   = "plug_separator"
)

// env is what the agent reaches outside itself; tests replace it.
type env struct {
	dial   func(ctx context.Context, cfg nova.Config) (novaClient, error)
	attrd  func(log *slog.Logger) attrd
	now    func() time.Time
	getenv func(string) string
	// tokenCacheDir is where Keystone tokens are kept between runs ("" for nowhere).
	tokenCacheDir func() string
}

// novaClient is the part of *nova.Client the device uses.
type novaClient interface {
	nova.ServiceAPI
	Close()
}

// attrd is the part of *pacemaker.Attrd the device uses.
type attrd interface {
	Available() bool
	SetPrivate(ctx context.Context, node, name, value string) error
	QueryPrivate(ctx context.Context, node, name string) (string, error)
}

func defaultEnv() env {
	return env{
		dial:   func(ctx context.Context, cfg nova.Config) (novaClient, error) { return nova.Dial(ctx, cfg) },
		attrd:  func(log *slog.Logger) attrd { return &pacemaker.Attrd{Log: log} },
		now:    time.Now,
		getenv: os.Getenv,
		tokenCacheDir: func() string {
			if os.Geteuid() == 0 {
				return nova.DefaultTokenCacheDir
			}
			if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
				return filepath.Join(d, "novaha", "tokens")
			}
			return ""
		},
	}
}

func agent(e env) *fence.Agent {
	return &fence.Agent{
		Name:      "fence_nova",
		ShortDesc: "Fence agent for OpenStack Nova compute hosts (force-down and unfencing)",
		LongDesc: `fence_nova tells OpenStack Nova that a compute host is fenced: it forces the
host's nova-compute service down, then disables it with the reason "novaha:fenced <time>"
(keeping an operator's earlier reason), and reads the record back. Nova then allows the
host's instances to be evacuated at once instead of waiting for service_down_time. Use it as
the second device of the host's fencing topology level, after the power fence. Its "on"
action (automatic unfencing) waits until the host's instances are evacuated, lifts the
force-down and restores the service's state. Status is OFF while Nova has the host forced
down. fence_nova is a drop-in replacement for fence_compute: it accepts the same
parameters, and also clouds.yaml, application credentials and a CA bundle.`,
		VendorURL: "https://github.com/novaha/novaha",
		Fabric:    true,
		Lists:     true,
		Defaults: map[string]string{
			fence.ParamLoginTimeout: "10", // Keystone authentication and Nova's version document
			fence.ParamShellTimeout: "20", // one Nova step, retries included
			fence.ParamPowerTimeout: "60", // on: how long to wait for the evacuation
		},
		Params: []fence.Param{
			{Name: paramAuthURL, Short: 'k', ArgName: "url", Type: fence.String,
				Help: "Keystone Admin Auth URL (http(s)://host:5000/v3)"},
			{Name: paramEndpointType, Short: 'e', ArgName: "endpoint", Type: fence.String, Default: "internalURL",
				Help: "Nova Endpoint type (publicURL, internalURL, adminURL)"},
			fence.Username(false),
			fence.Password(),
			fence.PasswordScript(),
			fence.Plug(true, "Name of the compute host to fence, as the cluster knows it (matched to Nova's host names, see domain)"),
			{Name: paramRegion, ArgName: "region", Type: fence.String, Help: "Region Name"},
			{Name: paramTenant, Aliases: []string{"project_name"}, Short: 't', ArgName: "name", Type: fence.String,
				Help: "Keystone v3 Project Name (tenant)"},
			{Name: paramInsecure, Type: fence.Boolean, Default: "0",
				Help: "Do not verify TLS certificates (insecure=0 keeps verification on)"},
			{Name: paramProjectDomain, Deprecated: "project-domain", Short: 'P', ArgName: "name", Type: fence.String, Default: nova.DefaultDomain,
				Help: "Keystone v3 Project Domain"},
			{Name: paramUserDomain, Deprecated: "user-domain", Short: 'u', ArgName: "name", Type: fence.String, Default: nova.DefaultDomain,
				Help: "Keystone v3 User Domain"},
			{Name: paramDomain, Short: 'd', ArgName: "string", Type: fence.String,
				Help: "DNS domain in which hosts live, useful when the cluster uses short names and nova uses FQDN"},
			{Name: paramComputeDomain, Deprecated: "compute-domain", ArgName: "string", Type: fence.String,
				Help: "Replaced by domain"},
			{Name: paramCloud, ArgName: "name", Type: fence.String,
				Help: "Entry of clouds.yaml (and secure.yaml) to use; OS_CLOUD when unset. Options given explicitly override it"},
			{Name: paramCloudsYAML, ArgName: "path", Type: fence.String,
				Help: "clouds.yaml to read (default: OS_CLIENT_CONFIG_FILE, ./, ~/.config/openstack/, /etc/openstack/)"},
			{Name: paramCACert, ArgName: "path", Type: fence.String,
				Help: "PEM bundle of the CAs that sign Keystone's and Nova's certificates (default: the system's)"},
			{Name: paramAppCredID, ArgName: "id", Type: fence.String,
				Help: "Keystone application credential ID (instead of username and password)"},
			{Name: paramAppCredName, ArgName: "name", Type: fence.String,
				Help: "Keystone application credential name (with username)"},
			{Name: paramAppCredSecret, ArgName: "secret", Type: fence.String, Secret: true,
				Help: "Keystone application credential secret"},
			{Name: paramTokenCache, Type: fence.Boolean, Default: "1",
				Help: "Keep the Keystone token between runs, in " + nova.DefaultTokenCacheDir + " (root only, 0600): each run then saves Keystone's password check. monitor always logs in"},
			{Name: paramRecordOnly, Type: fence.Boolean, Default: "0", Ignored: true,
				Help: "Accepted for fence_compute compatibility: fence_nova always only records the host; evacuation is NovaEvacuate's"},
			{Name: paramInstanceFilter, Type: fence.Boolean, Default: "1", Ignored: true,
				Help: "Accepted for fence_compute compatibility: which instances are evacuated is NovaEvacuate's setting"},
			{Name: paramNoSharedStorage, Type: fence.Boolean, Default: "0", Ignored: true,
				Help: "Accepted for fence_compute compatibility: Nova detects shared storage itself"},
			{Name: paramPlugSeparator, ArgName: "char", Type: fence.String, Default: ",", Ignored: true,
				Help: "Accepted for fence_compute compatibility: fence_nova takes one compute host per plug"},
		},
		Validate: func(o *fence.Options) error { return validate(o, e.getenv) },
		Open:     func(ctx context.Context, o *fence.Options) (fence.Device, error) { return open(ctx, o, e) },
	}
}

// config maps the options onto lib/nova's configuration.
func config(o *fence.Options, getenv func(string) string) nova.Config {
	cfg := nova.Config{
		AuthURL:                     o.String(paramAuthURL),
		Username:                    o.String(fence.ParamUsername),
		Password:                    o.Password(),
		ProjectName:                 o.String(paramTenant),
		ApplicationCredentialID:     o.String(paramAppCredID),
		ApplicationCredentialName:   o.String(paramAppCredName),
		ApplicationCredentialSecret: o.String(paramAppCredSecret),
		RegionName:                  o.String(paramRegion),
		Cloud:                       o.String(paramCloud),
		CloudsFile:                  o.String(paramCloudsYAML),
		CACertFile:                  o.String(paramCACert),
		Insecure:                    o.Bool(paramInsecure),
		Logger:                      o.Log(),
		Getenv:                      getenv,
	}
	// The defaults (internalURL, Default) must not override a clouds.yaml entry.
	fromCloud := cfg.Cloud != "" || getenv("OS_CLOUD") != ""
	if !fromCloud || o.IsSet(paramEndpointType) {
		cfg.Interface = o.String(paramEndpointType)
	}
	if !fromCloud || o.IsSet(paramUserDomain) {
		cfg.UserDomainName = o.String(paramUserDomain)
	}
	if !fromCloud || o.IsSet(paramProjectDomain) {
		cfg.ProjectDomainName = o.String(paramProjectDomain)
	}
	return cfg
}

// domain is the domain option, or compute_domain, its old name.
func domain(o *fence.Options) string {
	if d := o.String(paramDomain); d != "" {
		return d
	}
	return o.String(paramComputeDomain)
}

func validate(o *fence.Options, getenv func(string) string) error {
	cfg := config(o, getenv)
	// password_script is run after validation; the direct password is checked here.
	cfg.Password = o.String(fence.ParamPassword)
	if err := cfg.Validate(); err != nil {
		return err
	}
	fromCloud := cfg.Cloud != "" || getenv("OS_CLOUD") != ""
	appCred := cfg.ApplicationCredentialID != "" || cfg.ApplicationCredentialName != ""
	if !fromCloud && !appCred && cfg.Password == "" && o.String(fence.ParamPasswordScript) == "" {
		return errors.New("no password: set password, password_script, an application credential, or cloud")
	}
	if cfg.Insecure && cfg.CACertFile != "" {
		return fmt.Errorf("%s and %s contradict each other", paramInsecure, paramCACert)
	}
	return nil
}

func open(ctx context.Context, o *fence.Options, e env) (fence.Device, error) {
	cfg := config(o, e.getenv)
	if o.Bool(paramTokenCache) && e.tokenCacheDir != nil {
		cfg.TokenCacheDir = e.tokenCacheDir()
		// monitor must find out whether Keystone answers.
		cfg.FreshToken = o.Action() == "monitor"
	}
	c, err := e.dial(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &device{api: c, close: c.Close, attrd: e.attrd(o.Log()), domain: domain(o), now: e.now, log: o.Log(), hosts: map[string]string{}}, nil
}

func main() { agent(defaultEnv()).Main() }
