package evacuation_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/novaha/novaha/lib/evacuation"
	"github.com/novaha/novaha/lib/pacemaker"
)

func TestAttrdStock(t *testing.T) {
	var calls []string
	a := evacuation.AttrdStock{Attrd: &pacemaker.Attrd{
		Path:   "/usr/sbin/attrd_updater",
		Getenv: func(k string) string { return map[string]string{"OCF_RESOURCE_INSTANCE": "nova-evacuate"}[k] },
		Run: func(ctx context.Context, path string, args ...string) ([]byte, error) {
			calls = append(calls, strings.Join(args, " "))
			return []byte(`name="evacuate" host="c2" value="yes"
name="evacuate" host="c1" value="yes"
name="evacuate" host="c3" value="no"
`), nil
		},
	}}
	hosts, err := a.Requested(context.Background())
	if err != nil || !slices.Equal(hosts, []string{"c1", "c2"}) {
		t.Errorf("requested %v, %v", hosts, err)
	}
	if err := a.Done(context.Background(), "c1"); err != nil {
		t.Fatal(err)
	}
	if want := []string{"-n evacuate -Q -A", "-n evacuate -U no -N c1 -p"}; !slices.Equal(calls, want) {
		t.Errorf("calls %q, want %q", calls, want)
	}
}
