package h1serve

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// servedBy is the response header the fallback handler sets, so tests see which path answered.
const servedBy = "X-Served-By"

// ioTimeout bounds every client read and write of a test.
const ioTimeout = 10 * time.Second

// testServer is a Server on a loopback listener, shut down with the test.
type testServer struct {
	*Server
	addr string
	fast atomic.Int64 // requests answered by Handler
	fb   atomic.Int64 // requests answered by Fallback.Handler
	done chan error   // Serve's result
	logs *logRecorder
}

// startServer serves h on both paths (the fallback's responses carry X-Served-By: fallback);
// opt, if not nil, sets fields of the Server before Serve, and the Fallback gets its limits.
func startServer(t testing.TB, h http.Handler, opt func(*Server)) *testServer {
	t.Helper()
	ts := &testServer{done: make(chan error, 1), logs: &logRecorder{}}
	fallback := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ts.fb.Add(1)
		w.Header().Set(servedBy, "fallback")
		h.ServeHTTP(w, r)
	})
	fast := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ts.fast.Add(1)
		h.ServeHTTP(w, r)
	})
	ts.Server = &Server{
		Handler:           fast,
		Fallback:          &http.Server{Handler: fallback, ErrorLog: log.New(io.Discard, "", 0)},
		ReadHeaderTimeout: ioTimeout,
		Logger:            slog.New(ts.logs),
	}
	if opt != nil {
		opt(ts.Server)
	}
	fb := ts.Fallback
	fb.MaxHeaderBytes = ts.MaxHeaderBytes
	fb.ReadHeaderTimeout = ts.ReadHeaderTimeout
	fb.IdleTimeout = ts.IdleTimeout
	fb.WriteTimeout = ts.WriteTimeout
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts.addr = l.Addr().String()
	go func() { ts.done <- ts.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := ts.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		select {
		case err := <-ts.done:
			if err != ErrServerClosed {
				t.Errorf("Serve returned %v, want ErrServerClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Serve did not return after Shutdown")
		}
	})
	return ts
}

// client is a raw connection to a test server.
type client struct {
	t  testing.TB
	nc net.Conn
	br *bufio.Reader
}

// dial connects to addr; the connection closes with the test.
func dial(t testing.TB, addr string) *client {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(ioTimeout))
	return &client{t: t, nc: nc, br: bufio.NewReader(nc)}
}

// send writes s as it is.
func (c *client) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.nc, s); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// closeWrite half-closes the connection.
func (c *client) closeWrite() {
	c.t.Helper()
	if err := c.nc.(*net.TCPConn).CloseWrite(); err != nil {
		c.t.Fatal(err)
	}
}

// reply is a response read whole.
type reply struct {
	*http.Response
	body string
}

func (r reply) fromFallback() bool { return r.Header.Get(servedBy) == "fallback" }

// tryRead reads the next response to a request with this method, body included.
func (c *client) tryRead(method string) (reply, error) {
	res, err := http.ReadResponse(c.br, &http.Request{Method: method})
	if err != nil {
		return reply{}, err
	}
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	return reply{res, string(b)}, err
}

// read reads the next response, failing the test on an error.
func (c *client) read(method string) reply {
	c.t.Helper()
	r, err := c.tryRead(method)
	if err != nil {
		c.t.Fatalf("reading the response: %v", err)
	}
	return r
}

// expectClosed fails the test unless the server closes the connection without sending more.
func (c *client) expectClosed() {
	c.t.Helper()
	b, err := c.br.ReadByte()
	switch {
	case err == nil:
		rest, _ := c.br.Peek(c.br.Buffered())
		c.t.Fatalf("connection open, got %q", append([]byte{b}, rest...))
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
	default:
		c.t.Fatalf("connection not closed: %v", err)
	}
}

// get is a minimal GET request for path.
func get(path string) string {
	return "GET " + path + " HTTP/1.1\r\nHost: example.test\r\n\r\n"
}

// echo answers the request line, the Host, the headers and the body, sorted and in plain text.
var echo = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s\nhost=%s\n", r.Method, r.RequestURI, r.Proto, r.Host)
	writeFieldsSorted(&b, r.Header, "%s=%q\n")
	fmt.Fprintf(&b, "body=%q err=%v\n", body, err)
	w.Write([]byte(b.String()))
})

// writeFieldsSorted writes each field of h with format (name, values), names sorted.
func writeFieldsSorted(b *strings.Builder, h http.Header, format string) {
	for _, k := range slices.Sorted(maps.Keys(h)) {
		fmt.Fprintf(b, format, k, h[k])
	}
}

// pathHandler answers the request's path.
var pathHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	io.WriteString(w, r.URL.Path)
})

// logRecorder is a slog.Handler keeping the messages logged.
type logRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecorder) WithGroup(string) slog.Handler            { return l }

func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	msg := r.Message
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "panic" {
			msg += " " + a.Value.String()
		}
		return true
	})
	l.msgs = append(l.msgs, msg)
	return nil
}

func (l *logRecorder) messages() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.msgs)
}

// waitFor polls cond every 5 ms for up to 5 s, failing the test with what when it never holds.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// connections counts the connections the server serves.
func (ts *testServer) connections() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return len(ts.conns)
}
