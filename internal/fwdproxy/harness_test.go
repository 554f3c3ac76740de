package fwdproxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/lists"
	"github.com/sekisho/sekisho/internal/netacl"
	"github.com/sekisho/sekisho/internal/password"
	"github.com/sekisho/sekisho/internal/store"
	"github.com/sekisho/sekisho/internal/store/sqlite"
	"github.com/sekisho/sekisho/internal/testenv"
)

// harness is a running proxy with a real store, real lists and a Blacklister that does
// what the server's wiring does (store.Put, then lists.CatchUp).
type harness struct {
	t     *testing.T
	addr  string // proxy listener, 127.0.0.1:port
	proxy *Proxy
	store store.Store
	lists *lists.Lists
	bl    *storeBlacklister
	dials *dialRecorder
	logs  *testenv.LogBuffer
	serve chan error
}

type harnessConfig struct {
	opts     func(*Options)
	resolver netacl.Resolver
	users    map[string]string // address -> password
}

func newHarness(t *testing.T, hc harnessConfig) *harness {
	t.Helper()
	ctx := t.Context()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for addr, pw := range hc.users {
		hash, err := password.Hash(pw)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.PutUser(ctx, store.User{Address: addr, PasswordHash: hash}); err != nil {
			t.Fatal(err)
		}
	}
	l := lists.New()
	if err := l.Reload(ctx, st); err != nil {
		t.Fatal(err)
	}
	h := &harness{
		t: t, store: st, lists: l,
		bl:    &storeBlacklister{st: st, lists: l, ttl: time.Hour},
		dials: &dialRecorder{},
		serve: make(chan error, 1),
	}
	opts := Options{
		Hostname: "proxy.test",
		Rules: netacl.Rules{
			AllowNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")},
			ConnectPorts:  []int{443},
			DenyNetworks:  []netip.Prefix{netip.MustParsePrefix("169.254.0.0/16")},
		},
		BlacklistProbes: true,
		DialTimeout:     5 * time.Second,
	}
	if hc.opts != nil {
		hc.opts(&opts)
	}
	log, logs := testenv.RecordingLogger(t)
	h.logs = logs
	deps := Deps{ProxyDeps: netacl.ProxyDeps{Lists: l, Users: st, Blacklister: h.bl, Logger: log, Resolver: hc.resolver, Dial: h.dials.dial}}
	p, err := New(opts, deps)
	if err != nil {
		t.Fatal(err)
	}
	h.proxy = p
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.addr = ln.Addr().String()
	go func() { h.serve <- p.Serve(ln) }()
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := p.Shutdown(sctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-h.serve; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
		if n := p.Stats().Panics; n != 0 {
			t.Errorf("%d handler panics", n)
		}
	})
	return h
}

// storeBlacklister is the Blacklister the server wires in: BLACK in the store, then the
// lists catch up, so the next request is refused. It records its calls.
type storeBlacklister struct {
	st    store.Store
	lists *lists.Lists
	ttl   time.Duration

	mu    sync.Mutex
	calls []blacklistCall
}

type blacklistCall struct {
	ip     netip.Addr
	source string
	note   string
}

func (b *storeBlacklister) Blacklist(ctx context.Context, ip netip.Addr, source, note string) error {
	b.mu.Lock()
	b.calls = append(b.calls, blacklistCall{ip, source, note})
	b.mu.Unlock()
	e := store.Entry{List: store.Black, Key: ip.String(), Source: source, Note: note, Expires: time.Now().Add(b.ttl)}
	if err := b.st.Put(ctx, e); err != nil {
		return err
	}
	return b.lists.CatchUp(ctx, b.st)
}

func (b *storeBlacklister) Calls() []blacklistCall {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]blacklistCall(nil), b.calls...)
}

// dialRecorder dials for real and records every address dialled.
type dialRecorder struct {
	mu    sync.Mutex
	addrs []string
}

func (d *dialRecorder) dial(ctx context.Context, network, address string) (net.Conn, error) {
	d.mu.Lock()
	d.addrs = append(d.addrs, address)
	d.mu.Unlock()
	var nd net.Dialer
	return nd.DialContext(ctx, network, address)
}

func (d *dialRecorder) Addrs() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.addrs...)
}

// fakeResolver answers from a table; other names are looked up for real.
type fakeResolver map[string]string

func (f fakeResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	if a, ok := f[host]; ok {
		return []netip.Addr{netip.MustParseAddr(a)}, nil
	}
	return net.DefaultResolver.LookupNetIP(ctx, network, host)
}

// accessLines returns the "access" log lines so far, decoded.
func (h *harness) accessLines() []map[string]any {
	return h.logs.Lines("access")
}

// waitAccessLines waits until n access lines were written (a tunnel's line comes when it
// ends, after curl has gone).
func (h *harness) waitAccessLines(n int) []map[string]any {
	h.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		lines := h.accessLines()
		if len(lines) >= n || time.Now().After(deadline) {
			return lines
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// origin is an in-test web server that records what reaches it.
type origin struct {
	srv   *httptest.Server
	port  int
	mu    sync.Mutex
	reqs  []*http.Request
	conns int
}

func newOrigin(t *testing.T, tlsOn bool) *origin {
	t.Helper()
	o := &origin{}
	o.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		o.reqs = append(o.reqs, r.Clone(context.Background()))
		o.mu.Unlock()
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "hello from "+r.Host+" over "+r.Proto)
	}))
	o.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			o.mu.Lock()
			o.conns++
			o.mu.Unlock()
		}
	}
	if tlsOn {
		o.srv.EnableHTTP2 = true
		o.srv.StartTLS()
	} else {
		o.srv.Start()
	}
	t.Cleanup(o.srv.Close)
	o.port = o.srv.Listener.Addr().(*net.TCPAddr).Port
	return o
}

func (o *origin) requests() []*http.Request {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]*http.Request(nil), o.reqs...)
}

func (o *origin) newConns() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.conns
}

const curlMark = "@@curl@@ "

// curlResult is what curl reports.
type curlResult struct {
	code     int // final HTTP status, 0 when none
	connect  int // status of the CONNECT answer, 0 when none
	connects []int
	body     string // every transfer's body, one after the other
	exit     int
	stderr   string
}

// curl runs the real curl client with args (proxy options and URLs) and no environment
// that could redirect it (no proxy variables, no ~/.curlrc).
func curl(t *testing.T, args ...string) curlResult {
	t.Helper()
	path, err := exec.LookPath("curl")
	if err != nil {
		testenv.Missing(t, "curl not installed (Debian package curl): %v", err)
	}
	// Bodies (and -D - headers) go to stdout, each followed by a marker line with the
	// figures of its transfer.
	full := append([]string{"-q", "-sS", "--max-time", "15",
		"-w", "\n" + curlMark + "%{http_code} %{http_connect} %{num_connects}\n"}, args...)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, full...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	res := curlResult{stderr: stderr.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		res.exit = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("curl: %v", err)
	}
	out := stdout.String()
	for {
		i := strings.Index(out, "\n"+curlMark)
		if i < 0 {
			break
		}
		res.body += out[:i]
		rest := out[i+1+len(curlMark):]
		line, next, _ := strings.Cut(rest, "\n")
		out = next
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		res.code, _ = strconv.Atoi(f[0])
		res.connect, _ = strconv.Atoi(f[1])
		n, _ := strconv.Atoi(f[2])
		res.connects = append(res.connects, n)
	}
	return res
}

func (h *harness) proxyURL() string { return "http://" + h.addr }
