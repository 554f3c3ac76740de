// Package fwdproxy is sekisho's HTTP forward proxy for internal clients (SPEC §6): plain
// requests in absolute form (RFC 9112 §3.2.2) and CONNECT tunnels (RFC 9110 §9.3.6), with
// Basic Proxy-Authorization (RFC 9110 §11.7.2, RFC 7617) against sekisho users.
//
// It is never an open proxy: only clients in allow_networks are served, tunnels reach only
// connect_ports and never the mail ports, and every destination is checked by package
// netacl before a connection is made, by name and again by address after resolution. A
// client that probes for an open proxy or a mail relay is refused, counted, and handed to
// the Blacklister, which puts it in BLACK for every module.
//
// Plain requests are forwarded over one transport (keep-alive, HTTP/2 to TLS origins that
// offer it); hop-by-hop headers are removed and Via is added both ways (RFC 9110 §7.6).
// GET, HEAD and OPTIONS without a body to http origins go the direct way (h1transport's
// client, forwardDirect); everything else through net/http/httputil.ReverseProxy. The
// listeners are served by h1serve, which answers plain GETs and HEADs on the connection's
// goroutine and hands CONNECT and everything else to net/http. Every request gives one access log line ("access",
// proxy "http").
package fwdproxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sekisho/sekisho/internal/h1serve"
	"github.com/sekisho/sekisho/internal/h1transport"
	"github.com/sekisho/sekisho/internal/metrics"
	"github.com/sekisho/sekisho/internal/netacl"
	"github.com/sekisho/sekisho/internal/tunnel"
)

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = http.ErrServerClosed

// Options are the [http_proxy] settings of SPEC §8 and the limits around them. Zero
// durations and sizes take the documented defaults.
type Options struct {
	// Hostname names this proxy in Via headers, and a request that already carries it in
	// Via is a loop. Default "sekisho".
	Hostname string
	// Rules are allow_networks, connect_ports, allow_mail_ports, deny_hosts and
	// deny_networks.
	Rules netacl.Rules
	// Auth requires a sekisho user's password in Proxy-Authorization.
	Auth bool
	// Realm is the Basic realm of 407 answers. Default "sekisho".
	Realm string
	// BlacklistProbes hands probing clients to the Blacklister (antispam.blacklist_probes).
	BlacklistProbes bool

	DialTimeout           time.Duration // connecting to an origin; default 10s
	TunnelIdleTimeout     time.Duration // a CONNECT tunnel with no bytes either way is closed; default 5m
	ClientIdleTimeout     time.Duration // keep-alive between two client requests; default 2m
	ReadHeaderTimeout     time.Duration // reading a client's request header; default 30s
	ResponseHeaderTimeout time.Duration // waiting for an origin's response header; default 2m
	MaxHeaderBytes        int           // client request header size; default 64 KiB
	MaxIdleConnsPerHost   int           // idle keep-alive connections kept per origin; default 256
	// OriginTLS verifies origins of absolute-form https:// requests; nil uses the system
	// roots.
	OriginTLS *tls.Config
}

func (o *Options) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if o.Hostname == "" {
		o.Hostname = "sekisho"
	}
	if o.Realm == "" {
		o.Realm = "sekisho"
	}
	def(&o.DialTimeout, 10*time.Second)
	def(&o.TunnelIdleTimeout, 5*time.Minute)
	def(&o.ClientIdleTimeout, 2*time.Minute)
	def(&o.ReadHeaderTimeout, 30*time.Second)
	def(&o.ResponseHeaderTimeout, 2*time.Minute)
	if o.MaxHeaderBytes <= 0 {
		o.MaxHeaderBytes = 64 << 10
	}
	if o.MaxIdleConnsPerHost <= 0 {
		o.MaxIdleConnsPerHost = 256
	}
}

// Deps are the parts the proxy works with.
type Deps struct {
	netacl.ProxyDeps // Users is required when Options.Auth
	// Metrics counts requests, bytes and refusals (proxy "http"); nil counts nothing.
	Metrics *metrics.Metrics
}

// Stats are the proxy's counters since New.
type Stats struct {
	Requests    int64                   // requests answered, refused ones included
	Refused     map[netacl.Reason]int64 // refusals by reason
	Blacklisted int64                   // clients handed to the Blacklister successfully
	BytesUp     int64                   // client to origin: request bodies and tunnel bytes
	BytesDown   int64                   // origin to client: response bodies and tunnel bytes
	Tunnels     int64                   // CONNECT tunnels open now
	Panics      int64                   // handler panics recovered
}

// settings are the options in force with their compiled ACL; Reload replaces them whole.
type settings struct {
	Options
	acl *netacl.ACL
}

// Proxy is an HTTP forward proxy. Build it with New, serve listeners with Serve, stop it
// with Shutdown.
type Proxy struct {
	deps   Deps
	log    *slog.Logger
	now    func() time.Time
	cur    atomic.Pointer[settings]
	auth   *netacl.Authenticator
	dialer netacl.Dialer
	tr     *h1transport.Transport
	rp     *httputil.ReverseProxy
	srv    *http.Server      // serves what fast hands over: CONNECT, bodies, upgrades
	fast   *h1serve.Server   // serves the listeners; plain GETs and HEADs itself
	rbufs  tunnel.BufferPool // response body copy buffers, of ReverseProxy and the direct way

	// base is the parent of every request context; cancelled when Shutdown gives up
	// waiting, which ends forwarded requests and upgraded connections.
	base   context.Context
	cancel context.CancelFunc

	mu      sync.Mutex // guards opts, self, closing, forced, tunnels
	opts    Options
	self    netacl.Self
	closing bool // Shutdown called
	forced  bool // Shutdown gave up waiting: a tunnel that starts now is closed at once
	tunnels map[*tunnel.Tunnel]struct{}
	bufs    tunnel.BufferPool // tunnel buffers
	metrics *metrics.Proxy    // nil: not counted

	refused     netacl.Tally
	requests    atomic.Int64
	blacklisted atomic.Int64
	bytesUp     atomic.Int64
	bytesDown   atomic.Int64
	panics      atomic.Int64
	active      atomic.Int64 // requests in ServeHTTP, hijacked ones included
}

// New returns a Proxy for opts. It reads this host's interface addresses, which are never
// a destination (see netacl.Self).
func New(opts Options, deps Deps) (*Proxy, error) {
	pd, err := deps.Prepare(opts.Auth)
	if err != nil {
		return nil, fmt.Errorf("fwdproxy: %w", err)
	}
	deps.ProxyDeps = pd.ProxyDeps
	opts.setDefaults()
	p := &Proxy{
		deps:    deps,
		log:     deps.Logger,
		now:     deps.Now,
		dialer:  pd.Dialer,
		self:    pd.Self,
		auth:    pd.Auth,
		tunnels: map[*tunnel.Tunnel]struct{}{},
		bufs:    tunnel.BufferPool{Size: 64 << 10},
		rbufs:   tunnel.BufferPool{Size: 32 << 10},
		metrics: deps.Metrics.Proxy(metrics.ProxyHTTP),
	}
	if err := p.apply(opts); err != nil {
		return nil, err
	}
	p.base, p.cancel = context.WithCancel(context.Background())
	p.tr = &h1transport.Transport{
		Dial:                   p.dialOrigin,
		MaxIdlePerHost:         opts.MaxIdleConnsPerHost,
		ResponseHeaderTimeout:  opts.ResponseHeaderTimeout,
		MaxResponseHeaderBytes: 256 << 10,
		Fallback: &http.Transport{
			Proxy:                  nil, // never chain to a proxy from the environment
			DialContext:            p.dialOrigin,
			ForceAttemptHTTP2:      true, // a custom DialContext turns HTTP/2 off otherwise
			DisableCompression:     true, // pass Content-Encoding through as the client asked
			TLSClientConfig:        opts.OriginTLS,
			TLSHandshakeTimeout:    opts.DialTimeout,
			MaxIdleConns:           4 * opts.MaxIdleConnsPerHost,
			MaxIdleConnsPerHost:    opts.MaxIdleConnsPerHost,
			IdleConnTimeout:        90 * time.Second,
			ResponseHeaderTimeout:  opts.ResponseHeaderTimeout,
			ExpectContinueTimeout:  time.Second,
			MaxResponseHeaderBytes: 256 << 10,
		},
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite:        p.rewrite,
		Transport:      p.tr,
		ModifyResponse: p.modifyResponse,
		ErrorHandler:   p.originError,
		ErrorLog:       slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
		BufferPool:     &p.rbufs,
	}
	p.srv = &http.Server{
		Handler:           p,
		ReadHeaderTimeout: opts.ReadHeaderTimeout,
		IdleTimeout:       opts.ClientIdleTimeout,
		MaxHeaderBytes:    opts.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return p.base },
	}
	p.fast = h1serve.For(p.srv, p.log)
	p.fast.AbsoluteForm = true
	p.fast.BaseContext = p.base
	return p, nil
}

// apply compiles opts with what the proxy knows about itself and puts them in force.
// Callers other than New hold p.mu.
func (p *Proxy) apply(opts Options) error {
	acl, err := netacl.New(opts.Rules, p.self)
	if err != nil {
		return fmt.Errorf("fwdproxy: %w", err)
	}
	p.opts = opts
	p.cur.Store(&settings{Options: opts, acl: acl})
	return nil
}

func (p *Proxy) settings() *settings { return p.cur.Load() }

// Reload puts new rules, auth and probe settings in force for the requests that start
// from now on; the listeners, timeouts, sizes and OriginTLS stay as New set them.
func (p *Proxy) Reload(opts Options) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	opts.setDefaults()
	if opts.Auth && p.auth == nil {
		return errors.New("fwdproxy: auth needs Deps.Users")
	}
	if err := p.apply(opts); err != nil {
		return err
	}
	p.tr.CloseIdleConnections() // connections made under the old rules
	return nil
}

// Serve accepts proxy clients on l until Shutdown, then returns ErrServerClosed. It may be
// called for several listeners at once; each listener's address becomes a loop destination.
func (p *Proxy) Serve(l net.Listener) error {
	p.mu.Lock()
	if p.closing {
		p.mu.Unlock()
		return ErrServerClosed
	}
	if ap, ok := netacl.AddrPort(l.Addr()); ok {
		p.self.Listen = append(p.self.Listen, ap)
		if err := p.apply(p.opts); err != nil {
			p.mu.Unlock()
			return err
		}
	}
	p.mu.Unlock()
	p.log.Info("http proxy listening", "address", l.Addr().String())
	return p.fast.Serve(l)
}

// Shutdown stops accepting clients and lets requests and tunnels under way finish until ctx
// ends; then it cancels forwarded requests, closes every tunnel and client connection, and
// returns ctx's error.
func (p *Proxy) Shutdown(ctx context.Context) error {
	p.mu.Lock()
	p.closing = true
	p.mu.Unlock()
	err := p.fast.Shutdown(ctx) // and p.srv
	if err == nil {
		err = p.waitRequests(ctx)
	}
	if err != nil {
		p.mu.Lock()
		p.forced = true
		for t := range p.tunnels {
			t.Close()
		}
		p.mu.Unlock()
		p.cancel()
		p.srv.Close()
		p.waitRequests(context.Background()) // cancelled and closed above: they end now
	}
	p.cancel()
	p.tr.CloseIdleConnections()
	return err
}

// waitRequests waits until no request is in ServeHTTP or ctx ends. http.Server.Shutdown
// does not wait for hijacked connections (CONNECT tunnels, upgrades), so requests are
// counted here too, and polled as http.Server.Shutdown polls its connections.
func (p *Proxy) waitRequests(ctx context.Context) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if p.active.Load() == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// Stats returns the proxy's counters.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	open := int64(len(p.tunnels))
	p.mu.Unlock()
	return Stats{
		Requests:    p.requests.Load(),
		Refused:     p.refused.Snapshot(),
		Blacklisted: p.blacklisted.Load(),
		BytesUp:     p.bytesUp.Load(),
		BytesDown:   p.bytesDown.Load(),
		Tunnels:     open,
		Panics:      p.panics.Load(),
	}
}

// dialOrigin is the Transport's DialContext: every origin connection goes through the ACL,
// after resolution.
func (p *Proxy) dialOrigin(ctx context.Context, _, addr string) (net.Conn, error) {
	st := p.settings()
	host, port, err := netacl.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, st.DialTimeout)
	defer cancel()
	return p.dialer.DialACL(ctx, st.acl, host, port)
}
