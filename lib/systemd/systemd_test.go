package systemd_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/novaha/novaha/lib/systemd"
	"github.com/novaha/novaha/lib/systemd/systemdtest"
)

const unit = "nova-compute.service"

func dial(t *testing.T) (*systemdtest.Systemd, *systemd.Manager) {
	t.Helper()
	fake := systemdtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	m, err := systemd.DialAddress(ctx, fake.Address)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return fake, m
}

func TestStartStopWaitForTheJob(t *testing.T) {
	fake, m := dial(t)
	fake.AddUnit(unit, "inactive")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	u, err := m.Unit(ctx, unit)
	if err != nil || u.Running() || !u.Found() || u.ActiveState != "inactive" || u.SubState != "dead" {
		t.Fatalf("before start: %+v %v", u, err)
	}
	if err := m.Start(ctx, unit); err != nil {
		t.Fatalf("start: %v", err)
	}
	if u, err = m.Unit(ctx, unit); err != nil || !u.Running() {
		t.Fatalf("after start: %+v %v", u, err)
	}
	if err := m.Stop(ctx, unit); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if u, err = m.Unit(ctx, unit); err != nil || u.Running() {
		t.Fatalf("after stop: %+v %v", u, err)
	}
	want := []string{"StartUnit " + unit + " replace", "StopUnit " + unit + " replace"}
	if got := fake.Calls(); !slices.Equal(got, want) {
		t.Errorf("calls %q, want %q", got, want)
	}
}

func TestFailedJobIsAnError(t *testing.T) {
	fake, m := dial(t)
	fake.AddUnit(unit, "inactive")
	fake.SetResult(unit, "failed", false)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := m.Start(ctx, unit)
	var je *systemd.JobError
	if !errors.As(err, &je) || je.Result != "failed" || je.Op != "start" {
		t.Fatalf("start with a failing job: %v, want a JobError with result failed", err)
	}
	if u, _ := m.Unit(ctx, unit); u.ActiveState != "failed" || u.Running() {
		t.Errorf("unit after the failed start: %+v", u)
	}
}

func TestJobThatNeverEndsStopsAtTheDeadline(t *testing.T) {
	fake, m := dial(t)
	fake.AddUnit(unit, "active")
	fake.SetResult(unit, "", true)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := m.Stop(ctx, unit)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("stop with a job that never ends: %v, want the deadline", err)
	}
}

func TestUnknownUnit(t *testing.T) {
	_, m := dial(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	u, err := m.Unit(ctx, "nope.service")
	if err != nil || u.Found() || u.Running() {
		t.Errorf("unknown unit: %+v %v, want not found", u, err)
	}
	if err := m.Start(ctx, "nope.service"); err == nil {
		t.Error("starting an unknown unit succeeded")
	}
}
