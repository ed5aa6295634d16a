// Package novaconn declares, once, the parameters with which novaha's OCF agents
// (NovaCompute, NovaEvacuate) reach Keystone and Nova, and turns them into a
// nova.Config. The names, defaults and meanings are fence_nova's (and so
// fence_compute's): auth_url, username (alias login), password (alias passwd),
// password_script, tenant_name (alias project_name), user_domain, project_domain,
// region_name, endpoint_type, insecure, cacert, cloud, clouds_yaml, the application
// credential, token_cache.
//
// An agent uses it in three places:
//
//	Params: append(novaconn.Params(), ...the agent's own...),
//	Validate: func(ctx context.Context, r *ocf.Request) error { return novaconn.Validate(r, os.Getenv) },
//	handler:  cfg, err := novaconn.Resolve(ctx, r, novaconn.Env{Getenv: os.Getenv, TokenCacheDir: novaconn.TokenCacheDir(os.Geteuid(), os.Getenv)})
//
// Resolve is Config plus password_script, which it runs; Config alone runs nothing.
//
// Params returns the table as ocf.Param; Table returns it neutrally, for a check that
// fence_nova's own declaration (with its getopt letters) agrees with it.
package novaconn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/novaha/novaha/lib/nova"
	"github.com/novaha/novaha/lib/ocf"
)

// Parameter names of the Nova connection.
const (
	AuthURL        = "auth_url"
	Username       = "username"
	Password       = "password"
	PasswordScript = "password_script"
	Tenant         = "tenant_name"
	UserDomain     = "user_domain"
	ProjectDomain  = "project_domain"
	Region         = "region_name"
	EndpointType   = "endpoint_type"
	Insecure       = "insecure"
	CACert         = "cacert"
	Cloud          = "cloud"
	CloudsYAML     = "clouds_yaml"
	AppCredID      = "application_credential_id"
	AppCredName    = "application_credential_name"
	AppCredSecret  = "application_credential_secret"
	TokenCache     = "token_cache"

	// Domain is not a connection parameter but the same concept in every agent: the
	// DNS domain that maps the cluster's host names onto Nova's. compute_domain is
	// its old name.
	Domain = "domain"
)

// DefaultEndpointType is endpoint_type's default, fence_compute's.
const DefaultEndpointType = "internalURL"

// Param is one connection parameter, independent of the agent framework.
type Param struct {
	Name string
	// Aliases are older names accepted too.
	Aliases []string
	// Boolean parameters take 1/yes/true/on or 0/no/false/off; the others are strings.
	Boolean bool
	// Default is the value when the parameter is not set ("" for none).
	Default string
	// Secret values are never logged nor given a default.
	Secret bool
	// Desc is a one-line description.
	Desc string
}

// Table is the connection parameters, in the order they are documented. It returns a
// new slice on every call: callers may change it.
func Table() []Param {
	return []Param{
		{Name: AuthURL, Desc: "Keystone Admin Auth URL (http(s)://host:5000/v3)"},
		{Name: Username, Aliases: []string{"login"}, Desc: "Keystone user name"},
		{Name: Password, Aliases: []string{"passwd"}, Secret: true, Desc: "Keystone password"},
		{Name: PasswordScript, Aliases: []string{"passwd_script"},
			Desc: "Command run by /bin/sh whose standard output is the password (keeps it out of the CIB)"},
		{Name: Tenant, Aliases: []string{"project_name"}, Desc: "Keystone v3 Project Name (tenant)"},
		{Name: UserDomain, Default: nova.DefaultDomain, Desc: "Keystone v3 User Domain"},
		{Name: ProjectDomain, Default: nova.DefaultDomain, Desc: "Keystone v3 Project Domain"},
		{Name: Region, Desc: "Region Name"},
		{Name: EndpointType, Default: DefaultEndpointType, Desc: "Nova Endpoint type (publicURL, internalURL, adminURL)"},
		{Name: Insecure, Boolean: true, Default: "0", Desc: "Do not verify TLS certificates (insecure=0 keeps verification on)"},
		{Name: CACert, Desc: "PEM bundle of the CAs that sign Keystone's and Nova's certificates (default: the system's)"},
		{Name: Cloud, Desc: "Entry of clouds.yaml (and secure.yaml) to use; OS_CLOUD when unset. Parameters given explicitly override it"},
		{Name: CloudsYAML, Desc: "clouds.yaml to read (default: OS_CLIENT_CONFIG_FILE, ./, ~/.config/openstack/, /etc/openstack/)"},
		{Name: AppCredID, Desc: "Keystone application credential ID (instead of username and password)"},
		{Name: AppCredName, Desc: "Keystone application credential name (with username)"},
		{Name: AppCredSecret, Secret: true, Desc: "Keystone application credential secret"},
		{Name: TokenCache, Boolean: true, Default: "1",
			Desc: "Keep the Keystone token between runs, in " + nova.DefaultTokenCacheDir + " (root only, 0600): each run then saves Keystone's password check"},
	}
}

// Params is Table as OCF parameters.
func Params() []ocf.Param {
	t := Table()
	ps := make([]ocf.Param, 0, len(t))
	for _, p := range t {
		typ := ocf.String
		if p.Boolean {
			typ = ocf.Boolean
		}
		ps = append(ps, ocf.Param{Name: p.Name, Aliases: p.Aliases, Type: typ, Default: p.Default,
			Secret: p.Secret, ShortDesc: p.Desc})
	}
	return ps
}

// DomainParam is the domain parameter, with compute_domain as its old name.
func DomainParam() ocf.Param {
	return ocf.Param{Name: Domain, Aliases: []string{"compute_domain"}, Type: ocf.String,
		ShortDesc: "DNS domain in which hosts live, useful when the cluster uses short names and nova uses FQDN"}
}

// Env is what Config reads outside the request.
type Env struct {
	// Getenv reads OS_CLOUD (and clouds.yaml's variables); nil means os.Getenv.
	Getenv func(string) string
	// TokenCacheDir is where Keystone tokens are kept when token_cache is on; ""
	// keeps none. See TokenCacheDir.
	TokenCacheDir string
}

// Config builds the nova.Config the request's parameters describe. Defaults of
// endpoint_type, user_domain and project_domain do not override a clouds.yaml entry
// (cloud or OS_CLOUD): only values set explicitly do.
func Config(r *ocf.Request, e Env) nova.Config {
	getenv := e.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	cfg := nova.Config{
		AuthURL:                     r.String(AuthURL),
		Username:                    r.String(Username),
		Password:                    r.String(Password),
		ProjectName:                 r.String(Tenant),
		ApplicationCredentialID:     r.String(AppCredID),
		ApplicationCredentialName:   r.String(AppCredName),
		ApplicationCredentialSecret: r.String(AppCredSecret),
		RegionName:                  r.String(Region),
		Cloud:                       r.String(Cloud),
		CloudsFile:                  r.String(CloudsYAML),
		CACertFile:                  r.String(CACert),
		Insecure:                    r.Bool(Insecure),
		Logger:                      r.Log(),
		Getenv:                      getenv,
	}
	fromCloud := cfg.Cloud != "" || getenv("OS_CLOUD") != ""
	if !fromCloud || r.IsSet(EndpointType) {
		cfg.Interface = r.String(EndpointType)
	}
	if !fromCloud || r.IsSet(UserDomain) {
		cfg.UserDomainName = r.String(UserDomain)
	}
	if !fromCloud || r.IsSet(ProjectDomain) {
		cfg.ProjectDomainName = r.String(ProjectDomain)
	}
	if r.Bool(TokenCache) {
		cfg.TokenCacheDir = e.TokenCacheDir
	}
	return cfg
}

// passwordScriptTimeout bounds password_script.
const passwordScriptTimeout = 30 * time.Second

// Resolve is Config with the password from password_script when that is set and
// password is not. The script's output is the secret: it is never logged, and a
// failure is reported without it.
func Resolve(ctx context.Context, r *ocf.Request, e Env) (nova.Config, error) {
	cfg := Config(r, e)
	script := r.String(PasswordScript)
	if script == "" || cfg.Password != "" {
		return cfg, nil
	}
	sctx, cancel := context.WithTimeout(ctx, passwordScriptTimeout)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(sctx, "/bin/sh", "-c", script)
	cmd.Stdout, cmd.Stderr = &out, io.Discard
	// The script may leave children holding stdout: end its whole process group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		if sctx.Err() != nil {
			return cfg, fmt.Errorf("%s did not finish in time", PasswordScript)
		}
		return cfg, fmt.Errorf("%s failed: %v", PasswordScript, err)
	}
	cfg.Password = strings.TrimRight(out.String(), "\r\n")
	if cfg.Password == "" {
		return cfg, fmt.Errorf("%s printed no password", PasswordScript)
	}
	return cfg, nil
}

// Validate checks the connection parameters offline: what nova.Config.Validate
// checks, that some credential is given, and that insecure and cacert do not
// contradict each other.
func Validate(r *ocf.Request, getenv func(string) string) error {
	if getenv == nil {
		getenv = os.Getenv
	}
	cfg := Config(r, Env{Getenv: getenv})
	if err := cfg.Validate(); err != nil {
		return err
	}
	fromCloud := cfg.Cloud != "" || getenv("OS_CLOUD") != ""
	appCred := cfg.ApplicationCredentialID != "" || cfg.ApplicationCredentialName != ""
	if !fromCloud && !appCred && cfg.Password == "" && r.String(PasswordScript) == "" {
		return errors.New("no password: set password, password_script, an application credential, or cloud")
	}
	if cfg.Insecure && cfg.CACertFile != "" {
		return fmt.Errorf("%s and %s contradict each other", Insecure, CACert)
	}
	return nil
}

// TokenCacheDir is where an agent running with effective user euid keeps Keystone
// tokens: nova.DefaultTokenCacheDir for root, else $XDG_RUNTIME_DIR/novaha/tokens, else
// nowhere ("").
func TokenCacheDir(euid int, getenv func(string) string) string {
	if euid == 0 {
		return nova.DefaultTokenCacheDir
	}
	if getenv == nil {
		getenv = os.Getenv
	}
	if d := getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "novaha", "tokens")
	}
	return ""
}
