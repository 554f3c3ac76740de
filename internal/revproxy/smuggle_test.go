package revproxy

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/testenv"
)

// Request smuggling payloads sent through the proxy never reach the backend as a second
// request: the backend sees at most the one request each payload declares, never /smuggled.
func TestSmuggling(t *testing.T) {
	const smuggled = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
	tests := []struct{ name, payload string }{
		{"CL.TE", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled},
		{"TE.CL", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n" +
			fmt.Sprintf("%x\r\n", len(smuggled)) + smuggled + "\r\n0\r\n\r\n"},
		{"duplicate Content-Length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 37\r\n\r\n" + smuggled},
		{"Content-Length list", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0, 37\r\n\r\n" + smuggled},
		{"obs-fold Transfer-Encoding", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 37\r\nTransfer-Encoding:\r\n chunked\r\n\r\n" + smuggled},
		{"obs-fold header", "POST / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\nContent-Length: 37\r\n\r\n" + smuggled},
		{"chunked not last", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\nContent-Length: 37\r\n\r\n" + smuggled},
		{"xchunked", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\nContent-Length: 0\r\n\r\n" + smuggled},
		{"space before colon", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\nContent-Length: 0\r\n\r\n" + smuggled},
		{"bare LF chunk", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\n\n" + smuggled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var seen []string
			backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				mu.Lock()
				seen = append(seen, r.Method+" "+r.URL.Path+" "+string(body))
				mu.Unlock()
				io.WriteString(w, "ok")
			}))
			defer backend.Close()
			rt, err := New(Options{Upstreams: []string{backend.Listener.Addr().String()}}, Deps{Logger: testenv.Logger(t)})
			if err != nil {
				t.Fatal(err)
			}
			var handled []string // what the proxy took as requests
			front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				handled = append(handled, r.Method+" "+r.URL.Path)
				mu.Unlock()
				rt.ServeHTTP(w, r)
			}))
			defer front.Close()
			c, err := net.Dial("tcp", front.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			io.WriteString(c, tc.payload)
			// Every answer, until the proxy closes or has nothing more to say (a half-close
			// would end the requests' contexts).
			c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			answer, _ := io.ReadAll(c)
			c.Close()
			front.Close() // waits for the requests under way
			mu.Lock()
			defer mu.Unlock()
			status, _, _ := strings.Cut(string(answer), "\r\n")
			t.Logf("first answer %q; proxy handled %q; backend saw %q", status, handled, seen)
			// Proxy and backend agree on where each request ends: the backend sees exactly
			// the requests the proxy forwarded, in order, never one hidden in a body.
			if len(seen) > len(handled) {
				t.Fatalf("backend saw %d requests, the proxy handled %d", len(seen), len(handled))
			}
			for i, s := range seen {
				if reqLine, _, _ := strings.Cut(s, " ?"); !strings.HasPrefix(s, handled[i]+" ") {
					t.Errorf("backend request %d %q is not the proxy's %q", i, reqLine, handled[i])
				}
			}
		})
	}
}
