package wiretap_test

import (
	"bytes"
	"context"
	"io"
	"log"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/sekisho/sekisho/internal/wiretap"
)

// FuzzGoSMTP sends arbitrary client bytes to a real go-smtp server behind a
// Conn and checks the mirror against go-smtp itself: for every
// Session.Rcpt call, NextRcpt must know the path (unless the Conn is blind
// or a line was too long to record), and the path must be in the input.
func FuzzGoSMTP(f *testing.F) {
	for _, s := range []string{
		"EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<@r:u@v>\r\nRCPT TO:<\"a@b\"@c>\r\nDATA\r\nRCPT TO:<@x:y@z>\r\n.\r\nQUIT\r\n",
		"EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<reject@v>\r\nDATA\r\nRCPT TO:<@x:y@z>\r\n.\r\n",
		"EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<u@v>\r\nBDAT 20\r\nRCPT TO:<@x:y@z>\r\nxxBDAT 0 LAST\r\nMAIL FROM:<a@b>\r\nRCPT TO:<@q:u@v>\r\n",
		"EHLO c\r\nAUTH X-TWO\r\nRCPT TO:<@x:y@z>\r\nb25l\r\nMAIL FROM:<a@b>\r\nRCPT TO:<u@v>\r\n",
		"EHLO c\nMAIL FROM:<a@b>\nRCPT TO:<u@v> NOTIFY=NEVER\nRCPT TO:<w@v>\nDATA\n..\n.\r\n.\r\nRCPT TO:<z@v>\n",
		"EHLO c\r\nSTARTTLS\r\nMAIL FROM:<a@b>\r\nRCPT TO:<u@v>\r\n",
		"MAIL FROM:<a@b>\r\nRCPT TO:<u@v>\r\nHELO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<u@v>\r\nRCPT TO:<u@v>",
	} {
		for mode := range byte(4) {
			f.Add(mode, []byte(s))
		}
	}
	srvTLS, _ := tlsConfigs(f)
	f.Fuzz(func(t *testing.T, mode byte, in []byte) {
		var opts wiretap.Options
		be := &fuzzBackend{}
		srv := smtp.NewServer(be)
		srv.Domain = "mx.test"
		srv.AllowInsecureAuth = true
		srv.MaxMessageBytes = 200
		srv.MaxRecipients = 5
		srv.ErrorLog = log.New(io.Discard, "", 0)
		switch mode % 4 {
		case 1: // the Conn does STARTTLS
			opts.StartTLS = srvTLS
			opts.HandshakeTimeout = time.Second
		case 2: // go-smtp does STARTTLS: the Conn goes blind
			srv.TLSConfig = srvTLS
		}
		pl := newPipeListener()
		served := make(chan struct{})
		go func() {
			defer close(served)
			_ = srv.Serve(tapListener{pl, opts})
		}()
		c, err := pl.dial()
		if err != nil {
			t.Fatal(err)
		}
		replies := make(chan struct{})
		go func() {
			defer close(replies)
			_, _ = io.Copy(io.Discard, c)
		}()
		// Write in pieces whose sizes come from mode, so that go-smtp
		// reads them in various groupings.
		step := 1 + int(mode>>2)*7
		for rest := in; len(rest) > 0; {
			n := min(step, len(rest))
			if _, err := c.Write(rest[:n]); err != nil {
				break
			}
			rest = rest[n:]
		}
		c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Fatalf("go-smtp still busy: %v", err)
		}
		<-served
		<-replies

		allowMiss := longestLine(in) >= 1900
		for _, call := range be.calls {
			switch {
			case !call.ok && !call.blind && !allowMiss:
				t.Errorf("NextRcpt(%q) = false for a RCPT go-smtp handled", call.processed)
			case call.ok && !bytes.Contains(in, []byte(call.raw)):
				t.Errorf("NextRcpt(%q) = %q, not in the input", call.processed, call.raw)
			}
		}
	})
}

func longestLine(b []byte) int {
	longest := 0
	for _, l := range bytes.Split(b, []byte("\n")) {
		longest = max(longest, len(l))
	}
	return longest
}

type fuzzCall struct {
	processed, raw string
	ok, blind      bool
}

type fuzzBackend struct {
	mu    sync.Mutex
	calls []fuzzCall
}

func (b *fuzzBackend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	tap, _ := c.Conn().(*wiretap.Conn)
	return &fuzzSession{b: b, tap: tap}, nil
}

type fuzzSession struct {
	b   *fuzzBackend
	tap *wiretap.Conn
}

func (s *fuzzSession) Mail(string, *smtp.MailOptions) error { return nil }

func (s *fuzzSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	call := fuzzCall{processed: to, blind: true}
	if s.tap != nil {
		call.raw, call.ok = s.tap.NextRcpt(to)
		call.blind = s.tap.Blind()
	}
	s.b.mu.Lock()
	s.b.calls = append(s.b.calls, call)
	s.b.mu.Unlock()
	if strings.HasPrefix(to, "reject") {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no"}
	}
	return nil
}

func (s *fuzzSession) Data(r io.Reader) error {
	_, err := io.Copy(io.Discard, r)
	return err
}

func (s *fuzzSession) Reset()                   {}
func (s *fuzzSession) Logout() error            { return nil }
func (s *fuzzSession) AuthMechanisms() []string { return []string{"X-TWO"} }

func (s *fuzzSession) Auth(string) (sasl.Server, error) { return &twoStep{}, nil }
