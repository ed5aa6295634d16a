package main

import (
	"slices"
	"testing"

	"github.com/novaha/novaha/lib/fence"
	"github.com/novaha/novaha/lib/novaconn"
)

// fence_nova declares the Nova connection with its own getopt letters and old names;
// the OCF agents take lib/novaconn's table. Both must mean the same parameters.
func TestConnectionParamsAgreeWithNovaconn(t *testing.T) {
	declared := map[string]fence.Param{}
	for _, p := range agent(defaultEnv()).Params {
		declared[p.Name] = p
	}
	for _, want := range novaconn.Table() {
		got, ok := declared[want.Name]
		if !ok {
			t.Errorf("fence_nova does not declare %s", want.Name)
			continue
		}
		if got.Default != want.Default || got.Secret != want.Secret || (got.Type == fence.Boolean) != want.Boolean {
			t.Errorf("%s: fence_nova default %q secret %t type %v; novaconn default %q secret %t boolean %t",
				want.Name, got.Default, got.Secret, got.Type, want.Default, want.Secret, want.Boolean)
		}
		for _, a := range want.Aliases {
			if !slices.Contains(got.Aliases, a) && got.Deprecated != a {
				t.Errorf("%s: fence_nova does not accept its old name %s", want.Name, a)
			}
		}
	}
	if _, ok := declared[novaconn.Domain]; !ok {
		t.Errorf("fence_nova does not declare %s", novaconn.Domain)
	}
}
