package socks5

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"github.com/sekisho/sekisho/internal/tunnel"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/sekisho/sekisho/internal/netacl"
)

// session is one client connection, from greeting to the end of its tunnel.
type session struct {
	p      *Proxy
	st     *settings
	conn   net.Conn
	client netip.Addr
	start  time.Time
	ctx    context.Context // ends when the session is closed
	cancel context.CancelFunc

	// what the access log line tells
	user   string
	req    request
	reply  int // the reply code sent, -1 when none
	reason netacl.Reason
	err    error
	up     int64
	down   int64
	idled  bool

	mu     sync.Mutex // guards origin and closed against close from Shutdown
	origin net.Conn
	closed bool
}

// newSession registers a session for c; nil when Shutdown has already given up waiting.
func (p *Proxy) newSession(c net.Conn) *session {
	p.count.Add(1)
	s := &session{p: p, st: p.settings(), conn: c, start: p.now(), reply: -1}
	if ap, ok := netacl.AddrPort(c.RemoteAddr()); ok {
		s.client = ap.Addr()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.forced {
		c.Close()
		return nil
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	p.sessions[s] = struct{}{}
	return s
}

// run serves the session: who is asking (BLACK, allow_networks), the method and its
// authentication, the request, the rules, the connection, the reply, then the tunnel.
func (s *session) run() {
	defer s.finish()
	s.conn.SetDeadline(s.start.Add(s.st.HandshakeTimeout))
	// A refused client is told so in a reply (0x02) once its request is in, rather than
	// by a dropped connection; it is never asked for a password.
	refusal := s.st.acl.Client(s.client, s.p.deps.Lists.BlackIP(s.client, s.p.now()))

	methods, err := readGreeting(s.conn)
	if err != nil {
		s.failed(err, refusal)
		return
	}
	method := chooseMethod(methods, refusal != "", s.st.Auth)
	if method == methodNoAcceptable {
		s.refuse(cmp.Or(refusal, netacl.ReasonAuthRequired), -1)
		s.conn.Write([]byte{version5, method})
		return
	}
	if _, err := s.conn.Write([]byte{version5, method}); err != nil {
		s.failed(err, refusal)
		return
	}
	if method == methodUserPass && !s.authenticate() {
		return
	}

	req, err := readRequest(s.conn)
	if err != nil {
		if errors.Is(err, errAddrType) {
			s.send(replyAddrNotSupported, netip.AddrPort{})
		}
		s.failed(err, refusal)
		return
	}
	s.req = req
	if refusal != "" {
		s.refuse(refusal, replyNotAllowed)
		return
	}
	if req.cmd != cmdConnect {
		s.refuse(netacl.ReasonUnsupported, replyCmdNotSupported)
		return
	}
	if reason := s.st.acl.Connect(req.host, req.port); reason != "" {
		s.refuse(reason, replyNotAllowed)
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.st.DialTimeout)
	origin, err := s.p.dialer.DialACL(ctx, s.st.acl, req.host, req.port)
	cancel()
	if err != nil {
		s.dialFailed(err)
		return
	}
	if !s.setOrigin(origin) {
		return
	}
	bnd, _ := netacl.AddrPort(origin.LocalAddr())
	if !s.send(replySucceeded, bnd) {
		return
	}
	s.conn.SetDeadline(time.Time{})
	t := tunnel.New(s.conn, origin, s.st.IdleTimeout, &s.p.bufs)
	s.up, s.down = t.Run()
	s.idled = t.Idled()
}

// chooseMethod picks the authentication method (RFC 1928 §3): none for a client that will
// be refused anyway, username/password when auth is required, else none if offered.
func chooseMethod(offered []byte, refused, auth bool) byte {
	has := func(m byte) bool { return slices.Contains(offered, m) }
	switch {
	case refused:
		if has(methodNoAuth) {
			return methodNoAuth
		}
		return methodNoAcceptable
	case auth:
		if has(methodUserPass) {
			return methodUserPass
		}
		return methodNoAcceptable
	case has(methodNoAuth):
		return methodNoAuth
	case has(methodUserPass):
		return methodUserPass // accepted without a check: auth is off
	}
	return methodNoAcceptable
}

// authenticate runs the RFC 1929 subnegotiation.
func (s *session) authenticate() bool {
	user, pass, err := readUserPass(s.conn)
	if err != nil {
		s.err = err
		return false
	}
	s.user = user
	if !s.st.Auth {
		_, err := s.conn.Write([]byte{userPassVersion, 0})
		return err == nil
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.st.HandshakeTimeout)
	good, err := s.p.auth.Check(ctx, user, pass)
	cancel()
	if err != nil {
		s.err = err
		s.p.log.Error("socks auth check", "client", s.client, "err", err)
		s.conn.Write([]byte{userPassVersion, 1})
		return false
	}
	if !good {
		s.refuse(netacl.ReasonAuthFailed, -1)
		s.conn.Write([]byte{userPassVersion, 1}) // RFC 1929: then close
		return false
	}
	_, err = s.conn.Write([]byte{userPassVersion, 0})
	return err == nil
}

// failed notes a handshake that ended early; a client that was to be refused is still
// counted and, if a probe, handed to the Blacklister (scanners send HTTP to SOCKS ports).
func (s *session) failed(err error, refusal netacl.Reason) {
	s.err = err
	if refusal != "" {
		s.refuse(refusal, -1)
	}
}

// refuse counts a refusal, hands a prober to the Blacklister, and sends reply rep unless
// it is -1.
func (s *session) refuse(reason netacl.Reason, rep int) {
	s.reason = reason
	s.p.refused.Add(reason)
	s.p.m.Refused(string(reason))
	if reason.Probe() {
		s.probe(reason)
	}
	if rep >= 0 {
		s.send(byte(rep), netip.AddrPort{})
	}
}

// probe logs an open-proxy or mail-relay probe and puts the client in BLACK when
// blacklist_probes is set.
func (s *session) probe(reason netacl.Reason) {
	msg := "socks probe"
	if reason == netacl.ReasonMailPort {
		msg = "socks mail relay attempt" // a stable line for fail2ban
	}
	s.p.log.Warn(msg, "client", s.client, "target", s.target(), "reason", reason)
	if !s.st.BlacklistProbes || s.p.deps.Blacklister == nil || !s.client.IsValid() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	note := fmt.Sprintf("socks %s", reason)
	if t := s.target(); t != "" {
		note += ": CONNECT " + t
	}
	if err := s.p.deps.Blacklister.Blacklist(ctx, s.client, netacl.SourceProxyAbuse, note); err != nil {
		s.p.log.Error("blacklist socks prober", "client", s.client, "err", err)
		return
	}
	s.p.blacklisted.Add(1)
	s.p.log.Warn("socks prober blacklisted", "client", s.client, "reason", reason)
}

// dialFailed answers a request whose destination could not be reached.
func (s *session) dialFailed(err error) {
	var re *netacl.RefusedError
	if errors.As(err, &re) {
		s.refuse(re.Reason, replyNotAllowed)
		return
	}
	s.err = err
	s.send(dialReply(err), netip.AddrPort{})
}

// dialReply maps a connection failure to a reply code (RFC 1928 §6).
func dialReply(err error) byte {
	var dnsErr *net.DNSError
	var ne net.Error
	switch {
	case errors.As(err, &dnsErr):
		return replyHostUnreachable
	case errors.Is(err, syscall.ECONNREFUSED):
		return replyConnectionRefused
	case errors.Is(err, syscall.ENETUNREACH):
		return replyNetworkUnreachable
	case errors.Is(err, syscall.EHOSTUNREACH):
		return replyHostUnreachable
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, context.DeadlineExceeded):
		return replyTTLExpired
	}
	return replyGeneralFailure
}

// send writes a reply; false if the client is gone.
func (s *session) send(rep byte, bnd netip.AddrPort) bool {
	s.reply = int(rep)
	_, err := s.conn.Write(appendReply(nil, rep, bnd))
	if err != nil && s.err == nil {
		s.err = err
	}
	return err == nil
}

// setOrigin records the destination connection so that close reaches it; false (and the
// connection closed) when the session was closed meanwhile.
func (s *session) setOrigin(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		c.Close()
		return false
	}
	s.origin = c
	return true
}

// lingerClose sends FIN and reads what the client still sends for a moment before the
// connection is closed: closing with unread bytes would send RST, and a client that gets
// RST may lose the refusal it has not read yet (net/http does the same).
func (s *session) lingerClose() {
	tc, ok := s.conn.(interface{ CloseWrite() error })
	if !ok || tc.CloseWrite() != nil {
		return
	}
	s.conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	io.CopyN(io.Discard, s.conn, 64<<10)
}

// close ends the session from outside (Shutdown).
func (s *session) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.cancel()
	s.conn.Close()
	if s.origin != nil {
		s.origin.Close()
	}
}

func (s *session) target() string {
	if s.req.atyp == 0 {
		return ""
	}
	return s.req.target()
}

// cmdName names a request command in logs.
func cmdName(c byte) string {
	switch c {
	case cmdConnect:
		return "connect"
	case cmdBind:
		return "bind"
	case cmdUDPAssociate:
		return "udp-associate"
	}
	return fmt.Sprintf("0x%02x", c)
}

// method is the session's request for the metrics: the SOCKS command, "NONE" before one
// was read.
func (s *session) method() string {
	if s.req.atyp == 0 {
		return "NONE"
	}
	switch s.req.cmd {
	case cmdConnect:
		return "CONNECT"
	case cmdBind:
		return "BIND"
	case cmdUDPAssociate:
		return "UDP_ASSOCIATE"
	}
	return "OTHER"
}

// finish closes the session, writes its access log line, and keeps a panic from taking the
// process down.
func (s *session) finish() {
	v := recover()
	if v != nil {
		s.p.panics.Add(1)
		s.p.log.Error("socks session panic", "client", s.client, "panic", v, "stack", string(debug.Stack()))
		s.err = fmt.Errorf("panic: %v", v)
	}
	if s.origin == nil {
		s.lingerClose()
	}
	s.close()
	s.p.mu.Lock()
	delete(s.p.sessions, s)
	s.p.mu.Unlock()
	s.p.bytesUp.Add(s.up)
	s.p.bytesDown.Add(s.down)
	s.p.m.Request(s.method())
	s.p.m.Bytes(s.up, s.down)

	attrs := []slog.Attr{slog.String("proxy", "socks"), slog.String("client", s.client.String())}
	if s.user != "" {
		attrs = append(attrs, slog.String("user", s.user))
	}
	if s.req.atyp != 0 {
		attrs = append(attrs, slog.String("cmd", cmdName(s.req.cmd)), slog.String("target", s.target()))
	}
	attrs = append(attrs,
		slog.Int("reply", s.reply),
		slog.Int64("bytes", s.down),
		slog.Int64("bytes_up", s.up),
		slog.Duration("duration", s.p.now().Sub(s.start)))
	if s.reason != "" {
		attrs = append(attrs, slog.String("reason", string(s.reason)))
	}
	switch {
	case s.idled:
		attrs = append(attrs, slog.String("err", "tunnel idle timeout"))
	case s.err != nil:
		attrs = append(attrs, slog.String("err", s.err.Error()))
	}
	s.p.log.LogAttrs(context.Background(), slog.LevelInfo, "access", attrs...)
}
