// Package automail writes the mails sekisho sends on its own (challenges, digests): RFC 5322
// with CRLF line endings, UTF-8 text in quoted-printable (the relay need not offer
// 8BITMIME), a Japanese and an English text, both always present.
package automail

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"strings"
	"time"

	"github.com/sekisho/sekisho/internal/mailaddr"
)

// Mail is one automatic mail.
type Mail struct {
	From, To mailaddr.Addr
	// Subject is "Japanese / English"; the Japanese part is sent as RFC 2047 encoded words.
	Subject string
	JA, EN  string // the two texts, with LF line endings
	JAFirst bool   // the order of the texts
	// AutoSubmitted is the Auto-Submitted value (RFC 3834 §5): "auto-replied" for an
	// answer to a message, "auto-generated" otherwise.
	AutoSubmitted string
	Hostname      string    // right-hand side of the Message-ID; "" means From's domain
	Now           time.Time // the Date of the mail
	MessageID     string    // without angle brackets; "" means a random one at Hostname
}

// Japanese tells whether domain is in .jp, whose users read Japanese first.
func Japanese(domain string) bool {
	return strings.HasSuffix(strings.TrimSuffix(domain, "."), ".jp")
}

const separator = "\n----------------------------------------------------------------------\n\n"

// Bytes returns the mail.
func (m Mail) Bytes() ([]byte, error) {
	if m.Now.IsZero() {
		return nil, errors.New("no date")
	}
	host := m.Hostname
	if host == "" {
		host = m.From.Domain
	}
	id := m.MessageID
	if id == "" {
		id = rand.Text() + "@" + host
	}
	if !validMessageID(id) {
		return nil, fmt.Errorf("bad message id %q", id)
	}
	var body string
	if m.JAFirst {
		body = "(English text follows the Japanese.)\n\n" + m.JA + separator + m.EN
	} else {
		body = "（日本語の文面は英語の後にあります。）\n\n" + m.EN + separator + m.JA
	}

	var b bytes.Buffer
	header := func(name, value string) { b.WriteString(name + ": " + value + "\r\n") }
	header("Date", m.Now.Format(time.RFC1123Z))
	header("From", m.From.String())
	header("To", m.To.String())
	header("Subject", encodeSubject(m.Subject))
	header("Message-ID", "<"+id+">")
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=UTF-8")
	header("Content-Transfer-Encoding", "quoted-printable")
	// RFC 3834 §5: marks the mail as automatic, so that well-behaved auto-responders (and
	// sekisho's own Decide) answer it with nothing.
	header("Auto-Submitted", m.AutoSubmitted)
	// Microsoft Exchange and Outlook: send no out-of-office or other automatic reply to it.
	header("X-Auto-Response-Suppress", "All")
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	qp.Write([]byte(body)) // writes to a bytes.Buffer do not fail
	qp.Close()
	return b.Bytes(), nil
}

// encodeSubject encodes the Japanese part of subject as RFC 2047 encoded words, each on a
// folded line of its own so that no line passes 78 characters (RFC 5322 §2.1.1); the English
// part stays readable ASCII on the last line. Folding adds no text; the white space between
// encoded words is not text either (RFC 2047 §6.2), while the space before " / " is.
func encodeSubject(subject string) string {
	ja, en, _ := strings.Cut(subject, " / ")
	var words []string
	for r := []rune(ja); len(r) > 0; {
		// 12 characters of 3 bytes make 48 of base64, a 60-character encoded word.
		n := min(len(r), 12)
		words = append(words, mime.BEncoding.Encode("UTF-8", string(r[:n])))
		r = r[n:]
	}
	return strings.Join(words, "\r\n ") + "\r\n / " + en
}

// validMessageID accepts id-left "@" id-right in dot-atom text (RFC 5322 §3.6.4).
func validMessageID(id string) bool {
	l, r, ok := strings.Cut(id, "@")
	if !ok || l == "" || r == "" {
		return false
	}
	for _, c := range []byte(l + r) {
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>[]:;@\,"`, c) >= 0 {
			return false
		}
	}
	return true
}
