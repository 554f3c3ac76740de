// Package demo is the in-process mail server that `sekisho demo` puts behind the proxy, so
// that a newcomer can watch mail pass or be held without a real mail server.
package demo

import (
	"bufio"
	"bytes"
	"io"
	"log/slog"
	"net"
	"net/textproto"
	"strings"

	"github.com/emersion/go-smtp"
)

// Mailbox is an SMTP server that accepts every message and logs it.
type Mailbox struct {
	srv *smtp.Server
	l   net.Listener
	log *slog.Logger
}

// NewMailbox listens on addr (e.g. "127.0.0.1:0").
func NewMailbox(addr string, log *slog.Logger) (*Mailbox, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	m := &Mailbox{l: l, log: log}
	m.srv = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &session{m: m}, nil }))
	m.srv.Domain = "mailbox.demo"
	m.srv.ErrorLog = quiet{}
	return m, nil
}

// Addr is the mailbox's address.
func (m *Mailbox) Addr() string { return m.l.Addr().String() }

// Serve serves until Close.
func (m *Mailbox) Serve() error { return m.srv.Serve(m.l) }

// Close stops the mailbox.
func (m *Mailbox) Close() error { return m.srv.Close() }

type session struct {
	m    *Mailbox
	from string
	to   []string
}

func (s *session) Reset()        { s.from, s.to = "", nil }
func (s *session) Logout() error { return nil }
func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	s.from = from
	return nil
}
func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}
func (s *session) Data(r io.Reader) error {
	var b bytes.Buffer
	if _, err := b.ReadFrom(r); err != nil {
		return err
	}
	h, _ := textproto.NewReader(bufio.NewReader(bytes.NewReader(b.Bytes()))).ReadMIMEHeader()
	s.m.log.Info("demo mailbox: delivered", "from", s.from, "to", strings.Join(s.to, ","), "subject", h.Get("Subject"), "bytes", b.Len())
	return nil
}

type quiet struct{}

func (quiet) Printf(string, ...any) {}
func (quiet) Println(...any)        {}
