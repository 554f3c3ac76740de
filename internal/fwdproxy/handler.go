package fwdproxy

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sekisho/sekisho/internal/accesslog"
	"github.com/sekisho/sekisho/internal/h1transport"
	"github.com/sekisho/sekisho/internal/netacl"
)

// exchange is one request, as the access log line tells it.
type exchange struct {
	start  time.Time
	st     *settings
	client netip.Addr
	user   string
	method string
	target string // absolute URL, or host:port for CONNECT
	w      *accesslog.Writer
	up     atomic.Int64 // bytes client -> origin, counted while the Transport sends the body
	down   int64        // tunnel bytes origin -> client (plain responses: w.bytes)
	reason netacl.Reason
	err    error
}

type exchangeKey struct{}

// ServeHTTP answers one proxy request: who is asking, then what for, then forward or tunnel.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.requests.Add(1)
	p.active.Add(1)
	ex := &exchange{
		start:  p.now(),
		st:     p.settings(),
		client: remoteIP(r.RemoteAddr),
		method: r.Method,
		target: r.URL.Redacted(), // no password from a user:pass@ in the log
		w:      &accesslog.Writer{ResponseWriter: w},
	}
	if r.Method == http.MethodConnect {
		ex.target = r.Host
	}
	defer p.finish(ex)

	if reason, err := p.admit(r.Context(), ex, r); err != nil {
		ex.err = err
		p.log.Error("proxy auth check", "client", ex.client, "err", err)
		http.Error(ex.w, "503 service unavailable", http.StatusServiceUnavailable)
		return
	} else if reason != "" {
		p.refuse(r.Context(), ex, reason)
		return
	}
	if viaLoop(r.Header.Values("Via"), ex.st.Hostname) {
		p.refuse(r.Context(), ex, netacl.ReasonLoop)
		return
	}
	if r.Method == http.MethodConnect {
		p.connect(r, ex)
		return
	}
	p.forward(r, ex)
}

// finish writes the access log line and keeps a panic in the handler from taking the
// process down unnoticed.
func (p *Proxy) finish(ex *exchange) {
	v := recover()
	p.active.Add(-1)
	if v != nil && v != http.ErrAbortHandler {
		p.panics.Add(1)
		p.log.Error("proxy handler panic", "client", ex.client, "target", ex.target, "panic", v, "stack", string(debug.Stack()))
	}
	if v != nil && ex.err == nil {
		ex.err = errors.New("response aborted")
	}
	down := ex.w.Bytes + ex.down
	p.bytesDown.Add(down)
	up := ex.up.Load()
	p.bytesUp.Add(up)
	p.metrics.Request(ex.method)
	p.metrics.Bytes(up, down)
	attrs := []slog.Attr{
		slog.String("proxy", "http"),
		slog.String("client", ex.client.String()),
		slog.String("method", ex.method),
		slog.String("target", ex.target),
		slog.Int("status", ex.w.Status),
		slog.Int64("bytes", down),
		slog.Int64("bytes_up", up),
		slog.Duration("duration", p.now().Sub(ex.start)),
	}
	if ex.user != "" {
		attrs = append(attrs, slog.String("user", ex.user))
	}
	if ex.reason != "" {
		attrs = append(attrs, slog.String("reason", string(ex.reason)))
	}
	if ex.err != nil {
		attrs = append(attrs, slog.String("err", ex.err.Error()))
	}
	p.log.LogAttrs(context.Background(), slog.LevelInfo, "access", attrs...)
	if v != nil {
		panic(http.ErrAbortHandler) // net/http closes the connection quietly
	}
}

// admit decides whether the client may use the proxy: BLACK, allow_networks, then
// Proxy-Authorization. An error means the credentials could not be checked.
func (p *Proxy) admit(ctx context.Context, ex *exchange, r *http.Request) (netacl.Reason, error) {
	if reason := ex.st.acl.Client(ex.client, p.deps.Lists.BlackIP(ex.client, p.now())); reason != "" {
		return reason, nil
	}
	if !ex.st.Auth {
		return "", nil
	}
	user, pass, ok := proxyBasicAuth(r.Header.Get("Proxy-Authorization"))
	if !ok {
		return netacl.ReasonAuthRequired, nil
	}
	ex.user = user
	good, err := p.auth.Check(ctx, user, pass)
	if err != nil {
		return "", err
	}
	if !good {
		return netacl.ReasonAuthFailed, nil
	}
	return "", nil
}

// refuse answers a refusal, counts it, and hands a prober to the Blacklister. The answer
// tells nothing of the configuration; the log line has the reason.
func (p *Proxy) refuse(ctx context.Context, ex *exchange, reason netacl.Reason) {
	ex.reason = reason
	p.refused.Add(reason)
	p.metrics.Refused(string(reason))
	if reason.Probe() {
		p.probe(ctx, ex, reason)
	}
	h := ex.w.Header()
	status := http.StatusForbidden
	switch reason {
	case netacl.ReasonAuthRequired, netacl.ReasonAuthFailed:
		status = http.StatusProxyAuthRequired
		h.Set("Proxy-Authenticate", fmt.Sprintf("Basic realm=%q, charset=\"UTF-8\"", ex.st.Realm))
	case netacl.ReasonBadRequest:
		status = http.StatusBadRequest
	}
	if reason == netacl.ReasonBlack || reason.Probe() {
		h.Set("Connection", "close") // nothing more for this client on this connection
	}
	http.Error(ex.w, strconv.Itoa(status)+" "+strings.ToLower(http.StatusText(status)), status)
}

// probe logs an open-proxy or mail-relay probe and puts the client in BLACK when
// blacklist_probes is set.
func (p *Proxy) probe(ctx context.Context, ex *exchange, reason netacl.Reason) {
	msg := "proxy probe"
	if reason == netacl.ReasonMailPort {
		msg = "proxy mail relay attempt" // a stable line for fail2ban
	}
	p.log.Warn(msg, "client", ex.client, "method", ex.method, "target", ex.target, "reason", reason)
	if !ex.st.BlacklistProbes || p.deps.Blacklister == nil || !ex.client.IsValid() {
		return
	}
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	note := fmt.Sprintf("http proxy %s: %s %s", reason, ex.method, ex.target)
	if err := p.deps.Blacklister.Blacklist(bctx, ex.client, netacl.SourceProxyAbuse, note); err != nil {
		p.log.Error("blacklist proxy prober", "client", ex.client, "err", err)
		return
	}
	p.blacklisted.Add(1)
	p.log.Warn("proxy prober blacklisted", "client", ex.client, "reason", reason)
}

// forward relays a plain request, which must be in absolute form.
func (p *Proxy) forward(r *http.Request, ex *exchange) {
	u := r.URL
	if !u.IsAbs() || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		p.refuse(r.Context(), ex, netacl.ReasonBadRequest)
		return
	}
	ex.target = u.Redacted()
	port := 80
	if u.Scheme == "https" {
		port = 443
	}
	if ps := u.Port(); ps != "" {
		n, err := strconv.Atoi(ps)
		if err != nil {
			p.refuse(r.Context(), ex, netacl.ReasonBadRequest)
			return
		}
		port = n
	}
	if reason := ex.st.acl.Forward(u.Hostname(), port); reason != "" {
		p.refuse(r.Context(), ex, reason)
		return
	}
	if u.Scheme == "http" && h1transport.Direct(r) {
		p.forwardDirect(r, ex)
		return
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = &accesslog.Body{ReadCloser: r.Body, N: &ex.up}
	}
	p.rp.ServeHTTP(ex.w, r.WithContext(context.WithValue(r.Context(), exchangeKey{}, ex)))
}

// forwardDirect relays a request h1transport.Direct accepts to an http origin as the
// ReverseProxy path does (rewrite and modifyResponse), without ReverseProxy's per-request
// clone, trace and context.
func (p *Proxy) forwardDirect(r *http.Request, ex *exchange) {
	u := *r.URL
	u.User = nil                         // never turned into an Authorization header
	out := h1transport.OutRequest(r, &u) // Proxy-Authorization is hop-by-hop: gone
	out.Header.Add("Via", via(r.ProtoMajor, r.ProtoMinor, ex.st.Hostname))
	res, err := p.tr.RoundTrip(out)
	if err != nil {
		p.originFailed(r, ex, err)
		return
	}
	defer res.Body.Close()
	h1transport.RemoveHopByHop(res.Header)
	res.Header.Add("Via", via(res.ProtoMajor, res.ProtoMinor, ex.st.Hostname))
	buf := p.rbufs.Get()
	defer p.rbufs.Put(buf)
	if err := h1transport.WriteResponse(ex.w, res, buf); err != nil {
		ex.err = err
		panic(http.ErrAbortHandler) // the client sees the connection close before the end
	}
}

// rewrite builds the request to the origin. ReverseProxy has already removed the
// hop-by-hop headers, those named in Connection, and Forwarded/X-Forwarded-*: a forward
// proxy does not tell the internet its clients' addresses.
func (p *Proxy) rewrite(pr *httputil.ProxyRequest) {
	ex := pr.In.Context().Value(exchangeKey{}).(*exchange)
	pr.Out.URL.User = nil // never turned into an Authorization header
	pr.Out.Header.Del("Proxy-Authorization")
	pr.Out.Header.Add("Via", via(pr.In.ProtoMajor, pr.In.ProtoMinor, ex.st.Hostname))
}

// modifyResponse adds Via to the response (RFC 9110 §7.6.3).
func (p *Proxy) modifyResponse(res *http.Response) error {
	ex := res.Request.Context().Value(exchangeKey{}).(*exchange)
	res.Header.Add("Via", via(res.ProtoMajor, res.ProtoMinor, ex.st.Hostname))
	return nil
}

// originError is ReverseProxy's ErrorHandler: the request got no response from its origin.
func (p *Proxy) originError(_ http.ResponseWriter, r *http.Request, err error) {
	p.originFailed(r, r.Context().Value(exchangeKey{}).(*exchange), err)
}

// originFailed answers a request whose origin could not be reached or did not answer: a
// refusal after resolution is a refusal (403), a timeout 504, anything else 502; a client
// that went away gets nothing.
func (p *Proxy) originFailed(r *http.Request, ex *exchange, err error) {
	var re *netacl.RefusedError
	if errors.As(err, &re) {
		p.refuse(r.Context(), ex, re.Reason)
		return
	}
	ex.err = err
	if r.Context().Err() != nil {
		ex.w.Status = 499 // nginx's "client closed request"; nothing is sent
		return
	}
	status := http.StatusBadGateway
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) {
		status = http.StatusGatewayTimeout
	}
	http.Error(ex.w, strconv.Itoa(status)+" "+strings.ToLower(http.StatusText(status)), status)
}

// via is one Via field value (RFC 9110 §7.6.3): protocol version and our name.
func via(major, minor int, host string) string {
	if major >= 2 {
		return strconv.Itoa(major) + " " + host
	}
	return strconv.Itoa(major) + "." + strconv.Itoa(minor) + " " + host
}

// viaLoop reports whether a Via header already names us: the request went round.
func viaLoop(values []string, host string) bool {
	for _, v := range values {
		for hop := range strings.SplitSeq(v, ",") {
			f := strings.Fields(hop)
			if len(f) >= 2 && strings.EqualFold(f[1], host) {
				return true
			}
		}
	}
	return false
}

// proxyBasicAuth decodes "Basic base64(user:pass)" (RFC 7617).
func proxyBasicAuth(h string) (user, pass string, ok bool) {
	scheme, cred, found := strings.Cut(strings.TrimSpace(h), " ")
	if !found || !strings.EqualFold(scheme, "Basic") {
		return "", "", false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred))
	if err != nil {
		return "", "", false
	}
	return strings.Cut(string(raw), ":")
}

// remoteIP parses http.Request.RemoteAddr.
func remoteIP(addr string) netip.Addr {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}
