package challenge_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"net/mail"
	"reflect"
	"strings"
	"testing"

	"github.com/sekisho/sekisho/internal/challenge"
)

// FuzzParseToken: what ParseToken accepts is exactly the set of tokens NewToken can make,
// each with its one hash; everything else is ErrBadToken.
func FuzzParseToken(f *testing.F) {
	tok, _ := challenge.NewToken()
	for _, s := range []string{tok, "", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB",
		tok[:42] + "=", strings.Repeat("/", 43), "%2e%2e%2f", tok + "/extra"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		hash, err := challenge.ParseToken(s)
		if err != nil {
			if !errors.Is(err, challenge.ErrBadToken) || hash != "" {
				t.Fatalf("ParseToken(%q) = %q, %v", s, hash, err)
			}
			return
		}
		b, derr := base64.RawURLEncoding.DecodeString(s)
		if derr != nil || len(b) != challenge.TokenBytes || base64.RawURLEncoding.EncodeToString(b) != s {
			t.Fatalf("ParseToken accepted %q, which is no token (%d bytes, %v)", s, len(b), derr)
		}
		if hash != challenge.HashToken(s) || !challenge.MatchToken(s, hash) {
			t.Fatalf("ParseToken(%q) hash %q", s, hash)
		}
	})
}

// FuzzHeaderFacts: the body is never read, and a field put in front is always seen.
func FuzzHeaderFacts(f *testing.F) {
	for _, s := range []string{
		"", "Subject: x\r\n", "Auto-Submitted: auto-replied (x)\r\n", "Precedence : bulk\n",
		"List-Id: <x>\r\n\tfolded\r\n", "a\r\n: b\r\n", "X: (unclosed comment\r\n", "\r\n\r\n", "Auto-Submitted: \\(",
	} {
		f.Add([]byte(s), []byte("List-Id: x\r\nAuto-Submitted: auto-generated\r\n"))
	}
	f.Fuzz(func(t *testing.T, head, body []byte) {
		if len(head)+4+len(body) > challenge.MaxHeaderBytes {
			return
		}
		msg := func(body []byte) []byte {
			return bytes.Join([][]byte{head, []byte("\r\n\r\n"), body}, nil)
		}
		got := challenge.HeaderFacts(msg(body))
		if want := challenge.HeaderFacts(msg(nil)); !reflect.DeepEqual(got, want) {
			t.Fatalf("the body changed the facts:\nhead %q\nbody %q\n got %#v\nwant %#v", head, body, got, want)
		}
		front := challenge.HeaderFacts(append([]byte("Auto-Submitted: auto-replied\r\nList-Id: x\r\n"), head...))
		if len(front.AutoSubmitted) == 0 || front.AutoSubmitted[0] != "auto-replied" || !front.ListID {
			t.Fatalf("fields in front of %q not seen: %#v", head, front)
		}
	})
}

// FuzzCompose: whatever reaches Compose, its output is a well-formed 7-bit message with
// exactly its own header fields, or an error: no header or body can be smuggled in through
// an address or the URL.
func FuzzCompose(f *testing.F) {
	f.Add("taro@example.jp", "hanako@example.jp", testURL, "mx.example.jp")
	f.Add("a@example.com\r\nBcc: x@y", "b@example.jp\r\n\r\nspam", "https://x/c/\r\n", "h\r\nX: y")
	f.Add("\"a b\"@example.com", "b@例え.jp", "https://例え.jp/c/x", "")
	f.Add("ü@example.jp", "b@example.jp", "http://[::1]:8080/c/x", "host")
	f.Fuzz(func(t *testing.T, to, rcpt, url, host string) {
		c := base()
		c.To, c.Recipients, c.URL, c.Hostname, c.MessageID = to, []string{rcpt}, url, host, ""
		raw, err := challenge.Compose(c)
		if err != nil {
			return
		}
		if bytes.Count(raw, []byte("\n")) != bytes.Count(raw, []byte("\r\n")) || bytes.Count(raw, []byte("\r")) != bytes.Count(raw, []byte("\r\n")) {
			t.Fatalf("bare CR or LF:\n%q", raw)
		}
		m, err := mail.ReadMessage(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("net/mail: %v\n%q", err, raw)
		}
		if len(m.Header) != 10 {
			t.Fatalf("%d header fields:\n%q", len(m.Header), raw)
		}
		head, _, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
		for _, b := range head {
			if b >= 0x80 && !strings.ContainsFunc(to, func(r rune) bool { return r >= 0x80 }) {
				t.Fatalf("8-bit header without an 8-bit address:\n%q", raw)
			}
		}
		text := decodeBody(t, m)
		if !strings.Contains(text, "\r\n"+url+"\r\n") {
			t.Fatalf("URL %q not on a line of its own", url)
		}
	})
}
