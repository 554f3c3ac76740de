package upstream

import (
	"bufio"
	"crypto/tls"
	"io"
	"log"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"
)

// discardSession accepts everything and keeps nothing, so that the
// benchmark measures the client (and go-smtp's server loop), not a
// growing record.
type discardSession struct{}

func (discardSession) Reset()                               {}
func (discardSession) Logout() error                        { return nil }
func (discardSession) Mail(string, *smtp.MailOptions) error { return nil }
func (discardSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (discardSession) Data(r io.Reader) (err error)         { _, err = io.Copy(io.Discard, r); return err }

// BenchmarkSend sends a 10 KB message over a reused connection to an
// in-process go-smtp server. Allocations include the server's.
func BenchmarkSend(b *testing.B) {
	line := strings.Repeat("x", 76) + "\r\n"
	body := []byte("From: a@example.org\r\nTo: b@example.com\r\nSubject: bench\r\n\r\n" +
		strings.Repeat(line, 10240/len(line)) + ".dot-stuffed line\r\n")
	pki := newPKI(b)
	for _, bc := range []struct {
		name string
		mode string
	}{
		{"plain", TLSNone},
		{"starttls", TLSRequired},
	} {
		b.Run(bc.name, func(b *testing.B) {
			srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return discardSession{}, nil }))
			srv.Domain = "upstream.test"
			srv.ErrorLog = log.New(io.Discard, "", 0)
			srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{pki.Cert}}
			ln := listen(b, "tcp4")
			go srv.Serve(ln)
			b.Cleanup(func() { srv.Close() })

			p, err := New(Options{Servers: []string{ln.Addr().String()}, TLS: bc.mode, HeloName: "sekisho.test", XForward: true})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { p.Close() })
			env := testEnvelope("b@example.com", "c@example.com")
			if _, err := p.Send(b.Context(), env, body); err != nil { // connect outside the loop
				b.Fatal(err)
			}
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.Send(b.Context(), env, body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDotStuff(b *testing.B) {
	body := []byte(strings.Repeat("line of text\r\n.dot\r\n", 512))
	w := newDiscardWriter()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		dotStuff(w, body)
		w.Flush()
	}
}

func newDiscardWriter() *bufio.Writer { return bufio.NewWriter(io.Discard) }
