package challenge

import (
	"bytes"
	"slices"
	"strings"
)

// MaxHeaderBytes bounds how much of a message HeaderFacts reads. Header fields past it are
// not seen; the limit is far above any header section an auto-responder or list server
// writes, which are what the fields looked for come from.
const MaxHeaderBytes = 256 << 10

// Header holds the header fields of a held message that mark it as automated (RFC 3834
// §2, RFC 2076, RFC 2919). Each list has one entry per occurrence of the field: the keyword
// its value starts with, lower case, comments and parameters dropped ("" when there is
// none).
type Header struct {
	AutoSubmitted []string // Auto-Submitted: "no", "auto-generated", "auto-replied", ...
	Precedence    []string // Precedence: "bulk", "list", "junk", ...
	ListID        bool     // a List-Id field is present
}

// autoSubmitted reports whether any Auto-Submitted field says other than "no"; RFC 3834
// §5 treats every other value, unknown ones included, as automatic.
func (h Header) autoSubmitted() bool {
	return slices.ContainsFunc(h.AutoSubmitted, func(v string) bool { return v != "no" })
}

// bulk reports whether a Precedence field says bulk, list or junk.
func (h Header) bulk() bool {
	return slices.ContainsFunc(h.Precedence, func(v string) bool {
		return v == "bulk" || v == "list" || v == "junk"
	})
}

// HeaderFacts reads the header section of msg (RFC 5322 §2.2: up to the first empty line, at
// most MaxHeaderBytes) and returns the fields Decide looks at. It reads nothing of the body
// and never fails: what cannot be read is not there. The header section also ends at the
// first line that is neither a field nor the continuation of one. Lines may end in CRLF or
// a bare LF.
func HeaderFacts(msg []byte) Header {
	var h Header
	msg = msg[:min(len(msg), MaxHeaderBytes)]
	var name, value []byte // the field being read, unfolded
	flush := func() {
		if name == nil {
			return
		}
		switch {
		case strings.EqualFold(string(name), "Auto-Submitted"):
			h.AutoSubmitted = append(h.AutoSubmitted, keyword(value))
		case strings.EqualFold(string(name), "Precedence"):
			h.Precedence = append(h.Precedence, keyword(value))
		case strings.EqualFold(string(name), "List-Id"):
			h.ListID = true
		}
		name, value = nil, nil
	}
	for len(msg) > 0 {
		line := msg
		if i := bytes.IndexByte(msg, '\n'); i >= 0 {
			line, msg = msg[:i], msg[i+1:]
		} else {
			msg = nil
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			if name != nil {
				value = append(value, line...)
			}
			continue
		}
		flush()
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			break
		}
		// RFC 5322 §4.5 (obsolete syntax) allows white space before the colon.
		n := bytes.TrimRight(line[:colon], " \t")
		if len(n) == 0 || !isFieldName(n) {
			break
		}
		name, value = n, slices.Clone(line[colon+1:])
	}
	flush()
	return h
}

// isFieldName reports whether b is a field name: printable US-ASCII but colon (RFC 5322
// §2.2).
func isFieldName(b []byte) bool {
	for _, c := range b {
		if c <= ' ' || c >= 0x7f || c == ':' {
			return false
		}
	}
	return true
}

// keyword returns the token a structured field value starts with, lower case, after
// skipping white space and comments: "Auto-Replied (vacation); x=y" gives "auto-replied".
func keyword(v []byte) string {
	i := 0
	depth := 0
	for i < len(v) {
		c := v[i]
		switch {
		case depth > 0 && c == '\\':
			i++ // quoted-pair inside a comment
		case c == '(':
			depth++
		case depth > 0 && c == ')':
			depth--
		case depth == 0 && c != ' ' && c != '\t' && c != '\r' && c != '\n':
			j := i
			for j < len(v) && isTokenChar(v[j]) {
				j++
			}
			return strings.ToLower(string(v[i:j]))
		}
		i++
	}
	return ""
}

// isTokenChar reports whether c may be part of a token (RFC 2045 §5.1): US-ASCII without
// controls, space and tspecials.
func isTokenChar(c byte) bool {
	if c <= ' ' || c >= 0x7f {
		return false
	}
	return !strings.ContainsRune(`()<>@,;:\"/[]?=`, rune(c))
}
