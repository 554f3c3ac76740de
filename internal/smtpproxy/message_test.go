package smtpproxy

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/store"
)

func TestCheckLineEndings(t *testing.T) {
	tests := []struct {
		in   string
		want bool // ok
	}{
		{"", true},
		{"a\r\nb\r\n", true},
		{"no newline at end", true},
		{"a\nb\r\n", false},
		{"a\rb\r\n", false},
		{"a\r\n\n", false},
		{"a\r", false},
		{"\r\r\n", false},
		{"x\r\n.\n", false},
	}
	for _, tt := range tests {
		if got := checkLineEndings([]byte(tt.in)) == nil; got != tt.want {
			t.Errorf("checkLineEndings(%q) ok = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// FuzzCheckLineEndings compares the scanner with the plain definition: every CR is followed
// by LF and every LF preceded by CR.
func FuzzCheckLineEndings(f *testing.F) {
	for _, s := range []string{"a\r\nb", "a\nb", "\r", "\n", "\r\n\r\n", "x\r\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		want := true
		for i, c := range b {
			if c == '\r' && (i+1 >= len(b) || b[i+1] != '\n') {
				want = false
			}
			if c == '\n' && (i == 0 || b[i-1] != '\r') {
				want = false
			}
		}
		if got := checkLineEndings(b) == nil; got != want {
			t.Fatalf("checkLineEndings(%q) ok = %v, want %v", b, got, want)
		}
	})
}

// FuzzHeader: any message yields a header without panics, and the Received header we build
// from hostile HELO strings is always well-formed: CRLF line endings, continuation lines
// folded with a tab.
func FuzzHeader(f *testing.F) {
	f.Add([]byte("Subject: hi\r\nMessage-ID: <a@b>\r\n\r\nbody\r\n"), "client.test")
	f.Add([]byte("Subject: =?utf-8?b?44GT?=\r\n continued\r\n\r\n"), "a\r\nInjected: yes")
	f.Fuzz(func(t *testing.T, body []byte, helo string) {
		h := parseHeader(body)
		if strings.ContainsAny(h.Subject, "\r\n") {
			t.Fatalf("subject %q has a line break", h.Subject)
		}
		rec := received(receivedInfo{Helo: helo, ClientIP: "192.0.2.1", By: "mx.test", With: "ESMTP", ID: "x", At: time.Unix(0, 0)})
		if checkLineEndings(rec) != nil {
			t.Fatalf("Received has a bare line ending: %q", rec)
		}
		lines := bytes.Split(bytes.TrimSuffix(rec, []byte("\r\n")), []byte("\r\n"))
		if !bytes.HasPrefix(lines[0], []byte("Received: from ")) {
			t.Fatalf("first line %q", lines[0])
		}
		for _, l := range lines[1:] {
			if len(l) == 0 || l[0] != '\t' {
				t.Fatalf("unfolded line %q in %q", l, rec)
			}
		}
	})
}

// A message sent after the 354 reply is captured by the wiretap; one pipelined behind DATA
// (RFC 2920 forbids it) is read by go-smtp. Both reach the upstream the same, dot-stuffing
// undone, and both are refused for a bare LF or for their size.
func TestDataCapturedOrNot(t *testing.T) {
	h := newHarness(t, harnessOpts{opts: func(o *Options) { o.MaxMessageBytes = 1000 }})
	h.put(store.Entry{List: store.White, Key: "friend@partner.test", Kind: store.KindFrom})
	const sent = "Subject: dots\r\n\r\n..leading dot\r\n.\r\n"
	const want = "Subject: dots\r\n\r\n.leading dot\r\n"
	transaction := func(pipelined bool, body string) string {
		c, _ := h.dial("127.0.0.2")
		c.expect("250", "EHLO client.test")
		c.expect("250", "MAIL FROM:<friend@partner.test>")
		c.expect("250", "RCPT TO:<taro@example.jp>")
		if pipelined {
			fmt.Fprint(c.conn, "DATA\r\n"+body)
			if got := c.reply(); !strings.HasPrefix(got, "354") {
				t.Fatalf("DATA: %q", got)
			}
			return c.reply()
		}
		c.expect("354", "DATA")
		fmt.Fprint(c.conn, body)
		return c.reply()
	}
	for _, pipelined := range []bool{false, true} {
		n := len(h.up.Messages())
		if got := transaction(pipelined, sent); !strings.HasPrefix(got, "250") {
			t.Fatalf("pipelined %v: reply %q", pipelined, got)
		}
		if m := h.up.Wait(t, n+1)[n]; !strings.HasSuffix(string(m.Data), "\r\n"+want) {
			t.Errorf("pipelined %v: upstream got %q", pipelined, m.Data)
		}
		if got := transaction(pipelined, "Subject: x\r\n\r\nline\nsmuggled\r\n.\r\n"); !strings.HasPrefix(got, "550 5.6.0") {
			t.Errorf("pipelined %v, bare LF: reply %q", pipelined, got)
		}
		if got := transaction(pipelined, strings.Repeat("0123456789\r\n", 100)+".\r\n"); !strings.HasPrefix(got, "552 5.3.4") {
			t.Errorf("pipelined %v, too big: reply %q", pipelined, got)
		}
		if got := transaction(pipelined, ".\r\n"); !strings.HasPrefix(got, "250") {
			t.Errorf("pipelined %v, empty message: reply %q", pipelined, got)
		}
	}
}
