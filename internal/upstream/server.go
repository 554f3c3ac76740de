package upstream

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sekisho/sekisho/internal/metrics"
)

// server is one upstream server: its health and its idle connections.
type server struct {
	addr     string       // host:port as configured
	log      *slog.Logger // with the server's address
	tls      *tls.Config  // for STARTTLS: server name, roots, verification
	inFlight atomic.Int64 // Sends using the server, for least_conn
	sends    metrics.Sends

	mu        sync.Mutex
	idle      []*conn   // most recently used last
	failures  int       // connection-level failures since New
	downUntil time.Time // end of the current penalty
	lastErr   string
}

// countResult counts the server's word on a message: accepted, or refused (a reply of its
// own, or every recipient refused).
func (s *server) countResult(res Result, err error) {
	if err != nil {
		s.sends.Refused()
		return
	}
	for _, rerr := range res.Rcpt {
		if rerr == nil {
			s.sends.OK()
			return
		}
	}
	s.sends.Refused()
}

// order returns the servers in the order Send tries them: by the balance
// policy, servers in their penalty last. Those are tried rather than given
// up on because a server marked down may well have come back, and a
// delivery beats a 451.
func (p *Pool) order(now time.Time) []*server {
	type candidate struct {
		s    *server
		load int64
		up   bool
	}
	n := len(p.servers)
	start := 0
	if p.opts.Balance != BalanceOrdered {
		// least_conn rotates too, so that idle servers share the work
		// instead of the first one taking it all.
		start = int((p.rr.Add(1) - 1) % uint64(n))
	}
	cands := make([]candidate, n)
	for i := range cands {
		s := p.servers[(start+i)%n]
		s.mu.Lock()
		up := !now.Before(s.downUntil)
		s.mu.Unlock()
		cands[i] = candidate{s: s, load: s.inFlight.Load(), up: up}
	}
	slices.SortStableFunc(cands, func(a, b candidate) int {
		switch {
		case a.up != b.up:
			if a.up {
				return -1
			}
			return 1
		case p.opts.Balance == BalanceLeastConn:
			return int(a.load - b.load)
		}
		return 0
	})
	out := make([]*server, n)
	for i, c := range cands {
		out[i] = c.s
	}
	return out
}

// markDown records a connection-level failure of s and starts its penalty.
func (p *Pool) markDown(s *server, err error) {
	s.mu.Lock()
	wasUp := !time.Now().Before(s.downUntil)
	s.failures++
	s.downUntil = time.Now().Add(p.opts.RetryAfter)
	s.lastErr = err.Error()
	idle := s.idle
	s.idle = nil
	s.mu.Unlock()
	for _, c := range idle {
		c.quit(false)
	}
	if wasUp {
		s.log.Warn("upstream server marked down", "err", err, "retry_after", p.opts.RetryAfter)
		return
	}
	s.log.Debug("upstream server still down", "err", err)
}

// markUp records that s took part in a transaction and ends any penalty.
func (p *Pool) markUp(s *server) {
	s.mu.Lock()
	wasDown := time.Now().Before(s.downUntil)
	s.downUntil = time.Time{}
	s.mu.Unlock()
	if wasDown {
		s.log.Info("upstream server up again")
	}
}

// get returns a connection to s ready for a transaction: an idle one that
// answers RSET, else a new one.
func (p *Pool) get(ctx context.Context, s *server) (*conn, error) {
	for {
		c := p.takeIdle(s)
		if c == nil {
			break
		}
		err := c.guard(ctx, func() error { return c.reset(ctx) })
		if err == nil {
			c.log.Debug("reusing connection")
			return c, nil
		}
		// The server may close idle connections whenever it likes; that
		// is no failure of the server.
		c.log.Debug("idle connection unusable", "err", err)
		c.close()
		if err := ctxErr(ctx); err != nil {
			return nil, err
		}
	}
	return p.dial(ctx, s)
}

// takeIdle pops the most recently used idle connection of s that has not
// been idle too long, closing those that have.
func (p *Pool) takeIdle(s *server) *conn {
	for {
		s.mu.Lock()
		if len(s.idle) == 0 {
			s.mu.Unlock()
			return nil
		}
		c := s.idle[len(s.idle)-1]
		s.idle[len(s.idle)-1] = nil
		s.idle = s.idle[:len(s.idle)-1]
		s.mu.Unlock()
		if time.Since(c.used) < p.opts.IdleTimeout {
			return c
		}
		c.quit(false)
	}
}

// put gives c back to the idle list of s, or closes it when it is broken or
// not wanted.
func (p *Pool) put(s *server, c *conn) {
	if c.broken {
		c.close()
		return
	}
	c.used = time.Now()
	s.mu.Lock()
	if !p.closed.Load() && len(s.idle) < p.opts.MaxIdle {
		s.idle = append(s.idle, c)
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	c.quit(false)
}

// reap closes connections idle longer than IdleTimeout until Close, so that
// upstream servers do not keep sessions open for nothing.
func (p *Pool) reap() {
	t := time.NewTicker(max(p.opts.IdleTimeout/2, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-p.done:
			return
		case now := <-t.C:
			var wg sync.WaitGroup
			for _, s := range p.servers {
				s.mu.Lock()
				keep := s.idle[:0]
				for _, c := range s.idle {
					if now.Sub(c.used) < p.opts.IdleTimeout {
						keep = append(keep, c)
						continue
					}
					wg.Go(func() { c.quit(true) })
				}
				clear(s.idle[len(keep):])
				s.idle = keep
				s.mu.Unlock()
			}
			wg.Wait()
		}
	}
}

// dial connects to s. Under the opportunistic policy a failed TLS handshake
// is followed by one more try without TLS, as Postfix does at its "may"
// level: encryption is wanted, not required.
func (p *Pool) dial(ctx context.Context, s *server) (*conn, error) {
	c, err := p.connect(ctx, s, p.opts.TLS)
	var he *handshakeError
	if p.opts.TLS == TLSOpportunistic && errors.As(err, &he) && ctx.Err() == nil {
		s.log.Warn("starttls failed, retrying without tls", "err", err)
		c, err = p.connect(ctx, s, TLSNone)
	}
	return c, err
}

// connect dials s and runs the greeting, EHLO and STARTTLS under the TLS
// policy mode.
func (p *Pool) connect(ctx context.Context, s *server, mode string) (*conn, error) {
	d := net.Dialer{Timeout: p.opts.ConnectTimeout}
	nc, err := d.DialContext(ctx, "tcp", s.addr)
	if err != nil {
		return nil, err
	}
	c := newConn(nc, s, &p.opts, s.log.With("conn", p.connID.Add(1)))
	c.log.Debug("connected", "local", nc.LocalAddr().String(), "remote", nc.RemoteAddr().String())
	if err := c.guard(ctx, func() error { return c.hello(ctx, mode) }); err != nil {
		if c.broken {
			c.close()
		} else {
			c.quit(false)
		}
		return nil, err
	}
	if c.log.Enabled(ctx, slog.LevelDebug) {
		c.log.Debug("session ready", "esmtp", c.ext != nil, "tls", c.tls, "pipelining", c.has("PIPELINING"), "xforward", c.ext["XFORWARD"])
	}
	return c, nil
}

// handshakeError is a failed TLS handshake after the server agreed to
// STARTTLS.
type handshakeError struct{ err error }

func (e *handshakeError) Error() string { return fmt.Sprintf("tls handshake: %v", e.err) }
func (e *handshakeError) Unwrap() error { return e.err }
