package socks5

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
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

// harness is a running SOCKS proxy with a real store, real lists and a Blacklister that
// does what the server's wiring does (store.Put, then lists.CatchUp).
type harness struct {
	t     *testing.T
	addr  string
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
	users    map[string]string
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
	p, err := New(opts, Deps{ProxyDeps: netacl.ProxyDeps{Lists: l, Users: st, Blacklister: h.bl, Logger: log, Resolver: hc.resolver, Dial: h.dials.dial}})
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
			t.Errorf("%d session panics", n)
		}
	})
	return h
}

// storeBlacklister is the Blacklister the server wires in; it records its calls.
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

type fakeResolver map[string]string

func (f fakeResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	if a, ok := f[host]; ok {
		return []netip.Addr{netip.MustParseAddr(a)}, nil
	}
	return net.DefaultResolver.LookupNetIP(ctx, network, host)
}

// accessLines waits until n "access" lines were written (a session's line comes
// when it ends) and returns them decoded.
func (h *harness) accessLines(n int) []map[string]any {
	h.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		out := h.logs.Lines("access")
		if len(out) >= n || time.Now().After(deadline) {
			return out
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// origin is an in-test web server that records what reaches it.
type origin struct {
	srv  *httptest.Server
	port int
	mu   sync.Mutex
	reqs int
}

func newOrigin(t *testing.T, tlsOn bool, addr string) *origin {
	t.Helper()
	o := &origin{}
	o.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		o.reqs++
		o.mu.Unlock()
		io.WriteString(w, "hello from "+r.Host)
	}))
	if addr != "" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			testenv.Missing(t, "cannot listen on %s (an IPv6 test needs ::1): %v", addr, err)
		}
		o.srv.Listener.Close()
		o.srv.Listener = ln
	}
	if tlsOn {
		o.srv.StartTLS()
	} else {
		o.srv.Start()
	}
	t.Cleanup(o.srv.Close)
	o.port = o.srv.Listener.Addr().(*net.TCPAddr).Port
	return o
}

func (o *origin) requests() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.reqs
}

type curlResult struct {
	code   int
	body   string
	exit   int
	stderr string
}

// curl runs the real curl client with no environment that could redirect it.
func curl(t *testing.T, args ...string) curlResult {
	t.Helper()
	path, err := exec.LookPath("curl")
	if err != nil {
		testenv.Missing(t, "curl not installed (Debian package curl): %v", err)
	}
	out := filepath.Join(t.TempDir(), "body")
	full := append([]string{"-q", "-sS", "--max-time", "15", "-o", out, "-w", "%{http_code}"}, args...)
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
	if _, err := fmt.Sscan(stdout.String(), &res.code); err != nil {
		t.Fatalf("curl output %q: %v", stdout.String(), err)
	}
	if b, err := os.ReadFile(out); err == nil {
		res.body = string(b)
	}
	return res
}

// socksClient is a hand-written SOCKS5 client for what curl cannot send.
type socksClient struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

// dialSocks connects to proxy from the local address local ("" for any) and does the
// greeting with no authentication.
func dialSocks(t *testing.T, proxy, local string) *socksClient {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
	}
	c, err := d.Dial("tcp", proxy)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	sc := &socksClient{t: t, c: c, br: bufio.NewReader(c)}
	c.Write([]byte{5, 1, methodNoAuth})
	var sel [2]byte
	if _, err := io.ReadFull(sc.br, sel[:]); err != nil {
		t.Fatalf("method selection: %v", err)
	}
	if sel != [2]byte{5, methodNoAuth} {
		t.Fatalf("method selection %v", sel)
	}
	return sc
}

// request sends raw request bytes and returns the reply code and bound address.
func (sc *socksClient) request(raw []byte) (byte, netip.AddrPort) {
	sc.t.Helper()
	sc.c.Write(raw)
	var hdr [4]byte
	if _, err := io.ReadFull(sc.br, hdr[:]); err != nil {
		sc.t.Fatalf("reply: %v", err)
	}
	var addr []byte
	switch hdr[3] {
	case atypIPv4:
		addr = make([]byte, 4)
	case atypIPv6:
		addr = make([]byte, 16)
	default:
		sc.t.Fatalf("reply address type %d", hdr[3])
	}
	var port [2]byte
	if _, err := io.ReadFull(sc.br, addr); err != nil {
		sc.t.Fatal(err)
	}
	if _, err := io.ReadFull(sc.br, port[:]); err != nil {
		sc.t.Fatal(err)
	}
	ip, _ := netip.AddrFromSlice(addr)
	return hdr[1], netip.AddrPortFrom(ip, uint16(port[0])<<8|uint16(port[1]))
}
