package challenge_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/sekisho/sekisho/internal/challenge"
)

func TestNewToken(t *testing.T) {
	seen := make(map[string]bool)
	for range 1000 {
		tok, hash := challenge.NewToken()
		if len(tok) != challenge.TokenLen {
			t.Fatalf("token %q: length %d, want %d", tok, len(tok), challenge.TokenLen)
		}
		b, err := base64.RawURLEncoding.DecodeString(tok)
		if err != nil || len(b) != challenge.TokenBytes {
			t.Fatalf("token %q: decodes to %d bytes, %v", tok, len(b), err)
		}
		sum := sha256.Sum256([]byte(tok))
		if want := hex.EncodeToString(sum[:]); hash != want {
			t.Fatalf("hash %q, want %q", hash, want)
		}
		if h, err := challenge.ParseToken(tok); err != nil || h != hash {
			t.Fatalf("ParseToken(%q) = %q, %v; want %q", tok, h, err, hash)
		}
		if !challenge.MatchToken(tok, hash) {
			t.Fatalf("MatchToken(%q, its hash) = false", tok)
		}
		if seen[tok] {
			t.Fatalf("token %q made twice", tok)
		}
		seen[tok] = true
	}
	if n := base64.RawURLEncoding.EncodedLen(challenge.TokenBytes); n != challenge.TokenLen {
		t.Errorf("TokenLen %d, want %d", challenge.TokenLen, n)
	}
}

func TestParseTokenRejects(t *testing.T) {
	good, _ := challenge.NewToken()
	for _, tc := range []struct{ name, in string }{
		{"empty", ""},
		{"short", good[:42]},
		{"long", good + "A"},
		{"padded", good[:42] + "="},
		{"std alphabet", "+" + good[1:]},
		{"slash", good[:10] + "/" + good[11:]},
		{"space", good[:10] + " " + good[11:]},
		{"dot", good[:42] + "."},
		{"non-canonical last char", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB"},
		{"utf-8", strings.Repeat("あ", 14) + "A"},
		{"path", "../../../../../../../../../../etc/passwd..."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := challenge.ParseToken(tc.in)
			if !errors.Is(err, challenge.ErrBadToken) || h != "" {
				t.Errorf("ParseToken(%q) = %q, %v; want ErrBadToken", tc.in, h, err)
			}
		})
	}
	if _, err := challenge.ParseToken("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"); err != nil {
		t.Errorf("ParseToken(all zero bits) = %v", err)
	}
}

func TestMatchToken(t *testing.T) {
	a, ha := challenge.NewToken()
	b, hb := challenge.NewToken()
	for _, tc := range []struct {
		token, hash string
		want        bool
	}{
		{a, ha, true},
		{b, hb, true},
		{a, hb, false},
		{b, ha, false},
		{a, "", false},
		{a, strings.ToUpper(ha), false},
		{"", challenge.HashToken(""), true},
	} {
		if got := challenge.MatchToken(tc.token, tc.hash); got != tc.want {
			t.Errorf("MatchToken(%q, %q) = %v, want %v", tc.token, tc.hash, got, tc.want)
		}
	}
}
