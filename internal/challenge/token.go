package challenge

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
)

// TokenBytes is the randomness in a token: 256 bits, well over the 128 that SPEC §4 asks for.
const TokenBytes = 32

// TokenLen is the length of a token as it appears in a URL: TokenBytes in unpadded base64url
// (⌈32·8/6⌉ characters).
const TokenLen = 43

// ErrBadToken is returned by ParseToken for anything that is not a token NewToken could have
// made. The confirm page answers it like an unknown token.
var ErrBadToken = errors.New("challenge: malformed token")

// NewToken returns a new AUDIR token and its hash. The token goes into the challenge URL
// and is never stored or logged; the hash is the AUDIR entry's Key.
func NewToken() (token, hash string) {
	b := make([]byte, TokenBytes)
	// crypto/rand.Read never fails (Go 1.24): on a broken system it crashes the program
	// rather than hand out a guessable token.
	rand.Read(b)
	token = base64.RawURLEncoding.EncodeToString(b)
	return token, HashToken(token)
}

// HashToken returns the hash under which token is stored: hex(SHA-256(token)). The token
// carries 256 bits of randomness, so a fast hash is enough: there is nothing to brute-force.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// ParseToken checks that s has the form of a token (TokenLen characters of the base64url
// alphabet, as in a /c/{token} URL) and returns its hash, the key to look it up with.
// Anything else is ErrBadToken, without a database lookup.
func ParseToken(s string) (hash string, err error) {
	if len(s) != TokenLen {
		return "", fmt.Errorf("%w: length %d", ErrBadToken, len(s))
	}
	for i := 0; i < len(s); i++ {
		if !isBase64URL(s[i]) {
			return "", fmt.Errorf("%w: character at %d", ErrBadToken, i)
		}
	}
	// 32 bytes take 42⅔ characters: the last one carries 2 bits of padding, which must be
	// zero for the string to be the unique encoding of a token.
	if b, err := base64.RawURLEncoding.Strict().DecodeString(s); err != nil || len(b) != TokenBytes {
		return "", fmt.Errorf("%w: not canonical base64url", ErrBadToken)
	}
	return HashToken(s), nil
}

// MatchToken reports, in time independent of where they differ, whether token hashes to
// hash. Use it when a token is checked against a hash already in hand rather than looked
// up by its hash.
func MatchToken(token, hash string) bool {
	return subtle.ConstantTimeCompare([]byte(HashToken(token)), []byte(hash)) == 1
}

func isBase64URL(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}
