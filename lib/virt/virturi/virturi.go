// Package virturi builds and checks libvirt connection URIs, offline and without
// libvirt: a program that only validates its settings (a fence agent's validate-all)
// uses it without linking the libvirt binding, whose initialisation loads libvirt.so.0.
// Package virt, the client, checks its Config with the same functions.
package virturi

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// DefaultURI is the local system QEMU/KVM hypervisor.
const DefaultURI = "qemu:///system"

// ErrInvalid is wrapped by every error of Check, CheckUser and SSH.URI (and is
// virt.ErrInvalidConfig).
var ErrInvalid = errors.New("invalid libvirt configuration")

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

// Check checks that uri is a libvirt URI ("driver[+transport]://[user@][host][:port]/
// [path][?params]") or the name of a URI alias, without connecting. Its errors never
// quote a password found in the URI.
func Check(uri string) error {
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
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// CheckUser checks a user name given to libvirt's authentication (SASL, SSH password
// login): it cannot contain control characters.
func CheckUser(name string) error {
	if strings.ContainsFunc(name, isControl) {
		return invalid("user name contains control characters")
	}
	return nil
}
