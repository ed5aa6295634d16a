package virt

import (
	"context"
	"errors"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/novaha/novaha/lib/virt/virttest"
	"libvirt.org/go/libvirt"
)

// These tests use libvirt's test driver in this process: test:///default (one running
// domain, "test"), and virttest.NodeURI, a hypervisor with domains in several states.

func nodeURI(t *testing.T) string { return virttest.NodeURI(t) }

func dial(t *testing.T, cfg Config) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, cfg)
	if err != nil {
		t.Fatalf("Dial(%s): %v", cfg.URI, err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

func ctx(t *testing.T) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func wantState(t *testing.T, c *Client, id string, want State) {
	t.Helper()
	got, err := c.State(ctx(t), id)
	if err != nil {
		t.Fatalf("State(%s): %v", id, err)
	}
	if got != want {
		t.Fatalf("State(%s) = %s, want %s", id, got, want)
	}
}

func TestStates(t *testing.T) {
	c := dial(t, Config{URI: nodeURI(t)})
	wantState(t, c, "web1", Running)
	wantState(t, c, "db1", Paused)
	wantState(t, c, "off1", Shutoff)
	wantState(t, c, "11111111-2222-3333-4444-555555555555", Running)
	wantState(t, c, "11111111222233334444555555555555", Running) // a UUID without dashes
}

func TestUnknownDomain(t *testing.T) {
	c := dial(t, Config{URI: nodeURI(t)})
	for _, id := range []string{"nosuch", "99999999-2222-3333-4444-555555555555", ""} {
		_, err := c.State(ctx(t), id)
		if !errors.Is(err, ErrNoDomain) {
			t.Errorf("State(%q): %v, want ErrNoDomain", id, err)
		}
		if err != nil && (strings.Contains(err.Error(), "virError") || !strings.Contains(err.Error(), "Domain not found")) {
			t.Errorf("State(%q): %q should carry libvirt's message, without the binding's wrapping", id, err)
		}
		if err := c.Destroy(ctx(t), id); !errors.Is(err, ErrNoDomain) {
			t.Errorf("Destroy(%q): %v, want ErrNoDomain", id, err)
		}
		if err := c.Start(ctx(t), id); !errors.Is(err, ErrNoDomain) {
			t.Errorf("Start(%q): %v, want ErrNoDomain", id, err)
		}
	}
}

func TestDestroyAndStart(t *testing.T) {
	set := &DestroyedSet{}
	c := dial(t, Config{URI: nodeURI(t), Destroyed: set})
	for _, id := range []string{"web1", "22222222-2222-3333-4444-555555555555"} { // running, and paused by UUID
		if err := c.Destroy(ctx(t), id); err != nil {
			t.Fatalf("Destroy(%s): %v", id, err)
		}
		wantState(t, c, id, Shutoff)
		// Already off: not an error.
		if err := c.Destroy(ctx(t), id); err != nil {
			t.Errorf("Destroy(%s) again: %v", id, err)
		}
		if err := c.Start(ctx(t), id); err != nil {
			t.Fatalf("Start(%s): %v", id, err)
		}
		wantState(t, c, id, Running)
		if err := c.Start(ctx(t), id); err != nil {
			t.Errorf("Start(%s) again: %v", id, err)
		}
	}
	// A destroyed domain is remembered by what it was asked as, its name and its UUID.
	for _, id := range []string{"web1", "11111111-2222-3333-4444-555555555555", "db1"} {
		if !set.Contains(id) {
			t.Errorf("the destroyed set lacks %s", id)
		}
	}
}

// A transient domain disappears when it stops: after Destroy it reads as shut off, not
// as unknown, and it cannot be started again.
func TestTransientDomain(t *testing.T) {
	c := dial(t, Config{URI: nodeURI(t)})
	wantState(t, c, "tmp1", Running)
	if err := c.Destroy(ctx(t), "tmp1"); err != nil {
		t.Fatal(err)
	}
	wantState(t, c, "tmp1", Shutoff)
	wantState(t, c, "44444444-2222-3333-4444-555555555555", Shutoff)
	if err := c.Start(ctx(t), "tmp1"); !errors.Is(err, ErrNoDomain) {
		t.Errorf("Start of a vanished transient domain: %v", err)
	}
	// Another client, another connection: this one never destroyed it.
	other := dial(t, Config{URI: nodeURI(t)})
	wantState(t, other, "tmp1", Running)
}

func TestDomains(t *testing.T) {
	c := dial(t, Config{URI: nodeURI(t)})
	doms, err := c.Domains(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(doms, func(i, j int) bool { return doms[i].Name < doms[j].Name })
	want := []Domain{
		{"db1", "22222222-2222-3333-4444-555555555555", Paused},
		{"has space", "55555555-2222-3333-4444-555555555555", Running},
		{"off1", "33333333-2222-3333-4444-555555555555", Shutoff},
		{"tmp1", "44444444-2222-3333-4444-555555555555", Running},
		{"web1", "11111111-2222-3333-4444-555555555555", Running},
	}
	if len(doms) != len(want) {
		t.Fatalf("Domains = %+v, want %+v", doms, want)
	}
	for i := range want {
		if doms[i] != want[i] {
			t.Errorf("Domains[%d] = %+v, want %+v", i, doms[i], want[i])
		}
	}
}

func TestReadOnly(t *testing.T) {
	c := dial(t, Config{URI: "test:///default", ReadOnly: true})
	wantState(t, c, "test", Running)
	err := c.Destroy(ctx(t), "test")
	if err == nil || !errors.Is(err, libvirt.ERR_OPERATION_DENIED) {
		t.Errorf("Destroy on a read-only connection: %v", err)
	}
}

func TestClosed(t *testing.T) {
	c := dial(t, Config{URI: "test:///default"})
	if err := c.Close(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.State(ctx(t), "test"); !errors.Is(err, ErrClosed) {
		t.Errorf("State after Close: %v", err)
	}
	if err := c.Close(ctx(t)); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestConcurrentCalls(t *testing.T) {
	c := dial(t, Config{URI: nodeURI(t)})
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.State(ctx(t), "web1"); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestDialErrors(t *testing.T) {
	if _, err := Dial(ctx(t), Config{URI: "qemu:system"}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("invalid URI: %v", err)
	}
	_, err := Dial(ctx(t), Config{URI: "nosuchdriver:///system"})
	if err == nil || !strings.Contains(err.Error(), "connecting to nosuchdriver:///system") {
		t.Errorf("unknown driver: %v", err)
	}
	expired, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Dial(expired, Config{URI: "test:///default"}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
}

func TestLibraryMissingDetection(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{libvirt.Error{Code: libvirt.ERR_INTERNAL_ERROR, Message: "Failed to open libvirt.so.0"}, true},
		{libvirt.Error{Code: libvirt.ERR_INTERNAL_ERROR, Message: "libvirt.so.0: cannot open shared object file: No such file or directory"}, true},
		{libvirt.Error{Code: libvirt.ERR_INTERNAL_ERROR, Message: "some other failure"}, false},
		{libvirt.Error{Code: libvirt.ERR_NO_DOMAIN, Message: "libvirt.so.0"}, false},
		{errors.New("libvirt.so.0"), false},
	} {
		if got := libraryMissing(tc.err); got != tc.want {
			t.Errorf("libraryMissing(%v) = %t", tc.err, got)
		}
	}
}
