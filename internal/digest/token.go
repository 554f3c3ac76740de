package digest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// MaxTokenLen bounds a digest token; longer input is refused before any decoding.
const MaxTokenLen = 1024

// ErrBadToken is returned by Tokens.Parse for anything Tokens.Make did not make with this
// key. The digest page answers it like an unknown link (404).
var ErrBadToken = errors.New("digest: bad token")

// Tokens make and check the per-message links of a digest: a token names one held message
// and one of its recipients, signed with HMAC-SHA256. It holds no expiry of its own: it
// dies with the message (or with that recipient of it), which the page looks up.
type Tokens struct {
	Key []byte // store.Secret(ctx, "digest", 32): the same on every node
}

// Make returns the token for held message id and its recipient rcpt:
// base64url(id) "." base64url(rcpt) "." base64url(HMAC).
func (k Tokens) Make(id, rcpt string) string {
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(id)) + "." + enc.EncodeToString([]byte(rcpt)) + "." + enc.EncodeToString(k.mac(id, rcpt))
}

// Parse checks tok's signature and returns the message ID and recipient it names.
func (k Tokens) Parse(tok string) (id, rcpt string, err error) {
	if len(tok) > MaxTokenLen {
		return "", "", fmt.Errorf("%w: %d bytes", ErrBadToken, len(tok))
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return "", "", fmt.Errorf("%w: %d parts", ErrBadToken, len(parts))
	}
	var raw [3][]byte
	for i, p := range parts {
		if raw[i], err = base64.RawURLEncoding.Strict().DecodeString(p); err != nil {
			return "", "", fmt.Errorf("%w: part %d: not base64url", ErrBadToken, i+1)
		}
	}
	id, rcpt = string(raw[0]), string(raw[1])
	if id == "" || rcpt == "" || !hmac.Equal(raw[2], k.mac(id, rcpt)) {
		return "", "", fmt.Errorf("%w: signature", ErrBadToken)
	}
	return id, rcpt, nil
}

func (k Tokens) mac(id, rcpt string) []byte {
	m := hmac.New(sha256.New, k.Key)
	m.Write([]byte("sekisho digest\x00"))
	m.Write([]byte(id))
	m.Write([]byte{0})
	m.Write([]byte(rcpt))
	return m.Sum(nil)
}
