package api

import (
	"regexp"
	"testing"
)

func TestTokenFormat(t *testing.T) {
	a, ha, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	b, _, _ := NewToken()
	if a == b || !regexp.MustCompile(`^sk_[A-Za-z0-9_-]{43}$`).MatchString(a) || ha != HashToken(a) || len(ha) != 64 {
		t.Fatalf("tokens %q %q hash %q", a, b, ha)
	}
	// SHA-256 of the whole token, hex (printf sk_x | sha256sum): what the store keeps.
	if got := HashToken("sk_x"); got != "4bd38db59bc5414db2c0b735424be0364fbe7a7968139a73b5d6bad473f1aabc" {
		t.Fatalf("HashToken(sk_x) = %s", got)
	}
}
