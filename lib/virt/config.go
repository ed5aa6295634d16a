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
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Defaults of Config.
const (
	// DefaultURI is the local system QEMU/KVM hypervisor.
	DefaultURI = "qemu:///system"
	// DefaultKeepAliveInterval and DefaultKeepAliveCount make libvirt declare a
	// connection dead after about 8 s without an answer from the daemon.
	DefaultKeepAliveInterval = 2 * time.Second
	DefaultKeepAliveCount    = 3
)

// ErrInvalidConfig is wrapped by every error of Config.Validate and SSH.URI.
var ErrInvalidConfig = errors.New("invalid libvirt configuration")

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
		if err := CheckURI(c.URI); err != nil {
			return err
		}
	}
	if strings.ContainsFunc(c.Username, isControl) {
		return invalid("user name contains control characters")
	}
	if c.KeepAliveInterval > 0 && c.KeepAliveInterval < time.Second {
		return invalid("keepalive interval %v is shorter than libvirt's unit, a second", c.KeepAliveInterval)
	}
	return nil
}

// uriScheme is a libvirt URI scheme: a driver, optionally with a transport.
var uriScheme = regexp.MustCompile(`^[a-z][a-z0-9]*(\+[a-z][a-z0-9]*)?$`)

// uriAlias is what libvirt accepts as the name of an alias in libvirt.conf.
var uriAlias = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// userinfoPassword finds "user:password@" after "//".
var userinfoPassword = regexp.MustCompile(`//([^/@]*):[^/@]*@`)

// quoteURI quotes uri for a message, without a password it may contain.
func quoteURI(uri string) string {
	return strconv.Quote(userinfoPassword.ReplaceAllString(uri, "//$1:<redacted>@"))
}

// CheckURI checks that uri is a libvirt URI ("driver[+transport]://[user@][host][:port]/
// [path][?params]") or the name of a URI alias, without connecting. Its errors never
// quote a password found in the URI.
func CheckURI(uri string) error {
	if uri == "" {
		return invalid("URI is empty")
	}
	if strings.ContainsFunc(uri, func(r rune) bool { return isControl(r) || r == ' ' }) {
		return invalid("URI contains spaces or control characters")
	}
	if !strings.Contains(uri, ":") {
		if !uriAlias.MatchString(uri) {
			return invalid("URI %s is neither a URI (driver://host/path) nor an alias name", quoteURI(uri))
		}
		return nil
	}
	// libvirt's drivers match the scheme case-sensitively; url.Parse would lower it.
	if scheme, _, _ := strings.Cut(uri, ":"); !uriScheme.MatchString(scheme) {
		return invalid("URI %s does not start with a libvirt driver (qemu://, qemu+ssh://, test://, ...)", quoteURI(uri))
	}
	u, err := url.Parse(uri)
	if err != nil {
		// url's errors quote the whole URI, password included: say less.
		return invalid("URI is not a valid URI")
	}
	if _, hasPassword := u.User.Password(); hasPassword {
		return invalid("URI contains a password: give it as the password (or password_script) instead")
	}
	if u.Opaque != "" {
		return invalid("URI %s lacks the // after %s: (for instance qemu:///system)", quoteURI(uri), u.Scheme)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return invalid("URI %s has an invalid port", quoteURI(uri))
		}
	}
	return nil
}

// SSH describes a connection to a remote hypervisor's system QEMU driver over SSH, as
// fence_virsh users configure one: a host, a port, a login, a key.
type SSH struct {
	Host string // host name or IP address (IPv6 with or without brackets)
	Port int    // 0: SSH's own (22, or what ssh_config says)
	User string // empty: SSH's own choice (the local login name, or ssh_config)
	// KeyFile is the private key (identity file); empty: SSH's defaults and agent.
	KeyFile string
	// Command is the ssh binary for the ssh transport; empty: ssh from PATH.
	Command string
	// Libssh selects libvirt's built-in SSH client (the qemu+libssh transport) instead
	// of the ssh command. It is the one that can log in with a password or unlock an
	// encrypted key: libvirt asks for both through its authentication callback. The
	// host key is checked against KnownHosts.
	Libssh bool
	// KnownHosts is the known_hosts file for Libssh; empty means ~/.ssh/known_hosts of
	// the user running the program (libssh's own default would be libvirt's
	// ~/.config/libvirt/known_hosts, which SSH users do not maintain).
	KnownHosts string
}

// URI returns the libvirt URI of the connection: qemu+ssh://user@host:port/system
// (with no_tty=1, so that ssh never waits for a password on a terminal), or
// qemu+libssh://... with Libssh.
func (s SSH) URI() (string, error) {
	host := strings.TrimSuffix(strings.TrimPrefix(s.Host, "["), "]")
	if err := validHost(host); err != nil {
		return "", err
	}
	if s.Port < 0 || s.Port > 65535 {
		return "", invalid("SSH port %d is out of range (1-65535)", s.Port)
	}
	if strings.ContainsFunc(s.User, func(r rune) bool { return isControl(r) || r == ' ' || r == '@' || r == '/' || r == ':' }) {
		return "", invalid("SSH user name %q contains characters a login name cannot have", s.User)
	}
	u := url.URL{Scheme: "qemu+ssh", Host: host, Path: "/system"}
	if strings.Contains(host, ":") {
		u.Host = "[" + host + "]"
	}
	if s.Port != 0 {
		u.Host = net.JoinHostPort(host, strconv.Itoa(s.Port))
	}
	if s.User != "" {
		u.User = url.User(s.User)
	}
	q := url.Values{}
	if s.KeyFile != "" {
		q.Set("keyfile", s.KeyFile)
	}
	if s.Libssh {
		u.Scheme = "qemu+libssh"
		kh := s.KnownHosts
		if kh == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return "", invalid("no known_hosts file for libssh: %v", err)
			}
			kh = filepath.Join(home, ".ssh", "known_hosts")
		}
		q.Set("known_hosts", kh)
		// Unknown or changed host keys are refused, never accepted on first use.
		q.Set("known_hosts_verify", "normal")
	} else {
		q.Set("no_tty", "1")
		if s.Command != "" {
			q.Set("command", s.Command)
		}
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// validHost accepts an IP address or a host name.
func validHost(h string) error {
	if h == "" {
		return invalid("host is empty")
	}
	if net.ParseIP(h) != nil {
		return nil
	}
	if len(h) > 253 {
		return invalid("host name is longer than 253 bytes")
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 {
			return invalid("host %q is not an IP address or a valid host name", h)
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return invalid("host %q is not an IP address or a valid host name", h)
			}
		}
	}
	return nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

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
