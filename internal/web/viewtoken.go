package web

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"time"
)

// viewTokens sign the confirm form of one page view, so that the POST proves a GET came
// first and when: a link scanner that submits the form at once is asked again.
type viewTokens struct{ key []byte }

const viewTokenLen = 8 + sha256.Size

// issue returns the view token of the page for tokenHash shown at now.
func (v viewTokens) issue(tokenHash string, now time.Time) string {
	b := make([]byte, 8, viewTokenLen)
	binary.BigEndian.PutUint64(b, uint64(now.UnixMilli()))
	b = append(b, v.mac(tokenHash, b[:8])...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// check returns when the view was issued, if the token is genuine for tokenHash.
func (v viewTokens) check(tokenHash, tok string) (time.Time, bool) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(b) != viewTokenLen {
		return time.Time{}, false
	}
	if !hmac.Equal(b[8:], v.mac(tokenHash, b[:8])) {
		return time.Time{}, false
	}
	return time.UnixMilli(int64(binary.BigEndian.Uint64(b[:8]))), true
}

// fresh checks the view token tok posted with the form of the page for tokenHash: genuine,
// and issued at least minWait and at most an hour before now. age is how long ago.
func (v viewTokens) fresh(tokenHash, tok string, now time.Time, minWait time.Duration) (age time.Duration, genuine, ok bool) {
	issued, genuine := v.check(tokenHash, tok)
	age = now.Sub(issued)
	return age, genuine, genuine && age >= minWait && age <= time.Hour
}

func (v viewTokens) mac(tokenHash string, stamp []byte) []byte {
	m := hmac.New(sha256.New, v.key)
	m.Write([]byte("sekisho confirm view\x00"))
	m.Write([]byte(tokenHash))
	m.Write(stamp)
	return m.Sum(nil)
}
