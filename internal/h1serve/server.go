// Package h1serve is the HTTP/1.1 server of sekisho's plain-HTTP proxy listeners for the
// requests that make most of their traffic: GET and HEAD without a body.
//
// net/http's server starts a goroutine for a background read during every request (to notice
// a client that leaves) and hands the response through two layers of buffers; on a proxy
// that answers tens of thousands of small requests a second, waking those goroutines costs
// more CPU than the proxying. Here the connection's own goroutine reads the request head,
// calls the handler and writes the response; nothing else runs per request.
//
// Anything else goes to net/http, connection and all: at the first request that is not a
// plain GET or HEAD (a body, an Upgrade, Expect, HTTP/2, a malformed or oversized head,
// anything net/http would refuse), the connection is handed to Fallback with the bytes read
// so far, and net/http serves it from that request on, errors included. The fast path is thus
// never the one that judges a doubtful request.
package h1serve

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sekisho/sekisho/internal/tunnel"
	"golang.org/x/net/http/httpguts"
)

// Server serves a listener. Its fields are set before Serve.
type Server struct {
	// Handler answers the requests served here; Fallback.Handler should be the same.
	Handler http.Handler
	// Fallback serves the connections handed over; its timeouts and limits should match.
	Fallback *http.Server

	MaxHeaderBytes    int           // request line and header; default 1 MiB as net/http
	ReadHeaderTimeout time.Duration // first byte of the request to the end of its head; 0: none
	IdleTimeout       time.Duration // between two requests; 0: ReadHeaderTimeout
	WriteTimeout      time.Duration // writing one response; 0: none
	Logger            *slog.Logger  // handler panics; nil: discard
	// AbsoluteForm takes targets in absolute form too ("GET http://host/ HTTP/1.1", a
	// forward proxy's requests) when the head has a Host field, as HTTP/1.1 requires.
	AbsoluteForm bool
	// BaseContext is the parent of every request's context; nil: context.Background().
	BaseContext context.Context

	mu        sync.Mutex
	conns     map[*conn]struct{}
	lns       []net.Listener
	handoff   *chanListener
	shutdown  atomic.Bool // Shutdown was called; set under mu, read anywhere
	dateStamp atomic.Pointer[dateStamp]
	readBufs  tunnel.BufferPool // connections' read buffers, initialBuf bytes
	writeBufs tunnel.BufferPool // connections' write buffers, writeBuf bytes
}

// For returns a Server in front of fallback with its handler, limits and timeouts, so that
// a connection is held to the same ones on either path; log gets handler panics.
func For(fallback *http.Server, log *slog.Logger) *Server {
	return &Server{
		Handler:           fallback.Handler,
		Fallback:          fallback,
		MaxHeaderBytes:    fallback.MaxHeaderBytes,
		ReadHeaderTimeout: fallback.ReadHeaderTimeout,
		IdleTimeout:       fallback.IdleTimeout,
		WriteTimeout:      fallback.WriteTimeout,
		Logger:            log,
	}
}

// dateStamp is a Date field value and the second it stands for.
type dateStamp struct {
	unix  int64
	value string
}

// date is the Date field for now, formatted once a second rather than once a response.
func (s *Server) date() string {
	now := time.Now()
	if d := s.dateStamp.Load(); d != nil && d.unix == now.Unix() {
		return d.value
	}
	d := &dateStamp{unix: now.Unix(), value: now.UTC().Format(http.TimeFormat)}
	s.dateStamp.Store(d)
	return d.value
}

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = http.ErrServerClosed

const defaultMaxHeaderBytes = 1 << 20

// Serve accepts connections on l until Shutdown.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.shutdown.Load() {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	if s.conns == nil {
		s.conns = map[*conn]struct{}{}
		s.readBufs.Size, s.writeBufs.Size = initialBuf, writeBuf
	}
	if s.handoff == nil {
		s.handoff = newChanListener(l.Addr())
		go s.Fallback.Serve(s.handoff)
	}
	s.lns = append(s.lns, l)
	s.mu.Unlock()

	var delay time.Duration // after a temporary Accept error
	for {
		nc, err := l.Accept()
		if err != nil {
			if s.closing() {
				return ErrServerClosed
			}
			// As net/http: out of file descriptors (EMFILE, ENFILE) or another temporary
			// error, wait and accept again, up to a second between tries.
			var te interface{ Temporary() bool }
			if errors.As(err, &te) && te.Temporary() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				if s.Logger != nil {
					s.Logger.Warn("http: Accept error", "err", err, "retry", delay)
				}
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		c := s.newConn(nc)
		if c == nil {
			nc.Close()
			return ErrServerClosed
		}
		go c.serve()
	}
}

func (s *Server) closing() bool { return s.shutdown.Load() }

// Shutdown stops accepting, closes idle connections, lets requests in progress finish until
// ctx ends (then closes their connections), and shuts Fallback down the same way.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.shutdown.Store(true)
	for _, l := range s.lns {
		l.Close()
	}
	s.mu.Unlock()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var err error
	for s.closeIdle() > 0 {
		select {
		case <-ctx.Done():
			s.closeAll()
			err = ctx.Err()
		case <-tick.C:
			continue
		}
		break
	}
	if s.Fallback != nil {
		if ferr := s.Fallback.Shutdown(ctx); ferr != nil && err == nil {
			err = ferr
		}
	}
	return err
}

// closeIdle closes the connections waiting for a request and counts the others.
func (s *Server) closeIdle() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	busy := 0
	for c := range s.conns {
		if c.closable() {
			c.nc.Close()
			delete(s.conns, c)
		} else {
			busy++
		}
	}
	return busy
}

func (s *Server) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.nc.Close()
		delete(s.conns, c)
	}
}

func (s *Server) newConn(nc net.Conn) *conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutdown.Load() {
		return nil
	}
	c := &conn{srv: s, nc: nc, idle: true, fresh: true, accepted: time.Now(), remote: nc.RemoteAddr().String()}
	s.conns[c] = struct{}{}
	return c
}

// setIdle marks c as waiting for a request (Shutdown closes it then) or busy; it reports
// false when the server is shutting down and an idle c must close.
func (s *Server) setIdle(c *conn, idle bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	c.idle = idle
	if !idle {
		c.fresh = false
	}
	return !(s.shutdown.Load() && c.closable())
}

// newConnGrace is how long Shutdown leaves a new connection for its first request, as
// net/http, which closes a connection in StateNew only once it is 5 s old: the client
// may have sent it already.
const newConnGrace = 5 * time.Second

// closable reports whether Shutdown closes c now; s.mu must be held.
func (c *conn) closable() bool {
	return c.idle && !(c.fresh && time.Since(c.accepted) < newConnGrace)
}

func (s *Server) forget(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

func (s *Server) maxHeader() int {
	if s.MaxHeaderBytes > 0 {
		return s.MaxHeaderBytes
	}
	return defaultMaxHeaderBytes
}

func (s *Server) idleTimeout() time.Duration {
	if s.IdleTimeout > 0 {
		return s.IdleTimeout
	}
	return s.ReadHeaderTimeout
}

// takes reports whether r, as read by http.ReadRequest, is served here: GET or HEAD over
// HTTP/1.1 or HTTP/1.0 without a body, Upgrade or Expect, the target in origin form
// ("/path"), or in absolute form when absolute is true (a forward proxy's listener, and the
// head has a Host field), a valid Host, and only valid header fields (what net/http's
// server checks before it calls a handler). On a web listener, absolute form is a proxy
// probe: net/http and the handler's guard answer it.
func takes(r *http.Request, absolute bool) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead || r.ProtoMajor != 1 || r.ProtoMinor > 1 {
		return false
	}
	if r.Body != http.NoBody || len(r.TransferEncoding) > 0 || r.ContentLength != 0 {
		return false
	}
	h := r.Header
	for _, k := range [...]string{"Content-Length", "Transfer-Encoding", "Upgrade", "Expect", "Http2-Settings"} {
		if _, ok := h[k]; ok {
			return false
		}
	}
	// http.ReadRequest refuses a second Host and moves the one Host into r.Host. With the
	// target in origin form, r.Host is that header, which HTTP/1.1 requires.
	target := strings.HasPrefix(r.RequestURI, "/") || absolute && r.URL.IsAbs()
	if !target || r.Host == "" || !httpguts.ValidHostHeader(r.Host) {
		return false
	}
	for k, vv := range h {
		if !httpguts.ValidHeaderFieldName(k) {
			return false
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return false
			}
		}
	}
	return true
}

// chanListener is the listener Fallback serves: Accept returns the connections handed over.
type chanListener struct {
	addr net.Addr
	ch   chan net.Conn
	once sync.Once
	done chan struct{}
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }

// give hands c over; false when Fallback no longer accepts.
func (l *chanListener) give(c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.done:
		return false
	}
}

// replayConn is a connection handed over: its reads return the bytes already read first.
type replayConn struct {
	net.Conn
	pending []byte
}

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// CloseWrite half-closes the connection. net/http does it before closing a connection with
// request bytes left unread (after a 431, or a body the handler did not read) so that the
// client reads the answer before the reset that closing then causes; embedding net.Conn
// does not pass the method on.
func (c *replayConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// Unwrap returns the connection under c when c is one h1serve handed to net/http and the
// bytes it had read ahead have all been read again: a handler that hijacked it (a CONNECT
// tunnel) then works on the socket itself, splice(2) included. Any other c comes back as
// it is.
func Unwrap(c net.Conn) net.Conn {
	if rc, ok := c.(*replayConn); ok && len(rc.pending) == 0 {
		return rc.Conn
	}
	return c
}

// ReadFrom keeps sendfile(2) for net/http's responses on a handed-over connection.
func (c *replayConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(writerOnly{c.Conn}, r)
}

// hasHostField reports a Host field in a request head (the lines after the request line).
func hasHostField(head []byte) bool {
	for {
		i := bytes.IndexByte(head, '\n')
		if i < 0 || i+6 > len(head) {
			return false
		}
		head = head[i+1:]
		if len(head) >= 5 && bytes.EqualFold(head[:5], []byte("host:")) {
			return true
		}
	}
}

// headReader lets http.ReadRequest parse a head already in memory without allocating.
type headReader struct {
	br *bufio.Reader
	rd bytes.Reader
}

func (h *headReader) parse(head []byte) (*http.Request, error) {
	h.rd.Reset(head)
	if h.br == nil {
		h.br = bufio.NewReaderSize(&h.rd, 4096)
	} else {
		h.br.Reset(&h.rd)
	}
	return http.ReadRequest(h.br)
}
