// Package virt controls the power of libvirt domains through libvirt's own client
// library (the official Go binding, libvirt.org/go/libvirt), for fencing.
//
// Built with the libvirt_dlopen tag (as make does), a program that imports this package
// needs neither libvirt's headers to build nor libvirt.so.0 to start: the library is
// loaded when the program starts and used when it connects, and Dial fails with
// ErrNoLibrary when it is missing.
//
// libvirt's C calls block, some of them indefinitely (a hypervisor that stopped
// answering, an SSH connection to a host that is gone). Every method therefore runs its
// libvirt calls on their own goroutine and returns at its context's deadline whether they
// finished or not; an abandoned call finishes in the background, and its connection is
// not used again. libvirt's keepalive is turned on so that a dead connection is also
// noticed by libvirt itself.
package virt

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/novaha/novaha/lib/virt/virturi"
)

// Defaults of Config.
const (
	// DefaultURI is the local system QEMU/KVM hypervisor.
	DefaultURI = virturi.DefaultURI
	// DefaultKeepAliveInterval and DefaultKeepAliveCount make libvirt declare a
	// connection dead after about 8 s without an answer from the daemon.
	DefaultKeepAliveInterval = 2 * time.Second
	DefaultKeepAliveCount    = 3
)

// ErrInvalidConfig is wrapped by every error of Config.Validate. It is virturi.ErrInvalid:
// the URI checks live in package virturi, which programs that only validate settings
// use without linking libvirt.
var ErrInvalidConfig = virturi.ErrInvalid

// Config says how to reach one libvirt hypervisor. Validate checks it; Dial applies the
// defaults.
//
// The password never appears in an error, in a log record, in the connection URI, or
// when a Config is printed with any fmt verb or logged with slog: libvirt receives it
// through its authentication callback only.
type Config struct {
	// URI is the libvirt connection URI: qemu:///system, qemu+ssh://root@host/system,
	// qemu+tls://host/system, test+unix:///default, ... or an alias defined in
	// libvirt.conf (uri_aliases). Empty means DefaultURI. A password in the URI is
	// refused: give it as Password.
	URI string
	// Username answers libvirt's requests for a user name (SASL's authentication
	// name, for instance). Empty leaves them unanswered, so that libvirt uses the user
	// named in the URI, or none.
	Username string
	// Password answers libvirt's requests for a password or passphrase: SASL, SSH
	// password login and SSH key passphrases over the libssh transports. Empty leaves
	// them unanswered: libvirt never prompts on a terminal.
	Password string `json:"-"`
	// ReadOnly opens a read-only connection, which is enough to read domain states and
	// list domains.
	ReadOnly bool
	// KeepAliveInterval and KeepAliveCount set libvirt's keepalive: the connection is
	// closed when KeepAliveCount probes sent every KeepAliveInterval go unanswered.
	// Zero means the defaults; a negative interval turns keepalive off.
	KeepAliveInterval time.Duration
	KeepAliveCount    uint
	// Destroyed, when set, is where Destroy records the domains it shut off, so that
	// a transient domain (which libvirt forgets once it stops) still reads as shut off
	// afterwards, also through another Client given the same set. Nil: each Client
	// keeps its own.
	Destroyed *DestroyedSet
	// Logger receives debug records (URI, calls, timings), never the password; nil
	// discards them.
	Logger *slog.Logger
}

// Validate checks the configuration without connecting, and returns the first problem,
// wrapping ErrInvalidConfig.
func (c Config) Validate() error {
	if c.URI != "" {
		if err := virturi.Check(c.URI); err != nil {
			return err
		}
	}
	if err := virturi.CheckUser(c.Username); err != nil {
		return err
	}
	if c.KeepAliveInterval > 0 && c.KeepAliveInterval < time.Second {
		return fmt.Errorf("%w: keepalive interval %v is shorter than libvirt's unit, a second", ErrInvalidConfig, c.KeepAliveInterval)
	}
	return nil
}

// withDefaults fills the zero values; c must be valid.
func (c Config) withDefaults() Config {
	if c.URI == "" {
		c.URI = DefaultURI
	}
	if c.KeepAliveInterval == 0 {
		c.KeepAliveInterval = DefaultKeepAliveInterval
	}
	if c.KeepAliveCount == 0 {
		c.KeepAliveCount = DefaultKeepAliveCount
	}
	if c.Destroyed == nil {
		c.Destroyed = &DestroyedSet{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

func redacted(secret string) string {
	if secret == "" {
		return `""`
	}
	return "<redacted>"
}

// String describes the configuration with its password redacted.
func (c Config) String() string {
	return fmt.Sprintf("virt.Config{URI:%q Username:%q Password:%s ReadOnly:%t KeepAliveInterval:%v KeepAliveCount:%d}",
		c.URI, c.Username, redacted(c.Password), c.ReadOnly, c.KeepAliveInterval, c.KeepAliveCount)
}

// Format prints String for every verb, so that no verb (%d, %#v, ...) can print the
// password field by field.
func (c Config) Format(f fmt.State, verb rune) { _, _ = f.Write([]byte(c.String())) }

// LogValue logs the configuration with its password redacted.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("uri", c.URI), slog.String("username", c.Username),
		slog.String("password", redacted(c.Password)), slog.Bool("read_only", c.ReadOnly),
		slog.Duration("keepalive_interval", c.KeepAliveInterval), slog.Uint64("keepalive_count", uint64(c.KeepAliveCount)))
}
