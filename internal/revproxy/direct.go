package revproxy

import (
	"net/http"
	"net/http/httputil"

	"github.com/sekisho/sekisho/internal/h1transport"
)

// serveDirect forwards a request h1transport.Direct accepts as httputil.ReverseProxy with
// rewrite would, header for header, but without ReverseProxy's per-request clone, client
// trace and context: for the small GETs that make most of a site's traffic, those cost more
// than the forwarding. h1transport takes every such request and answers a 101 with an error.
func (rt *Route) serveDirect(w http.ResponseWriter, r *http.Request) {
	u := *r.URL
	u.Scheme, u.Host = "http", "upstream" // failover picks the backend
	out := h1transport.OutRequest(r, &u)
	(&httputil.ProxyRequest{In: r, Out: out}).SetXForwarded() // as rewrite
	res, err := rt.failover.RoundTrip(out)
	if err != nil {
		rt.serveError(w, r, err)
		return
	}
	defer res.Body.Close()
	h1transport.RemoveHopByHop(res.Header)
	buf := rt.buffers.Get()
	defer rt.buffers.Put(buf)
	if err := h1transport.WriteResponse(w, res, buf); err != nil {
		rt.log.Debug("reverse proxy response cut short", "client", r.RemoteAddr, "err", err)
		panic(http.ErrAbortHandler) // the client sees the connection close before the end
	}
}
