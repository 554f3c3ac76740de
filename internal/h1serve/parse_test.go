package h1serve

import (
	"bufio"
	"net/http"
	"strings"
	"testing"
)

func TestTakes(t *testing.T) {
	tests := []struct {
		name string
		req  string
		want bool
	}{
		{"GET", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", true},
		{"HEAD", "HEAD /a?b=c HTTP/1.1\r\nHost: x:80\r\n\r\n", true},
		{"GET with headers", "GET /a HTTP/1.1\r\nHost: x\r\nAccept: */*\r\nConnection: close\r\nCookie: a=b\r\n\r\n", true},
		{"double slash", "GET //a HTTP/1.1\r\nHost: x\r\n\r\n", true},
		{"Connection: Upgrade alone", "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n\r\n", true},
		{"POST", "POST / HTTP/1.1\r\nHost: x\r\n\r\n", false},
		{"OPTIONS", "OPTIONS / HTTP/1.1\r\nHost: x\r\n\r\n", false},
		{"lower-case get", "get / HTTP/1.1\r\nHost: x\r\n\r\n", false},
		{"CONNECT", "CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n", false},
		{"HTTP/1.0", "GET / HTTP/1.0\r\nHost: x\r\n\r\n", true},
		{"HTTP/1.0 without Host", "GET / HTTP/1.0\r\n\r\n", false},
		{"HTTP/1.2", "GET / HTTP/1.2\r\nHost: x\r\n\r\n", false},
		{"absolute form", "GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n", false},
		{"asterisk", "GET * HTTP/1.1\r\nHost: x\r\n\r\n", false},
		{"Content-Length 0", "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", false},
		{"Content-Length", "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n", false},
		{"chunked", "GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", false},
		{"Upgrade", "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", false},
		{"Expect", "GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n", false},
		{"HTTP2-Settings", "GET / HTTP/1.1\r\nHost: x\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n", false},
		{"no Host", "GET / HTTP/1.1\r\nX: y\r\n\r\n", false},
		{"empty Host", "GET / HTTP/1.1\r\nHost:\r\n\r\n", false},
		{"invalid Host", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(tt.req)))
			if err != nil {
				t.Fatalf("ReadRequest: %v", err)
			}
			if got := takes(req, false); got != tt.want {
				t.Errorf("takes = %v, want %v", got, tt.want)
			}
		})
	}
}

// takes refuses what http.ReadRequest cannot produce but a caller could.
func TestTakesBuiltRequests(t *testing.T) {
	base := func() *http.Request {
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader("GET / HTTP/1.1\r\nHost: x\r\n\r\n")))
		if err != nil {
			t.Fatal(err)
		}
		return req
	}
	if !takes(base(), false) {
		t.Fatal("the base request is refused")
	}
	tests := []struct {
		name   string
		change func(r *http.Request)
	}{
		{"invalid header name", func(r *http.Request) { r.Header["Bad Name"] = []string{"x"} }},
		{"CR in a value", func(r *http.Request) { r.Header["X"] = []string{"a\rb"} }},
		{"NUL in a value", func(r *http.Request) { r.Header["X"] = []string{"a\x00b"} }},
		{"DEL in a value", func(r *http.Request) { r.Header["X"] = []string{"a\x7fb"} }},
		{"invalid Host byte", func(r *http.Request) { r.Host = "a\x7fb" }},
		{"a body", func(r *http.Request) { r.Body = http.NoBody; r.ContentLength = -1 }},
		{"a transfer encoding", func(r *http.Request) { r.TransferEncoding = []string{"chunked"} }},
		{"HTTP/2", func(r *http.Request) { r.ProtoMajor, r.ProtoMinor = 2, 0 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := base()
			tt.change(r)
			if takes(r, false) {
				t.Error("taken")
			}
		})
	}
}

func TestHeadEnd(t *testing.T) {
	const head = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
	tests := []struct {
		name    string
		b       string
		from    int
		end     int
		ok, odd bool
	}{
		{"whole head", head, 0, len(head), true, false},
		{"head and more", head + "GET /next", 0, len(head), true, false},
		{"two heads", head + head, 0, len(head), true, false},
		{"request line only", "GET / HTTP/1.1\r\n", 0, len("GET / HTTP/1.1\r\n"), false, false},
		{"no line end", "GET / HT", 0, len("GET / HT"), false, false},
		{"empty", "", 0, 0, false, false},
		{"ends in CR", head[:len(head)-1], 0, len(head) - 1, false, false},
		{"ends in CRLFCR", head[:len(head)-1], 10, len(head) - 1, false, false},
		{"last LF from the end", head, len(head) - 1, len(head), true, false},
		{"last CRLF from the end", head, len(head) - 2, len(head), true, false},
		{"bare LF request line", "GET / HTTP/1.1\nHost: x\r\n\r\n", 0, 0, false, true},
		{"bare LF header", "GET / HTTP/1.1\r\nHost: x\n\r\n", 0, 0, false, true},
		{"bare LF empty line", "GET / HTTP/1.1\r\nHost: x\r\n\n", 0, 0, false, true},
		{"LF first", "\nGET / HTTP/1.1\r\n\r\n", 0, 0, false, true},
		{"leading empty line", "\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", 0, 0, false, true},
		{"CR CR LF", "GET / HTTP/1.1\r\nHost: x\r\r\n", 0, len("GET / HTTP/1.1\r\nHost: x\r\r\n"), false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			end, ok, odd := headEnd([]byte(tt.b), tt.from)
			if odd != tt.odd || ok != tt.ok || (!odd && end != tt.end) {
				t.Errorf("headEnd = %d, %v, %v; want %d, %v, %v", end, ok, odd, tt.end, tt.ok, tt.odd)
			}
		})
	}
}

// A head arriving a few bytes at a time is found where it ends, whatever the cuts.
func TestHeadEndSplit(t *testing.T) {
	const head = "GET /a HTTP/1.1\r\nHost: x\r\nX: y\r\n\r\n"
	const more = "GET /b"
	for step := 1; step <= len(head); step++ {
		data := []byte(head + more)
		scanned, found := 0, -1
		for n := step; ; n += step {
			n = min(n, len(data))
			end, ok, odd := headEnd(data[:n], scanned)
			if odd {
				t.Fatalf("step %d: odd at %d", step, n)
			}
			if ok {
				found = end
				break
			}
			if n == len(data) {
				break
			}
			scanned = end
		}
		if found != len(head) {
			t.Errorf("step %d: head found at %d, want %d", step, found, len(head))
		}
	}
}

// With AbsoluteForm, a target in absolute form with a Host field is served here, with the
// same answer net/http gives; without the field (HTTP/1.1 requires one) or without
// AbsoluteForm, net/http answers.
func TestAbsoluteForm(t *testing.T) {
	tests := []struct {
		name         string
		absolute     bool
		req          string
		wantFast     bool
		wantStatus   int
		wantInAnswer string
	}{
		{"taken", true, "GET http://origin.test/a?b=c HTTP/1.1\r\nHost: origin.test\r\n\r\n", true, 200, "GET http://origin.test/a?b=c HTTP/1.1\nhost=origin.test\n"},
		{"host field in other case", true, "GET http://origin.test/ HTTP/1.1\r\nhOsT: other\r\n\r\n", true, 200, "host=origin.test\n"},
		{"no Host field", true, "GET http://origin.test/ HTTP/1.1\r\nX-Host: origin.test\r\n\r\n", false, 400, ""},
		{"not asked for", false, "GET http://origin.test/ HTTP/1.1\r\nHost: origin.test\r\n\r\n", false, 200, "host=origin.test\n"},
		{"origin form still taken", true, "GET /a HTTP/1.1\r\nHost: site.test\r\n\r\n", true, 200, "host=site.test\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, echo, func(s *Server) { s.AbsoluteForm = tt.absolute })
			c := dial(t, ts.addr)
			c.send(tt.req)
			r := c.read("GET")
			if r.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d", r.StatusCode, tt.wantStatus)
			}
			if got := ts.fast.Load() == 1; got != tt.wantFast {
				t.Errorf("served by Handler: %v, want %v (fallback answered %d)", got, tt.wantFast, ts.fb.Load())
			}
			if !strings.Contains(r.body, tt.wantInAnswer) {
				t.Errorf("answer %q does not contain %q", r.body, tt.wantInAnswer)
			}
		})
	}
}

func TestHasHostField(t *testing.T) {
	for head, want := range map[string]bool{
		"GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n":               true,
		"GET http://x/ HTTP/1.1\r\nAccept: */*\r\nHOST:x\r\n\r\n": true,
		"GET http://x/ HTTP/1.1\r\nX-Host: x\r\n\r\n":             false,
		"GET http://x/ HTTP/1.1\r\n\r\n":                          false,
		"GET http://x/Host: HTTP/1.1\r\n\r\n":                     false,
	} {
		if got := hasHostField([]byte(head)); got != want {
			t.Errorf("hasHostField(%q) = %v, want %v", head, got, want)
		}
	}
}

// For holds both paths to the fallback's handler, limits and timeouts.
func TestFor(t *testing.T) {
	fb := &http.Server{Handler: http.NotFoundHandler(), MaxHeaderBytes: 1234,
		ReadHeaderTimeout: 1, IdleTimeout: 2, WriteTimeout: 3}
	s := For(fb, nil)
	if s.Fallback != fb || s.Handler == nil || s.MaxHeaderBytes != 1234 ||
		s.ReadHeaderTimeout != 1 || s.IdleTimeout != 2 || s.WriteTimeout != 3 {
		t.Errorf("For: %+v", s)
	}
}
