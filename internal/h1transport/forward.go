package h1transport

import (
	"io"
	"mime"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// The helpers below let a proxy forward what RoundTrip takes without
// httputil.ReverseProxy, whose request clone, client trace and context per request cost more
// than the forwarding of a small GET. They do what ReverseProxy does with the headers and
// the body.

// hopHeaders are the hop-by-hop fields (RFC 9110 §7.6.1) that never cross a proxy, as in
// httputil.ReverseProxy.
var hopHeaders = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// Direct reports a request that a proxy may forward with OutRequest, RoundTrip and
// WriteResponse: one RoundTrip takes itself once its URL is http (GET, HEAD or OPTIONS
// without a body, no Upgrade, no Expect), whose query needs none of ReverseProxy's clean-up
// (no ";").
func Direct(r *http.Request) bool {
	return plain(r) && !strings.Contains(r.URL.RawQuery, ";")
}

// OutRequest is the request a proxy sends on for r, which Direct accepts: a shallow copy
// for u, without a body, asking to keep the connection, with OutHeader's header.
func OutRequest(r *http.Request, u *url.URL) *http.Request {
	out := r.WithContext(r.Context())
	out.URL = u
	out.Body = nil
	out.Close = false
	out.Header = OutHeader(r.Header)
	return out
}

// OutHeader is the client's header as a proxy passes it on: a copy without the hop-by-hop
// fields and those Connection names, without Forwarded and X-Forwarded-*, with
// "Te: trailers" kept, and with an empty User-Agent when the client sent none (so that none
// is sent).
func OutHeader(in http.Header) http.Header {
	h := in.Clone()
	if h == nil {
		h = http.Header{}
	}
	RemoveHopByHop(h)
	if httpguts.HeaderValuesContainsToken(in["Te"], "trailers") {
		h["Te"] = []string{"trailers"}
	}
	for _, k := range [...]string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"} {
		delete(h, k)
	}
	if _, ok := h["User-Agent"]; !ok {
		h["User-Agent"] = []string{""}
	}
	return h
}

// RemoveHopByHop deletes the hop-by-hop fields and those the Connection field names.
func RemoveHopByHop(h http.Header) {
	for _, f := range h["Connection"] {
		for sf := range strings.SplitSeq(f, ",") {
			if sf = textproto.TrimString(sf); sf != "" {
				h.Del(sf)
			}
		}
	}
	for _, f := range hopHeaders {
		delete(h, f)
	}
}

// WriteResponse sends res to the client as ReverseProxy does: its header (the caller has
// removed the hop-by-hop fields), the status, the body copied through buf (flushed after
// every read when its length is unknown, a stream such as server-sent events), then its
// trailers. An error means the response is cut short after its head: the caller must abort
// (panic(http.ErrAbortHandler)) so that the client sees the connection close.
func WriteResponse(w http.ResponseWriter, res *http.Response, buf []byte) error {
	h := w.Header()
	for k, vv := range res.Header {
		h[k] = append(h[k], vv...)
	}
	announced := len(res.Trailer)
	if announced > 0 {
		keys := make([]string, 0, announced)
		for k := range res.Trailer {
			keys = append(keys, k)
		}
		h.Add("Trailer", strings.Join(keys, ", "))
	}
	w.WriteHeader(res.StatusCode)
	if err := copyBody(w, res, buf); err != nil {
		return err
	}
	if len(res.Trailer) > 0 {
		http.NewResponseController(w).Flush() // chunked framing, so that trailers can follow
	}
	if len(res.Trailer) == announced {
		for k, vv := range res.Trailer {
			h[k] = append(h[k], vv...)
		}
		return nil
	}
	for k, vv := range res.Trailer {
		k = http.TrailerPrefix + k
		h[k] = append(h[k], vv...)
	}
	return nil
}

func copyBody(w http.ResponseWriter, res *http.Response, buf []byte) error {
	var rc *http.ResponseController
	if res.ContentLength == -1 || isEventStream(res.Header.Get("Content-Type")) {
		rc = http.NewResponseController(w)
	}
	for {
		n, rerr := res.Body.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return err
			}
			if rc != nil {
				rc.Flush()
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// isEventStream reports the media type text/event-stream, parameters or not.
func isEventStream(ct string) bool {
	const es = "text/event-stream"
	if len(ct) < len(es) || !strings.EqualFold(ct[:len(es)], es) {
		return false
	}
	mt, _, _ := mime.ParseMediaType(ct)
	return mt == es
}
