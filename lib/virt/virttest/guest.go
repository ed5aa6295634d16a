package virttest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Guest is a real QEMU domain under qemu:///system: 32 MiB, one vCPU, no disk, no
// network, no display. Its firmware (SeaBIOS) finds nothing to boot and waits, so the
// domain stays running until it is destroyed. It uses KVM when /dev/kvm is there, and
// QEMU's emulator otherwise.
type Guest struct {
	Name string
	UUID string
	URI  string
	KVM  bool
}

var guestSeq atomic.Int64

// NewGuest defines a persistent guest on uri (a qemu URI) and starts it unless stopped.
func NewGuest(ctx context.Context, uri string, stopped bool) (*Guest, error) {
	g := &Guest{URI: uri, Name: fmt.Sprintf("novaha-test-%d-%d", os.Getpid(), guestSeq.Add(1))}
	if f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0); err == nil {
		f.Close()
		g.KVM = true
	}
	typ := "qemu"
	if g.KVM {
		typ = "kvm"
	}
	xml := fmt.Sprintf(`<domain type='%s'>
  <name>%s</name>
  <memory unit='MiB'>32</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64'>hvm</type><boot dev='hd'/></os>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <memballoon model='none'/>
  </devices>
</domain>
`, typ, g.Name)
	dir, err := os.MkdirTemp("", "novaha-guest")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, g.Name+".xml")
	if err := os.WriteFile(path, []byte(xml), 0o600); err != nil {
		return nil, err
	}
	if _, err := Virsh(ctx, uri, "define", path); err != nil {
		return nil, err
	}
	if g.UUID, err = Virsh(ctx, uri, "domuuid", g.Name); err != nil {
		_ = g.Remove(ctx)
		return nil, err
	}
	if !stopped {
		if _, err := Virsh(ctx, uri, "start", g.Name); err != nil {
			_ = g.Remove(ctx)
			return nil, err
		}
	}
	return g, nil
}

// NewGuestTest is NewGuest for a test, removed when it ends.
func NewGuestTest(t testing.TB, sys *System, stopped bool) *Guest {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	g, err := NewGuest(ctx, sys.URI, stopped)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := g.Remove(ctx); err != nil {
			t.Errorf("removing guest %s: %v", g.Name, err)
		}
	})
	return g
}

// State is the domain's state as virsh domstate prints it ("running", "shut off").
func (g *Guest) State(ctx context.Context) (string, error) {
	return Virsh(ctx, g.URI, "domstate", g.Name)
}

// PID is the process ID of the guest's QEMU, from libvirt's PID file; 0 when the guest
// is not running.
func (g *Guest) PID() int {
	data, err := os.ReadFile(filepath.Join("/run/libvirt/qemu", g.Name+".pid"))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return 0
	}
	return pid
}

// ProcessAlive reports whether the QEMU process pid still exists.
func ProcessAlive(pid int) bool { return pid > 0 && pidAlive(pid) }

// Remove destroys the guest if it runs and undefines it.
func (g *Guest) Remove(ctx context.Context) error {
	if st, err := g.State(ctx); err == nil && st != "shut off" {
		if _, err := Virsh(ctx, g.URI, "destroy", g.Name); err != nil {
			return err
		}
	}
	_, err := Virsh(ctx, g.URI, "undefine", g.Name)
	return err
}
