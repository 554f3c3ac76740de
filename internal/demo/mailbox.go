// Package demo is the in-process mail server that `sekisho demo` puts behind the proxy, so
// that a newcomer can watch mail pass or be held without a real mail server, and the page
// that shows what it received.
package demo

import (
	"bufio"
	"bytes"
	"io"
	"log/slog"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// Keep is how many messages the mailbox remembers (the newest).
const Keep = 200

// Message is one message the mailbox received.
type Message struct {
	From     string
	To       []string
	Received time.Time
	Data     []byte
}

// Mailbox is an SMTP server that accepts every message, logs it and keeps the newest Keep.
type Mailbox struct {
	srv *smtp.Server
	l   net.Listener
	log *slog.Logger

	mu   sync.Mutex
	msgs []Message
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

// Messages returns the messages received, newest first.
func (m *Mailbox) Messages() []Message {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Message, len(m.msgs))
	for i, msg := range m.msgs {
		out[len(m.msgs)-1-i] = msg
	}
	return out
}

func (m *Mailbox) add(msg Message) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.msgs = append(m.msgs, msg)
	if len(m.msgs) > Keep {
		m.msgs = append(m.msgs[:0:0], m.msgs[len(m.msgs)-Keep:]...)
	}
}

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
	s.m.add(Message{From: s.from, To: append([]string(nil), s.to...), Received: time.Now(), Data: b.Bytes()})
	return nil
}

type quiet struct{}

func (quiet) Printf(string, ...any) {}
func (quiet) Println(...any)        {}
