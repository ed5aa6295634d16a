package pacemaker

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

var fenced = map[string]string{"PCMK_service": "pacemaker-fenced"}

func TestUnderPacemaker(t *testing.T) {
	cases := []struct {
		env  map[string]string
		want bool
	}{
		{nil, false},
		{fenced, true},
		{map[string]string{"OCF_RESOURCE_INSTANCE": "nova-evacuate"}, true},
	}
	for _, tc := range cases {
		if got := UnderPacemaker(env(tc.env)); got != tc.want {
			t.Errorf("%v: %t", tc.env, got)
		}
	}
}

// stub writes a shell script standing in for attrd_updater: it appends its arguments
// to a log and prints what the test says.
func stub(t *testing.T, stdout string, exit int, stderr string) (path, log string) {
	dir := t.TempDir()
	path, log = filepath.Join(dir, "attrd_updater"), filepath.Join(dir, "args")
	script := "#!/bin/sh\nprintf '%s\\n' \"$*\" >> " + log + "\nprintf '%s' '" + stdout + "'\nprintf '%s' '" + stderr + "' >&2\nexit " + string(rune('0'+exit)) + "\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path, log
}

func TestSetPrivate(t *testing.T) {
	path, log := stub(t, "", 0, "")
	a := &Attrd{Path: path, Getenv: env(fenced)}
	if err := a.SetPrivate(context.Background(), "compute-1", "evacuate", "yes"); err != nil {
		t.Fatal(err)
	}
	args, _ := os.ReadFile(log)
	if strings.TrimSpace(string(args)) != "-n evacuate -U yes -N compute-1 -p" {
		t.Errorf("arguments %q", args)
	}
}

func TestSkippedOutsidePacemakerOrWithoutTheTool(t *testing.T) {
	path, log := stub(t, "", 0, "")
	a := &Attrd{Path: path, Getenv: env(nil)}
	if err := a.SetPrivate(context.Background(), "n", "evacuate", "yes"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.QueryPrivate(context.Background(), "n", "evacuate"); !errors.Is(err, ErrNoAttribute) {
		t.Errorf("query outside Pacemaker: %v", err)
	}
	if _, err := os.Stat(log); err == nil {
		t.Error("attrd_updater ran outside Pacemaker")
	}
	t.Setenv("PATH", t.TempDir())
	a = &Attrd{Getenv: env(fenced)}
	if _, err := os.Stat("/usr/sbin/attrd_updater"); err == nil {
		t.Skip("attrd_updater is installed in /usr/sbin")
	}
	if err := a.SetPrivate(context.Background(), "n", "evacuate", "yes"); err != nil {
		t.Errorf("without attrd_updater: %v", err)
	}
}

func TestQueryPrivate(t *testing.T) {
	cases := []struct {
		name, stdout, stderr string
		exit                 int
		want                 string
		err                  error
	}{
		{name: "set", stdout: `name="evacuate" host="compute-1" value="no"` + "\n", want: "no"},
		{name: "not set", exit: 6, stderr: "Could not query value of evacuate: attribute does not exist", err: ErrNoAttribute},
		{name: "attrd down", exit: 1, stderr: "Could not query value of evacuate: Transport endpoint is not connected (-107)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path, log := stub(t, tc.stdout, tc.exit, tc.stderr)
			a := &Attrd{Path: path, Getenv: env(fenced)}
			got, err := a.QueryPrivate(context.Background(), "compute-1", "evacuate")
			if got != tc.want || (tc.err != nil && !errors.Is(err, tc.err)) || (tc.err == nil && tc.exit == 0 && err != nil) || (tc.exit != 0 && err == nil) {
				t.Errorf("%q, %v", got, err)
			}
			args, _ := os.ReadFile(log)
			if strings.TrimSpace(string(args)) != "-n evacuate -Q -N compute-1 -p" {
				t.Errorf("arguments %q", args)
			}
		})
	}
}

func TestToolFailureIsReported(t *testing.T) {
	path, _ := stub(t, "", 1, "Could not update evacuate=yes: Transport endpoint is not connected")
	a := &Attrd{Path: path, Getenv: env(fenced)}
	err := a.SetPrivate(context.Background(), "compute-1", "evacuate", "yes")
	if err == nil || !strings.Contains(err.Error(), "Transport endpoint is not connected") {
		t.Errorf("error %v", err)
	}
}

// fence_nova records in Nova whether it told the stock NovaEvacuate: Available must
// say whether SetPrivate really writes.
func TestAvailable(t *testing.T) {
	if (&Attrd{Getenv: env(nil), Path: "/bin/true"}).Available() {
		t.Error("available outside Pacemaker")
	}
	if !(&Attrd{Getenv: env(fenced), Path: "/bin/true"}).Available() {
		t.Error("not available under Pacemaker")
	}
}

func TestQueryAll(t *testing.T) {
	out := `name="evacuate" host="compute-1" value="yes"
name="evacuate" host="compute-2.example.com" value="no"
name="evacuate" host="compute-3" value=""
`
	path, log := stub(t, out, 0, "")
	a := &Attrd{Path: path, Getenv: env(fenced)}
	got, err := a.QueryAll(context.Background(), "evacuate")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"compute-1": "yes", "compute-2.example.com": "no", "compute-3": ""}
	if len(got) != len(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("got %v, want %v", got, want)
		}
	}
	args, _ := os.ReadFile(log)
	if strings.TrimSpace(string(args)) != "-n evacuate -Q -A" {
		t.Errorf("arguments %q", args)
	}

	path, _ = stub(t, "", 1, "Could not query value of evacuate: attribute does not exist")
	a = &Attrd{Path: path, Getenv: env(fenced)}
	if got, err := a.QueryAll(context.Background(), "evacuate"); err != nil || len(got) != 0 {
		t.Errorf("no such attribute: %v, %v", got, err)
	}
	path, _ = stub(t, "", 1, "Could not connect to the CIB")
	a = &Attrd{Path: path, Getenv: env(fenced)}
	if _, err := a.QueryAll(context.Background(), "evacuate"); err == nil || !strings.Contains(err.Error(), "Could not connect") {
		t.Errorf("failing tool: %v", err)
	}
	a = &Attrd{Path: path, Getenv: env(nil)}
	if got, err := a.QueryAll(context.Background(), "evacuate"); err != nil || len(got) != 0 {
		t.Errorf("outside Pacemaker: %v, %v", got, err)
	}
}
