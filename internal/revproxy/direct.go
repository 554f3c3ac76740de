package revproxy

import (
	"errors"
	"net"
	"net/http"

	"github.com/sekisho/sekisho/internal/h1transport"
)

// serveDirect forwards a request h1transport.Direct accepts as httputil.ReverseProxy with
// rewrite would, header for header, but without ReverseProxy's per-request clone, client
// trace and context: for the small GETs that make most of a site's traffic, those cost more
// than the forwarding.
func (rt *Route) serveDirect(w http.ResponseWriter, r *http.Request) {
	out := r.WithContext(r.Context())
	u := *r.URL
	u.Scheme, u.Host = "http", "upstream" // failover picks the backend
	out.URL = &u
	out.Body = nil
	out.Close = false
	out.Header = h1transport.OutHeader(r.Header)
	if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		out.Header["X-Forwarded-For"] = []string{ip}
	}
	out.Header["X-Forwarded-Host"] = []string{r.Host}
	if r.TLS != nil {
		out.Header["X-Forwarded-Proto"] = []string{"https"}
	} else {
		out.Header["X-Forwarded-Proto"] = []string{"http"}
	}

	res, err := (&failover{route: rt}).RoundTrip(out)
	if err != nil {
		rt.serveError(w, r, err)
		return
	}
	defer res.Body.Close()
	if res.StatusCode == http.StatusSwitchingProtocols {
		rt.serveError(w, r, errors.New("switching protocols without an upgrade request"))
		return
	}
	h1transport.RemoveHopByHop(res.Header)
	buf := rt.buffers.Get()
	defer rt.buffers.Put(buf)
	if err := h1transport.WriteResponse(w, res, buf); err != nil {
		rt.log.Debug("reverse proxy response cut short", "client", r.RemoteAddr, "err", err)
		panic(http.ErrAbortHandler) // the client sees the connection close before the end
	}
}
