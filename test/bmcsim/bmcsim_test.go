package bmcsim

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ipmitool runs the reference client against b. The password goes through the
// environment (-E), not the command line.
func ipmitool(t *testing.T, b *BMC, iface string, args ...string) (string, error) {
	t.Helper()
	return ipmitoolAs(t, b, b.Username, b.Password, iface, args...)
}

func ipmitoolAs(t *testing.T, b *BMC, user, password, iface string, args ...string) (string, error) {
	t.Helper()
	path, err := exec.LookPath("ipmitool")
	if err != nil {
		if os.Getenv("NOVAHA_REQUIRE_BMCSIM") != "" {
			t.Fatal("ipmitool is not installed")
		}
		t.Skip("ipmitool is not installed (Debian package ipmitool; run test/deps.sh)")
	}
	full := []string{"-I", iface, "-H", b.Host, "-p", strconv.Itoa(b.Port), "-U", user, "-E"}
	if iface == "lanplus" {
		// Without -C, ipmitool asks for cipher suites, which ipmi_sim ignores: a 10 s stall.
		full = append(full, "-C", "3")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, append(full, args...)...)
	cmd.Env = append(os.Environ(), "IPMI_PASSWORD="+password)
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func mustIpmitool(t *testing.T, b *BMC, args ...string) string {
	t.Helper()
	out, err := ipmitool(t, b, "lanplus", args...)
	if err != nil {
		t.Fatalf("ipmitool %v: %v: %s", args, err, out)
	}
	return out
}

func waitCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func wantPower(t *testing.T, b *BMC, want bool) {
	t.Helper()
	on, err := b.PowerState()
	if err != nil {
		t.Fatal(err)
	}
	if on != want {
		t.Fatalf("power state file says on=%v, want %v", on, want)
	}
}

// The whole chassis power vocabulary through ipmitool, checked against the state file and
// the chassis log.
func TestIpmitoolPowerControl(t *testing.T) {
	t.Parallel()
	b := StartTest(t, Options{})

	if out := mustIpmitool(t, b, "chassis", "power", "status"); out != "Chassis Power is on" {
		t.Fatalf("status: %q", out)
	}
	if out := mustIpmitool(t, b, "chassis", "power", "off"); !strings.Contains(out, "Down/Off") {
		t.Fatalf("off: %q", out)
	}
	wantPower(t, b, false)
	if out := mustIpmitool(t, b, "chassis", "power", "status"); out != "Chassis Power is off" {
		t.Fatalf("status after off: %q", out)
	}
	mustIpmitool(t, b, "chassis", "power", "on")
	wantPower(t, b, true)

	// A cycle is off now, on a second later (ipmi_sim's timer): poll the log for both.
	mustIpmitool(t, b, "chassis", "power", "cycle")
	ev, err := b.WaitLog(waitCtx(t), func(ev []Event) bool {
		return slices.Equal(Actions(ev, ActionStatus, ActionBooted), []string{"off", "on", "off", "on"})
	})
	if err != nil {
		t.Fatal(err)
	}
	wantPower(t, b, true)

	var status []string
	for _, e := range ev {
		if e.Action == ActionStatus {
			status = append(status, e.Value)
		}
	}
	if len(status) < 2 || status[0] != "1" || !slices.Contains(status, "0") {
		t.Errorf("status reads %v, want a 1 first and a 0 after the off", status)
	}
	for i := 1; i < len(ev); i++ {
		if ev[i].Time.Before(ev[i-1].Time) {
			t.Errorf("log not in time order: %v", ev)
		}
	}
	if d := time.Since(ev[0].Time); d < 0 || d > time.Minute {
		t.Errorf("first event %v is %v from now: timestamps misparsed", ev[0], d)
	}
}

func TestIPMI15AndAccounts(t *testing.T) {
	t.Parallel()
	b := StartTest(t, Options{
		Username: "root", Password: "S3cr3t-pa55w0rd!",
		Users:        []User{{Name: "viewer", Password: "viewpass", Privilege: "user"}},
		InitiallyOff: true,
	})
	out, err := ipmitool(t, b, "lan", "chassis", "power", "status")
	if err != nil || out != "Chassis Power is off" {
		t.Fatalf("IPMI 1.5 status: %v %q", err, out)
	}

	if out, err := ipmitoolAs(t, b, b.Username, "not-the-password", "lanplus", "chassis", "power", "status"); err == nil {
		t.Fatalf("wrong password accepted: %q", out)
	}

	if out, err := ipmitoolAs(t, b, "viewer", "viewpass", "lanplus", "-L", "USER", "chassis", "power", "on"); err == nil {
		t.Fatalf("a session at user privilege powered the host on: %q", out)
	}
	wantPower(t, b, false)
}

// OffCommand stops the "host", OnCommand starts it after BootDelay, and neither the
// host process nor a pending boot keeps the simulator's port once it stops.
func TestHooksStopAndStartTheHost(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b := StartTest(t, Options{
		Dir: dir,
		// A stand-in host: a process whose PID file says it is running.
		OnCommand:  `setsid sleep 300 </dev/null >/dev/null 2>&1 & echo $! > host.pid`,
		OffCommand: `if [ -f host.pid ]; then kill "$(cat host.pid)"; rm -f host.pid; fi`,
		BootDelay:  200 * time.Millisecond,
	})
	t.Cleanup(func() {
		if pid, err := readPID(dir); err == nil {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})

	mustIpmitool(t, b, "chassis", "power", "on") // already on: nothing boots
	mustIpmitool(t, b, "chassis", "power", "off")
	if _, err := os.Stat(filepath.Join(dir, "host.pid")); err == nil {
		t.Fatal("host.pid exists after off without a host ever started")
	}

	on := time.Now()
	mustIpmitool(t, b, "chassis", "power", "on")
	ev, err := b.WaitLog(waitCtx(t), func(ev []Event) bool {
		return slices.Contains(Actions(ev), ActionBooted)
	})
	if err != nil {
		t.Fatal(err)
	}
	booted := ev[slices.IndexFunc(ev, func(e Event) bool { return e.Action == ActionBooted })]
	if d := booted.Time.Sub(on); d < 200*time.Millisecond {
		t.Errorf("host booted %v after power on, before BootDelay", d)
	}
	pid, err := readPID(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !alive(pid) {
		t.Fatalf("host process %d not running after boot", pid)
	}

	mustIpmitool(t, b, "chassis", "power", "off")
	// kill(2) was sent before the BMC answered; the process may take a moment to go.
	deadline := time.Now().Add(5 * time.Second)
	for alive(pid) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if alive(pid) {
		t.Fatalf("host process %d still running after power off", pid)
	}

	// Power on, then stop the BMC before the boot is due: the boot must not happen, and
	// the port must be free at once although a boot job was pending.
	mustIpmitool(t, b, "chassis", "power", "on")
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := checkUDPPortFree(b.Host, b.Port); err != nil {
		t.Fatalf("port still bound after Stop: %v", err)
	}
	time.Sleep(400 * time.Millisecond) // past BootDelay: a boot would have happened by now
	if _, err := readPID(dir); err == nil {
		t.Fatal("the host booted after the BMC was stopped")
	}
}

// alive tells whether pid runs; a zombie (nobody may reap it in a container) is dead.
func alive(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	_, rest, ok := strings.Cut(string(data), ") ")
	return ok && !strings.HasPrefix(rest, "Z")
}

func readPID(dir string) (int, error) {
	data, err := os.ReadFile(filepath.Join(dir, "host.pid"))
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(data)))
}

func TestPortInUseAndRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b := StartTest(t, Options{Dir: dir, InitiallyOff: true})
	ctx := waitCtx(t)
	if b2, err := Start(ctx, Options{Port: b.Port}); err == nil {
		_ = b2.Stop()
		t.Fatal("a second simulator started on a port in use")
	} else if !strings.Contains(err.Error(), "in use") {
		t.Fatalf("unexpected error: %v", err)
	}
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("Stop removed a directory it did not create: %v", err)
	}

	// A restart on the same directory and port keeps the power state (off).
	b3, err := Start(ctx, Options{Dir: dir, Port: b.Port})
	if err != nil {
		t.Fatal(err)
	}
	defer b3.Stop()
	wantPower(t, b3, false)
	if out := mustIpmitool(t, b3, "chassis", "power", "status"); out != "Chassis Power is off" {
		t.Fatalf("status after restart: %q", out)
	}
}

func TestStopReportsCrash(t *testing.T) {
	t.Parallel()
	if err := Available(); err != nil {
		t.Skip(err)
	}
	b, err := Start(waitCtx(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(b.PID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-b.Done()
	if err := b.Stop(); err == nil || !strings.Contains(err.Error(), "exited before Stop") {
		t.Fatalf("Stop after a crash: %v", err)
	}
	if err := b.Stop(); err == nil {
		t.Fatal("second Stop forgot the crash")
	}
}

func TestTemporaryDirectoryRemoved(t *testing.T) {
	t.Parallel()
	if err := Available(); err != nil {
		t.Skip(err)
	}
	b, err := Start(waitCtx(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(b.Dir); !os.IsNotExist(err) {
		t.Fatalf("temporary directory %s left behind: %v", b.Dir, err)
	}
}

func TestOptionsValidation(t *testing.T) {
	for _, o := range []Options{
		{Username: `a"b`},
		{Password: "has space"},
		{Password: strings.Repeat("x", 21)},
		{Username: strings.Repeat("u", 17)},
		{Users: []User{{Name: "x", Password: "y", Privilege: "root"}}},
		{BMCKey: strings.Repeat("k", 21)},
		{Port: 70000},
		{BootDelay: -time.Second},
		{Dir: "a\nb"},
	} {
		if o.Username == "" {
			o.Username = DefaultUsername
		}
		if o.Password == "" {
			o.Password = DefaultPassword
		}
		if err := o.validate(); err == nil {
			t.Errorf("%+v accepted", o)
		} else if strings.Contains(err.Error(), "has space") {
			t.Errorf("error repeats the password: %v", err)
		}
	}
}

func TestParseLog(t *testing.T) {
	data := "1700000000.5 status 1\n" +
		"garbage\n" +
		"1700000001.000000001 off\n" +
		"1700000002.25 set-identify 15 0\n" +
		"1700000003.1 on" // no newline yet: still being written
	ev := parseLog([]byte(data))
	if len(ev) != 3 {
		t.Fatalf("events: %v", ev)
	}
	if !ev[0].Time.Equal(time.Unix(1700000000, 500000000)) || ev[0].Action != ActionStatus || ev[0].Value != "1" {
		t.Errorf("first event %+v", ev[0])
	}
	if ev[1].Time.Nanosecond() != 1 || ev[1].Action != ActionOff {
		t.Errorf("second event %+v", ev[1])
	}
	if ev[2].Action != "set-identify" || ev[2].Value != "15 0" {
		t.Errorf("third event %+v", ev[2])
	}
	if got := Actions(ev, ActionStatus); !slices.Equal(got, []string{"off", "set-identify"}) {
		t.Errorf("Actions: %v", got)
	}
}
