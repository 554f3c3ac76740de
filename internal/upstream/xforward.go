package upstream

import (
	"slices"
	"strings"
)

// unavailable is XFORWARD's value for an attribute we do not know.
const unavailable = "[UNAVAILABLE]"

// xforwardCommands builds the XFORWARD commands (Postfix XFORWARD_README)
// that pass cl to a server whose EHLO offered the attributes in offered.
// Only offered attributes are sent, as Postfix does; unknown values are
// [UNAVAILABLE]. Values are xtext and at most 255 bytes, the most Postfix's
// smtpd accepts; attributes are spread over as many commands as it takes to
// keep each line within 512 bytes.
//
// The server forgets the attributes at the end of each transaction, so they
// are sent before every MAIL.
func xforwardCommands(offered string, cl Client) []string {
	var names []string
	for name := range strings.FieldsSeq(offered) {
		names = append(names, strings.ToUpper(name))
	}
	addr := ""
	if cl.Addr.IsValid() {
		// Bare, as Postfix's smtp client sends it: no brackets, no
		// "IPv6:" (which Postfix's smtpd would accept, other receivers
		// perhaps not).
		addr = cl.Addr.Unmap().WithZone("").String()
	}
	var attrs []string
	for _, a := range []struct {
		name, value string
		limit       int
	}{
		{"NAME", cl.Name, 255},
		{"ADDR", addr, 255},
		{"PROTO", cl.Proto, 64}, // Postfix refuses longer
		{"HELO", cl.Helo, 255},
	} {
		if !slices.Contains(names, a.name) {
			continue
		}
		v := a.value
		if v == "" {
			v = unavailable
		}
		attrs = append(attrs, a.name+"="+xtext(v, a.limit))
	}

	const cmd = "XFORWARD"
	var cmds []string
	line := cmd
	for _, a := range attrs {
		if line != cmd && len(line)+len(" ")+len(a)+len("\r\n") > maxCommandLine {
			cmds = append(cmds, line)
			line = cmd
		}
		line += " " + a
	}
	if line != cmd {
		cmds = append(cmds, line)
	}
	return cmds
}

// xtext encodes s as xtext (RFC 3461 §4): printable ASCII but "+" and "="
// as is, every other byte as "+" and two upper-case hex digits. The result is
// cut to at most limit bytes, never inside a "+XX".
func xtext(s string, limit int) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= '!' && c <= '~' && c != '+' && c != '=' {
			if b.Len()+1 > limit {
				break
			}
			b.WriteByte(c)
			continue
		}
		if b.Len()+3 > limit {
			break
		}
		b.WriteByte('+')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&0xf])
	}
	return b.String()
}
