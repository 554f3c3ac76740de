package wiretap_test

import (
	"bufio"
	"crypto/tls"
	"io"
	"log"
	"net"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/sekisho/sekisho/internal/testenv"
	"github.com/sekisho/sekisho/internal/wiretap"
)

// rcptCall is what the session saw in one Session.Rcpt call.
type rcptCall struct {
	Processed string // from go-smtp
	Raw       string // from NextRcpt
	OK        bool
	TLS       bool // Conn.ConnectionState
	GoSMTPTLS bool // go-smtp's Conn.TLSConnectionState
}

type backend struct {
	mu     sync.Mutex
	calls  []rcptCall
	bodies []string
	blind  []bool
}

func (b *backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	// After go-smtp's own STARTTLS, c.Conn() is go-smtp's *tls.Conn and
	// the wiretap.Conn is out of reach.
	tap, _ := c.Conn().(*wiretap.Conn)
	return &session{b: b, tap: tap, conn: c}, nil
}

func (b *backend) results() ([]rcptCall, []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]rcptCall(nil), b.calls...), append([]string(nil), b.bodies...)
}

type session struct {
	b    *backend
	tap  *wiretap.Conn
	conn *smtp.Conn
}

func (s *session) Mail(string, *smtp.MailOptions) error { return nil }

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	call := rcptCall{Processed: to}
	_, call.GoSMTPTLS = s.conn.TLSConnectionState()
	blind := true
	if s.tap != nil {
		call.Raw, call.OK = s.tap.NextRcpt(to)
		_, call.TLS = s.tap.ConnectionState()
		blind = s.tap.Blind()
	}
	s.b.mu.Lock()
	s.b.calls = append(s.b.calls, call)
	s.b.blind = append(s.b.blind, blind)
	s.b.mu.Unlock()
	if strings.HasPrefix(to, "reject") {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	}
	return nil
}

func (s *session) Data(r io.Reader) error {
	body, err := io.ReadAll(r)
	if s.tap != nil {
		if msg, tooBig, _, ok := s.tap.TakeMessage(); ok {
			if tooBig {
				return smtp.ErrDataTooLarge
			}
			body = append(body, msg...)
		}
	}
	s.b.mu.Lock()
	s.b.bodies = append(s.b.bodies, string(body))
	s.b.mu.Unlock()
	return err
}

func (s *session) Reset()        {}
func (s *session) Logout() error { return nil }

func (s *session) AuthMechanisms() []string { return []string{"X-TWO"} }

func (s *session) Auth(string) (sasl.Server, error) { return &twoStep{}, nil }

// twoStep is a SASL mechanism with two challenges, so that AUTH takes two
// 334 round trips.
type twoStep struct{ step int }

func (m *twoStep) Next([]byte) ([]byte, bool, error) {
	m.step++
	switch m.step {
	case 1:
		return []byte("one"), false, nil
	case 2:
		return []byte("two"), false, nil
	}
	return nil, true, nil
}

// tapListener wraps accepted connections, as sekisho's listeners do.
type tapListener struct {
	net.Listener
	opts wiretap.Options
}

func (l tapListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return wiretap.NewWithOptions(c, l.opts), nil
}

type serverConfig struct {
	pipe      *pipeListener // listen here instead of on TCP
	opts      wiretap.Options
	goTLS     *tls.Config // go-smtp's own Server.TLSConfig
	implicit  *tls.Config // listener TLS
	maxMsgLen int64
}

func startServer(t *testing.T, cfg serverConfig) (string, *backend) {
	t.Helper()
	be := &backend{}
	srv := smtp.NewServer(be)
	srv.Domain = "mx.test"
	srv.AllowInsecureAuth = true
	srv.TLSConfig = cfg.goTLS
	srv.MaxMessageBytes = cfg.maxMsgLen
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	srv.ErrorLog = log.New(t.Output(), "go-smtp: ", 0)
	var ln net.Listener = cfg.pipe
	if cfg.pipe == nil {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln = l
	}
	if cfg.implicit != nil {
		ln = tls.NewListener(ln, cfg.implicit)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(tapListener{ln, cfg.opts})
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
	return ln.Addr().String(), be
}

// client is a raw SMTP client: it writes exact bytes.
type client struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dial(t *testing.T, addr string, tlsCfg *tls.Config) *client {
	t.Helper()
	var c net.Conn
	var err error
	if tlsCfg != nil {
		c, err = tls.Dial("tcp", addr, tlsCfg)
	} else {
		c, err = net.Dial("tcp", addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	cl := &client{t: t, c: c, r: bufio.NewReader(c)}
	cl.expect(220)
	return cl
}

// dialPipe connects to a server on pl. Writes block until go-smtp reads
// them, so replies are read in the background.
func dialPipe(t *testing.T, pl *pipeListener) *client {
	t.Helper()
	c, err := pl.dial()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	cl := &client{t: t, c: c, r: bufio.NewReader(drain(c))}
	cl.expect(220)
	return cl
}

func (c *client) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.c, s); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// reply reads one whole reply.
func (c *client) reply() (int, []string) {
	c.t.Helper()
	var lines []string
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			c.t.Fatalf("read reply (after %q): %v", lines, err)
		}
		line = strings.TrimRight(line, "\r\n")
		lines = append(lines, line)
		if len(line) < 4 || line[3] != '-' {
			code, _ := strconv.Atoi(line[:min(3, len(line))])
			return code, lines
		}
	}
}

// expect reads one reply per code and checks the codes.
func (c *client) expect(codes ...int) [][]string {
	c.t.Helper()
	var all [][]string
	for i, want := range codes {
		got, lines := c.reply()
		if got != want {
			c.t.Fatalf("reply %d: got %q, want code %d", i, lines, want)
		}
		all = append(all, lines)
	}
	return all
}

func (c *client) startTLS(cfg *tls.Config) {
	c.t.Helper()
	if c.r.Buffered() > 0 {
		c.t.Fatalf("plaintext left after 220: %d bytes", c.r.Buffered())
	}
	tc := tls.Client(c.c, cfg)
	if err := tc.Handshake(); err != nil {
		c.t.Fatalf("handshake: %v", err)
	}
	c.c, c.r = tc, bufio.NewReader(tc)
}

func hasLine(lines []string, s string) bool {
	for _, l := range lines {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

func ok(processed, raw string) rcptCall { return rcptCall{Processed: processed, Raw: raw, OK: true} }

func checkCalls(t *testing.T, be *backend, want []rcptCall) {
	t.Helper()
	got, _ := be.results()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Session.Rcpt calls:\ngot  %+v\nwant %+v", got, want)
	}
}

func TestPipelinedRcpts(t *testing.T) {
	addr, be := startServer(t, serverConfig{})
	c := dial(t, addr, nil)
	c.send("EHLO client.test\r\n" +
		"MAIL FROM:<a@b.test>\r\n" +
		"RCPT TO:<x@y.test>\r\n" +
		"RCPT TO:<@r1,@r2:u@v.test>\r\n" +
		"RCPT TO:<\"q@w\"@z.test>\r\n" +
		"RCPT TO:<\"a>b\"@z.test>\r\n" +
		"RCPT TO:<dsn@y.test> NOTIFY=NEVER\r\n" + // 504 from go-smtp: never reaches the session
		"RCPT TO:<bad\r\n" + // 501 from go-smtp
		"RCPT  TO: <sp@y.test>\r\n" +
		"rcpt to:<lower@y.test>\r\n" +
		"RCPT TO:bare@y.test\r\n" +
		"RCPT TO:@rt:bare2@y.test\r\n" +
		"RCPT TO:<reject@y.test>\r\n" +
		"RCPT TO:<after@y.test>\r\n" +
		"QUIT\r\n")
	c.expect(250, 250, 250, 250, 250, 250, 504, 501, 250, 250, 250, 250, 550, 250, 221)
	checkCalls(t, be, []rcptCall{
		ok("x@y.test", "<x@y.test>"),
		ok("u@v.test", "<@r1,@r2:u@v.test>"),
		ok("q@w@z.test", `<"q@w"@z.test>`),
		ok("a>b@z.test", `<"a>b"@z.test>`),
		ok("sp@y.test", "<sp@y.test>"),
		ok("lower@y.test", "<lower@y.test>"),
		ok("bare@y.test", "bare@y.test"),
		ok("bare2@y.test", "@rt:bare2@y.test"),
		ok("reject@y.test", "<reject@y.test>"),
		ok("after@y.test", "<after@y.test>"),
	})
}

func TestByteByByte(t *testing.T) {
	pl := newPipeListener()
	_, be := startServer(t, serverConfig{pipe: pl})
	c := dialPipe(t, pl)
	stream := "EHLO client.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<@r:u@v.test>\r\n" +
		"DATA\r\n"
	for i := range len(stream) {
		c.send(stream[i : i+1])
	}
	c.expect(250, 250, 250, 354)
	body := "RCPT TO:<@x:hidden@z.test>\r\n.\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<@r:w@v.test>\r\nQUIT\r\n"
	for i := range len(body) {
		c.send(body[i : i+1])
	}
	c.expect(250, 250, 250, 221)
	checkCalls(t, be, []rcptCall{
		ok("u@v.test", "<@r:u@v.test>"),
		ok("w@v.test", "<@r:w@v.test>"),
	})
}

func TestBareLF(t *testing.T) {
	addr, be := startServer(t, serverConfig{})
	c := dial(t, addr, nil)
	c.send("EHLO client.test\nMAIL FROM:<a@b.test>\nRCPT TO:<@a:b@c.test>\r\r\nRCPT TO:<d@e.test>\nQUIT\n")
	c.expect(250, 250, 250, 250, 221)
	checkCalls(t, be, []rcptCall{ok("b@c.test", "<@a:b@c.test>"), ok("d@e.test", "<d@e.test>")})
}

func TestData(t *testing.T) {
	tests := []struct {
		name       string
		body       string // sent after the 354 reply
		wantBody   string
		pipelineIt bool // send the body with DATA, before 354 (RFC 2920 forbids it)
	}{
		{
			name:     "body lines look like commands",
			body:     "RCPT TO:<@x:hidden@z.test>\r\nDATA\r\nBDAT 5\r\n.\r\n",
			wantBody: "RCPT TO:<@x:hidden@z.test>\r\nDATA\r\nBDAT 5\r\n",
		},
		{
			name:     "dot stuffing",
			body:     "..\r\n..RCPT TO:<@x:hidden@z.test>\r\n.RCPT TO:<@x:h2@z.test>\r\n.\r\n",
			wantBody: ".\r\n.RCPT TO:<@x:hidden@z.test>\r\nRCPT TO:<@x:h2@z.test>\r\n",
		},
		{
			name:     "empty message",
			body:     ".\r\n",
			wantBody: "",
		},
		{
			name:     "bare LF does not end a line",
			body:     "a\n.\nRCPT TO:<@x:hidden@z.test>\n.\r\nRCPT TO:<@x:h2@z.test>\r\n\r\n.\r\n",
			wantBody: "a\n.\nRCPT TO:<@x:hidden@z.test>\n.\r\nRCPT TO:<@x:h2@z.test>\r\n\r\n",
		},
		{
			name:     "bare CR does not end a line",
			body:     "a\r.\r\nRCPT TO:<@x:hidden@z.test>\r\n.\r\n",
			wantBody: "a\r.\r\nRCPT TO:<@x:hidden@z.test>\r\n",
		},
		{
			name:       "pipelined with DATA",
			body:       "RCPT TO:<@x:hidden@z.test>\r\n.\r\n",
			wantBody:   "RCPT TO:<@x:hidden@z.test>\r\n",
			pipelineIt: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, be := startServer(t, serverConfig{})
			c := dial(t, addr, nil)
			head := "EHLO client.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<ok@y.test>\r\nDATA\r\n"
			after := "MAIL FROM:<a@b.test>\r\nRCPT TO:<@after:u@v.test>\r\nQUIT\r\n"
			if tt.pipelineIt {
				c.send(head + tt.body + after)
				c.expect(250, 250, 250, 354)
			} else {
				c.send(head)
				c.expect(250, 250, 250, 354)
				c.send(tt.body + after)
			}
			c.expect(250, 250, 250, 221)
			checkCalls(t, be, []rcptCall{ok("ok@y.test", "<ok@y.test>"), ok("u@v.test", "<@after:u@v.test>")})
			if _, bodies := be.results(); len(bodies) != 1 || bodies[0] != tt.wantBody {
				t.Errorf("bodies = %q, want [%q]", bodies, tt.wantBody)
			}
		})
	}
}

// A DATA that go-smtp refuses (no valid recipient) is followed by commands,
// not by message content, even when the client sent a "body" at once.
func TestDataRefused(t *testing.T) {
	addr, be := startServer(t, serverConfig{})
	c := dial(t, addr, nil)
	c.send("EHLO client.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<reject@y.test>\r\nDATA\r\n" +
		"RCPT TO:<@evil:v@w.test>\r\n.\r\nDATA extra\r\nRCPT TO:<@evil:v2@w.test>\r\nQUIT\r\n")
	c.expect(250, 250, 550, 502, 250, 501, 501, 250, 221)
	checkCalls(t, be, []rcptCall{
		ok("reject@y.test", "<reject@y.test>"),
		ok("v@w.test", "<@evil:v@w.test>"),
		ok("v2@w.test", "<@evil:v2@w.test>"),
	})
}

func TestDataTooLarge(t *testing.T) {
	addr, be := startServer(t, serverConfig{maxMsgLen: 10})
	c := dial(t, addr, nil)
	c.send("EHLO client.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<ok@y.test>\r\nDATA\r\n")
	c.expect(250, 250, 250, 354)
	c.send(strings.Repeat("RCPT TO:<@x:hidden@z.test>\r\n", 10) + ".\r\n" +
		"MAIL FROM:<a@b.test>\r\nRCPT TO:<@after:u@v.test>\r\nQUIT\r\n")
	c.expect(552, 250, 250, 221)
	checkCalls(t, be, []rcptCall{ok("ok@y.test", "<ok@y.test>"), ok("u@v.test", "<@after:u@v.test>")})
}

func TestBDAT(t *testing.T) {
	addr, be := startServer(t, serverConfig{})
	c := dial(t, addr, nil)
	chunk := "RCPT TO:<@x:hidden@z.test>\r\nBDAT 3\r\n"
	c.send("EHLO client.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<ok@y.test>\r\n" +
		"BDAT " + strconv.Itoa(len(chunk)) + "\r\n" + chunk +
		"BDAT 13 LAST\r\nRCPT TO:<@x\r\n" +
		"MAIL FROM:<a@b.test>\r\nRCPT TO:<@after:u@v.test>\r\n" +
		"BDAT x\r\nRCPT TO:<@bad-bdat:w@v.test>\r\n" + // go-smtp refuses BDAT x and reads no chunk
		"BDAT 1 MORE\r\nRCPT TO:<@bad-bdat:w2@v.test>\r\n" +
		"RSET\r\nBDAT " + strconv.Itoa(len(chunk)) + "\r\n" + chunk + // no recipients: refused, chunk read anyway
		"QUIT\r\n")
	c.expect(250, 250, 250, 250, 250, 250, 250, 501, 250, 501, 250, 250, 502, 221)
	checkCalls(t, be, []rcptCall{
		ok("ok@y.test", "<ok@y.test>"),
		ok("u@v.test", "<@after:u@v.test>"),
		ok("w@v.test", "<@bad-bdat:w@v.test>"),
		ok("w2@v.test", "<@bad-bdat:w2@v.test>"),
	})
	if _, bodies := be.results(); len(bodies) != 1 || bodies[0] != chunk+"RCPT TO:<@x\r\n" {
		t.Errorf("bodies = %q", bodies)
	}
}

func TestAuth(t *testing.T) {
	addr, be := startServer(t, serverConfig{})
	c := dial(t, addr, nil)
	c.send("EHLO client.test\r\nAUTH X-TWO\r\n")
	c.expect(250, 334)
	// A response line that looks like a command is a response.
	c.send("b25l\r\n")
	c.expect(334)
	c.send("dHdv\r\n")
	c.expect(235)
	// Pipelined against the rules: the line after AUTH is still its
	// response (not base64: go-smtp gives up with 454), then commands.
	c.send("RSET\r\nAUTH X-TWO\r\nRCPT TO:<@x:hidden@z.test>\r\n" +
		"MAIL FROM:<a@b.test>\r\nRCPT TO:<@real:u@v.test>\r\nQUIT\r\n")
	c.expect(250, 503, 502, 250, 250, 221)
	checkCalls(t, be, []rcptCall{ok("u@v.test", "<@real:u@v.test>")})
}

func TestAuthResponsePipelined(t *testing.T) {
	addr, be := startServer(t, serverConfig{})
	c := dial(t, addr, nil)
	c.send("EHLO client.test\r\nAUTH X-TWO\r\nRCPT TO:<@x:hidden@z.test>\r\n" +
		"MAIL FROM:<a@b.test>\r\nRCPT TO:<@real:u@v.test>\r\nQUIT\r\n")
	c.expect(250, 334, 454, 250, 250, 221)
	checkCalls(t, be, []rcptCall{ok("u@v.test", "<@real:u@v.test>")})
}

func TestPreGreetingAndErrors(t *testing.T) {
	addr, be := startServer(t, serverConfig{})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	// Sent before the greeting; includes lines go-smtp refuses.
	if _, err := io.WriteString(c, "EHLO client.test\r\nMAIL FROM:<a@b.test>\r\n\r\nXY\r\nRCPT TO:<@r:u@v.test>\r\nQUIT\r\n"); err != nil {
		t.Fatal(err)
	}
	cl := &client{t: t, c: c, r: bufio.NewReader(c)}
	cl.expect(220, 250, 250, 500, 501, 250, 221)
	checkCalls(t, be, []rcptCall{ok("u@v.test", "<@r:u@v.test>")})
}

func TestStartTLS(t *testing.T) {
	srvCfg, cliCfg := tlsConfigs(t)
	addr, be := startServer(t, serverConfig{opts: wiretap.Options{StartTLS: srvCfg}})
	c := dial(t, addr, nil)
	c.send("EHLO client.test\r\n")
	if lines := c.expect(250)[0]; !hasLine(lines, "STARTTLS") {
		t.Errorf("EHLO before TLS does not offer STARTTLS: %q", lines)
	}
	// go-smtp answers the commands before STARTTLS first. Plaintext
	// pipelined after STARTTLS must be dropped (CVE-2011-0411).
	c.send("HELO client.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<pre@y.test>\r\n" +
		"STARTTLS\r\nRCPT TO:<@injected:x@y.test>\r\n")
	if lines := c.expect(250, 250, 250)[0]; len(lines) != 1 {
		t.Errorf("HELO reply changed: %q", lines)
	}
	if _, lines := c.reply(); lines[0] != "220 2.0.0 Ready to start TLS" {
		t.Fatalf("STARTTLS reply = %q", lines)
	}
	c.startTLS(cliCfg)
	// The transaction begun in plaintext is gone.
	c.send("RCPT TO:<no-mail@y.test>\r\n")
	c.expect(502)
	c.send("EHLO client.test\r\n")
	if lines := c.expect(250)[0]; hasLine(lines, "STARTTLS") {
		t.Errorf("EHLO after TLS offers STARTTLS: %q", lines)
	}
	c.send("MAIL FROM:<a@b.test>\r\nRCPT TO:<@r:u@v.test>\r\nSTARTTLS\r\nRCPT TO:<@r:w@v.test>\r\nQUIT\r\n")
	c.expect(250, 250, 502, 250, 221)
	checkCalls(t, be, []rcptCall{
		{Processed: "pre@y.test", Raw: "<pre@y.test>", OK: true},
		{Processed: "u@v.test", Raw: "<@r:u@v.test>", OK: true, TLS: true},
		{Processed: "w@v.test", Raw: "<@r:w@v.test>", OK: true, TLS: true},
	})
}

// A STARTTLS sent in pieces, or behind a DATA the client did not wait for,
// cannot be intercepted: go-smtp refuses it, and nothing is lost.
func TestStartTLSNotIntercepted(t *testing.T) {
	srvCfg, _ := tlsConfigs(t)
	pl := newPipeListener()
	_, be := startServer(t, serverConfig{pipe: pl, opts: wiretap.Options{StartTLS: srvCfg}})
	c := dialPipe(t, pl)
	// go-smtp reads the first half of STARTTLS with EHLO: too late to
	// intercept it.
	c.send("EHLO client.test\r\nSTART")
	c.expect(250)
	c.send("TLS\r\nMAIL FROM:<a@b.test>\r\nDATA\r\nSTARTTLS\r\nRCPT TO:<@r:u@v.test>\r\nQUIT\r\n")
	c.expect(502, 250, 502, 502, 250, 221)
	checkCalls(t, be, []rcptCall{ok("u@v.test", "<@r:u@v.test>")})
}

func TestStartTLSHandshakeFails(t *testing.T) {
	srvCfg, _ := tlsConfigs(t)
	addr, _ := startServer(t, serverConfig{opts: wiretap.Options{StartTLS: srvCfg, HandshakeTimeout: time.Second}})
	c := dial(t, addr, nil)
	c.send("EHLO client.test\r\nSTARTTLS\r\n")
	c.expect(250, 220)
	c.send("this is not a TLS client hello\r\n\r\n\r\n\r\n\r\n")
	// The server must close without reading the garbage as commands.
	rest, _ := io.ReadAll(c.r)
	if strings.Contains(string(rest), " 5.5.") {
		t.Errorf("garbage after STARTTLS read as commands: %q", rest)
	}
}

// When go-smtp does STARTTLS itself, the Conn sees ciphertext and goes
// blind: NextRcpt reports nothing.
func TestStartTLSByGoSMTP(t *testing.T) {
	srvCfg, cliCfg := tlsConfigs(t)
	addr, be := startServer(t, serverConfig{goTLS: srvCfg})
	c := dial(t, addr, nil)
	c.send("EHLO client.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<@r:pre@v.test>\r\nSTARTTLS\r\n")
	c.expect(250, 250, 250, 220)
	c.startTLS(cliCfg)
	c.send("EHLO client.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<@r:u@v.test>\r\nQUIT\r\n")
	c.expect(250, 250, 250, 221)
	checkCalls(t, be, []rcptCall{
		{Processed: "pre@v.test", Raw: "<@r:pre@v.test>", OK: true},
		{Processed: "u@v.test", GoSMTPTLS: true},
	})
	be.mu.Lock()
	defer be.mu.Unlock()
	if !be.blind[1] {
		t.Error("Blind() = false after go-smtp's STARTTLS")
	}
}

// Implicit TLS: the Conn wraps the *tls.Conn. go-smtp then does not know
// the connection is TLS (it asserts *tls.Conn); the Conn does.
func TestImplicitTLS(t *testing.T) {
	srvCfg, cliCfg := tlsConfigs(t)
	addr, be := startServer(t, serverConfig{implicit: srvCfg})
	c := dial(t, addr, cliCfg)
	c.send("EHLO client.test\r\n")
	if lines := c.expect(250)[0]; hasLine(lines, "STARTTLS") {
		t.Errorf("EHLO on implicit TLS offers STARTTLS: %q", lines)
	}
	c.send("MAIL FROM:<a@b.test>\r\nRCPT TO:<@r:u@v.test>\r\nQUIT\r\n")
	c.expect(250, 250, 221)
	checkCalls(t, be, []rcptCall{{Processed: "u@v.test", Raw: "<@r:u@v.test>", OK: true, TLS: true, GoSMTPTLS: false}})
}

func TestImplicitTLSHandshakeTimeout(t *testing.T) {
	srvCfg, _ := tlsConfigs(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	errc := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			errc <- err
			return
		}
		w := wiretap.NewWithOptions(tls.Server(c, srvCfg), wiretap.Options{HandshakeTimeout: 100 * time.Millisecond})
		defer w.Close()
		_, err = w.Write([]byte("220 greeting\r\n"))
		errc <- err
	}()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("Write succeeded without a handshake")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("handshake not bounded by HandshakeTimeout")
	}
}

func TestReset(t *testing.T) {
	server, cl := net.Pipe()
	defer cl.Close()
	w := wiretap.New(server)
	defer w.Close()
	go func() { _, _ = io.Copy(io.Discard, cl) }()
	go func() { _, _ = io.WriteString(cl, "RCPT TO:<a@b>\r\n") }()
	if _, err := w.Write([]byte("220 hi\r\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	if _, err := w.Read(buf); err != nil {
		t.Fatal(err)
	}
	w.Reset()
	if raw, ok := w.NextRcpt("a@b"); ok {
		t.Errorf("NextRcpt after Reset = %q, true", raw)
	}
}

func tlsConfigs(t testing.TB) (server, client *tls.Config) {
	t.Helper()
	ca := testenv.NewCA(t, "wiretap test CA")
	cert, _, _ := ca.Issue(t, "mx.test")
	server = &tls.Config{Certificates: []tls.Certificate{cert}}
	client = &tls.Config{RootCAs: ca.Pool, ServerName: "mx.test"}
	return server, client
}

// countingConn records the writes that reach the network.
type countingConn struct {
	net.Conn
	writes [][]byte
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes = append(c.writes, append([]byte(nil), p...))
	return len(p), nil
}

// A multi-line reply, written by go-smtp one line at a time, leaves in one write.
func TestMultiLineReplyInOneWrite(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	cc := &countingConn{Conn: a}
	w := wiretap.New(cc)
	for _, line := range []string{"250-mx.example.jp Hello\r\n", "250-PIPELINING\r\n", "250-8BITMIME\r\n", "250 SMTPUTF8\r\n", "354 Go ahead\r\n"} {
		if _, err := w.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	if len(cc.writes) != 2 {
		t.Fatalf("writes = %q, want the EHLO reply in one write and the 354 in another", cc.writes)
	}
	if got := string(cc.writes[0]); got != "250-mx.example.jp Hello\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n" {
		t.Fatalf("first write = %q", got)
	}
}
