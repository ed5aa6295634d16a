package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/novaha/novaha/lib/evacuation"
	"github.com/novaha/novaha/lib/nova"
	"github.com/novaha/novaha/lib/novaconn"
	"github.com/novaha/novaha/lib/ocf"
)

// childConfig is everything the controller process needs, sent by start through an
// inherited pipe: secrets never go through argv or the environment.
type childConfig struct {
	Instance string   `json:"instance"`
	Paths    paths    `json:"paths"`
	Verbose  bool     `json:"verbose"`
	Nova     novaConn `json:"nova"`
	Settings settings `json:"settings"`
}

// novaConn is nova.Config's serializable part, secrets included (nova.Config keeps
// them out of JSON on purpose).
type novaConn struct {
	AuthURL, Username, Password, UserDomainName, ProjectName, ProjectDomainName     string
	ApplicationCredentialID, ApplicationCredentialName, ApplicationCredentialSecret string
	RegionName, Interface, Cloud, CloudsFile, CACertFile, TokenCacheDir             string
	Insecure, OnSharedStorage                                                       bool
}

func connOf(c nova.Config) novaConn {
	return novaConn{AuthURL: c.AuthURL, Username: c.Username, Password: c.Password, UserDomainName: c.UserDomainName,
		ProjectName: c.ProjectName, ProjectDomainName: c.ProjectDomainName, ApplicationCredentialID: c.ApplicationCredentialID,
		ApplicationCredentialName: c.ApplicationCredentialName, ApplicationCredentialSecret: c.ApplicationCredentialSecret,
		RegionName: c.RegionName, Interface: c.Interface, Cloud: c.Cloud, CloudsFile: c.CloudsFile, CACertFile: c.CACertFile,
		TokenCacheDir: c.TokenCacheDir, Insecure: c.Insecure, OnSharedStorage: c.OnSharedStorage}
}

func (n novaConn) config() nova.Config {
	return nova.Config{AuthURL: n.AuthURL, Username: n.Username, Password: n.Password, UserDomainName: n.UserDomainName,
		ProjectName: n.ProjectName, ProjectDomainName: n.ProjectDomainName, ApplicationCredentialID: n.ApplicationCredentialID,
		ApplicationCredentialName: n.ApplicationCredentialName, ApplicationCredentialSecret: n.ApplicationCredentialSecret,
		RegionName: n.RegionName, Interface: n.Interface, Cloud: n.Cloud, CloudsFile: n.CloudsFile, CACertFile: n.CACertFile,
		TokenCacheDir: n.TokenCacheDir, Insecure: n.Insecure, OnSharedStorage: n.OnSharedStorage}
}

// String keeps the secrets out of any printed childConfig.
func (n novaConn) String() string { return n.config().String() }

// settings are the controller's own parameters, mapped onto evacuation.Config.
type settings struct {
	Select           evacuation.Selection `json:"select"`
	IncludeError     bool                 `json:"include_error"`
	Stopped          bool                 `json:"stopped"`
	PriorityKey      string               `json:"priority_key"`
	TargetHosts      []string             `json:"target_hosts"`
	Delay            time.Duration        `json:"delay"`
	MaxInFlight      int                  `json:"max_in_flight"`
	PerDestination   int                  `json:"per_destination"`
	MaxFencedPercent int                  `json:"max_fenced_percent"`
	RetryTimeout     time.Duration        `json:"retry_timeout"`
	Interval         time.Duration        `json:"interval"`
	Stock            bool                 `json:"stock"`
}

func settingsOf(r *ocf.Request) settings {
	return settings{
		Select:           evacuation.Selection(strings.ToLower(strings.TrimSpace(r.String(paramSelection)))),
		IncludeError:     r.Bool(paramIncludeError),
		Stopped:          r.Bool(paramStopped),
		PriorityKey:      r.String(paramPriorityKey),
		TargetHosts:      splitHosts(r.String(paramTargetHosts)),
		Delay:            r.Duration(paramDelay),
		MaxInFlight:      r.Int(paramMaxInFlight),
		PerDestination:   r.Int(paramPerDestination),
		MaxFencedPercent: r.Int(paramMaxFenced),
		RetryTimeout:     r.Duration(paramRetryTimeout),
		Interval:         r.Duration(paramInterval),
		Stock:            r.Bool(paramStock),
	}
}

// config is the controller's configuration; Nova, Stock, Log and the status file are
// the caller's.
func (s settings) config() evacuation.Config {
	return evacuation.Config{
		Interval: s.Interval, Select: s.Select, IncludeError: s.IncludeError, Stopped: s.Stopped, PriorityKey: s.PriorityKey,
		TargetHosts: s.TargetHosts, Delay: s.Delay, PerDestination: s.PerDestination, MaxInFlight: s.MaxInFlight,
		MaxFencedPercent: s.MaxFencedPercent, RetryTimeout: s.RetryTimeout,
	}
}

// novaConfig is the Nova connection the request describes, with the password from
// password_script when that is how it is given.
func novaConfig(ctx context.Context, r *ocf.Request, e env) (nova.Config, error) {
	cfg, err := novaconn.Resolve(ctx, r, novaconn.Env{Getenv: e.getenv, TokenCacheDir: novaconn.TokenCacheDir(e.euid(), e.getenv)})
	cfg.OnSharedStorage = !r.Bool(paramNoSharedStorage)
	return cfg, err
}

// validate checks the parameters offline, each by its name.
func validate(r *ocf.Request, e env) error {
	if err := novaconn.Validate(r, e.getenv); err != nil {
		return err
	}
	s := settingsOf(r)
	switch s.Select {
	case evacuation.SelectAll, evacuation.SelectTagged, evacuation.SelectHAEnabled:
	default:
		return fmt.Errorf("%s %q is none of %s, %s, %s", paramSelection, r.String(paramSelection),
			evacuation.SelectTagged, evacuation.SelectHAEnabled, evacuation.SelectAll)
	}
	for _, p := range []struct {
		name string
		v    int
	}{{paramMaxInFlight, s.MaxInFlight}, {paramPerDestination, s.PerDestination}} {
		if p.v < 1 {
			return fmt.Errorf("%s %d: want at least 1", p.name, p.v)
		}
	}
	if s.MaxFencedPercent < 1 || s.MaxFencedPercent > 100 {
		return fmt.Errorf("%s %d: want a percentage from 1 to 100", paramMaxFenced, s.MaxFencedPercent)
	}
	if s.Interval <= 0 {
		return fmt.Errorf("%s must be more than 0", paramInterval)
	}
	if strings.TrimSpace(s.PriorityKey) == "" {
		return fmt.Errorf("%s is blank", paramPriorityKey)
	}
	if d := r.String(paramStateDir); d != "" && !filepath.IsAbs(d) {
		return fmt.Errorf("%s %q: not an absolute path", paramStateDir, d)
	}
	// The controller's own checks, as a backstop; a typed nil stands for the client.
	cfg := s.config()
	cfg.Nova = (*nova.Client)(nil)
	if err := cfg.Validate(); err != nil {
		return errors.New(strings.Join(strings.Fields(err.Error()), " "))
	}
	return nil
}
