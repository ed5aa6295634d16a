package fence

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/novaha/novaha/lib/clock/clocktest"
)

// fakeClock advances only when slept on, so the verification loops run without waiting.
type fakeClock = clocktest.Fake

func newFakeClock() *fakeClock { return clocktest.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) }

// fakeDevice is a power switch whose behaviour each test scripts.
type fakeDevice struct {
	mu      sync.Mutex
	state   State
	calls   []string
	lagPoll int  // status polls after SetPower before the state changes
	stuck   bool // SetPower is accepted but nothing changes
	stuckOn bool // power on is accepted but nothing changes
	// failPolls: after SetPower, this many status reads fail as if the session died.
	failPolls int
	opens     int
	statErr   error // Status fails with this
	setErr    error // SetPower fails with this
	openErr   error
	outlets   []Outlet
	clock     *fakeClock
	pending   *State
	polls     int
	// deadlines records the time left on each call's context, by call name.
	deadlines map[string]time.Duration
}

func (d *fakeDevice) note(ctx context.Context, call string) {
	d.calls = append(d.calls, call)
	if dl, ok := ctx.Deadline(); ok && d.deadlines != nil {
		d.deadlines[call] = time.Until(dl).Round(time.Second)
	}
}

func (d *fakeDevice) Status(ctx context.Context, plug string) (State, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.note(ctx, "status")
	if d.statErr != nil {
		return Unknown, d.statErr
	}
	if d.pending != nil && d.failPolls > 0 {
		d.failPolls--
		return Unknown, errors.New("session lost")
	}
	if d.pending != nil {
		d.polls++
		if d.polls > d.lagPoll {
			d.state = *d.pending
			d.pending = nil
		}
	}
	return d.state, nil
}

func (d *fakeDevice) SetPower(ctx context.Context, plug string, on bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.note(ctx, "set-"+stateOf(on).String())
	if d.setErr != nil {
		return d.setErr
	}
	if !d.stuck && !(on && d.stuckOn) {
		s := stateOf(on)
		d.pending = &s
		d.polls = 0
	}
	return nil
}

func (d *fakeDevice) Close(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls = append(d.calls, "close")
	return nil
}

type listingDevice struct{ *fakeDevice }

func (d listingDevice) List(ctx context.Context) ([]Outlet, error) {
	if d.statErr != nil {
		return nil, d.statErr
	}
	return d.outlets, nil
}

func testAgent(dev Device, clock *fakeClock) *Agent {
	a := &Agent{
		Name:      "fence_test",
		ShortDesc: "Fence agent for tests",
		LongDesc:  "A test agent.",
		Version:   "1.2.3",
		Params: []Param{
			IP(true), IPPort(623), Username(false), Password(), PasswordScript(), Plug(false, ""),
			Method(), MissingAsOff(), PortAsIP(),
			{Name: "flavour", Short: 'F', Type: Select, Choices: []string{"plain", "fancy"}, Default: "plain", Help: "A select option"},
		},
		Open: func(ctx context.Context, o *Options) (Device, error) {
			fd, ok := dev.(*fakeDevice)
			if l, isList := dev.(listingDevice); isList {
				fd, ok = l.fakeDevice, true
			}
			if ok {
				fd.mu.Lock()
				fd.opens++
				fd.mu.Unlock()
			}
			if ok && fd.openErr != nil {
				return nil, fd.openErr
			}
			if fd, ok := dev.(*fakeDevice); ok && fd.deadlines != nil {
				fd.note(ctx, "open")
			}
			return dev, nil
		},
	}
	if clock != nil {
		a.Clock = clock
	}
	return a
}

type result struct {
	code           int
	stdout, stderr string
}

func runAgent(t *testing.T, a *Agent, args []string, stdin string, env map[string]string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := a.Run(context.Background(), Invocation{
		Args: args, Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb,
		Getenv: func(k string) string { return env[k] },
	})
	return result{code, out.String(), errb.String()}
}

func TestAgentDeclarationIsConsistent(t *testing.T) {
	if err := testAgent(&fakeDevice{}, nil).Check(); err != nil {
		t.Fatal(err)
	}
	bad := &Agent{Name: "x", Params: []Param{{Name: "ip", Help: "dup", Type: String}, {Name: "n", Type: Integer, Default: "x", Help: "h"},
		{Name: "s", Secret: true, Default: "pw", Help: "h"}, {Name: "sel", Type: Select, Help: "h"}}}
	err := bad.Check()
	for _, want := range []string{"fence_", "no Open", "secret parameter s", "select parameter sel", "defaults"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Check() = %v, want it to mention %q", err, want)
		}
	}
	dupShort := &Agent{Name: "fence_x", Open: testAgent(nil, nil).Open, Params: []Param{{Name: "one", Short: 'o', Help: "h"}}}
	if err := dupShort.Check(); err == nil || !strings.Contains(err.Error(), "-o") {
		t.Errorf("duplicate short flag not reported: %v", err)
	}
}

func TestStdinParsing(t *testing.T) {
	cases := []struct {
		name, stdin string
		want        map[string]string // canonical name -> raw value
		warn        string
		notInWarn   string
	}{
		{name: "comments blanks whitespace quotes", stdin: "# comment\n\n  action=status  \nip=\"10.0.0.1\"\n",
			want: map[string]string{"action": "status", "ip": "10.0.0.1"}},
		{name: "last occurrence wins", stdin: "ip=1.1.1.1\nip=2.2.2.2\n", want: map[string]string{"ip": "2.2.2.2"}},
		{name: "old names", stdin: "ipaddr=h\nlogin=u\npasswd=s3cret\npasswd_script=/bin/x\nport=n1\ndebug=/tmp/f\n",
			want: map[string]string{"ip": "h", "username": "u", "password": "s3cret", "password_script": "/bin/x", "plug": "n1", "debug_file": "/tmp/f"}},
		{name: "dash and underscore", stdin: "power-timeout=7\npassword-script=/s\nstonith_status_sleep=2\n",
			want: map[string]string{"power_timeout": "7", "password_script": "/s", "stonith_status_sleep": "2"}},
		{name: "legacy option", stdin: "option=off\n", want: map[string]string{"action": "off"}},
		{name: "booleans", stdin: "missing_as_off=YES\nport_as_ip=0\nquiet=off\n",
			want: map[string]string{"missing_as_off": "1", "port_as_ip": "0", "quiet": "0"}},
		{name: "zero means false", stdin: "missing_as_off=0\n", want: map[string]string{"missing_as_off": "0"}},
		{name: "bad boolean ignored", stdin: "missing_as_off=maybe\n", want: map[string]string{}, warn: "valid boolean"},
		{name: "unknown name warns without value", stdin: "secretish=hunter2\n", want: map[string]string{},
			warn: "Ignoring unknown option 'secretish'", notInWarn: "hunter2"},
		{name: "value with equals", stdin: "password=a=b\n", want: map[string]string{"password": "a=b"}},
		{name: "no value", stdin: "ip\n", want: map[string]string{"ip": ""}},
		{name: "nodename is silent", stdin: "nodename=compute-1\n", want: map[string]string{"nodename": "compute-1"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := newOptions(testAgent(nil, nil).allParams())
			if err := o.parseStdin(strings.NewReader(tc.stdin)); err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.want {
				if o.raw[k] != v || !o.given[k] {
					t.Errorf("%s = %q (given %v), want %q", k, o.raw[k], o.given[k], v)
				}
			}
			if len(o.given) != len(tc.want) {
				t.Errorf("given = %v, want exactly %v", o.given, tc.want)
			}
			warns := strings.Join(o.warnings, "\n")
			if tc.warn != "" && !strings.Contains(warns, tc.warn) {
				t.Errorf("warnings %q lack %q", warns, tc.warn)
			}
			if tc.warn == "" && warns != "" {
				t.Errorf("unexpected warnings %q", warns)
			}
			if tc.notInWarn != "" && strings.Contains(warns, tc.notInWarn) {
				t.Errorf("warning leaks %q", tc.notInWarn)
			}
		})
	}
}

func TestStdinLineTooLong(t *testing.T) {
	o := newOptions(testAgent(nil, nil).allParams())
	err := o.parseStdin(strings.NewReader("ip=" + strings.Repeat("x", maxStdinLine+1)))
	if err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Fatalf("err = %v", err)
	}
}

func TestFlagParsing(t *testing.T) {
	o := newOptions(testAgent(nil, nil).allParams())
	if err := o.parseFlags("fence_test", []string{"-o", "status", "--ip=h", "-vvv", "--missing-as-off", "--port-as-ip=0", "-l", "u", "extra"}); err != nil {
		t.Fatal(err)
	}
	o.applyDefaults(nil)
	if err := o.typecheck(); err != nil {
		t.Fatal(err)
	}
	if o.Action() != "status" || o.String(ParamIP) != "h" || o.String(ParamUsername) != "u" {
		t.Errorf("values: %v", o.raw)
	}
	if o.VerboseLevel() != 3 {
		t.Errorf("verbose level = %d, want 3", o.VerboseLevel())
	}
	if !o.Bool(ParamMissingAsOff) || o.Bool(ParamPortAsIP) {
		t.Errorf("booleans wrong: %v", o.raw)
	}
	if o.Int(ParamIPPort) != 623 || o.Seconds(ParamPowerTimeout) != 20*time.Second || o.Seconds(ParamShellTimeout) != 3*time.Second ||
		o.Seconds(ParamLoginTimeout) != 5*time.Second || o.Seconds(ParamPowerWait) != 0 || o.Seconds(ParamStonithStatusSleep) != time.Second ||
		o.Int(ParamRetryOn) != 1 || o.Seconds(ParamDelay) != 0 {
		t.Errorf("defaults wrong: %v", o.raw)
	}
	if !strings.Contains(strings.Join(o.warnings, ""), "Unused arguments") {
		t.Errorf("no warning for a stray argument")
	}
	for _, bad := range [][]string{{"--nope"}, {"--missing-as-off=maybe"}, {"-o"}} {
		o := newOptions(testAgent(nil, nil).allParams())
		if err := o.parseFlags("fence_test", bad); err == nil || !strings.HasPrefix(err.Error(), "Parse error") {
			t.Errorf("%v: err = %v", bad, err)
		}
	}
}

func TestValidation(t *testing.T) {
	cases := []struct {
		stdin string
		want  string // "" = valid
	}{
		{"action=status\nip=h\n", ""},
		{"action=status\n", "You have to enter fence address"},
		{"action=status\nport=10.0.0.9\nport_as_ip=1\n", ""},
		{"action=status\nip=h\npower_timeout=abc\n", "--power-timeout is not a valid time in seconds"},
		{"action=status\nip=h\npower_timeout=-1\n", "not a valid time in seconds"},
		{"action=status\nip=h\nipport=x\n", "--ipport is not a valid integer"},
		{"action=status\nip=h\nmethod=sideways\n", "valid choice for --method"},
		{"action=status\nip=h\nmethod=CYCLE\n", ""},
	}
	for _, tc := range cases {
		a := testAgent(&fakeDevice{state: On}, newFakeClock())
		r := runAgent(t, a, nil, tc.stdin, nil)
		if tc.want == "" {
			if r.code != ExitSuccess {
				t.Errorf("%q: exit %d, stderr %q", tc.stdin, r.code, r.stderr)
			}
			continue
		}
		if r.code != ExitFailure || !strings.Contains(r.stderr, tc.want) || !strings.Contains(r.stderr, "Please use '-h' for usage") {
			t.Errorf("%q: exit %d stderr %q, want exit 1 with %q", tc.stdin, r.code, r.stderr, tc.want)
		}
	}
}

func TestRequiredPasswordAcceptsScript(t *testing.T) {
	a := testAgent(&fakeDevice{state: On}, newFakeClock())
	a.Params[3].Required = true
	if r := runAgent(t, a, nil, "action=validate-all\nip=h\n", nil); r.code != 1 || !strings.Contains(r.stderr, "password or password script") {
		t.Errorf("missing password: %+v", r)
	}
	if r := runAgent(t, a, nil, "action=validate-all\nip=h\npassword_script=/bin/true\n", nil); r.code != 0 {
		t.Errorf("password_script not accepted: %+v", r)
	}
}

func TestValidateAllIsOfflineAndPlugNeedsNoNetwork(t *testing.T) {
	dev := &fakeDevice{openErr: errors.New("must not connect")}
	a := testAgent(dev, newFakeClock())
	r := runAgent(t, a, []string{"-o", "validate-all", "-a", "h", "-n", "node1"}, "", nil)
	if r.code != 0 {
		t.Fatalf("validate-all: %+v", r)
	}
	r = runAgent(t, a, []string{"-o", "validate-all"}, "", nil)
	if r.code != 1 || !strings.Contains(r.stderr, "validate-all failed") {
		t.Fatalf("validate-all without ip: %+v", r)
	}
}

func TestActions(t *testing.T) {
	boom := errors.New("device says no")
	cases := []struct {
		name      string
		dev       *fakeDevice
		stdin     string
		code      int
		stdout    string
		stderr    string
		calls     string
		noStderr  bool
		listable  bool
		pacemaker bool
		opens     int
	}{
		{name: "status on", dev: &fakeDevice{state: On}, stdin: "action=status", code: 0, stdout: "Status: ON\n", calls: "status close"},
		{name: "status off", dev: &fakeDevice{state: Off}, stdin: "action=status", code: 2, stdout: "Status: OFF\n"},
		{name: "status error", dev: &fakeDevice{statErr: boom}, stdin: "action=status", code: 1, stderr: "Unable to obtain correct plug status or plug is not available: device says no"},
		{name: "status deadline", dev: &fakeDevice{statErr: context.DeadlineExceeded}, stdin: "action=status", code: 1, stderr: "timed out"},
		{name: "missing as off", dev: &fakeDevice{statErr: fmt.Errorf("vm9: %w", ErrNoSuchPlug)}, stdin: "action=status\nmissing_as_off=1\nplug=vm9", code: 2, stdout: "Status: OFF\n"},
		{name: "missing fails without option", dev: &fakeDevice{statErr: fmt.Errorf("vm9: %w", ErrNoSuchPlug)}, stdin: "action=off\nplug=vm9", code: 1, stderr: "no such plug"},
		{name: "off", dev: &fakeDevice{state: On, lagPoll: 3}, stdin: "action=off", code: 0, stdout: "Success: Powered OFF\n",
			calls: "status set-OFF status status status status close"},
		{name: "already off", dev: &fakeDevice{state: Off}, stdin: "action=off", code: 0, stdout: "Success: Already OFF\n", calls: "status close"},
		{name: "already on", dev: &fakeDevice{state: On}, stdin: "action=on", code: 0, stdout: "Success: Already ON\n"},
		{name: "off never verified", dev: &fakeDevice{state: On, stuck: true}, stdin: "action=off\npower_timeout=5", code: 1,
			stderr: "Failed: Timed out waiting to power OFF", calls: "status set-OFF status status status status status status close"},
		{name: "off request refused", dev: &fakeDevice{state: On, setErr: boom}, stdin: "action=off", code: 1, stderr: "Unable to power OFF: device says no"},
		{name: "on retried", dev: &fakeDevice{state: Off, stuck: true}, stdin: "action=on\npower_timeout=1\nretry_on=2", code: 1,
			stderr: "Timed out waiting to power ON", calls: "status set-ON status status set-ON status status set-ON status status close"},
		{name: "on", dev: &fakeDevice{state: Off}, stdin: "action=on", code: 0, stdout: "Success: Powered ON\n", calls: "status set-ON status close"},
		{name: "reboot", dev: &fakeDevice{state: On}, stdin: "action=reboot", code: 0, stdout: "Success: Rebooted\n",
			calls: "status set-OFF status set-ON status close"},
		{name: "reboot is the default", dev: &fakeDevice{state: On}, stdin: "", code: 0, stdout: "Success: Rebooted\n"},
		{name: "reboot from off only powers on", dev: &fakeDevice{state: Off}, stdin: "action=reboot", code: 0, stdout: "Success: Rebooted\n",
			calls: "status set-ON status close"},
		{name: "reboot fails when off is not verified", dev: &fakeDevice{state: On, stuck: true}, stdin: "action=reboot\npower_timeout=1", code: 1,
			stderr: "Timed out waiting to power OFF"},
		{name: "reboot with retry_on=0 leaves it off", dev: &fakeDevice{state: On}, stdin: "action=reboot\nretry_on=0", code: 0,
			calls: "status set-OFF status close"},
		{name: "cycle is a verified off then on", dev: &fakeDevice{state: On}, stdin: "action=reboot\nmethod=cycle", code: 0, stdout: "Success: Rebooted\n",
			stderr: "cannot be verified", calls: "status set-OFF status set-ON status close"},
		{name: "cycle fails when off is not verified", dev: &fakeDevice{state: On, stuck: true}, stdin: "action=reboot\nmethod=cycle\npower_timeout=1", code: 1,
			stderr: "Timed out waiting to power OFF"},
		{name: "power_timeout=0 means no limit", dev: &fakeDevice{state: On, lagPoll: 40}, stdin: "action=off\npower_timeout=0", code: 0,
			stdout: "Success: Powered OFF\n"},
		{name: "reboot under pacemaker bounds the power on", dev: &fakeDevice{state: On, stuckOn: true}, stdin: "action=reboot\npower_timeout=3", code: 0,
			stdout: "Success: Rebooted\n", stderr: "Timed out waiting to power ON", pacemaker: true},
		{name: "session lost while polling is re-opened", dev: &fakeDevice{state: On, lagPoll: 1, failPolls: 3}, stdin: "action=off", code: 0,
			stdout: "Success: Powered OFF\n", opens: 4},
		{name: "list keeps names whose parts only look bad together", dev: &fakeDevice{outlets: []Outlet{{Name: "inv", Alias: "alid-host"}}},
			stdin: "action=list", code: 0, stdout: "inv,alid-host\n", listable: true},
		{name: "unknown action", dev: &fakeDevice{}, stdin: "action=explode", code: 1, stderr: "Failed: Unrecognised action 'explode'", calls: ""},
		{name: "start is not ours", dev: &fakeDevice{}, stdin: "action=start", code: 1, stderr: "Unrecognised action 'start'"},
		{name: "monitor", dev: &fakeDevice{state: Off}, stdin: "action=monitor", code: 0, stdout: "", calls: "status close"},
		{name: "monitor unreachable", dev: &fakeDevice{statErr: boom}, stdin: "action=monitor", code: 1, stderr: "not available"},
		{name: "monitor lists", dev: &fakeDevice{outlets: []Outlet{{Name: "a"}}}, stdin: "action=monitor", code: 0, listable: true, calls: "close"},
		{name: "list", dev: &fakeDevice{outlets: []Outlet{{Name: "vm1", Alias: "uuid-1", State: On}, {Name: "vm 2"}, {Name: "invalid-one"}, {Name: "vm3", Alias: "bad alias"}}},
			stdin: "action=list", code: 0, stdout: "vm1,uuid-1\nvm3,\n", stderr: "cannot be listed", listable: true},
		{name: "list-status", dev: &fakeDevice{outlets: []Outlet{{Name: "vm1", State: On}, {Name: "vm2", State: Off}, {Name: "vm3"}}},
			stdin: "action=list-status", code: 0, stdout: "vm1,,ON\nvm2,,OFF\nvm3,,UNKNOWN\n", listable: true},
		{name: "list with a separator", dev: &fakeDevice{outlets: []Outlet{{Name: "vm1", Alias: "u1", State: On}}},
			stdin: "action=list-status\nseparator=;", code: 0, stdout: "vm1;u1;ON\n", listable: true},
		{name: "list unsupported", dev: &fakeDevice{}, stdin: "action=list", code: 1, stderr: "Unrecognised action 'list'"},
		{name: "pacemaker waits beyond power_timeout", dev: &fakeDevice{state: On, lagPoll: 40}, stdin: "action=off\npower_timeout=5", code: 0,
			stdout: "Success: Powered OFF\n", pacemaker: true},
		{name: "explicit disable_timeout=0 under pacemaker", dev: &fakeDevice{state: On, lagPoll: 40}, stdin: "action=off\npower_timeout=5\ndisable_timeout=0", code: 1,
			stderr: "Timed out waiting to power OFF", pacemaker: true},
		{name: "quiet", dev: &fakeDevice{statErr: boom}, stdin: "action=status\nquiet=1", code: 1, noStderr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var dev Device = tc.dev
			if tc.listable {
				dev = listingDevice{tc.dev}
			}
			a := testAgent(dev, newFakeClock())
			a.Lists = tc.listable
			env := map[string]string{}
			if tc.pacemaker {
				env["PCMK_service"] = "pacemaker-fenced"
			}
			r := runAgent(t, a, nil, tc.stdin+"\nip=10.0.0.1\n", env)
			if r.code != tc.code {
				t.Errorf("exit %d, want %d (stdout %q, stderr %q)", r.code, tc.code, r.stdout, r.stderr)
			}
			if tc.stdout != "" && r.stdout != tc.stdout || tc.stdout == "" && tc.code != 0 && r.stdout != "" {
				t.Errorf("stdout %q, want %q", r.stdout, tc.stdout)
			}
			if tc.stderr != "" && !strings.Contains(r.stderr, tc.stderr) {
				t.Errorf("stderr %q lacks %q", r.stderr, tc.stderr)
			}
			if tc.noStderr && r.stderr != "" {
				t.Errorf("stderr %q, want none", r.stderr)
			}
			if tc.opens != 0 && tc.dev.opens != tc.opens {
				t.Errorf("opened the device %d times, want %d", tc.dev.opens, tc.opens)
			}
			if tc.calls != "" && strings.Join(tc.dev.calls, " ") != tc.calls {
				t.Errorf("calls %q, want %q", strings.Join(tc.dev.calls, " "), tc.calls)
			}
		})
	}
}

func TestTimingBoundsEachCall(t *testing.T) {
	dev := &fakeDevice{state: On, deadlines: map[string]time.Duration{}}
	clock := newFakeClock()
	a := testAgent(dev, clock)
	a.Clock = nil // real deadlines on the contexts; the device answers at once
	r := runAgent(t, a, nil, "action=off\nip=h\nlogin_timeout=7\nshell_timeout=4\n", nil)
	if r.code != 0 {
		t.Fatalf("%+v", r)
	}
	if dev.deadlines["open"] != 7*time.Second || dev.deadlines["status"] != 4*time.Second || dev.deadlines["set-OFF"] != 4*time.Second {
		t.Errorf("deadlines %v", dev.deadlines)
	}
}

func TestDelayOnlyBeforeOffAndReboot(t *testing.T) {
	for action, wantDelay := range map[string]bool{"off": true, "reboot": true, "status": false, "on": false, "monitor": false} {
		clock := newFakeClock()
		a := testAgent(&fakeDevice{state: On}, clock)
		runAgent(t, a, nil, "ip=h\ndelay=15\naction="+action, nil)
		got := len(clock.Sleeps()) > 0 && clock.Sleeps()[0] == 15*time.Second
		if got != wantDelay {
			t.Errorf("%s: sleeps %v, want delay %v", action, clock.Sleeps(), wantDelay)
		}
	}
}

func TestPowerWaitAndStatusSleep(t *testing.T) {
	clock := newFakeClock()
	a := testAgent(&fakeDevice{state: On, lagPoll: 2}, clock)
	r := runAgent(t, a, nil, "ip=h\naction=off\npower_wait=4\nstonith_status_sleep=2", nil)
	if r.code != 0 {
		t.Fatalf("%+v", r)
	}
	want := []time.Duration{4 * time.Second, 2 * time.Second, 2 * time.Second}
	if fmt.Sprint(clock.Sleeps()) != fmt.Sprint(want) {
		t.Errorf("sleeps %v, want %v", clock.Sleeps(), want)
	}
}

func TestCancelledContextFails(t *testing.T) {
	a := testAgent(&fakeDevice{state: On, stuck: true}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out, errb bytes.Buffer
	code := a.Run(ctx, Invocation{Stdin: strings.NewReader("ip=h\naction=off\n"), Stdout: &out, Stderr: &errb})
	if code != 1 || out.Len() != 0 {
		t.Fatalf("exit %d stdout %q stderr %q", code, out.String(), errb.String())
	}
}

func TestOpenFailure(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{errors.New("authentication failed"), "Unable to connect/login to fencing device: authentication failed"},
		{fmt.Errorf("dial: %w", context.DeadlineExceeded), "timed out after 5s (login_timeout)"},
	} {
		a := testAgent(&fakeDevice{openErr: tc.err}, newFakeClock())
		r := runAgent(t, a, nil, "ip=h\naction=status", nil)
		if r.code != 1 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: %+v", tc.err, r)
		}
	}
}

func TestPasswordScriptAndSecrecy(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "pw.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho 'Sup3r-Secret'\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	debug := filepath.Join(dir, "debug.log")
	var got string
	a := testAgent(nil, newFakeClock())
	a.Open = func(ctx context.Context, o *Options) (Device, error) {
		got = o.Password()
		return nil, errors.New("login refused")
	}
	r := runAgent(t, a, nil, "ip=h\naction=status\nverbose=1\npassword_script="+script+"\ndebug_file="+debug, nil)
	if got != "Sup3r-Secret" {
		t.Errorf("password = %q", got)
	}
	r2 := runAgent(t, a, nil, "ip=h\naction=status\nverbose=1\npassword=Sup3r-Secret\ndebug_file="+debug, nil)
	logged, _ := os.ReadFile(debug)
	for _, s := range []string{r.stderr, r.stdout, r2.stderr, r2.stdout, string(logged)} {
		if strings.Contains(s, "Sup3r-Secret") {
			t.Errorf("secret leaked into %q", s)
		}
	}
	if !strings.Contains(string(logged), "password=[hidden]") {
		t.Errorf("debug file does not show the masked options: %q", logged)
	}
	failing := runAgent(t, a, nil, "ip=h\naction=status\npassword_script=echo Sup3r-Secret; exit 3", nil)
	if failing.code != 1 || !strings.Contains(failing.stderr, "password_script failed") || strings.Contains(failing.stderr, "Sup3r") {
		t.Errorf("failing script: %+v", failing)
	}
}

func TestSyslogReceivesOutcome(t *testing.T) {
	sl := &fakeSyslog{}
	a := testAgent(&fakeDevice{state: On}, newFakeClock())
	var out, errb bytes.Buffer
	code := a.Run(context.Background(), Invocation{Stdin: strings.NewReader("ip=h\naction=off\n"), Stdout: &out, Stderr: &errb,
		Syslog: func() (Syslog, error) { return sl, nil }})
	if code != 0 || !strings.Contains(strings.Join(sl.lines, "\n"), "info: powered OFF") {
		t.Errorf("exit %d syslog %q", code, sl.lines)
	}
	// A missing syslog socket is not an error.
	a = testAgent(&fakeDevice{state: On}, newFakeClock())
	code = a.Run(context.Background(), Invocation{Stdin: strings.NewReader("ip=h\naction=status\n"), Stdout: &out, Stderr: &errb,
		Syslog: func() (Syslog, error) { return nil, errors.New("no /dev/log") }})
	if code != 0 {
		t.Errorf("exit %d without syslog", code)
	}
}

type fakeSyslog struct{ lines []string }

func (s *fakeSyslog) Err(m string) error     { s.lines = append(s.lines, "err: "+m); return nil }
func (s *fakeSyslog) Warning(m string) error { s.lines = append(s.lines, "warning: "+m); return nil }
func (s *fakeSyslog) Info(m string) error    { s.lines = append(s.lines, "info: "+m); return nil }
func (s *fakeSyslog) Debug(m string) error   { s.lines = append(s.lines, "debug: "+m); return nil }

func TestInformationalActions(t *testing.T) {
	a := testAgent(&fakeDevice{openErr: errors.New("must not connect")}, newFakeClock())
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-h"}, "   -a, --ip=[ip]                  IP address or hostname of fencing device\n"},
		{[]string{"--help"}, "Usage:\n\tfence_test [options]\n"},
		{[]string{"-V"}, "1.2.3\n"},
		{[]string{"-o", "metadata"}, `<resource-agent name="fence_test" shortdesc="Fence agent for tests" >`},
		{[]string{"-o", "meta-data"}, `<parameter name="ip" unique="0" required="0" obsoletes="ipaddr">`},
	} {
		r := runAgent(t, a, tc.args, "", nil)
		if r.code != 0 || !strings.Contains(r.stdout, tc.want) {
			t.Errorf("%v: exit %d stdout %q", tc.args, r.code, r.stdout)
		}
	}
	if r := runAgent(t, a, nil, "action=metadata\n", nil); r.code != 0 || !strings.HasPrefix(r.stdout, "<?xml") {
		t.Errorf("metadata on stdin: %+v", r)
	}
}

func TestMetadata(t *testing.T) {
	var b bytes.Buffer
	a := testAgent(nil, nil)
	a.Params = append(a.Params, Param{Name: "api_key", Type: String, Secret: true, Help: "API key"})
	if err := a.WriteMetadata(&b); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, want := range []string{
		// ip is required, but port_as_ip may supply it: pcs must not insist.
		`<parameter name="ipaddr" unique="0" required="0" deprecated="1">`,
		`<parameter name="username" unique="0" required="0" obsoletes="login">`,
		`<getopt mixed="-p, --password=[password]" />`,
		`<content type="second" default="20" />`,
		`<content type="select" default="onoff" >`,
		`<option value="cycle" />`,
		`<content type="boolean" default="0" />`,
		`<content type="string" default="reboot" />`,
		`<action name="on" automatic="0"/>`,
		`<action name="reboot" />`,
		`<action name="validate-all" />`,
	} {
		if !strings.Contains(md, want) {
			t.Errorf("metadata lacks %s", want)
		}
	}
	for _, bad := range []string{"nodename", "<version>", `name="list"`} {
		if strings.Contains(md, bad) {
			t.Errorf("metadata has %s", bad)
		}
	}
	for i := range a.Params {
		if a.Params[i].Name == ParamPortAsIP {
			a.Params = append(a.Params[:i], a.Params[i+1:]...)
			break
		}
	}
	b.Reset()
	_ = a.WriteMetadata(&b)
	if !strings.Contains(b.String(), `<parameter name="ip" unique="0" required="1" obsoletes="ipaddr">`) {
		t.Errorf("ip is not required without port_as_ip")
	}
	a.Fabric, a.Lists = true, true
	b.Reset()
	_ = a.WriteMetadata(&b)
	md = b.String()
	for _, want := range []string{`<action name="on" automatic="1"/>`, `<content type="string" default="off" />`, `<action name="list-status" />`} {
		if !strings.Contains(md, want) {
			t.Errorf("fabric metadata lacks %s", want)
		}
	}
	if strings.Contains(md, `"reboot"`) {
		t.Errorf("fabric metadata offers reboot")
	}
}

func TestFabricActions(t *testing.T) {
	dev := &fakeDevice{state: On}
	a := testAgent(dev, newFakeClock())
	a.Fabric = true
	if r := runAgent(t, a, nil, "ip=h\n", nil); r.code != 0 || r.stdout != "Success: Powered OFF\n" {
		t.Errorf("default action: %+v", r)
	}
	if r := runAgent(t, a, nil, "ip=h\naction=reboot\n", nil); r.code != 1 || !strings.Contains(r.stderr, "Unrecognised action 'reboot'") {
		t.Errorf("reboot on a fabric agent: %+v", r)
	}
	if r := runAgent(t, a, nil, "ip=h\naction=enable\n", nil); r.code != 0 || r.stdout != "Success: Powered ON\n" {
		t.Errorf("enable: %+v", r)
	}
}

func TestManPage(t *testing.T) {
	var b bytes.Buffer
	if err := testAgent(nil, nil).WriteManPage(&b); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, want := range []string{".TH", "fence_test", "power_timeout", `validate\-all`} {
		if !strings.Contains(page, want) {
			t.Errorf("man page lacks %q", want)
		}
	}
}

func TestDisableTimeoutTakesAValue(t *testing.T) {
	o := newOptions(testAgent(nil, nil).allParams())
	if err := o.parseFlags("fence_test", []string{"--disable-timeout", "false", "-o", "status"}); err != nil {
		t.Fatal(err)
	}
	o.applyDefaults(nil)
	if err := o.typecheck(); err != nil || o.Bool(ParamDisableTimeout) || !o.given[ParamDisableTimeout] || len(o.warnings) != 0 {
		t.Errorf("--disable-timeout false: err %v value %v warnings %v", err, o.Bool(ParamDisableTimeout), o.warnings)
	}
	o = newOptions(testAgent(nil, nil).allParams())
	if err := o.parseFlags("fence_test", []string{"--disable-timeout"}); err == nil {
		t.Errorf("--disable-timeout without a value was accepted")
	}
	var b bytes.Buffer
	_ = testAgent(nil, nil).WriteMetadata(&b)
	if !strings.Contains(b.String(), `<getopt mixed="--disable-timeout=[true/false]" />`) {
		t.Errorf("metadata does not show that disable_timeout takes a value")
	}
}

func TestLastVerboseWins(t *testing.T) {
	o := newOptions(testAgent(nil, nil).allParams())
	if err := o.parseStdin(strings.NewReader("verbose=1\nverbose=0\n")); err != nil {
		t.Fatal(err)
	}
	if o.VerboseLevel() != 0 {
		t.Errorf("verbose level %d after verbose=0", o.VerboseLevel())
	}
}

func TestMonitorWithPortAsIPNeedsNoAddress(t *testing.T) {
	dev := &fakeDevice{openErr: errors.New("must not connect")}
	r := runAgent(t, testAgent(dev, newFakeClock()), nil, "action=monitor\nport_as_ip=1\n", nil)
	if r.code != 0 || dev.opens != 0 {
		t.Errorf("monitor: %+v, opens %d", r, dev.opens)
	}
	r = runAgent(t, testAgent(dev, newFakeClock()), nil, "action=status\nport_as_ip=1\n", nil)
	if r.code != 1 || !strings.Contains(r.stderr, "fence address") {
		t.Errorf("status without any address: %+v", r)
	}
}

func TestPasswordScriptChildrenDoNotOutliveCancellation(t *testing.T) {
	a := testAgent(&fakeDevice{state: On}, newFakeClock())
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	var out, errb bytes.Buffer
	start := time.Now()
	code := a.Run(ctx, Invocation{Stdin: strings.NewReader("ip=h\naction=status\npassword_script=sleep 30 | cat\n"), Stdout: &out, Stderr: &errb})
	if code != 1 || time.Since(start) > 5*time.Second || !strings.Contains(errb.String(), "interrupted") {
		t.Errorf("exit %d after %s: %q", code, time.Since(start), errb.String())
	}
}

func TestDeprecatedNameDifferingOnlyByDash(t *testing.T) {
	a := testAgent(&fakeDevice{state: On}, newFakeClock())
	a.Params = append(a.Params, Param{Name: "project_domain", Deprecated: "project-domain", Type: String, Default: "Default", Help: "Project domain"})
	if err := a.Check(); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	_ = a.WriteMetadata(&b)
	if !strings.Contains(b.String(), `<parameter name="project-domain" unique="0" required="0" deprecated="1">`) {
		t.Errorf("old name not listed")
	}
	o := newOptions(a.allParams())
	_ = o.parseStdin(strings.NewReader("project-domain=ops\n"))
	if o.String("project_domain") != "ops" {
		t.Errorf("project-domain not read: %v", o.raw)
	}
}

// waitingDevice answers ErrNotReady to its first notReady switch requests, and can
// re-assert an already reached state.
type waitingDevice struct {
	*fakeDevice
	notReady    int
	reasserts   []string
	reassertErr error
}

func (d *waitingDevice) SetPower(ctx context.Context, plug string, on bool) error {
	d.mu.Lock()
	if d.notReady > 0 {
		d.notReady--
		d.note(ctx, "not-ready")
		d.mu.Unlock()
		return fmt.Errorf("evacuation of %s not finished: %w", plug, ErrNotReady)
	}
	d.mu.Unlock()
	return d.fakeDevice.SetPower(ctx, plug, on)
}

func (d *waitingDevice) Reassert(ctx context.Context, plug string, on bool) error {
	d.reasserts = append(d.reasserts, stateOf(on).String())
	return d.reassertErr
}

func TestSetPowerWaitsWhileNotReady(t *testing.T) {
	cases := []struct {
		name      string
		notReady  int
		stdin     string
		pacemaker bool
		code      int
		stderr    string
		calls     string
		sleeps    int
	}{
		{name: "ready after three polls", notReady: 3, stdin: "action=on\nplug=c1", code: 0,
			calls: "status not-ready not-ready not-ready set-ON status close", sleeps: 3},
		{name: "never ready within power_timeout", notReady: 100, stdin: "action=on\nplug=c1\npower_timeout=4\nretry_on=3", code: 1,
			stderr: "Failed: Timed out waiting to power ON: evacuation of c1 not finished",
			calls:  "status not-ready not-ready not-ready not-ready not-ready close", sleeps: 4},
		{name: "under pacemaker beyond power_timeout", notReady: 30, stdin: "action=on\nplug=c1\npower_timeout=4", pacemaker: true, code: 0, sleeps: 30},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dev := &waitingDevice{fakeDevice: &fakeDevice{state: Off}, notReady: tc.notReady}
			clock := newFakeClock()
			a := testAgent(dev.fakeDevice, clock)
			a.Open = func(context.Context, *Options) (Device, error) { return dev, nil }
			env := map[string]string{}
			if tc.pacemaker {
				env["PCMK_service"] = "pacemaker-fenced"
			}
			r := runAgent(t, a, nil, tc.stdin+"\nip=h\n", env)
			if r.code != tc.code {
				t.Fatalf("exit %d, want %d: %+v", r.code, tc.code, r)
			}
			if tc.stderr != "" && !strings.Contains(r.stderr, tc.stderr) {
				t.Errorf("stderr %q lacks %q", r.stderr, tc.stderr)
			}
			if tc.calls != "" && strings.Join(dev.calls, " ") != tc.calls {
				t.Errorf("calls %q, want %q", strings.Join(dev.calls, " "), tc.calls)
			}
			slept := 0 // power_wait=0 is a sleep of nothing
			for _, d := range clock.Sleeps() {
				if d > 0 {
					slept++
				}
			}
			if slept != tc.sleeps {
				t.Errorf("slept %d times, want %d", slept, tc.sleeps)
			}
			if c := strings.Count(r.stderr, "waiting: evacuation"); c > 1 {
				t.Errorf("the same wait was logged %d times", c)
			}
		})
	}
}

func TestReassertWhenAlreadyInState(t *testing.T) {
	dev := &waitingDevice{fakeDevice: &fakeDevice{state: Off}}
	a := testAgent(dev.fakeDevice, newFakeClock())
	a.Open = func(context.Context, *Options) (Device, error) { return dev, nil }
	r := runAgent(t, a, nil, "action=off\nip=h\nplug=c1\n", nil)
	if r.code != 0 || r.stdout != "Success: Already OFF\n" || strings.Join(dev.reasserts, " ") != "OFF" {
		t.Fatalf("already off: %+v, reasserts %v", r, dev.reasserts)
	}
	dev.reassertErr = errors.New("attrd refused")
	r = runAgent(t, a, nil, "action=off\nip=h\nplug=c1\n", nil)
	if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, "attrd refused") {
		t.Fatalf("failed reassert: %+v", r)
	}
	// A switch that was made needs no re-assertion.
	dev = &waitingDevice{fakeDevice: &fakeDevice{state: On}}
	a.Open = func(context.Context, *Options) (Device, error) { return dev, nil }
	if r := runAgent(t, a, nil, "action=off\nip=h\nplug=c1\n", nil); r.code != 0 || len(dev.reasserts) != 0 {
		t.Fatalf("switched: %+v, reasserts %v", r, dev.reasserts)
	}
}

func TestPanicIsAFailureNotOff(t *testing.T) {
	a := testAgent(nil, newFakeClock())
	a.Open = func(ctx context.Context, o *Options) (Device, error) { panic("library bug") }
	r := runAgent(t, a, nil, "ip=h\naction=status\n", nil)
	if r.code != ExitFailure || !strings.Contains(r.stderr, "internal error") || r.stdout != "" {
		t.Errorf("%+v", r)
	}
}
