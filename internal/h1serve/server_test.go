package h1serve

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestKeepAlive(t *testing.T) {
	ts := startServer(t, pathHandler, nil)
	c := dial(t, ts.addr)
	for _, p := range []string{"/a", "/b", "/c"} {
		c.send(get(p))
		r := c.read("GET")
		if r.StatusCode != 200 || r.body != p || r.fromFallback() || r.Close {
			t.Fatalf("%s: %d %q fallback=%v close=%v", p, r.StatusCode, r.body, r.fromFallback(), r.Close)
		}
	}
	if n := ts.fast.Load(); n != 3 {
		t.Errorf("Handler served %d requests, want 3", n)
	}
}

func TestPipelined(t *testing.T) {
	ts := startServer(t, pathHandler, nil)
	c := dial(t, ts.addr)
	c.send(get("/1") + get("/2") + "HEAD /3 HTTP/1.1\r\nHost: x\r\n\r\n" + get("/4"))
	for i, want := range []string{"/1", "/2", "", "/4"} {
		method := "GET"
		if i == 2 {
			method = "HEAD"
		}
		r := c.read(method)
		if r.StatusCode != 200 || r.body != want || r.fromFallback() {
			t.Fatalf("response %d: %d %q fallback=%v", i, r.StatusCode, r.body, r.fromFallback())
		}
	}
	if n := ts.fast.Load(); n != 4 {
		t.Errorf("Handler served %d requests, want 4", n)
	}
}

// The net/http client keeps its connection and the requests are served here.
func TestNetHTTPClient(t *testing.T) {
	ts := startServer(t, pathHandler, nil)
	tr := &http.Transport{MaxConnsPerHost: 1}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr}
	for _, p := range []string{"/x", "/y"} {
		res, err := cl.Get("http://" + ts.addr + p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if string(b) != p || res.Header.Get(servedBy) != "" {
			t.Fatalf("%s: %q %v", p, b, res.Header)
		}
	}
	res, err := cl.Post("http://"+ts.addr+"/post", "text/plain", strings.NewReader("data"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.Header.Get(servedBy) != "fallback" {
		t.Errorf("POST not served by Fallback")
	}
	if ts.fast.Load() != 2 || ts.fb.Load() != 1 {
		t.Errorf("fast %d fallback %d, want 2 and 1", ts.fast.Load(), ts.fb.Load())
	}
}

// Every request the fast path does not take goes to Fallback, or gets net/http's error answer.
func TestHandOff(t *testing.T) {
	long := "GET / HTTP/1.1\r\nHost: x\r\nX-Long: " + strings.Repeat("a", 12<<10) + "\r\n\r\n"
	tests := []struct {
		name     string
		req      string
		method   string // of the request, for reading the response; GET when empty
		status   int
		fallback bool   // answered by the fallback handler, else by net/http itself
		body     string // a substring of the response body
		halfOpen bool   // the client closes its side after sending
	}{
		{name: "POST with body", req: "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", status: 200, fallback: true, body: `body="hello"`},
		{name: "GET Content-Length 0", req: "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", status: 200, fallback: true},
		{name: "GET chunked body", req: "GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", status: 200, fallback: true, body: `body="abc"`},
		{name: "HTTP/1.0 without Host", req: "GET / HTTP/1.0\r\n\r\n", status: 200, fallback: true, body: "GET / HTTP/1.0"},
		{name: "absolute form", req: "GET http://example.test/abs HTTP/1.1\r\nHost: x\r\n\r\n", status: 200, fallback: true, body: "host=example.test"},
		{name: "asterisk form", req: "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", status: 200}, // net/http's own answer
		{name: "Upgrade", req: "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", status: 200, fallback: true},
		{name: "h2c upgrade", req: "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n", status: 200, fallback: true},
		{name: "Expect without body", req: "GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n", status: 200, fallback: true},
		{name: "Expect unknown", req: "GET / HTTP/1.1\r\nHost: x\r\nExpect: something\r\n\r\n", status: 417},
		{name: "bare LF", req: "GET /lf HTTP/1.1\nHost: x\n\n", status: 200, fallback: true, body: "GET /lf"},
		{name: "bare LF in the header", req: "GET /lf HTTP/1.1\r\nHost: x\nX: y\r\n\r\n", status: 200, fallback: true, body: `X=["y"]`},
		{name: "leading empty line", req: "\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", status: 400},
		{name: "head too large", req: long, status: 431},
		{name: "truncated head", req: "GET / HTTP/1.1\r\nHost: x\r\n", status: 400, halfOpen: true},
		{name: "invalid header name", req: "GET / HTTP/1.1\r\nHost: x\r\nBad Name: x\r\n\r\n", status: 400},
		{name: "invalid header value", req: "GET / HTTP/1.1\r\nHost: x\r\nX: a\x01b\r\n\r\n", status: 400},
		{name: "two Host", req: "GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", status: 400},
		{name: "no Host", req: "GET / HTTP/1.1\r\nX: y\r\n\r\n", status: 400},
		{name: "empty Host", req: "GET / HTTP/1.1\r\nHost:\r\n\r\n", status: 200, fallback: true},
		{name: "invalid Host", req: "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", status: 400},
		{name: "HTTP/1.2", req: "GET / HTTP/1.2\r\nHost: x\r\n\r\n", status: 200, fallback: true},
		{name: "HTTP/2.0", req: "GET / HTTP/2.0\r\nHost: x\r\n\r\n", status: 505},
		{name: "malformed request line", req: "GET /\r\nHost: x\r\n\r\n", status: 400},
		{name: "invalid method", req: "G(T / HTTP/1.1\r\nHost: x\r\n\r\n", status: 400},
		{name: "POST without body", req: "POST / HTTP/1.1\r\nHost: x\r\n\r\n", status: 200, fallback: true},
		{name: "HEAD Content-Length 0", req: "HEAD / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", method: "HEAD", status: 200, fallback: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, echo, func(s *Server) { s.MaxHeaderBytes = 4 << 10 })
			c := dial(t, ts.addr)
			c.send(tt.req)
			if tt.halfOpen {
				c.closeWrite()
			}
			method := tt.method
			if method == "" {
				method = "GET"
			}
			r := c.read(method)
			if r.StatusCode != tt.status || r.fromFallback() != tt.fallback || !strings.Contains(r.body, tt.body) {
				t.Errorf("got %d fallback=%v %q, want %d fallback=%v containing %q", r.StatusCode, r.fromFallback(), r.body, tt.status, tt.fallback, tt.body)
			}
			if n := ts.fast.Load(); n != 0 {
				t.Errorf("Handler called %d times", n)
			}
		})
	}
}

// A head over MaxHeaderBytes goes to net/http, whatever the reads that brought it.
func TestHeadLimit(t *testing.T) {
	const limit = 9000 // not a power of two: the buffer grows past it
	headOf := func(size int) string {
		const start = "GET / HTTP/1.1\r\nHost: x\r\nX: "
		return start + strings.Repeat("a", size-len(start)-4) + "\r\n\r\n"
	}
	tests := []struct {
		size     int
		status   int
		fallback bool
	}{
		{limit / 2, 200, false},
		{limit, 200, false},
		{limit + 1000, 200, true},  // within net/http's 4 KiB of slack
		{limit + 6000, 431, false}, // past it
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.size), func(t *testing.T) {
			ts := startServer(t, pathHandler, func(s *Server) { s.MaxHeaderBytes = limit })
			c := dial(t, ts.addr)
			c.send(headOf(tt.size))
			r := c.read("GET")
			if r.StatusCode != tt.status || r.fromFallback() != tt.fallback {
				t.Errorf("%d fallback=%v, want %d fallback=%v", r.StatusCode, r.fromFallback(), tt.status, tt.fallback)
			}
		})
	}
}

// After requests served here, the connection goes to Fallback at the first one it does not
// take, with the bytes read so far.
func TestHandOffAfterServed(t *testing.T) {
	post := "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world"
	tests := []struct {
		name   string
		writes []string
		wait   bool // read the first response before the second write
	}{
		{"one write", []string{get("/1") + post + get("/3")}, false},
		{"two writes", []string{get("/1"), post + get("/3")}, false},
		{"two writes after the answer", []string{get("/1"), post + get("/3")}, true},
		{"body in a later write", []string{get("/1") + post[:len(post)-5], post[len(post)-5:] + get("/3")}, false},
		{"head split", []string{get("/1") + post[:10], post[10:] + get("/3")}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, echo, nil)
			c := dial(t, ts.addr)
			c.send(tt.writes[0])
			var first reply
			if tt.wait {
				first = c.read("GET")
			}
			for _, w := range tt.writes[1:] {
				c.send(w)
			}
			if !tt.wait {
				first = c.read("GET")
			}
			if first.StatusCode != 200 || first.fromFallback() || !strings.HasPrefix(first.body, "GET /1 ") {
				t.Fatalf("first: %d fallback=%v %q", first.StatusCode, first.fromFallback(), first.body)
			}
			second := c.read("POST")
			if second.StatusCode != 200 || !second.fromFallback() || !strings.Contains(second.body, `body="hello world"`) {
				t.Fatalf("second: %d fallback=%v %q", second.StatusCode, second.fromFallback(), second.body)
			}
			third := c.read("GET")
			if third.StatusCode != 200 || !third.fromFallback() || !strings.HasPrefix(third.body, "GET /3 ") {
				t.Fatalf("third: %d fallback=%v %q", third.StatusCode, third.fromFallback(), third.body)
			}
			if ts.fast.Load() != 1 || ts.fb.Load() != 2 {
				t.Errorf("fast %d fallback %d, want 1 and 2", ts.fast.Load(), ts.fb.Load())
			}
		})
	}
}

// framingCase is a handler and what its response must look like on the wire.
type framingCase struct {
	name    string
	method  string
	handler http.HandlerFunc
	check   func(t *testing.T, r reply, head string)
	closes  bool // the server closes the connection after the response
}

// readHead reads a response head, keeping it as it is on the wire, then the response.
func (c *client) readHead(method string) (head string, r reply, err error) {
	for n := 1; ; n++ {
		b, err := c.br.Peek(n)
		if err != nil {
			return string(b), reply{}, err
		}
		if bytes.HasSuffix(b, []byte("\r\n\r\n")) {
			head = string(b)
			break
		}
	}
	res, err := http.ReadResponse(c.br, &http.Request{Method: method})
	if err != nil {
		return head, reply{}, err
	}
	return head, reply{Response: res}, nil
}

func TestFraming(t *testing.T) {
	big := strings.Repeat("0123456789abcdef", 200) // 3200 bytes
	// wantABC checks the three bytes a Content-Length of 3 lets through.
	wantABC := func(t *testing.T, r reply, head string) {
		if r.ContentLength != 3 || r.body != "abc" {
			t.Errorf("CL %d %q", r.ContentLength, r.body)
		}
	}
	tests := []framingCase{
		{
			name: "handler Content-Length",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", "5")
				io.WriteString(w, "hello")
			},
			check: func(t *testing.T, r reply, head string) {
				if r.ContentLength != 5 || r.TransferEncoding != nil || r.body != "hello" {
					t.Errorf("CL %d TE %v %q", r.ContentLength, r.TransferEncoding, r.body)
				}
			},
		},
		{
			name:    "small body gets a Content-Length",
			handler: func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hi"); io.WriteString(w, " there") },
			check: func(t *testing.T, r reply, head string) {
				if r.ContentLength != 8 || r.TransferEncoding != nil || r.body != "hi there" {
					t.Errorf("CL %d TE %v %q", r.ContentLength, r.TransferEncoding, r.body)
				}
			},
		},
		{
			name:    "empty body gets Content-Length 0",
			handler: func(w http.ResponseWriter, r *http.Request) {},
			check: func(t *testing.T, r reply, head string) {
				if !strings.Contains(head, "\r\nContent-Length: 0\r\n") || r.body != "" {
					t.Errorf("head %q body %q", head, r.body)
				}
			},
		},
		{
			name: "large body is chunked",
			handler: func(w http.ResponseWriter, r *http.Request) {
				for i := 0; i < len(big); i += 100 {
					io.WriteString(w, big[i:i+100])
				}
			},
			check: func(t *testing.T, r reply, head string) {
				if r.ContentLength != -1 || len(r.TransferEncoding) != 1 || r.body != big {
					t.Errorf("CL %d TE %v body of %d bytes", r.ContentLength, r.TransferEncoding, len(r.body))
				}
			},
		},
		{
			name:    "large body in one write",
			handler: func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, big) },
			check: func(t *testing.T, r reply, head string) {
				if len(r.TransferEncoding) != 1 || r.body != big {
					t.Errorf("TE %v body of %d bytes", r.TransferEncoding, len(r.body))
				}
			},
		},
		{
			name:    "HEAD",
			method:  "HEAD",
			handler: func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "some body") },
			check: func(t *testing.T, r reply, head string) {
				if r.ContentLength != 9 || r.TransferEncoding != nil {
					t.Errorf("CL %d TE %v", r.ContentLength, r.TransferEncoding)
				}
			},
		},
		{
			name:   "HEAD with the handler's Content-Length",
			method: "HEAD",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", "1000")
			},
			check: func(t *testing.T, r reply, head string) {
				if r.ContentLength != 1000 {
					t.Errorf("CL %d", r.ContentLength)
				}
			},
		},
		{
			name:    "HEAD of a large body",
			method:  "HEAD",
			handler: func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, big) },
			check: func(t *testing.T, r reply, head string) {
				if strings.Contains(head, "Content-Length") || strings.Contains(head, "Transfer-Encoding") {
					t.Errorf("head %q", head)
				}
			},
		},
		{
			name: "204",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", "3")
				w.WriteHeader(204)
				if _, err := io.WriteString(w, "abc"); err != http.ErrBodyNotAllowed {
					t.Errorf("Write: %v, want ErrBodyNotAllowed", err)
				}
			},
			check: func(t *testing.T, r reply, head string) {
				if r.StatusCode != 204 || strings.Contains(head, "Content-Length") || strings.Contains(head, "Transfer-Encoding") {
					t.Errorf("head %q", head)
				}
			},
		},
		{
			name: "304",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				w.Header().Set("Content-Length", "3")
				w.Header().Set("Etag", `"x"`)
				w.WriteHeader(304)
				if _, err := io.WriteString(w, "abc"); err != http.ErrBodyNotAllowed {
					t.Errorf("Write: %v, want ErrBodyNotAllowed", err)
				}
			},
			check: func(t *testing.T, r reply, head string) {
				if r.StatusCode != 304 || r.Header.Get("Etag") != `"x"` || strings.Contains(head, "Content-") || strings.Contains(head, "Transfer-Encoding") {
					t.Errorf("head %q", head)
				}
			},
		},
		{
			name: "sniffed Content-Type",
			handler: func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "<html><body>hi</body></html>")
			},
			check: func(t *testing.T, r reply, head string) {
				if ct := r.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
					t.Errorf("Content-Type %q", ct)
				}
			},
		},
		{
			name: "Content-Type sniffed from a large write",
			handler: func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "<html>"+big)
			},
			check: func(t *testing.T, r reply, head string) {
				if ct := r.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" || len(r.TransferEncoding) != 1 {
					t.Errorf("head %q", head)
				}
			},
		},
		{
			name: "Content-Type sniffed from the held body and a large write",
			handler: func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "plain text, then ")
				io.WriteString(w, "\x00"+big)
			},
			check: func(t *testing.T, r reply, head string) {
				if ct := r.Header.Get("Content-Type"); ct != "application/octet-stream" {
					t.Errorf("head %q", head)
				}
			},
		},
		{
			name: "no sniffing with a Content-Encoding",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Encoding", "gzip")
				io.WriteString(w, "<html>")
			},
			check: func(t *testing.T, r reply, head string) {
				if _, ok := r.Header["Content-Type"]; ok {
					t.Errorf("head %q", head)
				}
			},
		},
		{
			name: "the handler's Content-Type",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/x-test")
				io.WriteString(w, "<html>")
			},
			check: func(t *testing.T, r reply, head string) {
				if ct := r.Header.Values("Content-Type"); len(ct) != 1 || ct[0] != "application/x-test" {
					t.Errorf("Content-Type %q", ct)
				}
			},
		},
		{
			name:    "Date",
			handler: func(w http.ResponseWriter, r *http.Request) {},
			check: func(t *testing.T, r reply, head string) {
				d, err := http.ParseTime(r.Header.Get("Date"))
				if err != nil || time.Since(d) > time.Minute || time.Until(d) > time.Minute {
					t.Errorf("Date %q: %v", r.Header.Get("Date"), err)
				}
			},
		},
		{
			name:    "the handler's Date",
			handler: func(w http.ResponseWriter, r *http.Request) { w.Header().Set("Date", "yesterday") },
			check: func(t *testing.T, r reply, head string) {
				if d := r.Header.Values("Date"); len(d) != 1 || d[0] != "yesterday" {
					t.Errorf("Date %q", d)
				}
			},
		},
		{
			name: "CR and LF in a value",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Evil", "a\r\nX-Injected: 1\nb\rc")
			},
			check: func(t *testing.T, r reply, head string) {
				if _, ok := r.Header["X-Injected"]; ok || r.Header.Get("X-Evil") != "a  X-Injected: 1 b c" {
					t.Errorf("head %q", head)
				}
			},
		},
		{
			name: "invalid header name",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header()["X-Bad\r\nX-Injected"] = []string{"1"}
				w.Header()["Bad Name"] = []string{"1"}
			},
			check: func(t *testing.T, r reply, head string) {
				if strings.Contains(head, "Injected") || strings.Contains(head, "Bad") {
					t.Errorf("head %q", head)
				}
			},
		},
		{
			name: "declared trailers",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Trailer", "X-Sum, X-Count")
				io.WriteString(w, "data")
				w.Header().Set("X-Sum", "abc")
				w.Header().Set("X-Count", "1")
			},
			check: func(t *testing.T, r reply, head string) {
				if len(r.TransferEncoding) != 1 || r.body != "data" || r.Trailer.Get("X-Sum") != "abc" || r.Trailer.Get("X-Count") != "1" {
					t.Errorf("TE %v %q trailer %v", r.TransferEncoding, r.body, r.Trailer)
				}
			},
		},
		{
			name: "TrailerPrefix trailers",
			handler: func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "data")
				w.(http.Flusher).Flush()
				w.Header().Set(http.TrailerPrefix+"X-Late", "yes")
			},
			check: func(t *testing.T, r reply, head string) {
				if r.body != "data" || r.Trailer.Get("X-Late") != "yes" || strings.Contains(head, "X-Late") {
					t.Errorf("%q trailer %v head %q", r.body, r.Trailer, head)
				}
			},
		},
		{
			name: "fields that may not be trailers",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Trailer", "Content-Type, Content-Length, X-Ok")
				w.Header().Set("Content-Type", "text/css")
				w.Header().Set("Content-Length", "4")
				io.WriteString(w, "data")
				w.Header().Set("X-Ok", "1")
			},
			check: func(t *testing.T, r reply, head string) {
				if r.Header.Get("Content-Type") != "text/css" || r.ContentLength != 4 || r.body != "data" {
					t.Errorf("head %q body %q", head, r.body)
				}
			},
		},
		{
			name: "trailer names not valid",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Trailer", "Bad Name")
				io.WriteString(w, "data")
				w.Header()["Bad Name"] = []string{"1"}
				w.Header()[http.TrailerPrefix+"X-Bad\r\nX-Injected"] = []string{"1"}
				w.Header().Set(http.TrailerPrefix+"X-Good", "a\r\nb")
			},
			check: func(t *testing.T, r reply, head string) {
				// "Bad Name" is in r.Trailer as announced, without a value.
				if r.body != "data" || len(r.Trailer["Bad Name"]) != 0 || r.Trailer.Get("X-Good") != "a  b" || len(r.Trailer) != 2 {
					t.Errorf("%q trailer %q", r.body, r.Trailer)
				}
			},
		},
		{
			name: "handler Connection: close",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Connection", "close")
			},
			check: func(t *testing.T, r reply, head string) {
				if !r.Close {
					t.Errorf("head %q", head)
				}
			},
			closes: true,
		},
		{
			name: "less than the Content-Length",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", "10")
				io.WriteString(w, "short")
			},
			check: func(t *testing.T, r reply, head string) {
				if r.ContentLength != 10 {
					t.Errorf("head %q", head)
				}
			},
			closes: true,
		},
		{
			name: "more than the Content-Length",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", "3")
				if _, err := io.WriteString(w, big); err != http.ErrContentLength {
					t.Errorf("Write: %v, want ErrContentLength", err)
				}
				io.WriteString(w, "abc")
			},
			check: wantABC,
		},
		{
			name: "more than the Content-Length, held back",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", "3")
				if _, err := io.WriteString(w, "hello"); err != http.ErrContentLength {
					t.Errorf("Write: %v, want ErrContentLength", err)
				}
				io.WriteString(w, "ab")
				if _, err := io.WriteString(w, "cd"); err != http.ErrContentLength {
					t.Errorf("Write: %v, want ErrContentLength", err)
				}
				io.WriteString(w, "c")
			},
			check: wantABC,
		},
		{
			name: "header changed after WriteHeader",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Early", "1")
				io.WriteString(w, "hello")
				w.Header().Set("Content-Length", "99")
				w.Header().Set("X-Late", "1")
				w.Header().Del("X-Early")
			},
			check: func(t *testing.T, r reply, head string) {
				if r.ContentLength != 5 || r.body != "hello" || r.Header.Get("X-Late") != "" || r.Header.Get("X-Early") != "1" {
					t.Errorf("head %q body %q", head, r.body)
				}
			},
		},
		{
			name: "header held from before WriteHeader",
			handler: func(w http.ResponseWriter, r *http.Request) {
				h := w.Header()
				h.Set("Trailer", "X-Sum")
				w.WriteHeader(200)
				h.Set("X-Late", "1")
				io.WriteString(w, "data")
				h.Set("X-Sum", "abc")
			},
			check: func(t *testing.T, r reply, head string) {
				if r.body != "data" || r.Header.Get("X-Late") != "" || r.Header.Get("X-Sum") != "" || r.Trailer.Get("X-Sum") != "abc" {
					t.Errorf("head %q body %q trailer %v", head, r.body, r.Trailer)
				}
			},
		},
		{
			name: "status code without text",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(599)
			},
			check: func(t *testing.T, r reply, head string) {
				if !strings.HasPrefix(head, "HTTP/1.1 599 status code 599\r\n") {
					t.Errorf("head %q", head)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runFraming(t, tt)
		})
	}
}

// runFraming sends the case's request then a GET, and checks both responses: the second
// proves the first was framed right.
func runFraming(t *testing.T, tt framingCase) {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/case", tt.handler)
	mux.HandleFunc("/next", pathHandler)
	ts := startServer(t, mux, nil)
	c := dial(t, ts.addr)
	method := tt.method
	if method == "" {
		method = "GET"
	}
	c.send(method + " /case HTTP/1.1\r\nHost: x\r\n\r\n" + get("/next"))
	head, r, err := c.readHead(method)
	if err != nil {
		t.Fatalf("reading the head: %v (%q)", err, head)
	}
	b, err := io.ReadAll(r.Body)
	if err != nil && !tt.closes {
		t.Fatalf("reading the body: %v", err)
	}
	r.body = string(b)
	if r.fromFallback() {
		t.Error("served by Fallback")
	}
	tt.check(t, r, head)
	if tt.closes {
		c.expectClosed()
		return
	}
	next := c.read("GET")
	if next.body != "/next" {
		t.Errorf("next response: %d %q", next.StatusCode, next.body)
	}
}

func TestInterimResponse(t *testing.T) {
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Set("X-Final", "1")
		io.WriteString(w, "final")
	}), nil)
	c := dial(t, ts.addr)
	c.send(get("/") + get("/"))
	for range 2 {
		early := c.read("GET")
		if early.StatusCode != 103 || early.Header.Get("Link") == "" || early.Header.Get("X-Final") != "" || early.Header.Get("Date") != "" {
			t.Fatalf("interim: %d %v", early.StatusCode, early.Header)
		}
		final := c.read("GET")
		if final.StatusCode != 200 || final.Header.Get("Link") == "" || final.Header.Get("X-Final") != "1" || final.body != "final" {
			t.Fatalf("final: %d %v %q", final.StatusCode, final.Header, final.body)
		}
	}
}

// Flush sends the head and the body so far while the handler still runs.
func TestFlush(t *testing.T) {
	release := make(chan struct{})
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first;")
		w.(http.Flusher).Flush()
		<-release
		io.WriteString(w, "second")
	}), nil)
	c := dial(t, ts.addr)
	c.send(get("/"))
	res, err := http.ReadResponse(c.br, nil)
	if err != nil {
		close(release)
		t.Fatal(err)
	}
	buf := make([]byte, len("first;"))
	_, err = io.ReadFull(res.Body, buf)
	close(release)
	if err != nil || string(buf) != "first;" {
		t.Fatalf("before the handler returned: %q %v", buf, err)
	}
	rest, err := io.ReadAll(res.Body)
	if err != nil || string(rest) != "second" || len(res.TransferEncoding) != 1 {
		t.Fatalf("rest %q %v, TE %v", rest, err, res.TransferEncoding)
	}
}

// Flush before anything written sends the head alone.
func TestFlushEmpty(t *testing.T) {
	release := make(chan struct{})
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-A", "1")
		w.(http.Flusher).Flush()
		<-release
	}), nil)
	c := dial(t, ts.addr)
	c.send(get("/"))
	res, err := http.ReadResponse(c.br, nil)
	close(release)
	if err != nil || res.Header.Get("X-A") != "1" {
		t.Fatalf("%v %v", err, res)
	}
	if b, err := io.ReadAll(res.Body); err != nil || len(b) != 0 {
		t.Fatalf("%q %v", b, err)
	}
}

func TestConnectionClose(t *testing.T) {
	closer := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		io.WriteString(w, r.URL.Path)
	})
	tests := []struct {
		name    string
		handler http.Handler
		req     string
	}{
		{"client", pathHandler, "GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"},
		{"client token", pathHandler, "GET /a HTTP/1.1\r\nHost: x\r\nConnection: foo, Close\r\n\r\n"},
		{"handler", closer, get("/a")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, tt.handler, nil)
			c := dial(t, ts.addr)
			c.send(tt.req + get("/b"))
			head, r, err := c.readHead("GET")
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(r.Body)
			if err != nil || string(b) != "/a" || !r.Close || !strings.Contains(head, "\r\nConnection: close\r\n") || r.fromFallback() {
				t.Fatalf("%q %v, head %q", b, err, head)
			}
			c.expectClosed()
			if n := ts.fast.Load(); n != 1 {
				t.Errorf("Handler called %d times", n)
			}
		})
	}
}

func TestPanic(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		head    bool // the head was flushed before the panic
	}{
		{"before writing", func(w http.ResponseWriter, r *http.Request) { panic("boom") }, false},
		{"after a write", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "partial")
			panic("boom")
		}, false},
		{"after a flush", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "partial")
			w.(http.Flusher).Flush()
			panic("boom")
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mux := http.NewServeMux()
			mux.HandleFunc("/panic", tt.handler)
			mux.HandleFunc("/", pathHandler)
			ts := startServer(t, mux, nil)
			c := dial(t, ts.addr)
			c.send(get("/panic") + get("/after"))
			if tt.head {
				r, err := c.tryRead("GET")
				if err == nil {
					t.Fatalf("complete response %d %q", r.StatusCode, r.body)
				}
			}
			c.expectClosed()
			if msgs := ts.logs.messages(); len(msgs) != 1 || !strings.Contains(msgs[0], "boom") {
				t.Errorf("logged %q", msgs)
			}
			c2 := dial(t, ts.addr)
			c2.send(get("/after"))
			if r := c2.read("GET"); r.body != "/after" {
				t.Errorf("next connection: %d %q", r.StatusCode, r.body)
			}
		})
	}
}

// http.ErrAbortHandler closes the connection and is not logged, as with net/http.
func TestAbortHandler(t *testing.T) {
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "partial")
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}), nil)
	c := dial(t, ts.addr)
	c.send(get("/"))
	if r, err := c.tryRead("GET"); err == nil {
		t.Fatalf("complete response %d %q", r.StatusCode, r.body)
	}
	c.expectClosed()
	if msgs := ts.logs.messages(); len(msgs) != 0 {
		t.Errorf("logged %q", msgs)
	}
}

func TestIdleTimeout(t *testing.T) {
	ts := startServer(t, pathHandler, func(s *Server) {
		s.IdleTimeout = 100 * time.Millisecond
	})
	c := dial(t, ts.addr)
	c.nc.SetDeadline(time.Now().Add(3 * time.Second))
	c.send(get("/a"))
	if r := c.read("GET"); r.body != "/a" {
		t.Fatalf("%q", r.body)
	}
	start := time.Now()
	c.expectClosed()
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("closed after %v", d)
	}
}

func TestReadHeaderTimeout(t *testing.T) {
	for _, tt := range []struct {
		name  string
		first string // a request served before the half head
	}{{"first request", ""}, {"second request", get("/a")}} {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, pathHandler, func(s *Server) {
				s.ReadHeaderTimeout = 100 * time.Millisecond
				s.IdleTimeout = 5 * time.Second
			})
			c := dial(t, ts.addr)
			c.nc.SetDeadline(time.Now().Add(3 * time.Second))
			if tt.first != "" {
				c.send(tt.first)
				c.read("GET")
			}
			c.send("GET / HTTP/1.1\r\nHost: x\r\n")
			c.expectClosed()
			if n := ts.fb.Load(); n != 0 {
				t.Errorf("Fallback served %d requests", n)
			}
		})
	}
}

// Without ReadHeaderTimeout, a head has no time limit, even begun near the end of an idle wait.
func TestNoReadHeaderTimeout(t *testing.T) {
	const idle = 200 * time.Millisecond
	ts := startServer(t, pathHandler, func(s *Server) {
		s.ReadHeaderTimeout = 0
		s.IdleTimeout = idle
	})
	c := dial(t, ts.addr)
	c.send(get("/a"))
	c.read("GET")
	c.send("GET /b HTTP/1.1\r\n")
	time.Sleep(2 * idle) // a slow client
	c.send("Host: x\r\n\r\n")
	if r := c.read("GET"); r.body != "/b" || r.fromFallback() {
		t.Errorf("%d %q", r.StatusCode, r.body)
	}
}

func TestWriteTimeout(t *testing.T) {
	errc := make(chan error, 1)
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := []byte(strings.Repeat("x", 64<<10))
		for {
			if _, err := w.Write(chunk); err != nil {
				errc <- err
				return
			}
		}
	}), func(s *Server) { s.WriteTimeout = 100 * time.Millisecond })
	c := dial(t, ts.addr)
	c.send(get("/")) // and never read
	select {
	case err := <-errc:
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("Write: %v, want a timeout", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Write did not fail")
	}
}

// A handler streaming to a client that went away sees its writes fail.
func TestWriteAfterClientLeft(t *testing.T) {
	errc := make(chan error, 1)
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := []byte(strings.Repeat("x", 4<<10))
		for {
			if _, err := w.Write(chunk); err != nil {
				errc <- err
				return
			}
		}
	}), nil)
	c := dial(t, ts.addr)
	c.send(get("/"))
	if _, err := http.ReadResponse(c.br, nil); err != nil {
		t.Fatal(err)
	}
	c.nc.Close()
	select {
	case err := <-errc:
		if err == nil {
			t.Error("no error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Write did not fail")
	}
}

func TestShutdownIdle(t *testing.T) {
	ts := startServer(t, pathHandler, nil)
	c := dial(t, ts.addr)
	c.send(get("/a"))
	c.read("GET")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := ts.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Shutdown took %v", d)
	}
	c.expectClosed()
	select {
	case err := <-ts.done:
		ts.done <- err // for the cleanup
		if err != ErrServerClosed {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
	if _, err := net.DialTimeout("tcp", ts.addr, time.Second); err == nil {
		t.Error("still accepting")
	}
}

func TestShutdownBusy(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		io.WriteString(w, "done")
	}), nil)
	c := dial(t, ts.addr)
	c.send(get("/"))
	<-entered
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		shut <- ts.Shutdown(ctx)
	}()
	select {
	case err := <-shut:
		close(release)
		t.Fatalf("Shutdown returned %v with a request in progress", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	r := c.read("GET")
	if r.StatusCode != 200 || r.body != "done" || !r.Close {
		t.Fatalf("%d %q close=%v", r.StatusCode, r.body, r.Close)
	}
	c.expectClosed()
	select {
	case err := <-shut:
		if err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not return")
	}
}

// A connection accepted before Shutdown gets its first request served, as with net/http.
func TestShutdownNewConnection(t *testing.T) {
	ts := startServer(t, pathHandler, nil)
	c := dial(t, ts.addr)
	waitFor(t, "the connection", func() bool { return ts.connections() == 1 })
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		shut <- ts.Shutdown(ctx)
	}()
	waitFor(t, "Shutdown", ts.closing)
	c.send(get("/a"))
	r := c.read("GET")
	if r.body != "/a" || !r.Close {
		t.Errorf("%q close=%v", r.body, r.Close)
	}
	c.expectClosed()
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

// A connection being handed over when Shutdown starts gets its answer from Fallback.
func TestShutdownDuringHandOff(t *testing.T) {
	gate := make(chan struct{})
	var accepted atomic.Int32
	ts := startServer(t, pathHandler, func(s *Server) {
		s.Fallback.ConnState = func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew && accepted.Add(1) == 1 {
				<-gate // and Fallback accepts nothing more
			}
		}
	})
	release := sync.OnceFunc(func() { close(gate) })
	t.Cleanup(release) // before the server's: net/http's Shutdown waits for its Serve
	a := dial(t, ts.addr)
	a.send("GET /a HTTP/1.1\nHost: x\n\n") // bare LF: handed over
	waitFor(t, "Fallback accepting the first connection", func() bool { return accepted.Load() == 1 })
	b := dial(t, ts.addr)
	b.send("GET /b HTTP/1.1\nHost: x\n\n")
	waitFor(t, "the second connection waiting for Fallback", func() bool {
		ts.mu.Lock()
		defer ts.mu.Unlock()
		for c := range ts.conns {
			if !c.idle {
				return true
			}
		}
		return false
	})
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		shut <- ts.Shutdown(ctx)
	}()
	waitFor(t, "Shutdown", ts.closing)
	release()
	for _, c := range []*client{a, b} {
		if r, err := c.tryRead("GET"); err != nil || !r.fromFallback() {
			t.Errorf("%v %q", err, r.body)
		}
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

func TestShutdownExpired(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
	}), nil)
	c := dial(t, ts.addr)
	c.send(get("/"))
	<-entered
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := ts.Shutdown(ctx); err != context.Canceled {
		t.Errorf("Shutdown: %v, want context.Canceled", err)
	}
	c.expectClosed()
}

// flakyListener fails its first Accept with a temporary error.
type flakyListener struct {
	net.Listener
	failed bool
}

func (l *flakyListener) Accept() (net.Conn, error) {
	if !l.failed {
		l.failed = true
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

// Out of file descriptors, Serve waits and accepts again, as net/http.
func TestAcceptTemporaryError(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Handler: pathHandler, Fallback: &http.Server{Handler: pathHandler}}
	done := make(chan error, 1)
	go func() { done <- s.Serve(&flakyListener{Listener: l}) }()
	c := dial(t, l.Addr().String())
	c.send(get("/a"))
	if r, err := c.tryRead("GET"); err != nil || r.body != "/a" {
		t.Errorf("%v %q", err, r.body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.Shutdown(ctx)
	if err := <-done; err != ErrServerClosed {
		t.Errorf("Serve: %v", err)
	}
}

func TestServeAfterShutdown(t *testing.T) {
	s := &Server{Handler: pathHandler, Fallback: &http.Server{}}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(l); err != ErrServerClosed {
		t.Errorf("Serve: %v", err)
	}
	if _, err := l.Accept(); err == nil {
		t.Error("listener not closed")
	}
}

// The request's context ends when the handler returns, the connection staying open.
func TestRequestContextEnds(t *testing.T) {
	ctxs := make(chan context.Context, 1)
	errs := make(chan error, 1)
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		errs <- r.Context().Err()
		ctxs <- r.Context()
	}), nil)
	c := dial(t, ts.addr)
	for range 2 {
		c.send(get("/"))
		c.read("GET")
		if err := <-errs; err != nil {
			t.Errorf("the context in the handler: %v", err)
		}
		select {
		case <-(<-ctxs).Done():
		case <-time.After(5 * time.Second):
			t.Fatal("the request's context did not end")
		}
	}
}

// The request carries what net/http's server sets.
func TestRequest(t *testing.T) {
	got := make(chan *http.Request, 1)
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r
	}), nil)
	c := dial(t, ts.addr)
	c.send("GET /p?q=1 HTTP/1.1\r\nHost: example.test:80\r\nX-A: 1\r\nX-A: 2\r\n\r\n")
	c.read("GET")
	r := <-got
	if r.Host != "example.test:80" || r.URL.Path != "/p" || r.URL.RawQuery != "q=1" || r.RequestURI != "/p?q=1" {
		t.Errorf("host %q url %v uri %q", r.Host, r.URL, r.RequestURI)
	}
	if _, ok := r.Header["Host"]; ok || len(r.Header["X-A"]) != 2 {
		t.Errorf("header %v", r.Header)
	}
	if r.RemoteAddr != c.nc.LocalAddr().String() {
		t.Errorf("RemoteAddr %q, want %q", r.RemoteAddr, c.nc.LocalAddr())
	}
	if la, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr); la == nil || la.String() != ts.addr {
		t.Errorf("LocalAddrContextKey %v", la)
	}
	if srv, _ := r.Context().Value(http.ServerContextKey).(*http.Server); srv != ts.Fallback {
		t.Errorf("ServerContextKey %v", srv)
	}
	if r.Body != http.NoBody || r.ContentLength != 0 || r.Close {
		t.Errorf("body %v CL %d close %v", r.Body, r.ContentLength, r.Close)
	}
}

// A file served with io.Copy (http.ServeContent) arrives whole through ReadFrom, with the
// framing net/http gives it: a Content-Length from ServeContent, chunks for a reader of
// unknown length, no body for HEAD; more than the Content-Length is refused.
func TestReadFrom(t *testing.T) {
	content := bytes.Repeat([]byte("0123456789abcdef"), 100<<10/16) // 100 KiB
	path := filepath.Join(t.TempDir(), "f.txt")
	if err := os.WriteFile(path, content, 0o644); err != nil {
		t.Fatal(err)
	}
	copyErr := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/file":
			f, err := os.Open(path)
			if err != nil {
				t.Error(err)
				return
			}
			defer f.Close()
			http.ServeContent(w, r, "f.txt", time.Time{}, f)
		case "/stream":
			io.Copy(w, bytes.NewReader(content)) // no length known: chunked
		case "/long":
			w.Header().Set("Content-Length", "1000")
			_, err := io.Copy(w, bytes.NewReader(content))
			copyErr <- err
		}
	})
	ts := startServer(t, h, nil)
	c := dial(t, ts.addr)
	for _, path := range []string{"/file", "/stream"} {
		c.send(get(path))
		r := c.read("GET")
		if r.fromFallback() || r.body != string(content) {
			t.Fatalf("%s: fallback %v, %d bytes, want the %d of the file", path, r.fromFallback(), len(r.body), len(content))
		}
		if want := path == "/stream"; (len(r.TransferEncoding) > 0) != want {
			t.Errorf("%s: Transfer-Encoding %q", path, r.TransferEncoding)
		}
		if r.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
			t.Errorf("%s: Content-Type %q", path, r.Header.Get("Content-Type"))
		}
	}
	c.send("HEAD /file HTTP/1.1\r\nHost: example.test\r\n\r\n")
	if r := c.read("HEAD"); r.body != "" || r.ContentLength != int64(len(content)) {
		t.Errorf("HEAD: %d bytes of body, Content-Length %d", len(r.body), r.ContentLength)
	}
	c.send(get("/long"))
	if err := <-copyErr; !errors.Is(err, http.ErrContentLength) {
		t.Errorf("copying past the Content-Length: %v, want http.ErrContentLength", err)
	}
}

// HTTP/1.0 requests are served here too: kept alive when the client asks and the body has
// a length, closed after the answer otherwise.
func TestHTTP10(t *testing.T) {
	ts := startServer(t, pathHandler, nil)
	c := dial(t, ts.addr)
	for _, p := range []string{"/a", "/b"} {
		c.send("GET " + p + " HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n")
		r := c.read("GET")
		if r.fromFallback() || r.body != p || r.Header.Get("Connection") != "keep-alive" || r.Proto != "HTTP/1.0" {
			t.Fatalf("%s: fallback %v, body %q, Connection %q, %s", p, r.fromFallback(), r.body, r.Header.Get("Connection"), r.Proto)
		}
	}
	c.send("GET /c HTTP/1.0\r\nHost: x\r\n\r\n")
	if r := c.read("GET"); r.fromFallback() || r.body != "/c" {
		t.Fatalf("fallback %v, body %q", r.fromFallback(), r.body)
	}
	c.expectClosed()
	if n := ts.fast.Load(); n != 3 {
		t.Errorf("Handler answered %d requests, want 3", n)
	}
}
