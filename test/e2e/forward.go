package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// forwarder accepts TCP connections on 127.0.0.1:port inside a node's network namespace
// and relays each to 127.0.0.1:port of the root namespace, where the Nova sandbox
// listens: processes in the node reach the sandbox as if it ran there. The listening
// socket stays in the namespace it was created in, whichever thread later accepts on
// it; only its creation needs the namespace, on a locked OS thread.
type forwarder struct {
	netns string
	port  int
	l     net.Listener
	wg    sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	done  bool
}

func (tb *Testbed) startForwarders() error {
	for _, n := range tb.nodes {
		for _, port := range tb.cfg.NovaPorts {
			f, err := forward(n.NetNS, port)
			if err != nil {
				return err
			}
			tb.mu.Lock()
			tb.forwards = append(tb.forwards, f)
			tb.mu.Unlock()
		}
	}
	tb.logf("forwarding 127.0.0.1 ports %v into every node", tb.cfg.NovaPorts)
	return nil
}

func forward(netns string, port int) (*forwarder, error) {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	l, err := listenIn(filepath.Join("/run/netns", netns), addr)
	if err != nil {
		return nil, fmt.Errorf("listening on %s in %s: %w", addr, netns, err)
	}
	f := &forwarder{netns: netns, port: port, l: l, conns: map[net.Conn]struct{}{}}
	f.wg.Add(1)
	go f.serve(addr)
	return f, nil
}

// listenIn creates a TCP listener inside the network namespace at nsPath.
func listenIn(nsPath, addr string) (net.Listener, error) {
	type result struct {
		l   net.Listener
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// The goroutine keeps its thread locked if it cannot switch back: Go then ends
		// the thread with the goroutine, and no other goroutine runs in the wrong
		// namespace.
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer orig.Close()
		target, err := os.Open(nsPath)
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer target.Close()
		if err := setns(target); err != nil {
			ch <- result{err: fmt.Errorf("setns %s: %w", nsPath, err)}
			return
		}
		l, lerr := net.Listen("tcp4", addr)
		if err := setns(orig); err != nil {
			if l != nil {
				l.Close()
			}
			ch <- result{err: fmt.Errorf("setns back to the root namespace: %w", err)}
			return
		}
		runtime.UnlockOSThread()
		ch <- result{l, lerr}
	}()
	r := <-ch
	return r.l, r.err
}

func setns(f *os.File) error { return unix.Setns(int(f.Fd()), unix.CLONE_NEWNET) }

func (f *forwarder) serve(target string) {
	defer f.wg.Done()
	for {
		c, err := f.l.Accept()
		if err != nil {
			return // closed
		}
		if !f.track(c) {
			c.Close()
			return
		}
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			defer f.untrack(c)
			f.relay(c, target)
		}()
	}
}

// relay copies both ways between the node's connection and the root namespace's port,
// closing each direction's write side when the other side's read ends.
func (f *forwarder) relay(c net.Conn, target string) {
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	var d net.Dialer
	up, err := d.DialContext(ctx, "tcp4", target)
	cancel()
	if err != nil {
		return // the node sees the connection closed, as a refused one
	}
	if !f.track(up) {
		up.Close()
		return
	}
	defer f.untrack(up)
	defer up.Close()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, _ = io.Copy(up, c)
		closeWrite(up)
	}()
	_, _ = io.Copy(c, up)
	closeWrite(c)
	wg.Wait()
}

func closeWrite(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
}

func (f *forwarder) track(c net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.done {
		return false
	}
	f.conns[c] = struct{}{}
	return true
}

func (f *forwarder) untrack(c net.Conn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.conns, c)
}

// close stops accepting and cuts the open connections.
func (f *forwarder) close() {
	f.mu.Lock()
	f.done = true
	f.l.Close()
	for c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}
