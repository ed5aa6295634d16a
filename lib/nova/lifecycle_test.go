package nova

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/novaha/novaha/lib/nova/novatest"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func TestMarkers(t *testing.T) {
	cases := []struct {
		m    Marker
		text string
	}{
		{Marker{Phase: Fenced, At: t0}, "novaha:fenced 2026-01-02T03:04:05Z"},
		{Marker{Phase: Fenced, At: t0.In(time.FixedZone("CET", 3600))}, "novaha:fenced 2026-01-02T03:04:05Z"},
		{Marker{Phase: Fenced, At: t0, StockEvacuate: true}, "novaha:fenced 2026-01-02T03:04:05Z evacuate=yes"},
		{Marker{Phase: Fenced, At: t0, StockEvacuate: true, OperatorDisabled: true, OperatorReason: "x"},
			"novaha:fenced 2026-01-02T03:04:05Z evacuate=yes; was disabled: x"},
		{Marker{Phase: Evacuating}, "novaha:evacuating"},
		{Marker{Phase: Evacuated, Moved: 12, Failed: 1}, "novaha:evacuated moved=12 failed=1"},
		{Marker{Phase: Fenced, At: t0, OperatorDisabled: true, OperatorReason: "replacing DIMM B2"},
			"novaha:fenced 2026-01-02T03:04:05Z; was disabled: replacing DIMM B2"},
		{Marker{Phase: Evacuated, Moved: 3, OperatorDisabled: true}, "novaha:evacuated moved=3 failed=0; was disabled"},
		{Marker{Phase: Evacuated, Source: "attrd"}, "novaha:evacuated source=attrd"},
		{Marker{Phase: Evacuated, OperatorDisabled: true, OperatorReason: "odd; was disabled: nested"},
			"novaha:evacuated moved=0 failed=0; was disabled: odd; was disabled: nested"},
	}
	for _, tc := range cases {
		if got := tc.m.String(); got != tc.text {
			t.Errorf("%+v formats as %q, want %q", tc.m, got, tc.text)
		}
		back, ok := ParseMarker(tc.text)
		want := tc.m
		want.At = want.At.UTC()
		if !ok || back.String() != tc.text || !back.At.Equal(want.At) || back.OperatorReason != want.OperatorReason ||
			back.StockEvacuate != want.StockEvacuate {
			t.Errorf("%q parses as %+v (%t)", tc.text, back, ok)
		}
	}
	for _, s := range []string{"", "maintenance", "novaha:", "novaha:rebooting", "NOVAHA:fenced", "fenced by novaha:fenced"} {
		if m, ok := ParseMarker(s); ok {
			t.Errorf("%q parsed as a marker: %+v", s, m)
		}
	}
	if m, ok := ParseMarker("novaha:evacuated moved=2 failed=0 future=1 2026-01-02T03:04:05Z"); !ok || m.Moved != 2 || !m.At.Equal(t0) {
		t.Errorf("unknown fields must be skipped: %+v", m)
	}
}

func TestMarkerFitsNovasLimit(t *testing.T) {
	m := Marker{Phase: Fenced, At: t0, OperatorDisabled: true, OperatorReason: strings.Repeat("é", 400)}
	s := m.String()
	if n := utf8.RuneCountInString(s); n != 255 || !utf8.ValidString(s) || !strings.HasSuffix(s, "…") {
		t.Errorf("marker of %d characters: %q", n, s)
	}
	if back, ok := ParseMarker(s); !ok || !back.OperatorDisabled {
		t.Errorf("truncated marker does not parse: %+v", back)
	}
}

func TestNextMarkerKeepsTheOperatorsDisable(t *testing.T) {
	cases := []struct {
		s        Service
		disabled bool
		reason   string
	}{
		{Service{Status: "enabled"}, false, ""},
		{Service{Status: "disabled"}, true, ""},
		{Service{Status: "disabled", DisabledReason: "maintenance"}, true, "maintenance"},
		{Service{Status: "disabled", DisabledReason: "novaha:evacuated moved=1 failed=0; was disabled: maintenance"}, true, "maintenance"},
		{Service{Status: "disabled", DisabledReason: "novaha:evacuated moved=1 failed=0"}, false, ""},
	}
	for _, tc := range cases {
		m := NextMarker(tc.s, Fenced, t0)
		if m.OperatorDisabled != tc.disabled || m.OperatorReason != tc.reason || m.Phase != Fenced || !m.At.Equal(t0) {
			t.Errorf("%+v: %+v", tc.s, m)
		}
	}
}

func TestMatchHost(t *testing.T) {
	hosts := []string{"compute-1.example.com", "compute-2.example.com", "compute-2.other.org", "compute-3", "Compute-4", "db-1.example.com", "db-1.example.org"}
	cases := []struct {
		name, domain string
		want         string
		err          error
	}{
		{"compute-1.example.com", "", "compute-1.example.com", nil},
		{"compute-1", "", "compute-1.example.com", nil},
		{"compute-1", "example.com", "compute-1.example.com", nil},
		{"compute-1.other.org", "", "", ErrNoSuchHost}, // another domain never matches an FQDN
		{"compute-2", "", "", ErrAmbiguousHost},
		{"compute-2", "other.org", "compute-2.other.org", nil},
		{"compute-2", ".example.com.", "compute-2.example.com", nil},
		{"compute-2.other.org", "", "compute-2.other.org", nil},
		{"compute-3", "example.com", "compute-3", nil}, // the domain is a preference, not a filter
		{"compute-3.example.com", "", "compute-3", nil},
		{"compute-4", "", "Compute-4", nil},
		{"db-1", "", "", ErrAmbiguousHost},
		{"compute-9", "", "", ErrNoSuchHost},
		{"", "", "", ErrNoSuchHost},
		// The domain rule applies to short names only: an FQDN in another domain is
		// not moved into this one (it used to force down compute-1.example.com).
		{"compute-1.other.com", "example.com", "", ErrNoSuchHost},
		{"compute-1.lab.example.com", "example.com", "", ErrNoSuchHost},
		{"compute-1.example.com", "example.com", "compute-1.example.com", nil},
		{"compute-3.example.com", "example.com", "compute-3", nil},
	}
	for _, tc := range cases {
		got, err := MatchHost(tc.name, tc.domain, hosts)
		if got != tc.want || !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
			t.Errorf("MatchHost(%q, %q) = %q, %v; want %q, %v", tc.name, tc.domain, got, err, tc.want, tc.err)
		}
	}
	_, err := MatchHost("compute-2", "", hosts)
	if !strings.Contains(err.Error(), "compute-2.example.com, compute-2.other.org") || !strings.Contains(err.Error(), "domain option") {
		t.Errorf("ambiguity error does not name the candidates and the way out: %v", err)
	}
}

// Candidates are pooled over every rule: when two rules each find a different host,
// the name is ambiguous (the earlier rule used to win silently).
func TestMatchHostAcrossRules(t *testing.T) {
	cases := []struct {
		name, domain string
		hosts        []string
		cands        string
	}{
		{"compute-1", "example.com", []string{"compute-1", "compute-1.example.com"}, "compute-1, compute-1.example.com"},
		{"compute-1", "", []string{"compute-1", "compute-1.example.com"}, "compute-1, compute-1.example.com"},
		{"compute-1.example.com", "", []string{"compute-1", "COMPUTE-1.EXAMPLE.COM"}, "COMPUTE-1.EXAMPLE.COM, compute-1"},
		{"compute-1", "", []string{"compute-1", "Compute-1"}, "Compute-1, compute-1"},
	}
	for _, tc := range cases {
		got, err := MatchHost(tc.name, tc.domain, tc.hosts)
		if !errors.Is(err, ErrAmbiguousHost) || !strings.Contains(err.Error(), tc.cands) {
			t.Errorf("MatchHost(%q, %q, %v) = %q, %v; want ambiguous between %s", tc.name, tc.domain, tc.hosts, got, err, tc.cands)
		}
	}
	// One host found by several rules is one candidate.
	if got, err := MatchHost("compute-1", "example.com", []string{"compute-1.example.com", "compute-2"}); err != nil || got != "compute-1.example.com" {
		t.Errorf("one host through two rules: %q, %v", got, err)
	}
}

func TestStateOf(t *testing.T) {
	cases := []struct {
		s    Service
		want HostState
	}{
		{Service{Status: "enabled", State: "up"}, Healthy},
		{Service{Status: "disabled", State: "up", DisabledReason: "maintenance"}, Healthy},
		{Service{Status: "enabled", State: "down", ForcedDown: true}, ForcedDownElsewhere},
		{Service{Status: "disabled", ForcedDown: true, DisabledReason: "novaha:fenced 2026-01-02T03:04:05Z"}, StateFenced},
		{Service{Status: "disabled", ForcedDown: true, DisabledReason: "novaha:evacuating"}, StateEvacuating},
		{Service{Status: "disabled", ForcedDown: true, DisabledReason: "novaha:evacuated moved=1 failed=0"}, StateEvacuated},
		{Service{Status: "disabled", DisabledReason: "novaha:evacuated moved=1 failed=0"}, Returning},
	}
	for _, tc := range cases {
		if got := StateOf(tc.s); got != tc.want {
			t.Errorf("%+v: %v, want %v", tc.s, got, tc.want)
		}
	}
}

func TestFence(t *testing.T) {
	const id = "00000000-0000-4000-8000-000000000001"
	cases := []struct {
		name   string
		svc    novatest.Service
		reqs   []string
		reason string
	}{
		{name: "up and enabled: force down first, then disable",
			svc: novatest.Service{Host: "compute1", Alive: true},
			reqs: []string{`PUT /os-services/` + id + ` {"forced_down":true}`,
				`PUT /os-services/` + id + ` {"disabled_reason":"novaha:fenced 2026-01-02T03:04:05Z","status":"disabled"}`},
			reason: "novaha:fenced 2026-01-02T03:04:05Z"},
		{name: "down and enabled (crashed)", svc: novatest.Service{Host: "compute1"},
			reqs: []string{`PUT /os-services/` + id + ` {"forced_down":true}`,
				`PUT /os-services/` + id + ` {"disabled_reason":"novaha:fenced 2026-01-02T03:04:05Z","status":"disabled"}`},
			reason: "novaha:fenced 2026-01-02T03:04:05Z"},
		{name: "disabled by an operator before it died: still fenced, reason kept",
			svc: novatest.Service{Host: "compute1", Disabled: true, DisabledReason: "BIOS update"},
			reqs: []string{`PUT /os-services/` + id + ` {"forced_down":true}`,
				`PUT /os-services/` + id + ` {"disabled_reason":"novaha:fenced 2026-01-02T03:04:05Z; was disabled: BIOS update","status":"disabled"}`},
			reason: "novaha:fenced 2026-01-02T03:04:05Z; was disabled: BIOS update"},
		{name: "forced down by fence_compute: gets its marker", svc: novatest.Service{Host: "compute1", ForcedDown: true, Disabled: true},
			reqs:   []string{`PUT /os-services/` + id + ` {"disabled_reason":"novaha:fenced 2026-01-02T03:04:05Z; was disabled","status":"disabled"}`},
			reason: "novaha:fenced 2026-01-02T03:04:05Z; was disabled"},
		{name: "already fenced: nothing to do", svc: novatest.Service{Host: "compute1", ForcedDown: true, Disabled: true, DisabledReason: "novaha:fenced 2026-01-01T00:00:00Z"},
			reason: "novaha:fenced 2026-01-01T00:00:00Z"},
		{name: "evacuation under way is not restarted", svc: novatest.Service{Host: "compute1", ForcedDown: true, Disabled: true, DisabledReason: "novaha:evacuating"},
			reason: "novaha:evacuating"},
		{name: "returning host fenced again: a new fence, the operator's disable carried over",
			svc: novatest.Service{Host: "compute1", Disabled: true, Alive: true, DisabledReason: "novaha:evacuated moved=2 failed=0; was disabled: BIOS update"},
			reqs: []string{`PUT /os-services/` + id + ` {"forced_down":true}`,
				`PUT /os-services/` + id + ` {"disabled_reason":"novaha:fenced 2026-01-02T03:04:05Z; was disabled: BIOS update","status":"disabled"}`},
			reason: "novaha:fenced 2026-01-02T03:04:05Z; was disabled: BIOS update"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := novatest.New(t, tc.svc)
			c := dial(t, srv, newClock())
			s, err := ComputeService(context.Background(), c, "compute1")
			if err != nil {
				t.Fatal(err)
			}
			srv.Requests()
			got, err := Fence(context.Background(), c, s, t0)
			if err != nil {
				t.Fatal(err)
			}
			if reqs := srv.NovaRequests(); strings.Join(reqs, "\n") != strings.Join(tc.reqs, "\n") {
				t.Errorf("requests\n%s\nwant\n%s", strings.Join(reqs, "\n"), strings.Join(tc.reqs, "\n"))
			}
			rec := srv.Service("compute1")
			if !rec.ForcedDown || !rec.Disabled || rec.DisabledReason != tc.reason || got.DisabledReason != tc.reason || !got.ForcedDown {
				t.Errorf("record %+v, returned %+v, want reason %q", rec, got, tc.reason)
			}
		})
	}
}

func TestFenceFailsUnlessNovaRecordsIt(t *testing.T) {
	srv := novatest.New(t, novatest.Service{Host: "compute1", Alive: true})
	c := dial(t, srv, newClock())
	s, _ := ComputeService(context.Background(), c, "compute1")
	srv.Fail(novatest.Fault{Match: "PUT /os-services", Status: 409, Count: 1})
	if _, err := Fence(context.Background(), c, s, t0); err == nil || !strings.Contains(err.Error(), "while forcing down compute1") {
		t.Fatalf("error %v", err)
	}
	if rec := srv.Service("compute1"); rec.Disabled {
		t.Errorf("disabled although the force-down failed: %+v", rec)
	}
}

// stock reports a fixed answer of another evacuation controller.
func stock(e Elsewhere) UnfenceOptions {
	return UnfenceOptions{Elsewhere: func(context.Context) (Elsewhere, error) { return e, nil }}
}

func TestUnfence(t *testing.T) {
	const id = "00000000-0000-4000-8000-000000000001"
	evacuated := "novaha:evacuated moved=3 failed=0"
	cases := []struct {
		name     string
		svc      novatest.Service
		opts     UnfenceOptions
		wait     string
		reqs     []string
		disabled bool
		reason   string
	}{
		{name: "fenced: waits", svc: novatest.Service{Host: "compute1", ForcedDown: true, Disabled: true, DisabledReason: "novaha:fenced 2026-01-02T03:04:05Z"},
			wait: "the evacuation of compute1 is not finished (fenced)", disabled: true, reason: "novaha:fenced 2026-01-02T03:04:05Z"},
		{name: "evacuating: waits", svc: novatest.Service{Host: "compute1", ForcedDown: true, Disabled: true, DisabledReason: "novaha:evacuating"},
			wait: "not finished (evacuating)", disabled: true, reason: "novaha:evacuating"},
		{name: "fenced, and the stock NovaEvacuate finished", opts: stock(ElsewhereDone),
			svc: novatest.Service{Host: "compute1", ForcedDown: true, Disabled: true, Alive: true, DisabledReason: "novaha:fenced 2026-01-02T03:04:05Z evacuate=yes"},
			reqs: []string{`PUT /os-services/` + id + ` {"disabled_reason":"novaha:evacuated source=attrd","status":"disabled"}`,
				`PUT /os-services/` + id + ` {"forced_down":false}`,
				`PUT /os-services/` + id + ` {"status":"enabled"}`}},
		{name: "fenced, stock NovaEvacuate finished, not up yet: recorded as evacuated", opts: stock(ElsewhereDone),
			svc: novatest.Service{Host: "compute1", ForcedDown: true, Disabled: true, DisabledReason: "novaha:fenced 2026-01-02T03:04:05Z evacuate=yes; was disabled: x"},
			reqs: []string{`PUT /os-services/` + id + ` {"disabled_reason":"novaha:evacuated source=attrd; was disabled: x","status":"disabled"}`,
				`PUT /os-services/` + id + ` {"forced_down":false}`,
				`PUT /os-services/` + id + ` {"disabled_reason":"x","status":"disabled"}`}, disabled: true, reason: "x"},
		// evacuate=no counts only when the marker records that off set evacuate=yes
		// before it: otherwise it may be left from an earlier cycle.
		{name: "fenced without evacuate=yes in the marker: a stale evacuate=no is ignored", opts: stock(ElsewhereDone),
			svc:  novatest.Service{Host: "compute1", ForcedDown: true, Disabled: true, Alive: true, DisabledReason: "novaha:fenced 2026-01-02T03:04:05Z"},
			wait: "evacuate=no is ignored", disabled: true, reason: "novaha:fenced 2026-01-02T03:04:05Z"},
		{name: "evacuating: novaha's controller is at work, evacuate=no does not count", opts: stock(ElsewhereDone),
			svc:  novatest.Service{Host: "compute1", ForcedDown: true, Disabled: true, Alive: true, DisabledReason: "novaha:evacuating"},
			wait: "not finished (evacuating", disabled: true, reason: "novaha:evacuating"},
		{name: "the attribute cannot be read: waits, never unfences",
			opts: UnfenceOptions{Elsewhere: func(context.Context) (Elsewhere, error) { return ElsewhereUnknown, errors.New("attrd down") }},
			svc:  novatest.Service{Host: "compute1", ForcedDown: true, Disabled: true, Alive: true},
			wait: "attrd down", disabled: true},
		{name: "evacuated, service up: lift, then enable",
			svc: novatest.Service{Host: "compute1", ForcedDown: true, Disabled: true, Alive: true, DisabledReason: evacuated},
			reqs: []string{`PUT /os-services/` + id + ` {"forced_down":false}`,
				`PUT /os-services/` + id + ` {"status":"enabled"}`}},
		{name: "evacuated, service not up yet: lift, stay disabled (returning)",
			svc:  novatest.Service{Host: "compute1", ForcedDown: true, Disabled: true, DisabledReason: evacuated},
			reqs: []string{`PUT /os-services/` + id + ` {"forced_down":false}`}, disabled: true, reason: evacuated},
		{name: "evacuated, operator had disabled it: lift, restore the operator's reason",
			svc: novatest.Service{Host: "compute1", ForcedDown: true, Disabled: true, DisabledReason: evacuated + "; was disabled: BIOS update"},
			reqs: []string{`PUT /os-services/` + id + ` {"forced_down":false}`,
				`PUT /os-services/` + id + ` {"disabled_reason":"BIOS update","status":"disabled"}`}, disabled: true, reason: "BIOS update"},
		{name: "evacuated, operator had disabled it without a reason",
			svc: novatest.Service{Host: "compute1", ForcedDown: true, Disabled: true, Alive: true, DisabledReason: evacuated + "; was disabled"},
			reqs: []string{`PUT /os-services/` + id + ` {"forced_down":false}`,
				`PUT /os-services/` + id + ` {"status":"disabled"}`}, disabled: true},
		{name: "evacuated, nova-compute not restarted: Nova refuses, we wait",
			svc:  novatest.Service{Host: "compute1", ForcedDown: true, Disabled: true, DisabledReason: evacuated, EvacuationsDone: true},
			wait: "Nova keeps compute1 forced down until its nova-compute restarts",
			reqs: []string{`PUT /os-services/` + id + ` {"forced_down":false}`}, disabled: true, reason: evacuated},
		{name: "returning and now up: enable", svc: novatest.Service{Host: "compute1", Disabled: true, Alive: true, DisabledReason: evacuated},
			reqs: []string{`PUT /os-services/` + id + ` {"status":"enabled"}`}},
		{name: "never fenced: nothing", svc: novatest.Service{Host: "compute1", Alive: true}},
		{name: "operator-disabled, never fenced: left alone", svc: novatest.Service{Host: "compute1", Disabled: true, DisabledReason: "maintenance"},
			disabled: true, reason: "maintenance"},
		{name: "forced down by hand: lifted, status left", svc: novatest.Service{Host: "compute1", ForcedDown: true, Disabled: true},
			reqs: []string{`PUT /os-services/` + id + ` {"forced_down":false}`}, disabled: true},
		// fence_compute's own on enables the host whatever it was; NovaCompute and
		// fence_nova's on take its place, so a disable without a reason (fence_compute's)
		// goes once the host is up, and an operator's reason stays.
		{name: "forced down and disabled by fence_compute, stock evacuation done: recorded, lifted, enabled", opts: stock(ElsewhereDone),
			svc: novatest.Service{Host: "compute1", ForcedDown: true, Disabled: true, Alive: true},
			reqs: []string{`PUT /os-services/` + id + ` {"disabled_reason":"novaha:evacuated source=attrd","status":"disabled"}`,
				`PUT /os-services/` + id + ` {"forced_down":false}`,
				`PUT /os-services/` + id + ` {"status":"enabled"}`}},
		{name: "forced down by fence_compute, operator had disabled it with a reason: kept", opts: stock(ElsewhereDone),
			svc: novatest.Service{Host: "compute1", ForcedDown: true, Disabled: true, Alive: true, DisabledReason: "RAM test"},
			reqs: []string{`PUT /os-services/` + id + ` {"disabled_reason":"novaha:evacuated source=attrd; was disabled: RAM test","status":"disabled"}`,
				`PUT /os-services/` + id + ` {"forced_down":false}`,
				`PUT /os-services/` + id + ` {"disabled_reason":"RAM test","status":"disabled"}`}, disabled: true, reason: "RAM test"},
		{name: "forced down by fence_compute, stock evacuation running: waits", opts: stock(ElsewhereInProgress),
			svc: novatest.Service{Host: "compute1", ForcedDown: true, Disabled: true}, wait: "evacuate=yes", disabled: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := novatest.New(t, tc.svc)
			c := dial(t, srv, newClock())
			s, _ := ComputeService(context.Background(), c, "compute1")
			srv.Requests()
			_, err := Unfence(context.Background(), c, s, tc.opts)
			switch {
			case tc.wait == "" && err != nil:
				t.Fatal(err)
			case tc.wait != "" && (!errors.Is(err, ErrWaiting) || !strings.Contains(err.Error(), tc.wait)):
				t.Fatalf("error %v, want a wait: %s", err, tc.wait)
			}
			if reqs := srv.NovaRequests(); strings.Join(reqs, "\n") != strings.Join(tc.reqs, "\n") {
				t.Errorf("requests\n%s\nwant\n%s", strings.Join(reqs, "\n"), strings.Join(tc.reqs, "\n"))
			}
			rec := srv.Service("compute1")
			if rec.Disabled != tc.disabled || rec.DisabledReason != tc.reason {
				t.Errorf("record %+v, want disabled=%t reason %q", rec, tc.disabled, tc.reason)
			}
		})
	}
}

func TestFindComputeService(t *testing.T) {
	srv := novatest.New(t, novatest.Service{Host: "compute-1.example.com"}, novatest.Service{Host: "compute-2.a.org"}, novatest.Service{Host: "compute-2.b.org"},
		novatest.Service{Host: "compute-1.example.com", Binary: "nova-conductor"})
	c := dial(t, srv, newClock())
	s, err := FindComputeService(context.Background(), c, "compute-1", "")
	if err != nil || s.Host != "compute-1.example.com" || s.Binary != BinaryCompute {
		t.Errorf("%+v %v", s, err)
	}
	if _, err := FindComputeService(context.Background(), c, "compute-2", ""); !errors.Is(err, ErrAmbiguousHost) {
		t.Errorf("ambiguous: %v", err)
	}
	if _, err := FindComputeService(context.Background(), c, "compute-3", ""); !errors.Is(err, ErrNoSuchHost) {
		t.Errorf("unknown: %v", err)
	}
}

// crashAPI keeps one service record and fails its n-th update (1-based), as a run
// killed at that point would leave it.
type crashAPI struct {
	s           Service
	n, crashAtN int
}

func (a *crashAPI) ListServices(context.Context, ListServicesOpts) ([]Service, error) {
	return []Service{a.s}, nil
}

func (a *crashAPI) UpdateService(_ context.Context, _ Service, u ServiceUpdate) (Service, error) {
	a.n++
	if a.n == a.crashAtN {
		return Service{}, errors.New("killed")
	}
	if u.ForcedDown != nil {
		a.s.ForcedDown = *u.ForcedDown
	}
	switch u.Status {
	case "enabled":
		a.s.Status, a.s.DisabledReason = "enabled", ""
	case "disabled":
		a.s.Status, a.s.DisabledReason = "disabled", u.DisabledReason
	}
	return a.s, nil
}

// On the stock controller's path, on is crash-safe: interrupted after any update, the
// host is never left unfenced with a marker that says its evacuation is pending, and
// the next on completes the return.
func TestUnfenceStockPathIsCrashSafe(t *testing.T) {
	done := stock(ElsewhereDone)
	for crash := 1; crash <= 3; crash++ {
		a := &crashAPI{s: Service{ID: "x", Host: "c1", Binary: BinaryCompute, Status: "disabled", State: "up", ForcedDown: true,
			DisabledReason: "novaha:fenced 2026-01-02T03:04:05Z evacuate=yes"}, crashAtN: crash}
		if _, err := Unfence(context.Background(), a, a.s, done); err == nil {
			t.Fatalf("crash at update %d: no error", crash)
		}
		if st := StateOf(a.s); !a.s.ForcedDown && (st == StateFenced || st == StateEvacuating) {
			t.Errorf("crash at update %d left the force-down lifted with the evacuation pending: %+v", crash, a.s)
		}
		a.crashAtN = 0
		got, err := Unfence(context.Background(), a, a.s, done)
		if err != nil || got.ForcedDown || got.Status != "enabled" || got.DisabledReason != "" {
			t.Errorf("crash at update %d, then on again: %+v, %v", crash, got, err)
		}
	}
}
