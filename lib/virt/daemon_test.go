package virt

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/novaha/novaha/lib/virt/virttest"
	"libvirt.org/go/libvirt"
)

// These tests run against a private libvirtd (virttest.TestDaemon): the remote protocol,
// SASL logins, and daemons that stop answering.

// syncBuffer is a log sink safe for libvirt's callback threads.
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

func debugLogger(buf *syncBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func TestRemoteStateIsShared(t *testing.T) {
	d := virttest.StartTestDaemonTest(t)
	a := dial(t, Config{URI: d.URI})
	if err := a.Destroy(ctx(t), "test"); err != nil {
		t.Fatal(err)
	}
	b := dial(t, Config{URI: d.URI, ReadOnly: true})
	wantState(t, b, "test", Shutoff)
	if err := a.Start(ctx(t), "test"); err != nil {
		t.Fatal(err)
	}
	wantState(t, b, "test", Running)
	out, err := virttest.Virsh(ctx(t), d.URI, "domstate", "test")
	if err != nil || out != "running" {
		t.Errorf("virsh domstate: %q, %v", out, err)
	}
}

// SASL credentials reach libvirt through the authentication callback; a wrong password
// fails the login without being echoed anywhere.
func TestSASLLogin(t *testing.T) {
	d := virttest.StartTestDaemonTest(t)
	var log syncBuffer
	c := dial(t, Config{URI: d.TCPURI, Username: d.SASLUser, Password: d.SASLPassword, Logger: debugLogger(&log)})
	wantState(t, c, "test", Running)
	if !strings.Contains(log.String(), "type=authname") || !strings.Contains(log.String(), "type=passphrase") {
		t.Errorf("the SASL login asked for no user name and password?\n%s", log.String())
	}
	if strings.Contains(log.String(), d.SASLPassword) {
		t.Errorf("the password is in the debug log:\n%s", log.String())
	}

	for _, tc := range []struct {
		name, user, password string
	}{
		{"wrong password", d.SASLUser, "wrong-" + d.SASLPassword},
		{"unknown user", "intruder", d.SASLPassword},
		{"no password", d.SASLUser, ""},
	} {
		start := time.Now()
		_, err := Dial(ctx(t), Config{URI: d.TCPURI, Username: tc.user, Password: tc.password})
		if err == nil {
			t.Errorf("%s: logged in", tc.name)
			continue
		}
		t.Logf("%s: %v", tc.name, err)
		if !errors.Is(err, libvirt.ERR_AUTH_FAILED) && !strings.Contains(err.Error(), "authentication") {
			t.Errorf("%s: %v, want an authentication failure", tc.name, err)
		}
		if tc.password != "" && strings.Contains(err.Error(), tc.password) {
			t.Errorf("%s: the password is in the error %q", tc.name, err)
		}
		if time.Since(start) > 5*time.Second {
			t.Errorf("%s: took %v: waiting for a prompt?", tc.name, time.Since(start))
		}
	}
}

// A daemon that stops answering (SIGSTOP) costs each call its deadline and no more;
// once it answers again, the next call opens a new connection and succeeds.
func TestHungDaemon(t *testing.T) {
	d := virttest.StartTestDaemonTest(t)
	c := dial(t, Config{URI: d.URI})
	wantState(t, c, "test", Running)
	if err := d.Pause(); err != nil {
		t.Fatal(err)
	}
	resumed := false
	defer func() {
		if !resumed {
			_ = d.Resume()
		}
	}()

	bounded := func(what string, call func(context.Context) error) error {
		t.Helper()
		cctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := call(cctx)
		if el := time.Since(start); el > 1500*time.Millisecond {
			t.Errorf("%s returned after %v, its deadline was 500ms", what, el)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s: %v, want a deadline error", what, err)
		}
		return err
	}
	err := bounded("State on a hung daemon", func(ctx context.Context) error { _, err := c.State(ctx, "test"); return err })
	if !errors.Is(err, ErrPending) {
		t.Errorf("an abandoned call should be ErrPending: %v", err)
	}
	// The connection was given up: the next call connects again, and that hangs too.
	err = bounded("State (reconnecting) on a hung daemon", func(ctx context.Context) error { _, err := c.State(ctx, "test"); return err })
	if !strings.Contains(err.Error(), "connecting to") {
		t.Errorf("the second call should have been connecting: %v", err)
	}
	bounded("Destroy on a hung daemon", func(ctx context.Context) error { return c.Destroy(ctx, "test") })
	bounded("Domains on a hung daemon", func(ctx context.Context) error { _, err := c.Domains(ctx); return err })
	bounded("Dial to a hung daemon", func(ctx context.Context) error { _, err := Dial(ctx, Config{URI: d.URI}); return err })

	if err := d.Resume(); err != nil {
		t.Fatal(err)
	}
	resumed = true
	wantState(t, c, "test", Running)
	cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Close(cctx); err != nil {
		t.Errorf("Close after recovery: %v", err)
	}
}

// A TCP peer that accepts and then never speaks, as a hypervisor behind a broken
// firewall or a frozen host: Dial returns at its deadline.
func TestSilentPeer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	cctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = Dial(cctx, Config{URI: "test+tcp://" + l.Addr().String() + "/default"})
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 1500*time.Millisecond {
		t.Errorf("Dial to a silent peer: %v after %v", err, time.Since(start))
	}
}

// A refused connection fails at once, with libvirt's reason.
func TestRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	start := time.Now()
	_, err = Dial(ctx(t), Config{URI: "test+tcp://" + addr + "/default"})
	if err == nil || !strings.Contains(err.Error(), "connecting to test+tcp://"+addr) || time.Since(start) > 2*time.Second {
		t.Errorf("Dial to a closed port: %v after %v", err, time.Since(start))
	}
}
