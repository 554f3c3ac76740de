// Package mailaddr parses and normalises SMTP mailbox addresses from hostile
// input: envelope paths as sent on the wire, and bare addresses from the
// configuration, the command line and the lists.
//
// It is deliberately stricter than RFC 5321: the forms spammers use to turn
// a mail server into a relay are refused with their own error, so that the
// SMTP session can answer 553 5.1.3 and never forward them in any form:
//
//   - source routes, <@relay:user@victim> (RFC 5321 §4.1.2 A-d-l, Appendix C)
//   - the percent hack, <user%victim@relay> (RFC 1123 §5.2.16)
//   - UUCP bang paths, <victim!user@relay>
//   - address-literal domains, <user@[192.0.2.1]> (RFC 5321 §4.1.3), and
//     IP addresses posing as domains, <user@192.0.2.1> (all-numeric TLD)
//   - quoted local parts that hide any of the above, <"a@b"@relay>
//
// A quoted local part whose content is an ordinary dot-string ("user"@x) is
// normalised to the unquoted form. Domains are lower-cased; UTF-8 is accepted
// in both parts (RFC 6531, SMTPUTF8) but not converted to or from IDNA.
// Length limits are those of RFC 5321 §4.5.3.1.
package mailaddr

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Length limits of RFC 5321 §4.5.3.1, in octets.
const (
	MaxLocalLen  = 64  // local part
	MaxDomainLen = 255 // domain
	MaxPathLen   = 256 // path, including the angle brackets
)

// Errors returned by the parsers, wrapped with the offending input.
var (
	ErrSyntax      = errors.New("mailaddr: syntax error")
	ErrSourceRoute = errors.New("mailaddr: source route")
	ErrPercentHack = errors.New("mailaddr: percent hack in local part")
	ErrBangPath    = errors.New("mailaddr: bang path in local part")
	ErrIPLiteral   = errors.New("mailaddr: IP literal domain")
	ErrQuotedLocal = errors.New("mailaddr: quoted local part")
	ErrTooLong     = errors.New("mailaddr: too long")
)

// Addr is a mailbox address. The zero Addr is the null path <>.
type Addr struct {
	Local  string // local part, unquoted, case kept
	Domain string // domain, lower-cased
}

// String returns "local@domain", or "" for the null path.
func (a Addr) String() string {
	if a.IsNull() {
		return ""
	}
	return a.Local + "@" + a.Domain
}

// IsNull reports whether a is the null path <>.
func (a Addr) IsNull() bool {
	return a.Local == "" && a.Domain == ""
}

// Key returns the canonical lookup key: the whole address lower-cased, or ""
// for the null path.
func (a Addr) Key() string {
	if a.IsNull() {
		return ""
	}
	return strings.ToLower(a.Local) + "@" + a.Domain
}

// ParsePath parses a forward-path (RCPT TO) as sent on the wire, such as
// "<user@example.jp>". A path without angle brackets is accepted too. "<>"
// gives the null Addr and no error; the caller decides where it is allowed.
// Source routes are refused with ErrSourceRoute.
func ParsePath(raw string) (Addr, error) {
	return parsePath(raw, false)
}

// ParseReversePath parses a reverse-path (MAIL FROM) like ParsePath, except
// that a source route is dropped, as RFC 5321 §4.1.1.2 and Appendix C tell a
// server to do, rather than refused.
func ParseReversePath(raw string) (Addr, error) {
	return parsePath(raw, true)
}

// Parse parses a bare address "user@domain" (configuration, command line,
// list entries) by the same rules as ParsePath, without angle brackets.
func Parse(s string) (Addr, error) {
	if len(s) > MaxPathLen {
		return Addr{}, wrap(ErrTooLong, s)
	}
	if err := checkChars(s); err != nil {
		return Addr{}, err
	}
	if s == "" || strings.HasPrefix(s, "<") {
		return Addr{}, wrap(ErrSyntax, s)
	}
	if strings.HasPrefix(s, "@") {
		if strings.IndexByte(s, ':') >= 0 {
			return Addr{}, wrap(ErrSourceRoute, s)
		}
		return Addr{}, wrap(ErrSyntax, s)
	}
	return parseMailbox(s, s)
}

// Domain validates and normalises a bare domain name: it returns the domain
// lower-cased and true, or "" and false when s is not a valid domain. IP
// literals are not domains.
func Domain(s string) (string, bool) {
	if len(s) > MaxDomainLen*2 || checkChars(s) != nil {
		return "", false
	}
	d, err := normDomain(s, s)
	if err != nil {
		return "", false
	}
	return d, true
}

func parsePath(raw string, reverse bool) (Addr, error) {
	if len(raw) > MaxPathLen {
		return Addr{}, wrap(ErrTooLong, raw)
	}
	if err := checkChars(raw); err != nil {
		return Addr{}, err
	}
	s := raw
	if strings.HasPrefix(s, "<") {
		if len(s) < 2 || !strings.HasSuffix(s, ">") {
			return Addr{}, wrap(ErrSyntax, raw)
		}
		s = s[1 : len(s)-1]
		if s == "" {
			return Addr{}, nil
		}
	}
	if s == "" {
		return Addr{}, wrap(ErrSyntax, raw)
	}
	if strings.HasPrefix(s, "@") {
		// A-d-l ":" Mailbox (RFC 5321 §4.1.2).
		i := strings.IndexByte(s, ':')
		if i < 0 {
			return Addr{}, wrap(ErrSyntax, raw)
		}
		if !reverse {
			return Addr{}, wrap(ErrSourceRoute, raw)
		}
		if !validADL(s[:i]) {
			return Addr{}, wrap(ErrSyntax, raw)
		}
		s = s[i+1:]
	}
	return parseMailbox(s, raw)
}

// parseMailbox parses Mailbox = Local-part "@" ( Domain / address-literal ).
// raw is the whole input, for error messages.
func parseMailbox(s, raw string) (Addr, error) {
	var local, domain string
	if strings.HasPrefix(s, `"`) {
		content, n, ok := unquote(s)
		if !ok {
			return Addr{}, wrap(ErrSyntax, raw)
		}
		rest, found := strings.CutPrefix(s[n:], "@")
		if !found {
			return Addr{}, wrap(ErrSyntax, raw)
		}
		// Only a quoted string that says nothing more than the unquoted
		// dot-string would is accepted, and normalised to that dot-string.
		if strings.ContainsAny(content, "@%!") || !isDotString(content) {
			return Addr{}, wrap(ErrQuotedLocal, raw)
		}
		local, domain = content, rest
	} else {
		var found bool
		local, domain, found = strings.Cut(s, "@")
		switch {
		case strings.IndexByte(local, '%') >= 0:
			return Addr{}, wrap(ErrPercentHack, raw)
		case strings.IndexByte(local, '!') >= 0:
			return Addr{}, wrap(ErrBangPath, raw)
		case !found || !isDotString(local):
			return Addr{}, wrap(ErrSyntax, raw)
		}
	}
	if strings.HasPrefix(domain, "[") {
		return Addr{}, wrap(ErrIPLiteral, raw)
	}
	d, err := normDomain(domain, raw)
	if err != nil {
		return Addr{}, err
	}
	if len(local) > MaxLocalLen || len(local)+len(d)+3 > MaxPathLen {
		return Addr{}, wrap(ErrTooLong, raw)
	}
	return Addr{Local: local, Domain: d}, nil
}

// unquote parses the Quoted-string at the start of s (RFC 5321 §4.1.2, with
// UTF-8 allowed by RFC 6531) and returns its content without quotes and
// escapes, and the number of bytes it took.
func unquote(s string) (content string, n int, ok bool) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; c {
		case '"':
			return b.String(), i + 1, true
		case '\\':
			i++
			if i >= len(s) || s[i] < ' ' || s[i] > '~' {
				return "", 0, false
			}
			b.WriteByte(s[i])
		default:
			b.WriteByte(c)
		}
	}
	return "", 0, false
}

// isDotString reports whether s is a Dot-string: atoms of atext separated by
// single dots (RFC 5321 §4.1.2; RFC 6531 adds UTF-8 to atext).
func isDotString(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for _, r := range s {
		if r != '.' && !isAtext(r) {
			return false
		}
	}
	return true
}

func isAtext(r rune) bool {
	switch {
	case r >= utf8.RuneSelf:
		return isUTF8Graphic(r)
	case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
		return true
	}
	return strings.ContainsRune("!#$%&'*+-/=?^_`{|}~", r)
}

// isUTF8Graphic reports whether a non-ASCII rune may appear in an address:
// visible characters only, so no C1 controls, spaces, bidi or other format
// characters that could disguise an address in logs and pages.
func isUTF8Graphic(r rune) bool {
	return r != utf8.RuneError && unicode.IsGraphic(r) && !unicode.IsSpace(r)
}

// normDomain lower-cases and validates a domain: dot-separated labels of
// letters, digits and inner hyphens (non-ASCII letters, marks and digits
// allowed), at most 63 octets each and 255 in all.
func normDomain(s, raw string) (string, error) {
	if s == "" {
		return "", wrap(ErrSyntax, raw)
	}
	if strings.HasPrefix(s, "[") {
		return "", wrap(ErrIPLiteral, raw)
	}
	d := strings.ToLower(s)
	if strings.ToLower(d) != d {
		// Not stable under lower-casing: refuse rather than let two
		// spellings of one address compare unequal after a round trip.
		return "", wrap(ErrSyntax, raw)
	}
	if len(d) > MaxDomainLen {
		return "", wrap(ErrTooLong, raw)
	}
	labels := strings.Split(d, ".")
	for _, l := range labels {
		if !validLabel(l) {
			return "", wrap(ErrSyntax, raw)
		}
	}
	if isDigits(labels[len(labels)-1]) {
		// user@192.0.2.1: an IP address in disguise. No top-level
		// domain is all-numeric (RFC 3696 §2).
		return "", wrap(ErrIPLiteral, raw)
	}
	return d, nil
}

func validLabel(l string) bool {
	if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for _, r := range l {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9', r == '-':
		case r >= utf8.RuneSelf && r != utf8.RuneError &&
			(unicode.IsLetter(r) || unicode.IsMark(r) || unicode.IsDigit(r)):
		default:
			return false
		}
	}
	return true
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// validADL reports whether s is an A-d-l: "@" domain *( "," "@" domain ).
// Only reverse paths get here, and the route is dropped, but it must still
// be well formed.
func validADL(s string) bool {
	for _, at := range strings.Split(s, ",") {
		dom, ok := strings.CutPrefix(at, "@")
		if !ok {
			return false
		}
		if strings.HasPrefix(dom, "[") {
			if !validLiteral(dom) {
				return false
			}
			continue
		}
		if _, err := normDomain(dom, s); err != nil {
			return false
		}
	}
	return true
}

// validLiteral reports whether s looks like an address literal "[...]":
// printable ASCII, no spaces, brackets only at the ends.
func validLiteral(s string) bool {
	if len(s) < 3 || s[len(s)-1] != ']' {
		return false
	}
	for i := 1; i < len(s)-1; i++ {
		if c := s[i]; c <= ' ' || c > '~' || c == '[' || c == ']' || c == '\\' {
			return false
		}
	}
	return true
}

// checkChars refuses invalid UTF-8 and control characters anywhere, quoted
// or not.
func checkChars(s string) error {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size <= 1 {
				return wrap(ErrSyntax, s)
			}
		}
		if r < ' ' || r == 0x7f || (r >= 0x80 && r <= 0x9f) {
			return wrap(ErrSyntax, s)
		}
	}
	return nil
}

// wrap adds the input to a sentinel, cut short so that hostile input cannot
// flood the logs.
func wrap(err error, input string) error {
	const maxDetail = 300
	if len(input) > maxDetail {
		input = input[:maxDetail] + "..."
	}
	return fmt.Errorf("%w: %q", err, input)
}
