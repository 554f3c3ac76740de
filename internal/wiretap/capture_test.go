package wiretap_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/sekisho/sekisho/internal/wiretap"
)

// The tests here run the same client byte stream through a real go-smtp
// server twice, with DATA capture off (go-smtp's dataReader reads the
// content) and on (the Conn does, and the session takes the message with
// TakeMessage), and require the same replies, the same session calls and
// the same messages.

// halfConn is the server end of a connection made of two io.Pipes. As
// over net.Pipe, a Read returns at most what one Write sent, so the test
// decides which bytes the server reads together; unlike net.Pipe, the
// client can close its sending side and still read every reply.
type halfConn struct {
	r *io.PipeReader
	w *io.PipeWriter
}

func (c *halfConn) Read(p []byte) (int, error)  { return c.r.Read(p) }
func (c *halfConn) Write(p []byte) (int, error) { return c.w.Write(p) }
func (c *halfConn) Close() error {
	c.r.Close()
	c.w.Close()
	return nil
}
func (c *halfConn) LocalAddr() net.Addr              { return pipeAddr{} }
func (c *halfConn) RemoteAddr() net.Addr             { return pipeAddr{} }
func (c *halfConn) SetDeadline(time.Time) error      { return nil }
func (c *halfConn) SetReadDeadline(time.Time) error  { return nil }
func (c *halfConn) SetWriteDeadline(time.Time) error { return nil }

type capConfig struct {
	capture bool
	maxMsg  int64 // go-smtp's MaxMessageBytes; CaptureData when capture
	maxLine int   // go-smtp's MaxLineLength and Options.MaxLineLength; 0: default
	tls     int   // 0: none, 1: the Conn does STARTTLS, 2: go-smtp does
}

// capRun is what one run produced.
type capRun struct {
	replies  string   // every byte the client received
	calls    []string // session calls, in order, but Data
	data     []string // the outcome of each Session.Data
	captured int      // messages the session took from TakeMessage
}

// runCapture sends the pieces, one Write each, closes the sending side and
// collects everything the server answered.
func runCapture(t testing.TB, cfg capConfig, srvTLS *tls.Config, pieces [][]byte) capRun {
	t.Helper()
	be := &capBackend{capture: cfg.capture, t: t}
	srv := smtp.NewServer(be)
	srv.Domain = "mx.test"
	srv.AllowInsecureAuth = true
	srv.MaxMessageBytes = cfg.maxMsg
	srv.MaxRecipients = 5
	srv.ErrorLog = log.New(io.Discard, "", 0)
	opts := wiretap.Options{MaxLineLength: cfg.maxLine}
	if cfg.maxLine != 0 {
		srv.MaxLineLength = cfg.maxLine
	}
	if cfg.capture {
		opts.CaptureData = cfg.maxMsg
	}
	switch cfg.tls {
	case 1:
		opts.StartTLS = srvTLS
		opts.HandshakeTimeout = time.Second
	case 2:
		srv.TLSConfig = srvTLS
	}
	pl := newPipeListener()
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(tapListener{pl, opts})
	}()
	toSrv, fromCli := io.Pipe()
	fromSrv, toCli := io.Pipe()
	pl.conns <- &halfConn{r: toSrv, w: toCli}
	var replies []byte
	done := make(chan struct{})
	go func() {
		defer close(done)
		replies, _ = io.ReadAll(fromSrv)
	}()
	for _, p := range pieces {
		if _, err := fromCli.Write(p); err != nil {
			break
		}
	}
	fromCli.Close()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the server did not close the connection")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("go-smtp still busy: %v", err)
	}
	<-served
	be.mu.Lock()
	defer be.mu.Unlock()
	return capRun{replies: string(replies), calls: be.calls, data: be.data, captured: be.captured}
}

type capBackend struct {
	t       testing.TB
	capture bool

	mu       sync.Mutex
	calls    []string
	data     []string
	captured int
}

func (b *capBackend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	tap, _ := c.Conn().(*wiretap.Conn)
	return &capSession{b: b, tap: tap}, nil
}

func (b *capBackend) call(format string, args ...any) {
	b.mu.Lock()
	b.calls = append(b.calls, fmt.Sprintf(format, args...))
	b.mu.Unlock()
}

type capSession struct {
	b   *capBackend
	tap *wiretap.Conn
}

func (s *capSession) Mail(from string, _ *smtp.MailOptions) error {
	s.b.call("MAIL %q", from)
	return nil
}

func (s *capSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	raw, ok, blind := "", false, true
	if s.tap != nil {
		raw, ok = s.tap.NextRcpt(to)
		blind = s.tap.Blind()
	}
	s.b.call("RCPT %q raw=%q ok=%v blind=%v", to, raw, ok, blind)
	if strings.HasPrefix(to, "reject") {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no"}
	}
	return nil
}

// Data reads the message as sekisho's session does: with capture, one
// byte from go-smtp's reader tells whether the Conn took the message.
func (s *capSession) Data(r io.Reader) error {
	var msg []byte
	var err error
	if s.b.capture {
		msg, err = s.takeMessage(r)
	} else {
		msg, err = io.ReadAll(r)
	}
	var outcome string
	switch {
	case errors.Is(err, smtp.ErrDataReset):
		return err // BDAT aborted: the goroutine may report late
	case errors.Is(err, smtp.ErrDataTooLarge):
		outcome = "too big"
	case err != nil:
		outcome = "error " + err.Error()
	default:
		outcome = fmt.Sprintf("%q bare=%v", msg, bare(msg))
	}
	s.b.mu.Lock()
	s.b.data = append(s.b.data, outcome)
	s.b.mu.Unlock()
	return err
}

func (s *capSession) takeMessage(r io.Reader) ([]byte, error) {
	var first [1]byte
	n, err := io.ReadAtLeast(r, first[:], 1)
	if s.tap != nil {
		if msg, tooBig, bareLE, ok := s.tap.TakeMessage(); ok {
			s.b.mu.Lock()
			s.b.captured++
			s.b.mu.Unlock()
			if tooBig {
				if msg != nil {
					s.b.t.Errorf("TakeMessage: tooBig with a message")
				}
				return nil, smtp.ErrDataTooLarge
			}
			if n != 0 || err != io.EOF {
				s.b.t.Errorf("TakeMessage: captured, but go-smtp's reader gave %d bytes, %v", n, err)
			}
			if bareLE != bare(msg) {
				s.b.t.Errorf("TakeMessage(%q): bareLineEnding = %v", msg, bareLE)
			}
			return msg, nil
		}
	}
	if err == io.EOF {
		return []byte{}, nil
	}
	if err != nil {
		return nil, err
	}
	rest, err := io.ReadAll(r)
	return append(first[:1], rest...), err
}

func (s *capSession) Reset()        { s.b.call("RESET") }
func (s *capSession) Logout() error { s.b.call("LOGOUT"); return nil }

func (s *capSession) AuthMechanisms() []string { return []string{"X-TWO"} }

func (s *capSession) Auth(string) (sasl.Server, error) {
	s.b.call("AUTH")
	return &twoStep{}, nil
}

// bare is the plain definition: a CR not followed by LF or an LF not
// preceded by CR.
func bare(b []byte) bool {
	for i, c := range b {
		if c == '\r' && (i+1 >= len(b) || b[i+1] != '\n') {
			return true
		}
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			return true
		}
	}
	return false
}

// compareCapture runs pieces with capture off and on and requires the same
// conversation. It returns the run with capture.
func compareCapture(t testing.TB, cfg capConfig, srvTLS *tls.Config, pieces [][]byte) (off, on capRun) {
	t.Helper()
	cfg.capture = false
	off = runCapture(t, cfg, srvTLS, pieces)
	cfg.capture = true
	on = runCapture(t, cfg, srvTLS, pieces)
	if off.replies != on.replies {
		t.Errorf("replies differ\ncapture off: %q\ncapture on:  %q", off.replies, on.replies)
	}
	if !slices.Equal(off.calls, on.calls) {
		t.Errorf("session calls differ\ncapture off: %q\ncapture on:  %q", off.calls, on.calls)
	}
	offData, onData := off.data, on.data
	if bytes.Contains(bytes.ToUpper(bytes.Join(pieces, nil)), []byte("BDAT")) {
		// go-smtp calls Session.Data for BDAT in a goroutine of its own:
		// the order of the outcomes is not fixed.
		offData, onData = slices.Sorted(slices.Values(offData)), slices.Sorted(slices.Values(onData))
	}
	if !slices.Equal(offData, onData) {
		t.Errorf("messages differ\ncapture off: %q\ncapture on:  %q", off.data, on.data)
	}
	return off, on
}

func strPieces(s ...string) [][]byte {
	var out [][]byte
	for _, p := range s {
		out = append(out, []byte(p))
	}
	return out
}

// bytePieces splits s into one-byte writes.
func bytePieces(s string) [][]byte {
	var out [][]byte
	for i := range len(s) {
		out = append(out, []byte(s[i:i+1]))
	}
	return out
}

const capHead = "EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<@r:u@v>\r\nDATA\r\n"

func TestCapture(t *testing.T) {
	after := "MAIL FROM:<a@b>\r\nRCPT TO:<@after:w@v>\r\nQUIT\r\n"
	tests := []struct {
		name     string
		pieces   [][]byte
		cfg      capConfig
		want     []string // Session.Data outcomes
		captured int
	}{
		{
			name:     "dot-stuffed lines",
			pieces:   strPieces(capHead, "..\r\n..RCPT TO:<@x:y@z>\r\n.a\r\n...\r\nx.\r\n.\r\n"+after),
			want:     []string{`".\r\n.RCPT TO:<@x:y@z>\r\na\r\n..\r\nx.\r\n" bare=false`},
			captured: 1,
		},
		{
			name:     "end marker as the first line",
			pieces:   strPieces(capHead, ".\r\n"+after),
			want:     []string{`"" bare=false`},
			captured: 1,
		},
		{
			name:     "one byte per read",
			pieces:   bytePieces(capHead + "a\r\n..b\r\n.\r\n" + after),
			want:     []string{`"a\r\n.b\r\n" bare=false`},
			captured: 1,
		},
		{
			name:     "end marker split over reads",
			pieces:   strPieces(capHead, "a\r\n", ".", "\r", "\n"+after),
			want:     []string{`"a\r\n" bare=false`},
			captured: 1,
		},
		{
			name:     "end marker split after CR",
			pieces:   strPieces(capHead, "a\r", "\n.\r", "\nRSET\r\n"),
			want:     []string{`"a\r\n" bare=false`},
			captured: 1,
		},
		{
			name: "pipelined commands after the end marker",
			pieces: strPieces(capHead, "hello\r\n.\r\nMAIL FROM:<a@b>\r\nRCPT TO:<@p:q@v>\r\nDATA\r\n",
				"second\r\n.\r\nQUIT\r\n"),
			want:     []string{`"hello\r\n" bare=false`, `"second\r\n" bare=false`},
			captured: 2,
		},
		{
			name:   "size limit",
			cfg:    capConfig{maxMsg: 20},
			pieces: strPieces(capHead, strings.Repeat("RCPT TO:<@x:y@z>\r\n", 5)+".\r\n"+after),
			want:   []string{"too big"},
			// captured: tooBig comes from TakeMessage
			captured: 1,
		},
		{
			name:     "size limit: one byte short",
			cfg:      capConfig{maxMsg: 20},
			pieces:   strPieces(capHead, "0123456789abcdefg\r\n.\r\n", capHead, "0123456789abcdefgh\r\n.\r\n", after),
			want:     []string{`"0123456789abcdefg\r\n" bare=false`, "too big"},
			captured: 2,
		},
		{
			name:     "size limit, then the client goes away",
			cfg:      capConfig{maxMsg: 20},
			pieces:   strPieces(capHead, strings.Repeat("x", 30)),
			want:     []string{"too big"},
			captured: 1,
		},
		{
			name:     "bare LF",
			pieces:   strPieces(capHead, "a\nb\r\n.\r\n", capHead, "a\r\n.\n\r\n.\r\n", capHead, "\n\r\n.\r\n", after),
			want:     []string{`"a\nb\r\n" bare=true`, `"a\r\n\n\r\n" bare=true`, `"\n\r\n" bare=true`},
			captured: 3,
		},
		{
			name:     "bare CR",
			pieces:   strPieces(capHead, "a\rb\r\n.\r\n", capHead, "a\r\r\n\r\n.\r\n", capHead, "a\r", "\r\n\r\n.\r\n", after),
			want:     []string{`"a\rb\r\n" bare=true`, `"a\r\r\n\r\n" bare=true`, `"a\r\r\n\r\n" bare=true`},
			captured: 3,
		},
		{
			name: "odd dots and CRs",
			// ".\r" then not LF: go-smtp drops both; "\r\r\n" leaves the
			// reader inside a line, so ".\r\n" after it is content.
			pieces:   strPieces(capHead, ".\rx\r\n.\r\r\n.\r\n\r\r\n.\r\n.\r\n"),
			want:     []string{`"x\r\n\r\n.\r\n\r\r\n.\r\n" bare=true`},
			captured: 1,
		},
		{
			name:     "end of stream in DATA",
			pieces:   strPieces(capHead, "a\r\nb\r\n.", "\r"),
			want:     []string{"error unexpected EOF"},
			captured: 0,
		},
		{
			name:     "end of stream right after 354",
			pieces:   strPieces(capHead),
			want:     []string{"error unexpected EOF"},
			captured: 0,
		},
		{
			name:     "content pipelined behind DATA: go-smtp reads it",
			pieces:   strPieces(capHead+"a\r\n.\r\n", after),
			want:     []string{`"a\r\n" bare=false`},
			captured: 0,
		},
		{
			name:     "a line too long in the content",
			cfg:      capConfig{maxLine: 100},
			pieces:   strPieces(capHead, "a\r\n", strings.Repeat("x", 99), "\r\n.\r\n"+after),
			want:     []string{"error smtp: too long a line in input stream"},
			captured: 0,
		},
		{
			name:     "a line just short of the limit",
			cfg:      capConfig{maxLine: 100},
			pieces:   strPieces(capHead, "a\r\n", strings.Repeat("x", 98), "\r\n.\r\n"+after),
			want:     []string{`"a\r\n` + strings.Repeat("x", 98) + `\r\n" bare=false`},
			captured: 1,
		},
		{
			name:     "a line too long behind the end marker",
			cfg:      capConfig{maxLine: 100},
			pieces:   strPieces(capHead, "a\r\n.\r\nNOOP "+strings.Repeat("x", 100)+"\r\n"),
			want:     []string{"error smtp: too long a line in input stream"},
			captured: 0,
		},
		{
			name:     "too big, then a line too long",
			cfg:      capConfig{maxMsg: 20, maxLine: 100},
			pieces:   strPieces(capHead, strings.Repeat("y", 50)+"\r\n", strings.Repeat("x", 99)+"\r\n.\r\n"),
			want:     []string{"too big"},
			captured: 1,
		},
		{
			name:     "BDAT on the connection: go-smtp reads DATA content",
			pieces:   strPieces("EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<u@v>\r\nBDAT 3 LAST\r\nabc", "MAIL FROM:<a@b>\r\nRCPT TO:<u@v>\r\nDATA\r\n", "x\r\n.\r\n"),
			want:     []string{`"abc" bare=false`, `"x\r\n" bare=false`},
			captured: 0,
		},
		{
			name:     "DATA refused",
			pieces:   strPieces("EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<reject@v>\r\nDATA\r\n", "RCPT TO:<@x:y@z>\r\n.\r\nQUIT\r\n"),
			captured: 0,
		},
	}
	srvTLS, _ := tlsConfigs(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			if cfg.maxMsg == 0 {
				cfg.maxMsg = 1 << 20
			}
			_, on := compareCapture(t, cfg, srvTLS, tt.pieces)
			if !slices.Equal(on.data, tt.want) {
				t.Errorf("messages = %q, want %q", on.data, tt.want)
			}
			if on.captured != tt.captured {
				t.Errorf("captured %d messages, want %d", on.captured, tt.captured)
			}
		})
	}
}

// The rest after the end marker: RCPT paths are recorded, and a
// STARTTLS behind it is intercepted.
func TestCaptureThenCommands(t *testing.T) {
	srvTLS, _ := tlsConfigs(t)
	cfg := capConfig{maxMsg: 1 << 20, tls: 1}
	_, on := compareCapture(t, cfg, srvTLS, strPieces(capHead,
		"m\r\n.\r\nMAIL FROM:<a@b>\r\nRCPT TO:<@after:w@v>\r\nSTARTTLS\r\nRCPT TO:<@evil:x@y>\r\n"))
	if !strings.Contains(on.replies, "220 2.0.0 Ready to start TLS") {
		t.Errorf("STARTTLS behind the end marker not answered by the Conn: %q", on.replies)
	}
	want := []string{`RCPT "u@v" raw="<@r:u@v>" ok=true blind=false`, `RCPT "w@v" raw="<@after:w@v>" ok=true blind=false`}
	var got []string
	for _, c := range on.calls {
		if strings.HasPrefix(c, "RCPT") {
			got = append(got, c)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("RCPT calls = %q, want %q", got, want)
	}
	if on.captured != 1 {
		t.Errorf("captured %d", on.captured)
	}
}

// A large message in many reads of various sizes, with dot-stuffing
// across read boundaries.
func TestCaptureLarge(t *testing.T) {
	var body strings.Builder
	for i := range 5000 {
		switch i % 7 {
		case 0:
			body.WriteString("..dot-stuffed line\r\n")
		case 3:
			body.WriteString("..\r\n.." + strings.Repeat("z", i%300) + "\r\n")
		default:
			body.WriteString(strings.Repeat("x", i%97) + "\r\n")
		}
	}
	stream := body.String() + ".\r\nQUIT\r\n"
	pieces := strPieces(capHead)
	for i, n := 0, 1; i < len(stream); n = n*7%1000 + 1 {
		n = min(n, len(stream)-i)
		pieces = append(pieces, []byte(stream[i:i+n]))
		i += n
	}
	_, on := compareCapture(t, capConfig{maxMsg: 1 << 20}, nil, pieces)
	if on.captured != 1 || len(on.data) != 1 || len(on.data[0]) < body.Len()*9/10 {
		t.Errorf("captured %d, data %d", on.captured, len(on.data))
	}
}

// Capture works on the plaintext beneath TLS: after the Conn's STARTTLS,
// and on implicit TLS.
func TestCaptureTLS(t *testing.T) {
	srvCfg, cliCfg := tlsConfigs(t)
	body := "Subject: t\r\n\r\n..dot\r\nline\r\n"
	check := func(t *testing.T, be *backend) {
		t.Helper()
		if _, bodies := be.results(); len(bodies) != 1 || bodies[0] != "Subject: t\r\n\r\n.dot\r\nline\r\n" {
			t.Errorf("bodies = %q", bodies)
		}
	}
	t.Run("starttls", func(t *testing.T) {
		addr, be := startServer(t, serverConfig{opts: wiretap.Options{StartTLS: srvCfg, CaptureData: 1 << 20}, maxMsgLen: 1 << 20})
		c := dial(t, addr, nil)
		c.send("EHLO c\r\nSTARTTLS\r\n")
		c.expect(250, 220)
		c.startTLS(cliCfg)
		c.send("EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<u@v>\r\nDATA\r\n")
		c.expect(250, 250, 250, 354)
		c.send(body + ".\r\nQUIT\r\n")
		c.expect(250, 221)
		check(t, be)
	})
	t.Run("implicit", func(t *testing.T) {
		addr, be := startServer(t, serverConfig{implicit: srvCfg, opts: wiretap.Options{CaptureData: 1 << 20}, maxMsgLen: 1 << 20})
		c := dial(t, addr, cliCfg)
		c.send("EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<u@v>\r\nDATA\r\n")
		c.expect(250, 250, 250, 354)
		c.send(body + ".\r\nQUIT\r\n")
		c.expect(250, 221)
		check(t, be)
	})
}

// TestDataCaptured runs TestData's conversations with capture on, over TCP.
func TestDataCaptured(t *testing.T) {
	addr, be := startServer(t, serverConfig{opts: wiretap.Options{CaptureData: 1 << 20}, maxMsgLen: 1 << 20})
	c := dial(t, addr, nil)
	c.send("EHLO client.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<ok@y.test>\r\nDATA\r\n")
	c.expect(250, 250, 250, 354)
	c.send("a\n.\nRCPT TO:<@x:hidden@z.test>\n.\r\n..RCPT TO:<@x:h2@z.test>\r\n\r\n.\r\n" +
		"MAIL FROM:<a@b.test>\r\nRCPT TO:<@after:u@v.test>\r\nQUIT\r\n")
	c.expect(250, 250, 250, 221)
	checkCalls(t, be, []rcptCall{ok("ok@y.test", "<ok@y.test>"), ok("u@v.test", "<@after:u@v.test>")})
	want := "a\n.\nRCPT TO:<@x:hidden@z.test>\n.\r\n.RCPT TO:<@x:h2@z.test>\r\n\r\n"
	if _, bodies := be.results(); !reflect.DeepEqual(bodies, []string{want}) {
		t.Errorf("bodies = %q, want [%q]", bodies, want)
	}
}

// FuzzCapture is the differential test of DATA capture: for any client
// byte stream, written in pieces whose sizes come from mode, a go-smtp
// server behind a Conn must answer the same, call the session the same,
// and yield the same messages, with capture on as with it off.
//
// mode: bits 0-1 TLS (none, the Conn's STARTTLS, go-smtp's STARTTLS); bit
// 2 ends a piece at every line feed too (so that DATA is answered before
// the content comes, as clients do, and capture happens); bit 3 sets
// go-smtp's line limit to 100; bits 4-7 the piece size, 1 + 29*n.
func FuzzCapture(f *testing.F) {
	for _, s := range []string{
		capHead + "..\r\n.a\r\n.\r\n",
		capHead + "x\r\n.\r\nMAIL FROM:<a@b>\r\nRCPT TO:<@x:y@z>\r\nDATA\r\n.\r\nQUIT\r\n",
		capHead + ".\rx\r\n\r\r\n.\r\n.\r\n.\r\n",
		capHead + "a\rb\nc\r\n.\r\nRSET\r\n",
		capHead + strings.Repeat("0123456789", 25) + "\r\n.\r\nNOOP\r\n",
		capHead + strings.Repeat("x", 120) + "\r\n.\r\nNOOP\r\n",
		capHead + "a\r\n.\r\nNOOP " + strings.Repeat("x", 120) + "\r\n",
		capHead + "a\r\n.\r\nSTARTTLS\r\nRCPT TO:<@x:y@z>\r\n",
		capHead + "a\r\nb",
		"EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<u@v>\r\nBDAT 5\r\nDATA\r\nBDAT 0 LAST\r\nDATA\r\nMAIL FROM:<a@b>\r\nRCPT TO:<u@v>\r\nDATA\r\nx\r\n.\r\n",
		"EHLO c\r\nAUTH X-TWO\r\nRCPT TO:<@x:y@z>\r\nb25l\r\nMAIL FROM:<a@b>\r\nRCPT TO:<u@v>\r\nDATA\r\nx\r\n.\r\n",
		"EHLO c\nMAIL FROM:<a@b>\nRCPT TO:<reject@v>\nDATA\nx\n.\r\nRCPT TO:<w@v>\nDATA\n..\n.\r\n.\r\n",
	} {
		for _, mode := range []byte{0, 1, 2, 4, 5, 6, 12, 4 | 3<<4, 12 | 15<<4, 0 | 2<<4} {
			f.Add(mode, []byte(s))
		}
	}
	srvTLS, _ := tlsConfigs(f)
	f.Fuzz(func(t *testing.T, mode byte, in []byte) {
		cfg := capConfig{maxMsg: 200, tls: int(mode % 4)}
		if cfg.tls == 3 {
			cfg.tls = 0
		}
		if mode&8 != 0 {
			cfg.maxLine = 100
		}
		step := 1 + int(mode>>4)*29
		lines := mode&4 != 0
		var pieces [][]byte
		for rest := in; len(rest) > 0; {
			n := min(step, len(rest))
			if lines {
				if i := bytes.IndexByte(rest[:n], '\n'); i >= 0 {
					n = i + 1
				}
			}
			pieces = append(pieces, rest[:n])
			rest = rest[n:]
		}
		compareCapture(t, cfg, srvTLS, pieces)
	})
}
