package ipmi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// Distinctive secrets, so that a leak cannot hide behind an ordinary word of a message.
const (
	testPassword = "Pw-7q3ZxK9!vL"
	testKg       = "6b67536563726574" // "kgSecret"
)

func validConfig() Config {
	return Config{Host: "10.0.0.11", Username: "admin", Password: testPassword, Lanplus: true, CipherSuite: 3}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string // "" for valid; else a substring of the error
	}{
		{"valid", func(c *Config) {}, ""},
		{"host name", func(c *Config) { c.Host = "bmc-1.example.org" }, ""},
		{"placeholder host", func(c *Config) { c.Host = "placeholder.invalid" }, ""},
		{"ipv6", func(c *Config) { c.Host = "fd00::11" }, ""},
		{"ipv6 brackets", func(c *Config) { c.Host = "[fd00::11]" }, ""},
		{"empty host", func(c *Config) { c.Host = "" }, "host is empty"},
		{"bad host", func(c *Config) { c.Host = "bmc 1" }, "not an IP address or a valid host name"},
		{"host with port", func(c *Config) { c.Host = "bmc:623" }, "not an IP address"},
		{"empty label", func(c *Config) { c.Host = "a..b" }, "valid host name"},
		{"port default", func(c *Config) { c.Port = 0 }, ""},
		{"port 6230", func(c *Config) { c.Port = 6230 }, ""},
		{"port high", func(c *Config) { c.Port = 70000 }, "port 70000 is out of range"},
		{"port negative", func(c *Config) { c.Port = -1 }, "port -1"},
		{"anonymous", func(c *Config) { c.Username = "" }, ""},
		{"long user", func(c *Config) { c.Username = strings.Repeat("u", 17) }, "user name is 17 bytes long"},
		{"control in user", func(c *Config) { c.Username = "ad\nmin" }, "control characters"},
		{"password 20", func(c *Config) { c.Password = strings.Repeat("p", 20) }, ""},
		{"password 21", func(c *Config) { c.Password = strings.Repeat("p", 21) }, "longer than 20 bytes"},
		{"password 17 ipmi 1.5", func(c *Config) { c.Lanplus = false; c.Password = strings.Repeat("p", 17) }, "longer than 16 bytes, the IPMI 1.5 maximum"},
		{"cipher auto", func(c *Config) { c.CipherSuite = CipherSuiteAuto }, ""},
		{"cipher 17", func(c *Config) { c.CipherSuite = 17 }, ""},
		{"cipher 1", func(c *Config) { c.CipherSuite = 1 }, ""},
		{"cipher 0", func(c *Config) { c.CipherSuite = 0 }, "cipher suite 0 (no authentication) is refused"},
		{"cipher 18", func(c *Config) { c.CipherSuite = 18 }, "cipher suite 18 is not valid"},
		{"cipher 99", func(c *Config) { c.CipherSuite = 99 }, "cipher suite 99"},
		{"cipher -2", func(c *Config) { c.CipherSuite = -2 }, "cipher suite -2"},
		{"cipher ignored for 1.5", func(c *Config) { c.Lanplus = false; c.CipherSuite = 0 }, ""},
		{"privilege operator", func(c *Config) { c.Privilege = "OPERATOR" }, ""},
		{"privilege admin", func(c *Config) { c.Privilege = "admin" }, ""},
		{"privilege callback", func(c *Config) { c.Privilege = "callback" }, ""},
		{"privilege root", func(c *Config) { c.Privilege = "root" }, `privilege level "root" is not valid`},
		{"kg", func(c *Config) { c.KgHex = testKg }, ""},
		{"kg 0x", func(c *Config) { c.KgHex = "0x0a0b0c0d" }, ""},
		{"kg 20 bytes", func(c *Config) { c.KgHex = strings.Repeat("ab", 20) }, ""},
		{"kg 21 bytes", func(c *Config) { c.KgHex = strings.Repeat("ab", 21) }, "21 bytes long"},
		{"kg not hex", func(c *Config) { c.KgHex = "xyz-secret" }, "not valid hexadecimal"},
		{"kg odd", func(c *Config) { c.KgHex = "abc" }, "not valid hexadecimal"},
		{"kg ipmi 1.5", func(c *Config) { c.Lanplus = false; c.KgHex = testKg }, "needs IPMI 2.0"},
		{"auth md5", func(c *Config) { c.AuthType = "MD5" }, ""},
		{"auth password", func(c *Config) { c.AuthType = "password" }, ""},
		{"auth bogus", func(c *Config) { c.AuthType = "sha" }, `authentication type "sha"`},
		{"negative timeout", func(c *Config) { c.Timeout = -time.Second }, "timeout -1s is negative"},
		{"no retries", func(c *Config) { c.Retries = NoRetries }, ""},
		{"retries -2", func(c *Config) { c.Retries = -2 }, "retries -2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig()
			tc.mod(&c)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want == "":
				return
			case err == nil:
				t.Fatalf("accepted, want an error containing %q", tc.want)
			case !strings.Contains(err.Error(), tc.want):
				t.Fatalf("error %q does not contain %q", err, tc.want)
			case !errors.Is(err, ErrInvalidConfig):
				t.Fatalf("error %v does not wrap ErrInvalidConfig", err)
			}
			for _, secret := range []string{c.Password, c.KgHex, "secret"} {
				if secret != "" && strings.Contains(strings.ToLower(err.Error()), strings.ToLower(secret)) {
					t.Fatalf("error %q contains a secret", err)
				}
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	c := validConfig().withDefaults()
	if c.Port != 623 || c.Timeout != time.Second || c.Retries != 4 || c.Logger == nil {
		t.Fatalf("defaults: %v", c)
	}
	c = Config{Retries: NoRetries, Timeout: 3 * time.Second, Port: 6230}.withDefaults()
	if c.Retries != 0 || c.Timeout != 3*time.Second || c.Port != 6230 {
		t.Fatalf("explicit values changed: %v", c)
	}
}

// A Config printed or logged in any way shows no secret.
func TestConfigNeverShowsSecrets(t *testing.T) {
	c := validConfig()
	c.KgHex = testKg
	var out bytes.Buffer
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d", "%T %v"} {
		fmt.Fprintf(&out, verb+"\n", c)
	}
	fmt.Fprintln(&out, c, &c, []Config{c}, map[string]Config{"c": c})
	fmt.Fprintf(&out, "%+v\n", struct{ C Config }{c})
	slog.New(slog.NewTextHandler(&out, nil)).Info("x", "cfg", c)
	slog.New(slog.NewJSONHandler(&out, nil)).Info("x", "cfg", c)
	js, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	out.Write(js)
	s := out.String()
	for _, secret := range []string{testPassword, testKg, "kgSecret"} {
		if strings.Contains(s, secret) {
			t.Fatalf("secret %q printed:\n%s", secret, s)
		}
	}
	if !strings.Contains(s, `Host:"10.0.0.11"`) || !strings.Contains(s, "<redacted>") {
		t.Fatalf("the redacted form lost its content:\n%s", s)
	}
}

func TestResolveFormatsForGoIPMI(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.0.11":  "10.0.0.11",
		"fd00::11":   "[fd00::11]", // go-ipmi formats "%s:%d"
		"[fd00::11]": "[fd00::11]",
		"localhost":  "127.0.0.1",
	} {
		got, err := resolve(t.Context(), in)
		if err != nil || got != want {
			t.Errorf("resolve(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
