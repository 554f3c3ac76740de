// Package smtpproxy is the SMTP data path: go-smtp sessions that gather the facts of each
// transaction, ask package policy for a verdict, and forward to the upstream servers or hold
// the message in the store (SPEC §4).
package smtpproxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/sekisho/sekisho/internal/lists"
	"github.com/sekisho/sekisho/internal/metrics"
	"github.com/sekisho/sekisho/internal/senderauth"
	"github.com/sekisho/sekisho/internal/store"
	"github.com/sekisho/sekisho/internal/upstream"
)

// Options are the SMTP settings of SPEC §8 that the data path needs.
type Options struct {
	Hostname         string
	LocalDomains     []string
	RelayNetworks    []netip.Prefix
	MaxMessageBytes  int64
	MaxRecipients    int
	DecoyAction      string        // reject|discard
	BlackAction      string        // reject|tempfail
	BlackTTL         time.Duration // how long a decoy hit blacklists the client
	NullSender       string        // verify|pass|hold
	ConfirmScope     string        // sender|recipient
	HoldFor          time.Duration // how long held mail is kept
	MaxHeldPerSender int
	ReadTimeout      time.Duration // idle time allowed between commands; default 5m
	WriteTimeout     time.Duration // default 1m
}

// Listener describes one SMTP listener (SPEC §8 [[smtp.listener]]).
type Listener struct {
	Role       string      // "mx" or "submission"
	TLS        string      // "none", "starttls", "implicit"
	RequireTLS bool        // MAIL before STARTTLS is refused
	TLSConfig  *tls.Config // required unless TLS is "none"
}

// Deps are the parts the proxy works with.
type Deps struct {
	Store    store.Store
	Lists    *lists.Lists
	Upstream *upstream.Pool
	Logger   *slog.Logger
	Now      func() time.Time // nil: time.Now

	// Auth checks senders (SPF, DKIM) when sender_auth = "gate"; nil: "off".
	Auth *senderauth.Checker
	// Challenges mails unknown senders a confirmation URL; nil: challenge = false.
	Challenges *Challenges
	// Metrics counts connections, transactions and recipients by verdict, decoy and
	// harvest-trap hits and suppressed challenges; nil counts nothing.
	Metrics *metrics.Metrics
}

// settings are the options in force, with what is derived from them; Reload replaces them
// whole, and each session keeps the ones it started with.
type settings struct {
	Options
	local map[string]bool // local_domains
	up    *upstream.Pool
}

func newSettings(opts Options, up *upstream.Pool) *settings {
	if opts.ReadTimeout == 0 {
		opts.ReadTimeout = 5 * time.Minute
	}
	if opts.WriteTimeout == 0 {
		opts.WriteTimeout = time.Minute
	}
	local := map[string]bool{}
	for _, d := range opts.LocalDomains {
		local[strings.ToLower(d)] = true
	}
	return &settings{Options: opts, local: local, up: up}
}

// trusted reports whether ip is in relay_networks.
func (st *settings) trusted(ip netip.Addr) bool {
	for _, n := range st.RelayNetworks {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// Proxy serves SMTP listeners. Build it with New, run listeners with Serve, stop with
// Shutdown.
type Proxy struct {
	cur      atomic.Pointer[settings]
	deps     Deps
	log      *slog.Logger
	now      func() time.Time
	draining atomic.Bool
	nextID   atomic.Uint64
	idPrefix string

	mu      sync.Mutex
	servers []*smtp.Server
	refused sync.WaitGroup // goroutines refusing blacklisted clients
}

// New returns a Proxy.
func New(opts Options, deps Deps) *Proxy {
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	p := &Proxy{
		deps: deps, log: deps.Logger, now: deps.Now,
		idPrefix: fmt.Sprintf("%x", deps.Now().UnixNano()&0xffffffffff),
	}
	p.cur.Store(newSettings(opts, deps.Upstream))
	return p
}

// Reload puts new options and upstream servers in force for the sessions that start from now
// on; sessions under way finish with what they started with. The listener-level limits
// (max_message_bytes, max_recipients, timeouts, hostname in the greeting) apply to listeners
// started after it.
func (p *Proxy) Reload(opts Options, up *upstream.Pool) {
	p.cur.Store(newSettings(opts, up))
}

func (p *Proxy) settings() *settings { return p.cur.Load() }

// newID returns a transaction ID, unique within this process and readable in logs.
func (p *Proxy) newID() string {
	return fmt.Sprintf("%s%06x", p.idPrefix, p.nextID.Add(1))
}

// Serve accepts SMTP connections on l until Shutdown. It returns smtp.ErrServerClosed after
// Shutdown.
func (p *Proxy) Serve(l net.Listener, lc Listener) error {
	st := p.settings()
	srv := smtp.NewServer(&backend{p: p, lc: lc})
	srv.Domain = st.Hostname
	srv.MaxMessageBytes = st.MaxMessageBytes
	srv.MaxRecipients = st.MaxRecipients
	srv.ReadTimeout = st.ReadTimeout
	srv.WriteTimeout = st.WriteTimeout
	srv.EnableSMTPUTF8 = true
	srv.ErrorLog = slogPrintf{p.log}
	// TLS is done by the wiretap under go-smtp (see package wiretap), never by go-smtp,
	// which would then think every connection plaintext: AUTH is allowed by the session
	// only after TLS.
	srv.AllowInsecureAuth = true
	p.mu.Lock()
	if p.draining.Load() {
		p.mu.Unlock()
		return smtp.ErrServerClosed
	}
	p.servers = append(p.servers, srv)
	p.mu.Unlock()

	gate := &gateListener{Listener: l, p: p, conns: p.deps.Metrics.SMTPConns(lc.Role)}
	l = tapListener{Listener: gate, lc: lc, maxMessage: srv.MaxMessageBytes}
	return srv.Serve(l)
}

// Shutdown stops accepting connections and answers new transactions 421; sessions in the
// middle of a transaction may finish until ctx ends, then every connection is closed.
func (p *Proxy) Shutdown(ctx context.Context) error {
	p.mu.Lock()
	p.draining.Store(true)
	servers := p.servers
	p.mu.Unlock()
	var wg sync.WaitGroup
	errs := make([]error, len(servers))
	for i, srv := range servers {
		wg.Go(func() {
			if err := srv.Shutdown(ctx); err != nil && !errors.Is(err, smtp.ErrServerClosed) {
				srv.Close()
				errs[i] = err
			}
		})
	}
	wg.Wait()
	p.refused.Wait()
	if err := errors.Join(errs...); err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// clientIP returns the remote IP of a connection, unmapped.
func clientIP(c net.Conn) netip.Addr {
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

// slogPrintf adapts go-smtp's error log to slog.
type slogPrintf struct{ log *slog.Logger }

func (s slogPrintf) Printf(format string, v ...any) {
	s.log.Debug("smtp server", "msg", fmt.Sprintf(format, v...))
}
func (s slogPrintf) Println(v ...any) { s.log.Debug("smtp server", "msg", fmt.Sprint(v...)) }
