package revproxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/testenv"
)

// backend is an in-test web server that says who it is and what it was sent.
type backend struct {
	name string
	srv  *httptest.Server
	hits atomic.Int64
}

func newBackend(t *testing.T, name string) *backend {
	t.Helper()
	b := &backend{name: name}
	b.srv = httptest.NewServer(b.handler())
	t.Cleanup(b.srv.Close)
	return b
}

// restart serves again on the address the backend had before it was killed.
func (b *backend) restart(t *testing.T) {
	t.Helper()
	addr := b.srv.Listener.Addr().String()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen again on %s: %v", addr, err)
	}
	b.srv = &httptest.Server{Listener: l, Config: &http.Server{Handler: b.handler()}}
	b.srv.Start()
	t.Cleanup(b.srv.Close)
}

// kill stops the backend at once: open connections are cut.
func (b *backend) kill() {
	b.srv.CloseClientConnections()
	b.srv.Close()
}

func (b *backend) addr() string { return b.srv.Listener.Addr().String() }

func (b *backend) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			http.Error(w, "want an upgrade", http.StatusBadRequest)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		for { // echo lines, upper-cased, until the client leaves
			line, err := brw.ReadString('\n')
			if err != nil {
				return
			}
			brw.WriteString(b.name + ":" + strings.ToUpper(line))
			brw.Flush()
		}
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			http.Error(w, "body: "+err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "backend=%s\nhost=%s\nxff=%s\nproto=%s\nxhost=%s\nbody=%d\nconnection=%s\n",
			b.name, r.Host, strings.Join(r.Header.Values("X-Forwarded-For"), ","),
			r.Header.Get("X-Forwarded-Proto"), r.Header.Get("X-Forwarded-Host"), n, r.Header.Get("Connection"))
	})
	return mux
}

// newRoute starts a route in front of the backends on an httptest server.
func newRoute(t *testing.T, opts Options, backends ...string) (*Route, *httptest.Server) {
	t.Helper()
	opts.Upstreams = backends
	rt, err := New(opts, Deps{Logger: testenv.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	rt.Start(t.Context())
	t.Cleanup(rt.Stop)
	front := httptest.NewServer(rt)
	t.Cleanup(front.Close)
	return rt, front
}

// curl runs curl and returns its standard output.
func curl(t *testing.T, args ...string) string {
	t.Helper()
	path, err := exec.LookPath("curl")
	if err != nil {
		t.Fatalf("curl is needed for this test: %v", err)
	}
	out, err := exec.CommandContext(t.Context(), path, append([]string{"-sS", "--max-time", "10"}, args...)...).Output()
	if err != nil {
		t.Fatalf("curl %v: %v", args, err)
	}
	return string(out)
}

// curlStatus returns the status code and body of one request.
func curlStatus(t *testing.T, args ...string) (int, string) {
	t.Helper()
	out := curl(t, append([]string{"-w", "\n%{http_code}"}, args...)...)
	i := strings.LastIndexByte(out, '\n')
	code, _ := strconv.Atoi(out[i+1:])
	return code, out[:i]
}

func field(body, key string) string {
	for line := range strings.SplitSeq(body, "\n") {
		if v, ok := strings.CutPrefix(line, key+"="); ok {
			return v
		}
	}
	return ""
}

func upState(rt *Route, addr string) bool {
	for _, u := range rt.Stats().Upstreams {
		if u.Addr == addr {
			return u.Up
		}
	}
	return false
}

// A backend killed while GETs stream in: once it is out (the health check noticed, or a
// failed request took it out) no request fails, before the kill none did; it is put back
// when it serves again. Responses cut by the kill itself are only logged: no proxy can
// mend a response whose header it already passed on.
func TestFailoverKilledBackend(t *testing.T) {
	for _, balance := range []string{RoundRobin, LeastConn} {
		t.Run(balance, func(t *testing.T) {
			a, b := newBackend(t, "a"), newBackend(t, "b")
			rt, front := newRoute(t, Options{Balance: balance, HealthPath: "/healthz", HealthInterval: 50 * time.Millisecond}, a.addr(), b.addr())

			const (
				before = iota // both backends up
				killed        // a killed, not yet out
				out           // a out, and later back
			)
			var phase atomic.Int32
			var stop atomic.Bool
			var mu sync.Mutex
			var total, curlN [3]int
			var failed [3][]string
			record := func(ph int32, what string) {
				mu.Lock()
				defer mu.Unlock()
				total[ph]++
				if what != "" {
					failed[ph] = append(failed[ph], what)
				}
			}
			var wg sync.WaitGroup
			for range 4 { // Go clients, keep-alive
				wg.Go(func() {
					for !stop.Load() {
						ph := phase.Load()
						resp, err := http.Get(front.URL + "/page")
						if err != nil {
							record(ph, err.Error())
							continue
						}
						_, err = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						switch {
						case err != nil:
							record(ph, "body: "+err.Error())
						case resp.StatusCode != 200:
							record(ph, resp.Status)
						default:
							record(ph, "")
						}
					}
				})
			}
			curlPath, err := exec.LookPath("curl")
			if err != nil {
				t.Fatalf("curl is needed for this test: %v", err)
			}
			wg.Go(func() { // curl, 20 requests per run on one connection, until stopped
				args := []string{"-sS", "--max-time", "10", "-w", "%{http_code}\n"}
				for range 20 {
					args = append(args, "-o", "/dev/null", front.URL+"/curl")
				}
				for !stop.Load() {
					ph := phase.Load()
					out, err := exec.Command(curlPath, args...).Output()
					mu.Lock()
					for c := range strings.FieldsSeq(string(out)) {
						curlN[ph]++
						if c != "200" {
							failed[ph] = append(failed[ph], "curl "+c)
						}
					}
					if err != nil {
						failed[ph] = append(failed[ph], "curl: "+err.Error())
					}
					mu.Unlock()
				}
			})

			testenv.WaitFor(t, "both backends to serve", func() bool { return a.hits.Load() > 20 && b.hits.Load() > 20 })
			phase.Store(killed)
			a.kill()
			testenv.WaitFor(t, "a to be out", func() bool { return !upState(rt, a.addr()) })
			phase.Store(out)
			hitsB := b.hits.Load()
			testenv.WaitFor(t, "requests after a is out", func() bool { return b.hits.Load() > hitsB+100 })
			a.restart(t)
			testenv.WaitFor(t, "the health check to put a back", func() bool { return upState(rt, a.addr()) })
			hitsA := a.hits.Load()
			testenv.WaitFor(t, "a to serve again", func() bool { return a.hits.Load() > hitsA+20 })
			stop.Store(true)
			wg.Wait()

			mu.Lock()
			defer mu.Unlock()
			for _, ph := range []int{before, out} {
				if len(failed[ph]) > 0 {
					t.Errorf("phase %d: %d failed of %d Go and %d curl requests: %q", ph, len(failed[ph]), total[ph], curlN[ph], failed[ph])
				}
			}
			if curlN[before]+curlN[killed]+curlN[out] == 0 {
				t.Error("curl made no request")
			}
			t.Logf("Go requests %v, curl requests %v by phase; cut by the kill: %q; %d retries", total, curlN, failed[killed], rt.Stats().Retries)
		})
	}
}

// The backend sees the client's address, scheme and host, never what the client claimed.
func TestForwardedHeaders(t *testing.T) {
	b := newBackend(t, "b")
	_, front := newRoute(t, Options{}, b.addr())
	code, body := curlStatus(t, "-H", "Host: www.example.test", "-H", "X-Forwarded-For: 203.0.113.66",
		"-H", "X-Forwarded-Host: evil.test", "-H", "Connection: keep-alive, X-Secret", "-H", "X-Secret: 1", front.URL+"/")
	if code != 200 {
		t.Fatalf("status %d: %s", code, body)
	}
	for key, want := range map[string]string{
		"host": "www.example.test", "xff": "127.0.0.1", "proto": "http", "xhost": "www.example.test", "connection": "",
	} {
		if got := field(body, key); got != want {
			t.Errorf("%s = %q, want %q", key, got, want)
		}
	}
}

// A WebSocket upgrade passes through, and the connection carries data both ways.
func TestWebSocketUpgrade(t *testing.T) {
	b := newBackend(t, "b")
	_, front := newRoute(t, Options{}, b.addr())
	conn, err := net.Dial("tcp", front.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: www.example.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") {
		t.Fatalf("upgrade answered %s %v", resp.Status, resp.Header)
	}
	for _, msg := range []string{"hello", "second frame"} {
		fmt.Fprintf(conn, "%s\n", msg)
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if want := "b:" + strings.ToUpper(msg) + "\n"; line != want {
			t.Errorf("echo = %q, want %q", line, want)
		}
	}
}

// With every backend gone the client gets a small page that names none of them.
func TestAllBackendsDown(t *testing.T) {
	a, b := newBackend(t, "a"), newBackend(t, "b")
	rt, front := newRoute(t, Options{}, a.addr(), b.addr())
	a.kill()
	b.kill()
	for i := range 3 {
		code, body := curlStatus(t, "-H", "Host: www.example.test", front.URL+"/x")
		if code != http.StatusBadGateway {
			t.Fatalf("request %d: status %d, want 502", i, code)
		}
		for _, leak := range []string{"127.0.0.1", a.addr(), "dial", "refused", "goroutine", "panic", ".go:"} {
			if strings.Contains(body, leak) {
				t.Errorf("502 page shows %q:\n%s", leak, body)
			}
		}
		if !strings.Contains(body, "502 Bad Gateway") {
			t.Errorf("502 page: %q", body)
		}
	}
	if got := rt.Stats().Failures; got != 3 {
		t.Errorf("failures counted: %d, want 3", got)
	}
}

// A backend that does not answer within ResponseHeaderTimeout gives 504.
func TestBackendTimeout(t *testing.T) {
	b := newBackend(t, "b")
	_, front := newRoute(t, Options{ResponseHeaderTimeout: 100 * time.Millisecond}, b.addr())
	code, body := curlStatus(t, front.URL+"/slow")
	if code != http.StatusGatewayTimeout || !strings.Contains(body, "504 Gateway Timeout") {
		t.Fatalf("status %d, want 504: %s", code, body)
	}
}

// Request bodies over the limit get 413, announced or chunked; the backend never sees them.
func TestBodyLimit(t *testing.T) {
	b := newBackend(t, "b")
	_, front := newRoute(t, Options{MaxBodyBytes: 1024}, b.addr())
	tests := []struct {
		name  string
		size  int
		extra []string
		want  int
	}{
		{"small", 512, nil, 200},
		{"exact", 1024, nil, 200},
		{"content-length over", 2048, nil, 413},
		{"chunked over", 4096, []string{"-H", "Transfer-Encoding: chunked"}, 413},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hits := b.hits.Load()
			args := append([]string{"-X", "POST", "--data-binary", strings.Repeat("x", tc.size)}, tc.extra...)
			code, body := curlStatus(t, append(args, front.URL+"/upload")...)
			if code != tc.want {
				t.Fatalf("status %d, want %d: %s", code, tc.want, body)
			}
			if code == 200 && field(body, "body") != strconv.Itoa(tc.size) {
				t.Errorf("backend got body=%s, want %d", field(body, "body"), tc.size)
			}
			if code == 413 && tc.extra == nil && b.hits.Load() != hits {
				t.Error("an announced oversized body reached the backend")
			}
		})
	}
}

// A POST is never sent twice: a failed backend costs it a 502, not a retry.
func TestNoRetryForPOST(t *testing.T) {
	a, b := newBackend(t, "a"), newBackend(t, "b")
	a.kill()
	rt, front := newRoute(t, Options{Balance: RoundRobin}, a.addr(), b.addr())
	var codes []int
	for range 2 {
		code, _ := curlStatus(t, "-X", "POST", "--data", "x=1", front.URL+"/form")
		codes = append(codes, code)
	}
	if !(codes[0] == 502 && codes[1] == 200 || codes[0] == 200 && codes[1] == 200) {
		t.Errorf("POST statuses %v", codes)
	}
	if rt.Stats().Retries != 0 {
		t.Errorf("retries = %d, want 0", rt.Stats().Retries)
	}
}

func TestSelectors(t *testing.T) {
	ups := []*upstream{{addr: "a"}, {addr: "b"}, {addr: "c"}}
	all := func(*upstream) bool { return true }
	notB := func(u *upstream) bool { return u.addr != "b" }
	none := func(*upstream) bool { return false }

	var rr roundRobin
	var got []string
	for range 4 {
		got = append(got, rr.pick(ups, notB).addr)
	}
	if want := "a c c a"; strings.Join(got, " ") != want {
		t.Errorf("round robin without b: %q, want %q", strings.Join(got, " "), want)
	}
	if rr.pick(ups, none) != nil {
		t.Error("round robin picked from none")
	}

	ups[0].inflight.Store(3)
	ups[1].inflight.Store(1)
	ups[2].inflight.Store(2)
	var lc leastConn
	for range 3 {
		if u := lc.pick(ups, all); u.addr != "b" {
			t.Errorf("least conn: %s, want b", u.addr)
		}
	}
	if u := lc.pick(ups, notB); u.addr != "c" {
		t.Errorf("least conn without b: %s, want c", u.addr)
	}
}
