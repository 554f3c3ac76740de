package digest_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/sekisho/sekisho/internal/digest"
)

// FuzzParseToken: Parse never panics, refuses with ErrBadToken, and accepts only what Make
// makes for exactly the message and recipient it returns: a link cannot be bent to another
// message or recipient.
func FuzzParseToken(f *testing.F) {
	k := digest.Tokens{Key: []byte("fuzz key")}
	good := k.Make("01JCX3F7Z9", "taro@example.jp")
	for _, s := range []string{good, "", ".", "..", "a.b.c", good + ".", good[:len(good)-1], strings.ReplaceAll(good, ".", "=."),
		"%2e%2e%2f", "AAAA.AAAA.AAAA", strings.Repeat("A.", 600)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, rcpt, err := k.Parse(s)
		if err != nil {
			if !errors.Is(err, digest.ErrBadToken) || id != "" || rcpt != "" {
				t.Fatalf("Parse(%q) = %q, %q, %v", s, id, rcpt, err)
			}
			return
		}
		if again := k.Make(id, rcpt); again != s {
			t.Fatalf("Parse accepted %q for (%q, %q), which Make writes as %q", s, id, rcpt, again)
		}
	})
}

// FuzzMakeParse: whatever the message ID and recipient, Make's token parses back to them.
func FuzzMakeParse(f *testing.F) {
	f.Add("id", "taro@example.jp")
	f.Add("a.b", "x\x00y")
	f.Fuzz(func(t *testing.T, id, rcpt string) {
		k := digest.Tokens{Key: []byte("k")}
		tok := k.Make(id, rcpt)
		gotID, gotRcpt, err := k.Parse(tok)
		switch {
		case id == "" || rcpt == "" || len(tok) > digest.MaxTokenLen:
			if err == nil {
				t.Fatalf("Parse accepted a token for (%q, %q)", id, rcpt)
			}
		case err != nil || gotID != id || gotRcpt != rcpt:
			t.Fatalf("Parse(Make(%q, %q)) = %q, %q, %v", id, rcpt, gotID, gotRcpt, err)
		}
	})
}
