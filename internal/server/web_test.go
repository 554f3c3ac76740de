package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/config"
	"github.com/sekisho/sekisho/internal/store"
	"github.com/sekisho/sekisho/internal/testenv"
)

// curlStatus runs curl and returns the status code and body.
func curlStatus(t *testing.T, args ...string) (int, string) {
	t.Helper()
	path, err := exec.LookPath("curl")
	if err != nil {
		t.Fatalf("curl is needed for this test: %v", err)
	}
	out, err := exec.CommandContext(t.Context(), path, append([]string{"-sS", "--max-time", "10", "-w", "\n%{http_code}"}, args...)...).Output()
	if err != nil {
		t.Fatalf("curl %v: %v", args, err)
	}
	s := string(out)
	i := strings.LastIndexByte(s, '\n')
	code, _ := strconv.Atoi(s[i+1:])
	return code, s[:i]
}

// runServer builds the server of cfg and runs it until the test ends; Run must then return
// nil.
func runServer(t *testing.T, cfg *config.Config, log *slog.Logger) *Server {
	t.Helper()
	srv, err := New(t.Context(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx, time.Second) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	})
	return srv
}

// staticSite makes dir/www with hello.txt ("static hello") and returns its path.
func staticSite(t *testing.T, dir string) string {
	t.Helper()
	return siteWith(t, dir, "hello.txt", "static hello")
}

// siteWith makes dir/www with the file name holding content and returns its path.
func siteWith(t *testing.T, dir, name, content string) string {
	t.Helper()
	root := filepath.Join(dir, "www")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

// The web routes as configured: a reverse proxy and a static site on the plain listener.
// Then a proxy probe at the web listener: 400, the client in BLACK in the store, 403 from the
// web server next, and the SMTP proxy refuses it at the greeting.
func TestWebRoutesAndProbe(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "backend %s for %s", r.URL.Path, r.Header.Get("X-Forwarded-For"))
	}))
	defer backend.Close()
	up := testenv.NewUpstream(t, "tcp4")
	dir := t.TempDir()
	root := staticSite(t, dir)
	cfg := parse(t, baseConfig(dir, "127.0.0.1:0", up.Addr)+fmt.Sprintf(`
[antispam]
blacklist_probes = true
[web]
listen_plain = ["127.0.0.1:0"]
[[web.route]]
host = "www.example.test"
upstreams = [%q]
health_path = "/"
health_interval = "100ms"
plain = "serve"
[[web.route]]
host = "www.example.test"
path = "/static/"
root = %q
plain = "serve"
`, backend.Listener.Addr().String(), root))
	srv := runServer(t, cfg, testenv.Logger(t))
	_, plain := srv.web.Addrs()
	web := "http://" + plain[0].String()

	if code, body := curlStatus(t, "-H", "Host: www.example.test", web+"/app"); code != 200 || body != "backend /app for 127.0.0.1" {
		t.Errorf("reverse proxy route: %d %q", code, body)
	}
	if code, body := curlStatus(t, "-H", "Host: www.example.test", web+"/static/hello.txt"); code != 200 || body != "static hello" {
		t.Errorf("static route: %d %q", code, body)
	}

	// The probe: curl uses the web listener as its proxy.
	if code, _ := curlStatus(t, "-x", web, "http://victim.example.net/"); code != 400 {
		t.Fatalf("absolute-form probe: %d, want 400", code)
	}
	entries, err := srv.Store().Entries(t.Context(), store.Black, store.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Key != "127.0.0.1" || entries[0].Source != "proxy-abuse" || entries[0].Expires.IsZero() {
		t.Fatalf("BLACK = %+v, want 127.0.0.1 from proxy-abuse with an expiry", entries)
	}
	if !srv.Lists().BlackIP(netip.MustParseAddr("127.0.0.1"), time.Now()) {
		t.Error("lists.BlackIP(127.0.0.1) = false after the probe")
	}
	if code, _ := curlStatus(t, "-H", "Host: www.example.test", web+"/app"); code != 403 {
		t.Errorf("next web request: %d, want 403", code)
	}
	c, err := net.DialTimeout("tcp", srv.SMTPAddrs()[0].String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	greeting, err := bufio.NewReader(c).ReadString('\n')
	if err != nil && err != io.EOF {
		t.Fatal(err)
	}
	if !strings.HasPrefix(greeting, "554") {
		t.Errorf("SMTP greeting to the prober: %q, want 554", greeting)
	}
}
