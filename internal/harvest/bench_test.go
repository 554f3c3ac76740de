package harvest

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// BenchmarkSeedServer serves a 10 KiB page from the real static handler over a real
// net/http server and a keep-alive connection, unseeded and seeded, for a visitor whose
// address is known (every view after the first).
func BenchmarkSeedServer(b *testing.B) {
	para := "<p>Spammers harvest addresses from web pages; only a server that is also the MX can close the loop.</p>\n"
	body := "<!doctype html>\n<html><head><title>bench</title></head>\n<body>\n" + strings.Repeat(para, 10240/len(para)) + "</body>\n</html>\n"
	s := newSeededSite(b, map[string]string{"index.html": body})
	for _, bc := range []struct {
		name string
		h    http.Handler
	}{{"plain", s.plain}, {"seeded", s.h}} {
		b.Run(bc.name, func(b *testing.B) {
			srv := httptest.NewServer(bc.h)
			defer srv.Close()
			c, err := net.Dial("tcp", srv.Listener.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			br := bufio.NewReader(c)
			req := []byte("GET / HTTP/1.1\r\nHost: www.example.jp\r\n\r\n")
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, err := c.Write(req); err != nil {
					b.Fatal(err)
				}
				res, err := http.ReadResponse(br, nil)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != 200 {
					b.Fatal(res.Status)
				}
			}
		})
	}
}
