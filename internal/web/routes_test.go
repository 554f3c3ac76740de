package web

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"testing"

	"github.com/sekisho/sekisho/internal/lists"
	"github.com/sekisho/sekisho/internal/store"
	"github.com/sekisho/sekisho/internal/testenv"
)

// says answers with its name.
type says string

func (s says) ServeHTTP(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, string(s)) }

// starter records Start and Stop.
type starter struct {
	says
	mu             sync.Mutex
	started, stops int
}

func (s *starter) Start(context.Context) { s.mu.Lock(); s.started++; s.mu.Unlock() }
func (s *starter) Stop()                 { s.mu.Lock(); s.stops++; s.mu.Unlock() }

// fakeBlacklister puts the client in the lists, as the server's blacklister does through
// the store.
type fakeBlacklister struct {
	lists *lists.Lists
	mu    sync.Mutex
	got   []string
}

func (b *fakeBlacklister) Blacklist(_ context.Context, ip netip.Addr, source, note string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.got = append(b.got, ip.String()+" "+source)
	b.lists.Load([]store.Entry{{List: store.Black, Key: ip.String(), Source: source, Note: note}}, int64(len(b.got)))
	return nil
}

type routesEnv struct {
	srv   *Server
	https string // base URLs
	plain string
	bl    *fakeBlacklister
	st    *starter
}

func newRoutesEnv(t *testing.T, blacklistProbes bool) *routesEnv {
	t.Helper()
	l := lists.New()
	bl := &fakeBlacklister{lists: l}
	st := &starter{says: "health-checked"}
	routes := []Route{
		{Host: "WWW.example.test", Path: "/", Handler: says("www-root"), Plain: true},
		{Host: "www.example.test", Path: "/api/", Handler: says("www-api")},
		{Host: "www.example.test", Path: "/api/v2", Handler: says("www-api-v2"), Plain: true},
		{Host: "other.example.test", Path: "/docs/", Handler: st},
	}
	app := http.NewServeMux()
	app.HandleFunc("/c/", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "app") })
	s, err := New(Options{
		ListenPlain: []string{"127.0.0.1:0"}, AppHost: "mx.example.jp", BlacklistProbes: blacklistProbes,
	}, Deps{Lists: l, App: app, Routes: routes, Blacklister: bl, Logger: testenv.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run() }()
	t.Cleanup(func() {
		s.Shutdown(context.Background())
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	})
	_, plain := s.Addrs()
	// The HTTPS handler is tested over plain HTTP: TLS changes nothing in routing.
	https := newHandlerServer(t, s.Handler())
	return &routesEnv{srv: s, https: https, plain: "http://" + plain[0].String(), bl: bl, st: st}
}

func newHandlerServer(t *testing.T, h http.Handler) string {
	t.Helper()
	hs := &http.Server{Handler: h}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go hs.Serve(l)
	t.Cleanup(func() { hs.Close() })
	return "http://" + l.Addr().String()
}

func fetch(t *testing.T, base, host, path string) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "GET", base+path, nil)
	req.Host = host
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header.Get("Location")
}

// Requests go to the app on its host, else to the route of the exact host and the longest
// path prefix.
func TestRouting(t *testing.T) {
	e := newRoutesEnv(t, true)
	tests := []struct {
		host, path string
		code       int
		body       string
	}{
		{"mx.example.jp", "/c/x", 200, "app"},
		{"mx.example.jp", "/healthz", 200, "ok\n"},
		{"www.example.test", "/", 200, "www-root"},
		{"WWW.Example.Test:8443", "/page", 200, "www-root"},
		{"www.example.test", "/api/", 200, "www-api"},
		{"www.example.test", "/api", 200, "www-api"},
		{"www.example.test", "/api/users", 200, "www-api"},
		{"www.example.test", "/api/v2", 200, "www-api-v2"},
		{"www.example.test", "/api/v2/x", 200, "www-api-v2"},
		{"www.example.test", "/api/v20", 200, "www-api"},
		{"www.example.test", "/apis", 200, "www-root"},
		{"other.example.test", "/docs/a", 200, "health-checked"},
		{"other.example.test", "/", 404, ""},
		{"nobody.example.test", "/", 404, ""},
		{"nobody.example.test", "/healthz", 200, "ok\n"},
		{"example.test", "/", 404, ""},
	}
	for _, tc := range tests {
		code, body, _ := fetch(t, e.https, tc.host, tc.path)
		if code != tc.code || tc.body != "" && body != tc.body {
			t.Errorf("%s%s: %d %q, want %d %q", tc.host, tc.path, code, body, tc.code, tc.body)
		}
	}
	e.st.mu.Lock()
	if e.st.started != 1 {
		t.Errorf("route handler started %d times, want 1", e.st.started)
	}
	e.st.mu.Unlock()
}

// The plain listeners serve routes marked Plain and redirect everything else.
func TestPlainListener(t *testing.T) {
	e := newRoutesEnv(t, true)
	tests := []struct {
		host, path string
		code       int
		body, loc  string
	}{
		{"www.example.test", "/x", 200, "www-root", ""},
		{"www.example.test", "/api/v2/y", 200, "www-api-v2", ""},
		{"www.example.test", "/api/users?id=1", 301, "", "https://www.example.test/api/users?id=1"},
		{"other.example.test", "/docs/", 301, "", "https://other.example.test/docs/"},
		{"mx.example.jp", "/c/x", 301, "", "https://mx.example.jp/c/x"},
		{"mx.example.jp", "/healthz", 200, "ok\n", ""},
	}
	for _, tc := range tests {
		code, body, loc := fetch(t, e.plain, tc.host, tc.path)
		if code != tc.code || tc.body != "" && body != tc.body || loc != tc.loc {
			t.Errorf("%s%s: %d %q %q, want %d %q %q", tc.host, tc.path, code, body, loc, tc.code, tc.body, tc.loc)
		}
	}
}

// A proxy probe is refused with 400 and puts the client in BLACK; its next request gets 403.
// An absolute-form request for a host this server serves is a normal request.
func TestProbeBlacklisted(t *testing.T) {
	for _, blacklist := range []bool{false, true} {
		name := map[bool]string{false: "count only", true: "blacklist_probes"}[blacklist]
		t.Run(name, func(t *testing.T) {
			e := newRoutesEnv(t, blacklist)
			proxyURL, _ := url.Parse(e.plain)
			client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL)}}
			get := func(u string) int {
				t.Helper()
				resp, err := client.Get(u)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				return resp.StatusCode
			}
			if code := get("http://www.example.test/own"); code != 200 {
				t.Fatalf("absolute form for a served host: %d, want 200", code)
			}
			if code := get("http://victim.example.net/"); code != 400 {
				t.Fatalf("absolute form for another host: %d, want 400", code)
			}
			want, wantNext := 0, 200
			if blacklist {
				want, wantNext = 1, 403
			}
			if len(e.bl.got) != want || want == 1 && e.bl.got[0] != "127.0.0.1 proxy-abuse" {
				t.Errorf("blacklisted %v, want %d entry", e.bl.got, want)
			}
			if code, _, _ := fetch(t, e.plain, "www.example.test", "/x"); code != wantNext {
				t.Errorf("next request: %d, want %d", code, wantNext)
			}
			st := e.srv.Stats()
			if st.Refused["proxy-probe"] != 1 || st.Blacklisted != int64(want) {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// CONNECT sent to a web listener is a probe too.
func TestConnectProbe(t *testing.T) {
	e := newRoutesEnv(t, true)
	u, _ := url.Parse(e.plain)
	// Go's transport dials URL.Host and sends "CONNECT <Host>".
	req, _ := http.NewRequestWithContext(t.Context(), "CONNECT", "", nil)
	req.URL = &url.URL{Scheme: "http", Host: u.Host}
	req.Host = "mail.victim.example:25"
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("CONNECT: %d, want 400", resp.StatusCode)
	}
	if len(e.bl.got) != 1 {
		t.Errorf("blacklisted %v, want the client", e.bl.got)
	}
}

func TestPathUnder(t *testing.T) {
	tests := []struct {
		p, prefix string
		want      bool
	}{
		{"/", "/", true},
		{"/x", "/", true},
		{"/docs", "/docs/", true},
		{"/docs/", "/docs/", true},
		{"/docs/a", "/docs/", true},
		{"/docsa", "/docs/", false},
		{"/api", "/api", true},
		{"/api/x", "/api", true},
		{"/apix", "/api", false},
		{"/ap", "/api", false},
	}
	for _, tc := range tests {
		if got := pathUnder(tc.p, tc.prefix); got != tc.want {
			t.Errorf("pathUnder(%q, %q) = %v, want %v", tc.p, tc.prefix, got, tc.want)
		}
	}
}
