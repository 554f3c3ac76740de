package server

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"mime/quotedprintable"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/sekisho/sekisho/internal/store"
	"github.com/sekisho/sekisho/internal/testenv"
)

// confirmServer runs a whole sekisho with SMTP, web and an in-process DNS for the senders'
// domains.
func confirmServer(t *testing.T) (*Server, *testenv.Upstream, *testenv.DNS) {
	t.Helper()
	up := testenv.NewUpstream(t, "tcp4")
	dns := testenv.NewDNS(t)
	cfg := parse(t, fmt.Sprintf(`hostname = "mx.example.jp"
data_dir = %q
[dns]
resolver = %q
timeout = "2s"
[smtp]
local_domains = ["example.jp"]
relay_networks = []
[[smtp.listener]]
address = "127.0.0.1:0"
tls = "none"
[smtp.upstream]
servers = [%q]
tls = "none"
[antispam]
confirm_min_seconds = 1
[web]
listen = ["127.0.0.1:0"]
`, t.TempDir(), dns.Addr, up.Addr))
	return runServer(t, cfg, testenv.Logger(t)), up, dns
}

func sendFrom(t *testing.T, srv *Server, from, body string) {
	t.Helper()
	c, err := smtp.Dial(srv.SMTPAddrs()[0].String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Quit()
	if err := c.SendMail(from, []string{"taro@example.jp"}, strings.NewReader(body)); err != nil {
		t.Fatal(err)
	}
}

var confirmURL = regexp.MustCompile(`https://mx\.example\.jp/c/[A-Za-z0-9_-]{43}`)

// The heart of the product, end to end: an SPF-authenticated unknown sender is held and
// challenged; the challenge carries nothing of the held message; GET releases nothing, an
// early POST is asked again, a POST after confirm_min_seconds releases the original byte for
// byte; the sender's next message passes.
func TestChallengeConfirmRelease(t *testing.T) {
	srv, up, dns := confirmServer(t)
	dns.TXT("sender.test", "v=spf1 ip4:127.0.0.0/8 -all")
	body := "From: Alice <alice@sender.test>\r\nSubject: zebra violin\r\n\r\nthe zebra plays the violin\r\n"
	sendFrom(t, srv, "alice@sender.test", body)

	ch := up.Wait(t, 1)[0]
	if ch.From != "" || len(ch.To) != 1 || ch.To[0] != "alice@sender.test" {
		t.Fatalf("challenge envelope %q -> %v, want <> -> alice", ch.From, ch.To)
	}
	for _, want := range []string{"Auto-Submitted: auto-replied", "Message-ID: <", "Date: "} {
		if !bytes.Contains(ch.Data, []byte(want)) {
			t.Errorf("challenge lacks %q", want)
		}
	}
	if bytes.Contains(bytes.ToLower(ch.Data), []byte("zebra")) || bytes.Contains(bytes.ToLower(ch.Data), []byte("violin")) {
		t.Fatalf("the challenge carries words of the held message:\n%s", ch.Data)
	}
	_, qp, _ := bytes.Cut(ch.Data, []byte("\r\n\r\n"))
	text, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(qp)))
	if err != nil {
		t.Fatal(err)
	}
	link := confirmURL.Find(text)
	if link == nil {
		t.Fatalf("no confirmation URL in:\n%s", text)
	}

	httpsAddrs, _ := srv.web.Addrs()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	u, _ := url.Parse(string(link))
	target := "https://" + httpsAddrs[0].String() + u.Path
	do := func(method string, form url.Values) string {
		t.Helper()
		var rd io.Reader
		if form != nil {
			rd = strings.NewReader(form.Encode())
		}
		req, _ := http.NewRequest(method, target, rd)
		req.Host = "mx.example.jp"
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("%s %s: %d\n%s", method, u.Path, resp.StatusCode, b)
		}
		return string(b)
	}
	page := do("GET", nil)
	view := regexp.MustCompile(`name="v" value="([^"]+)"`).FindStringSubmatch(page)
	if view == nil || !strings.Contains(page, "t***@example.jp") {
		t.Fatalf("confirm page:\n%s", page)
	}
	if page := do("POST", url.Values{"v": {view[1]}}); !strings.Contains(page, "press the button again") {
		t.Fatalf("an immediate POST was not asked again:\n%s", page)
	}
	if n := len(up.Messages()); n != 1 {
		t.Fatalf("released before a valid confirmation: %d messages upstream", n)
	}
	// A reload (SIGHUP) replaces the upstream pool and closes the old one; the confirmation
	// page must release through the new one.
	srv.Reload(srv.cfg)
	time.Sleep(1100 * time.Millisecond)
	if page := do("POST", url.Values{"v": {view[1]}}); !strings.Contains(page, "has been delivered") {
		t.Fatalf("confirm:\n%s", page)
	}
	released := up.Wait(t, 2)[1]
	if released.From != "alice@sender.test" || !bytes.HasSuffix(released.Data, []byte(body)) {
		t.Fatalf("released message %q:\n%q", released.From, released.Data)
	}
	sendFrom(t, srv, "alice@sender.test", "Subject: again\r\n\r\nsecond\r\n")
	if next := up.Wait(t, 3)[2]; !bytes.Contains(next.Data, []byte("second")) {
		t.Fatalf("the confirmed sender's next message did not pass: %q", next.Data)
	}
	if n := srv.Metrics().Decisions()["confirmed"]; n != 1 {
		t.Errorf("confirmed recipients counted: %d, want 1", n)
	}
	if n := sample(t, srv, "sekisho_challenges_sent_total"); n != 1 {
		t.Errorf("sekisho_challenges_sent_total = %v, want 1", n)
	}
}

// A whitelisted sender whose SPF says fail is a forgery: held, and never challenged. An
// unauthenticated sender (no SPF, no DKIM) is held silently.
func TestForgedAndUnauthenticatedHeldSilently(t *testing.T) {
	srv, up, dns := confirmServer(t)
	dns.TXT("bank.test", "v=spf1 ip4:192.0.2.1 -all")
	if err := srv.Store().Put(t.Context(), store.Entry{List: store.White, Key: "@bank.test", Kind: store.KindFrom}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Second)
	for !srv.Lists().WhiteFrom("x@bank.test", "taro@example.jp") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	sendFrom(t, srv, "ceo@bank.test", "Subject: wire money\r\n\r\nnow\r\n")
	sendFrom(t, srv, "nobody@nospf.test", "Subject: hello\r\n\r\nhi\r\n")
	held, _ := srv.Store().HeldList(t.Context(), store.HeldQuery{})
	if len(held) != 2 {
		t.Fatalf("held %d messages, want both", len(held))
	}
	// What the digest and the held-mail pages show the recipient about each sender.
	auth := map[string]string{}
	for _, h := range held {
		auth[h.From] = h.Auth
	}
	if !strings.HasPrefix(auth["ceo@bank.test"], "spf=fail") || !strings.HasPrefix(auth["nobody@nospf.test"], "spf=none") {
		t.Errorf("held mail's authentication = %q, want spf=fail for the forgery and spf=none for the other", auth)
	}
	if due, err := srv.Store().OutboxDue(t.Context(), time.Now().Add(24*time.Hour), 10); err != nil || len(due) != 0 {
		t.Fatalf("outbox = %d messages (%v): a forged or unauthenticated sender was challenged", len(due), err)
	}
	time.Sleep(300 * time.Millisecond) // and nothing was sent in the meantime
	if n := len(up.Messages()); n != 0 {
		t.Fatalf("upstream got %d messages (a forged or unauthenticated sender was passed or challenged)", n)
	}
	if n := sample(t, srv, "sekisho_challenges_suppressed_total", "reason", "unauthenticated"); n != 2 {
		t.Errorf(`sekisho_challenges_suppressed_total{reason="unauthenticated"} = %v, want 2`, n)
	}
}
