// Package mailtext turns a raw message into text to show a person: the headers decoded, the
// first text part with its transfer encoding and charset undone. Nothing of a message is
// rendered as HTML or fetched; the pages that show it escape it.
package mailtext

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"html"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/textproto"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding/htmlindex"
)

// Limits of what a message page shows.
const (
	maxShownHeaders = 200
	maxShownValue   = 2000
	maxShownText    = 256 << 10
	maxPartDepth    = 8
)

// HeaderField is one header line of a message, decoded for display.
type HeaderField struct {
	Name, Value string
}

// Shown is what a message page shows: text only. The template escapes it and
// puts it in <pre>; nothing of the message is ever rendered as HTML or fetched.
type Shown struct {
	Headers   []HeaderField
	Text      string
	HTMLOnly  bool // the text is the HTML part with its tags stripped
	NoText    bool // no text part to show
	Truncated bool
}

// Show decodes a raw message for display: every header (RFC 2047 words decoded), and
// the first text/plain part (MIME multipart walked, quoted-printable and base64 undone, the
// charset converted to UTF-8); failing that, the first text/html part without its tags.
func Show(data []byte) Shown {
	var out Shown
	hdr, body := splitHeader(data)
	for _, f := range hdr {
		if len(out.Headers) == maxShownHeaders {
			out.Truncated = true
			break
		}
		out.Headers = append(out.Headers, HeaderField{Name: f.Name, Value: clip(DecodeWords(f.Value), maxShownValue)})
	}
	plain, htmlText, found := findText(mimeHeader(hdr), body, 0)
	switch {
	case found&foundPlain != 0:
		out.Text = plain
	case found&foundHTML != 0:
		out.Text, out.HTMLOnly = stripTags(htmlText), true
	default:
		out.NoText = true
	}
	if len(out.Text) > maxShownText {
		out.Text, out.Truncated = clip(out.Text, maxShownText), true
	}
	return out
}

// splitHeader parses the header block of a message, keeping the order of its fields.
func splitHeader(data []byte) ([]HeaderField, []byte) {
	var fields []HeaderField
	rest := data
	for len(rest) > 0 {
		line, next, _ := bytes.Cut(rest, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			return fields, next
		}
		if (line[0] == ' ' || line[0] == '\t') && len(fields) > 0 {
			fields[len(fields)-1].Value += " " + string(bytes.TrimSpace(line))
		} else if name, value, ok := bytes.Cut(line, []byte(":")); ok {
			fields = append(fields, HeaderField{Name: string(bytes.TrimSpace(name)), Value: string(bytes.TrimSpace(value))})
		}
		rest = next
	}
	return fields, nil
}

func mimeHeader(fields []HeaderField) textproto.MIMEHeader {
	h := textproto.MIMEHeader{}
	for _, f := range fields {
		h.Add(f.Name, f.Value)
	}
	return h
}

// DecodeWords decodes RFC 2047 encoded words in a header value.
func DecodeWords(v string) string {
	d := mime.WordDecoder{CharsetReader: charsetReader}
	if s, err := d.DecodeHeader(v); err == nil {
		v = s
	}
	return strings.ToValidUTF8(v, "\uFFFD")
}

// charsetReader converts text in charset (iso-2022-jp, shift_jis, euc-jp, iso-8859-*, ...)
// to UTF-8.
func charsetReader(charset string, r io.Reader) (io.Reader, error) {
	switch strings.ToLower(charset) {
	case "", "utf-8", "utf8", "us-ascii", "ascii":
		return r, nil
	}
	enc, err := htmlindex.Get(charset)
	if err != nil {
		return nil, fmt.Errorf("charset %q: %w", charset, err)
	}
	return enc.NewDecoder().Reader(r), nil
}

const (
	foundPlain = 1 << iota
	foundHTML
)

// findText looks for the first text/plain and text/html parts of an entity.
func findText(h textproto.MIMEHeader, body []byte, depth int) (plain, htmlText string, found int) {
	ct := h.Get("Content-Type")
	if ct == "" {
		ct = "text/plain"
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		mt, params = "text/plain", nil
	}
	if strings.EqualFold(h.Get("Content-Disposition"), "attachment") || strings.HasPrefix(strings.ToLower(h.Get("Content-Disposition")), "attachment;") {
		return "", "", 0
	}
	switch {
	case strings.HasPrefix(mt, "multipart/"):
		if depth >= maxPartDepth || params["boundary"] == "" {
			return "", "", 0
		}
		mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
		for {
			part, err := mr.NextRawPart()
			if err != nil {
				break
			}
			b, err := io.ReadAll(io.LimitReader(part, 4*maxShownText))
			if err != nil {
				break
			}
			p, ht, f := findText(part.Header, b, depth+1)
			if f&foundPlain != 0 && found&foundPlain == 0 {
				plain, found = p, found|foundPlain
			}
			if f&foundHTML != 0 && found&foundHTML == 0 {
				htmlText, found = ht, found|foundHTML
			}
			if found&foundPlain != 0 {
				break
			}
		}
		return plain, htmlText, found
	case mt == "text/plain":
		return decodeBody(h, params["charset"], body), "", foundPlain
	case mt == "text/html":
		return "", decodeBody(h, params["charset"], body), foundHTML
	}
	return "", "", 0
}

// decodeBody undoes the transfer encoding and converts the charset to UTF-8.
func decodeBody(h textproto.MIMEHeader, charset string, body []byte) string {
	var r io.Reader = bytes.NewReader(body)
	switch strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding"))) {
	case "quoted-printable":
		r = quotedprintable.NewReader(r)
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, &base64Clean{r: bufio.NewReader(r)})
	}
	if cr, err := charsetReader(charset, r); err == nil {
		r = cr
	}
	b, _ := io.ReadAll(io.LimitReader(r, maxShownText+1)) // what decoded before an error is shown
	s := strings.ToValidUTF8(string(b), "\uFFFD")
	return strings.ReplaceAll(s, "\r\n", "\n")
}

// base64Clean drops the line breaks and spaces of a base64 body.
type base64Clean struct{ r *bufio.Reader }

func (c *base64Clean) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		b, err := c.r.ReadByte()
		if err != nil {
			return n, err
		}
		if b == '\r' || b == '\n' || b == ' ' || b == '\t' {
			continue
		}
		p[n] = b
		n++
	}
	return n, nil
}

// stripTags turns HTML into its text: tags, comments, scripts and styles dropped,
// entities decoded. The result is shown as text, so it needs no further care.
func stripTags(s string) string {
	var b strings.Builder
	lower := asciiLower(s) // same byte offsets as s
	for i := 0; i < len(s); {
		switch {
		case strings.HasPrefix(s[i:], "<!--"):
			end := strings.Index(s[i+4:], "-->")
			if end < 0 {
				i = len(s)
			} else {
				i += 4 + end + 3
			}
		case s[i] == '<':
			end := strings.IndexByte(s[i:], '>')
			if end < 0 {
				i = len(s)
				continue
			}
			tag := lower[i+1 : i+end]
			name, _, _ := strings.Cut(strings.TrimSpace(tag), " ")
			i += end + 1
			switch name {
			case "script", "style", "head", "title":
				if close := strings.Index(lower[i:], "</"+name); close >= 0 {
					i += close
				}
			case "br", "br/", "p", "/p", "div", "/div", "tr", "/tr", "li", "h1", "h2", "h3", "/h1", "/h2", "/h3":
				b.WriteByte('\n')
			}
		default:
			end := strings.IndexByte(s[i:], '<')
			if end < 0 {
				end = len(s) - i
			}
			b.WriteString(s[i : i+end])
			i += end
		}
	}
	text := html.UnescapeString(b.String())
	var lines []string
	blank := 0
	for l := range strings.SplitSeq(text, "\n") {
		l = strings.TrimSpace(l)
		if l == "" {
			if blank++; blank > 1 {
				continue
			}
		} else {
			blank = 0
		}
		lines = append(lines, l)
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}

// asciiLower lower-cases the ASCII letters of s, keeping every byte offset.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// clip cuts s to at most n bytes on a character boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
