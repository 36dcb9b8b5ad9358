package updraft

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// gatedListener is a listening socket that two processes may hold at once
// during a hand-over. Accept waits while the gate is shut: the kernel keeps
// new connections in the socket's queue for whichever process accepts,
// so a connection made while both gates are shut waits a moment rather
// than fails. Every accepted connection is counted until it is closed, so
// a process can wait for its connections to drain.
type gatedListener struct {
	inner   net.Listener
	network string
	address string

	mu     sync.Mutex    // guards open and opened
	open   bool          // Accept may hand out connections
	opened chan struct{} // closed when the gate opens
	closed chan struct{} // closed by Close

	// active counts the connections accepted and not yet closed, and each
	// Accept in progress: a connection the kernel hands over just as the
	// gate shuts is counted before drain can see zero, so drain waits for
	// it to be served and closed (its effects are in the cut that follows).
	active  atomic.Int64
	idle    chan struct{} // signalled when active drops to zero
	closeMu sync.Once
}

func newGatedListener(inner net.Listener, network, address string) *gatedListener {
	return &gatedListener{inner: inner, network: network, address: address,
		opened: make(chan struct{}), closed: make(chan struct{}), idle: make(chan struct{}, 1)}
}

// deadliner is what TCP and Unix listeners offer to interrupt Accept.
type deadliner interface{ SetDeadline(time.Time) error }

// setOpen opens or shuts the gate. Shutting it interrupts an Accept in
// progress (through the listener's deadline) so that no connection is
// taken after this returns, except one the kernel handed over at that
// very moment, which is counted and served.
func (g *gatedListener) setOpen(open bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.open == open {
		return
	}
	g.open = open
	d, _ := g.inner.(deadliner)
	if open {
		if d != nil {
			_ = d.SetDeadline(time.Time{})
		}
		close(g.opened)
		return
	}
	g.opened = make(chan struct{})
	if d != nil {
		_ = d.SetDeadline(time.Unix(1, 0))
	}
}

func (g *gatedListener) gate() (open bool, opened <-chan struct{}) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.open, g.opened
}

// Accept waits for the gate to be open, then for a connection.
func (g *gatedListener) Accept() (net.Conn, error) {
	for {
		open, opened := g.gate()
		if !open {
			select {
			case <-opened:
			case <-g.closed:
				return nil, net.ErrClosed
			}
			continue
		}
		g.active.Add(1) // becomes the connection's count on success
		c, err := g.inner.Accept()
		if err != nil {
			g.release()
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if open, _ := g.gate(); !open {
					continue // interrupted by the gate shutting
				}
			}
			return nil, err
		}
		return &countedConn{Conn: c, l: g}, nil
	}
}

// Close closes this process's copy of the socket; another process holding
// it keeps listening.
func (g *gatedListener) Close() error {
	g.closeMu.Do(func() { close(g.closed) })
	return g.inner.Close()
}

func (g *gatedListener) Addr() net.Addr { return g.inner.Addr() }

// file returns a duplicate of the socket to hand to a new process.
func (g *gatedListener) file() (*os.File, error) {
	f, ok := g.inner.(interface{ File() (*os.File, error) })
	if !ok {
		return nil, fmt.Errorf("updraft: listener %s %s (%T) cannot be handed over", g.network, g.address, g.inner)
	}
	return f.File()
}

// waitIdle waits until every accepted connection is closed, or ctx ends.
func (g *gatedListener) waitIdle(ctx context.Context) error {
	for g.active.Load() > 0 {
		select {
		case <-g.idle:
		case <-ctx.Done():
			return fmt.Errorf("updraft: listener %s: %d connection(s) still open: %w", g.address, g.active.Load(), ctx.Err())
		}
	}
	return nil
}

// countedConn counts itself out of its listener when closed.
type countedConn struct {
	net.Conn
	l    *gatedListener
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(c.l.release)
	return c.Conn.Close()
}

// release takes one connection (or Accept in progress) off the count.
func (g *gatedListener) release() {
	if g.active.Add(-1) == 0 {
		select {
		case g.idle <- struct{}{}:
		default:
		}
	}
}
