// Package testenv holds test helpers: a real in-process SMTP server (go-smtp) standing in for
// the organisation's mail server, and a logger that writes into the test's output.
package testenv

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// Message is one message the upstream server accepted.
type Message struct {
	From string
	To   []string
	Data []byte
}

// Upstream is an SMTP server on loopback that accepts mail for every recipient except those
// in Reject, and records what it accepted.
type Upstream struct {
	Addr string

	mu       sync.Mutex
	msgs     []Message
	conns    int
	reject   map[string]*smtp.SMTPError
	dataErr  *smtp.SMTPError
	arrivals chan struct{}
	srv      *smtp.Server
}

// NewUpstream starts an upstream server on network ("tcp4" or "tcp6") loopback; it stops
// with the test.
func NewUpstream(t testing.TB, network string) *Upstream {
	t.Helper()
	host := "127.0.0.1:0"
	if network == "tcp6" {
		host = "[::1]:0"
	}
	l, err := net.Listen(network, host)
	if err != nil {
		t.Fatalf("upstream listen: %v", err)
	}
	u := &Upstream{Addr: l.Addr().String(), reject: map[string]*smtp.SMTPError{}, arrivals: make(chan struct{}, 1000)}
	u.srv = smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		u.mu.Lock()
		u.conns++
		u.mu.Unlock()
		return &upSession{u: u}, nil
	}))
	u.srv.Domain = "upstream.test"
	u.srv.AllowInsecureAuth = true
	u.srv.EnableSMTPUTF8 = true
	u.srv.ErrorLog = nopLog{}
	go u.srv.Serve(l)
	t.Cleanup(func() { u.srv.Close() })
	return u
}

// RejectRcpt makes the server refuse a recipient with err.
func (u *Upstream) RejectRcpt(rcpt string, err *smtp.SMTPError) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.reject[strings.ToLower(rcpt)] = err
}

// FailData makes the server answer every DATA with err (nil: accept again).
func (u *Upstream) FailData(err *smtp.SMTPError) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.dataErr = err
}

// Close stops the server (connections are dropped).
func (u *Upstream) Close() { u.srv.Close() }

// Messages returns what was accepted so far.
func (u *Upstream) Messages() []Message {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]Message(nil), u.msgs...)
}

// Conns returns how many SMTP sessions were opened.
func (u *Upstream) Conns() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.conns
}

// Wait waits until n messages were accepted in all, or fails the test after 5 s.
func (u *Upstream) Wait(t testing.TB, n int) []Message {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		if m := u.Messages(); len(m) >= n {
			return m
		}
		select {
		case <-u.arrivals:
		case <-deadline:
			t.Fatalf("upstream got %d messages, want %d", len(u.Messages()), n)
		}
	}
}

type upSession struct {
	u    *Upstream
	from string
	to   []string
}

func (s *upSession) Reset()        { s.from, s.to = "", nil }
func (s *upSession) Logout() error { return nil }
func (s *upSession) Mail(from string, _ *smtp.MailOptions) error {
	s.from = from
	return nil
}
func (s *upSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.u.mu.Lock()
	err := s.u.reject[strings.ToLower(to)]
	s.u.mu.Unlock()
	if err != nil {
		return err
	}
	s.to = append(s.to, to)
	return nil
}
func (s *upSession) Data(r io.Reader) error {
	var b bytes.Buffer
	if _, err := b.ReadFrom(r); err != nil {
		return err
	}
	s.u.mu.Lock()
	defer s.u.mu.Unlock()
	if s.u.dataErr != nil {
		return s.u.dataErr
	}
	s.u.msgs = append(s.u.msgs, Message{From: s.from, To: s.to, Data: b.Bytes()})
	select {
	case s.u.arrivals <- struct{}{}:
	default:
	}
	return nil
}

type nopLog struct{}

func (nopLog) Printf(string, ...any) {}
func (nopLog) Println(...any)        {}

// Logger returns a logger writing into the test's output.
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}
