package nova

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/novaha/novaha/lib/nova/novatest"
)

// The calls of the evacuation controller, and the exact requests they send per
// microversion.

func dialAt(t *testing.T, srv *novatest.Server, max string) *Client {
	t.Helper()
	srv.MaxMicroversion = max
	return dial(t, srv, newClock())
}

func fenced(hosts ...string) []novatest.Service {
	var out []novatest.Service
	for i, h := range hosts {
		out = append(out, novatest.Service{Host: h, Alive: i > 0, ForcedDown: i == 0, Disabled: i == 0})
	}
	return out
}

func TestListServersPagesAndEmbeddedFlavor(t *testing.T) {
	srv := novatest.New(t, fenced("compute1", "compute2")...)
	srv.PageSize = 2
	ids := srv.AddServers(
		novatest.Instance{Host: "compute1", FlavorExtraSpecs: map[string]string{"evacuable": "true"}, ImageID: "img-1",
			Metadata: map[string]string{"HA_Enabled": "True"}, Tags: []string{"db"}},
		novatest.Instance{Host: "compute1", Status: "SHUTOFF"},
		novatest.Instance{Host: "compute2"},
		novatest.Instance{Host: "compute1", Project: "other", Status: "ERROR"},
		novatest.Instance{Host: "compute1", TaskState: "rebuilding", Status: "REBUILD"},
	)
	c := dialAt(t, srv, "2.93")
	list, err := c.ListServers(context.Background(), ListServersOpts{Host: "compute1", AllTenants: true})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range list {
		got = append(got, s.ID)
	}
	if want := []string{ids[0], ids[1], ids[3], ids[4]}; !reflect.DeepEqual(got, want) {
		t.Fatalf("servers %v, want %v", got, want)
	}
	s0 := list[0]
	if s0.Host != "compute1" || s0.Status != "ACTIVE" || s0.VMState != "active" || s0.TaskState != "" || s0.ImageID != "img-1" ||
		s0.FlavorExtraSpecs["evacuable"] != "true" || s0.Metadata["HA_Enabled"] != "True" || !reflect.DeepEqual(s0.Tags, []string{"db"}) ||
		s0.Updated.IsZero() {
		t.Errorf("first server %+v", s0)
	}
	if list[1].Status != "SHUTOFF" || list[1].VMState != "stopped" || list[1].ImageID != "" {
		t.Errorf("second server %+v", list[1])
	}
	if list[3].TaskState != "rebuilding" {
		t.Errorf("rebuilding server %+v", list[3])
	}
	reqs := srv.Requests()
	var shapes []string
	for _, r := range reqs {
		if r.Microversion != "2.69" {
			t.Errorf("%s at microversion %q, want 2.69", r, r.Microversion)
		}
		shapes = append(shapes, r.String())
	}
	want := []string{
		"GET /servers/detail?all_tenants=1&host=compute1",
		"GET /servers/detail?all_tenants=1&host=compute1&limit=2&marker=" + ids[1],
		"GET /servers/detail?all_tenants=1&host=compute1&limit=2&marker=" + ids[4],
	}
	if !reflect.DeepEqual(shapes, want) {
		t.Errorf("requests\n%s\nwant\n%s", strings.Join(shapes, "\n"), strings.Join(want, "\n"))
	}
}

func TestListServersBefore247ReadsEachFlavorOnce(t *testing.T) {
	srv := novatest.New(t, fenced("compute1", "compute2")...)
	srv.AddServers(
		novatest.Instance{Host: "compute1", FlavorID: "7", FlavorExtraSpecs: map[string]string{"evacuable": "true"}},
		novatest.Instance{Host: "compute1", FlavorID: "7", FlavorExtraSpecs: map[string]string{"evacuable": "true"}},
		novatest.Instance{Host: "compute1", FlavorID: "8"},
	)
	c := dialAt(t, srv, "2.40")
	list, err := c.ListServers(context.Background(), ListServersOpts{Host: "compute1", AllTenants: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 3 || list[0].FlavorExtraSpecs["evacuable"] != "true" || list[1].FlavorExtraSpecs["evacuable"] != "true" ||
		len(list[2].FlavorExtraSpecs) != 0 {
		t.Fatalf("servers %+v", list)
	}
	want := []string{"GET /servers/detail?all_tenants=1&host=compute1", "GET /flavors/7/os-extra-specs", "GET /flavors/8/os-extra-specs"}
	if got := srv.NovaRequests(); !reflect.DeepEqual(got, want) {
		t.Errorf("requests %q, want %q", got, want)
	}
}

func TestListMigrations(t *testing.T) {
	srv := novatest.New(t, fenced("compute1", "compute2")...)
	ids := srv.AddServers(novatest.Instance{Host: "compute1"}, novatest.Instance{Host: "compute1"}, novatest.Instance{Host: "compute1"})
	c := dialAt(t, srv, "2.93")
	ctx := context.Background()
	for _, id := range ids {
		if err := c.Evacuate(ctx, id, EvacuateOpts{}); err != nil {
			t.Fatal(err)
		}
	}
	srv.PageSize = 2
	srv.Requests()
	list, err := c.ListMigrations(ctx, ListMigrationsOpts{SourceCompute: "compute1", MigrationType: MigrationEvacuation})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 3 {
		t.Fatalf("migrations %+v", list)
	}
	seen := map[string]bool{}
	for _, m := range list {
		seen[m.InstanceUUID] = true
		if m.SourceCompute != "compute1" || m.DestCompute != "compute2" || m.Status != "done" || m.MigrationType != "evacuation" ||
			m.UUID == "" || m.CreatedAt.IsZero() || m.ID == 0 {
			t.Errorf("migration %+v", m)
		}
	}
	if len(seen) != 3 {
		t.Errorf("migrations of %v", seen)
	}
	reqs := srv.Requests()
	if len(reqs) != 2 || reqs[0].Microversion != "2.59" ||
		reqs[0].String() != "GET /os-migrations?migration_type=evacuation&source_compute=compute1" ||
		!strings.HasPrefix(reqs[1].String(), "GET /os-migrations?limit=2&marker=") {
		t.Errorf("requests %v", reqs)
	}

	srv.PageSize = 1000
	since := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if _, err := c.ListMigrations(ctx, ListMigrationsOpts{SourceCompute: "compute1", MigrationType: MigrationEvacuation, ChangesSince: since}); err != nil {
		t.Fatal(err)
	}
	if got := srv.NovaRequests(); len(got) != 1 || got[0] != "GET /os-migrations?changes-since=2026-01-02T03%3A04%3A05Z&migration_type=evacuation&source_compute=compute1" {
		t.Errorf("requests %q", got)
	}

	// Before 2.59: no pages, no changes-since; before 2.23 no type in the answer.
	old := dialAt(t, srv, "2.20")
	list, err = old.ListMigrations(ctx, ListMigrationsOpts{SourceCompute: "compute1", MigrationType: MigrationEvacuation, ChangesSince: since})
	if err != nil || len(list) != 3 || list[0].MigrationType != "evacuation" || list[0].UUID != "" {
		t.Fatalf("at 2.20: %+v, %v", list, err)
	}
	reqs = srv.Requests()
	if len(reqs) != 1 || reqs[0].Microversion != "2.20" || reqs[0].Query != "migration_type=evacuation&source_compute=compute1" {
		t.Errorf("requests at 2.20: %v", reqs)
	}
}

func TestEvacuateRequestPerMicroversion(t *testing.T) {
	cases := []struct {
		name   string
		max    string
		opts   EvacuateOpts
		shared bool
		mv     string
		body   string
	}{
		{name: "zed, scheduler chooses", max: "2.93", mv: "2.93", body: `{"evacuate":{}}`},
		{name: "zed, named destination", max: "2.93", opts: EvacuateOpts{Host: "compute2"}, mv: "2.93", body: `{"evacuate":{"host":"compute2"}}`},
		{name: "newer nova, running", max: "2.96", mv: "2.94", body: `{"evacuate":{}}`},
		{name: "newer nova, stopped", max: "2.96", opts: EvacuateOpts{Stopped: true, Host: "compute3"}, mv: "2.95", body: `{"evacuate":{"host":"compute3"}}`},
		{name: "stopped without 2.95 keeps the power state", max: "2.93", opts: EvacuateOpts{Stopped: true}, mv: "2.93", body: `{"evacuate":{}}`},
		{name: "before 2.14 onSharedStorage is required", max: "2.13", mv: "2.13", body: `{"evacuate":{"onSharedStorage":false}}`},
		{name: "before 2.14 on shared storage", max: "2.11", shared: true, opts: EvacuateOpts{Host: "compute2"}, mv: "2.11",
			body: `{"evacuate":{"host":"compute2","onSharedStorage":true}}`},
		{name: "2.14 drops onSharedStorage", max: "2.14", shared: true, mv: "2.14", body: `{"evacuate":{}}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := novatest.New(t, fenced("compute1", "compute2", "compute3")...)
			id := srv.AddServers(novatest.Instance{Host: "compute1"})[0]
			srv.MaxMicroversion = tc.max
			cfg := testConfig(srv, newClock())
			cfg.OnSharedStorage = tc.shared
			c, err := Dial(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			srv.Requests()
			if got := c.EvacuateMicroversion(tc.opts).String(); got != tc.mv {
				t.Errorf("EvacuateMicroversion %s, want %s", got, tc.mv)
			}
			if err := c.Evacuate(context.Background(), id, tc.opts); err != nil {
				t.Fatal(err)
			}
			reqs := srv.Requests()
			if len(reqs) != 1 || reqs[0].Method != "POST" || reqs[0].Path != "/servers/"+id+"/action" || reqs[0].Microversion != tc.mv ||
				reqs[0].Body != tc.body {
				t.Errorf("requests %+v, want POST at %s with %s", reqs, tc.mv, tc.body)
			}
			if srv.Evacuations(id) != 1 {
				t.Errorf("the fake accepted %d evacuations", srv.Evacuations(id))
			}
			in := srv.Instance(id)
			wantHost := tc.opts.Host
			if wantHost == "" {
				wantHost = "compute2"
			}
			if in.Host != wantHost || in.TaskState != "" {
				t.Errorf("after the rebuild: %+v", in)
			}
			if wantStatus := map[bool]string{true: "SHUTOFF", false: "ACTIVE"}[tc.mv == "2.95"]; in.Status != wantStatus {
				t.Errorf("status %s, want %s", in.Status, wantStatus)
			}
		})
	}
}

func TestEvacuateErrors(t *testing.T) {
	srv := novatest.New(t, append(fenced("compute1", "compute2"), novatest.Service{Host: "compute3", Alive: true})...)
	ids := srv.AddServers(novatest.Instance{Host: "compute1", Refuse409: 1}, novatest.Instance{Host: "compute3"})
	c := dialAt(t, srv, "2.93")
	ctx := context.Background()
	srv.Fail(novatest.Fault{Match: "POST /servers/", Status: 503, Count: 1})
	err := c.Evacuate(ctx, ids[0], EvacuateOpts{})
	if StatusCode(err) != 503 || len(srv.NovaRequests()) != 1 {
		t.Fatalf("a 503 must not be retried: %v", err)
	}
	err = c.Evacuate(ctx, ids[0], EvacuateOpts{})
	if StatusCode(err) != 409 || !strings.Contains(err.Error(), "evacuating server "+ids[0]) {
		t.Errorf("refused: %v", err)
	}
	err = c.Evacuate(ctx, ids[1], EvacuateOpts{})
	if StatusCode(err) != 400 || !strings.Contains(err.Error(), "still in use") {
		t.Errorf("from a host that is up: %v", err)
	}
	err = c.Evacuate(ctx, "no-such-server", EvacuateOpts{})
	if StatusCode(err) != 404 {
		t.Errorf("unknown server: %v", err)
	}
	// Refused once, then accepted; a second request while it rebuilds is refused.
	srv.SetRebuildTime(time.Hour)
	if err := c.Evacuate(ctx, ids[0], EvacuateOpts{}); err != nil {
		t.Fatal(err)
	}
	if err := c.Evacuate(ctx, ids[0], EvacuateOpts{}); StatusCode(err) != 409 {
		t.Errorf("while rebuilding: %v", err)
	}
	if n := srv.Evacuations(ids[0]); n != 1 {
		t.Errorf("%d evacuations accepted", n)
	}
}

func TestHypervisorsFromPlacement(t *testing.T) {
	srv := novatest.New(t,
		novatest.Service{Host: "compute1", ForcedDown: true},
		novatest.Service{Host: "compute2", Alive: true, VCPUs: 8, RAMMB: 8192},
		novatest.Service{Host: "compute3", Alive: true, VCPUs: 2, RAMMB: 4096})
	srv.AddServers(novatest.Instance{Host: "compute2", VCPUs: 2, RAMMB: 1024},
		novatest.Instance{Host: "compute3", VCPUs: 2, RAMMB: 1024})
	c := dialAt(t, srv, "2.93")
	hv, err := c.Hypervisors(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []Hypervisor{{"compute1", 64, 131072}, {"compute2", 6, 7168}, {"compute3", 0, 0}}
	if !reflect.DeepEqual(hv, want) {
		t.Errorf("hypervisors %+v, want %+v", hv, want)
	}
	reqs := srv.Requests()
	var shapes []string
	for _, r := range reqs {
		if r.Path == "/v3/auth/tokens" {
			continue
		}
		shapes = append(shapes, r.Service+" "+r.OpenStackAPI+" "+r.String())
	}
	wantReqs := []string{"compute compute 2.88 GET /os-hypervisors/detail",
		"placement placement 1.10 GET /allocation_candidates?resources=VCPU%3A1%2CMEMORY_MB%3A1"}
	if !reflect.DeepEqual(shapes, wantReqs) {
		t.Errorf("requests %q, want %q", shapes, wantReqs)
	}

	// Without Placement, after 2.88: unknown; before 2.88: Nova's own figures.
	srv.NoPlacement = true
	c = dialAt(t, srv, "2.93")
	hv, err = c.Hypervisors(context.Background())
	if err != nil || len(hv) != 3 || hv[1] != (Hypervisor{"compute2", -1, -1}) {
		t.Errorf("without placement at 2.88: %+v %v", hv, err)
	}
	c = dialAt(t, srv, "2.40")
	hv, err = c.Hypervisors(context.Background())
	if err != nil || len(hv) != 3 || hv[1] != (Hypervisor{"compute2", 6, 7168}) {
		t.Errorf("without placement at 2.40: %+v %v", hv, err)
	}
}

func TestImageProperties(t *testing.T) {
	srv := novatest.New(t, fenced("compute1")...)
	srv.AddImage(novatest.Image{ID: "img-1", Name: "cirros", Properties: map[string]string{"evacuable": "true"}, Tags: []string{"ha"}})
	c := dialAt(t, srv, "2.93")
	props, tags, err := c.ImageProperties(context.Background(), "img-1")
	if err != nil || props["evacuable"] != "true" || props["name"] != "cirros" || props["protected"] != "false" || !reflect.DeepEqual(tags, []string{"ha"}) {
		t.Fatalf("image: %v %v %v", props, tags, err)
	}
	r := srv.Requests()
	if len(r) != 1 || r[0].Service != "image" || r[0].Path != "/v2/images/img-1" || r[0].Token != novatest.Token {
		t.Errorf("requests %v", r)
	}
	_, _, err = c.ImageProperties(context.Background(), "gone")
	if StatusCode(err) != 404 || !strings.HasPrefix(err.Error(), "Glance answered HTTP 404") {
		t.Errorf("missing image: %v", err)
	}
}

func TestCachedTokenReadsTheCatalogOnce(t *testing.T) {
	srv := novatest.New(t, fenced("compute1")...)
	srv.AddImage(novatest.Image{ID: "img-1"})
	cfg := testConfig(srv, newClock())
	cfg.TokenCacheDir = filepath.Join(t.TempDir(), "tokens")
	ctx := context.Background()
	if _, err := Dial(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	c, err := Dial(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv.Requests()
	for range 2 {
		if _, _, err := c.ImageProperties(ctx, "img-1"); err != nil {
			t.Fatal(err)
		}
	}
	var auth int
	for _, r := range srv.Requests() {
		if r.Path == "/v3/auth/tokens" {
			auth++
		}
	}
	if auth != 1 {
		t.Errorf("%d logins, want 1 to read the catalog", auth)
	}
	srv.NoPlacement = true
	if _, err := c.catalogService(ctx, typePlacement); err != nil {
		t.Errorf("placement was in the catalog read first: %v", err)
	}
	c2 := dial(t, srv, newClock())
	if _, err := c2.catalogService(ctx, typePlacement); !errors.Is(err, ErrNoEndpoint) {
		t.Errorf("no placement: %v", err)
	}
}
