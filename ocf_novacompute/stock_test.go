package main

import (
	"context"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/novaha/novaha/lib/nova/novatest"
	"github.com/novaha/novaha/lib/ocf"
)

// A host forced down by a stock fence_compute carries no novaha marker: what says its
// evacuation is under way is the node attribute evacuate=yes, which NovaEvacuate (ours
// or the stock one) sets to no once done. start must neither start nova-compute nor
// lift the force-down before that, as nova-compute-wait did not.
func TestStockFencedHostWaitsForEvacuateNo(t *testing.T) {
	// As fence_compute leaves it: forced down, disabled without a reason.
	w := newWorld(t, novatest.Service{ForcedDown: true, Disabled: true, EvacuationsDone: true})
	var value atomic.Value
	value.Store("yes")
	var queries atomic.Int32
	w.e.attrdPath = "/usr/sbin/attrd_updater"
	w.e.attrdRun = func(ctx context.Context, path string, args ...string) ([]byte, error) {
		queries.Add(1)
		if !slices.Contains(args, "-Q") || !slices.Contains(args, "compute-1") || !slices.Contains(args, "evacuate") {
			t.Errorf("attrd_updater %v", args)
		}
		return []byte(`name="evacuate" host="compute-1" value="` + value.Load().(string) + `"` + "\n"), nil
	}
	var early bool
	w.clock.onSleep = func(n int) {
		if value.Load() == "yes" && (w.running() || !w.nova.Service(host).ForcedDown) {
			early = true
		}
		switch {
		case n == 4:
			value.Store("no")
		case n > 4:
			w.behave()
		}
	}
	input, _ := w.handedOver("OCF_RESKEY_CRM_meta_on_node=compute-1")
	code, out := w.background(input)
	if code != ocf.Success {
		t.Fatalf("background start = %v\n%s", code, out)
	}
	if early {
		t.Error("nova-compute started or force-down lifted while evacuate=yes")
	}
	if queries.Load() == 0 {
		t.Error("the node attribute evacuate was never read")
	}
	if s := w.nova.Service(host); s.ForcedDown || s.Disabled {
		t.Errorf("after start: %+v, want not forced down, and enabled (fence_compute's on would)", s)
	}
	if !strings.Contains(out, "evacuate=yes") {
		t.Errorf("start does not say what it waits for:\n%s", out)
	}
}

// With a novaha marker, the marker is the record: an evacuate=yes nobody cleared (a
// NovaEvacuate run with stock_evacuate=false) does not hold an evacuated host back.
func TestEvacuatedHostIgnoresAStaleEvacuateYes(t *testing.T) {
	w := newWorld(t, novatest.Service{Disabled: true, ForcedDown: true, DisabledReason: "novaha:evacuated moved=1 failed=0"})
	w.e.attrdPath = "/usr/sbin/attrd_updater"
	w.e.attrdRun = func(ctx context.Context, path string, args ...string) ([]byte, error) {
		return []byte(`name="evacuate" host="compute-1" value="yes"` + "\n"), nil
	}
	w.clock.onSleep = func(int) { w.behave() }
	w.want("start", ocf.Success, "OCF_RESKEY_CRM_meta_on_node=compute-1")
	if s := w.nova.Service(host); s.ForcedDown || s.Disabled {
		t.Errorf("after start: %+v, want enabled and not forced down", s)
	}
}
