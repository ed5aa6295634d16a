package ipmi

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/novaha/novaha/test/bmcsim"
)

// syncBuffer is a log sink for parallel tests.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startBMC starts ipmi_sim with the test password and returns a matching Config (cipher
// suite 3, the one ipmi_sim has) whose debug log goes to the returned buffer.
func startBMC(t *testing.T, o bmcsim.Options) (*bmcsim.BMC, Config, *syncBuffer) {
	t.Helper()
	if o.Password == "" {
		o.Password = testPassword
	}
	b := bmcsim.StartTest(t, o)
	logs := &syncBuffer{}
	cfg := Config{
		Host: b.Host, Port: b.Port, Username: b.Username, Password: b.Password,
		Lanplus: true, CipherSuite: 3,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("ipmi debug log:\n%s", logs)
		}
		if strings.Contains(logs.String(), testPassword) || strings.Contains(logs.String(), testKg) {
			t.Errorf("a secret reached the debug log:\n%s", logs)
		}
	})
	return b, cfg, logs
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func dial(t *testing.T, cfg Config) *Client {
	t.Helper()
	c, err := Dial(ctxFor(t, 5*time.Second), cfg)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

func wantStatus(t *testing.T, c *Client, want bool) {
	t.Helper()
	on, err := c.PowerStatus(ctxFor(t, 5*time.Second))
	if err != nil {
		t.Fatalf("PowerStatus: %v", err)
	}
	if on != want {
		t.Fatalf("PowerStatus = %v, want %v", on, want)
	}
}

func wantSimPower(t *testing.T, b *bmcsim.BMC, want bool) {
	t.Helper()
	on, err := b.PowerState()
	if err != nil {
		t.Fatal(err)
	}
	if on != want {
		t.Fatalf("simulator power state on=%v, want %v", on, want)
	}
}

// wantKind checks the error's kind, its words, and that it names no secret.
func wantKind(t *testing.T, err, kind error, words ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %v", kind)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("%T %v is not an *ipmi.Error", err, err)
	}
	if !errors.Is(err, kind) {
		t.Fatalf("error %q is not %v", err, kind)
	}
	for _, w := range words {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not contain %q", err, w)
		}
	}
	for _, s := range []string{testPassword, testKg, "kgSecret", hex.EncodeToString([]byte(testPassword))} {
		if strings.Contains(err.Error(), s) {
			t.Fatalf("error %q contains a secret", err)
		}
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error %q is not one line", err)
	}
}

func TestPowerControl(t *testing.T) {
	t.Parallel()
	b, cfg, _ := startBMC(t, bmcsim.Options{})
	start := time.Now()
	c := dial(t, cfg)
	t.Logf("login (cipher suite 3): %v", time.Since(start))
	if s := fmt.Sprintf("%v %+v %#v %s %d", c, c, c, c, c); strings.Contains(s, testPassword) || !strings.Contains(s, b.Addr()) {
		t.Fatalf("printed client: %s", s)
	}

	wantStatus(t, c, true)
	for range 3 {
		start := time.Now()
		wantStatus(t, c, true)
		t.Logf("power status round trip: %v", time.Since(start))
	}

	ctx := ctxFor(t, 10*time.Second)
	if err := c.PowerOff(ctx); err != nil {
		t.Fatal(err)
	}
	wantSimPower(t, b, false)
	wantStatus(t, c, false)
	if err := c.PowerOff(ctx); err != nil { // already off: still a success
		t.Fatal(err)
	}
	if err := c.PowerOn(ctx); err != nil {
		t.Fatal(err)
	}
	wantSimPower(t, b, true)
	wantStatus(t, c, true)

	if err := c.PowerCycle(ctx); err != nil {
		t.Fatal(err)
	}
	// ipmi_sim powers down at once and up a second later.
	ev, err := b.WaitLog(ctx, func(ev []bmcsim.Event) bool {
		return len(bmcsim.Actions(ev, bmcsim.ActionStatus, bmcsim.ActionBooted)) >= 5
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := bmcsim.Actions(ev, bmcsim.ActionStatus, bmcsim.ActionBooted), []string{"off", "off", "on", "off", "on"}; !slices.Equal(got, want) {
		t.Fatalf("chassis log %v, want %v", got, want)
	}
	wantSimPower(t, b, true)

	if err := c.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := c.Close(ctx); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	_, err = c.PowerStatus(ctx)
	wantKind(t, err, ErrClosed, "power status", "closed")
}

func TestIPMI15(t *testing.T) {
	t.Parallel()
	b, cfg, _ := startBMC(t, bmcsim.Options{InitiallyOff: true})
	cfg.Lanplus, cfg.CipherSuite, cfg.AuthType = false, 0, "md5"
	c := dial(t, cfg)
	wantStatus(t, c, false)
	if err := c.PowerOn(ctxFor(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	wantSimPower(t, b, true)
}

func TestCipherSuites(t *testing.T) {
	t.Parallel()
	_, cfg, _ := startBMC(t, bmcsim.Options{})

	t.Run("auto falls back from 17 to 3", func(t *testing.T) {
		cfg := cfg
		cfg.CipherSuite = CipherSuiteAuto
		start := time.Now()
		c := dial(t, cfg)
		if d := time.Since(start); d > time.Second {
			t.Errorf("negotiation took %v: it should not wait for unanswered requests", d)
		}
		wantStatus(t, c, true)
	})
	t.Run("17 is refused by ipmi_sim", func(t *testing.T) {
		cfg := cfg
		cfg.CipherSuite = 17
		start := time.Now()
		_, err := Dial(ctxFor(t, 5*time.Second), cfg)
		wantKind(t, err, ErrCipherSuite, "cipher suite 17")
		if d := time.Since(start); d > time.Second {
			t.Errorf("refusal took %v", d)
		}
	})
	t.Run("1 (no integrity) is refused", func(t *testing.T) {
		cfg := cfg
		cfg.CipherSuite, cfg.Timeout, cfg.Retries = 1, 100*time.Millisecond, NoRetries
		_, err := Dial(ctxFor(t, 5*time.Second), cfg)
		if err == nil {
			t.Fatal("cipher suite 1 worked against ipmi_sim: update this test and the docs")
		}
		t.Logf("cipher suite 1: %v", err)
	})
	t.Run("0 is refused before any packet", func(t *testing.T) {
		cfg := cfg
		cfg.CipherSuite = 0
		_, err := Dial(ctxFor(t, 5*time.Second), cfg)
		if !errors.Is(err, ErrInvalidConfig) {
			t.Fatalf("cipher suite 0: %v", err)
		}
	})
}

func TestAuthenticationFailures(t *testing.T) {
	t.Parallel()
	_, cfg, _ := startBMC(t, bmcsim.Options{
		Users: []bmcsim.User{{Name: "viewer", Password: "viewpass", Privilege: "user"}},
	})
	quick := func(t *testing.T, cfg Config, kind error, words ...string) {
		t.Helper()
		start := time.Now()
		c, err := Dial(ctxFor(t, 10*time.Second), cfg)
		if err == nil {
			c.Close(context.Background())
		}
		wantKind(t, err, kind, words...)
		if d := time.Since(start); d > time.Second {
			t.Errorf("took %v, want an immediate answer", d)
		}
	}

	t.Run("wrong password", func(t *testing.T) {
		cfg := cfg
		cfg.Password = "Wrong-pa55word"
		quick(t, cfg, ErrAuth, "authentication failed", `wrong password for user "admin"`)
	})
	t.Run("unknown user", func(t *testing.T) {
		cfg := cfg
		cfg.Username = "nobody"
		quick(t, cfg, ErrAuth, "authentication failed", `does not know user "nobody"`)
	})
	t.Run("unknown user ipmi 1.5", func(t *testing.T) {
		cfg := cfg
		cfg.Username, cfg.Lanplus = "nobody", false
		quick(t, cfg, ErrAuth, "authentication failed", `does not know user "nobody"`)
	})
	t.Run("wrong password ipmi 1.5", func(t *testing.T) {
		// IPMI 1.5 BMCs drop a wrong digest without a word: it takes the retries.
		cfg := cfg
		cfg.Password, cfg.Lanplus = "Wrong-pa55word", false
		cfg.Timeout, cfg.Retries = 100*time.Millisecond, 1
		_, err := Dial(ctxFor(t, 10*time.Second), cfg)
		wantKind(t, err, ErrAuth, "authentication failed", `wrong password for user "admin"`)
	})
	t.Run("power control needs operator", func(t *testing.T) {
		cfg := cfg
		cfg.Username, cfg.Password, cfg.Privilege = "viewer", "viewpass", "user"
		c := dial(t, cfg)
		wantStatus(t, c, true)
		err := c.PowerOff(ctxFor(t, 5*time.Second))
		wantKind(t, err, ErrPrivilege, "power off")
	})
}

func TestKg(t *testing.T) {
	t.Parallel()
	const key = "kgSecret"
	_, cfg, _ := startBMC(t, bmcsim.Options{BMCKey: key})

	t.Run("right key", func(t *testing.T) {
		cfg := cfg
		cfg.KgHex = hex.EncodeToString([]byte(key))
		if cfg.KgHex != testKg {
			t.Fatal("testKg no longer matches the key")
		}
		wantStatus(t, dial(t, cfg), true)
	})
	t.Run("wrong key", func(t *testing.T) {
		cfg := cfg
		cfg.KgHex = hex.EncodeToString([]byte("kgWrong!"))
		_, err := Dial(ctxFor(t, 5*time.Second), cfg)
		wantKind(t, err, ErrAuth, "wrong BMC key (Kg)")
	})
	t.Run("missing key", func(t *testing.T) {
		_, err := Dial(ctxFor(t, 5*time.Second), cfg)
		wantKind(t, err, ErrAuth, "wrong BMC key (Kg)")
	})
}

// Nothing listens on the port: the kernel refuses at once, and Dial keeps trying until
// its retries or the deadline are spent, as for a BMC that does not answer.
func TestRefusedPort(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	cfg := Config{Host: "127.0.0.1", Port: port, Username: "admin", Password: testPassword, Lanplus: true, CipherSuite: 3,
		Timeout: 100 * time.Millisecond, Retries: 2}
	start := time.Now()
	_, err := Dial(ctxFor(t, 5*time.Second), cfg)
	wantKind(t, err, ErrTimeout, "timed out", "connection refused", "3 attempts")
	if d := time.Since(start); d < 200*time.Millisecond || d > 2*time.Second {
		t.Errorf("gave up after %v, want about 3 attempts of 100ms", d)
	}

	// The deadline wins over the retries.
	cfg.Timeout, cfg.Retries = time.Second, 10
	start = time.Now()
	_, err = Dial(ctxFor(t, 300*time.Millisecond), cfg)
	wantKind(t, err, ErrTimeout, "timed out", "deadline exceeded", "refused")
	if d := time.Since(start); d > time.Second {
		t.Errorf("returned %v after a 300ms deadline", d)
	}
}

// A UDP socket that reads and never answers: an unreachable or mute BMC.
func TestSilentBMC(t *testing.T) {
	t.Parallel()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	cfg := Config{Host: "127.0.0.1", Port: pc.LocalAddr().(*net.UDPAddr).Port, Username: "admin", Password: testPassword,
		Lanplus: true, CipherSuite: CipherSuiteAuto}

	t.Run("deadline", func(t *testing.T) {
		t.Parallel()
		start := time.Now()
		_, err := Dial(ctxFor(t, 700*time.Millisecond), cfg)
		wantKind(t, err, ErrTimeout, "timed out", "deadline exceeded")
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%v does not wrap context.DeadlineExceeded", err)
		}
		if d := time.Since(start); d < 650*time.Millisecond || d > 1200*time.Millisecond {
			t.Errorf("returned after %v, want at the 700ms deadline", d)
		}
	})
	t.Run("retries", func(t *testing.T) {
		t.Parallel()
		cfg := cfg
		cfg.Timeout, cfg.Retries = 100*time.Millisecond, 2
		start := time.Now()
		_, err := Dial(ctxFor(t, 5*time.Second), cfg)
		wantKind(t, err, ErrTimeout, "timed out", "no answer from the BMC after 3 attempts of 100ms")
		if d := time.Since(start); d < 250*time.Millisecond || d > 1500*time.Millisecond {
			t.Errorf("gave up after %v, want about 3 attempts of 100ms", d)
		}
	})
}

// A command the BMC takes long to answer (ipmi_sim runs OffCommand before replying)
// ends at the caller's deadline, and the client stays usable afterwards.
func TestCommandDeadline(t *testing.T) {
	t.Parallel()
	b, cfg, _ := startBMC(t, bmcsim.Options{OffCommand: "sleep 1.5"})
	c := dial(t, cfg)
	start := time.Now()
	err := c.PowerOff(ctxFor(t, 300*time.Millisecond))
	wantKind(t, err, ErrTimeout, "ipmi power off", "timed out")
	if d := time.Since(start); d > time.Second {
		t.Fatalf("PowerOff returned %v after a 300ms deadline (the BMC answers after 1.5s)", d)
	}
	// The BMC finishes the power off by itself, and then answers again.
	if _, err := b.WaitLog(ctxFor(t, 5*time.Second), func(ev []bmcsim.Event) bool {
		return slices.Contains(bmcsim.Actions(ev), bmcsim.ActionOff)
	}); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, c, false)
}

func freePort(t *testing.T) int {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	return pc.LocalAddr().(*net.UDPAddr).Port
}

// Calls from several goroutines, and a Close among them: each call succeeds or reports
// ErrClosed, and nothing races (go test -race).
func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	_, cfg, _ := startBMC(t, bmcsim.Options{})
	c := dial(t, cfg)
	ctx := ctxFor(t, 10*time.Second)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for range 8 {
		wg.Go(func() {
			for range 5 {
				if _, err := c.PowerStatus(ctx); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Go(func() {
		if _, err := c.PowerStatus(ctx); err != nil {
			errs <- err
		}
		if err := c.Close(ctx); err != nil {
			errs <- err
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("unexpected error: %v", err)
		}
	}
}
