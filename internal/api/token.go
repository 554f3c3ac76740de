package api

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
)

// TokenPrefix starts every API token, so that one found in a file or a log is recognised.
const TokenPrefix = "sk_"

// NewToken makes an API token (256 random bits, URL-safe, with TokenPrefix) and the hash to
// store (store.Token.Hash). The token itself is shown once and never kept.
func NewToken() (token, hash string, err error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", "", fmt.Errorf("make API token: %w", err)
	}
	token = TokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	return token, HashToken(token), nil
}

// HashToken returns the stored form of a token: its SHA-256, in hex. A token has enough
// randomness that a plain hash is safe; it is looked up by hash on every request.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}
