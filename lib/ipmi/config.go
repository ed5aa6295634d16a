package ipmi

import (
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"
)

// Defaults of Config.
const (
	DefaultPort    = 623
	DefaultTimeout = time.Second // per request, as ipmitool's lanplus interface
	DefaultRetries = 4           // as ipmitool: 5 attempts in all

	// CipherSuiteAuto lets Dial try cipher suite 17 (HMAC-SHA256, AES) and then 3
	// (HMAC-SHA1, AES), the suites a BMC is most likely to have.
	CipherSuiteAuto = -1
	// NoRetries makes every request a single attempt.
	NoRetries = -1

	maxUsername   = 16 // IPMI user names are at most 16 bytes
	maxPassword20 = 20 // IPMI 2.0 passwords are at most 20 bytes,
	maxPassword15 = 16 // IPMI 1.5 ones 16
	maxKg         = 20 // the BMC key is 160 bits
	maxCipher     = 17
)

// ErrInvalidConfig is wrapped by every error of Config.Validate.
var ErrInvalidConfig = errors.New("invalid IPMI configuration")

// Config describes how to reach one BMC. Validate checks it; Dial applies the defaults.
//
// The secrets (Password, KgHex) never appear in errors, in log lines, or when a Config
// is printed with any fmt verb or logged with slog.
type Config struct {
	// Host is the BMC's IP address or host name.
	Host string
	// Port is the BMC's UDP port; 0 means DefaultPort (623).
	Port int
	// Username may be empty for the anonymous user; at most 16 bytes.
	Username string
	// Password is at most 20 bytes (16 with IPMI 1.5).
	Password string `json:"-"`
	// Lanplus selects IPMI 2.0 (RMCP+); false selects IPMI 1.5, which authenticates
	// with MD5 at best and does not encrypt.
	Lanplus bool
	// CipherSuite is the RMCP+ cipher suite, 1 to 17 (3 and 17 are the usual ones), or
	// CipherSuiteAuto. Suite 0 (no authentication at all) is refused. Ignored for IPMI 1.5.
	CipherSuite int
	// Privilege is the session privilege level: "callback", "user", "operator" or
	// "administrator" (any case; "admin" too); empty means administrator. Power
	// control needs operator.
	Privilege string
	// KgHex is the BMC key (Kg) for IPMI 2.0 two-key logins, in hexadecimal, up to 20
	// bytes; empty for the usual one-key logins, where the password serves as the key.
	KgHex string `json:"-"`
	// AuthType is the IPMI 1.5 authentication type fence_ipmilan accepts: "md5",
	// "md2", "password" or "none". The library always uses the strongest type the BMC
	// offers (MD5 first), so this is only checked for validity.
	AuthType string
	// Timeout bounds one request/response exchange (the login takes several); 0 means
	// DefaultTimeout. A request that gets no answer is sent again, Retries times.
	// Every call is also bounded by its context's deadline, whichever ends first.
	Timeout time.Duration
	// Retries is how often an unanswered request is repeated; 0 means DefaultRetries,
	// NoRetries means none.
	Retries int
	// Logger receives debug records (requests, timings, errors), never secrets; nil
	// discards them. Nothing is ever written to stdout.
	Logger *slog.Logger
}

// Validate checks the configuration without any network access and returns the first
// problem, wrapping ErrInvalidConfig.
func (c Config) Validate() error {
	if err := validHost(c.Host); err != nil {
		return err
	}
	if c.Port < 0 || c.Port > 65535 {
		return invalid("port %d is out of range (1-65535, 0 for %d)", c.Port, DefaultPort)
	}
	if len(c.Username) > maxUsername {
		return invalid("user name is %d bytes long, IPMI allows %d", len(c.Username), maxUsername)
	}
	if strings.ContainsFunc(c.Username, isControl) {
		return invalid("user name contains control characters")
	}
	maxPw := maxPassword20
	if !c.Lanplus {
		maxPw = maxPassword15
	}
	if len(c.Password) > maxPw {
		return invalid("password is longer than %d bytes, the IPMI %s maximum", maxPw, c.version())
	}
	if c.Lanplus {
		switch {
		case c.CipherSuite == 0:
			return invalid("cipher suite 0 (no authentication) is refused: anyone on the network could power the host off; use 3 or 17, or %d to negotiate", CipherSuiteAuto)
		case c.CipherSuite != CipherSuiteAuto && (c.CipherSuite < 1 || c.CipherSuite > maxCipher):
			return invalid("cipher suite %d is not valid: want 1 to %d, or %d to negotiate", c.CipherSuite, maxCipher, CipherSuiteAuto)
		}
	}
	if _, err := parsePrivilege(c.Privilege); err != nil {
		return err
	}
	if c.KgHex != "" {
		if !c.Lanplus {
			return invalid("a BMC key (Kg) needs IPMI 2.0 (lanplus)")
		}
		if _, err := decodeKg(c.KgHex); err != nil {
			return err
		}
	}
	switch strings.ToLower(c.AuthType) {
	case "", "md5", "md2", "password", "none":
	default:
		return invalid("authentication type %q is not valid: want md5, md2, password or none", c.AuthType)
	}
	if c.Timeout < 0 {
		return invalid("timeout %v is negative", c.Timeout)
	}
	if c.Retries < NoRetries {
		return invalid("retries %d is not valid (0 for %d, %d for none)", c.Retries, DefaultRetries, NoRetries)
	}
	return nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// validHost accepts an IP address (IPv6 with or without brackets) or a host name.
func validHost(h string) error {
	if h == "" {
		return invalid("host is empty")
	}
	if ip := net.ParseIP(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")); ip != nil {
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

// privilegeLevel mirrors go-ipmi's types.PrivilegeLevel values (IPMI table 6-1).
type privilegeLevel uint8

const (
	privCallback      privilegeLevel = 1
	privUser          privilegeLevel = 2
	privOperator      privilegeLevel = 3
	privAdministrator privilegeLevel = 4
)

func (p privilegeLevel) String() string {
	switch p {
	case privCallback:
		return "callback"
	case privUser:
		return "user"
	case privOperator:
		return "operator"
	}
	return "administrator"
}

func parsePrivilege(s string) (privilegeLevel, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "administrator", "admin":
		return privAdministrator, nil
	case "operator":
		return privOperator, nil
	case "user":
		return privUser, nil
	case "callback":
		return privCallback, nil
	}
	return 0, invalid("privilege level %q is not valid: want callback, user, operator or administrator", s)
}

// decodeKg never quotes the key in its errors.
func decodeKg(s string) ([]byte, error) {
	k, err := hex.DecodeString(strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X"))
	if err != nil {
		return nil, invalid("the BMC key (Kg) is not valid hexadecimal (an even number of 0-9, a-f digits)")
	}
	if len(k) > maxKg {
		return nil, invalid("the BMC key (Kg) is %d bytes long, at most %d are allowed", len(k), maxKg)
	}
	return k, nil
}

func (c Config) version() string {
	if c.Lanplus {
		return "2.0"
	}
	return "1.5"
}

// withDefaults fills the zero values; c must be valid.
func (c Config) withDefaults() Config {
	if c.Port == 0 {
		c.Port = DefaultPort
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	switch c.Retries {
	case 0:
		c.Retries = DefaultRetries
	case NoRetries:
		c.Retries = 0
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

func (c Config) addr() string {
	port := c.Port
	if port == 0 {
		port = DefaultPort
	}
	return net.JoinHostPort(strings.TrimSuffix(strings.TrimPrefix(c.Host, "["), "]"), strconv.Itoa(port))
}

func redacted(secret string) string {
	if secret == "" {
		return `""`
	}
	return "<redacted>"
}

// String describes the configuration with its secrets redacted.
func (c Config) String() string {
	return fmt.Sprintf("ipmi.Config{Host:%q Port:%d Username:%q Password:%s Lanplus:%t CipherSuite:%d Privilege:%q KgHex:%s AuthType:%q Timeout:%v Retries:%d}",
		c.Host, c.Port, c.Username, redacted(c.Password), c.Lanplus, c.CipherSuite, c.Privilege, redacted(c.KgHex), c.AuthType, c.Timeout, c.Retries)
}

// Format prints String for every verb, so that no verb (%d, %#v, ...) can print the
// secrets field by field.
func (c Config) Format(f fmt.State, verb rune) { _, _ = f.Write([]byte(c.String())) }

// LogValue logs the configuration with its secrets redacted.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("host", c.Host), slog.Int("port", c.Port), slog.String("username", c.Username),
		slog.String("password", redacted(c.Password)), slog.Bool("lanplus", c.Lanplus),
		slog.Int("cipher_suite", c.CipherSuite), slog.String("privilege", c.Privilege),
		slog.String("kg", redacted(c.KgHex)), slog.Duration("timeout", c.Timeout), slog.Int("retries", c.Retries))
}
