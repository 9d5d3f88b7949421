package sqsesm

import (
	"context"
	"fmt"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
)

// watchedConn remembers the stack that first closed it, so that a receive answer cut off by a
// close on this side can name who closed its connection (issue 17's stall).
type watchedConn struct {
	net.Conn
	closer atomic.Pointer[string]
}

func (c *watchedConn) Close() error {
	s := string(debug.Stack())
	c.closer.CompareAndSwap(nil, &s)
	return c.Conn.Close()
}

// closedBy is the stack that closed conn, if conn is a watchedConn that was closed.
func closedBy(conn net.Conn) string {
	if c, ok := conn.(*watchedConn); ok {
		if s := c.closer.Load(); s != nil {
			return *s
		}
	}
	return ""
}

// watchDial wraps dial (nil: a plain net.Dialer) so that its connections are watchedConns.
func watchDial(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &watchedConn{Conn: c}, nil
	}
}

// wroteRequest is how the writing of one request ended, as the connection's write loop reports
// it (after the answer may already be read).
type wroteRequest struct {
	mu   sync.Mutex
	err  error
	done bool
}

func (w *wroteRequest) set(err error) {
	w.mu.Lock()
	w.err, w.done = err, true
	w.mu.Unlock()
}

func (w *wroteRequest) get() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		return "not yet reported"
	}
	return fmt.Sprint(w.err)
}
