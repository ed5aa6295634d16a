package virt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"time"

	"libvirt.org/go/libvirt"
)

// Client is a connection to one hypervisor. Its methods may be called concurrently.
//
// A call that outlives its context is abandoned: the method returns, the call goes on
// in the background, and the connection it runs on is not used again (it is closed once
// the call returns, if it ever does). The next call opens a new connection, within its
// own context. A connection that libvirt reports dead (keepalive, end of file) is
// replaced the same way.
type Client struct {
	cfg Config // with defaults
	log *slog.Logger

	// opening admits one connection attempt at a time; a caller waits for it no longer
	// than its context allows.
	opening chan struct{}

	mu     sync.Mutex
	cur    *session // nil until opened, and after it was lost or abandoned
	closed bool
}

// session is one libvirt connection and the count of calls running on it.
type session struct {
	conn   *libvirt.Connect
	opened time.Time

	mu       sync.Mutex
	inflight int
	dropped  bool // takes no new calls; closed when the last one returns
}

// acquire admits a call to the session, unless it was dropped.
func (s *session) acquire() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dropped {
		return false
	}
	s.inflight++
	return true
}

// release ends a call. It reports whether the caller must now close the connection
// (it was dropped, and this was its last call).
func (s *session) release() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inflight--
	return s.dropped && s.inflight == 0
}

// drop stops admitting calls. It reports whether the caller must close the connection
// now (no call is running on it); otherwise the last call to return closes it. A
// connection is never closed while a call runs on it: libvirt does not allow that.
func (s *session) drop() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dropped {
		return false
	}
	s.dropped = true
	return s.inflight == 0
}

// Dial validates cfg and connects to the hypervisor within ctx.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	c := &Client{cfg: cfg, log: cfg.Logger.With("uri", cfg.URI), opening: make(chan struct{}, 1)}
	if err := startEventLoop(); err != nil {
		return nil, err
	}
	s, err := c.session(ctx)
	if err != nil {
		return nil, err
	}
	if s.release() {
		c.closeConn(s)
	}
	return c, nil
}

// URI is the connection URI in use.
func (c *Client) URI() string { return c.cfg.URI }

// session returns the open session, acquired for one call, opening one if need be.
func (c *Client) session(ctx context.Context) (*session, error) {
	select {
	case c.opening <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("connecting to %s: waiting for another connection attempt: %w", c.cfg.URI, ctx.Err())
	}
	defer func() { <-c.opening }()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	if s := c.cur; s != nil && s.acquire() {
		c.mu.Unlock()
		return s, nil
	}
	c.mu.Unlock()

	s, err := c.connect(ctx)
	if err != nil {
		return nil, err
	}
	s.acquire()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		s.release()
		if s.drop() {
			go c.closeConn(s)
		}
		return nil, ErrClosed
	}
	c.cur = s
	return s, nil
}

// connect opens a new connection. If ctx ends first, the attempt goes on in the
// background and a connection it may still produce is closed at once.
func (c *Client) connect(ctx context.Context) (*session, error) {
	type result struct {
		conn *libvirt.Connect
		err  error
	}
	start := time.Now()
	done := make(chan result, 1)
	go func() {
		var flags libvirt.ConnectFlags
		if c.cfg.ReadOnly {
			flags |= libvirt.CONNECT_RO
		}
		conn, err := libvirt.NewConnectWithAuth(c.cfg.URI, c.auth(), flags)
		if err == nil && c.cfg.KeepAliveInterval > 0 {
			if kerr := conn.SetKeepAlive(int(c.cfg.KeepAliveInterval/time.Second), c.cfg.KeepAliveCount); kerr != nil {
				c.log.Debug("libvirt keepalive not enabled", "reason", wrap("keepalive", kerr).Error())
			}
		}
		done <- result{conn, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			if libraryMissing(r.err) {
				return nil, ErrNoLibrary
			}
			err := wrap("connecting to "+c.cfg.URI, r.err)
			c.log.Debug("libvirt connect failed", "duration", time.Since(start), "error", err.Error())
			return nil, err
		}
		c.log.Debug("libvirt connected", "duration", time.Since(start), "read_only", c.cfg.ReadOnly)
		return &session{conn: r.conn, opened: time.Now()}, nil
	case <-ctx.Done():
		go func() {
			if r := <-done; r.conn != nil {
				_, _ = r.conn.Close()
			}
		}()
		c.log.Debug("libvirt connect abandoned", "duration", time.Since(start))
		return nil, fmt.Errorf("connecting to %s: %w", c.cfg.URI, ctx.Err())
	}
}

// auth answers libvirt's credential requests from the configuration, and never from a
// terminal. Requests it cannot answer are left unanswered, which fails the login.
func (c *Client) auth() *libvirt.ConnectAuth {
	return &libvirt.ConnectAuth{
		CredType: []libvirt.ConnectCredentialType{
			libvirt.CRED_AUTHNAME, libvirt.CRED_USERNAME, libvirt.CRED_REALM,
			libvirt.CRED_PASSPHRASE, libvirt.CRED_NOECHOPROMPT,
		},
		Callback: func(creds []*libvirt.ConnectCredential) {
			for _, cr := range creds {
				answer := ""
				switch cr.Type {
				case libvirt.CRED_AUTHNAME, libvirt.CRED_USERNAME:
					answer = c.cfg.Username
					if answer == "" {
						answer = cr.DefResult
					}
				case libvirt.CRED_REALM:
					answer = cr.DefResult
				case libvirt.CRED_PASSPHRASE, libvirt.CRED_NOECHOPROMPT:
					answer = c.cfg.Password
				}
				c.log.Debug("libvirt asks for a credential", "type", credName(cr.Type), "prompt", cr.Prompt,
					"answered", answer != "")
				if answer != "" {
					cr.Result = answer
					cr.ResultLen = len(answer)
				}
			}
		},
	}
}

func credName(t libvirt.ConnectCredentialType) string {
	switch t {
	case libvirt.CRED_AUTHNAME:
		return "authname"
	case libvirt.CRED_USERNAME:
		return "username"
	case libvirt.CRED_REALM:
		return "realm"
	case libvirt.CRED_PASSPHRASE:
		return "passphrase"
	case libvirt.CRED_NOECHOPROMPT:
		return "noechoprompt"
	}
	return fmt.Sprintf("type %d", int(t))
}

// call runs fn on a connection within ctx. fn's error is worded for op. If ctx ends
// first, fn is abandoned (see Client) and the error wraps ErrPending and ctx's error.
func (c *Client) call(ctx context.Context, op string, fn func(conn *libvirt.Connect) error) error {
	s, err := c.session(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	start := time.Now()
	done := make(chan error, 1)
	go func() {
		err := fn(s.conn)
		if err != nil {
			err = wrap(op, err)
			if alive, aerr := s.conn.IsAlive(); aerr != nil || !alive {
				c.log.Debug("libvirt connection lost", "op", op)
				c.lose(s)
			}
		}
		if s.release() {
			c.closeConn(s)
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			c.log.Debug("libvirt call failed", "op", op, "duration", time.Since(start), "error", err.Error())
		} else {
			c.log.Debug("libvirt call", "op", op, "duration", time.Since(start))
		}
		return err
	case <-ctx.Done():
		c.log.Debug("libvirt call abandoned at the deadline; the connection will not be used again",
			"op", op, "duration", time.Since(start))
		c.lose(s)
		return fmt.Errorf("%s: %w (%w)", op, ErrPending, ctx.Err())
	}
}

// lose retires a session: no new calls, closed once its calls have returned.
func (c *Client) lose(s *session) {
	c.mu.Lock()
	if c.cur == s {
		c.cur = nil
	}
	c.mu.Unlock()
	if s.drop() {
		go c.closeConn(s)
	}
}

func (c *Client) closeConn(s *session) {
	if _, err := s.conn.Close(); err != nil {
		c.log.Debug("closing the libvirt connection", "error", wrap("close", err).Error())
	}
}

// Close ends the connection within ctx. A connection with a call still running (one
// abandoned at its deadline) is closed when that call returns.
func (c *Client) Close(ctx context.Context) error {
	c.mu.Lock()
	c.closed = true
	s := c.cur
	c.cur = nil
	c.mu.Unlock()
	if s == nil || !s.drop() {
		return nil
	}
	done := make(chan struct{})
	go func() {
		c.closeConn(s)
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("closing the connection to %s: %w", c.cfg.URI, ctx.Err())
	}
}

// uuidPattern is a UUID as libvirt prints it (libvirt also accepts other spellings).
var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$`)

// lookup finds a domain by name, then by UUID. The caller frees it.
func lookup(conn *libvirt.Connect, id string) (*libvirt.Domain, error) {
	d, err := conn.LookupDomainByName(id)
	if err == nil || !uuidPattern.MatchString(id) || !errors.Is(err, libvirt.ERR_NO_DOMAIN) {
		return d, err
	}
	return conn.LookupDomainByUUIDString(id)
}

// State returns the state of the domain named or identified (UUID) by id. A domain
// unknown to the hypervisor is an error wrapping ErrNoDomain, unless Destroy shut it off
// before (a transient domain disappears when it stops): it is then Shutoff.
func (c *Client) State(ctx context.Context, id string) (State, error) {
	var st State
	err := c.call(ctx, fmt.Sprintf("reading the state of domain %q", id), func(conn *libvirt.Connect) error {
		d, err := lookup(conn, id)
		if err != nil {
			return err
		}
		defer func() { _ = d.Free() }()
		s, _, err := d.GetState()
		st = State(s)
		return err
	})
	if errors.Is(err, ErrNoDomain) && c.cfg.Destroyed.Contains(id) {
		c.log.Debug("domain shut off by this program is gone (transient)", "domain", id)
		return Shutoff, nil
	}
	if err != nil {
		return NoState, err
	}
	return st, nil
}

// Destroy shuts the domain off at once, as pulling its power cord would (libvirt's
// virDomainDestroy: SIGTERM to QEMU, SIGKILL if it lingers). A domain that is already
// off is not an error. If ctx ends while libvirt is still at it, the error wraps
// ErrPending: the domain may yet be shut off, which State will tell.
func (c *Client) Destroy(ctx context.Context, id string) error {
	return c.call(ctx, fmt.Sprintf("destroying domain %q", id), func(conn *libvirt.Connect) error {
		d, err := lookup(conn, id)
		if err != nil {
			return err
		}
		defer func() { _ = d.Free() }()
		name, _ := d.GetName()
		uuid, _ := d.GetUUIDString()
		if err := d.Destroy(); err != nil {
			// It may have stopped by itself in between: that is what was wanted.
			if s, _, serr := d.GetState(); serr == nil && State(s).Off() {
				c.cfg.Destroyed.add(id, name, uuid)
				return nil
			}
			return err
		}
		c.cfg.Destroyed.add(id, name, uuid)
		return nil
	})
}

// Start boots the (defined, shut off) domain. A domain that is already running is not
// an error. If ctx ends while libvirt is still at it, the error wraps ErrPending.
func (c *Client) Start(ctx context.Context, id string) error {
	return c.call(ctx, fmt.Sprintf("starting domain %q", id), func(conn *libvirt.Connect) error {
		d, err := lookup(conn, id)
		if err != nil {
			return err
		}
		defer func() { _ = d.Free() }()
		if err := d.Create(); err != nil {
			if s, _, serr := d.GetState(); serr == nil && !State(s).Off() {
				return nil
			}
			return err
		}
		return nil
	})
}

// Domains lists every domain of the hypervisor, running or not, with its state.
func (c *Client) Domains(ctx context.Context) ([]Domain, error) {
	var out []Domain
	err := c.call(ctx, "listing domains", func(conn *libvirt.Connect) error {
		doms, err := conn.ListAllDomains(0)
		if err != nil {
			return err
		}
		defer func() {
			for i := range doms {
				_ = doms[i].Free()
			}
		}()
		list := make([]Domain, 0, len(doms))
		for i := range doms {
			name, err := doms[i].GetName()
			if err != nil {
				return err
			}
			uuid, err := doms[i].GetUUIDString()
			if err != nil {
				return err
			}
			s, _, err := doms[i].GetState()
			if errors.Is(err, libvirt.ERR_NO_DOMAIN) {
				continue // gone since it was listed (a transient domain that stopped)
			}
			if err != nil {
				return err
			}
			list = append(list, Domain{Name: name, UUID: uuid, State: State(s)})
		}
		out = list
		return nil
	})
	return out, err
}
