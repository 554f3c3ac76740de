package fwdproxy

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/sekisho/sekisho/internal/h1serve"
	"github.com/sekisho/sekisho/internal/netacl"
	"github.com/sekisho/sekisho/internal/tunnel"
)

// connect opens a tunnel (RFC 9110 §9.3.6): the target is checked (ports, then the name,
// then every address after resolution), the origin is connected before the client hears
// 200, and then bytes pass both ways until either side is done.
func (p *Proxy) connect(r *http.Request, ex *exchange) {
	host, port, err := netacl.SplitHostPort(r.Host)
	if err != nil {
		p.refuse(r.Context(), ex, netacl.ReasonBadRequest)
		return
	}
	if reason := ex.st.acl.Connect(host, port); reason != "" {
		p.refuse(r.Context(), ex, reason)
		return
	}
	dctx, cancel := context.WithTimeout(r.Context(), ex.st.DialTimeout)
	origin, err := p.dialer.DialACL(dctx, ex.st.acl, host, port)
	cancel()
	if err != nil {
		p.originFailed(r, ex, err)
		return
	}
	client, brw, err := http.NewResponseController(ex.w.ResponseWriter).Hijack()
	if err != nil {
		origin.Close()
		ex.err = err
		http.Error(ex.w, "500 internal server error", http.StatusInternalServerError)
		return
	}
	client = h1serve.Unwrap(client) // the socket itself, for splice(2)
	ex.w.Status = http.StatusOK
	client.SetDeadline(time.Now().Add(ex.st.DialTimeout))
	_, err = client.Write([]byte("HTTP/1.1 200 Connection established\r\nVia: " + via(r.ProtoMajor, r.ProtoMinor, ex.st.Hostname) + "\r\n\r\n"))
	client.SetDeadline(time.Time{})
	if err == nil && brw.Reader.Buffered() > 0 {
		// The client may send before it reads our 200 (TLS false start, pipelining).
		early, _ := brw.Reader.Peek(brw.Reader.Buffered())
		var n int
		n, err = origin.Write(early)
		ex.up.Add(int64(n))
	}
	if err != nil {
		ex.err = err
		client.Close()
		origin.Close()
		return
	}

	t := tunnel.New(client, origin, ex.st.TunnelIdleTimeout, &p.bufs)
	if !p.addTunnel(t) {
		t.Close()
	}
	defer p.removeTunnel(t)
	up, down := t.Run()
	ex.up.Add(up)
	ex.down = down
	if t.Idled() {
		ex.err = errors.New("tunnel idle timeout")
	}
}

// addTunnel registers t for Shutdown; false when Shutdown has already given up waiting.
func (p *Proxy) addTunnel(t *tunnel.Tunnel) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tunnels[t] = struct{}{}
	return !p.forced
}

func (p *Proxy) removeTunnel(t *tunnel.Tunnel) {
	p.mu.Lock()
	delete(p.tunnels, t)
	p.mu.Unlock()
}
