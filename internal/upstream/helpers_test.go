package upstream

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"net"
	"net/textproto"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/sekisho/sekisho/internal/testenv"
)

// newPool returns a Pool closed when the test ends. TLS defaults to none
// and HeloName to "sekisho.test".
func newPool(t testing.TB, opts Options) *Pool {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testenv.Logger(t)
	}
	if opts.HeloName == "" {
		opts.HeloName = "sekisho.test"
	}
	if opts.TLS == "" {
		opts.TLS = TLSNone
	}
	p, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// listen listens on a free port of loopback: network is "tcp4" or "tcp6".
func listen(t testing.TB, network string) net.Listener {
	t.Helper()
	addr := "127.0.0.1:0"
	if network == "tcp6" {
		addr = "[::1]:0"
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		if network == "tcp6" {
			testenv.Missing(t, "no IPv6 loopback (::1) to listen on: %v", err)
		}
		t.Fatal(err)
	}
	return ln
}

// closedAddr returns a loopback address where nothing listens.
func closedAddr(t testing.TB) string {
	ln := listen(t, "tcp4")
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// message is what a test server received.
type message struct {
	From string
	To   []string
	Opts smtp.MailOptions
	Body string
	TLS  bool
}

// testServer is a go-smtp server on loopback whose backend records what it
// receives. Its hooks are set before the first connection.
type testServer struct {
	Addr string

	mailErr func(from string) error
	rcptErr func(to string) error
	// data runs after a message is read; a non-nil error refuses it.
	// Change it later under mu.
	data func(c *smtp.Conn, body []byte) error

	mu     sync.Mutex
	conns  int // connections accepted
	datas  int // messages read to the end, accepted or not
	msgs   []message
	active map[*smtp.Conn]bool
}

// newTestServer starts a go-smtp server on network ("tcp4" or "tcp6"),
// offering STARTTLS with cert when it is not nil. setup sets hooks and
// server options before it starts.
func newTestServer(t testing.TB, network string, cert *tls.Certificate, setup func(*testServer, *smtp.Server)) *testServer {
	t.Helper()
	ts := &testServer{active: make(map[*smtp.Conn]bool)}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		ts.mu.Lock()
		ts.active[c] = true
		ts.mu.Unlock()
		return &testSession{ts: ts, c: c}, nil
	}))
	srv.Domain = "upstream.test"
	srv.ErrorLog = log.New(io.Discard, "", 0)
	if cert != nil {
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{*cert}}
	}
	if setup != nil {
		setup(ts, srv)
	}
	ln := listen(t, network)
	ts.Addr = ln.Addr().String()
	go srv.Serve(countingListener{ln, ts})
	t.Cleanup(func() { srv.Close() })
	return ts
}

func (ts *testServer) connCount() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.conns
}

func (ts *testServer) dataCount() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.datas
}

func (ts *testServer) activeCount() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return len(ts.active)
}

func (ts *testServer) messages() []message {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return slices.Clone(ts.msgs)
}

// dropAll closes the server side of every open connection.
func (ts *testServer) dropAll() {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for c := range ts.active {
		c.Conn().Close()
	}
}

type countingListener struct {
	net.Listener
	ts *testServer
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.ts.mu.Lock()
		l.ts.conns++
		l.ts.mu.Unlock()
	}
	return c, err
}

type testSession struct {
	ts   *testServer
	c    *smtp.Conn
	from string
	opts smtp.MailOptions
	to   []string
}

func (s *testSession) Reset() { s.from, s.to = "", nil }

func (s *testSession) Logout() error {
	s.ts.mu.Lock()
	delete(s.ts.active, s.c)
	s.ts.mu.Unlock()
	return nil
}

func (s *testSession) Mail(from string, opts *smtp.MailOptions) error {
	if s.ts.mailErr != nil {
		if err := s.ts.mailErr(from); err != nil {
			return err
		}
	}
	s.from = from
	if opts != nil {
		s.opts = *opts
	}
	return nil
}

func (s *testSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if s.ts.rcptErr != nil {
		if err := s.ts.rcptErr(to); err != nil {
			return err
		}
	}
	s.to = append(s.to, to)
	return nil
}

func (s *testSession) Data(r io.Reader) error {
	body, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, isTLS := s.c.TLSConnectionState()
	s.ts.mu.Lock()
	s.ts.datas++
	hook := s.ts.data
	s.ts.mu.Unlock()
	if hook != nil {
		if err := hook(s.c, body); err != nil {
			return err
		}
	}
	s.ts.mu.Lock()
	s.ts.msgs = append(s.ts.msgs, message{From: s.from, To: s.to, Opts: s.opts, Body: string(body), TLS: isTLS})
	s.ts.mu.Unlock()
	return nil
}

// rawServer is a hand-written SMTP server for what go-smtp's cannot do:
// XFORWARD, refusing DATA, odd greetings. It records every command line.
type rawServer struct {
	Addr string

	mu       sync.Mutex
	greeting string            // "" sends none
	ext      []string          // EHLO keywords; nil answers EHLO with 502
	replies  map[string]string // command verb or "." -> reply, overriding the default; a 421 line closes
	conns    int
	lines    []rawLine
	bodies   []string
}

// rawLine is one command line as received, with the number of bytes that
// had arrived after it: more than zero means the client pipelined.
type rawLine struct {
	Line     string
	Buffered int
}

func newRawServer(t testing.TB, ext ...string) *rawServer {
	t.Helper()
	rs := &rawServer{greeting: "220 raw.test ESMTP", ext: ext, replies: make(map[string]string)}
	ln := listen(t, "tcp4")
	rs.Addr = ln.Addr().String()
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	var open sync.Map
	t.Cleanup(func() {
		open.Range(func(k, _ any) bool { k.(net.Conn).Close(); return true })
	})
	wg.Go(func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			open.Store(nc, true)
			rs.mu.Lock()
			rs.conns++
			rs.mu.Unlock()
			wg.Go(func() {
				defer open.Delete(nc)
				rs.serve(nc)
			})
		}
	})
	return rs
}

// set makes the server answer cmd (a verb: "MAIL", "DATA", ...) with reply,
// which may have several CRLF-separated lines; "" restores the default.
func (rs *rawServer) set(cmd, reply string) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if reply == "" {
		delete(rs.replies, cmd)
		return
	}
	rs.replies[cmd] = reply
}

func (rs *rawServer) setGreeting(g string) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.greeting = g
}

func (rs *rawServer) connCount() int {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.conns
}

func (rs *rawServer) received() []rawLine {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return slices.Clone(rs.lines)
}

// commands returns the lines received that start with verb.
func (rs *rawServer) commands(verb string) []string {
	var out []string
	for _, l := range rs.received() {
		if strings.HasPrefix(strings.ToUpper(l.Line), verb) {
			out = append(out, l.Line)
		}
	}
	return out
}

func (rs *rawServer) messages() []string {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return slices.Clone(rs.bodies)
}

func (rs *rawServer) serve(nc net.Conn) {
	defer nc.Close()
	br := bufio.NewReader(nc)
	text := textproto.NewReader(br)
	w := bufio.NewWriter(nc)
	say := func(s string) bool {
		w.WriteString(s + "\r\n")
		return w.Flush() == nil
	}
	rs.mu.Lock()
	greeting := rs.greeting
	rs.mu.Unlock()
	if greeting == "" {
		io.Copy(io.Discard, nc) // say nothing until the client gives up
		return
	}
	if !say(greeting) {
		return
	}
	for {
		line, err := text.ReadLine()
		if err != nil {
			return
		}
		verb, _, _ := strings.Cut(line, " ")
		verb = strings.ToUpper(verb)
		rs.mu.Lock()
		rs.lines = append(rs.lines, rawLine{line, br.Buffered()})
		reply, override := rs.replies[verb]
		ext := rs.ext
		rs.mu.Unlock()
		switch {
		case override:
		case verb == "EHLO" && ext == nil:
			reply = "502 5.5.1 EHLO not implemented"
		case verb == "EHLO":
			lines := append([]string{"raw.test"}, ext...)
			for i, l := range lines {
				sep := "-"
				if i == len(lines)-1 {
					sep = " "
				}
				reply += "250" + sep + l
				if i < len(lines)-1 {
					reply += "\r\n"
				}
			}
		case verb == "HELO":
			reply = "250 raw.test"
		case verb == "DATA":
			reply = "354 go ahead"
		case verb == "QUIT":
			say("221 2.0.0 bye")
			return
		case verb == "XFORWARD", verb == "MAIL", verb == "RCPT", verb == "RSET", verb == "NOOP":
			reply = "250 2.0.0 ok"
		default:
			reply = "502 5.5.1 unknown command"
		}
		if !say(reply) {
			return
		}
		if strings.HasPrefix(reply, "421") || strings.Contains(reply, "\r\n421") {
			return
		}
		if verb == "DATA" && strings.HasPrefix(reply, "354") {
			body, err := io.ReadAll(text.DotReader())
			if err != nil {
				return
			}
			rs.mu.Lock()
			rs.bodies = append(rs.bodies, string(body))
			final := rs.replies["."]
			rs.mu.Unlock()
			if final == "" {
				final = "250 2.0.0 queued"
			}
			if !say(final) || strings.HasPrefix(final, "421") {
				return
			}
		}
	}
}

// testPKI is a CA and a server certificate it signed for localhost,
// 127.0.0.1 and ::1.
type testPKI struct {
	Roots *x509.CertPool
	Cert  tls.Certificate
}

func newPKI(t testing.TB) *testPKI {
	t.Helper()
	ca := testenv.NewCA(t, "sekisho test CA")
	cert, _, _ := ca.Issue(t, "upstream.test", "localhost", "127.0.0.1", "::1")
	return &testPKI{Roots: ca.Pool, Cert: cert}
}
