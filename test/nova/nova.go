// Package nova gives the project's integration and end-to-end tests a real Nova control
// plane: the one test/nova/sandbox runs from Debian 12's OpenStack Zed packages on
// 127.0.0.1 (Keystone, Placement, Glance, Neutron, nova-api, a conductor, a scheduler,
// MariaDB, RabbitMQ and N fake compute hosts, compute1..computeN, each its own
// nova-compute process with compute_driver=fake.FakeDriver).
//
// Tests that need it call Require, which skips unless NOVA_SANDBOX_TESTS=1 (starting it
// takes about 45 s, two minutes the first time, plus the package install on a fresh
// machine), runs test/nova/install.sh (a second's work when installed), starts the
// sandbox or reuses the running one, and stops it at the end of the test binary's run
// if this process started it (NOVA_SANDBOX_KEEP=1 leaves it running for the next run).
//
// Agents under test reach it through its clouds.yaml (Sandbox.CloudsYAML, cloud
// CloudName, admin credentials); Sandbox.Client is a minimal Keystone + Nova client for
// the tests' own checks. A compute host "crashes" with KillCompute (kill -9 of its
// nova-compute) and comes back with StartCompute.
package nova

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// CloudName is the sandbox's cloud in its clouds.yaml.
const CloudName = "novaha-sandbox"

// DefaultDir is the sandbox's state directory unless NOVA_SANDBOX_DIR says otherwise.
const DefaultDir = "/var/tmp/novaha-nova"

// Dir is the sandbox's state directory: NOVA_SANDBOX_DIR, or DefaultDir.
func Dir() string {
	if d := os.Getenv("NOVA_SANDBOX_DIR"); d != "" {
		return d
	}
	return DefaultDir
}

// ScriptDir is the directory of the sandbox scripts (this package's source directory).
func ScriptDir() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "test/nova"
	}
	return filepath.Dir(file)
}

// Env reports the running sandbox's clouds.yaml and cloud name; ok is false unless its
// control plane runs (`sandbox status` exits 0; compute hosts may be down, as tests kill
// them). It starts nothing.
func Env() (cloudsYAML, cloudName string, ok bool) {
	dir := Dir()
	cloudsYAML = filepath.Join(dir, "clouds.yaml")
	if _, err := os.Stat(cloudsYAML); err != nil {
		return cloudsYAML, CloudName, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(ScriptDir(), "sandbox"), "status")
	cmd.Env = append(os.Environ(), "NOVA_SANDBOX_DIR="+dir)
	return cloudsYAML, CloudName, cmd.Run() == nil
}

// Options configures Ensure. The zero value is usable.
type Options struct {
	// Install runs test/nova/install.sh first (idempotent: about a second when done).
	Install bool
	// Computes is the number of fake compute hosts on a first start (default 3). A
	// running or existing sandbox keeps the hosts it has and gains any missing ones.
	Computes int
	// Log receives the scripts' output. Nil discards it.
	Log io.Writer
}

// Sandbox is a running Nova sandbox.
type Sandbox struct {
	Dir        string   // state directory
	CloudsYAML string   // clouds.yaml with the admin credentials, cloud CloudName
	Cloud      string   // CloudName
	Computes   []string // the compute host names, compute1..computeN
	// Started is true when Ensure started at least one of its processes.
	Started bool

	log io.Writer

	mu     sync.Mutex
	client *Client
}

// Ensure installs (if asked) and starts the sandbox, or reuses what runs.
func Ensure(ctx context.Context, opts Options) (*Sandbox, error) {
	s := &Sandbox{Dir: Dir(), Cloud: CloudName, log: opts.Log}
	if s.log == nil {
		s.log = io.Discard
	}
	s.CloudsYAML = filepath.Join(s.Dir, "clouds.yaml")
	if opts.Install {
		if err := s.run(ctx, filepath.Join(ScriptDir(), "install.sh")); err != nil {
			return nil, err
		}
	}
	_, _, running := Env()
	args := []string{"start"}
	if opts.Computes > 0 {
		args = append(args, "--computes", fmt.Sprint(opts.Computes))
	}
	if _, err := s.Run(ctx, args...); err != nil {
		return nil, err
	}
	s.Started = !running
	b, err := os.ReadFile(filepath.Join(s.Dir, "computes"))
	if err != nil {
		return nil, err
	}
	s.Computes = strings.Fields(string(b))
	return s, nil
}

// Require is Ensure for tests: it skips the test unless NOVA_SANDBOX_TESTS=1, installs
// the packages, starts the sandbox (or reuses the running one), and stops it when the
// test binary's tests are done if it started it, unless NOVA_SANDBOX_KEEP=1. It returns
// one Sandbox per test binary.
func Require(t testing.TB) *Sandbox {
	t.Helper()
	if os.Getenv("NOVA_SANDBOX_TESTS") != "1" {
		t.Skip("needs the real Nova sandbox (minutes to start, ~3 GB RAM): set NOVA_SANDBOX_TESTS=1 " +
			"(make nova-install once, as root)")
	}
	requireOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancel()
		t0 := time.Now()
		shared, sharedErr = Ensure(ctx, Options{Install: true, Log: testLog{t}})
		if sharedErr == nil {
			t.Logf("nova sandbox ready in %s (started: %v)", time.Since(t0).Round(100*time.Millisecond), shared.Started)
		}
	})
	if sharedErr != nil {
		t.Fatalf("nova sandbox: %v", sharedErr)
	}
	return shared
}

var (
	requireOnce sync.Once
	shared      *Sandbox
	sharedErr   error
)

// StopIfStarted stops the sandbox Require started, unless NOVA_SANDBOX_KEEP=1. Call it
// from TestMain after m.Run (go test has no per-binary cleanup of its own):
//
//	func TestMain(m *testing.M) {
//		code := m.Run()
//		nova.StopIfStarted()
//		os.Exit(code)
//	}
func StopIfStarted() {
	if shared == nil || !shared.Started || os.Getenv("NOVA_SANDBOX_KEEP") == "1" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	shared.log = os.Stderr
	if _, err := shared.Run(ctx, "stop"); err != nil {
		fmt.Fprintln(os.Stderr, "nova sandbox stop:", err)
	}
}

type testLog struct{ t testing.TB }

func (l testLog) Write(p []byte) (int, error) {
	for _, line := range strings.Split(string(p), "\n") {
		if strings.TrimSpace(line) != "" {
			l.t.Log(line)
		}
	}
	return len(p), nil
}

// Run runs `test/nova/sandbox ARGS...` and returns its standard output; its standard
// error goes to the log. The error carries the last lines of standard error.
func (s *Sandbox) Run(ctx context.Context, args ...string) (string, error) {
	var out bytes.Buffer
	err := s.runTo(ctx, &out, filepath.Join(ScriptDir(), "sandbox"), args...)
	return out.String(), err
}

func (s *Sandbox) run(ctx context.Context, prog string, args ...string) error {
	return s.runTo(ctx, s.log, prog, args...)
}

func (s *Sandbox) runTo(ctx context.Context, stdout io.Writer, prog string, args ...string) error {
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Env = append(os.Environ(), "NOVA_SANDBOX_DIR="+s.Dir)
	var tail tailBuffer
	cmd.Stdout = stdout
	cmd.Stderr = io.MultiWriter(s.log, &tail)
	// The daemons the script starts get their own sessions and log files, but make sure
	// a killed script does not leave Wait blocked on an inherited pipe.
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w\n%s", filepath.Base(prog), strings.Join(args, " "), err, tail.String())
	}
	return nil
}

// tailBuffer keeps the last 40 lines written to it.
type tailBuffer struct{ lines []string }

func (b *tailBuffer) Write(p []byte) (int, error) {
	sc := bufio.NewScanner(bytes.NewReader(p))
	for sc.Scan() {
		b.lines = append(b.lines, sc.Text())
		if len(b.lines) > 40 {
			b.lines = b.lines[1:]
		}
	}
	return len(p), nil
}

func (b *tailBuffer) String() string { return strings.Join(b.lines, "\n") }

// KillCompute crashes a compute host: SIGKILL to its nova-compute's process group. Nova
// sees the service down only after service_down_time (60 s) unless it is forced down.
func (s *Sandbox) KillCompute(ctx context.Context, host string) error {
	_, err := s.Run(ctx, "compute", "kill", host)
	return err
}

// StopCompute stops a compute host's nova-compute gracefully (SIGTERM).
func (s *Sandbox) StopCompute(ctx context.Context, host string) error {
	_, err := s.Run(ctx, "compute", "stop", host)
	return err
}

// StartCompute starts a compute host's nova-compute (a no-op when it runs). A host name
// the sandbox does not have yet becomes a new compute host, mapped into the cell.
func (s *Sandbox) StartCompute(ctx context.Context, host string) error {
	_, err := s.Run(ctx, "compute", "start", host)
	return err
}

// ComputeRunning tells whether the host's nova-compute process runs.
func (s *Sandbox) ComputeRunning(ctx context.Context, host string) bool {
	_, err := s.Run(ctx, "compute", "status", host)
	return err == nil
}

// SeedOptions selects the servers Seed ensures.
type SeedOptions struct {
	Servers int      // how many: Prefix-1..Prefix-N
	Prefix  string   // server name prefix; default "novaha-seed"
	Hosts   []string // hosts to pin them to, round-robin; default all compute hosts
	// Flavor is "evacuable" (flavor novaha.evacuable, extra spec evacuable=true, the
	// default) or "plain" (novaha.plain, untagged).
	Flavor string
}

// Server is one seeded server.
type Server struct {
	Name, ID, Host, Status string
}

// Seed makes sure the flavors and the image exist and servers Prefix-1..Prefix-N exist
// and are ACTIVE, booting the missing ones without networks, pinned to hosts.
func (s *Sandbox) Seed(ctx context.Context, o SeedOptions) ([]Server, error) {
	args := []string{"seed", "--servers", fmt.Sprint(o.Servers)}
	if o.Prefix != "" {
		args = append(args, "--prefix", o.Prefix)
	}
	if len(o.Hosts) > 0 {
		args = append(args, "--hosts", strings.Join(o.Hosts, ","))
	}
	if o.Flavor != "" {
		args = append(args, "--flavor", o.Flavor)
	}
	out, err := s.Run(ctx, args...)
	if err != nil {
		return nil, err
	}
	return parseServers(out)
}

// Unseed deletes the servers Prefix-* and waits until they are gone.
func (s *Sandbox) Unseed(ctx context.Context, prefix string) error {
	_, err := s.Run(ctx, "unseed", "--prefix", prefix)
	return err
}

func parseServers(out string) ([]Server, error) {
	var servers []Server
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 4 {
			return nil, fmt.Errorf("seed: unexpected output line %q", line)
		}
		servers = append(servers, Server{Name: f[0], ID: f[1], Host: f[2], Status: f[3]})
	}
	return servers, nil
}

// Client returns an admin client of the sandbox's Keystone and Nova, shared by callers.
func (s *Sandbox) Client(ctx context.Context) (*Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client != nil {
		return s.client, nil
	}
	creds, err := ReadOpenrc(filepath.Join(s.Dir, "openrc"))
	if err != nil {
		return nil, err
	}
	c := NewClient(creds)
	if err := c.Authenticate(ctx); err != nil {
		return nil, err
	}
	s.client = c
	return c, nil
}

// ReadOpenrc reads the `export NAME=VALUE` lines of the sandbox's openrc.
func ReadOpenrc(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseOpenrc(string(b))
}

func parseOpenrc(text string) (map[string]string, error) {
	env := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("openrc: bad line %q", line)
		}
		env[k] = strings.Trim(v, `"'`)
	}
	for _, k := range []string{"OS_AUTH_URL", "OS_USERNAME", "OS_PASSWORD", "OS_PROJECT_NAME"} {
		if env[k] == "" {
			return nil, errors.New("openrc: no " + k)
		}
	}
	return env, nil
}

// Restore brings host back to service as its return would, whatever a test or a
// failed run left: its nova-compute running (which marks its done evacuations
// completed: Nova refuses to lift the force-down until then, with a 400), the
// force-down lifted, then enabled once Nova reports it up, so that nothing is
// scheduled to it before. Bounded by 3 minutes.
func (s *Sandbox) Restore(ctx context.Context, host string) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	c, err := s.Client(ctx)
	if err != nil {
		return err
	}
	if err := s.StartCompute(ctx, host); err != nil {
		return fmt.Errorf("restoring %s: %w", host, err)
	}
	for {
		svc, err := c.ComputeService(ctx, host)
		if err != nil {
			return fmt.Errorf("restoring %s: %w", host, err)
		}
		var fields map[string]any
		switch {
		case svc.ForcedDown:
			fields = map[string]any{"forced_down": false}
		case svc.State != "up":
		case svc.Status != "enabled":
			fields = map[string]any{"status": "enabled"}
		default:
			return nil
		}
		if fields != nil {
			_, err := c.UpdateService(ctx, svc.ID, fields)
			if nerr := (*Error)(nil); err != nil && !(errors.As(err, &nerr) && nerr.Status == 400) {
				return fmt.Errorf("restoring %s: %w", host, err)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not back in service: %w", host, ctx.Err())
		case <-time.After(time.Second):
		}
	}
}
