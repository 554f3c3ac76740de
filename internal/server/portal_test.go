package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/sekisho/sekisho/internal/password"
	"github.com/sekisho/sekisho/internal/store"
	"github.com/sekisho/sekisho/internal/testenv"
)

// The portal's user in the end-to-end tests, and the outside senders.
const (
	portalUser = "taro@example.jp"
	portalPW   = "correct horse battery"
	friend     = "friend@partner.test"
)

// portalServer runs a whole sekisho (SMTP, HTTPS app at mx.example.jp, SQLite) with one
// user, and returns the HTTPS address.
func portalServer(t *testing.T) (*Server, *testenv.Upstream, string) {
	t.Helper()
	up := testenv.NewUpstream(t, "tcp4")
	cfg := parse(t, fmt.Sprintf(`hostname = "mx.example.jp"
data_dir = %q
[smtp]
local_domains = ["example.jp", "alias.example.jp"]
relay_networks = []
[[smtp.listener]]
address = "127.0.0.1:0"
tls = "none"
[smtp.upstream]
servers = [%q]
tls = "none"
[web]
listen = ["127.0.0.1:0"]
`, t.TempDir(), up.Addr))
	srv := runServer(t, cfg, testenv.Logger(t))
	h, err := password.Hash(portalPW)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Store().PutUser(t.Context(), store.User{Address: portalUser, PasswordHash: h}); err != nil {
		t.Fatal(err)
	}
	https, _ := srv.web.Addrs()
	return srv, up, https[0].String()
}

// smtpSend sends one message with the Go SMTP client; it returns the error of the
// transaction (an *smtp.SMTPError for a refusal).
func smtpSend(t *testing.T, srv *Server, from, to, subject string) error {
	t.Helper()
	c, err := smtp.Dial(srv.SMTPAddrs()[0].String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.SendMail(from, []string{to}, strings.NewReader("From: "+from+"\r\nSubject: "+subject+"\r\n\r\nbody of "+subject+"\r\n"))
}

// swaksSend sends one message with swaks and returns its transcript and exit code.
func swaksSend(t *testing.T, srv *Server, from, to, subject string) (string, int) {
	t.Helper()
	bin, err := exec.LookPath("swaks")
	if err != nil {
		t.Fatalf("swaks is needed for this test (Debian package swaks, installed by .ci/run): %v", err)
	}
	host, port, _ := net.SplitHostPort(srv.SMTPAddrs()[0].String())
	out, err := exec.CommandContext(t.Context(), bin, "--timeout", "30", "--server", host, "--port", port,
		"--ehlo", "swaks-client.test", "-f", from, "-t", to, "--header", "Subject: "+subject, "--body", "body of "+subject).CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("swaks: %v\n%s", err, out)
	}
	return string(out), code
}

// waitHeld waits until n messages are held.
func waitHeld(t *testing.T, srv *Server, n int) []store.Held {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		held, err := srv.Store().HeldList(t.Context(), store.HeldQuery{Owner: portalUser})
		if err != nil {
			t.Fatal(err)
		}
		if len(held) == n {
			return held
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d messages held, want %d", len(held), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// portalClient is a Go HTTP client with a cookie jar that reaches https://mx.example.jp/ at the
// server's HTTPS listener.
type portalClient struct {
	t    *testing.T
	c    *http.Client
	csrf string
}

func newPortalClient(t *testing.T, httpsAddr string) *portalClient {
	jar, _ := cookiejar.New(nil)
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, // the server's self-signed certificate
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, httpsAddr)
		},
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &portalClient{t: t, c: &http.Client{Jar: jar, Transport: tr, Timeout: 30 * time.Second}}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// do sends a request (following redirects) and returns the final status and page; every
// page's CSRF token is remembered for the next form.
func (b *portalClient) do(method, path string, form url.Values) (int, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		form.Set("csrf", b.csrf)
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequestWithContext(b.t.Context(), method, "https://mx.example.jp"+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	page, _ := io.ReadAll(resp.Body)
	if m := csrfField.FindSubmatch(page); m != nil {
		b.csrf = string(m[1])
	}
	return resp.StatusCode, string(page)
}

// The portal through the real server: log in over HTTPS, make an alias, real SMTP mail to it
// passes and the page shows the hit and its sender; disabled, the next mail is refused 550;
// a sender held before passes once whitelisted; the held message is released from the page
// and arrives upstream.
func TestPortalEndToEnd(t *testing.T) {
	srv, up, httpsAddr := portalServer(t)
	b := newPortalClient(t, httpsAddr)

	// Log in: the login form carries a double-submit token.
	_, page := b.do("GET", "/", nil)
	token := regexp.MustCompile(`name="token" value="([^"]+)"`).FindStringSubmatch(page)
	if token == nil {
		t.Fatalf("GET / did not lead to the login form:\n%s", page)
	}
	code, page := b.do("POST", "/login", url.Values{"token": {token[1]}, "address": {portalUser}, "password": {portalPW}})
	if code != 200 || !strings.Contains(page, "<h1>My aliases</h1>") || b.csrf == "" {
		t.Fatalf("after login: %d\n%s", code, page)
	}

	// A sender unknown so far is held.
	if err := smtpSend(t, srv, friend, portalUser, "first try"); err != nil {
		t.Fatalf("mail from a stranger: %v", err)
	}
	held := waitHeld(t, srv, 1)

	// An alias for the friend; whitelist the friend.
	code, page = b.do("POST", "/portal/aliases", url.Values{"note": {"Partner"}, "domain": {"alias.example.jp"}})
	m := regexp.MustCompile(`id="new-alias" type="text" readonly value="([a-z0-9]{12}@alias\.example\.jp)"`).FindStringSubmatch(page)
	if code != 200 || m == nil {
		t.Fatalf("create alias: %d\n%s", code, page)
	}
	alias := m[1]
	if code, page = b.do("POST", "/portal/white", url.Values{"entry": {friend}, "kind": {"from"}}); code != 200 || !strings.Contains(page, `data-entry="`+friend+`"`) {
		t.Fatalf("whitelist %s: %d\n%s", friend, code, page)
	}

	// The whitelisted sender passes now, to the mailbox and (with swaks) to the alias.
	if err := smtpSend(t, srv, friend, portalUser, "second try"); err != nil {
		t.Fatalf("mail from the whitelisted sender: %v", err)
	}
	if got := up.Wait(t, 1)[0]; !strings.Contains(string(got.Data), "second try") || got.To[0] != portalUser {
		t.Fatalf("upstream got %v %q", got.To, got.Data)
	}
	if out, rc := swaksSend(t, srv, friend, alias, "via alias"); rc != 0 {
		t.Fatalf("swaks to the alias: exit %d\n%s", rc, out)
	}
	if got := up.Wait(t, 2)[1]; !strings.Contains(string(got.Data), "via alias") || got.To[0] != portalUser {
		t.Fatalf("alias mail reached upstream as %v %q", got.To, got.Data)
	}
	_, page = b.do("GET", "/portal/aliases", nil)
	row := page[strings.Index(page, `data-alias="`+alias+`"`):]
	row = row[:strings.Index(row, "</tr>")]
	if !strings.Contains(row, `<td class="hits">1</td>`) || !strings.Contains(row, `<td class="opt last-sender">`+friend+`</td>`) {
		t.Fatalf("alias row does not show the hit and its sender:\n%s", row)
	}

	// Disabled, the alias refuses the next mail.
	if code, page = b.do("POST", "/portal/aliases/disable", url.Values{"alias": {alias}}); code != 200 || !strings.Contains(page, "Alias disabled") {
		t.Fatalf("disable: %d\n%s", code, page)
	}
	err := smtpSend(t, srv, friend, alias, "after disable")
	if se, ok := err.(*smtp.SMTPError); !ok || se.Code != 550 {
		t.Fatalf("mail to the disabled alias: %v, want 550", err)
	}

	// The message held at first is released from the held-mail page.
	_, page = b.do("GET", "/portal/held", nil)
	if !strings.Contains(page, `data-held="`+held[0].ID+`"`) || !strings.Contains(page, "first try") {
		t.Fatalf("held page:\n%s", page)
	}
	if _, page = b.do("GET", "/portal/held/"+held[0].ID, nil); !strings.Contains(page, "body of first try") {
		t.Fatalf("held message page:\n%s", page)
	}
	if code, page = b.do("POST", "/portal/held/"+held[0].ID+"/release", url.Values{}); code != 200 || !strings.Contains(page, "Released.") {
		t.Fatalf("release: %d\n%s", code, page)
	}
	if got := up.Wait(t, 3)[2]; !strings.Contains(string(got.Data), "body of first try") || got.From != friend || got.To[0] != portalUser {
		t.Fatalf("released message: %s -> %v %q", got.From, got.To, got.Data)
	}
	waitHeld(t, srv, 0)
	if n := len(up.Messages()); n != 3 {
		t.Fatalf("upstream got %d messages, want 3", n)
	}
}
