package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/sekisho/sekisho/internal/password"
	"github.com/sekisho/sekisho/internal/store"
	"github.com/sekisho/sekisho/internal/testenv"
)

// webClient is an HTTPS client of the server's app host from the local address from, with
// cookies, not following redirects.
func webClient(from string) *http.Client {
	jar, _ := cookiejar.New(nil)
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	return &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport:     &http.Transport{DialContext: d.DialContext, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
		Timeout:       10 * time.Second,
	}
}

// The admin pages in the whole server: an admin from admin_networks logs in and sees the
// overview with its chart, and on the BLACK page the IP that a real decoy hit over SMTP put
// there; a client outside admin_networks is refused 403 whoever it is.
func TestAdminPagesInServer(t *testing.T) {
	up := testenv.NewUpstream(t, "tcp4")
	cfg := parse(t, baseConfig(t.TempDir(), "127.0.0.1:0", up.Addr)+`
[web]
listen = ["127.0.0.1:0"]
admin_networks = ["127.0.0.1/32"]
`)
	srv, err := New(t.Context(), cfg, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { srv.Run(ctx, time.Second); close(done) }()
	defer func() { cancel(); <-done }()
	st := srv.Store()
	hash, err := password.Hash("pw-root")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.PutUser(t.Context(), store.User{Address: "root@example.jp", PasswordHash: hash, Admin: true}); err != nil {
		t.Fatal(err)
	}
	if err := st.Put(t.Context(), store.Entry{List: store.Decoy, Key: "trap@example.jp"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for !srv.Lists().Decoy("trap@example.jp") {
		if time.Now().After(deadline) {
			t.Fatal("decoy not followed within 2 s")
		}
		time.Sleep(10 * time.Millisecond)
	}

	// A spammer at 127.0.0.9 writes to the decoy.
	conn, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.9")}}).Dial("tcp", srv.SMTPAddrs()[0].String())
	if err != nil {
		t.Fatal(err)
	}
	c := smtp.NewClient(conn)
	if err := c.Mail("spam@bulk.test", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("trap@example.jp", nil); err == nil || !strings.Contains(err.Error(), "550") {
		t.Fatalf("RCPT to the decoy: %v, want 550", err)
	}
	c.Close()
	if !srv.Lists().BlackIP(netip.MustParseAddr("127.0.0.9"), time.Now()) {
		t.Fatal("the decoy hit did not put 127.0.0.9 in BLACK")
	}
	if err := st.AddStats(t.Context(), []store.StatCount{{Bucket: store.Minute(time.Now()), Name: "decoy", Count: 1}}); err != nil {
		t.Fatal(err)
	}

	https, _ := srv.web.Addrs()
	base := "https://" + https[0].String()
	get := func(c *http.Client, path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Host = "mx.example.jp"
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	login := func(c *http.Client) {
		t.Helper()
		_, body := get(c, "/login")
		m := regexp.MustCompile(`name="token" value="([^"]+)"`).FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("login form: %s", body)
		}
		req, _ := http.NewRequest("POST", base+"/login", strings.NewReader(url.Values{"token": {m[1]}, "address": {"root@example.jp"}, "password": {"pw-root"}}.Encode()))
		req.Host = "mx.example.jp"
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("login: %d", resp.StatusCode)
		}
	}

	admin := webClient("127.0.0.1")
	login(admin)
	code, body := get(admin, "/admin/")
	if code != http.StatusOK || !strings.Contains(body, `<svg`) || !strings.Contains(body, "<tr><td>decoy hits</td><td>1</td></tr>") {
		t.Fatalf("overview: %d\n%s", code, body)
	}
	if code, body = get(admin, "/admin/lists/black"); code != http.StatusOK || !strings.Contains(body, "<td>127.0.0.9</td>") {
		t.Fatalf("BLACK page: %d, want the decoy hit's IP\n%s", code, body)
	}
	if code, body = get(admin, "/admin/nodes"); code != http.StatusOK || !strings.Contains(body, fmt.Sprintf("<td>%s</td>", cfg.Store.NodeID)) {
		t.Errorf("nodes page: %d, want this node %q\n%s", code, cfg.Store.NodeID, body)
	}

	outside := webClient("127.0.0.3")
	login(outside) // the login page is for everyone; the admin pages are not
	for _, p := range []string{"/admin/", "/admin/users", "/admin/lists/black"} {
		if code, _ := get(outside, p); code != http.StatusForbidden {
			t.Errorf("GET %s from 127.0.0.3: %d, want 403", p, code)
		}
	}
}
