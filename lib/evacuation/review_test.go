package evacuation_test

import (
	"net/http"
	"testing"

	"github.com/novaha/novaha/lib/nova"
)

// Nova answers 404 to an evacuate request both for an unknown instance and for an
// unknown destination ("Compute host X could not be found", e.g. a compute host not
// yet mapped to its cell). The instance is still on its fenced host: it must be
// evacuated elsewhere, not given up with the host then marked evacuated.
func TestDestinationNotFoundIsNotInstanceGone(t *testing.T) {
	c := newCloud(t, 3)
	ids := c.addServers("c1", "a", 2, nil)
	c.fence("c1")
	c.f.FailEvacuate("a000", &nova.Error{Service: "Nova", Op: "evacuating a000", Status: http.StatusNotFound,
		Message: "Compute host c2 not found."})
	ctl := c.controller(t, nil)
	c.run(t, ctl, 600, c.evacuated("c1"))
	c.checkMoved(t, "c1", "ACTIVE", ids)
	m, _ := nova.ParseMarker(c.f.Service("c1").DisabledReason)
	if m.Moved != 2 || m.Failed != 0 {
		t.Errorf("marker %q, want moved=2 failed=0", c.f.Service("c1").DisabledReason)
	}
}
