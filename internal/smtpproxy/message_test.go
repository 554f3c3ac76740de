package smtpproxy

import (
	"bytes"
	"strings"
	"testing"
	"time"
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
