package web

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"sync/atomic"

	"github.com/sekisho/sekisho/internal/accesslog"
	"github.com/sekisho/sekisho/internal/metrics"
	"github.com/sekisho/sekisho/internal/webui"
)

// AdminOnly serves h to clients whose address is in networks (admin_networks) and answers
// 403 to every other client. The address is the connection's, never a header's.
func AdminOnly(networks []netip.Prefix, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ip := webui.ClientIP(r)
		for _, n := range networks {
			if n.Contains(ip) {
				h.ServeHTTP(w, r)
				return
			}
		}
		http.Error(w, "Forbidden", http.StatusForbidden)
	})
}

// access wraps the handler of a route: every request is counted under the route's Kind and
// gets one "access" log line (SPEC §10), also when the handler panics.
func (s *Server) access(rt Route) http.Handler {
	kind := rt.Kind
	if kind == "" {
		kind = metrics.ProxyWeb
	}
	m := s.deps.Metrics.Proxy(kind)
	log := s.log.With(slog.String("proxy", kind)) // formatted once, not per line
	next := rt.Handler
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := s.deps.Now()
		aw := &accesslog.Writer{ResponseWriter: w}
		var in atomic.Int64 // a reverse proxy reads the body in the Transport's goroutine
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = &accesslog.Body{ReadCloser: r.Body, N: &in}
		}
		defer func() {
			status := aw.Status
			if status == 0 {
				status = http.StatusOK
			}
			m.Request(r.Method)
			m.Bytes(in.Load(), aw.Bytes)
			log.LogAttrs(context.Background(), slog.LevelInfo, "access",
				slog.String("client", webui.ClientIP(r).String()),
				slog.String("method", r.Method),
				slog.String("host", r.Host),
				slog.String("target", r.URL.RequestURI()),
				slog.Int("status", status),
				slog.Int64("bytes", aw.Bytes),
				slog.Int64("bytes_in", in.Load()),
				slog.Duration("duration", s.deps.Now().Sub(start)))
		}()
		next.ServeHTTP(aw, r)
	})
}
