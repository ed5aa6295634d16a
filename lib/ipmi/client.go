// Package ipmi controls a host's chassis power through its BMC over IPMI 2.0 (RMCP+,
// "lanplus") or IPMI 1.5, on top of github.com/bougou/go-ipmi.
//
// Every network call is bounded by its context's deadline, even where go-ipmi would
// wait longer. Errors are *Error values of a few kinds (ErrAuth, ErrTimeout,
// ErrCipherSuite, ErrPrivilege, ErrRejected) whose text never contains the password or
// the BMC key, and a timeout always reads "timed out". Nothing is written to stdout:
// go-ipmi's debug output (which goes there, and dumps keying material) stays off, and
// Config.Logger receives our own debug records instead.
package ipmi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/bougou/go-ipmi/pkg/client"
	"github.com/bougou/go-ipmi/pkg/command/chassis"
	"github.com/bougou/go-ipmi/pkg/types"
)

// Client is a session with one BMC. Its methods may be called concurrently; they run
// one at a time.
type Client struct {
	gc     *client.Client // holds the password; fmt prints only its address
	cfg    Config         // with defaults, without the secrets
	redact func(string) string
	addr   string
	log    *slog.Logger

	// sem serialises go-ipmi calls and is released by the goroutine that ran one, so
	// a call abandoned at its deadline still excludes the next until it really ends.
	sem chan struct{}

	closeOnce sync.Once
	closeErr  error
	closed    chan struct{}
}

// Dial validates cfg, then opens a session with the BMC, within ctx. An unknown user or
// a wrong password fails at once with ErrAuth; an unreachable BMC fails with ErrTimeout
// after Retries+1 attempts of Timeout, or at ctx's deadline if that comes first. A BMC
// host that refuses the port (ICMP port unreachable) is tried as often, because a BMC
// that is rebooting does that for a while.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	addr := cfg.addr()
	log := cfg.Logger.With("bmc", addr)
	start := time.Now()
	log.Debug("ipmi connect", "config", cfg)

	redact, kept := redactor(cfg), cfg.withoutSecrets()
	fail := func(err, ctxErr error, attempts int, abandoned bool) error {
		e := classify(failure{op: "connect", addr: addr, cfg: kept, redact: redact, err: err, ctxErr: ctxErr,
			elapsed: time.Since(start), attempts: attempts, abandoned: abandoned})
		log.Debug("ipmi connect failed", "duration", time.Since(start), "err", e)
		return e
	}

	host, err := resolve(ctx, cfg.Host)
	if err != nil {
		return nil, fail(err, ctxEnded(ctx), 1, false)
	}
	var kg []byte
	if cfg.KgHex != "" {
		kg, _ = decodeKg(cfg.KgHex) // valid: Validate passed
	}

	attempts := cfg.Retries + 1
	for try := 1; ; try++ {
		gc, err := newGoIPMI(host, cfg, kg)
		if err != nil {
			return nil, fail(err, nil, try, false)
		}
		t0 := time.Now()
		abandoned, err := runConnect(ctx, gc)
		if err == nil {
			log.Debug("ipmi session open", "duration", time.Since(start), "attempts", try)
			return &Client{gc: gc, cfg: kept, redact: redact, addr: addr, log: log, sem: make(chan struct{}, 1), closed: make(chan struct{})}, nil
		}
		if !abandoned {
			discard(ctx, gc, err)
		}
		// go-ipmi gives up at once when the port is refused; space the attempts like
		// unanswered ones instead, within the deadline.
		if !abandoned && isRefused(err) && try < attempts && ctx.Err() == nil {
			log.Debug("ipmi connect refused, retrying", "attempt", try)
			wait := cfg.Timeout - time.Since(t0)
			select {
			case <-time.After(max(wait, 0)):
				continue
			case <-ctx.Done():
			}
		}
		n := attempts
		if isRefused(err) {
			n = try
		}
		return nil, fail(err, ctxEnded(ctx), n, abandoned)
	}
}

// resolve looks the host name up within ctx (go-ipmi would do it without a deadline)
// and returns it in the form go-ipmi's "%s:%d" address formatting needs.
func resolve(ctx context.Context, host string) (string, error) {
	bare := strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	ip := net.ParseIP(bare)
	if ip == nil {
		addrs, err := net.DefaultResolver.LookupIPAddr(ctx, bare)
		if err != nil {
			return "", fmt.Errorf("resolve %s: %w", bare, err)
		}
		ip = addrs[0].IP
		for _, a := range addrs { // prefer IPv4, as BMC networks mostly are
			if a.IP.To4() != nil {
				ip = a.IP
				break
			}
		}
	}
	if ip.To4() == nil {
		return "[" + ip.String() + "]", nil
	}
	return ip.String(), nil
}

func newGoIPMI(host string, cfg Config, kg []byte) (*client.Client, error) {
	gc, err := client.NewClient(host, cfg.Port, cfg.Username, cfg.Password)
	if err != nil {
		return nil, err
	}
	priv, _ := parsePrivilege(cfg.Privilege)
	// WithDebug stays false: go-ipmi prints its debug output to stdout, including the
	// padded password and the session keys.
	gc.WithTimeout(cfg.Timeout).WithRetry(cfg.Retries).WithMaxPrivilegeLevel(types.PrivilegeLevel(priv))
	if !cfg.Lanplus {
		gc.WithInterface(client.InterfaceLan)
		return gc, nil
	}
	gc.WithInterface(client.InterfaceLanplus)
	if cfg.CipherSuite == CipherSuiteAuto {
		// A list skips go-ipmi's discovery (Get Channel Cipher Suites), which BMCs such
		// as ipmi_sim leave unanswered: a 5 s stall.
		gc.WithCipherSuiteID(types.CipherSuiteID17, types.CipherSuiteID3)
	} else {
		gc.WithCipherSuiteID(types.CipherSuiteID(cfg.CipherSuite))
	}
	if len(kg) > 0 {
		if err := setBMCKey(gc, kg); err != nil {
			return nil, err
		}
	}
	return gc, nil
}

// runConnect runs gc.Connect, abandoning it at ctx's end. An abandoned login that
// succeeds later is closed in the background, so no session or socket leaks.
func runConnect(ctx context.Context, gc *client.Client) (abandoned bool, err error) {
	done := make(chan error, 1)
	go func() { done <- gc.Connect(ctx) }()
	select {
	case err := <-done:
		return false, err
	case <-ctx.Done():
		go func() {
			err := <-done
			discard(context.Background(), gc, err)
		}()
		return true, ctx.Err()
	}
}

// discard releases a go-ipmi client whose login failed or was abandoned. Only a login
// that got as far as an open session (it succeeded, or failed setting the privilege
// level) has a session worth closing at the BMC; otherwise the socket is just closed,
// without sending anything.
func discard(ctx context.Context, gc *client.Client, loginErr error) {
	if loginErr == nil || strings.Contains(loginErr.Error(), stepSetPrivilege) {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		if deadline, ok := ctx.Deadline(); ok && loginErr != nil {
			cctx, cancel = context.WithDeadline(cctx, deadline)
			defer cancel()
		}
		_ = gc.Close(cctx)
		return
	}
	cctx, cancel := context.WithCancel(context.Background())
	cancel() // go-ipmi's Close then skips Close Session and just closes the socket
	_ = gc.Close(cctx)
}

// ctxEnded is ctx's error, also at the very instant of its deadline: go-ipmi sets its
// socket deadline to the context's, so its own timeout can win the race against the
// context's timer.
func ctxEnded(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return nil
}

// isRefused: go-ipmi's RMCP+ login cuts the error chain, hence the text as well.
func isRefused(err error) bool {
	return err != nil && (errors.Is(err, syscall.ECONNREFUSED) || strings.Contains(err.Error(), syscall.ECONNREFUSED.Error()))
}

// String names the client by its BMC.
func (c *Client) String() string { return "ipmi.Client{" + c.addr + "}" }

// Format prints String for every verb.
func (c *Client) Format(f fmt.State, verb rune) { _, _ = f.Write([]byte(c.String())) }

// PowerStatus reports whether the chassis power is on (Get Chassis Status).
func (c *Client) PowerStatus(ctx context.Context) (on bool, err error) {
	return do(ctx, c, "power status", func(ctx context.Context) (bool, error) {
		st, err := c.gc.GetChassisStatus(ctx)
		if err != nil {
			return false, err
		}
		return st.PowerIsOn, nil
	})
}

// PowerOn powers the chassis up (Chassis Control "power up").
func (c *Client) PowerOn(ctx context.Context) error {
	return c.control(ctx, "power on", chassis.ChassisControlPowerUp)
}

// PowerOff powers the chassis down at once, without asking the operating system to
// shut down (Chassis Control "power down": a hard off, as fencing needs).
func (c *Client) PowerOff(ctx context.Context) error {
	return c.control(ctx, "power off", chassis.ChassisControlPowerDown)
}

// PowerCycle powers the chassis down and, after the BMC's power cycle interval, up
// again (Chassis Control "power cycle"). The IPMI specification lets a BMC ignore it
// or fail it while the power is off; fence agents verify off, then power on, instead.
func (c *Client) PowerCycle(ctx context.Context) error {
	return c.control(ctx, "power cycle", chassis.ChassisControlPowerCycle)
}

func (c *Client) control(ctx context.Context, op string, ctl chassis.ChassisControl) error {
	_, err := do(ctx, c, op, func(ctx context.Context) (struct{}, error) {
		_, err := c.gc.ChassisControl(ctx, ctl)
		return struct{}{}, err
	})
	return err
}

// Close closes the session at the BMC and releases the socket. It is idempotent; the
// socket is released even when the BMC does not answer or ctx has ended.
func (c *Client) Close(ctx context.Context) error {
	c.closeOnce.Do(func() {
		start := time.Now()
		if err := c.acquire(ctx); err != nil {
			// A call is still running: close once it has ended, without a word to the BMC.
			go func() {
				c.sem <- struct{}{}
				discard(context.Background(), c.gc, errClosing)
			}()
			close(c.closed)
			c.closeErr = classify(failure{op: "close", addr: c.addr, cfg: c.cfg, redact: c.redact, err: err, ctxErr: ctx.Err(), elapsed: time.Since(start), abandoned: true})
			return
		}
		close(c.closed)
		_, c.closeErr = run(ctx, c, "close", start, func(ctx context.Context) (struct{}, error) {
			return struct{}{}, c.gc.Close(ctx)
		})
	})
	return c.closeErr
}

// errClosing stands for "no session to close politely" in discard.
var errClosing = fmt.Errorf("closing")

// do runs one go-ipmi call within ctx.
func do[T any](ctx context.Context, c *Client, op string, f func(context.Context) (T, error)) (T, error) {
	start := time.Now()
	var zero T
	closed := func() bool {
		select {
		case <-c.closed:
			return true
		default:
			return false
		}
	}
	errClosed := &Error{Op: op, Addr: c.addr, Kind: ErrClosed, msg: fmt.Sprintf("ipmi %s %s: %v", op, c.addr, ErrClosed)}
	if closed() {
		return zero, errClosed
	}
	if err := c.acquire(ctx); err != nil {
		return zero, classify(failure{op: op, addr: c.addr, cfg: c.cfg, redact: c.redact, err: err, ctxErr: ctx.Err(), elapsed: time.Since(start), abandoned: true})
	}
	if closed() { // Close got the semaphore first: go-ipmi would dial a new socket
		<-c.sem
		return zero, errClosed
	}
	return run(ctx, c, op, start, f)
}

// acquire takes the semaphore, or fails when ctx ends first.
func (c *Client) acquire(ctx context.Context) error {
	select {
	case c.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run calls f in a goroutine that releases the semaphore when f returns, and returns
// at ctx's end even if f has not; f's late result then goes nowhere.
func run[T any](ctx context.Context, c *Client, op string, start time.Time, f func(context.Context) (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		defer func() { <-c.sem }()
		v, err := f(ctx)
		done <- result{v, err}
	}()
	var (
		r         result
		abandoned bool
	)
	select {
	case r = <-done:
	case <-ctx.Done():
		r.err, abandoned = ctx.Err(), true
	}
	if r.err == nil {
		c.log.Debug("ipmi "+op, "duration", time.Since(start))
		return r.v, nil
	}
	e := classify(failure{op: op, addr: c.addr, cfg: c.cfg, redact: c.redact, err: r.err, ctxErr: ctxEnded(ctx),
		elapsed: time.Since(start), attempts: c.cfg.Retries + 1, abandoned: abandoned})
	c.log.Debug("ipmi "+op+" failed", "duration", time.Since(start), "err", e)
	var zero T
	return zero, e
}
