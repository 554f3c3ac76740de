package server

import (
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
	return &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport:     &http.Transport{DialContext: fromAddr(from).DialContext, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
		Timeout:       10 * time.Second,
	}
}

// The admin pages in the whole server: an admin from admin_networks logs in and sees the
// overview whose chart and totals count the decisions of real SMTP traffic (a pass, a held
// message, a relay refusal, a decoy hit, recorded by the server's own stats recorder), and on
// the BLACK page the IP that the decoy hit put there; a client outside admin_networks is
// refused 403 whoever it is.
func TestAdminPagesInServer(t *testing.T) {
	up := testenv.NewUpstream(t, "tcp4")
	cfg := parse(t, baseConfig(t.TempDir(), "127.0.0.1:0", up.Addr)+`
[web]
listen = ["127.0.0.1:0"]
admin_networks = ["127.0.0.1/32"]
`)
	srv := runServer(t, cfg, testenv.Logger(t))
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

	if err := st.Put(t.Context(), store.Entry{List: store.White, Key: "friend@partner.test", Kind: store.KindFrom}); err != nil {
		t.Fatal(err)
	}
	for !srv.Lists().WhiteFrom("friend@partner.test", "taro@example.jp") {
		if time.Now().After(deadline) {
			t.Fatal("white entry not followed within 2 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// session sends MAIL from and RCPT to from the client address ip; it returns the RCPT
	// error and, when RCPT passed, sends a message.
	session := func(ip, from, to string) error {
		t.Helper()
		conn, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}).Dial("tcp", srv.SMTPAddrs()[0].String())
		if err != nil {
			t.Fatal(err)
		}
		c := smtp.NewClient(conn)
		defer c.Close()
		if err := c.Mail(from, nil); err != nil {
			t.Fatal(err)
		}
		if err := c.Rcpt(to, nil); err != nil {
			return err
		}
		w, err := c.Data()
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(w, "From: %s\r\nSubject: hello\r\n\r\nhello\r\n", from)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return c.Quit()
	}
	if err := session("127.0.0.2", "friend@partner.test", "taro@example.jp"); err != nil { // pass
		t.Fatal(err)
	}
	if err := session("127.0.0.2", "stranger@elsewhere.test", "taro@example.jp"); err != nil { // held
		t.Fatal(err)
	}
	if err := session("127.0.0.2", "x@elsewhere.test", "someone@other.test"); err == nil || !strings.Contains(err.Error(), "554") && !strings.Contains(err.Error(), "550") {
		t.Fatalf("RCPT to a foreign domain from outside: %v, want a relay refusal", err)
	}
	// A spammer at 127.0.0.9 writes to the decoy.
	if err := session("127.0.0.9", "spam@bulk.test", "trap@example.jp"); err == nil || !strings.Contains(err.Error(), "550") {
		t.Fatalf("RCPT to the decoy: %v, want 550", err)
	}
	if !srv.Lists().BlackIP(netip.MustParseAddr("127.0.0.9"), time.Now()) {
		t.Fatal("the decoy hit did not put 127.0.0.9 in BLACK")
	}
	// What the recorder does every minute, now.
	if err := srv.recorder.Record(t.Context()); err != nil {
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
	if code != http.StatusOK || !strings.Contains(body, `<svg`) {
		t.Fatalf("overview: %d\n%s", code, body)
	}
	for _, row := range []string{"pass</td><td>1<", "held</td><td>1<", "relay refused</td><td>1<", "decoy hits</td><td>1<"} {
		if !strings.Contains(body, "<tr><td>"+row) {
			t.Errorf("overview totals lack %q (from the real SMTP traffic)\n%s", row, body)
		}
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
