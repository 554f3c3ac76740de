// Package revproxy is sekisho's reverse proxy: one Route per [[web.route]] with upstreams
// (SPEC §5). A Route forwards requests with net/http/httputil.ReverseProxy to one of several
// backends, picked round_robin or least_conn among those that are up. GET, HEAD and OPTIONS
// without a body go over h1transport (no goroutine handoffs per request) and are forwarded
// by serveDirect, which does with the headers what ReverseProxy does without its
// per-request clone and trace; the rest go over net/http's Transport.
//
// Backends go down and come back in two ways. Active checks (Start) request health_path on
// every backend each health_interval: a backend that fails one is taken out, one that passes
// is put back. Passive failover: a request that is safe to repeat (GET, HEAD or OPTIONS
// without a body, RFC 9110 §9.2.2) whose backend cannot be reached is sent to the next
// backend that is up, and the unreachable one is taken out for a while.
//
// The backend sees X-Forwarded-For (the client's address only: the client's own
// X-Forwarded-* headers are dropped), X-Forwarded-Proto and X-Forwarded-Host, and the
// client's Host; hop-by-hop headers are removed both ways and WebSocket upgrades pass
// through (httputil.ReverseProxy). Limits: the request body (MaxBodyBytes, 413), the backend's
// response header (size and ResponseHeaderTimeout); the request header is limited by the web
// server. A backend that fails gives the client a small 502 or 504 page that names no backend
// and carries no error text.
package revproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sekisho/sekisho/internal/h1transport"
	"github.com/sekisho/sekisho/internal/tunnel"
)

// Defaults of the zero Options.
const (
	DefaultMaxBodyBytes          = 32 << 20 // request body
	DefaultDialTimeout           = 10 * time.Second
	DefaultResponseHeaderTimeout = 60 * time.Second
	DefaultMaxResponseHeader     = 64 << 10
	DefaultHealthTimeout         = 5 * time.Second
	DefaultFailTimeout           = 10 * time.Second
	DefaultMaxIdleConnsPerHost   = 128
)

// copyBufferSize is ReverseProxy's copy buffer: 128 KiB, so that a 64 KiB response moves in one
// read and one write (with 32 KiB buffers, 64 KiB responses went 4–12% slower under wrk).
const copyBufferSize = 128 << 10

// Balance policies.
const (
	RoundRobin = "round_robin"
	LeastConn  = "least_conn"
)

// Options configure a Route. The zero value of every limit is its documented default.
type Options struct {
	Upstreams      []string      // backends, "host:port"; at least one
	Balance        string        // RoundRobin (default) or LeastConn
	HealthPath     string        // requested on every backend by the active checks; empty: none
	HealthInterval time.Duration // between two rounds of checks; default 5s
	HealthTimeout  time.Duration // one check; default 5s
	HealthHost     string        // Host header of the checks; empty: the backend's address

	// FailTimeout is how long a backend that could not be reached by a request stays out
	// when no active checks run; with active checks it stays out until a check passes.
	FailTimeout time.Duration // default 10s

	MaxBodyBytes          int64         // request body; default 32 MiB, negative: no limit
	DialTimeout           time.Duration // connecting to a backend; default 10s
	ResponseHeaderTimeout time.Duration // waiting for a backend's response header; default 60s
	MaxResponseHeader     int64         // backend response header size; default 64 KiB
	MaxIdleConnsPerHost   int           // kept-alive connections per backend; default 128
}

// Deps are the parts a Route works with.
type Deps struct {
	Logger *slog.Logger // nil: discard
}

// Route is a reverse proxy to a set of backends. It is an http.Handler; Start runs the
// active health checks until Stop.
type Route struct {
	opts      Options
	log       *slog.Logger
	ups       []*upstream
	policy    selector
	proxy     *httputil.ReverseProxy
	transport *h1transport.Transport
	failover  *failover // the proxy's RoundTripper: picks the backend of each attempt
	buffers   *tunnel.BufferPool
	checker   *http.Client

	requests atomic.Int64
	retries  atomic.Int64
	failures atomic.Int64 // 502/504 answers

	mu     sync.Mutex
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Stats are a Route's counters since New.
type Stats struct {
	Requests  int64 // requests received
	Retries   int64 // requests sent again to another backend (passive failover)
	Failures  int64 // 502 and 504 answers
	Upstreams []UpstreamStatus
}

// UpstreamStatus is the state of one backend.
type UpstreamStatus struct {
	Addr     string
	Up       bool  // picked for new requests
	InFlight int64 // requests under way
}

// New checks the options and builds the route; nothing runs until Start.
func New(opts Options, deps Deps) (*Route, error) {
	if len(opts.Upstreams) == 0 {
		return nil, errors.New("revproxy: no upstreams")
	}
	var pol selector
	switch opts.Balance {
	case RoundRobin, "":
		pol = &roundRobin{}
	case LeastConn:
		pol = &leastConn{}
	default:
		return nil, fmt.Errorf("revproxy: unknown balance %q", opts.Balance)
	}
	if opts.HealthPath != "" && !strings.HasPrefix(opts.HealthPath, "/") {
		return nil, fmt.Errorf("revproxy: health path %q does not start with /", opts.HealthPath)
	}
	setDefault(&opts.HealthInterval, 5*time.Second)
	setDefault(&opts.HealthTimeout, DefaultHealthTimeout)
	setDefault(&opts.FailTimeout, DefaultFailTimeout)
	setDefault(&opts.MaxBodyBytes, DefaultMaxBodyBytes)
	setDefault(&opts.DialTimeout, DefaultDialTimeout)
	setDefault(&opts.ResponseHeaderTimeout, DefaultResponseHeaderTimeout)
	setDefault(&opts.MaxResponseHeader, DefaultMaxResponseHeader)
	setDefault(&opts.MaxIdleConnsPerHost, DefaultMaxIdleConnsPerHost)
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	rt := &Route{opts: opts, log: deps.Logger, policy: pol}
	for _, a := range opts.Upstreams {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return nil, fmt.Errorf("revproxy: upstream %q: %w", a, err)
		}
		u := &upstream{addr: a}
		u.up.Store(true)
		rt.ups = append(rt.ups, u)
	}
	dialer := &net.Dialer{Timeout: opts.DialTimeout, KeepAlive: 30 * time.Second}
	rt.transport = &h1transport.Transport{
		Dial:                   dialer.DialContext,
		MaxIdlePerHost:         opts.MaxIdleConnsPerHost,
		ResponseHeaderTimeout:  opts.ResponseHeaderTimeout,
		MaxResponseHeaderBytes: opts.MaxResponseHeader,
		Fallback: &http.Transport{
			DialContext:            dialer.DialContext,
			MaxIdleConnsPerHost:    opts.MaxIdleConnsPerHost,
			IdleConnTimeout:        90 * time.Second,
			ResponseHeaderTimeout:  opts.ResponseHeaderTimeout,
			ExpectContinueTimeout:  time.Second,
			MaxResponseHeaderBytes: opts.MaxResponseHeader,
			DisableCompression:     true, // pass Accept-Encoding and bodies through untouched
		},
	}
	rt.checker = &http.Client{
		Transport: &http.Transport{
			DialContext:       dialer.DialContext,
			DisableKeepAlives: true, // every check proves the backend still accepts
		},
		Timeout:       opts.HealthTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	rt.buffers = &tunnel.BufferPool{Size: copyBufferSize}
	rt.failover = &failover{route: rt}
	rt.proxy = &httputil.ReverseProxy{
		Rewrite:      rewrite,
		Transport:    rt.failover,
		BufferPool:   rt.buffers,
		ErrorHandler: rt.serveError,
		ErrorLog:     slog.NewLogLogger(deps.Logger.Handler(), slog.LevelDebug),
	}
	return rt, nil
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// rewrite prepares the request for the backend. The URL's host is a placeholder: failover
// picks the backend for each attempt.
func rewrite(pr *httputil.ProxyRequest) {
	pr.Out.URL.Scheme = "http"
	pr.Out.URL.Host = "upstream"
	pr.Out.Host = pr.In.Host // the site's name, as the client asked for it
	pr.SetXForwarded()       // the client's own X-Forwarded-* were removed before Rewrite
}

// ServeHTTP forwards the request to a backend.
func (rt *Route) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt.requests.Add(1)
	if h1transport.Direct(r) {
		rt.serveDirect(w, r)
		return
	}
	if max := rt.opts.MaxBodyBytes; max > 0 {
		if r.ContentLength > max {
			rt.log.Info("reverse proxy request refused", "client", r.RemoteAddr, "reason", "body-too-large", "length", r.ContentLength)
			writePage(w, http.StatusRequestEntityTooLarge)
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(w, r.Body, max)
		}
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = &clientBody{ReadCloser: r.Body}
	}
	if isUpgrade(r) {
		// The web server's read and write deadlines are meant for one request; an upgraded
		// connection (WebSocket) lives as long as both ends keep it.
		rc := http.NewResponseController(w)
		rc.SetReadDeadline(time.Time{})
		rc.SetWriteDeadline(time.Time{})
	}
	rt.proxy.ServeHTTP(w, r)
}

func isUpgrade(r *http.Request) bool {
	return r.Header.Get("Upgrade") != "" && headerHasToken(r.Header, "Connection", "upgrade")
}

func headerHasToken(h http.Header, key, token string) bool {
	for _, v := range h.Values(key) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// serveError answers a request whose backend failed: 504 on a timeout, 413 when the body
// went over the limit, nothing when the client left, 502 otherwise. The client sees a fixed
// page; the cause goes to the log.
func (rt *Route) serveError(w http.ResponseWriter, r *http.Request, err error) {
	var tooLarge *http.MaxBytesError
	var ne net.Error
	var bad *clientBodyError
	switch {
	case errors.As(err, &tooLarge):
		rt.log.Info("reverse proxy request refused", "client", r.RemoteAddr, "reason", "body-too-large", "limit", tooLarge.Limit)
		writePage(w, http.StatusRequestEntityTooLarge)
	case errors.As(err, &bad) && r.Context().Err() == nil:
		// The client's body was malformed (a bad chunk) or too slow: its fault, not the backend's.
		rt.log.Info("reverse proxy request refused", "client", r.RemoteAddr, "reason", "bad-body", "err", bad.err)
		writePage(w, http.StatusBadRequest)
	case r.Context().Err() != nil:
		// The client went away: nothing to answer, nothing wrong here.
		rt.log.Debug("reverse proxy client gone", "client", r.RemoteAddr, "err", err)
		w.WriteHeader(499)
	case errors.As(err, &ne) && ne.Timeout():
		rt.failures.Add(1)
		rt.log.Warn("reverse proxy backend timeout", "client", r.RemoteAddr, "method", r.Method, "path", r.URL.Path, "err", err)
		writePage(w, http.StatusGatewayTimeout)
	default:
		rt.failures.Add(1)
		rt.log.Warn("reverse proxy backend failed", "client", r.RemoteAddr, "method", r.Method, "path", r.URL.Path, "err", err)
		writePage(w, http.StatusBadGateway)
	}
}

// writePage writes a small HTML error page that names no backend and no cause.
func writePage(w http.ResponseWriter, code int) {
	text := http.StatusText(code)
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	fmt.Fprintf(w, "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>%d %s</title></head>\n"+
		"<body><h1>%d %s</h1><p>The site cannot answer right now. Please try again later.</p></body></html>\n",
		code, text, code, text)
}

// Stats returns the route's counters and the state of its backends.
func (rt *Route) Stats() Stats {
	s := Stats{Requests: rt.requests.Load(), Retries: rt.retries.Load(), Failures: rt.failures.Load()}
	now := time.Now()
	for _, u := range rt.ups {
		s.Upstreams = append(s.Upstreams, UpstreamStatus{Addr: u.addr, Up: u.available(now), InFlight: u.inflight.Load()})
	}
	return s
}

// clientBody marks the errors of reading the client's request body, so that they are not
// taken for a failing backend: the transport returns them as they are.
type clientBody struct {
	io.ReadCloser
}

func (b *clientBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		err = &clientBodyError{err}
	}
	return n, err
}

// clientBodyError is a failure to read the client's request body.
type clientBodyError struct{ err error }

func (e *clientBodyError) Error() string { return "read request body: " + e.err.Error() }
func (e *clientBodyError) Unwrap() error { return e.err }

var _ http.Handler = (*Route)(nil)
