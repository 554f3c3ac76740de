package smtpproxy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/textproto"
	"strings"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/sekisho/sekisho/internal/store"
)

// errBareLineEnding is returned for a message with a CR or LF that is not part of a CRLF.
var errBareLineEnding = errors.New("bare CR or LF in message")

// errCaptureMismatch is not expected: the wiretap captured a message and go-smtp's reader
// still had content or failed.
var errCaptureMismatch = errors.New("wiretap captured the message, but go-smtp read content")

// readData returns the message of the DATA command. The wiretap normally captures it
// (wiretap.Options.CaptureData): go-smtp's reader r then yields nothing, and the message,
// un-stuffed, size-checked and checked for bare line endings by the tap, comes from
// TakeMessage; the session owns it. When the tap did not capture (content pipelined behind
// DATA, a BDAT earlier on the connection), the message is read from r as before; when the
// stream failed, r reports it.
func (s *session) readData(r io.Reader) ([]byte, error) {
	var first [1]byte
	n, err := io.ReadAtLeast(r, first[:], 1)
	if s.tap != nil {
		if msg, tooBig, bare, ok := s.tap.TakeMessage(); ok {
			switch {
			case tooBig:
				return nil, smtp.ErrDataTooLarge
			case n != 0 || err != io.EOF:
				return nil, errCaptureMismatch
			case bare:
				return nil, errBareLineEnding
			}
			return msg, nil
		}
	}
	switch {
	case err == io.EOF:
		return []byte{}, nil // an empty message
	case err != nil:
		return nil, err
	}
	return readMessage(io.MultiReader(bytes.NewReader(first[:n]), r), s.mailOpts.Size)
}

// readMessage reads the whole DATA stream (go-smtp's reader has already undone the
// dot-stuffing and enforces the size limit) and refuses any line ending other than CRLF:
// a bare CR or LF is how SMTP smuggling hides a second message from the server behind us.
func readMessage(r io.Reader, sizeHint int64) ([]byte, error) {
	var buf bytes.Buffer
	if sizeHint > 0 && sizeHint < 64<<20 {
		buf.Grow(int(sizeHint) + 512)
	}
	if _, err := buf.ReadFrom(r); err != nil {
		return nil, err
	}
	body := buf.Bytes()
	if err := checkLineEndings(body); err != nil {
		return nil, err
	}
	return body, nil
}

// checkLineEndings reports errBareLineEnding unless every CR is followed by LF and every LF
// preceded by CR: every LF must follow a CR, and then there must be as many CRs as LFs.
func checkLineEndings(b []byte) error {
	lf := 0
	for i := 0; ; {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			break
		}
		i += j
		if i == 0 || b[i-1] != '\r' {
			return errBareLineEnding
		}
		lf++
		i++
	}
	if bytes.Count(b, []byte{'\r'}) != lf {
		return errBareLineEnding
	}
	return nil
}

// header holds the few header fields the proxy reads.
type header struct {
	Subject    string
	MessageID  string
	InReplyTo  string
	References string
}

// maxMsgIDs bounds how many Message-IDs of one message are looked up.
const maxMsgIDs = 32

// msgIDs returns the "<...>" identifiers in a header value, lower-cased, at most maxMsgIDs.
func msgIDs(v string, out []string) []string {
	for len(out) < maxMsgIDs {
		i := strings.IndexByte(v, '<')
		if i < 0 {
			break
		}
		j := strings.IndexByte(v[i:], '>')
		if j < 0 {
			break
		}
		if id := v[i : i+j+1]; len(id) > 2 && len(id) <= 998 {
			out = append(out, strings.ToLower(id))
		}
		v = v[i+j+1:]
	}
	return out
}

// referenced returns the Message-IDs a message refers to: In-Reply-To and References, and,
// for a bounce (null sender), the Message-ID lines of the returned message's headers.
func referenced(h header, body []byte, bounce bool) []string {
	ids := msgIDs(h.InReplyTo, nil)
	ids = msgIDs(h.References, ids)
	if !bounce {
		return ids
	}
	if len(body) > maxHeaderBytes*4 {
		body = body[:maxHeaderBytes*4]
	}
	for _, line := range bytes.Split(body, []byte("\r\n")) {
		if len(ids) >= maxMsgIDs {
			break
		}
		if len(line) > 11 && bytes.EqualFold(line[:11], []byte("message-id:")) {
			ids = msgIDs(string(line[11:]), ids)
		}
	}
	return ids
}

// maxHeaderBytes bounds how much of a message is parsed as its header.
const maxHeaderBytes = 256 << 10

// parseHeader reads the header section; a malformed header yields what could be read.
func parseHeader(body []byte) header {
	if len(body) > maxHeaderBytes {
		body = body[:maxHeaderBytes]
	}
	tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(body)))
	h, _ := tp.ReadMIMEHeader()
	return header{
		Subject:    strings.TrimSpace(store.OneLine(h.Get("Subject"), 998)),
		MessageID:  strings.TrimSpace(h.Get("Message-Id")),
		InReplyTo:  strings.TrimSpace(h.Get("In-Reply-To")),
		References: strings.TrimSpace(h.Get("References")),
	}
}

// receivedInfo is what a Received header records (RFC 5321 §4.4).
type receivedInfo struct {
	Helo     string
	ClientIP string
	By       string
	With     string // ESMTP, ESMTPS, ESMTPA, ESMTPSA (RFC 3848)
	ID       string
	For      string // the recipient when there is exactly one
	At       time.Time
}

// received returns the Received header line, folded, with CRLF endings.
func received(ri receivedInfo) []byte {
	helo := sanitizeToken(ri.Helo)
	var b bytes.Buffer
	fmt.Fprintf(&b, "Received: from %s ([%s])\r\n\tby %s (sekisho) with %s id %s", helo, ri.ClientIP, ri.By, ri.With, ri.ID)
	if ri.For != "" {
		fmt.Fprintf(&b, "\r\n\tfor <%s>", ri.For)
	}
	fmt.Fprintf(&b, ";\r\n\t%s\r\n", ri.At.Format(time.RFC1123Z))
	return b.Bytes()
}

// sanitizeToken keeps a client-supplied word from breaking the header.
func sanitizeToken(s string) string {
	if s == "" {
		return "unknown"
	}
	if len(s) > 255 {
		s = s[:255]
	}
	return strings.Map(func(r rune) rune {
		if r <= ' ' || r == 0x7f || r == '(' || r == ')' || r == ';' {
			return '_'
		}
		return r
	}, s)
}
