package upstream

import (
	"bufio"
	"bytes"
	"io"
	"net/textproto"
	"reflect"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"
)

func TestPipelining(t *testing.T) {
	for _, tc := range []struct {
		name      string
		ext       []string
		pipelined bool
	}{
		{"offered", []string{"PIPELINING"}, true},
		{"not offered", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs := newRawServer(t, append([]string{"SIZE"}, tc.ext...)...)
			p := newPool(t, Options{Servers: []string{rs.Addr}})
			if _, err := p.Send(t.Context(), testEnvelope("b@example.com", "c@example.com"), []byte(testBody)); err != nil {
				t.Fatalf("Send: %v", err)
			}
			for _, l := range rs.received() {
				if !strings.HasPrefix(l.Line, "MAIL") {
					continue
				}
				// Pipelined, the RCPTs arrived with the MAIL.
				if got := l.Buffered > 0; got != tc.pipelined {
					t.Errorf("%d bytes after MAIL; pipelined = %v, want %v", l.Buffered, got, tc.pipelined)
				}
			}
			if len(rs.messages()) != 1 {
				t.Errorf("message not delivered")
			}
		})
	}
}

// Without PIPELINING a refused MAIL is not followed by RCPTs.
func TestMailRefusedUnpipelined(t *testing.T) {
	rs := newRawServer(t, "SIZE")
	rs.set("MAIL", "553 5.1.8 bad sender domain")
	p := newPool(t, Options{Servers: []string{rs.Addr}})
	_, err := p.Send(t.Context(), testEnvelope(), []byte(testBody))
	wantSMTPError(t, err, 553, smtp.EnhancedCode{5, 1, 8})
	if rcpts := rs.commands("RCPT"); len(rcpts) != 0 {
		t.Errorf("RCPT sent after a refused MAIL: %q", rcpts)
	}
}

func TestHeloFallback(t *testing.T) {
	rs := newRawServer(t) // answers EHLO with 502
	p := newPool(t, Options{Servers: []string{rs.Addr}, XForward: true})
	env := testEnvelope()
	env.EightBit = true
	if _, err := p.Send(t.Context(), env, []byte(testBody)); err != nil {
		t.Fatalf("Send: %v", err)
	}
	var got []string
	for _, l := range rs.received() {
		got = append(got, l.Line)
	}
	want := []string{"EHLO sekisho.test", "HELO sekisho.test", "MAIL FROM:<a@example.org>", "RCPT TO:<b@example.com>", "DATA"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("commands\n got %q\nwant %q", got, want)
	}
}

func TestBadGreetingsFailOver(t *testing.T) {
	for _, tc := range []struct {
		name    string
		setup   func(*rawServer)
		wantErr string
	}{
		{"554 greeting", func(rs *rawServer) { rs.setGreeting("554 5.3.2 go away") }, "greeting: SMTP error 554"},
		{"421 greeting", func(rs *rawServer) { rs.setGreeting("421 4.3.2 busy") }, "greeting: SMTP error 421"},
		{"garbage greeting", func(rs *rawServer) { rs.setGreeting("HTTP/1.1 400 Bad Request") }, "greeting"},
		{"EHLO 421", func(rs *rawServer) { rs.set("EHLO", "421 4.3.2 busy") }, "ehlo: SMTP error 421"},
		{"HELO refused", func(rs *rawServer) { rs.set("EHLO", "500 5.5.1 what"); rs.set("HELO", "550 5.7.1 no") }, "helo: SMTP error 550"},
		{"RCPT 421", func(rs *rawServer) { rs.set("RCPT", "421 4.3.2 closing") }, "rcpt to: SMTP error 421"},
		{"MAIL 421", func(rs *rawServer) { rs.set("MAIL", "421 4.3.2 closing") }, "mail from: SMTP error 421"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs := newRawServer(t, "PIPELINING")
			tc.setup(rs)
			b := newTestServer(t, "tcp4", nil, nil)
			p := newPool(t, Options{Servers: []string{rs.Addr, b.Addr}, Balance: BalanceOrdered})
			res, err := p.Send(t.Context(), testEnvelope(), []byte(testBody))
			if err != nil || res.Server != b.Addr || len(b.messages()) != 1 {
				t.Fatalf("Send = %+v, %v; want delivery by %s", res, err, b.Addr)
			}
			h := p.Health()[0]
			if h.Up || !strings.Contains(h.LastError, tc.wantErr) {
				t.Errorf("first server %+v, want down with %q", h, tc.wantErr)
			}
			if len(rs.messages()) != 0 {
				t.Errorf("first server got the message too")
			}
		})
	}
}

func TestReplyErr(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    reply
		want smtp.SMTPError
	}{
		{"enhanced", reply{550, "5.1.1 no such user"}, smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}},
		{"plain", reply{554, "no"}, smtp.SMTPError{Code: 554, Message: "no"}},
		{"every line", reply{550, "5.7.1 first\n5.7.1 second"}, smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "first\nsecond"}},
		{"last line only, as go-smtp writes", reply{452, "first\n4.2.2 second"}, smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 2, 2}, Message: "first\nsecond"}},
		{"class mismatch", reply{550, "4.1.1 odd"}, smtp.SMTPError{Code: 550, Message: "4.1.1 odd"}},
		{"not a code", reply{550, "5.1 short"}, smtp.SMTPError{Code: 550, Message: "5.1 short"}},
		{"long detail", reply{550, "5.1.1000 x"}, smtp.SMTPError{Code: 550, Message: "5.1.1000 x"}},
		{"code alone", reply{451, "4.3.0"}, smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}}},
		{"version number", reply{554, "5.2.1-beta"}, smtp.SMTPError{Code: 554, Message: "5.2.1-beta"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.r.err(); *got != tc.want {
				t.Errorf("err() = %+v, want %+v", *got, tc.want)
			}
		})
	}
}

func TestParseEHLO(t *testing.T) {
	got := parseEHLO("mx.example.org hello\nPIPELINING\nsize 1000\nXFORWARD NAME ADDR\nAUTH PLAIN LOGIN")
	want := map[string]string{"PIPELINING": "", "SIZE": "1000", "XFORWARD": "NAME ADDR", "AUTH": "PLAIN LOGIN"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseEHLO = %v, want %v", got, want)
	}
	if got := parseEHLO("mx.example.org"); len(got) != 0 {
		t.Errorf("parseEHLO of a greeting alone = %v", got)
	}
}

func TestBudgetReader(t *testing.T) {
	huge := "250-" + strings.Repeat("x", maxReplyBytes) + "\r\n250 ok\r\n"
	b := &budgetReader{r: strings.NewReader(huge), n: maxReplyBytes}
	_, _, err := textproto.NewReader(bufio.NewReader(b)).ReadResponse(0)
	if err != errReplyTooLong {
		t.Errorf("ReadResponse of an endless reply: %v, want errReplyTooLong", err)
	}
}

func TestCheckCRLF(t *testing.T) {
	for _, ok := range []string{"", "a", "a\r\n", "\r\n\r\n", "a\r\nb", ".\r\n"} {
		if err := checkCRLF([]byte(ok)); err != nil {
			t.Errorf("checkCRLF(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"\n", "\r", "a\n", "a\r", "\r\r\n", "\r\n\n", "a\n\r", "\n\r\n"} {
		if err := checkCRLF([]byte(bad)); err == nil {
			t.Errorf("checkCRLF(%q) = nil", bad)
		}
	}
}

// FuzzDotStuff checks that what dotStuff writes reads back, through the
// standard library's decoder, as the message, and that nothing in it ends
// the data early.
func FuzzDotStuff(f *testing.F) {
	for _, s := range []string{"", ".", ".\r\n", "a\r\n.\r\nb", "..\r\n..", "a\r\n.", "\r\n.\r\n.\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if checkCRLF(body) != nil {
			return
		}
		var out bytes.Buffer
		w := bufio.NewWriter(&out)
		n := dotStuff(w, body)
		w.Flush()
		if int64(out.Len()) != n {
			t.Fatalf("dotStuff wrote %d bytes, said %d", out.Len(), n)
		}
		wire := out.Bytes()
		if i := bytes.Index(wire, []byte("\r\n.\r\n")); i >= 0 && i != len(wire)-5 {
			t.Fatalf("end of data at %d of %d: %q", i, len(wire), wire)
		}
		if len(body) > 0 && bytes.HasPrefix(wire, []byte(".\r\n")) {
			t.Fatalf("end of data at the start: %q", wire)
		}
		got, err := io.ReadAll(textproto.NewReader(bufio.NewReader(bytes.NewReader(wire))).DotReader())
		if err != nil {
			t.Fatal(err)
		}
		want := bytes.ReplaceAll(body, []byte("\r\n"), []byte("\n")) // DotReader's line endings
		if len(want) > 0 && want[len(want)-1] != '\n' {
			want = append(want, '\n')
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("round trip of %q: %q", body, got)
		}
	})
}
