package mailaddr

import (
	"strings"
	"testing"
	"unicode"
)

func FuzzParsePath(f *testing.F) {
	for _, s := range []string{
		"<user@example.jp>", "<>", "user@example.jp", "<@relay:user@victim>",
		"<@a,@b:u@c>", "<victim!user@x>", "<user%victim@relay>", `<"a@b"@c>`,
		`<"user"@example.jp>`, `<"us\er"@x>`, "<u@[127.0.0.1]>", "<u@[IPv6:::1]>",
		"<ユーザー@例え.テスト>", "<u@ÄÖ.DE>", "<u@\u212Aelvin.test>", "<a..b@c>",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		a, err := ParsePath(raw)
		// The other entry points must not panic either.
		ra, rerr := ParseReversePath(raw)
		_, _ = Parse(raw)
		_, _ = Domain(raw)
		if err == nil && (rerr != nil || ra != a) {
			t.Errorf("ParseReversePath(%q) = %#v, %v; ParsePath gave %#v", raw, ra, rerr, a)
		}
		if rerr == nil {
			checkAccepted(t, raw, ra)
		}
		if err != nil {
			return
		}
		checkAccepted(t, raw, a)
	})
}

func checkAccepted(t *testing.T, raw string, a Addr) {
	t.Helper()
	if a.IsNull() {
		if a != (Addr{}) {
			t.Errorf("%q: null Addr with fields %#v", raw, a)
		}
		return
	}
	if a.Local == "" || a.Domain == "" {
		t.Fatalf("%q: accepted with an empty part: %#v", raw, a)
	}
	if strings.ContainsAny(a.Local, "%!@") {
		t.Errorf("%q: accepted local part %q has %%, ! or @", raw, a.Local)
	}
	s := a.String()
	if strings.ContainsAny(s, ":[]<>\"\\ ") {
		t.Errorf("%q: accepted address %q has a forbidden character", raw, s)
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.IsSpace(r) || r == unicode.ReplacementChar {
			t.Errorf("%q: accepted address %q has control or space %U", raw, s, r)
		}
	}
	if strings.ToLower(a.Domain) != a.Domain {
		t.Errorf("%q: domain %q not lower-cased", raw, a.Domain)
	}
	if len(a.Local) > MaxLocalLen || len(a.Domain) > MaxDomainLen || len(s)+2 > MaxPathLen {
		t.Errorf("%q: accepted %q over the length limits", raw, s)
	}
	b, err := ParsePath("<" + s + ">")
	if err != nil || b != a {
		t.Errorf("round trip of %q: ParsePath(<%s>) = %#v, %v; want %#v", raw, s, b, err, a)
	}
	if c, err := Parse(s); err != nil || c != a {
		t.Errorf("round trip of %q: Parse(%q) = %#v, %v; want %#v", raw, s, c, err, a)
	}
	if d, ok := Domain(a.Domain); !ok || d != a.Domain {
		t.Errorf("%q: Domain(%q) = %q, %v", raw, a.Domain, d, ok)
	}
}
