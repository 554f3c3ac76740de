package revproxy

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/sekisho/sekisho/internal/h1transport"
	"github.com/sekisho/sekisho/internal/testenv"
)

// echoHeaders answers with the request's method, target, Host and header fields, one per
// line and sorted, and with response fields of its own: hop-by-hop ones the proxy must
// drop, and trailers on /trailers.
func echoHeaders(w http.ResponseWriter, r *http.Request) {
	var lines []string
	for k, vv := range r.Header {
		lines = append(lines, k+": "+strings.Join(vv, ", "))
	}
	slices.Sort(lines)
	h := w.Header()
	h.Set("Connection", "X-Hop")
	h.Set("X-Hop", "dropped")
	h.Set("Keep-Alive", "timeout=5")
	h.Set("X-Kept", "yes")
	if r.URL.Path == "/trailers" {
		h.Set("Trailer", "X-Sum")
	}
	if r.URL.Path == "/stream" {
		w.WriteHeader(http.StatusAccepted)
		w.(http.Flusher).Flush() // no Content-Length: chunked, length unknown
	}
	fmt.Fprintf(w, "%s %s host=%s\n%s\n", r.Method, r.URL.RequestURI(), r.Host, strings.Join(lines, "\n"))
	if r.URL.Path == "/trailers" {
		h.Set("X-Sum", "42")
		h.Set(http.TrailerPrefix+"X-Late", "undeclared")
	}
}

// TestDirectMatchesReverseProxy sends the same requests through serveDirect and through
// httputil.ReverseProxy with rewrite: the backend must see the same request, and the client
// the same response.
func TestDirectMatchesReverseProxy(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(echoHeaders))
	t.Cleanup(backend.Close)
	rt, err := New(Options{Upstreams: []string{backend.Listener.Addr().String()}}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.transport.CloseIdleConnections)

	cases := []struct {
		name, method, target string
		header               map[string]string
	}{
		{"plain", "GET", "/a?x=1&y=2", nil},
		{"head", "HEAD", "/a", nil},
		{"options", "OPTIONS", "/a", nil},
		{"client forwarded headers dropped", "GET", "/", map[string]string{
			"X-Forwarded-For": "10.9.9.9", "X-Forwarded-Host": "evil", "X-Forwarded-Proto": "https", "Forwarded": "for=1.2.3.4",
		}},
		{"hop-by-hop and named by Connection", "GET", "/", map[string]string{
			"Connection": "X-Drop, keep-alive", "X-Drop": "1", "Keep-Alive": "300", "Proxy-Authorization": "Basic eDp5",
			"Upgrade-Insecure-Requests": "1", "X-Custom": "kept",
		}},
		{"te trailers kept", "GET", "/", map[string]string{"Te": "trailers, deflate"}},
		{"user agent kept", "GET", "/", map[string]string{"User-Agent": "curl/8"}},
		{"trailers", "GET", "/trailers", nil},
		{"stream", "GET", "/stream", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := func() *http.Request {
				r := httptest.NewRequest(c.method, "http://site.test"+c.target, nil)
				r.Header.Del("User-Agent")
				for k, v := range c.header {
					r.Header.Set(k, v)
				}
				return r
			}
			r := req()
			if !directTaken(r) {
				t.Fatalf("%s %s does not take the direct path", c.method, c.target)
			}
			viaDirect := httptest.NewRecorder()
			rt.serveDirect(viaDirect, r)
			viaProxy := httptest.NewRecorder()
			rt.proxy.ServeHTTP(viaProxy, req())

			d, p := viaDirect.Result(), viaProxy.Result()
			if d.StatusCode != p.StatusCode {
				t.Errorf("status: direct %d, ReverseProxy %d", d.StatusCode, p.StatusCode)
			}
			if got, want := testenv.HeaderLines(d.Header), testenv.HeaderLines(p.Header); got != want {
				t.Errorf("response header:\ndirect:\n%s\nReverseProxy:\n%s", got, want)
			}
			if got, want := testenv.HeaderLines(d.Trailer), testenv.HeaderLines(p.Trailer); got != want {
				t.Errorf("trailers:\ndirect:\n%s\nReverseProxy:\n%s", got, want)
			}
			db, _ := io.ReadAll(d.Body)
			pb, _ := io.ReadAll(p.Body)
			if string(db) != string(pb) {
				t.Errorf("backend saw (body):\ndirect:\n%s\nReverseProxy:\n%s", db, pb)
			}
			if d.Header.Get("X-Hop") != "" || d.Header.Get("Keep-Alive") != "" || d.Header.Get("X-Kept") != "yes" {
				t.Errorf("hop-by-hop response fields not handled: %v", d.Header)
			}
			if c.method == "GET" && !strings.Contains(string(db), "X-Forwarded-For: 192.0.2.1\n") {
				t.Errorf("backend did not see the client address in X-Forwarded-For:\n%s", db)
			}
		})
	}
}

// directTaken reports whether ServeHTTP sends r the direct way.
func directTaken(r *http.Request) bool {
	return h1transport.Direct(r)
}
