package server

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/sekisho/sekisho/internal/store"
	"github.com/sekisho/sekisho/internal/testenv"
)

// fromAddr dials from a loopback address of its own, so that a client blacklisted in the
// test (a decoy hit, a proxy probe) leaves the others alone.
func fromAddr(ip string) *net.Dialer {
	return &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
}

// sample returns the value of the series name with the given label pairs, from the
// server's registry; 0 when there is none.
func sample(t *testing.T, srv *Server, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := srv.Metrics().Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, l := range m.GetLabel() {
					found = found || l.GetName() == labels[i] && l.GetValue() == labels[i+1]
				}
				if !found {
					continue next
				}
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}

// scrapeMetrics GETs /metrics on the app host from the loopback address ip; it returns the
// status and, for a 200, every sample by its series ("name{label="value",...}").
func scrapeMetrics(t *testing.T, webAddr, appHost, ip string) (int, map[string]float64) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext:     fromAddr(ip).DialContext,
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, // the self-signed certificate
	}}
	req, err := http.NewRequestWithContext(t.Context(), "GET", "https://"+webAddr+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = appHost
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET /metrics from %s: %v", ip, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 200 {
		return res.StatusCode, nil
	}
	samples := map[string]float64{}
	for line := range strings.SplitSeq(string(body), "\n") {
		i := strings.LastIndexByte(line, ' ')
		if line == "" || line[0] == '#' || i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		samples[line[:i]] = v
	}
	return res.StatusCode, samples
}

// The real server with real traffic: a passed, a held, a relay-refused and a decoy SMTP
// transaction, a CONNECT to port 25 through the forward proxy and a static file; /metrics
// then shows each counter moved by exactly what was sent, only to admin_networks.
func TestMetricsEndToEnd(t *testing.T) {
	up := testenv.NewUpstream(t, "tcp4")
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer backend.Close()
	dir := t.TempDir()
	root := staticSite(t, dir)
	cfg := parse(t, baseConfig(dir, "127.0.0.1:0", up.Addr)+fmt.Sprintf(`
[antispam]
challenge = false
sender_auth = "off"
blacklist_probes = true
[web]
listen = ["127.0.0.1:0"]
admin_networks = ["127.0.0.1/32"]
[[web.route]]
host = "www.example.test"
path = "/static/"
root = %q
[[web.route]]
host = "www.example.test"
path = "/app/"
upstreams = [%q]
health_path = "/"
health_interval = "100ms"
[http_proxy]
listen = ["127.0.0.1:0"]
allow_networks = ["127.0.0.0/8"]
`, root, backend.Listener.Addr().String()))
	log, logs := testenv.RecordingLogger(t)
	srv := runServer(t, cfg, log)
	for _, e := range []store.Entry{
		{List: store.White, Key: "friend@partner.test", Kind: store.KindFrom},
		{List: store.Decoy, Key: "trap@example.jp"},
	} {
		if err := srv.Store().Put(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}
	if err := srv.Lists().CatchUp(t.Context(), srv.Store()); err != nil {
		t.Fatal(err)
	}
	smtpAddr := srv.SMTPAddrs()[0].String()
	send := func(ip, from, rcpt string) error {
		t.Helper()
		conn, err := fromAddr(ip).Dial("tcp", smtpAddr)
		if err != nil {
			t.Fatal(err)
		}
		c := smtp.NewClient(conn)
		defer c.Close()
		err = c.SendMail(from, []string{rcpt}, strings.NewReader("Subject: hi\r\n\r\nhello\r\n"))
		c.Quit()
		return err
	}
	if err := send("127.0.0.1", "friend@partner.test", "taro@example.jp"); err != nil {
		t.Fatalf("whitelisted sender: %v", err)
	}
	up.Wait(t, 1)
	if err := send("127.0.0.1", "stranger@else.test", "taro@example.jp"); err != nil {
		t.Fatalf("unknown sender (held): %v", err)
	}
	if err := send("127.0.0.1", "stranger@else.test", "someone@elsewhere.test"); err == nil || !strings.Contains(err.Error(), "Relay access denied") {
		t.Fatalf("relay attempt: %v, want 554 relay access denied", err)
	}
	if err := send("127.0.0.2", "spammer@bad.test", "trap@example.jp"); err == nil {
		t.Fatal("decoy: accepted, want refused")
	}

	// A CONNECT to port 25 from 127.0.0.4: refused, and a mail relay attempt.
	httpProxy, _ := srv.ProxyAddrs()
	pc, err := fromAddr("127.0.0.4").Dial("tcp", httpProxy[0].String())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(pc, "CONNECT 127.0.0.1:25 HTTP/1.1\r\nHost: 127.0.0.1:25\r\n\r\n")
	res, err := http.ReadResponse(bufio.NewReader(pc), nil)
	pc.Close()
	if err != nil || res.StatusCode != 403 {
		t.Fatalf("CONNECT :25 = %v, %v; want 403", res, err)
	}

	https, _ := srv.web.Addrs()
	webAddr := https[0].String()
	get := func(path string) string {
		t.Helper()
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
		req, _ := http.NewRequestWithContext(t.Context(), "GET", "https://"+webAddr+path, nil)
		req.Host = "www.example.test"
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return string(b)
	}
	if body := get("/static/hello.txt"); body != "static hello" {
		t.Fatalf("static route: %q", body)
	}

	if code, _ := scrapeMetrics(t, webAddr, "mx.example.jp", "127.0.0.3"); code != 403 {
		t.Errorf("/metrics from 127.0.0.3, outside admin_networks: %d, want 403", code)
	}
	var m map[string]float64
	deadline := time.Now().Add(5 * time.Second)
	for {
		var code int
		code, m = scrapeMetrics(t, webAddr, "mx.example.jp", "127.0.0.1")
		if code != 200 {
			t.Fatalf("/metrics from 127.0.0.1: %d, want 200", code)
		}
		// The server closes SMTP connections after its 221, and the backend's first
		// health check may be under way: wait for both to settle.
		if m["sekisho_smtp_connections_active"] == 0 && m[`sekisho_backend_up{backend="`+backend.Listener.Addr().String()+`",route="www.example.test/app/"}`] == 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	want := map[string]float64{
		`sekisho_smtp_connections_total{listener_role="mx"}`:                                                   4,
		`sekisho_smtp_connections_active`:                                                                      0,
		`sekisho_smtp_transactions_total{verdict="pass"}`:                                                      1,
		`sekisho_smtp_transactions_total{verdict="held"}`:                                                      1,
		`sekisho_smtp_transactions_total{verdict="refused_relay"}`:                                             1,
		`sekisho_smtp_transactions_total{verdict="decoy"}`:                                                     1,
		`sekisho_smtp_recipients_total{verdict="pass"}`:                                                        1,
		`sekisho_smtp_recipients_total{verdict="held"}`:                                                        1,
		`sekisho_smtp_recipients_total{verdict="refused_relay"}`:                                               1,
		`sekisho_smtp_recipients_total{verdict="decoy"}`:                                                       1,
		`sekisho_smtp_recipients_total{verdict="tempfail"}`:                                                    0,
		`sekisho_decoy_hits_total`:                                                                             1,
		`sekisho_upstream_sends_total{result="ok",server="` + up.Addr + `"}`:                                   1,
		`sekisho_upstream_sends_total{result="failed",server="` + up.Addr + `"}`:                               0,
		`sekisho_upstream_up{server="` + up.Addr + `"}`:                                                        1,
		`sekisho_list_entries{list="black"}`:                                                                   2, // the decoy hitter and the prober
		`sekisho_list_entries{list="decoy"}`:                                                                   1,
		`sekisho_held_messages`:                                                                                1,
		`sekisho_proxy_requests_total{method="connect",proxy="http"}`:                                          1,
		`sekisho_proxy_refusals_total{proxy="http",reason="mail_port"}`:                                        1,
		`sekisho_proxy_requests_total{method="get",proxy="static"}`:                                            1,
		`sekisho_proxy_bytes_total{direction="out",proxy="static"}`:                                            float64(len("static hello")),
		`sekisho_backend_up{backend="` + backend.Listener.Addr().String() + `",route="www.example.test/app/"}`: 1,
	}
	for series, v := range want {
		got, ok := m[series]
		if !ok {
			t.Errorf("no series %s", series)
		} else if got != v {
			t.Errorf("%s = %v, want %v", series, got, v)
		}
	}
	if m["sekisho_held_bytes"] <= 0 {
		t.Errorf("sekisho_held_bytes = %v, want the held message's size", m["sekisho_held_bytes"])
	}

	d := srv.Metrics().Decisions()
	for k, v := range map[string]int64{"pass": 1, "held": 1, "confirmed": 0, "decoy": 1, "relay_refused": 1, "proxy_refused": 1} {
		if d[k] != v {
			t.Errorf("Decisions()[%q] = %d, want %d", k, d[k], v)
		}
	}

	var connect, static bool
	for _, l := range logs.Lines("access") {
		switch {
		case l["proxy"] == "http" && l["method"] == "CONNECT" && l["target"] == "127.0.0.1:25" && l["status"] == 403.0 && l["client"] == "127.0.0.4":
			connect = true
		case l["proxy"] == "static" && l["method"] == "GET" && l["target"] == "/static/hello.txt" && l["status"] == 200.0 && l["bytes"] == 12.0:
			static = true
		}
	}
	if !connect || !static {
		t.Errorf("access log: CONNECT line %v, static line %v; lines: %v", connect, static, logs.Lines("access"))
	}
}
