package ipmi

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/bougou/go-ipmi/pkg/client"
	"github.com/bougou/go-ipmi/pkg/types"

	"github.com/novaha/novaha/test/bmcsim"
)

// go-ipmi's errors as v0.9.1 words them, and what each must become. Some cannot be
// produced with ipmi_sim (it does not refuse privilege levels, for one).
func TestClassify(t *testing.T) {
	cfg := validConfig().withDefaults()
	joined := func(step string, err error) error {
		// Connect20's shape: the suites' errors formatted with %v, chain cut.
		return fmt.Errorf("connect20 failed after try all cipher suite ids ([3]), errs: \n%v",
			errors.Join(fmt.Errorf("cmd: %s failed with cipher suite id (3), err: %w", step, err)))
	}
	for _, tc := range []struct {
		name  string
		op    string
		lan15 bool
		err   error
		kind  error
		want  string
	}{
		{"rakp2 chained", "connect", false, fmt.Errorf("validate rakp2 message failed, err: %w", fmt.Errorf("RAKP2 authentication code mismatch: %w", client.ErrRAKPAuthentication)), ErrAuth, `wrong password for user "admin"`},
		{"rakp2 cut", "connect", false, joined("rakp1", fmt.Errorf("RAKP2 authentication code mismatch: %w", client.ErrRAKPAuthentication)), ErrAuth, "wrong password"},
		{"rakp4 cut", "connect", false, joined("rakp3", fmt.Errorf("RAKP4 integrity check value does not match: %w", client.ErrRAKPAuthentication)), ErrAuth, "wrong BMC key (Kg)"},
		{"unknown user cut", "connect", false, joined("rakp1", types.NewRmcpStatusError(types.RmcpStatusCodeUnauthorizedName)), ErrAuth, `does not know user "admin"`},
		{"unknown user chained", "connect", false, fmt.Errorf("x: %w", types.NewRmcpStatusError(types.RmcpStatusCodeUnauthorizedName)), ErrAuth, "does not know"},
		{"rakp3 refused", "connect", false, joined("rakp3", types.NewRmcpStatusError(types.RmcpStatusCodeInvalidIntegrityCheckValue)), ErrAuth, "wrong password or BMC key"},
		{"role refused", "connect", false, joined("rakp1", types.NewRmcpStatusError(types.RmcpStatusCodeUnauthorizedRoleOfPriLevel)), ErrPrivilege, "privilege level administrator is not allowed"},
		{"no cipher match", "connect", false, joined("RMCP+ Open Session", types.NewRmcpStatusError(types.RmcpStatusCodeNoCipherSuiteMatch)), ErrCipherSuite, "cipher suite 3"},
		{"cipher reply unparsable", "connect", false, joined("RMCP+ Open Session", errors.New("client exchange failed, err: unpack session setup response failed, err: unpacked data is too short (2/8)")), ErrCipherSuite, "does not accept cipher suite 3"},
		{"other rmcp status", "connect", false, joined("rakp1", types.NewRmcpStatusError(types.RmcpStatusCodeNoResToCreateSess)), nil, "RMCP+ status 0x01"},
		{"1.5 unknown user", "connect", true, fmt.Errorf("GetSessionChallenge failed, err: %w", types.NewResponseError(0x81, "Invalid user name")), ErrAuth, "does not know"},
		{"1.5 no slot", "connect", true, fmt.Errorf("ActivateSession failed, err: %w", types.NewResponseError(0x81, "x")), ErrRejected, "no free session slot"},
		{"1.5 privilege", "connect", true, fmt.Errorf("ActivateSession failed, err: %w", types.NewResponseError(0x86, "x")), ErrPrivilege, "not allowed"},
		{"set privilege", "connect", false, fmt.Errorf("SetSessionPrivilegeLevel to (ADMINISTRATOR) failed, err: %w", types.NewResponseError(0x81, "x")), ErrPrivilege, "not allowed"},
		{"1.5 silent activate", "connect", true, errors.New("ActivateSession failed, err: IPMI LAN: no matching IPMI response (expected rqSeq 0x03, command 0x3a) before UDP read deadline after 5 attempt(s): udp exchange: no datagram matched before deadline"), ErrAuth, "wrong password"},
		{"2.0 silent", "connect", false, errors.New("cmd: Get Channel Authentication Capabilities failed, err: IPMI LAN: no matching IPMI response before UDP read deadline after 5 attempt(s): udp exchange: no datagram matched before deadline"), ErrTimeout, "timed out: no answer from the BMC after 5 attempts of 1s waiting for Get Channel Authentication Capabilities"},
		{"refused", "connect", false, errors.New("read udp 127.0.0.1:1->127.0.0.1:2: read: connection refused"), ErrTimeout, "timed out: no IPMI service answered"},
		{"needs operator", "power off", false, fmt.Errorf("x: %w", types.NewResponseError(0xd4, "Insufficient privilege level")), ErrPrivilege, "power off needs a higher privilege level"},
		{"command refused", "power cycle", false, fmt.Errorf("x: %w", types.NewResponseError(0xcc, "Invalid data field in Request")), ErrRejected, "completion code 0xcc"},
		{"unknown", "power on", false, errors.New("something\nodd"), nil, "ipmi power on 10.0.0.11:623: something odd"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := cfg
			c.Lanplus = !tc.lan15
			e := classify(failure{op: tc.op, addr: c.addr(), cfg: c, err: tc.err, attempts: 5})
			if tc.kind != nil && !errors.Is(e, tc.kind) || tc.kind == nil && e.Kind != nil {
				t.Errorf("kind %v, want %v (%q)", e.Kind, tc.kind, e)
			}
			if !strings.Contains(e.Error(), tc.want) {
				t.Errorf("%q does not contain %q", e, tc.want)
			}
			if !strings.HasPrefix(e.Error(), "ipmi "+tc.op+" 10.0.0.11:623: ") || strings.Contains(e.Error(), "\n") {
				t.Errorf("%q: not one line starting with the operation and address", e)
			}
			if !errors.Is(e, tc.err) {
				t.Errorf("the go-ipmi error is not in the chain")
			}
		})
	}

	// A context that ended wins over what go-ipmi said, and stays in the chain.
	e := classify(failure{op: "power status", addr: "b:623", cfg: cfg, err: errors.New("udp exchange: no datagram matched"), ctxErr: context.DeadlineExceeded, elapsed: 1500 * time.Millisecond})
	if !errors.Is(e, ErrTimeout) || !errors.Is(e, context.DeadlineExceeded) || !strings.Contains(e.Error(), "timed out: deadline exceeded after 1.5s") {
		t.Errorf("deadline: %q", e)
	}
}

// Were a dependency to put a secret into an error, it would still not get out.
func TestScrub(t *testing.T) {
	c := validConfig()
	c.KgHex = strings.ToUpper(testKg)
	e := classify(failure{op: "connect", addr: "h:623", cfg: c.withoutSecrets(), redact: redactor(c),
		err: fmt.Errorf("bad key %s for password %s", strings.ToLower(testKg), testPassword)})
	if strings.Contains(e.Error(), testPassword) || strings.Contains(strings.ToLower(e.Error()), testKg) {
		t.Fatalf("secret in %q", e)
	}
	if !strings.Contains(e.Error(), "<redacted>") {
		t.Fatalf("nothing redacted in %q", e)
	}
}

// No operation, successful or failed, prints anything on stdout (it belongs to the agent
// protocol), and no error or log line carries the password or the Kg, in any encoding.
// Not parallel: it swaps os.Stdout.
func TestNoStdoutNoSecrets(t *testing.T) {
	if err := bmcsim.Available(); err != nil {
		t.Skip(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = w
	captured := make(chan string)
	go func() {
		data, _ := io.ReadAll(r)
		captured <- string(data)
	}()
	restore := func() {
		if os.Stdout == w {
			os.Stdout = stdout
			w.Close()
		}
	}
	t.Cleanup(restore)

	const key = "kgSecret"
	b := bmcsim.StartTest(t, bmcsim.Options{Password: testPassword, BMCKey: key})
	logs := &syncBuffer{}
	good := Config{Host: b.Host, Port: b.Port, Username: b.Username, Password: testPassword, Lanplus: true, CipherSuite: 3,
		KgHex: testKg, Timeout: 100 * time.Millisecond, Retries: 1,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	var errs []error
	try := func(cfg Config, ops bool) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		c, err := Dial(ctx, cfg)
		errs = append(errs, err, cfg.Validate())
		if err != nil {
			return
		}
		if ops {
			_, err = c.PowerStatus(ctx)
			errs = append(errs, err, c.PowerOff(ctx), c.PowerOn(ctx))
		}
		errs = append(errs, c.Close(ctx))
	}

	try(good, true)
	for _, mod := range []func(*Config){
		func(c *Config) { c.Password = testPassword + "x" },
		func(c *Config) { c.Username = "nobody" },
		func(c *Config) { c.KgHex = "00" + testKg },
		func(c *Config) { c.KgHex = "" },
		func(c *Config) { c.Lanplus, c.KgHex, c.CipherSuite = false, "", 0 },
		func(c *Config) { c.Lanplus, c.KgHex, c.CipherSuite, c.Password = false, "", 0, "x"+testPassword },
		func(c *Config) { c.CipherSuite = 17 },
		func(c *Config) { c.Port = freePort(t) },
		func(c *Config) { c.KgHex = testKg + "zz" },
		func(c *Config) { c.Password = testPassword + strings.Repeat("x", 20) },
	} {
		cfg := good
		mod(&cfg)
		try(cfg, false)
	}
	restore()
	out := <-captured

	if out != "" {
		t.Errorf("written to stdout: %q", out)
	}
	var text strings.Builder
	for _, err := range errs {
		if err != nil {
			fmt.Fprintln(&text, err)
		}
	}
	text.WriteString(logs.String())
	all := text.String() + out
	if strings.Count(all, "ipmi connect") < 10 {
		t.Fatalf("too few failures recorded to be a test:\n%s", all)
	}
	// go-ipmi's debug dumps print keys as spaced hex bytes ("50 77 2d ...").
	spaced := strings.TrimSpace(fmt.Sprintf("% x", testPassword))
	for _, s := range []string{testPassword, hex.EncodeToString([]byte(testPassword)), spaced, testKg, strings.ToUpper(testKg), key} {
		if strings.Contains(all, s) {
			t.Errorf("secret %q leaked:\n%s", s, all)
		}
	}
}
