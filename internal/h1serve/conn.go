package h1serve

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"time"
)

// conn is one client connection served here.
type conn struct {
	srv    *Server
	nc     net.Conn
	remote string
	idle   bool // guarded by srv.mu
	fresh  bool // no request read yet; guarded by srv.mu

	accepted time.Time

	buf        []byte // bytes read and not yet consumed: buf[start:end]
	start, end int
	hr         headReader
	bw         *outBuf
	ctx        context.Context

	sentHeader http.Header // a response's header as at WriteHeader; reused
	sentValues []string    // the values of sentHeader
}

const (
	initialBuf = 4 << 10
	writeBuf   = 8 << 10
)

var errHandOff = errors.New("h1serve: hand off")

func (c *conn) serve() {
	handed := false
	defer func() {
		// http.ErrAbortHandler ends a response quietly (ReverseProxy's when its client left).
		if err := recover(); err != nil && err != http.ErrAbortHandler {
			const size = 64 << 10
			buf := make([]byte, size)
			buf = buf[:runtime.Stack(buf, false)]
			if c.srv.Logger != nil {
				c.srv.Logger.Error("http: panic serving", "client", c.remote, "panic", fmt.Sprint(err), "stack", string(buf))
			}
		}
		c.srv.forget(c)
		if !handed {
			c.nc.Close()
		}
	}()
	base := c.srv.BaseContext
	if base == nil {
		base = context.Background()
	}
	ctx, cancel := context.WithCancel(base)
	defer cancel()
	ctx = context.WithValue(ctx, http.ServerContextKey, c.srv.Fallback)
	c.ctx = context.WithValue(ctx, http.LocalAddrContextKey, c.nc.LocalAddr())
	c.buf = c.srv.readBufs.Get()
	c.bw = &outBuf{nc: c.nc, b: c.srv.writeBufs.Get()[:0]}
	defer func() {
		// Back for the next connection: nothing refers to them now (a hand-over copied
		// the bytes it needs); a buffer that grew is dropped.
		c.srv.readBufs.Put(c.buf)
		c.srv.writeBufs.Put(c.bw.b)
	}()
	first := true
	for {
		if !c.srv.setIdle(c, true) {
			return
		}
		head, err := c.readHead(first)
		first = false
		if err == errHandOff {
			c.srv.setIdle(c, false) // Shutdown leaves it to Fallback, which has not got it yet
			handed = c.handOff()
			return
		}
		if err != nil {
			return
		}
		c.srv.setIdle(c, false)
		req, err := c.hr.parse(head)
		absolute := c.srv.AbsoluteForm && hasHostField(head)
		if err != nil || c.hr.br.Buffered() != 0 || !takes(req, absolute) {
			handed = c.handOff()
			return
		}
		c.start += len(head)
		if !c.serveRequest(req) {
			return
		}
	}
}

// handOff gives the connection, with the bytes of the current request and those after it,
// to Fallback.
func (c *conn) handOff() bool {
	c.nc.SetReadDeadline(time.Time{})
	pending := append([]byte(nil), c.buf[c.start:c.end]...)
	return c.srv.handoff.give(&replayConn{Conn: c.nc, pending: pending})
}

// readHead returns the next request head, up to and including its empty line, from c.buf.
// errHandOff: the head is not one this server parses (too large, or a line ending in a bare
// LF); net/http will answer it. The wait for a request's first byte is bounded by
// IdleTimeout (ReadHeaderTimeout on a new connection), the rest of its head by
// ReadHeaderTimeout.
func (c *conn) readHead(first bool) ([]byte, error) {
	const (
		unset = iota
		idleDeadline
		headDeadline
	)
	scanned, deadline := 0, unset
	for {
		end, ok, odd := headEnd(c.buf[c.start:c.end], scanned)
		if ok && end <= c.srv.maxHeader() {
			return c.buf[c.start : c.start+end], nil
		}
		if ok {
			// Read whole as the buffer grew past the limit: net/http judges it (431 when
			// it is over the limit with net/http's slack too).
			return nil, errHandOff
		}
		// After the first request net/http waits for 4 bytes before it reads one (and
		// closes quietly at EOF before them), so an odd start waits for them too.
		if odd && (first || c.end-c.start >= 4) || c.end-c.start >= c.srv.maxHeader() {
			return nil, errHandOff
		}
		scanned = end
		c.makeRoom()
		switch {
		case deadline == unset && c.start == c.end && !first:
			deadline = idleDeadline
			c.setReadDeadline(c.srv.idleTimeout())
		case deadline == unset || deadline == idleDeadline && c.start < c.end:
			if deadline == idleDeadline && c.srv.ReadHeaderTimeout <= 0 {
				c.nc.SetReadDeadline(time.Time{}) // the head has no limit: the idle one ends
			}
			deadline = headDeadline
			c.setReadDeadline(c.srv.ReadHeaderTimeout)
		}
		n, err := c.nc.Read(c.buf[c.end:])
		c.end += n
		if err != nil {
			if c.start == c.end {
				return nil, err
			}
			if errors.Is(err, io.EOF) {
				if !first && c.end-c.start < 4 {
					return nil, err
				}
				return nil, errHandOff // a truncated request: net/http answers it
			}
			return nil, err
		}
	}
}

// makeRoom leaves free space at the end of c.buf: it moves the unconsumed bytes to the
// front, or grows the buffer when they fill it.
func (c *conn) makeRoom() {
	if c.start == c.end {
		c.start, c.end = 0, 0
	}
	if c.end < len(c.buf) {
		return
	}
	if c.start > 0 {
		c.end = copy(c.buf, c.buf[c.start:c.end])
		c.start = 0
		return
	}
	c.buf = append(c.buf, make([]byte, len(c.buf))...)
}

func (c *conn) setReadDeadline(d time.Duration) {
	if d > 0 {
		c.nc.SetReadDeadline(time.Now().Add(d))
	}
}

// headEnd finds the end of a request head in b, searching from from: the index after its
// empty line. odd reports a line ended by a bare LF.
func headEnd(b []byte, from int) (end int, ok, odd bool) {
	i := from
	for {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return len(b), false, false // every LF so far was looked at, with what precedes it
		}
		i += j
		if i == 0 || b[i-1] != '\r' {
			return 0, false, true
		}
		if i >= 3 && b[i-2] == '\n' && b[i-3] == '\r' {
			return i + 1, true, false
		}
		if i == 1 {
			// An empty line before the request line: net/http's concern.
			return 0, false, true
		}
		i++
	}
}

// serveRequest answers req; false when the connection must close.
func (c *conn) serveRequest(req *http.Request) bool {
	req.RemoteAddr = c.remote
	// As with net/http, the request's context ends when ServeHTTP returns: what a handler
	// started with it (context.AfterFunc, a goroutine waiting on Done) ends with the
	// request, not with the connection. (A client leaving is not noticed before a write
	// fails: no read runs while the handler does.)
	ctx, cancel := context.WithCancel(c.ctx)
	defer cancel()
	req = req.WithContext(ctx)
	if d := c.srv.WriteTimeout; d > 0 {
		c.nc.SetWriteDeadline(time.Now().Add(d))
	}
	w := &response{c: c, req: req, header: make(http.Header)}
	c.srv.Handler.ServeHTTP(w, req)
	if err := w.finish(); err != nil {
		return false
	}
	return !w.closeAfter
}

// snapshot returns a copy of h, made in storage the connection reuses: valid until the
// next request's.
func (c *conn) snapshot(h http.Header) http.Header {
	if c.sentHeader == nil {
		c.sentHeader = make(http.Header, len(h))
	} else {
		clear(c.sentHeader)
	}
	n := 0
	for _, vv := range h {
		n += len(vv)
	}
	if cap(c.sentValues) < n {
		c.sentValues = make([]string, 0, n)
	}
	vals := c.sentValues[:0]
	for k, vv := range h {
		if vv == nil {
			c.sentHeader[k] = nil
			continue
		}
		vals = append(vals, vv...)
		c.sentHeader[k] = vals[len(vals)-len(vv) : len(vals) : len(vals)]
	}
	return c.sentHeader
}

// outBuf collects what goes to the client: a response head and a small body leave in one
// write, a head and a large body in one writev.
type outBuf struct {
	nc  net.Conn
	b   []byte
	err error
}

func (o *outBuf) WriteString(s string) (int, error) {
	if o.err != nil {
		return 0, o.err
	}
	o.b = append(o.b, s...)
	return len(s), nil
}

func (o *outBuf) Write(p []byte) (int, error) {
	if o.err != nil {
		return 0, o.err
	}
	if len(o.b)+len(p) <= cap(o.b) {
		o.b = append(o.b, p...)
		return len(p), nil
	}
	var err error
	if len(o.b) == 0 {
		_, err = o.nc.Write(p)
	} else {
		bufs := net.Buffers{o.b, p}
		_, err = bufs.WriteTo(o.nc)
		o.b = o.b[:0]
	}
	if err != nil {
		o.err = err
		return 0, err
	}
	return len(p), nil
}

// Flush writes what is collected.
func (o *outBuf) Flush() error {
	if o.err != nil {
		return o.err
	}
	if len(o.b) > 0 {
		_, err := o.nc.Write(o.b)
		o.b = o.b[:0]
		if err != nil {
			o.err = err
		}
	}
	return o.err
}
