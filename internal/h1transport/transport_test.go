package h1transport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// origin is a net/http server that counts the connections it accepted.
func origin(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

// fallback fails the test when a request reaches it.
type fallback struct{ t *testing.T }

func (f fallback) RoundTrip(r *http.Request) (*http.Response, error) {
	f.t.Errorf("%s %s went to the fallback", r.Method, r.URL)
	return nil, errors.New("fallback")
}

// newTransport returns a Transport whose idle connections are closed before the test's
// origins stop (cleanups run last in, first out).
func newTransport(t *testing.T) *Transport {
	tr := &Transport{Fallback: fallback{t}}
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

func get(t *testing.T, tr http.RoundTripper, url string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("GET %s body: %v", url, err)
	}
	return resp, string(b)
}

func TestKeepAliveReusesOneConnection(t *testing.T) {
	srv, conns := origin(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("chunked") != "" {
			w.Write([]byte("chunk one "))
			w.(http.Flusher).Flush()
			w.Write([]byte("chunk two"))
			return
		}
		fmt.Fprintf(w, "path %s host %s ua %q", r.URL.RequestURI(), r.Host, r.UserAgent())
	})
	tr := newTransport(t)
	for i := range 5 {
		resp, body := get(t, tr, srv.URL+fmt.Sprintf("/p%d?q=1", i))
		want := fmt.Sprintf("path /p%d?q=1 host %s ua \"\"", i, srv.Listener.Addr())
		if resp.StatusCode != 200 || body != want {
			t.Errorf("response %d %q, want 200 %q", resp.StatusCode, body, want)
		}
	}
	_, body := get(t, tr, srv.URL+"/?chunked=1")
	if body != "chunk one chunk two" {
		t.Errorf("chunked body %q", body)
	}
	req, _ := http.NewRequest(http.MethodHead, srv.URL+"/", nil)
	resp, err := tr.RoundTrip(req)
	if err != nil || resp.Body != http.NoBody {
		t.Fatalf("HEAD: %v, body %T", err, resp.Body)
	}
	get(t, tr, srv.URL+"/after-head")
	if n := conns.Load(); n != 1 {
		t.Errorf("origin saw %d connections, want 1 kept alive", n)
	}
}

func TestBodyNotReadToTheEndClosesTheConnection(t *testing.T) {
	srv, conns := origin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(strings.Repeat("x", 100<<10)))
	})
	tr := newTransport(t)
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/", nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Read(make([]byte, 10))
	resp.Body.Close()
	if _, body := get(t, tr, srv.URL+"/"); len(body) != 100<<10 {
		t.Errorf("second body %d bytes", len(body))
	}
	if n := conns.Load(); n != 2 {
		t.Errorf("origin saw %d connections, want 2: a half-read response must not be reused", n)
	}
}

// rawOrigin answers each connection with handle, over a bare TCP listener.
func rawOrigin(t *testing.T, handle func(c net.Conn, br *bufio.Reader)) (string, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns atomic.Int64
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			wg.Go(func() {
				defer c.Close()
				handle(c, bufio.NewReader(c))
			})
		}
	}()
	return "http://" + ln.Addr().String(), &conns
}

// readRequest reads one request header; false at the end of the connection.
func readRequest(br *bufio.Reader) bool {
	req, err := http.ReadRequest(br)
	if err != nil {
		return false
	}
	req.Body.Close()
	return true
}

func TestStaleConnectionIsRetriedOnce(t *testing.T) {
	// The origin answers one request per connection and closes it without saying so: the
	// kept-alive connection is dead when the next request comes.
	url, conns := rawOrigin(t, func(c net.Conn, br *bufio.Reader) {
		if readRequest(br) {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	getEach(t, url, "ok", 3, conns, 20*time.Millisecond) // the pause lets the close reach us
}

// getEach GETs url n times with one Transport, pausing between requests; each body must
// be want, and the origin must have seen n connections.
func getEach(t *testing.T, url, want string, n int, conns *atomic.Int64, pause time.Duration) {
	t.Helper()
	tr := newTransport(t)
	for range n {
		if _, body := get(t, tr, url+"/"); body != want {
			t.Errorf("body %q, want %q", body, want)
		}
		time.Sleep(pause)
	}
	if got := conns.Load(); got != int64(n) {
		t.Errorf("origin saw %d connections, want %d", got, n)
	}
}

func TestUnaskedBytesAfterTheBodyAreNeverTakenForTheNextResponse(t *testing.T) {
	// A response with a second one glued after it (response splitting): the glued one must
	// not become the answer to the next request.
	url, conns := rawOrigin(t, func(c net.Conn, br *bufio.Reader) {
		for readRequest(br) {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"+
				"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled")
		}
	})
	getEach(t, url, "ok", 2, conns, 0)
}

func TestCloseDelimitedBodyIsNotReused(t *testing.T) {
	url, conns := rawOrigin(t, func(c net.Conn, br *bufio.Reader) {
		if readRequest(br) {
			io.WriteString(c, "HTTP/1.1 200 OK\r\n\r\nuntil close")
		}
	})
	getEach(t, url, "until close", 2, conns, 0)
}

func TestInformationalResponsesAreSkipped(t *testing.T) {
	url, _ := rawOrigin(t, func(c net.Conn, br *bufio.Reader) {
		if readRequest(br) {
			io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"+
				"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal")
		}
	})
	tr := newTransport(t)
	if resp, body := get(t, tr, url+"/"); resp.StatusCode != 200 || body != "final" {
		t.Errorf("got %d %q, want 200 final", resp.StatusCode, body)
	}
}

func TestEndlessInformationalResponsesAreRefused(t *testing.T) {
	url, _ := rawOrigin(t, func(c net.Conn, br *bufio.Reader) {
		if readRequest(br) {
			for range 10 {
				io.WriteString(c, "HTTP/1.1 103 Early Hints\r\n\r\n")
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
		}
	})
	req, _ := http.NewRequest(http.MethodGet, url+"/", nil)
	if _, err := newTransport(t).RoundTrip(req); err == nil {
		t.Error("ten 103 responses were taken")
	}
}

func TestLimitsAndTimeouts(t *testing.T) {
	url, _ := rawOrigin(t, func(c net.Conn, br *bufio.Reader) {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		switch req.URL.Path {
		case "/big-header":
			io.WriteString(c, "HTTP/1.1 200 OK\r\nX-Big: "+strings.Repeat("a", 8<<10)+"\r\nContent-Length: 0\r\n\r\n")
		case "/slow":
			time.Sleep(2 * time.Second)
		}
	})
	tr := newTransport(t)
	tr.MaxResponseHeaderBytes = 4 << 10
	tr.ResponseHeaderTimeout = 200 * time.Millisecond

	req, _ := http.NewRequest(http.MethodGet, url+"/big-header", nil)
	if _, err := tr.RoundTrip(req); !errors.Is(err, errHeaderTooLarge) {
		t.Errorf("8 KiB header with a 4 KiB limit: %v", err)
	}

	req, _ = http.NewRequest(http.MethodGet, url+"/slow", nil)
	start := time.Now()
	_, err := tr.RoundTrip(req)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || time.Since(start) > time.Second {
		t.Errorf("slow origin: %v after %v, want a timeout after 200ms", err, time.Since(start))
	}

	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(100*time.Millisecond, cancel)
	req, _ = http.NewRequestWithContext(ctx, http.MethodGet, url+"/slow", nil)
	tr.ResponseHeaderTimeout = 0
	start = time.Now()
	if _, err := tr.RoundTrip(req); !errors.Is(err, context.Canceled) || time.Since(start) > time.Second {
		t.Errorf("cancelled request: %v after %v, want context.Canceled at once", err, time.Since(start))
	}
}

func TestHeaderInjectionIsRefused(t *testing.T) {
	url, conns := rawOrigin(t, func(c net.Conn, br *bufio.Reader) { readRequest(br) })
	tr := newTransport(t)
	for name, mod := range map[string]func(r *http.Request){
		"value": func(r *http.Request) { r.Header["X-A"] = []string{"a\r\nX-Injected: 1"} },
		"name":  func(r *http.Request) { r.Header["X-A\r\nX-B"] = []string{"1"} },
		"host":  func(r *http.Request) { r.Host = "a.test\r\nX-Injected: 1" },
	} {
		req, _ := http.NewRequest(http.MethodGet, url+"/", nil)
		mod(req)
		if _, err := tr.RoundTrip(req); err == nil {
			t.Errorf("%s with CR LF was sent", name)
		}
	}
	if n := conns.Load(); n > 1 {
		t.Errorf("origin saw %d connections", n)
	}
}

// recorder is a fallback that records what reached it.
type recorder struct{ methods []string }

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.methods = append(r.methods, req.Method+" "+req.URL.Scheme)
	return &http.Response{StatusCode: 200, Body: http.NoBody, Request: req}, nil
}

func TestOtherRequestsGoToTheFallback(t *testing.T) {
	rec := &recorder{}
	tr := &Transport{Fallback: rec}
	post, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:1/", strings.NewReader("body"))
	tls, _ := http.NewRequest(http.MethodGet, "https://127.0.0.1:1/", nil)
	ws, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:1/", nil)
	ws.Header.Set("Upgrade", "websocket")
	del, _ := http.NewRequest(http.MethodDelete, "http://127.0.0.1:1/", nil)
	for _, r := range []*http.Request{post, tls, ws, del} {
		if _, err := tr.RoundTrip(r); err != nil {
			t.Fatal(err)
		}
	}
	want := "POST http,GET https,GET http,DELETE http"
	if got := strings.Join(rec.methods, ","); got != want {
		t.Errorf("fallback got %s, want %s", got, want)
	}
}

func TestIdleConnectionsExpire(t *testing.T) {
	srv, conns := origin(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	tr := newTransport(t)
	tr.IdleTimeout = 200 * time.Millisecond
	key := strings.TrimPrefix(srv.URL, "http://")
	idle := func() int {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		return len(tr.idle[key])
	}
	// Two requests at once leave two idle connections, A (older) and B.
	req1, _ := http.NewRequest(http.MethodGet, srv.URL+"/", nil)
	req2, _ := http.NewRequest(http.MethodGet, srv.URL+"/", nil)
	resp1, err1 := tr.RoundTrip(req1)
	resp2, err2 := tr.RoundTrip(req2)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	io.ReadAll(resp1.Body)
	io.ReadAll(resp2.Body)
	if n := idle(); n != 2 {
		t.Fatalf("%d idle connections, want 2", n)
	}
	// Traffic keeps B in use; A, never picked (the most recent goes first), expires and is
	// closed when B comes back.
	for range 3 {
		time.Sleep(80 * time.Millisecond)
		get(t, tr, srv.URL+"/")
	}
	if n := idle(); n != 1 {
		t.Errorf("%d idle connections, want 1: the expired one must go", n)
	}
	// Once every connection expired, a request dials anew.
	time.Sleep(250 * time.Millisecond)
	get(t, tr, srv.URL+"/")
	if n := conns.Load(); n != 3 {
		t.Errorf("origin saw %d connections, want 3", n)
	}
}
