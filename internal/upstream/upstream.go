// Package upstream hands accepted mail to the organisation's real mail
// servers.
//
// A Pool knows the configured servers, keeps a few idle connections per
// server for reuse, tracks each server's health, and delivers one message per
// Send: it picks servers by the balance policy and fails over to the next one
// for as long as nothing has been handed over. Once the final "." of a message
// has been sent the message may have been delivered, and it is never sent
// again, to that server or any other; see Send for the exact rules.
//
// The SMTP client is written here on net/textproto rather than taken from
// go-smtp, whose Client has no raw command API: it could neither send
// XFORWARD nor pipeline.
//
// Standards: RFC 5321 (SMTP), RFC 2920 (PIPELINING), RFC 1870 (SIZE),
// RFC 6152 (8BITMIME), RFC 6531 (SMTPUTF8), RFC 3207 (STARTTLS), RFC 2034 and
// RFC 3463 (enhanced status codes), RFC 3461 §4 (xtext), and Postfix's
// XFORWARD_README.
package upstream

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sekisho/sekisho/internal/metrics"
)

// Balance policies, the values of Options.Balance.
const (
	BalanceRoundRobin = "round_robin" // rotate over the servers, one step per message
	BalanceLeastConn  = "least_conn"  // the server with the fewest messages in flight
	BalanceOrdered    = "ordered"     // the first healthy server in configuration order
)

// TLS policies, the values of Options.TLS.
const (
	TLSNone          = "none"          // never STARTTLS
	TLSOpportunistic = "opportunistic" // STARTTLS when offered, any certificate
	TLSRequired      = "required"      // STARTTLS must succeed, certificate not checked
	TLSVerify        = "verify"        // STARTTLS must succeed with a verified certificate
)

// Defaults for the zero values of Options.
const (
	DefaultConnectTimeout = 10 * time.Second
	DefaultCommandTimeout = 5 * time.Minute
	DefaultDataTimeout    = 10 * time.Minute
	DefaultRetryAfter     = 30 * time.Second
	DefaultMaxIdle        = 16
	DefaultIdleTimeout    = 30 * time.Second
)

// ErrUnavailable is returned, wrapped with the reason each server failed,
// when no server accepted the message for delivery; nothing was delivered and
// the caller answers 451 4.4.1.
var ErrUnavailable = errors.New("upstream: no server available")

// ErrUnconfirmed is returned, wrapped with the cause, when the connection was
// lost or timed out after the whole message had been sent: the server may
// have delivered it. The message is not sent again; the caller answers with a
// temporary failure and leaves retrying to its client.
var ErrUnconfirmed = errors.New("upstream: message sent, no final reply")

// Options configure a Pool. The zero value of every field but Servers is a
// working default.
type Options struct {
	// Servers are the upstream mail servers as host:port: IPv4
	// ("192.0.2.10:25"), IPv6 ("[2001:db8::10]:25") or a host name.
	Servers []string
	// Balance is one of the Balance* policies; "" means round_robin.
	Balance string
	// TLS is one of the TLS* policies; "" means opportunistic.
	TLS string
	// RootCAs verify server certificates under TLSVerify; nil means the
	// system roots. The name checked is the host part of the server address.
	RootCAs *x509.CertPool
	// XForward passes the original client's name, address, protocol and
	// HELO to servers that offer XFORWARD.
	XForward bool
	// HeloName is the name sent with EHLO; "" means the host name.
	HeloName string
	// ConnectTimeout bounds a TCP connect, and the RSET that checks a reused
	// connection. Default 10s.
	ConnectTimeout time.Duration
	// CommandTimeout bounds each reply. Default 5m.
	CommandTimeout time.Duration
	// DataTimeout bounds sending the message and waiting for the reply to
	// its final ".". Default 10m.
	DataTimeout time.Duration
	// RetryAfter is how long a failed server is skipped. Default 30s.
	RetryAfter time.Duration
	// MaxIdle is the number of idle connections kept per server for reuse.
	// Default 16, so that the connections of a burst of 20 sessions mostly
	// stay for the next burst; negative means none (a new connection per
	// message). Idle ones are closed after IdleTimeout.
	MaxIdle int
	// IdleTimeout closes connections idle this long. Default 30s.
	IdleTimeout time.Duration
	// Logger receives protocol detail at Debug and servers going down at
	// Warn. Nil discards.
	Logger *slog.Logger
	// Metrics counts the messages handed to each server by result; nil
	// counts nothing. Health is for sekisho_upstream_up.
	Metrics *metrics.Metrics
}

// Client describes the SMTP client the message came from, for XFORWARD.
// Empty fields are sent as [UNAVAILABLE].
type Client struct {
	Addr  netip.Addr // the client's IP address
	Helo  string     // the name it gave in EHLO or HELO
	Proto string     // "SMTP" or "ESMTP"
	Name  string     // its verified reverse name, or "[UNAVAILABLE]"
}

// Envelope is the SMTP envelope of one message.
type Envelope struct {
	From     string   // reverse path without angle brackets; "" is the null sender
	To       []string // forward paths without angle brackets; at least one
	Client   Client   // for XFORWARD
	SMTPUTF8 bool     // the envelope or headers need SMTPUTF8 (RFC 6531)
	EightBit bool     // the body is 8-bit (BODY=8BITMIME, RFC 6152)
}

// Result reports what the upstream server said about a message.
type Result struct {
	// Server is the host:port of the server that took (or refused) the
	// message.
	Server string
	// Rcpt has one entry per Envelope.To once the recipients were given
	// (Send returned nil or the reply to DATA): nil when the recipient was
	// accepted, else the server's *smtp.SMTPError, to relay as is. It is
	// nil when MAIL was refused.
	Rcpt []error
}

// ServerHealth is one server's state, for status pages and metrics.
type ServerHealth struct {
	Addr      string // as configured
	Up        bool   // false while the server sits out its RetryAfter penalty
	Failures  int    // connection-level failures since New
	LastError string // the latest failure, kept after recovery; "" if none
	InFlight  int    // Sends using the server right now
	Idle      int    // idle connections kept for reuse
}

// Pool delivers messages to the upstream servers. It is safe for concurrent
// use.
type Pool struct {
	opts    Options
	log     *slog.Logger
	servers []*server

	rr     atomic.Uint64 // round robin position
	connID atomic.Uint64 // numbers connections in the logs
	closed atomic.Bool

	done   chan struct{} // closed by Close: stops the reaper
	reaper sync.WaitGroup
}

// New checks opts, fills in defaults and returns a Pool. It does not connect:
// servers are dialled on demand.
func New(opts Options) (*Pool, error) {
	var errs []error
	if len(opts.Servers) == 0 {
		errs = append(errs, errors.New("upstream: no servers"))
	}
	switch opts.Balance {
	case "":
		opts.Balance = BalanceRoundRobin
	case BalanceRoundRobin, BalanceLeastConn, BalanceOrdered:
	default:
		errs = append(errs, fmt.Errorf("upstream: balance %q: want round_robin, least_conn or ordered", opts.Balance))
	}
	switch opts.TLS {
	case "":
		opts.TLS = TLSOpportunistic
	case TLSNone, TLSOpportunistic, TLSRequired, TLSVerify:
	default:
		errs = append(errs, fmt.Errorf("upstream: tls %q: want none, opportunistic, required or verify", opts.TLS))
	}
	if opts.HeloName == "" {
		opts.HeloName, _ = os.Hostname()
		if opts.HeloName == "" {
			opts.HeloName = "localhost"
		}
	}
	if strings.ContainsFunc(opts.HeloName, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		errs = append(errs, fmt.Errorf("upstream: helo name %q: spaces or control characters", opts.HeloName))
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"connect timeout", &opts.ConnectTimeout, DefaultConnectTimeout},
		{"command timeout", &opts.CommandTimeout, DefaultCommandTimeout},
		{"data timeout", &opts.DataTimeout, DefaultDataTimeout},
		{"retry after", &opts.RetryAfter, DefaultRetryAfter},
		{"idle timeout", &opts.IdleTimeout, DefaultIdleTimeout},
	} {
		switch {
		case *d.v < 0:
			errs = append(errs, fmt.Errorf("upstream: %s %v: negative", d.name, *d.v))
		case *d.v == 0:
			*d.v = d.def
		}
	}
	switch {
	case opts.MaxIdle == 0:
		opts.MaxIdle = DefaultMaxIdle
	case opts.MaxIdle < 0:
		opts.MaxIdle = 0
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}

	p := &Pool{opts: opts, log: log, done: make(chan struct{})}
	sessions := tls.NewLRUClientSessionCache(0)
	seen := make(map[string]bool)
	for _, addr := range opts.Servers {
		host, err := checkAddr(addr)
		if err != nil {
			errs = append(errs, fmt.Errorf("upstream: server %q: %w", addr, err))
			continue
		}
		if seen[addr] {
			errs = append(errs, fmt.Errorf("upstream: server %q: listed twice", addr))
			continue
		}
		seen[addr] = true
		p.servers = append(p.servers, &server{
			addr:  addr,
			log:   log.With("server", addr),
			sends: opts.Metrics.UpstreamSends(addr),
			tls: &tls.Config{
				ServerName: host,
				RootCAs:    opts.RootCAs,
				// Below "verify" any certificate will do: an upstream
				// server on the organisation's network commonly has a
				// self-signed one, and encryption still beats plain text.
				InsecureSkipVerify: opts.TLS != TLSVerify,
				ClientSessionCache: sessions,
				MinVersion:         tls.VersionTLS12,
			},
		})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if opts.MaxIdle > 0 {
		p.reaper.Go(p.reap)
	}
	return p, nil
}

// checkAddr checks a host:port server address and returns its host.
func checkAddr(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	if host == "" {
		return "", errors.New("missing host")
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return "", fmt.Errorf("bad port %q", port)
	}
	return host, nil
}

// Send delivers one message: body is the whole message, headers and all,
// with CRLF line endings only; it is only read.
//
// Servers are tried in balance order, those in their RetryAfter penalty
// last. A server that fails before the message is handed over (connect,
// greeting, EHLO, a required STARTTLS, a 4xx reply to MAIL or DATA, the
// connection lost before the final ".") is penalised and the next one is
// tried; when all fail the error wraps ErrUnavailable.
//
// Otherwise the chosen server's word is final and is returned for the caller
// to relay:
//   - a 5xx reply to MAIL or DATA: that *smtp.SMTPError, bare;
//   - RCPT replies: one per recipient in Result.Rcpt; when none was accepted
//     the transaction is reset and Send returns the Result and a nil error;
//   - the reply to the final ".": nil for 2xx, else the *smtp.SMTPError;
//   - no reply to the final ".": an error wrapping ErrUnconfirmed, and the
//     message is not sent again, anywhere.
//
// Cancelling ctx aborts the dial or the exchange under way; Send then
// returns an error wrapping ctx's error, or ErrUnconfirmed when the message
// had been sent.
func (p *Pool) Send(ctx context.Context, env Envelope, body []byte) (Result, error) {
	if err := env.check(); err != nil {
		return Result{}, err
	}
	if err := checkCRLF(body); err != nil {
		return Result{}, err
	}
	if p.closed.Load() {
		return Result{}, fmt.Errorf("%w: pool closed", ErrUnavailable)
	}
	var failed []string
	for _, s := range p.order(time.Now()) {
		if err := ctxErr(ctx); err != nil {
			return Result{}, fmt.Errorf("upstream: send: %w", err)
		}
		res, err := p.sendTo(ctx, s, &env, body)
		var (
			fo *failoverError
			un *unconfirmedError
		)
		switch {
		case errors.As(err, &fo):
			if cerr := ctxErr(ctx); cerr != nil {
				// Our caller gave up; the server did nothing wrong.
				return Result{}, fmt.Errorf("upstream: send to %s: %w: %v", s.addr, cerr, fo.err)
			}
			p.markDown(s, fo.err)
			s.sends.Failed()
			failed = append(failed, s.addr+": "+fo.err.Error())
		case errors.As(err, &un):
			s.sends.Unconfirmed()
			if cerr := ctxErr(ctx); cerr != nil {
				return res, fmt.Errorf("%w: %s: %w: %w", ErrUnconfirmed, s.addr, cerr, un.err)
			}
			p.markDown(s, un.err)
			return res, fmt.Errorf("%w: %s: %w", ErrUnconfirmed, s.addr, un.err)
		default:
			// Delivered, or refused by a server that is working fine.
			p.markUp(s)
			s.countResult(res, err)
			return res, err
		}
	}
	return Result{}, fmt.Errorf("%w: %s", ErrUnavailable, strings.Join(failed, "; "))
}

// ctxErr is ctx's error, or DeadlineExceeded as soon as its deadline has
// passed: a network deadline taken from ctx may fire before ctx notices.
func ctxErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return nil
}

// sendTo runs one transaction for env on server s, on a reused or new
// connection, and gives the connection back when it is still good.
func (p *Pool) sendTo(ctx context.Context, s *server, env *Envelope, body []byte) (Result, error) {
	s.inFlight.Add(1)
	defer s.inFlight.Add(-1)

	c, err := p.get(ctx, s)
	if err != nil {
		return Result{Server: s.addr}, &failoverError{err}
	}
	var res Result
	err = c.guard(ctx, func() (err error) {
		res, err = c.transact(ctx, env, body, p.opts.XForward)
		return err
	})
	res.Server = s.addr
	var (
		fo *failoverError
		un *unconfirmedError
	)
	if errors.As(err, &fo) || errors.As(err, &un) {
		c.broken = true
	}
	if err == nil && c.log.Enabled(ctx, slog.LevelDebug) {
		c.log.Debug("message delivered", "from", env.From, "rcpts", len(env.To), "bytes", len(body))
	}
	p.put(s, c)
	return res, err
}

// Close closes the idle connections, saying QUIT first, and makes later
// Sends fail with ErrUnavailable. Sends under way finish normally; their
// connections are closed when they end.
func (p *Pool) Close() error {
	if !p.closed.CompareAndSwap(false, true) {
		return nil
	}
	close(p.done)
	p.reaper.Wait()
	var wg sync.WaitGroup
	for _, s := range p.servers {
		s.mu.Lock()
		idle := s.idle
		s.idle = nil
		s.mu.Unlock()
		for _, c := range idle {
			wg.Go(func() { c.quit(true) })
		}
	}
	wg.Wait()
	return nil
}

// Health returns every server's state, in configuration order.
func (p *Pool) Health() []ServerHealth {
	now := time.Now()
	out := make([]ServerHealth, 0, len(p.servers))
	for _, s := range p.servers {
		s.mu.Lock()
		out = append(out, ServerHealth{
			Addr:      s.addr,
			Up:        !now.Before(s.downUntil),
			Failures:  s.failures,
			LastError: s.lastErr,
			InFlight:  int(s.inFlight.Load()),
			Idle:      len(s.idle),
		})
		s.mu.Unlock()
	}
	return out
}

// failoverError marks a failure that left the message undelivered: the
// server is penalised and the next one tried.
type failoverError struct{ err error }

func (e *failoverError) Error() string { return e.err.Error() }
func (e *failoverError) Unwrap() error { return e.err }

// unconfirmedError marks a failure after the end of data was sent: the
// message may have been delivered and must not be sent again.
type unconfirmedError struct{ err error }

func (e *unconfirmedError) Error() string { return e.err.Error() }
func (e *unconfirmedError) Unwrap() error { return e.err }

// check rejects envelopes that could not be written as SMTP commands.
func (env *Envelope) check() error {
	if len(env.To) == 0 {
		return errors.New("upstream: no recipients")
	}
	if hasControl(env.From) {
		return fmt.Errorf("upstream: bad sender %q", env.From)
	}
	for _, to := range env.To {
		if to == "" || hasControl(to) {
			return fmt.Errorf("upstream: bad recipient %q", to)
		}
	}
	return nil
}

// hasControl reports whether s has an ASCII control character, which could
// end or smuggle an SMTP command.
func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] == 0x7f {
			return true
		}
	}
	return false
}

// checkCRLF makes sure every CR and LF in body is part of a CRLF pair, so
// that dot-stuffing sees every line and no upstream can be tricked into
// finding an end of data of its own (SMTP smuggling).
func checkCRLF(body []byte) error {
	pairs := 0
	for i := 0; ; i += 2 {
		j := bytes.IndexByte(body[i:], '\r')
		if j < 0 {
			break
		}
		i += j
		if i+1 == len(body) || body[i+1] != '\n' {
			return fmt.Errorf("upstream: message has a bare CR at byte %d", i)
		}
		pairs++
	}
	if bytes.Count(body, []byte{'\n'}) != pairs {
		i := 0
		for body[i] != '\n' || (i > 0 && body[i-1] == '\r') {
			i++
		}
		return fmt.Errorf("upstream: message has a bare LF at byte %d", i)
	}
	return nil
}
