package main

import (
	"testing"

	"github.com/novaha/novaha/agents/fence_libvirt/internal/spec"
)

// The backend is fence_libvirt's declaration with Open: the front's metadata describes
// what the backend accepts.
func TestDeclaration(t *testing.T) {
	a := agent()
	if err := a.Check(); err != nil {
		t.Fatal(err)
	}
	if a.Backend != "" {
		t.Errorf("the backend hands off to %q", a.Backend)
	}
	if len(a.Params) != len(spec.Agent().Params) {
		t.Errorf("the backend has %d parameters, the declaration %d", len(a.Params), len(spec.Agent().Params))
	}
}
