// Package h1transport is the HTTP/1.1 client side of sekisho's proxies for the requests that
// make most of their traffic: GET, HEAD and OPTIONS without a body to a plain-HTTP origin.
//
// net/http's Transport gives every connection a reader and a writer goroutine and hands each
// request and response between them and the caller over channels; under load most of a
// proxy's CPU then goes to waking goroutines. Here the calling goroutine writes the request
// and reads the response itself on a kept-alive connection, and puts the connection back
// when the body has been read to its end. Everything else (request bodies, upgrades, HTTPS,
// HTTP/2) goes to Fallback, a net/http Transport.
//
// Because only requests safe to repeat take this path, a kept-alive connection that the
// origin closed while it sat idle costs nothing: the request is sent again once on a new
// connection, as net/http does.
package h1transport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/http/httpguts"
)

// Defaults of the zero Transport fields.
const (
	DefaultMaxIdlePerHost    = 64
	DefaultIdleTimeout       = 90 * time.Second
	DefaultMaxResponseHeader = 64 << 10

	max1xx = 5 // informational responses before the final one
)

// Transport is an http.RoundTripper. Its fields are set before the first request.
type Transport struct {
	// Dial connects to "host:port"; nil: a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Fallback takes every request this transport does not; required.
	Fallback http.RoundTripper

	MaxIdlePerHost         int           // kept-alive connections per origin; default 64
	IdleTimeout            time.Duration // an idle connection older than this is closed; default 90s
	ResponseHeaderTimeout  time.Duration // from the request written to the response header; 0: none
	MaxResponseHeaderBytes int64         // default 64 KiB

	mu     sync.Mutex
	idle   map[string][]*conn // per "host:port", the most recently used last
	dialer net.Dialer
}

// conn is one connection to an origin.
type conn struct {
	nc     net.Conn
	lr     limitReader
	br     *bufio.Reader
	bw     *bufio.Writer
	key    string
	usedAt time.Time
}

// limitReader caps what the response header may take; the body reads without a cap.
type limitReader struct {
	r io.Reader
	n int64 // bytes left; negative: no cap
}

var errHeaderTooLarge = errors.New("h1transport: response header too large")

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n < 0 {
		return l.r.Read(p)
	}
	if l.n == 0 {
		return 0, errHeaderTooLarge
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

// Repeatable reports a request that may be sent again after a failed attempt: GET, HEAD or
// OPTIONS (idempotent, RFC 9110 §9.2.2) without a body.
func Repeatable(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return r.Body == nil || r.Body == http.NoBody
	}
	return false
}

// Takes reports whether RoundTrip handles r itself instead of passing it to Fallback.
func Takes(r *http.Request) bool {
	return plain(r) && r.URL.Scheme == "http" && !r.Close
}

// plain reports a request safe to repeat that asks for nothing of the connection: no
// Upgrade, no Expect.
func plain(r *http.Request) bool {
	return Repeatable(r) && r.Header.Get("Upgrade") == "" && r.Header.Get("Expect") == ""
}

// RoundTrip sends r and returns the origin's response; see http.RoundTripper.
func (t *Transport) RoundTrip(r *http.Request) (*http.Response, error) {
	if !Takes(r) {
		return t.Fallback.RoundTrip(r)
	}
	if err := check(r); err != nil {
		return nil, err
	}
	key := canonicalAddr(r.URL)
	for attempt := 0; ; attempt++ {
		c, reused, err := t.get(r.Context(), key)
		if err != nil {
			return nil, err
		}
		resp, err := t.exchange(c, r)
		if err == nil {
			return resp, nil
		}
		c.nc.Close()
		// A kept-alive connection may have been closed by the origin while it sat idle:
		// the request (safe to repeat) goes once more on a new connection.
		if reused && attempt == 0 && r.Context().Err() == nil && staleConn(err) {
			continue
		}
		return nil, err
	}
}

// staleConn reports an error that a connection closed by the origin gives before any
// response byte arrived.
func staleConn(err error) bool {
	var sent *sendError
	return errors.As(err, &sent) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || isReset(err)
}

func isReset(err error) bool { return errors.Is(err, syscall.ECONNRESET) }

type sendError struct{ err error }

func (e *sendError) Error() string { return "h1transport: write request: " + e.err.Error() }
func (e *sendError) Unwrap() error { return e.err }

// exchange writes r on c and reads the response header. On success the response body owns c.
func (t *Transport) exchange(c *conn, r *http.Request) (*http.Response, error) {
	writeRequest(c.bw, r)
	if err := c.bw.Flush(); err != nil {
		return nil, &sendError{err}
	}
	// Cancelling the request (the client went away) or the header timeout cuts the read.
	stop := context.AfterFunc(r.Context(), func() { c.nc.SetReadDeadline(time.Unix(1, 0)) })
	if t.ResponseHeaderTimeout > 0 {
		c.nc.SetReadDeadline(time.Now().Add(t.ResponseHeaderTimeout))
	}
	c.lr.n = t.maxHeader()
	var resp *http.Response
	var err error
	for informational := 0; ; informational++ {
		resp, err = http.ReadResponse(c.br, r)
		if err != nil || resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			break
		}
		// 1xx (103 Early Hints): informational, the real response follows; as many as
		// net/http's Transport takes.
		if informational == max1xx {
			err = errors.New("h1transport: too many 1xx responses")
			break
		}
		c.lr.n = t.maxHeader()
	}
	c.lr.n = -1
	if err != nil {
		stop()
		if ctxErr := r.Context().Err(); ctxErr != nil {
			return nil, ctxErr
		}
		return nil, err
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		stop()
		return nil, errors.New("h1transport: 101 to a request without Upgrade")
	}
	if t.ResponseHeaderTimeout > 0 {
		c.nc.SetReadDeadline(time.Time{})
		if r.Context().Err() != nil { // cancelled before the line above undid the cut
			c.nc.SetReadDeadline(time.Unix(1, 0))
		}
	}
	reuse := !resp.Close && (resp.ContentLength >= 0 || isChunked(resp) || resp.Body == http.NoBody)
	b := &body{rc: resp.Body, c: c, t: t, reuse: reuse, stop: stop}
	if resp.Body == http.NoBody {
		b.finish(reuse)
		return resp, nil
	}
	resp.Body = b
	return resp, nil
}

func isChunked(resp *http.Response) bool {
	return len(resp.TransferEncoding) == 1 && resp.TransferEncoding[0] == "chunked"
}

func (t *Transport) maxHeader() int64 {
	if t.MaxResponseHeaderBytes > 0 {
		return t.MaxResponseHeaderBytes
	}
	return DefaultMaxResponseHeader
}

// skipped are the fields writeRequest leaves out: Host is written first, and a request
// without a body has no framing and no connection options (ReverseProxy removed the
// hop-by-hop fields already).
func skipped(name string) bool {
	return name == "Host" || name == "Content-Length" || name == "Transfer-Encoding" || name == "Connection"
}

// check refuses a request whose Host or header could split it. The names and values came
// through net/http's parser or from us; this is the last line.
func check(r *http.Request) error {
	if !httpguts.ValidHostHeader(host(r)) {
		return fmt.Errorf("h1transport: invalid Host %q", host(r))
	}
	for k, vs := range r.Header {
		if skipped(k) {
			continue
		}
		if !httpguts.ValidHeaderFieldName(k) {
			return fmt.Errorf("h1transport: invalid header name %q", k)
		}
		for _, v := range vs {
			if !httpguts.ValidHeaderFieldValue(v) {
				return fmt.Errorf("h1transport: invalid value of header %s", k)
			}
		}
	}
	return nil
}

func host(r *http.Request) string {
	if r.Host != "" {
		return r.Host
	}
	return r.URL.Host
}

// writeRequest writes r's request line and header (checked) in origin form.
func writeRequest(w *bufio.Writer, r *http.Request) {
	w.WriteString(r.Method)
	w.WriteByte(' ')
	w.WriteString(r.URL.RequestURI())
	w.WriteString(" HTTP/1.1\r\nHost: ")
	w.WriteString(host(r))
	w.WriteString("\r\n")
	for k, vs := range r.Header {
		if skipped(k) {
			continue
		}
		for _, v := range vs {
			if k == "User-Agent" && v == "" {
				continue // ReverseProxy's way of saying "send none"
			}
			w.WriteString(k)
			w.WriteString(": ")
			w.WriteString(v)
			w.WriteString("\r\n")
		}
	}
	w.WriteString("\r\n")
}

// body is a response body; at its end the connection goes back to the pool.
type body struct {
	rc    io.ReadCloser
	c     *conn
	t     *Transport
	reuse bool
	stop  func() bool
	done  bool
}

func (b *body) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.finish(b.reuse)
	} else if err != nil {
		b.finish(false)
	}
	return n, err
}

// Close ends the body; a body not read to its end closes the connection.
func (b *body) Close() error {
	if !b.done {
		b.finish(false)
	}
	return nil
}

func (b *body) finish(reuse bool) {
	b.done = true
	if !b.stop() {
		reuse = false // the cancellation fired and cut the connection
	}
	if reuse {
		b.t.put(b.c)
	} else {
		b.c.nc.Close()
	}
}

// get returns an idle connection to key, or a new one.
func (t *Transport) get(ctx context.Context, key string) (c *conn, reused bool, err error) {
	now := time.Now()
	t.mu.Lock()
	for list := t.idle[key]; len(list) > 0; list = t.idle[key] {
		c = list[len(list)-1]
		list[len(list)-1] = nil
		t.idle[key] = list[:len(list)-1]
		if now.Sub(c.usedAt) < t.idleTimeout() {
			t.mu.Unlock()
			return c, true, nil
		}
		c.nc.Close()
	}
	t.mu.Unlock()
	dial := t.Dial
	if dial == nil {
		dial = t.dialer.DialContext
	}
	nc, err := dial(ctx, "tcp", key)
	if err != nil {
		return nil, false, err
	}
	c = &conn{nc: nc, key: key}
	c.lr.r = nc
	c.lr.n = -1
	c.br = bufio.NewReaderSize(&c.lr, 16<<10)
	c.bw = bufio.NewWriterSize(nc, 4<<10)
	return c, false, nil
}

func (t *Transport) idleTimeout() time.Duration {
	if t.IdleTimeout > 0 {
		return t.IdleTimeout
	}
	return DefaultIdleTimeout
}

// put keeps c for the next request to its origin, or closes it when the pool is full.
func (t *Transport) put(c *conn) {
	max := t.MaxIdlePerHost
	if max <= 0 {
		max = DefaultMaxIdlePerHost
	}
	c.usedAt = time.Now()
	key := c.key
	var expired []*conn
	t.mu.Lock()
	list := t.idle[key]
	// The oldest come first: those idle too long are closed here, so that connections the
	// origin has closed meanwhile do not linger while traffic goes on.
	n := 0
	for n < len(list) && c.usedAt.Sub(list[n].usedAt) >= t.idleTimeout() {
		n++
	}
	if n > 0 {
		expired = append(expired, list[:n]...)
		list = append(list[:0], list[n:]...)
		clear(list[len(list):cap(list)])
	}
	if len(list) < max && c.br.Buffered() == 0 {
		list = append(list, c)
		c = nil
	}
	if t.idle == nil {
		t.idle = map[string][]*conn{}
	}
	t.idle[key] = list
	t.mu.Unlock()
	if c != nil {
		expired = append(expired, c)
	}
	for _, e := range expired {
		e.nc.Close()
	}
}

// CloseIdleConnections closes the kept-alive connections, here and in Fallback.
func (t *Transport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = nil
	t.mu.Unlock()
	for _, list := range idle {
		for _, c := range list {
			c.nc.Close()
		}
	}
	if f, ok := t.Fallback.(interface{ CloseIdleConnections() }); ok {
		f.CloseIdleConnections()
	}
}

// canonicalAddr is the URL's host:port, port 80 when absent.
func canonicalAddr(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = "80"
	}
	return net.JoinHostPort(u.Hostname(), port)
}
