package ocf_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/novaha/novaha/lib/ocf"
)

// fixture is an agent whose handlers record what they were given and return what the
// test says.
type fixture struct {
	agent    *ocf.Agent
	calls    []string
	req      *ocf.Request // the last handler's request
	handle   map[ocf.ActionName]ocf.Handler
	validate ocf.Handler
}

func newFixture() *fixture {
	f := &fixture{handle: map[ocf.ActionName]ocf.Handler{}}
	h := func(name ocf.ActionName) ocf.Handler {
		return func(ctx context.Context, r *ocf.Request) error {
			f.calls = append(f.calls, string(name))
			f.req = r
			if fn := f.handle[name]; fn != nil {
				return fn(ctx, r)
			}
			return nil
		}
	}
	f.agent = &ocf.Agent{
		Name:      "Test",
		Version:   "1.2.3",
		ShortDesc: "A test agent",
		LongDesc:  "A test agent for the framework's rules.",
		Params: []ocf.Param{
			{Name: "name", Type: ocf.String, Required: true, Unique: true, ShortDesc: "Name"},
			{Name: "port", Type: ocf.Integer, Default: "8774", ShortDesc: "Port"},
			{Name: "insecure", Type: ocf.Boolean, Default: "false", ShortDesc: "Skip TLS checks"},
			{Name: "wait", Type: ocf.Duration, Default: "30s", ShortDesc: "Wait"},
			{Name: "password", Type: ocf.String, Secret: true, ShortDesc: "Password"},
			{Name: "project_name", Aliases: []string{"tenant_name"}, Type: ocf.String, Default: "admin", ShortDesc: "Project"},
		},
		Validate: func(ctx context.Context, r *ocf.Request) error {
			f.calls = append(f.calls, "validate")
			if f.validate != nil {
				return f.validate(ctx, r)
			}
			return nil
		},
		Actions: []ocf.Action{
			{Name: ocf.Start, Timeout: 20 * time.Second, Handler: h(ocf.Start)},
			{Name: ocf.Stop, Timeout: 7 * time.Second, Handler: h(ocf.Stop)},
			{Name: ocf.Monitor, Timeout: 20 * time.Second, Interval: 10 * time.Second, Handler: h(ocf.Monitor)},
			{Name: ocf.Notify, Timeout: 5 * time.Second, Handler: h(ocf.Notify)},
		},
	}
	return f
}

type result struct {
	code           ocf.Code
	stdout, stderr string
}

// reason is the exit reason the agent printed, and whether it printed one.
func (r result) reason() (string, bool) {
	lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
	reason, ok := strings.CutPrefix(lines[len(lines)-1], ocf.DefaultExitReasonPrefix)
	if !ok {
		return "", false
	}
	return reason, true
}

func run(t *testing.T, a *ocf.Agent, args []string, env ...string) result {
	t.Helper()
	return runCtx(t, context.Background(), a, args, env...)
}

func runCtx(t *testing.T, ctx context.Context, a *ocf.Agent, args []string, env ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := a.Run(ctx, append([]string{"/usr/lib/ocf/resource.d/novaha/Test"}, args...), env, &stdout, &stderr)
	res := result{code: code, stdout: stdout.String(), stderr: stderr.String()}
	if n := strings.Count(res.stderr, ocf.DefaultExitReasonPrefix); n > 1 {
		t.Errorf("%d exit-reason lines, want at most one:\n%s", n, res.stderr)
	}
	if _, ok := res.reason(); !ok && strings.Contains(res.stderr, ocf.DefaultExitReasonPrefix) {
		t.Errorf("the exit-reason line is not the last line of stderr:\n%s", res.stderr)
	}
	return res
}

// valid is the environment of a valid configuration of the fixture.
var valid = []string{"OCF_RESOURCE_INSTANCE=r1", "OCF_RESKEY_name=n1"}

func env(extra ...string) []string { return append(append([]string(nil), valid...), extra...) }

func TestExitCodesAndReasons(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		env        []string
		handler    ocf.Handler // for start
		want       ocf.Code
		wantReason string // "" means no exit-reason line
		wantUsage  bool   // usage on stderr
	}{
		{name: "no action", args: nil, want: ocf.ErrArgs, wantReason: "no action given", wantUsage: true},
		{name: "empty action", args: []string{""}, want: ocf.ErrArgs, wantReason: "no action given", wantUsage: true},
		{name: "unknown action", args: []string{"frobnicate"}, want: ocf.ErrArgs, wantReason: `unknown action "frobnicate"`, wantUsage: true},
		{name: "promote on a non-promotable agent", args: []string{"promote"}, want: ocf.Unimplemented, wantReason: "Test does not implement the promote action"},
		{name: "demote", args: []string{"demote"}, want: ocf.Unimplemented, wantReason: "Test does not implement the demote action"},
		{name: "reload", args: []string{"reload"}, want: ocf.Unimplemented, wantReason: "Test does not implement the reload action"},
		{name: "migrate_to", args: []string{"migrate_to"}, want: ocf.Unimplemented, wantReason: "Test does not implement the migrate_to action"},
		{name: "status", args: []string{"status"}, want: ocf.Unimplemented, wantReason: "Test does not implement the status action"},
		{name: "success", args: []string{"start"}, env: valid, want: ocf.Success},
		{name: "extra arguments ignored", args: []string{"start", "extra"}, env: valid, want: ocf.Success},
		{name: "bare code", args: []string{"start"}, env: valid,
			handler: func(context.Context, *ocf.Request) error { return ocf.ErrPerm }, want: ocf.ErrPerm},
		{name: "Errorf", args: []string{"start"}, env: valid,
			handler: func(context.Context, *ocf.Request) error {
				return ocf.Errorf(ocf.NotInstalled, "no %s here", "libvirt")
			},
			want: ocf.NotInstalled, wantReason: "no libvirt here"},
		{name: "plain error", args: []string{"start"}, env: valid,
			handler: func(context.Context, *ocf.Request) error { return errors.New("nova-compute did not start") },
			want:    ocf.ErrGeneric, wantReason: "nova-compute did not start"},
		{name: "wrapped code", args: []string{"start"}, env: valid,
			handler: func(context.Context, *ocf.Request) error { return fmt.Errorf("pid 12 gone: %w", ocf.NotRunning) },
			want:    ocf.NotRunning, wantReason: "pid 12 gone: OCF_NOT_RUNNING"},
		{name: "degraded", args: []string{"start"}, env: valid,
			handler: func(context.Context, *ocf.Request) error { return ocf.Errorf(ocf.Degraded, "one of two links down") },
			want:    ocf.Degraded, wantReason: "one of two links down"},
		{name: "success with a note", args: []string{"start"}, env: valid,
			handler: func(context.Context, *ocf.Request) error { return ocf.Errorf(ocf.Success, "already running") },
			want:    ocf.Success},
		{name: "not an OCF code", args: []string{"start"}, env: valid,
			handler: func(context.Context, *ocf.Request) error { return ocf.Errorf(42, "odd") },
			want:    ocf.ErrGeneric, wantReason: "invalid OCF exit code 42: odd"},
		{name: "multi-line reason", args: []string{"start"}, env: valid,
			handler: func(context.Context, *ocf.Request) error { return errors.New("line one\nline two\r\n  three ") },
			want:    ocf.ErrGeneric, wantReason: "line one line two three"},
		{name: "panic", args: []string{"start"}, env: valid,
			handler: func(context.Context, *ocf.Request) error { panic("boom") },
			want:    ocf.ErrGeneric, wantReason: "start: internal error: boom"},
		{name: "nil map panic", args: []string{"start"}, env: valid,
			handler: func(context.Context, *ocf.Request) error { var m map[string]int; m["x"]++; return nil },
			want:    ocf.ErrGeneric, wantReason: "start: internal error: assignment to entry in nil map"},
		{name: "undeclared parameter", args: []string{"start"}, env: valid,
			handler: func(_ context.Context, r *ocf.Request) error { r.String("nope"); return nil },
			want:    ocf.ErrGeneric, wantReason: `start: internal error: ocf: agent Test declares no parameter "nope"`},
		{name: "parameter read as the wrong type", args: []string{"start"}, env: valid,
			handler: func(_ context.Context, r *ocf.Request) error { r.Bool("port"); return nil },
			want:    ocf.ErrGeneric, wantReason: "start: internal error: ocf: parameter port is integer, not boolean"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture()
			f.handle[ocf.Start] = tt.handler
			res := run(t, f.agent, tt.args, tt.env...)
			if res.code != tt.want {
				t.Errorf("exit code %s, want %s; stderr:\n%s", res.code, tt.want, res.stderr)
			}
			reason, printed := res.reason()
			if tt.wantReason == "" && printed {
				t.Errorf("exit reason %q, want none", reason)
			}
			if tt.wantReason != "" && reason != tt.wantReason {
				t.Errorf("exit reason %q, want %q; stderr:\n%s", reason, tt.wantReason, res.stderr)
			}
			if got := strings.Contains(res.stderr, "usage: Test {"); got != tt.wantUsage {
				t.Errorf("usage on stderr: %v, want %v", got, tt.wantUsage)
			}
			if res.stdout != "" {
				t.Errorf("stdout %q, want nothing", res.stdout)
			}
		})
	}
}

func TestExitReasonPrefix(t *testing.T) {
	f := newFixture()
	f.handle[ocf.Start] = func(_ context.Context, r *ocf.Request) error {
		r.Log().Info("first")
		r.Log().Warn("second")
		return errors.New("failed")
	}
	res := run(t, f.agent, []string{"start"}, env("OCF_EXIT_REASON_PREFIX=custom-reason:")...)
	lines := strings.Split(strings.TrimSuffix(res.stderr, "\n"), "\n")
	if last := lines[len(lines)-1]; last != "custom-reason:failed" {
		t.Errorf("last stderr line %q, want %q", last, "custom-reason:failed")
	}
	if strings.Count(res.stderr, "failed") != 1 {
		t.Errorf("the reason appears more than once on stderr:\n%s", res.stderr)
	}
}

func TestUsageAndMetadataGoToStdout(t *testing.T) {
	f := newFixture()
	for _, action := range []string{"usage", "help", "meta-data", "metadata", "manpage"} {
		t.Run(action, func(t *testing.T) {
			res := run(t, f.agent, []string{action})
			if res.code != ocf.Success || res.stdout == "" || res.stderr != "" {
				t.Errorf("%s: code %s, stdout %d bytes, stderr %q", action, res.code, len(res.stdout), res.stderr)
			}
		})
	}
	if m, md := run(t, f.agent, []string{"meta-data"}), run(t, f.agent, []string{"metadata"}); m.stdout != md.stdout {
		t.Error("metadata and meta-data differ")
	}
}

func TestParameters(t *testing.T) {
	tests := []struct {
		name   string
		env    []string
		check  func(t *testing.T, r *ocf.Request)
		want   ocf.Code
		reason string
	}{
		{name: "defaults", env: valid, check: func(t *testing.T, r *ocf.Request) {
			if r.String("name") != "n1" || r.Int("port") != 8774 || r.Bool("insecure") || r.Duration("wait") != 30*time.Second ||
				r.String("password") != "" || r.String("project_name") != "admin" {
				t.Errorf("values: name %q port %d insecure %v wait %s password %q project %q", r.String("name"), r.Int("port"),
					r.Bool("insecure"), r.Duration("wait"), r.String("password"), r.String("project_name"))
			}
			if !r.IsSet("name") || r.IsSet("port") || r.IsSet("password") {
				t.Errorf("IsSet: name %v port %v password %v", r.IsSet("name"), r.IsSet("port"), r.IsSet("password"))
			}
			if r.String("port") != "8774" || r.String("wait") != "30s" {
				t.Errorf("String of typed parameters: %q %q", r.String("port"), r.String("wait"))
			}
		}},
		{name: "typed values", env: env("OCF_RESKEY_port= 8080 ", "OCF_RESKEY_insecure=YES", "OCF_RESKEY_wait=2min", "OCF_RESKEY_password=s3cret"),
			check: func(t *testing.T, r *ocf.Request) {
				if r.Int("port") != 8080 || !r.Bool("insecure") || r.Duration("wait") != 2*time.Minute || r.String("password") != "s3cret" {
					t.Errorf("values: port %d insecure %v wait %s password %q", r.Int("port"), r.Bool("insecure"), r.Duration("wait"), r.String("password"))
				}
				if !r.IsSet("port") || !r.IsSet("password") {
					t.Error("IsSet false for given parameters")
				}
			}},
		{name: "empty means unset", env: env("OCF_RESKEY_port=", "OCF_RESKEY_insecure="), check: func(t *testing.T, r *ocf.Request) {
			if r.Int("port") != 8774 || r.IsSet("port") || r.Bool("insecure") {
				t.Errorf("port %d (set %v), insecure %v", r.Int("port"), r.IsSet("port"), r.Bool("insecure"))
			}
		}},
		{name: "alias", env: env("OCF_RESKEY_tenant_name=legacy"), check: func(t *testing.T, r *ocf.Request) {
			if r.String("project_name") != "legacy" || !r.IsSet("project_name") {
				t.Errorf("project_name %q", r.String("project_name"))
			}
		}},
		{name: "name wins over alias", env: env("OCF_RESKEY_tenant_name=legacy", "OCF_RESKEY_project_name=new"), check: func(t *testing.T, r *ocf.Request) {
			if r.String("project_name") != "new" {
				t.Errorf("project_name %q", r.String("project_name"))
			}
		}},
		{name: "bad alias value", env: env("OCF_RESKEY_tenant_name=x"), want: ocf.Success},
		{name: "required missing", env: []string{"OCF_RESOURCE_INSTANCE=r1"}, want: ocf.ErrConfigured,
			reason: "required parameter name is not set"},
		{name: "required empty", env: []string{"OCF_RESKEY_name="}, want: ocf.ErrConfigured,
			reason: "required parameter name is not set"},
		{name: "bad integer", env: env("OCF_RESKEY_port=http"), want: ocf.ErrConfigured,
			reason: `parameter port="http": not an integer`},
		{name: "bad boolean", env: env("OCF_RESKEY_insecure=maybe"), want: ocf.ErrConfigured,
			reason: `parameter insecure="maybe": not a boolean (want 1/yes/true/on or 0/no/false/off)`},
		{name: "bad time", env: env("OCF_RESKEY_wait=-3s"), want: ocf.ErrConfigured,
			reason: `parameter wait="-3s": negative time`},
		{name: "all problems at once", env: []string{"OCF_RESKEY_port=x", "OCF_RESKEY_insecure=x"}, want: ocf.ErrConfigured,
			reason: `required parameter name is not set; parameter port="x": not an integer; parameter insecure="x": not a boolean (want 1/yes/true/on or 0/no/false/off)`},
		{name: "bad OCF_CHECK_LEVEL", env: env("OCF_CHECK_LEVEL=deep"), want: ocf.ErrConfigured,
			reason: `OCF_CHECK_LEVEL="deep": not a depth`},
		{name: "unknown parameters ignored", env: env("OCF_RESKEY_colour=blue", "OCF_RESKEY_CRM_meta_clone_max=2", "OCF_RESKEY_crm_feature_set=3.16.2"), want: ocf.Success},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture()
			res := run(t, f.agent, []string{"start"}, tt.env...)
			if res.code != tt.want {
				t.Fatalf("exit code %s, want %s; stderr:\n%s", res.code, tt.want, res.stderr)
			}
			if reason, _ := res.reason(); reason != tt.reason {
				t.Errorf("exit reason %q, want %q", reason, tt.reason)
			}
			if tt.want != ocf.Success {
				if len(f.calls) != 0 {
					t.Errorf("calls %v, want none: a bad configuration never reaches start", f.calls)
				}
				return
			}
			if tt.check != nil {
				tt.check(t, f.req)
			}
		})
	}
}

func TestSecretsStayOut(t *testing.T) {
	f := newFixture()
	f.agent.Params = append(f.agent.Params, ocf.Param{Name: "pin", Type: ocf.Integer, Secret: true, ShortDesc: "PIN"})
	res := run(t, f.agent, []string{"start"}, env("HA_debug=1", "OCF_RESKEY_pin=hunter2", "OCF_RESKEY_password=hunter3")...)
	if res.code != ocf.ErrConfigured {
		t.Fatalf("exit code %s, want %s", res.code, ocf.ErrConfigured)
	}
	if reason, _ := res.reason(); reason != "parameter pin: not an integer" {
		t.Errorf("reason %q", reason)
	}
	if strings.Contains(res.stderr, "hunter") {
		t.Errorf("a secret on stderr:\n%s", res.stderr)
	}
	md := run(t, f.agent, []string{"meta-data"})
	if strings.Contains(md.stdout, "hunter") {
		t.Error("a secret in the metadata")
	}
}

func TestLogging(t *testing.T) {
	f := newFixture()
	f.handle[ocf.Start] = func(_ context.Context, r *ocf.Request) error {
		r.Log().Debug("debug detail")
		r.Log().Info("progress", "step", 2)
		return nil
	}
	res := run(t, f.agent, []string{"start"}, env("OCF_RESKEY_colour=blue")...)
	if !strings.Contains(res.stderr, "msg=progress rsc=r1 action=start step=2") {
		t.Errorf("log line not tagged with resource and action:\n%s", res.stderr)
	}
	if strings.Contains(res.stderr, "debug detail") || strings.Contains(res.stderr, "colour") {
		t.Errorf("debug messages without HA_debug:\n%s", res.stderr)
	}
	if strings.Contains(res.stderr, "time=") {
		t.Errorf("timestamps on stderr (Pacemaker's log has them):\n%s", res.stderr)
	}

	res = run(t, f.agent, []string{"start"}, env("HA_debug=1", "OCF_RESKEY_colour=blue", "OCF_RESKEY_shade=dark")...)
	if !strings.Contains(res.stderr, "debug detail") {
		t.Errorf("no debug messages with HA_debug=1:\n%s", res.stderr)
	}
	if !strings.Contains(res.stderr, `msg="ignoring parameters the agent does not declare" rsc=r1 action=start names=colour,shade`) {
		t.Errorf("unknown parameters not logged at debug level:\n%s", res.stderr)
	}
	if strings.Contains(res.stderr, "blue") {
		t.Errorf("the value of an unknown parameter was logged:\n%s", res.stderr)
	}
	res = run(t, f.agent, []string{"start"}, env("HA_debug=0")...)
	if strings.Contains(res.stderr, "debug detail") {
		t.Errorf("debug messages with HA_debug=0:\n%s", res.stderr)
	}
}

func TestRequestEnvironment(t *testing.T) {
	f := newFixture()
	run(t, f.agent, []string{"start"}, "OCF_RESKEY_name=n", "OCF_RESKEY_CRM_meta_on_node=compute-1", "PATH=/x", "OCF_RESKEY_CRM_meta_interval=0")
	r := f.req
	if r.Instance() != "default" || r.StateDir() != ocf.DefaultStateDir || r.Action() != ocf.Start || r.Depth() != 0 || r.IsProbe() {
		t.Errorf("instance %q state dir %q action %q depth %d probe %v", r.Instance(), r.StateDir(), r.Action(), r.Depth(), r.IsProbe())
	}
	if v, ok := r.Meta("on_node"); v != "compute-1" || !ok {
		t.Errorf("Meta(on_node) = %q, %v", v, ok)
	}
	if _, ok := r.Meta("notify_type"); ok {
		t.Error("Meta(notify_type) set")
	}
	if v, ok := r.LookupEnv("PATH"); v != "/x" || !ok {
		t.Errorf("LookupEnv(PATH) = %q, %v", v, ok)
	}
	if r.ConfigErr() != nil {
		t.Errorf("ConfigErr %v", r.ConfigErr())
	}

	run(t, f.agent, []string{"monitor"}, env("HA_RSCTMP=/tmp/x", "OCF_RESKEY_CRM_meta_interval=30000", "OCF_RESKEY_OCF_CHECK_LEVEL=10")...)
	r = f.req
	if r.Instance() != "r1" || r.StateDir() != "/tmp/x" || r.Interval() != 30*time.Second || r.Depth() != 10 || r.IsProbe() {
		t.Errorf("instance %q state dir %q interval %s depth %d probe %v", r.Instance(), r.StateDir(), r.Interval(), r.Depth(), r.IsProbe())
	}
	run(t, f.agent, []string{"monitor"}, env("OCF_CHECK_LEVEL=20", "OCF_RESKEY_OCF_CHECK_LEVEL=10")...)
	if f.req.Depth() != 20 {
		t.Errorf("depth %d, want OCF_CHECK_LEVEL's 20", f.req.Depth())
	}
}

func TestProbes(t *testing.T) {
	probe := "OCF_RESKEY_CRM_meta_interval=0"
	recurring := "OCF_RESKEY_CRM_meta_interval=10000"
	notInstalled := func(context.Context, *ocf.Request) error { return ocf.Errorf(ocf.NotInstalled, "no nova-compute") }
	invalid := func(context.Context, *ocf.Request) error { return errors.New("auth_url is not a URL") }
	tests := []struct {
		name      string
		env       []string
		validate  ocf.Handler
		monitor   ocf.Handler
		want      ocf.Code
		reason    string
		wantCalls string
		wantProbe bool
	}{
		{name: "probe, stopped", env: env(probe), monitor: retCode(ocf.NotRunning),
			want: ocf.NotRunning, wantCalls: "validate monitor", wantProbe: true},
		{name: "probe, running", env: env(probe),
			want: ocf.Success, wantCalls: "validate monitor", wantProbe: true},
		{name: "no interval is a probe", env: valid,
			want: ocf.Success, wantCalls: "validate monitor", wantProbe: true},
		{name: "probe, required parameter missing", env: []string{probe},
			want: ocf.NotRunning, reason: "probe: not running here with invalid parameters: required parameter name is not set"},
		{name: "probe, malformed parameter", env: env(probe, "OCF_RESKEY_port=x"),
			want: ocf.NotRunning, reason: `probe: not running here with invalid parameters: parameter port="x": not an integer`},
		{name: "probe, validation fails", env: env(probe), validate: invalid,
			want: ocf.NotRunning, reason: "probe: not running here with this configuration: auth_url is not a URL", wantCalls: "validate"},
		{name: "probe, not installed", env: env(probe), validate: notInstalled,
			want: ocf.NotInstalled, reason: "no nova-compute", wantCalls: "validate"},
		{name: "probe, monitor says misconfigured", env: env(probe),
			monitor: func(context.Context, *ocf.Request) error { return ocf.Errorf(ocf.ErrConfigured, "no such cloud") },
			want:    ocf.NotRunning, reason: "probe: no such cloud", wantCalls: "validate monitor", wantProbe: true},
		{name: "probe, monitor fails", env: env(probe),
			monitor: func(context.Context, *ocf.Request) error { return errors.New("cannot tell") },
			want:    ocf.ErrGeneric, reason: "cannot tell", wantCalls: "validate monitor", wantProbe: true},
		{name: "recurring, required parameter missing", env: []string{recurring},
			want: ocf.ErrConfigured, reason: "required parameter name is not set"},
		{name: "recurring, validation fails", env: env(recurring), validate: invalid,
			want: ocf.ErrConfigured, reason: "auth_url is not a URL", wantCalls: "validate"},
		{name: "recurring, not installed", env: env(recurring), validate: notInstalled,
			want: ocf.NotInstalled, reason: "no nova-compute", wantCalls: "validate"},
		{name: "recurring, monitor says misconfigured", env: env(recurring),
			monitor: func(context.Context, *ocf.Request) error { return ocf.Errorf(ocf.ErrConfigured, "no such cloud") },
			want:    ocf.ErrConfigured, reason: "no such cloud", wantCalls: "validate monitor"},
		{name: "malformed interval is not a probe", env: []string{"OCF_RESKEY_CRM_meta_interval=often"},
			want: ocf.ErrConfigured, reason: "required parameter name is not set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture()
			f.validate = tt.validate
			f.handle[ocf.Monitor] = tt.monitor
			res := run(t, f.agent, []string{"monitor"}, tt.env...)
			if res.code != tt.want {
				t.Errorf("exit code %s, want %s; stderr:\n%s", res.code, tt.want, res.stderr)
			}
			if reason, _ := res.reason(); reason != tt.reason {
				t.Errorf("exit reason %q, want %q", reason, tt.reason)
			}
			if got := strings.Join(f.calls, " "); got != tt.wantCalls {
				t.Errorf("calls %q, want %q", got, tt.wantCalls)
			}
			if f.req != nil && f.req.IsProbe() != tt.wantProbe {
				t.Errorf("IsProbe %v, want %v", f.req.IsProbe(), tt.wantProbe)
			}
		})
	}
}

func retCode(c ocf.Code) ocf.Handler {
	return func(context.Context, *ocf.Request) error { return c }
}

func TestStrictAndLenientActions(t *testing.T) {
	invalid := func(context.Context, *ocf.Request) error { return errors.New("bad cloud") }
	tests := []struct {
		name      string
		action    string
		env       []string
		validate  ocf.Handler
		handler   ocf.Handler
		want      ocf.Code
		reason    string
		wantCalls string
		configErr string
	}{
		{name: "validate-all", action: "validate-all", env: valid, want: ocf.Success, wantCalls: "validate"},
		{name: "validate-all, bad parameters", action: "validate-all", env: []string{"OCF_RESKEY_port=x"},
			want: ocf.ErrConfigured, reason: `required parameter name is not set; parameter port="x": not an integer`},
		{name: "validate-all, validation fails", action: "validate-all", env: valid, validate: invalid,
			want: ocf.ErrConfigured, reason: "bad cloud", wantCalls: "validate"},
		{name: "validate-all, permissions", action: "validate-all", env: valid,
			validate: func(context.Context, *ocf.Request) error { return ocf.Errorf(ocf.ErrPerm, "cannot read clouds.yaml") },
			want:     ocf.ErrPerm, reason: "cannot read clouds.yaml", wantCalls: "validate"},
		{name: "validate-all, bare code", action: "validate-all", env: valid, validate: retCode(ocf.ErrGeneric),
			want: ocf.ErrGeneric, wantCalls: "validate"},
		{name: "validate-all panics", action: "validate-all", env: valid,
			validate: func(context.Context, *ocf.Request) error { panic("oops") },
			want:     ocf.ErrGeneric, reason: "validate-all: internal error: oops", wantCalls: "validate"},
		{name: "start validates first", action: "start", env: valid, want: ocf.Success, wantCalls: "validate start"},
		{name: "start, validation fails", action: "start", env: valid, validate: invalid,
			want: ocf.ErrConfigured, reason: "bad cloud", wantCalls: "validate"},
		{name: "stop, bad parameters", action: "stop", env: []string{"OCF_RESKEY_port=x"},
			want: ocf.Success, wantCalls: "stop", configErr: `required parameter name is not set; parameter port="x": not an integer`},
		{name: "stop is not validated", action: "stop", env: valid, validate: invalid,
			want: ocf.Success, wantCalls: "stop"},
		{name: "stop, bad parameters, handler cannot tell", action: "stop", env: []string{"OCF_RESKEY_port=x"},
			handler: func(_ context.Context, r *ocf.Request) error {
				return fmt.Errorf("cannot find the service without a name: %w", r.ConfigErr())
			},
			want: ocf.ErrGeneric, reason: `cannot find the service without a name: required parameter name is not set; parameter port="x": not an integer`,
			wantCalls: "stop", configErr: `required parameter name is not set; parameter port="x": not an integer`},
		{name: "stop failure is reported", action: "stop", env: valid, handler: retCode(ocf.ErrGeneric),
			want: ocf.ErrGeneric, wantCalls: "stop"},
		{name: "notify, bad parameters", action: "notify", env: []string{"OCF_RESKEY_insecure=perhaps"},
			want: ocf.Success, wantCalls: "notify", configErr: `required parameter name is not set; parameter insecure="perhaps": not a boolean (want 1/yes/true/on or 0/no/false/off)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture()
			f.validate = tt.validate
			f.handle[ocf.ActionName(tt.action)] = tt.handler
			res := run(t, f.agent, []string{tt.action}, tt.env...)
			if res.code != tt.want {
				t.Errorf("exit code %s, want %s; stderr:\n%s", res.code, tt.want, res.stderr)
			}
			if reason, _ := res.reason(); reason != tt.reason {
				t.Errorf("exit reason %q, want %q", reason, tt.reason)
			}
			if got := strings.Join(f.calls, " "); got != tt.wantCalls {
				t.Errorf("calls %q, want %q", got, tt.wantCalls)
			}
			if f.req != nil {
				got := ""
				if err := f.req.ConfigErr(); err != nil {
					got = err.Error()
				}
				if got != tt.configErr {
					t.Errorf("ConfigErr %q, want %q", got, tt.configErr)
				}
				if tt.configErr != "" && (f.req.Int("port") != 8774 || f.req.Bool("insecure") || f.req.String("name") != "") {
					t.Errorf("bad values do not read as defaults: port %d insecure %v name %q", f.req.Int("port"), f.req.Bool("insecure"), f.req.String("name"))
				}
			}
		})
	}
}

func TestPromotable(t *testing.T) {
	f := newFixture()
	f.agent.Actions = append(f.agent.Actions,
		ocf.Action{Name: ocf.Promote, Timeout: 10 * time.Second, Handler: retCode(ocf.Success)},
		ocf.Action{Name: ocf.Demote, Timeout: 10 * time.Second, Handler: retCode(ocf.Success)},
		ocf.Action{Name: ocf.Monitor, Timeout: 20 * time.Second, Interval: 11 * time.Second, Role: "Master"},
	)
	for action, want := range map[string]ocf.Code{"promote": ocf.Success, "demote": ocf.Success, "reload": ocf.Unimplemented} {
		if res := run(t, f.agent, []string{action}, valid...); res.code != want {
			t.Errorf("%s: %s, want %s", action, res.code, want)
		}
	}
	if res := run(t, f.agent, []string{"promote"}, "OCF_RESKEY_port=x"); res.code != ocf.ErrConfigured {
		t.Errorf("promote with bad parameters: %s, want %s", res.code, ocf.ErrConfigured)
	}
}

func TestTimeouts(t *testing.T) {
	tests := []struct {
		name         string
		action       string
		env          []string
		wantTimeout  time.Duration
		wantDeadline time.Duration // from the handler's start, within a second
	}{
		{"from Pacemaker", "start", env("OCF_RESKEY_CRM_meta_timeout=60000"), 60 * time.Second, 55 * time.Second},
		{"margin is a tenth", "start", env("OCF_RESKEY_CRM_meta_timeout=20000"), 20 * time.Second, 18 * time.Second},
		{"declared timeout when Pacemaker gives none", "stop", valid, 7 * time.Second, 6 * time.Second},
		{"malformed timeout", "stop", env("OCF_RESKEY_CRM_meta_timeout=soon"), 7 * time.Second, 6 * time.Second},
		{"zero timeout", "stop", env("OCF_RESKEY_CRM_meta_timeout=0"), 7 * time.Second, 6 * time.Second},
		{"validate-all default", "validate-all", valid, 20 * time.Second, 18 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture()
			var timeout time.Duration
			var deadline time.Duration
			f.validate = func(ctx context.Context, r *ocf.Request) error {
				timeout = r.Timeout()
				d, _ := ctx.Deadline()
				deadline = time.Until(d)
				return nil
			}
			if tt.action == "stop" {
				f.handle[ocf.Stop] = f.validate
			}
			if res := run(t, f.agent, []string{tt.action}, tt.env...); res.code != ocf.Success {
				t.Fatalf("exit code %s; stderr:\n%s", res.code, res.stderr)
			}
			if timeout != tt.wantTimeout {
				t.Errorf("Timeout() = %s, want %s", timeout, tt.wantTimeout)
			}
			if deadline > tt.wantDeadline || deadline < tt.wantDeadline-time.Second {
				t.Errorf("deadline in %s, want %s", deadline, tt.wantDeadline)
			}
		})
	}
}

func TestHandlerOverrunsItsTimeout(t *testing.T) {
	f := newFixture()
	release := make(chan struct{})
	defer close(release)
	f.handle[ocf.Start] = func(context.Context, *ocf.Request) error {
		<-release // ignores its context
		return nil
	}
	begin := time.Now()
	// 300ms: the margin is 150ms, so the context expires after 150ms and Run gives up
	// 75ms later.
	res := run(t, f.agent, []string{"start"}, env("OCF_RESKEY_CRM_meta_timeout=300")...)
	elapsed := time.Since(begin)
	if res.code != ocf.ErrGeneric {
		t.Errorf("exit code %s, want %s", res.code, ocf.ErrGeneric)
	}
	if reason, _ := res.reason(); reason != "start timed out: no result 75ms before the 300ms operation timeout" {
		t.Errorf("reason %q", reason)
	}
	if elapsed < 200*time.Millisecond || elapsed > 2*time.Second {
		t.Errorf("gave up after %s, want about 225ms", elapsed)
	}
}

func TestHandlerHonoursItsTimeout(t *testing.T) {
	f := newFixture()
	f.handle[ocf.Start] = func(ctx context.Context, r *ocf.Request) error {
		<-ctx.Done()
		return fmt.Errorf("waiting for nova-compute: %w", ctx.Err())
	}
	res := run(t, f.agent, []string{"start"}, env("OCF_RESKEY_CRM_meta_timeout=200")...)
	if res.code != ocf.ErrGeneric {
		t.Errorf("exit code %s, want %s", res.code, ocf.ErrGeneric)
	}
	if reason, _ := res.reason(); reason != "start timed out (operation timeout 200ms): waiting for nova-compute: context deadline exceeded" {
		t.Errorf("reason %q", reason)
	}
}

func TestInterrupted(t *testing.T) {
	f := newFixture()
	ctx, cancel := context.WithCancel(context.Background())
	f.handle[ocf.Start] = func(hctx context.Context, r *ocf.Request) error {
		cancel()
		<-hctx.Done()
		return hctx.Err()
	}
	res := runCtx(t, ctx, f.agent, []string{"start"}, valid...)
	if reason, _ := res.reason(); res.code != ocf.ErrGeneric || reason != "start interrupted: context canceled" {
		t.Errorf("exit code %s, reason %q", res.code, reason)
	}
}

func TestRunConcurrently(t *testing.T) {
	f := newFixture()
	f.agent.Validate = nil
	f.agent.Actions[0].Handler = func(_ context.Context, r *ocf.Request) error {
		if r.Int("port") != 1000+len(r.Instance()) {
			return errors.New("crossed requests")
		}
		return nil
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			inst := strings.Repeat("x", i+1)
			res := run(t, f.agent, []string{"start"}, "OCF_RESKEY_name=n", "OCF_RESOURCE_INSTANCE="+inst, fmt.Sprintf("OCF_RESKEY_port=%d", 1000+len(inst)))
			if res.code != ocf.Success {
				t.Errorf("instance %s: %s %s", inst, res.code, res.stderr)
			}
		})
	}
	wg.Wait()
}

func TestMainUsage(t *testing.T) {
	f := newFixture()
	var stdout, stderr bytes.Buffer
	if code := f.agent.Main([]string{"Test", "usage"}, nil, &stdout, &stderr); code != 0 || !strings.HasPrefix(stdout.String(), "usage: Test ") {
		t.Errorf("Main usage: %d %q %q", code, stdout.String(), stderr.String())
	}
}

func TestDaemonLogger(t *testing.T) {
	var b strings.Builder
	log, closeLog := ocf.DaemonLogger(&b, []string{"HA_LOGFACILITY=none"}, "X(r)", false, "rsc", "r")
	log.Debug("hidden")
	log.Info("shown", "k", "v")
	closeLog()
	if got := b.String(); strings.Contains(got, "hidden") || !strings.Contains(got, "msg=shown rsc=r k=v") || !strings.HasPrefix(got, "time=") {
		t.Errorf("log %q", got)
	}
	b.Reset()
	log, closeLog = ocf.DaemonLogger(&b, nil, "X(r)", true)
	log.Debug("debug shown")
	closeLog()
	if !strings.Contains(b.String(), "debug shown") {
		t.Errorf("debug log %q", b.String())
	}
}
