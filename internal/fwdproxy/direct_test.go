package fwdproxy

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/sekisho/sekisho/internal/accesslog"
	"github.com/sekisho/sekisho/internal/h1transport"
	"github.com/sekisho/sekisho/internal/testenv"
)

// TestDirectMatchesReverseProxy sends the same requests through forwardDirect and through
// the ReverseProxy path: the origin must see the same request, and the client the same
// response.
func TestDirectMatchesReverseProxy(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var lines []string
		for k, vv := range r.Header {
			lines = append(lines, k+": "+strings.Join(vv, ", "))
		}
		slices.Sort(lines)
		w.Header().Set("Connection", "X-Hop")
		w.Header().Set("X-Hop", "dropped")
		w.Header().Set("Proxy-Authenticate", "Basic realm=origin")
		w.Header().Set("Via", "1.1 origin-cache")
		fmt.Fprintf(w, "%s %s host=%s\n%s\n", r.Method, r.URL.RequestURI(), r.Host, strings.Join(lines, "\n"))
	}))
	t.Cleanup(origin.Close)

	cases := []struct {
		name, method, target string
		header               map[string]string
	}{
		{"plain", "GET", "/a?x=1", nil},
		{"head", "HEAD", "/a", nil},
		{"credentials and forwarded fields dropped", "GET", "/", map[string]string{
			"Proxy-Authorization": "Basic eDp5", "Proxy-Connection": "keep-alive", "X-Forwarded-For": "10.1.1.1", "Forwarded": "for=x",
		}},
		{"named by Connection", "GET", "/", map[string]string{"Connection": "X-Drop", "X-Drop": "1", "X-Custom": "kept"}},
		{"via from the client kept", "GET", "/", map[string]string{"Via": "1.1 other-proxy"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			exchangeFor := func() (*http.Request, *exchange, *httptest.ResponseRecorder) {
				r := httptest.NewRequest(c.method, origin.URL+c.target, nil)
				r.Header.Del("User-Agent")
				for k, v := range c.header {
					r.Header.Set(k, v)
				}
				rec := httptest.NewRecorder()
				return r, &exchange{st: h.proxy.settings(), method: r.Method, w: &accesslog.Writer{ResponseWriter: rec}}, rec
			}
			r, ex, viaDirect := exchangeFor()
			if !h1transport.Direct(r) {
				t.Fatalf("%s %s does not take the direct path", c.method, c.target)
			}
			h.proxy.forwardDirect(r, ex)
			r, ex, viaProxy := exchangeFor()
			h.proxy.rp.ServeHTTP(ex.w, r.WithContext(context.WithValue(r.Context(), exchangeKey{}, ex)))

			d, p := viaDirect.Result(), viaProxy.Result()
			if d.StatusCode != p.StatusCode {
				t.Errorf("status: direct %d, ReverseProxy %d", d.StatusCode, p.StatusCode)
			}
			if got, want := testenv.HeaderLines(d.Header), testenv.HeaderLines(p.Header); got != want {
				t.Errorf("response header:\ndirect:\n%s\nReverseProxy:\n%s", got, want)
			}
			db, _ := io.ReadAll(d.Body)
			pb, _ := io.ReadAll(p.Body)
			if string(db) != string(pb) {
				t.Errorf("origin saw (body):\ndirect:\n%s\nReverseProxy:\n%s", db, pb)
			}
			if got := d.Header.Values("Via"); !slices.Contains(got, "1.1 proxy.test") || d.Header.Get("X-Hop") != "" || d.Header.Get("Proxy-Authenticate") != "" {
				t.Errorf("response fields: Via %q, X-Hop %q, Proxy-Authenticate %q", got, d.Header.Get("X-Hop"), d.Header.Get("Proxy-Authenticate"))
			}
			if c.method == "GET" && (!strings.Contains(string(db), "Via: ") || strings.Contains(string(db), "Proxy-Authorization") || strings.Contains(string(db), "X-Drop")) {
				t.Errorf("origin saw:\n%s", db)
			}
		})
	}
}
