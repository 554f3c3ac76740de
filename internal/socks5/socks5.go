// Package socks5 is sekisho's SOCKS5 proxy for internal clients (SPEC §6): the CONNECT
// command of RFC 1928 with IPv4, IPv6 and domain-name addresses, and username/password
// authentication (RFC 1929) against sekisho users. BIND and UDP ASSOCIATE are answered
// "command not supported" (0x07).
//
// It follows the same rules as the HTTP forward proxy, through package netacl: only clients
// in allow_networks, tunnels only to connect_ports and never to the mail ports, destinations
// checked by name and again by address after resolution. Every refusal is answered "not
// allowed by ruleset" (0x02) and counted; a probing client goes to the Blacklister, and a
// client in BLACK is refused.
package socks5

import (
	"context"
	"errors"
	"fmt"
	"github.com/sekisho/sekisho/internal/tunnel"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sekisho/sekisho/internal/metrics"
	"github.com/sekisho/sekisho/internal/netacl"
)

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("socks5: server closed")

// Options are the [socks] settings of SPEC §8 and the limits around them. Zero durations
// take the documented defaults.
type Options struct {
	// Rules are allow_networks, connect_ports and deny_networks ([socks] has no
	// allow_mail_ports or deny_hosts: the mail ports are always refused).
	Rules netacl.Rules
	// Auth requires a sekisho user's password (RFC 1929).
	Auth bool
	// BlacklistProbes hands probing clients to the Blacklister (antispam.blacklist_probes).
	BlacklistProbes bool

	HandshakeTimeout time.Duration // greeting, authentication and request; default 30s
	DialTimeout      time.Duration // connecting to the destination; default 10s
	IdleTimeout      time.Duration // a tunnel with no bytes either way is closed; default 5m
}

func (o *Options) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.HandshakeTimeout, 30*time.Second)
	def(&o.DialTimeout, 10*time.Second)
	def(&o.IdleTimeout, 5*time.Minute)
}

// Deps are the parts the proxy works with.
type Deps struct {
	netacl.ProxyDeps // Users is required when Options.Auth
	// Metrics counts sessions, bytes and refusals (proxy "socks"); nil counts nothing.
	Metrics *metrics.Metrics
}

// Stats are the proxy's counters since New.
type Stats struct {
	Sessions    int64                   // client connections, refused ones included
	Refused     map[netacl.Reason]int64 // refusals by reason
	Blacklisted int64                   // clients handed to the Blacklister successfully
	BytesUp     int64                   // client to destination
	BytesDown   int64                   // destination to client
	Open        int64                   // sessions open now
	Panics      int64                   // session panics recovered
}

type settings struct {
	Options
	acl *netacl.ACL
}

// Proxy is a SOCKS5 server. Build it with New, serve listeners with Serve, stop it with
// Shutdown.
type Proxy struct {
	deps   Deps
	log    *slog.Logger
	now    func() time.Time
	cur    atomic.Pointer[settings]
	auth   *netacl.Authenticator
	dialer netacl.Dialer
	bufs   tunnel.BufferPool
	done   chan struct{}  // closed by Shutdown
	m      *metrics.Proxy // nil: not counted

	mu        sync.Mutex // guards everything below
	opts      Options
	self      netacl.Self
	listeners map[net.Listener]struct{}
	sessions  map[*session]struct{}
	closing   bool
	forced    bool

	refused     netacl.Tally
	count       atomic.Int64
	blacklisted atomic.Int64
	bytesUp     atomic.Int64
	bytesDown   atomic.Int64
	panics      atomic.Int64
}

// New returns a Proxy for opts. It reads this host's interface addresses, which are never
// a destination (see netacl.Self).
func New(opts Options, deps Deps) (*Proxy, error) {
	pd, err := deps.Prepare(opts.Auth)
	if err != nil {
		return nil, fmt.Errorf("socks5: %w", err)
	}
	deps.ProxyDeps = pd.ProxyDeps
	p := &Proxy{
		deps:      deps,
		log:       deps.Logger,
		now:       deps.Now,
		dialer:    pd.Dialer,
		auth:      pd.Auth,
		bufs:      tunnel.BufferPool{Size: 64 << 10},
		done:      make(chan struct{}),
		m:         deps.Metrics.Proxy(metrics.ProxySocks),
		self:      pd.Self,
		listeners: map[net.Listener]struct{}{},
		sessions:  map[*session]struct{}{},
	}
	opts.setDefaults()
	if err := p.apply(opts); err != nil {
		return nil, err
	}
	return p, nil
}

// apply compiles opts with what the proxy knows about itself and puts them in force.
// Callers other than New hold p.mu.
func (p *Proxy) apply(opts Options) error {
	acl, err := netacl.New(opts.Rules, p.self)
	if err != nil {
		return fmt.Errorf("socks5: %w", err)
	}
	p.opts = opts
	p.cur.Store(&settings{Options: opts, acl: acl})
	return nil
}

func (p *Proxy) settings() *settings { return p.cur.Load() }

// Reload puts new options in force for the sessions that start from now on.
func (p *Proxy) Reload(opts Options) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if opts.Auth && p.auth == nil {
		return errors.New("socks5: auth needs Deps.Users")
	}
	opts.setDefaults()
	return p.apply(opts)
}

// Serve accepts SOCKS clients on l until Shutdown, then returns ErrServerClosed. It may be
// called for several listeners at once; each listener's address becomes a loop destination.
func (p *Proxy) Serve(l net.Listener) error {
	p.mu.Lock()
	if p.closing {
		p.mu.Unlock()
		return ErrServerClosed
	}
	p.listeners[l] = struct{}{}
	if ap, ok := netacl.AddrPort(l.Addr()); ok {
		p.self.Listen = append(p.self.Listen, ap)
		if err := p.apply(p.opts); err != nil {
			p.mu.Unlock()
			return err
		}
	}
	p.mu.Unlock()
	p.log.Info("socks listening", "address", l.Addr().String())

	var backoff time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			select {
			case <-p.done:
				return ErrServerClosed
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// Out of file descriptors and the like: wait and try again, as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			p.log.Warn("socks accept", "err", err, "retry_in", backoff)
			select {
			case <-p.done:
				return ErrServerClosed
			case <-time.After(backoff):
			}
			continue
		}
		backoff = 0
		s := p.newSession(c)
		if s == nil {
			continue
		}
		go s.run()
	}
}

// Shutdown stops accepting clients and lets sessions under way finish until ctx ends; then
// it closes every client and destination connection and returns ctx's error.
func (p *Proxy) Shutdown(ctx context.Context) error {
	p.mu.Lock()
	if !p.closing {
		p.closing = true
		close(p.done)
		for l := range p.listeners {
			l.Close()
		}
	}
	p.mu.Unlock()
	err := p.waitSessions(ctx)
	if err != nil {
		p.mu.Lock()
		p.forced = true
		for s := range p.sessions {
			s.close()
		}
		p.mu.Unlock()
		p.waitSessions(context.Background()) // closed above: they end now
	}
	return err
}

// waitSessions waits until no session is open or ctx ends.
func (p *Proxy) waitSessions(ctx context.Context) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		p.mu.Lock()
		n := len(p.sessions)
		p.mu.Unlock()
		if n == 0 {
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
	open := int64(len(p.sessions))
	p.mu.Unlock()
	return Stats{
		Sessions:    p.count.Load(),
		Refused:     p.refused.Snapshot(),
		Blacklisted: p.blacklisted.Load(),
		BytesUp:     p.bytesUp.Load(),
		BytesDown:   p.bytesDown.Load(),
		Open:        open,
		Panics:      p.panics.Load(),
	}
}
