package server

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sekisho/sekisho/internal/testenv"
)

// With decoy_seed, the static route's pages carry the trap link; a reverse-proxied site's
// pages never do (sekisho does not own them), and neither does anything with decoy_seed off.
func TestWebHarvestWiring(t *testing.T) {
	const html = "<html><body><p>page</p></body></html>"
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, html)
	}))
	defer backend.Close()
	up := testenv.NewUpstream(t, "tcp4")
	for _, tc := range []struct {
		name       string
		seed       string
		wantStatic bool
	}{{"decoy_seed set", `decoy_seed = "example.jp"`, true}, {"decoy_seed off", "", false}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			root := siteWith(t, dir, "index.html", html)
			cfg := parse(t, baseConfig(dir, "127.0.0.1:0", up.Addr)+fmt.Sprintf(`
[web]
listen_plain = ["127.0.0.1:0"]
%s
[[web.route]]
host = "www.example.test"
upstreams = [%q]
plain = "serve"
[[web.route]]
host = "www.example.test"
path = "/static/"
root = %q
plain = "serve"
`, tc.seed, backend.Listener.Addr().String(), root))
			srv := runServer(t, cfg, testenv.Logger(t))
			_, plain := srv.web.Addrs()
			web := "http://" + plain[0].String()
			code, body := curlStatus(t, "-H", "Host: www.example.test", web+"/static/")
			if seeded := strings.Contains(body, `href="mailto:`); code != 200 || seeded != tc.wantStatic {
				t.Errorf("static page: %d, seeded %v, want %v\n%s", code, seeded, tc.wantStatic, body)
			}
			if code, body := curlStatus(t, "-H", "Host: www.example.test", web+"/page"); code != 200 || body != html {
				t.Errorf("proxied page: %d %q, want it as the backend sent it", code, body)
			}
		})
	}
}
