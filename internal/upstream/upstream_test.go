package upstream

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/sekisho/sekisho/internal/testenv"
)

const testBody = "From: a@example.org\r\nTo: b@example.com\r\nSubject: hi\r\n\r\nhello\r\n"

func testEnvelope(to ...string) Envelope {
	if len(to) == 0 {
		to = []string{"b@example.com"}
	}
	return Envelope{
		From: "a@example.org",
		To:   to,
		Client: Client{
			Addr:  netip.MustParseAddr("192.0.2.7"),
			Helo:  "client.example.org",
			Proto: "ESMTP",
			Name:  "client.example.org",
		},
	}
}

// wantSMTPError checks that err is a bare *smtp.SMTPError, as go-smtp needs
// to relay it, with the given codes.
func wantSMTPError(t *testing.T, err error, code int, ec smtp.EnhancedCode) *smtp.SMTPError {
	t.Helper()
	se, ok := err.(*smtp.SMTPError)
	if !ok {
		t.Fatalf("err = %T %v, want a bare *smtp.SMTPError", err, err)
	}
	if se.Code != code || se.EnhancedCode != ec {
		t.Fatalf("err = %d %v %q, want %d %v", se.Code, se.EnhancedCode, se.Message, code, ec)
	}
	return se
}

func TestSendPlain(t *testing.T) {
	ts := newTestServer(t, "tcp4", nil, nil)
	p := newPool(t, Options{Servers: []string{ts.Addr}})

	res, err := p.Send(t.Context(), testEnvelope("b@example.com", "c@example.com"), []byte(testBody))
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if res.Server != ts.Addr || !reflect.DeepEqual(res.Rcpt, []error{nil, nil}) {
		t.Errorf("Result = %+v", res)
	}
	msgs := ts.messages()
	if len(msgs) != 1 {
		t.Fatalf("server got %d messages, want 1", len(msgs))
	}
	m := msgs[0]
	if m.From != "a@example.org" || !reflect.DeepEqual(m.To, []string{"b@example.com", "c@example.com"}) || m.Body != testBody {
		t.Errorf("server got %+v", m)
	}
	if m.Opts.Size != int64(len(testBody)) || m.Opts.Body != "" || m.Opts.UTF8 {
		t.Errorf("MAIL parameters %+v, want only SIZE=%d", m.Opts, len(testBody))
	}
}

func TestSendNullSender(t *testing.T) {
	ts := newTestServer(t, "tcp4", nil, nil)
	p := newPool(t, Options{Servers: []string{ts.Addr}})
	env := testEnvelope()
	env.From = ""
	if _, err := p.Send(t.Context(), env, []byte(testBody)); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if m := ts.messages(); len(m) != 1 || m[0].From != "" {
		t.Errorf("server got %+v, want one message from <>", m)
	}
}

func TestSendMailParameters(t *testing.T) {
	for _, tc := range []struct {
		name     string
		smtputf8 bool // the server offers SMTPUTF8
		want     smtp.MailOptions
	}{
		{"offered", true, smtp.MailOptions{Body: smtp.Body8BitMIME, UTF8: true}},
		{"smtputf8 not offered", false, smtp.MailOptions{Body: smtp.Body8BitMIME}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t, "tcp4", nil, func(_ *testServer, s *smtp.Server) {
				s.EnableSMTPUTF8 = tc.smtputf8
			})
			p := newPool(t, Options{Servers: []string{ts.Addr}})
			env := testEnvelope()
			env.EightBit, env.SMTPUTF8 = true, true
			body := "Subject: grüße\r\n\r\nüber\r\n"
			if _, err := p.Send(t.Context(), env, []byte(body)); err != nil {
				t.Fatalf("Send: %v", err)
			}
			m := ts.messages()[0]
			tc.want.Size = int64(len(body))
			if m.Opts != tc.want {
				t.Errorf("MAIL parameters %+v, want %+v", m.Opts, tc.want)
			}
		})
	}
}

func TestDotStuffing(t *testing.T) {
	ts := newTestServer(t, "tcp4", nil, nil)
	p := newPool(t, Options{Servers: []string{ts.Addr}})
	for _, tc := range []struct {
		name, body, want string
	}{
		{"leading dot", ".hidden\r\nline\r\n", ".hidden\r\nline\r\n"},
		{"dot lines", "a\r\n.\r\nb\r\n..\r\n...x\r\n", "a\r\n.\r\nb\r\n..\r\n...x\r\n"},
		{"ends with a dot line", "a\r\n.\r\n", "a\r\n.\r\n"},
		{"only a dot", ".\r\n", ".\r\n"},
		{"dot mid-line", "a.b\r\n x.\r\n", "a.b\r\n x.\r\n"},
		{"no final CRLF", "a\r\n.b", "a\r\n.b\r\n"},
		{"empty lines", "\r\n\r\n.\r\n\r\n", "\r\n\r\n.\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := len(ts.messages())
			if _, err := p.Send(t.Context(), testEnvelope(), []byte(tc.body)); err != nil {
				t.Fatalf("Send: %v", err)
			}
			msgs := ts.messages()
			if len(msgs) != n+1 {
				t.Fatalf("server got %d messages, want %d", len(msgs), n+1)
			}
			if got := msgs[n].Body; got != tc.want {
				t.Errorf("body %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSendRefusesBadInput(t *testing.T) {
	ts := newTestServer(t, "tcp4", nil, nil)
	p := newPool(t, Options{Servers: []string{ts.Addr}})
	for _, tc := range []struct {
		name string
		env  Envelope
		body string
		want string
	}{
		{"bare LF", testEnvelope(), "a\nb\r\n", "bare LF at byte 1"},
		{"bare LF first", testEnvelope(), "\na\r\n", "bare LF at byte 0"},
		{"bare CR", testEnvelope(), "a\rb\r\n", "bare CR at byte 1"},
		{"CR at the end", testEnvelope(), "a\r\nb\r", "bare CR at byte 4"},
		{"smuggled end of data", testEnvelope(), "a\n.\r\nMAIL FROM:<x>\r\n", "bare LF"},
		{"no recipients", Envelope{From: "a@example.org"}, testBody, "no recipients"},
		{"command in recipient", testEnvelope("b@example.com>\r\nRCPT TO:<c@example.com"), testBody, "bad recipient"},
		{"empty recipient", testEnvelope(""), testBody, "bad recipient"},
		{"command in sender", Envelope{From: "a\r\nDATA", To: []string{"b@example.com"}}, testBody, "bad sender"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := p.Send(t.Context(), tc.env, []byte(tc.body))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
			if errors.Is(err, ErrUnavailable) {
				t.Errorf("err = %v: a bad message is not the servers' fault", err)
			}
		})
	}
	if n := ts.connCount(); n != 0 {
		t.Errorf("server saw %d connections, want none", n)
	}
}

func TestRecipients(t *testing.T) {
	refuse := func(to string) error {
		switch {
		case strings.HasPrefix(to, "unknown"):
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
		case strings.HasPrefix(to, "full"):
			return &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 2, 2}, Message: "mailbox full"}
		}
		return nil
	}

	t.Run("some refused", func(t *testing.T) {
		ts := newTestServer(t, "tcp4", nil, func(ts *testServer, _ *smtp.Server) { ts.rcptErr = refuse })
		other := newTestServer(t, "tcp4", nil, nil)
		p := newPool(t, Options{Servers: []string{ts.Addr, other.Addr}, Balance: BalanceOrdered})
		res, err := p.Send(t.Context(), testEnvelope("unknown@example.com", "ok@example.com", "full@example.com"), []byte(testBody))
		if err != nil {
			t.Fatalf("Send: %v", err)
		}
		if len(res.Rcpt) != 3 || res.Rcpt[1] != nil {
			t.Fatalf("Rcpt = %v", res.Rcpt)
		}
		se := wantSMTPError(t, res.Rcpt[0], 550, smtp.EnhancedCode{5, 1, 1})
		if se.Message != "no such user" {
			t.Errorf("message %q", se.Message)
		}
		wantSMTPError(t, res.Rcpt[2], 452, smtp.EnhancedCode{4, 2, 2})
		msgs := ts.messages()
		if len(msgs) != 1 || !reflect.DeepEqual(msgs[0].To, []string{"ok@example.com"}) {
			t.Errorf("server got %+v, want one message to ok@", msgs)
		}
		if other.connCount() != 0 {
			t.Errorf("second server contacted")
		}
	})

	t.Run("many", func(t *testing.T) {
		ts := newTestServer(t, "tcp4", nil, func(ts *testServer, _ *smtp.Server) { ts.rcptErr = refuse })
		p := newPool(t, Options{Servers: []string{ts.Addr}})
		var to []string
		for i := range 2*pipelineBatch + 50 {
			if i%7 == 3 {
				to = append(to, fmt.Sprintf("unknown%d@example.com", i))
				continue
			}
			to = append(to, fmt.Sprintf("u%d@example.com", i))
		}
		res, err := p.Send(t.Context(), testEnvelope(to...), []byte(testBody))
		if err != nil {
			t.Fatalf("Send: %v", err)
		}
		var accepted []string
		for i, err := range res.Rcpt {
			if (err != nil) != strings.HasPrefix(to[i], "unknown") {
				t.Errorf("%s: %v", to[i], err)
			}
			if err == nil {
				accepted = append(accepted, to[i])
			}
		}
		if msgs := ts.messages(); len(msgs) != 1 || !reflect.DeepEqual(msgs[0].To, accepted) {
			t.Errorf("server got %d messages, recipients %v", len(msgs), msgs)
		}
	})

	t.Run("all refused", func(t *testing.T) {
		ts := newTestServer(t, "tcp4", nil, func(ts *testServer, _ *smtp.Server) { ts.rcptErr = refuse })
		p := newPool(t, Options{Servers: []string{ts.Addr}})
		res, err := p.Send(t.Context(), testEnvelope("unknown@example.com", "full@example.com"), []byte(testBody))
		if err != nil {
			t.Fatalf("Send: %v", err)
		}
		wantSMTPError(t, res.Rcpt[0], 550, smtp.EnhancedCode{5, 1, 1})
		wantSMTPError(t, res.Rcpt[1], 452, smtp.EnhancedCode{4, 2, 2})
		if n := ts.dataCount(); n != 0 {
			t.Errorf("server saw %d DATA, want none", n)
		}
		// The connection was reset and stays usable.
		if _, err := p.Send(t.Context(), testEnvelope("ok@example.com"), []byte(testBody)); err != nil {
			t.Fatalf("next Send: %v", err)
		}
		if ts.connCount() != 1 || len(ts.messages()) != 1 {
			t.Errorf("%d connections, %d messages; want 1 and 1", ts.connCount(), len(ts.messages()))
		}
		if h := p.Health()[0]; !h.Up || h.Failures != 0 {
			t.Errorf("health %+v", h)
		}
	})
}

func TestMailFrom(t *testing.T) {
	t.Run("5xx relayed", func(t *testing.T) {
		a := newTestServer(t, "tcp4", nil, func(ts *testServer, _ *smtp.Server) {
			ts.mailErr = func(string) error {
				return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "sender rejected"}
			}
		})
		b := newTestServer(t, "tcp4", nil, nil)
		p := newPool(t, Options{Servers: []string{a.Addr, b.Addr}, Balance: BalanceOrdered})
		res, err := p.Send(t.Context(), testEnvelope(), []byte(testBody))
		se := wantSMTPError(t, err, 550, smtp.EnhancedCode{5, 7, 1})
		if se.Message != "sender rejected" || res.Server != a.Addr || res.Rcpt != nil {
			t.Errorf("message %q, Result %+v", se.Message, res)
		}
		if b.connCount() != 0 {
			t.Errorf("a permanent refusal was tried elsewhere")
		}
		if h := p.Health()[0]; !h.Up {
			t.Errorf("a server that refuses a sender is not down: %+v", h)
		}
	})

	t.Run("4xx fails over", func(t *testing.T) {
		a := newTestServer(t, "tcp4", nil, func(ts *testServer, _ *smtp.Server) {
			ts.mailErr = func(string) error {
				return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"}
			}
		})
		b := newTestServer(t, "tcp4", nil, nil)
		p := newPool(t, Options{Servers: []string{a.Addr, b.Addr}, Balance: BalanceOrdered})
		res, err := p.Send(t.Context(), testEnvelope(), []byte(testBody))
		if err != nil || res.Server != b.Addr || len(b.messages()) != 1 {
			t.Fatalf("Send = %+v, %v; want delivery by %s", res, err, b.Addr)
		}
		if h := p.Health()[0]; h.Up || !strings.Contains(h.LastError, "451") {
			t.Errorf("first server %+v, want down with the 451", h)
		}
	})
}

func TestDataRefusedAfterBody(t *testing.T) {
	for _, tc := range []struct {
		code int
		ec   smtp.EnhancedCode
	}{
		{451, smtp.EnhancedCode{4, 3, 0}},
		{554, smtp.EnhancedCode{5, 7, 1}},
	} {
		t.Run(fmt.Sprint(tc.code), func(t *testing.T) {
			a := newTestServer(t, "tcp4", nil, func(ts *testServer, _ *smtp.Server) {
				ts.data = func(*smtp.Conn, []byte) error {
					return &smtp.SMTPError{Code: tc.code, EnhancedCode: tc.ec, Message: "content refused"}
				}
			})
			b := newTestServer(t, "tcp4", nil, nil)
			p := newPool(t, Options{Servers: []string{a.Addr, b.Addr}, Balance: BalanceOrdered})
			_, err := p.Send(t.Context(), testEnvelope(), []byte(testBody))
			wantSMTPError(t, err, tc.code, tc.ec)
			if a.dataCount() != 1 || b.connCount() != 0 {
				t.Errorf("DATA seen by first server %d times, second server %d connections; want 1 and 0", a.dataCount(), b.connCount())
			}
			// The connection is still good for the next message.
			a.mu.Lock()
			a.data = nil
			a.mu.Unlock()
			if _, err := p.Send(t.Context(), testEnvelope(), []byte(testBody)); err != nil {
				t.Fatalf("next Send: %v", err)
			}
			if a.connCount() != 1 {
				t.Errorf("%d connections, want 1", a.connCount())
			}
		})
	}
}

func TestDataCommandRefused(t *testing.T) {
	t.Run("4xx fails over", func(t *testing.T) {
		rs := newRawServer(t, "PIPELINING")
		rs.set("DATA", "451 4.3.0 no queue space")
		b := newTestServer(t, "tcp4", nil, nil)
		p := newPool(t, Options{Servers: []string{rs.Addr, b.Addr}, Balance: BalanceOrdered})
		res, err := p.Send(t.Context(), testEnvelope(), []byte(testBody))
		if err != nil || res.Server != b.Addr {
			t.Fatalf("Send = %+v, %v; want delivery by %s", res, err, b.Addr)
		}
		if len(rs.messages()) != 0 || len(b.messages()) != 1 {
			t.Errorf("raw server has %d messages, go-smtp server %d; want 0 and 1", len(rs.messages()), len(b.messages()))
		}
		if h := p.Health()[0]; h.Up {
			t.Errorf("refusing server still up: %+v", h)
		}
	})
	t.Run("5xx relayed", func(t *testing.T) {
		rs := newRawServer(t, "PIPELINING")
		rs.set("DATA", "554 5.5.1 no valid recipients")
		b := newTestServer(t, "tcp4", nil, nil)
		p := newPool(t, Options{Servers: []string{rs.Addr, b.Addr}, Balance: BalanceOrdered})
		_, err := p.Send(t.Context(), testEnvelope(), []byte(testBody))
		wantSMTPError(t, err, 554, smtp.EnhancedCode{5, 5, 1})
		if b.connCount() != 0 {
			t.Errorf("second server contacted")
		}
	})
}

func TestConnectionLostAfterDot(t *testing.T) {
	a := newTestServer(t, "tcp4", nil, func(ts *testServer, _ *smtp.Server) {
		ts.data = func(c *smtp.Conn, _ []byte) error {
			c.Conn().Close() // delivered, but the reply never leaves
			return nil
		}
	})
	b := newTestServer(t, "tcp4", nil, nil)
	p := newPool(t, Options{Servers: []string{a.Addr, b.Addr}, Balance: BalanceOrdered})

	res, err := p.Send(t.Context(), testEnvelope(), []byte(testBody))
	if err == nil || !errors.Is(err, ErrUnconfirmed) || errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnconfirmed and not ErrUnavailable", err)
	}
	if _, ok := err.(*smtp.SMTPError); ok {
		t.Fatalf("err = %v is an SMTP reply", err)
	}
	if res.Server != a.Addr {
		t.Errorf("Result.Server = %q, want %q", res.Server, a.Addr)
	}
	// The test server records the message after its handler has cut the connection: wait.
	testenv.WaitFor(t, "the first server's delivery", func() bool { return len(a.messages()) == 1 })
	if len(a.messages()) != 1 || b.connCount() != 0 {
		t.Errorf("first server has %d messages, second %d connections; want exactly one delivery", len(a.messages()), b.connCount())
	}
	if h := p.Health()[0]; h.Up {
		t.Errorf("server that dropped the connection still up: %+v", h)
	}
}

func TestTimeoutAfterDot(t *testing.T) {
	release := make(chan struct{})
	a := newTestServer(t, "tcp4", nil, func(ts *testServer, _ *smtp.Server) {
		ts.data = func(*smtp.Conn, []byte) error {
			<-release
			return nil
		}
	})
	defer close(release)
	b := newTestServer(t, "tcp4", nil, nil)
	p := newPool(t, Options{Servers: []string{a.Addr, b.Addr}, Balance: BalanceOrdered})

	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	_, err := p.Send(ctx, testEnvelope(), []byte(testBody))
	if !errors.Is(err, ErrUnconfirmed) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want ErrUnconfirmed after the deadline", err)
	}
	if a.dataCount() != 1 || b.connCount() != 0 {
		t.Errorf("DATA seen %d times by the first server, %d connections to the second; want 1 and 0", a.dataCount(), b.connCount())
	}
	if h := p.Health()[0]; !h.Up {
		t.Errorf("our own deadline is not the server's failure: %+v", h)
	}
}

func TestConnectionLostDuringBody(t *testing.T) {
	rs := newRawServer(t, "PIPELINING", "SIZE")
	// 354, then the server goes away: the body cannot all be sent.
	rs.set("DATA", "354 go ahead\r\n421 4.3.0 going down")
	b := newTestServer(t, "tcp4", nil, func(_ *testServer, s *smtp.Server) { s.MaxMessageBytes = 64 << 20 })
	p := newPool(t, Options{Servers: []string{rs.Addr, b.Addr}, Balance: BalanceOrdered})

	body := strings.Repeat(strings.Repeat("x", 998)+"\r\n", 16<<10) // 16 MB: more than the socket buffers take
	res, err := p.Send(t.Context(), testEnvelope(), []byte(body))
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if res.Server != b.Addr || len(b.messages()) != 1 || len(b.messages()[0].Body) != len(body) {
		t.Errorf("message went to %s; want it whole at %s", res.Server, b.Addr)
	}
}

func TestIPv6(t *testing.T) {
	ts := newTestServer(t, "tcp6", nil, nil)
	if !strings.HasPrefix(ts.Addr, "[::1]:") {
		t.Fatalf("server address %s", ts.Addr)
	}
	p := newPool(t, Options{Servers: []string{ts.Addr}})
	res, err := p.Send(t.Context(), testEnvelope(), []byte(testBody))
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if res.Server != ts.Addr || len(ts.messages()) != 1 {
		t.Errorf("Result %+v, %d messages", res, len(ts.messages()))
	}
}

func TestContext(t *testing.T) {
	for _, tc := range []struct {
		name string
		ctx  func(t *testing.T) context.Context
		want error
	}{
		{"deadline", func(t *testing.T) context.Context {
			ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
			t.Cleanup(cancel)
			return ctx
		}, context.DeadlineExceeded},
		{"cancel", func(t *testing.T) context.Context {
			ctx, cancel := context.WithCancel(t.Context())
			stop := time.AfterFunc(200*time.Millisecond, cancel)
			t.Cleanup(func() { stop.Stop() })
			return ctx
		}, context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs := newRawServer(t)
			rs.setGreeting("") // never greets
			b := newTestServer(t, "tcp4", nil, nil)
			p := newPool(t, Options{Servers: []string{rs.Addr, b.Addr}, Balance: BalanceOrdered})
			start := time.Now()
			_, err := p.Send(tc.ctx(t), testEnvelope(), []byte(testBody))
			if !errors.Is(err, tc.want) || errors.Is(err, ErrUnavailable) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("Send took %v after the context ended", d)
			}
			if h := p.Health()[0]; !h.Up || h.Failures != 0 {
				t.Errorf("cancelled Send penalised the server: %+v", h)
			}
			if b.connCount() != 0 {
				t.Errorf("cancelled Send went on to the next server")
			}
		})
	}
}

func TestNew(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		want string // "" = valid
	}{
		{"minimal", Options{Servers: []string{"192.0.2.1:25"}}, ""},
		{"ipv6 and names", Options{Servers: []string{"[2001:db8::1]:25", "mx.example.org:2525"}}, ""},
		{"no servers", Options{}, "no servers"},
		{"no port", Options{Servers: []string{"192.0.2.1"}}, `server "192.0.2.1"`},
		{"bare ipv6", Options{Servers: []string{"2001:db8::1:25"}}, `server "2001:db8::1:25"`},
		{"port 0", Options{Servers: []string{"192.0.2.1:0"}}, "bad port"},
		{"port name", Options{Servers: []string{"192.0.2.1:smtp"}}, "bad port"},
		{"no host", Options{Servers: []string{":25"}}, "missing host"},
		{"twice", Options{Servers: []string{"192.0.2.1:25", "192.0.2.1:25"}}, "listed twice"},
		{"balance", Options{Servers: []string{"192.0.2.1:25"}, Balance: "random"}, `balance "random"`},
		{"tls", Options{Servers: []string{"192.0.2.1:25"}, TLS: "always"}, `tls "always"`},
		{"helo", Options{Servers: []string{"192.0.2.1:25"}, HeloName: "a b"}, "helo name"},
		{"timeout", Options{Servers: []string{"192.0.2.1:25"}, CommandTimeout: -time.Second}, "command timeout -1s: negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := New(tc.opts)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				p.Close()
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}

	t.Run("all problems", func(t *testing.T) {
		_, err := New(Options{Servers: []string{"x"}, Balance: "b", TLS: "t"})
		for _, want := range []string{`server "x"`, `balance "b"`, `tls "t"`} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("err = %v, want it to mention %s", err, want)
			}
		}
	})

	t.Run("defaults", func(t *testing.T) {
		p, err := New(Options{Servers: []string{"192.0.2.1:25"}})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		o := p.opts
		if o.Balance != BalanceRoundRobin || o.TLS != TLSOpportunistic || o.HeloName == "" ||
			o.ConnectTimeout != 10*time.Second || o.CommandTimeout != 5*time.Minute || o.DataTimeout != 10*time.Minute ||
			o.RetryAfter != 30*time.Second || o.MaxIdle != 16 || o.IdleTimeout != 30*time.Second {
			t.Errorf("defaults %+v", o)
		}
	})
}
