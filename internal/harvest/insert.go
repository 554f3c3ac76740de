package harvest

import (
	"bytes"
	"html"
)

// Link is the hidden link planted for addr: hidden and display:none (invisible, no box, so
// no effect on layout; the attribute still hides it where a Content-Security-Policy blocks
// inline styles), aria-hidden (out of the accessibility tree) and tabindex -1 (out of the
// tab order). Being an element, it is the body's last child: a stylesheet rule on that
// (body > :last-child, :nth-last-child) matches the link instead of the element it meant.
func Link(addr string) string {
	a := html.EscapeString(addr)
	return `<a href="mailto:` + a + `" hidden aria-hidden="true" tabindex="-1" style="display:none">` + a + `</a>`
}

// Insert returns body with link just before its closing </body> tag, or at the end when it
// has none. ok is false, and body is to be sent as it is, when there is no place where the
// link is sure to be markup (see place).
func Insert(body []byte, link string) (_ []byte, ok bool) {
	at, ok := place(body)
	if !ok {
		return body, false
	}
	return splice(body, at, link), true
}

// place returns where the link goes: before the last </body>, else at the end. ok is false
// when that place is inside a script, style or textarea element, or the document ends
// inside a tag, or is empty.
func place(body []byte) (at int, ok bool) {
	if len(body) == 0 {
		return 0, false
	}
	at = closingBody(body)
	if at < 0 {
		if lt := bytes.LastIndexByte(body, '<'); lt > bytes.LastIndexByte(body, '>') {
			return 0, false // ends inside a tag (or after a bare "<")
		}
		at = len(body)
	}
	if inRawText(body[:at]) {
		return 0, false
	}
	return at, true
}

func splice(body []byte, at int, link string) []byte {
	out := make([]byte, 0, len(body)+len(link))
	out = append(out, body[:at]...)
	out = append(out, link...)
	return append(out, body[at:]...)
}

// closingBody returns the offset of the last </body> tag (any case), or -1.
func closingBody(b []byte) int {
	for end := len(b); ; {
		i := bytes.LastIndex(b[:end], []byte("</"))
		if i < 0 {
			return -1
		}
		if tagAt(b, i+2, "body") {
			return i
		}
		end = i
	}
}

// tagAt reports whether b holds the tag name name (ASCII, any case) at i, followed by the
// end of the tag, a space or the end of b.
func tagAt(b []byte, i int, name string) bool {
	j := i + len(name)
	if j > len(b) || !bytes.EqualFold(b[i:j], []byte(name)) {
		return false
	}
	if j == len(b) {
		return true
	}
	switch b[j] {
	case '>', '/', ' ', '\t', '\n', '\r', '\f':
		return true
	}
	return false
}

// rawText are the elements whose content is not markup: a link inside one would show as
// text or break a script.
var rawText = [...]string{"script", "style", "textarea"}

// inRawText reports whether the end of b is inside an open script, style or textarea
// element: whether the last of their tags in b opens one. Nothing but its own end tag
// closes such an element, so an earlier tag cannot matter.
func inRawText(b []byte) bool {
	for end := len(b); ; {
		i := bytes.LastIndexByte(b[:end], '<')
		if i < 0 {
			return false
		}
		end = i
		name, closing := i+1, false
		if name < len(b) && b[name] == '/' {
			name, closing = name+1, true
		}
		if name >= len(b) || b[name]|0x20 != 's' && b[name]|0x20 != 't' { // most tags
			continue
		}
		for _, n := range rawText {
			if tagAt(b, name, n) {
				return !closing
			}
		}
	}
}
