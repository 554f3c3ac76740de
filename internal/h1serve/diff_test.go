package h1serve

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"regexp"
	"syscall"
	"testing"
	"time"
)

// startPair serves h with an h1serve Server (Fallback serving h too) and with a plain
// net/http Server, with the same limits; both shut down with the test.
func startPair(t testing.TB, h http.Handler, maxHeader int) (fast, ref string) {
	t.Helper()
	listen := func() net.Listener {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	newHTTP := func() *http.Server {
		return &http.Server{
			Handler:           h,
			MaxHeaderBytes:    maxHeader,
			ReadHeaderTimeout: ioTimeout,
			IdleTimeout:       ioTimeout,
			ErrorLog:          log.New(io.Discard, "", 0),
		}
	}
	s := &Server{Handler: h, Fallback: newHTTP(), MaxHeaderBytes: maxHeader, ReadHeaderTimeout: ioTimeout, IdleTimeout: ioTimeout}
	r := newHTTP()
	lf, lr := listen(), listen()
	go s.Serve(lf)
	go r.Serve(lr)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		s.Shutdown(ctx)
		r.Shutdown(ctx)
	})
	return lf.Addr().String(), lr.Addr().String()
}

// exchange sends in on a new connection to addr, half-closes it and returns what the server
// answers until it closes; a reset after the answer counts as the close.
func exchange(addr string, in []byte, timeout time.Duration) ([]byte, error) {
	nc, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(timeout))
	werr := make(chan error, 1)
	go func() {
		_, err := nc.Write(in)
		if err == nil {
			err = nc.(*net.TCPConn).CloseWrite()
		}
		werr <- err
	}()
	out, err := io.ReadAll(nc)
	if errors.Is(err, syscall.ECONNRESET) {
		err = nil
	}
	if err != nil {
		return out, err
	}
	if err := <-werr; err != nil && !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
		return out, err
	}
	return out, nil
}

var dateField = regexp.MustCompile(`(?m)^Date: [^\r\n]*\r$`)

// sameAnswer fails the test unless the two servers answer in with the same bytes, Date
// values aside.
func sameAnswer(t testing.TB, fast, ref string, in []byte, timeout time.Duration) {
	t.Helper()
	got, err := exchange(fast, in, timeout)
	if err != nil {
		t.Fatalf("h1serve: %v (after %q)", err, got)
	}
	want, err := exchange(ref, in, timeout)
	if err != nil {
		t.Fatalf("net/http: %v (after %q)", err, want)
	}
	got = dateField.ReplaceAll(got, []byte("Date: -\r"))
	want = dateField.ReplaceAll(want, []byte("Date: -\r"))
	if !bytes.Equal(got, want) {
		t.Errorf("for %.300q\n%s", in, firstDifference(got, want))
	}
}

// firstDifference shows where got and want part, with some context.
func firstDifference(got, want []byte) string {
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	from := max(0, i-200)
	return fmt.Sprintf("from byte %d:\nh1serve:  %.300q\nnet/http: %.300q", from, got[from:], want[from:])
}

// The responses written here are, byte for byte, those of net/http.
func TestMatchesNetHTTP(t *testing.T) {
	const two = "GET /a HTTP/1.1\r\nHost: x\r\n\r\nHEAD /b HTTP/1.1\r\nHost: x\r\n\r\n"
	big := bytes.Repeat([]byte("<html>0123456789"), 200)
	tests := []struct {
		name    string
		handler http.HandlerFunc
		req     string
	}{
		{"fields sorted", func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h.Set("X-B", "2")
			h.Set("Cache-Control", "no-store")
			h.Set("X-A", "1")
			h.Add("Set-Cookie", "a=1")
			h.Add("Set-Cookie", "b=2")
			h.Set("Vary", "Accept")
			h.Set("Content-Type", "text/plain")
			h["X-Empty"] = nil
			h["x-not-canonical"] = []string{"v"}
			io.WriteString(w, "body")
		}, two},
		{"values trimmed", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Space", " \t a b \t ")
			w.Header().Set("X-Nbsp", "\u00a0x\u00a0")
			w.Header().Set("X-Vt", "\vx\f")
			w.Header().Set("X-Crlf", "\r\na\r\n")
		}, two},
		{"sniffed", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "<html>hello")
		}, two},
		{"HTTP/1.0", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "<html>hello")
		}, "GET /a HTTP/1.0\r\nHost: x\r\n\r\n" + get("/more")},
		{"HTTP/1.0 large body", func(w http.ResponseWriter, r *http.Request) {
			w.Write(big) // no length known: the body ends with the connection
		}, "GET /a HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n" + get("/more")},
		{"HTTP/1.0 keep-alive", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "short")
		}, "GET /a HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\nHEAD /b HTTP/1.0\r\nHost: x\r\nConnection: Keep-Alive\r\n\r\nGET /c HTTP/1.0\r\nHost: x\r\n\r\n" + get("/d")},
		{"HTTP/1.0 keep-alive, length set", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", fmt.Sprint(len(big)))
			w.Write(big)
		}, "GET /a HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n" + "GET /b HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n"},
		{"HTTP/1.0 keep-alive, handler closes", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Connection", "close")
			io.WriteString(w, "bye")
		}, "GET /a HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n" + get("/more")},
		{"HTTP/1.0 keep-alive, 304 and interim", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusEarlyHints)
			w.WriteHeader(http.StatusNotModified)
		}, "GET /a HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\nGET /b HTTP/1.0\r\nHost: x\r\n\r\n"},
		{"HTTP/1.0 without Host", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, r.Host)
		}, "GET /a HTTP/1.0\r\n\r\n"},
		{"client Connection: close", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Connection", "keep-alive")
			io.WriteString(w, "x")
		}, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" + get("/more")},
		{"handler Connection: close", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Connection", "close")
		}, two},
		{"handler Connection with close", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Connection", "foo, close")
		}, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"},
		{"handler Transfer-Encoding chunked", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Transfer-Encoding", "chunked")
			io.WriteString(w, "small")
		}, two},
		{"handler Transfer-Encoding identity", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Transfer-Encoding", "identity")
			io.WriteString(w, "until the end")
		}, two},
		{"handler Transfer-Encoding and Content-Length", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Transfer-Encoding", "chunked")
			w.Header().Set("Content-Length", "5")
			io.WriteString(w, "hello")
		}, two},
		{"invalid Content-Length", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "five")
			io.WriteString(w, "hello")
		}, get("/")},
		{"interim", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Link", "</a.css>; rel=preload")
			w.Header().Set("Content-Length", "2")
			w.WriteHeader(http.StatusEarlyHints)
			w.WriteHeader(http.StatusEarlyHints)
			io.WriteString(w, "ok")
		}, two},
		{"304", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.Header().Set("Etag", `"e"`)
			w.Header().Set("Transfer-Encoding", "chunked")
			w.WriteHeader(http.StatusNotModified)
		}, two},
		{"204", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.Header().Set("Content-Length", "0")
			w.WriteHeader(http.StatusNoContent)
		}, two},
		{"trailers", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Trailer", "X-B, Content-Type, X-A")
			w.Header().Set("X-A", "early")
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, "data")
			w.(http.Flusher).Flush()
			w.Header().Set("X-B", "2")
			w.Header().Set("X-A", "1")
			w.Header().Set(http.TrailerPrefix+"X-C", "3")
		}, two},
		{"trailers and late fields", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Trailer", "X-B, X-A")
			w.Header().Set("X-A", "early")
			w.WriteHeader(200)
			w.Header().Set("X-C", "late")
			io.WriteString(w, "data")
			w.Header().Set("X-B", "2")
			w.Header().Set("X-A", "1")
		}, two},
		{"flush", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "<p>one")
			w.(http.Flusher).Flush()
			io.WriteString(w, "two")
		}, two},
		{"large write", func(w http.ResponseWriter, r *http.Request) {
			w.Write(big)
		}, two},
		{"a few bytes after a request", func(w http.ResponseWriter, r *http.Request) {}, get("/") + "\r\n"},
		{"a few bytes first", func(w http.ResponseWriter, r *http.Request) {}, "GE"},
		{"four bytes after a request", func(w http.ResponseWriter, r *http.Request) {}, get("/") + "GET "},
		{"unknown status", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(299)
		}, two},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fast, ref := startPair(t, tt.handler, 0)
			sameAnswer(t, fast, ref, []byte(tt.req), ioTimeout)
		})
	}
}
