package fwdproxy

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/lists"
	"github.com/sekisho/sekisho/internal/netacl"
)

// benchForward measures keep-alive GETs of a 1 KiB body, through the proxy or direct.
// Compare the two on the same run: go test -bench Forward -run '^$' ./internal/fwdproxy/
func benchForward(b *testing.B, viaProxy bool) {
	body := bytes.Repeat([]byte("x"), 1024)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) }))
	defer origin.Close()
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	if viaProxy {
		p, err := New(Options{Rules: netacl.Rules{
			AllowNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
			DenyNetworks:  []netip.Prefix{netip.MustParsePrefix("169.254.0.0/16")},
		}}, Deps{ProxyDeps: netacl.ProxyDeps{Lists: lists.New(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}}) // production level: info, one line per request
		if err != nil {
			b.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		go p.Serve(ln)
		defer p.Shutdown(b.Context())
		tr.Proxy = http.ProxyURL(&url.URL{Scheme: "http", Host: ln.Addr().String()})
	}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	defer tr.CloseIdleConnections()
	b.SetBytes(int64(len(body)))
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Get(origin.URL + "/1k")
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}

func BenchmarkForwardDirect(b *testing.B) { benchForward(b, false) }
func BenchmarkForwardProxy(b *testing.B)  { benchForward(b, true) }
