package smtpproxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/sekisho/sekisho/internal/certs"
	"github.com/sekisho/sekisho/internal/lists"
	"github.com/sekisho/sekisho/internal/password"
	"github.com/sekisho/sekisho/internal/store"
	"github.com/sekisho/sekisho/internal/store/sqlite"
	"github.com/sekisho/sekisho/internal/testenv"
	"github.com/sekisho/sekisho/internal/upstream"
)

// harness is a running proxy with a real store and a real upstream SMTP server.
type harness struct {
	t     testing.TB
	addr  string // SMTP listener
	store store.Store
	lists *lists.Lists
	up    *testenv.Upstream
	proxy *Proxy
	tls   *tls.Config
}

type harnessOpts struct {
	listener Listener
	opts     func(*Options)
	deps     func(*Deps)
	servers  []string     // upstream servers; default the test upstream
	logger   *slog.Logger // default: debug into the test's output
}

func newHarness(t testing.TB, ho harnessOpts) *harness {
	t.Helper()
	ctx := t.Context()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	l := lists.New()
	up := testenv.NewUpstream(t, "tcp4")
	servers := ho.servers
	if servers == nil {
		servers = []string{up.Addr}
	}
	pool, err := upstream.New(upstream.Options{Servers: servers, TLS: "none", HeloName: "mx.example.jp", ConnectTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	opts := Options{
		Hostname: "mx.example.jp", LocalDomains: []string{"example.jp"},
		RelayNetworks:   []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		MaxMessageBytes: 1 << 20, MaxRecipients: 10, DecoyAction: "reject", BlackAction: "reject",
		BlackTTL: time.Hour, NullSender: "verify", ConfirmScope: "sender", HoldFor: time.Hour, MaxHeldPerSender: 3,
	}
	if ho.opts != nil {
		ho.opts(&opts)
	}
	log := ho.logger
	if log == nil {
		log = testenv.Logger(t)
	}
	deps := Deps{Store: st, Lists: l, Upstream: pool, Logger: log}
	if ho.deps != nil {
		ho.deps(&deps)
	}
	p := New(opts, deps)
	lc := ho.listener
	if lc.Role == "" {
		lc.Role = "mx"
	}
	if lc.TLS == "" {
		lc.TLS = "starttls"
	}
	certFile, keyFile := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	if err := certs.SelfSigned(certFile, keyFile, "mx.example.jp", time.Hour); err != nil {
		t.Fatal(err)
	}
	tc, err := certs.Load(certFile, keyFile, "", "")
	if err != nil {
		t.Fatal(err)
	}
	lc.TLSConfig = tc
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go p.Serve(ln, lc)
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		p.Shutdown(sctx)
	})
	return &harness{t: t, addr: ln.Addr().String(), store: st, lists: l, up: up, proxy: p, tls: tc}
}

// put adds a list entry through the store and brings the lists up to date.
func (h *harness) put(e store.Entry) {
	h.t.Helper()
	if err := h.store.Put(h.t.Context(), e); err != nil {
		h.t.Fatal(err)
	}
	if err := h.lists.CatchUp(h.t.Context(), h.store); err != nil {
		h.t.Fatal(err)
	}
}

// client is a raw SMTP client from a chosen loopback address, so tests see every reply code
// and can send what no well-behaved library would.
type client struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
}

// dial connects from local (e.g. "127.0.0.2": an outside client) and reads the greeting.
func (h *harness) dial(local string) (*client, string) {
	h.t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 2 * time.Second}
	c, err := d.Dial("tcp", h.addr)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	cl := &client{t: h.t, conn: c, r: bufio.NewReader(c)}
	return cl, cl.reply()
}

// reply reads one (possibly multi-line) reply and returns its last line.
func (c *client) reply() string {
	c.t.Helper()
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			return "EOF: " + err.Error()
		}
		line = strings.TrimRight(line, "\r\n")
		if len(line) < 4 || line[3] != '-' {
			return line
		}
	}
}

// cmd sends one command line and returns the reply.
func (c *client) cmd(format string, a ...any) string {
	c.t.Helper()
	fmt.Fprintf(c.conn, format+"\r\n", a...)
	return c.reply()
}

// expect sends a command and fails the test unless the reply starts with want.
func (c *client) expect(want, format string, a ...any) string {
	c.t.Helper()
	got := c.cmd(format, a...)
	if !strings.HasPrefix(got, want) {
		c.t.Fatalf("%s: got %q, want %q", fmt.Sprintf(format, a...), got, want)
	}
	return got
}

// send runs a whole transaction and returns the final reply to DATA.
func (c *client) send(from string, to []string, body string) string {
	c.t.Helper()
	c.expect("250", "EHLO client.test")
	c.expect("250", "MAIL FROM:<%s>", from)
	for _, r := range to {
		c.expect("250", "RCPT TO:<%s>", r)
	}
	c.expect("354", "DATA")
	fmt.Fprint(c.conn, body)
	return c.cmd(".")
}

const testBody = "From: a@b.test\r\nSubject: hello\r\n\r\nbody line\r\n"

func TestWhitelistedSenderIsForwarded(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.put(store.Entry{List: store.White, Key: "friend@partner.test", Kind: store.KindFrom})
	c, greet := h.dial("127.0.0.2")
	if !strings.HasPrefix(greet, "220 ") {
		t.Fatalf("greeting %q", greet)
	}
	if got := c.send("friend@partner.test", []string{"taro@example.jp"}, testBody); !strings.HasPrefix(got, "250") {
		t.Fatalf("DATA reply %q, want 250", got)
	}
	msgs := h.up.Wait(t, 1)
	m := msgs[0]
	if m.From != "friend@partner.test" || len(m.To) != 1 || m.To[0] != "taro@example.jp" {
		t.Errorf("upstream envelope = %s -> %v", m.From, m.To)
	}
	if !strings.HasPrefix(string(m.Data), "Received: from client.test ([127.0.0.2])\r\n\tby mx.example.jp (sekisho)") {
		t.Errorf("no Received header first:\n%s", m.Data)
	}
	if !strings.HasSuffix(string(m.Data), testBody) {
		t.Errorf("body changed:\n%q", m.Data)
	}
	if held, _ := h.store.HeldList(t.Context(), store.HeldQuery{}); len(held) != 0 {
		t.Errorf("held %d messages, want 0", len(held))
	}
}

func TestUnknownSenderIsHeld(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	c, _ := h.dial("127.0.0.2")
	if got := c.send("stranger@else.test", []string{"taro@example.jp"}, testBody); !strings.HasPrefix(got, "250") {
		t.Fatalf("DATA reply %q, want 250", got)
	}
	held, err := h.store.HeldList(t.Context(), store.HeldQuery{Owner: "taro@example.jp"})
	if err != nil || len(held) != 1 {
		t.Fatalf("held = %+v, %v; want 1", held, err)
	}
	if held[0].From != "stranger@else.test" || held[0].Subject != "hello" || held[0].Rcpts[0].Reason != "unknown-sender" {
		t.Errorf("held message = %+v", held[0])
	}
	_, data, _ := h.store.HeldGet(t.Context(), held[0].ID)
	if !strings.HasPrefix(string(data), "Received: ") || !strings.HasSuffix(string(data), testBody) {
		t.Errorf("held data = %q", data)
	}
	if n := len(h.up.Messages()); n != 0 {
		t.Errorf("upstream got %d messages, want 0", n)
	}
}

func TestMixedRecipientsPassAndHold(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.put(store.Entry{List: store.White, Key: "@partner.test", Kind: store.KindFrom, Owner: "taro@example.jp"})
	c, _ := h.dial("127.0.0.2")
	if got := c.send("x@partner.test", []string{"taro@example.jp", "hanako@example.jp"}, testBody); !strings.HasPrefix(got, "250") {
		t.Fatalf("DATA reply %q", got)
	}
	m := h.up.Wait(t, 1)[0]
	if len(m.To) != 1 || m.To[0] != "taro@example.jp" {
		t.Errorf("upstream recipients = %v, want only taro (hanako did not whitelist the sender)", m.To)
	}
	held, _ := h.store.HeldList(t.Context(), store.HeldQuery{Owner: "hanako@example.jp"})
	if len(held) != 1 || len(held[0].Rcpts) != 1 {
		t.Fatalf("held for hanako = %+v", held)
	}
}

func TestDecoyBlacklistsClient(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.put(store.Entry{List: store.Decoy, Key: "trap@example.jp"})
	c, _ := h.dial("127.0.0.3")
	c.expect("250", "EHLO spammer.test")
	c.expect("250", "MAIL FROM:<s@spam.test>")
	c.expect("550 5.1.1", "RCPT TO:<trap@example.jp>")
	c.expect("554 5.7.1", "RCPT TO:<taro@example.jp>")
	c.expect("554 5.7.1", "MAIL FROM:<s@spam.test>")
	entries, _ := h.store.Entries(t.Context(), store.Black, store.Query{})
	if len(entries) != 1 || entries[0].Key != "127.0.0.3" || entries[0].Source != "decoy" || entries[0].Expires.IsZero() {
		t.Fatalf("BLACK = %+v, want the client with source decoy and an expiry", entries)
	}
	c2, greet := h.dial("127.0.0.3")
	if !strings.HasPrefix(greet, "554 5.7.1") {
		t.Fatalf("greeting to a blacklisted client = %q, want 554 5.7.1", greet)
	}
	c2.expect("554", "EHLO again.test")
	c2.expect("221", "QUIT")
	// Another client is not affected.
	_, greet = h.dial("127.0.0.4")
	if !strings.HasPrefix(greet, "220") {
		t.Fatalf("greeting to another client = %q", greet)
	}
}

func TestDecoyDiscard(t *testing.T) {
	h := newHarness(t, harnessOpts{opts: func(o *Options) { o.DecoyAction = "discard" }})
	h.put(store.Entry{List: store.Decoy, Key: "trap@example.jp"})
	c, _ := h.dial("127.0.0.3")
	// The decoy RCPT is answered 250 and dropped; after the hit the session refuses
	// everything, DATA included.
	if got := c.send("s@spam.test", []string{"trap@example.jp"}, testBody); !strings.HasPrefix(got, "554 5.7.1") {
		t.Fatalf("DATA reply %q, want 554 5.7.1", got)
	}
	if !h.lists.BlackIP(netip.MustParseAddr("127.0.0.3"), time.Now()) {
		t.Error("client not blacklisted by a discarded decoy hit")
	}
	if n := len(h.up.Messages()); n != 0 {
		t.Errorf("upstream got %d messages", n)
	}
}

func TestBlackTempfail(t *testing.T) {
	h := newHarness(t, harnessOpts{opts: func(o *Options) { o.BlackAction = "tempfail" }})
	h.put(store.Entry{List: store.Black, Key: "127.0.0.0/24"})
	_, greet := h.dial("127.0.0.5")
	if !strings.HasPrefix(greet, "421 4.7.1") {
		t.Fatalf("greeting = %q, want 421 4.7.1", greet)
	}
}

func TestRcptSyntaxRefused(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	c, _ := h.dial("127.0.0.1") // even a trusted client
	c.expect("250", "EHLO client.test")
	c.expect("250", "MAIL FROM:<a@b.test>")
	for _, rcpt := range []string{
		"<@relay.test:user@victim.test>",
		"<@a.test,@b.test:taro@example.jp>",
		"<victim.test!user@example.jp>",
		"<user%victim.test@example.jp>",
		"<\"a@b\"@example.jp>",
		"<taro@[127.0.0.1]>",
	} {
		c.expect("553 5.1.3", "RCPT TO:%s", rcpt)
	}
	c.expect("250", "RCPT TO:<taro@example.jp>")
	c.expect("354", "DATA")
	fmt.Fprint(c.conn, testBody)
	c.expect("250", ".")
	m := h.up.Wait(t, 1)[0]
	if len(m.To) != 1 || m.To[0] != "taro@example.jp" {
		t.Fatalf("upstream recipients = %v: a refused address was forwarded", m.To)
	}
}

func TestRelayDenied(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	c, _ := h.dial("127.0.0.2")
	c.expect("250", "EHLO client.test")
	c.expect("250", "MAIL FROM:<a@b.test>")
	c.expect("554 5.7.1", "RCPT TO:<victim@elsewhere.test>")
}

func TestBareLineEndingsRefused(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.put(store.Entry{List: store.White, Key: "friend@partner.test", Kind: store.KindFrom})
	for _, body := range []string{
		"Subject: x\r\n\r\nline\nsmuggled\r\n",
		"Subject: x\r\n\r\nline\rsmuggled\r\n",
		"Subject: x\r\n\r\nend\n.\r\nMAIL FROM:<x@y>\r\n",
	} {
		c, _ := h.dial("127.0.0.2")
		if got := c.send("friend@partner.test", []string{"taro@example.jp"}, body); !strings.HasPrefix(got, "550 5.6.0") {
			t.Errorf("body %q: reply %q, want 550 5.6.0", body, got)
		}
	}
	if n := len(h.up.Messages()); n != 0 {
		t.Errorf("upstream got %d messages", n)
	}
	if held, _ := h.store.HeldList(t.Context(), store.HeldQuery{}); len(held) != 0 {
		t.Errorf("held %d messages", len(held))
	}
}

func TestMessageTooBig(t *testing.T) {
	h := newHarness(t, harnessOpts{opts: func(o *Options) { o.MaxMessageBytes = 1000 }})
	h.put(store.Entry{List: store.White, Key: "friend@partner.test", Kind: store.KindFrom})
	c, _ := h.dial("127.0.0.2")
	body := "Subject: big\r\n\r\n" + strings.Repeat("0123456789\r\n", 200)
	if got := c.send("friend@partner.test", []string{"taro@example.jp"}, body); !strings.HasPrefix(got, "552 5.3.4") {
		t.Fatalf("reply %q, want 552 5.3.4", got)
	}
}

func TestAlias(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.put(store.Entry{List: store.Alias, Key: "shop1@example.jp", Target: "taro@example.jp", Owner: "taro@example.jp"})
	h.put(store.Entry{List: store.Alias, Key: "old@example.jp", Target: "taro@example.jp", Owner: "taro@example.jp", Disabled: true})
	h.put(store.Entry{List: store.White, Key: "shop@store.test", Kind: store.KindFrom, Owner: "taro@example.jp"})
	c, _ := h.dial("127.0.0.2")
	if got := c.send("shop@store.test", []string{"shop1@example.jp"}, testBody); !strings.HasPrefix(got, "250") {
		t.Fatalf("reply %q", got)
	}
	m := h.up.Wait(t, 1)[0]
	if len(m.To) != 1 || m.To[0] != "taro@example.jp" {
		t.Errorf("alias delivered to %v, want taro@example.jp", m.To)
	}
	c.expect("250", "MAIL FROM:<shop@store.test>")
	c.expect("550 5.1.1", "RCPT TO:<old@example.jp>")
	e, _ := h.store.Entries(t.Context(), store.Alias, store.Query{Q: "shop1"})
	if len(e) != 1 || e[0].Hits != 1 || e[0].LastSender != "shop@store.test" {
		t.Errorf("alias hit not counted: %+v", e)
	}
}

func TestOutboundAddsReversePair(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	c, _ := h.dial("127.0.0.1") // in relay_networks
	if got := c.send("taro@example.jp", []string{"friend@outside.test"}, testBody); !strings.HasPrefix(got, "250") {
		t.Fatalf("outbound reply %q", got)
	}
	h.up.Wait(t, 1)
	if !h.lists.RelayPair("friend@outside.test", "taro@example.jp") {
		t.Fatal("reverse pair not in RELAY after outbound mail")
	}
	// The reply from outside passes.
	c2, _ := h.dial("127.0.0.2")
	if got := c2.send("friend@outside.test", []string{"taro@example.jp"}, testBody); !strings.HasPrefix(got, "250") {
		t.Fatalf("reply reply %q", got)
	}
	h.up.Wait(t, 2)
}

func TestUpstreamRcptRejectionRelayed(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.up.RejectRcpt("nobody@example.jp", &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user here"})
	c, _ := h.dial("127.0.0.2")
	c.expect("250", "EHLO client.test")
	c.expect("250", "MAIL FROM:<a@b.test>")
	c.expect("550 5.1.1 no such user here", "RCPT TO:<nobody@example.jp>")
}

func TestUpstreamDown(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := l.Addr().String()
	l.Close()
	h := newHarness(t, harnessOpts{servers: []string{dead}})
	c, _ := h.dial("127.0.0.2")
	c.expect("250", "EHLO client.test")
	c.expect("250", "MAIL FROM:<a@b.test>")
	c.expect("451 4.4.1", "RCPT TO:<taro@example.jp>")
	if held, _ := h.store.HeldList(t.Context(), store.HeldQuery{}); len(held) != 0 {
		t.Errorf("held %d messages with every upstream down", len(held))
	}
}

func TestUpstreamDataFailureKeepsNothing(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.put(store.Entry{List: store.White, Key: "x@partner.test", Kind: store.KindFrom, Owner: "taro@example.jp"})
	h.up.FailData(&smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 3, 1}, Message: "disk full"})
	c, _ := h.dial("127.0.0.2")
	got := c.send("x@partner.test", []string{"taro@example.jp", "hanako@example.jp"}, testBody)
	if !strings.HasPrefix(got, "452 4.3.1") {
		t.Fatalf("reply %q, want the upstream's 452 relayed", got)
	}
	if held, _ := h.store.HeldList(t.Context(), store.HeldQuery{}); len(held) != 0 {
		t.Errorf("held copy kept although the client was told to retry: %+v", held)
	}
}

func TestHeldQuota(t *testing.T) {
	h := newHarness(t, harnessOpts{opts: func(o *Options) { o.MaxHeldPerSender = 2 }})
	c, _ := h.dial("127.0.0.2")
	for i := range 3 {
		got := c.send("stranger@else.test", []string{"taro@example.jp"}, testBody)
		want := "250"
		if i == 2 {
			want = "452 4.2.2"
		}
		if !strings.HasPrefix(got, want) {
			t.Fatalf("message %d: reply %q, want %s", i, got, want)
		}
	}
}

func TestRequireTLS(t *testing.T) {
	h := newHarness(t, harnessOpts{listener: Listener{RequireTLS: true}})
	c, _ := h.dial("127.0.0.2")
	c.expect("250", "EHLO client.test")
	c.expect("530 5.7.0", "MAIL FROM:<a@b.test>")
	c.expect("220", "STARTTLS")
	tc := tls.Client(c.conn, &tls.Config{InsecureSkipVerify: true})
	c.conn, c.r = tc, bufio.NewReader(tc)
	c.expect("250", "EHLO client.test")
	c.expect("250", "MAIL FROM:<a@b.test>")
	// The RCPT checks still see the raw path after STARTTLS.
	c.expect("553 5.1.3", "RCPT TO:<@relay.test:taro@example.jp>")
	c.expect("250", "RCPT TO:<taro@example.jp>")
}

func TestSubmissionAuth(t *testing.T) {
	h := newHarness(t, harnessOpts{listener: Listener{Role: "submission"}})
	hash, _ := password.Hash("secret")
	if err := h.store.PutUser(t.Context(), store.User{Address: "taro@example.jp", PasswordHash: hash}); err != nil {
		t.Fatal(err)
	}
	c, _ := h.dial("127.0.0.2")
	c.expect("250", "EHLO client.test")
	c.expect("530 5.7.0", "MAIL FROM:<taro@example.jp>")
	c.expect("220", "STARTTLS")
	tc := tls.Client(c.conn, &tls.Config{InsecureSkipVerify: true})
	c.conn, c.r = tc, bufio.NewReader(tc)
	c.expect("250", "EHLO client.test")
	c.expect("535", "AUTH PLAIN %s", plain("taro@example.jp", "wrong"))
	c.expect("235", "AUTH PLAIN %s", plain("taro@example.jp", "secret"))
	// A second EHLO (send starts with one) keeps the authentication: the relay goes through.
	if got := c.send("taro@example.jp", []string{"friend@outside.test"}, testBody); !strings.HasPrefix(got, "250") {
		t.Fatalf("authenticated relay: %q", got)
	}
	m := h.up.Wait(t, 1)[0]
	if m.To[0] != "friend@outside.test" {
		t.Errorf("upstream recipients %v", m.To)
	}
	if !strings.Contains(string(m.Data), "with ESMTPSA") {
		t.Errorf("Received does not say ESMTPSA:\n%s", m.Data)
	}
}

func plain(user, pw string) string {
	return base64Std("\x00" + user + "\x00" + pw)
}

func TestShutdownRefusesNewTransactions(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	c, _ := h.dial("127.0.0.2")
	c.expect("250", "EHLO client.test")
	done := make(chan struct{})
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		h.proxy.Shutdown(ctx)
		close(done)
	}()
	time.Sleep(50 * time.Millisecond)
	c.expect("421 4.3.2", "MAIL FROM:<a@b.test>")
	<-done
}

// Replies and bounces of mail our users sent pass; other null-sender mail is held.
func TestRepliesAndBouncesOfOurMailPass(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	c, _ := h.dial("127.0.0.1") // our user, in relay_networks
	out := "Message-ID: <Abc.123@example.jp>\r\nSubject: hello\r\n\r\nhi\r\n"
	if got := c.send("taro@example.jp", []string{"someone@far.test"}, out); !strings.HasPrefix(got, "250") {
		t.Fatalf("outbound: %q", got)
	}
	h.up.Wait(t, 1)
	ext, _ := h.dial("127.0.0.2")
	reply := "In-Reply-To: <abc.123@example.jp>\r\nSubject: Re: hello\r\n\r\nthanks\r\n"
	if got := ext.send("colleague@other.test", []string{"taro@example.jp"}, reply); !strings.HasPrefix(got, "250") {
		t.Fatalf("reply: %q", got)
	}
	h.up.Wait(t, 2) // a stranger's reply to our mail passed
	bounce := "Subject: Undelivered Mail\r\nContent-Type: multipart/report\r\n\r\n--b\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <abc.123@example.jp>\r\n--b--\r\n"
	if got := ext.send("", []string{"taro@example.jp"}, bounce); !strings.HasPrefix(got, "250") {
		t.Fatalf("bounce: %q", got)
	}
	h.up.Wait(t, 3)
	spam := "Subject: Undelivered Mail\r\n\r\nMessage-ID: <forged@spam.test>\r\n"
	if got := ext.send("", []string{"taro@example.jp"}, spam); !strings.HasPrefix(got, "250") {
		t.Fatalf("bounce-shaped spam: %q", got)
	}
	held, _ := h.store.HeldList(t.Context(), store.HeldQuery{})
	if len(held) != 1 || held[0].Rcpts[0].Reason != "null-sender" {
		t.Fatalf("held = %+v, want the bounce-shaped spam held as null-sender", held)
	}
	if n := len(h.up.Messages()); n != 3 {
		t.Fatalf("upstream got %d messages, want 3", n)
	}
}
