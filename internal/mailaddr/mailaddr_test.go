package mailaddr

import (
	"errors"
	"strings"
	"testing"
)

func TestParsePath(t *testing.T) {
	long := func(n int) string { return strings.Repeat("a", n) }
	// A domain of 255 octets: 4 labels of 63 plus 3 dots.
	dom255 := strings.Join([]string{long(63), long(63), long(63), long(63)}, ".")
	tests := []struct {
		name string
		raw  string
		want Addr
		err  error
	}{
		// Accepted.
		{"plain", "<user@example.jp>", Addr{"user", "example.jp"}, nil},
		{"bare", "user@example.jp", Addr{"user", "example.jp"}, nil},
		{"null", "<>", Addr{}, nil},
		{"domain lower-cased, local kept", "<User.Name@EXAMPLE.JP>", Addr{"User.Name", "example.jp"}, nil},
		{"atext specials", "<a+b=c/d{e}~f'g*h#i$j&k?l^m_n`o|p-q@x.test>", Addr{"a+b=c/d{e}~f'g*h#i$j&k?l^m_n`o|p-q", "x.test"}, nil},
		{"single-label domain", "<postmaster@localhost>", Addr{"postmaster", "localhost"}, nil},
		{"hyphen and digits", "<u@a-1.b2.test>", Addr{"u", "a-1.b2.test"}, nil},
		{"utf8 local and domain", "<ユーザー@例え.テスト>", Addr{"ユーザー", "例え.テスト"}, nil},
		{"utf8 domain lower-cased", "<u@ÄÖ.DE>", Addr{"u", "äö.de"}, nil},
		{"quoted plain normalised", `<"user"@example.jp>`, Addr{"user", "example.jp"}, nil},
		{"quoted with escape normalised", `<"us\er"@example.jp>`, Addr{"user", "example.jp"}, nil},
		{"local 64", "<" + long(64) + "@x.test>", Addr{long(64), "x.test"}, nil},
		{"path 256", "<" + long(64) + "@" + long(63) + "." + long(63) + "." + long(61) + ">", Addr{long(64), long(63) + "." + long(63) + "." + long(61)}, nil},

		// Source routes (SPEC §1, §4).
		{"spec source route", "<@relay:user@victim>", Addr{}, ErrSourceRoute},
		{"source route list", "<@a,@b:u@c>", Addr{}, ErrSourceRoute},
		{"source route bare", "@a:u@c", Addr{}, ErrSourceRoute},
		{"source route malformed", "<@a:>", Addr{}, ErrSourceRoute},
		{"at without route", "<@a>", Addr{}, ErrSyntax},

		// Percent hack and bang paths.
		{"spec percent hack", "<user%victim@relay>", Addr{}, ErrPercentHack},
		{"percent without domain", "<user%victim>", Addr{}, ErrPercentHack},
		{"spec bang path", "<victim!user@x>", Addr{}, ErrBangPath},
		{"bang path without domain", "<victim!user>", Addr{}, ErrBangPath},
		{"percent in domain", "<user@vic%tim>", Addr{}, ErrSyntax},

		// IP literals.
		{"spec ipv4 literal", "<u@[127.0.0.1]>", Addr{}, ErrIPLiteral},
		{"ipv6 literal", "<u@[IPv6:::1]>", Addr{}, ErrIPLiteral},
		{"garbage literal", "<u@[x>", Addr{}, ErrIPLiteral},
		{"bare dotted quad", "<u@192.0.2.1>", Addr{}, ErrIPLiteral},
		{"numeric tld", "<u@example.123>", Addr{}, ErrIPLiteral},

		// Quoted local parts.
		{"spec quoted at", `<"a@b"@c>`, Addr{}, ErrQuotedLocal},
		{"quoted percent", `<"a%b"@c>`, Addr{}, ErrQuotedLocal},
		{"quoted bang", `<"a!b"@c>`, Addr{}, ErrQuotedLocal},
		{"quoted space", `<"a b"@c>`, Addr{}, ErrQuotedLocal},
		{"quoted colon", `<"@a:b"@c>`, Addr{}, ErrQuotedLocal},
		{"quoted empty", `<""@c>`, Addr{}, ErrQuotedLocal},
		{"quoted double dot", `<"a..b"@c>`, Addr{}, ErrQuotedLocal},
		{"quoted escaped quote", `<"a\"b"@c>`, Addr{}, ErrQuotedLocal},
		{"quoted angle", `<"a>b"@c>`, Addr{}, ErrQuotedLocal},
		{"quoted unterminated", `<"ab@c>`, Addr{}, ErrSyntax},
		{"quoted no domain", `<"ab">`, Addr{}, ErrSyntax},

		// Syntax.
		{"empty", "", Addr{}, ErrSyntax},
		{"empty local", "<@x>", Addr{}, ErrSyntax},
		{"empty local bare", "@x", Addr{}, ErrSyntax},
		{"empty domain", "<u@>", Addr{}, ErrSyntax},
		{"no at", "<user>", Addr{}, ErrSyntax},
		{"two ats", "<a@b@c>", Addr{}, ErrSyntax},
		{"unbalanced open", "<u@x", Addr{}, ErrSyntax},
		{"unbalanced close", "u@x>", Addr{}, ErrSyntax},
		{"lone bracket", "<", Addr{}, ErrSyntax},
		{"double brackets", "<<u@x>>", Addr{}, ErrSyntax},
		{"trailing parameter", "<u@x> NOTIFY=NEVER", Addr{}, ErrSyntax},
		{"space in local", "<a b@x>", Addr{}, ErrSyntax},
		{"space in domain", "<u@a b>", Addr{}, ErrSyntax},
		{"tab", "<u@x\t>", Addr{}, ErrSyntax},
		{"nul", "<u\x00@x>", Addr{}, ErrSyntax},
		{"cr lf", "<u@x\r\n>", Addr{}, ErrSyntax},
		{"del", "<u\x7f@x>", Addr{}, ErrSyntax},
		{"c1 control", "<u\u0085@x>", Addr{}, ErrSyntax},
		{"invalid utf8", "<u\xff@x>", Addr{}, ErrSyntax},
		{"bidi override", "<u\u202e@x>", Addr{}, ErrSyntax},
		{"nbsp", "<u\u00a0@x>", Addr{}, ErrSyntax},
		{"leading dot local", "<.u@x>", Addr{}, ErrSyntax},
		{"trailing dot local", "<u.@x>", Addr{}, ErrSyntax},
		{"double dot local", "<a..b@x>", Addr{}, ErrSyntax},
		{"leading dot domain", "<u@.x>", Addr{}, ErrSyntax},
		{"trailing dot domain", "<u@x.>", Addr{}, ErrSyntax},
		{"double dot domain", "<u@a..b>", Addr{}, ErrSyntax},
		{"leading hyphen label", "<u@-a.b>", Addr{}, ErrSyntax},
		{"trailing hyphen label", "<u@a-.b>", Addr{}, ErrSyntax},
		{"underscore domain", "<u@a_b.c>", Addr{}, ErrSyntax},
		{"colon in domain", "<u@a:b>", Addr{}, ErrSyntax},
		{"colon in local", "<a:b@c>", Addr{}, ErrSyntax},
		{"comma in local", "<a,b@c>", Addr{}, ErrSyntax},
		{"label 64", "<u@" + long(64) + ".test>", Addr{}, ErrSyntax},
		{"symbol in domain", "<u@a☃.test>", Addr{}, ErrSyntax},

		// Lengths.
		{"local 65", "<" + long(65) + "@x.test>", Addr{}, ErrTooLong},
		{"domain 256", "<u@" + dom255 + "a>", Addr{}, ErrTooLong},
		{"path 257", "<" + long(64) + "@" + long(63) + "." + long(63) + "." + long(62) + ">", Addr{}, ErrTooLong},
		{"huge", "<" + long(100000) + "@x>", Addr{}, ErrTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePath(tt.raw)
			if !errors.Is(err, tt.err) || (err == nil) != (tt.err == nil) {
				t.Fatalf("ParsePath(%q) error = %v, want %v", tt.raw, err, tt.err)
			}
			if got != tt.want {
				t.Errorf("ParsePath(%q) = %#v, want %#v", tt.raw, got, tt.want)
			}
		})
	}
}

func TestParseReversePath(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want Addr
		err  error
	}{
		{"null", "<>", Addr{}, nil},
		{"plain", "<a@b.test>", Addr{"a", "b.test"}, nil},
		{"route dropped", "<@relay:user@victim>", Addr{"user", "victim"}, nil},
		{"route list dropped", "<@a,@b.test:u@c>", Addr{"u", "c"}, nil},
		{"route with literal dropped", "<@[192.0.2.1]:u@c>", Addr{"u", "c"}, nil},
		{"route without at", "<@a,b:u@c>", Addr{}, ErrSyntax},
		{"route bad domain", "<@a..b:u@c>", Addr{}, ErrSyntax},
		{"route empty", "<@:u@c>", Addr{}, ErrSyntax},
		{"route to bad mailbox", "<@a:u%v@c>", Addr{}, ErrPercentHack},
		{"route to null", "<@a:>", Addr{}, ErrSyntax},
		{"percent", "<a%b@c>", Addr{}, ErrPercentHack},
		{"literal", "<a@[10.0.0.1]>", Addr{}, ErrIPLiteral},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseReversePath(tt.raw)
			if !errors.Is(err, tt.err) || (err == nil) != (tt.err == nil) {
				t.Fatalf("ParseReversePath(%q) error = %v, want %v", tt.raw, err, tt.err)
			}
			if got != tt.want {
				t.Errorf("ParseReversePath(%q) = %#v, want %#v", tt.raw, got, tt.want)
			}
		})
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		s    string
		want Addr
		err  error
	}{
		{"plain", "Taro@Example.JP", Addr{"Taro", "example.jp"}, nil},
		{"quoted normalised", `"taro"@example.jp`, Addr{"taro", "example.jp"}, nil},
		{"empty", "", Addr{}, ErrSyntax},
		{"brackets", "<a@b>", Addr{}, ErrSyntax},
		{"null", "<>", Addr{}, ErrSyntax},
		{"route", "@a:b@c", Addr{}, ErrSourceRoute},
		{"percent", "a%b@c", Addr{}, ErrPercentHack},
		{"bang", "a!b@c", Addr{}, ErrBangPath},
		{"literal", "a@[1.2.3.4]", Addr{}, ErrIPLiteral},
		{"quoted at", `"a@b"@c`, Addr{}, ErrQuotedLocal},
		{"domain only", "@example.jp", Addr{}, ErrSyntax},
		{"too long", strings.Repeat("a", 300), Addr{}, ErrTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.s)
			if !errors.Is(err, tt.err) || (err == nil) != (tt.err == nil) {
				t.Fatalf("Parse(%q) error = %v, want %v", tt.s, err, tt.err)
			}
			if got != tt.want {
				t.Errorf("Parse(%q) = %#v, want %#v", tt.s, got, tt.want)
			}
		})
	}
}

func TestDomain(t *testing.T) {
	tests := []struct {
		s    string
		want string
		ok   bool
	}{
		{"Example.JP", "example.jp", true},
		{"mx-1.example.jp", "mx-1.example.jp", true},
		{"例え.テスト", "例え.テスト", true},
		{"localhost", "localhost", true},
		{"", "", false},
		{"[127.0.0.1]", "", false},
		{"192.0.2.1", "", false},
		{"example.jp.", "", false},
		{".example.jp", "", false},
		{"a..b", "", false},
		{"-a.b", "", false},
		{"a b", "", false},
		{"a@b", "", false},
		{"a\x00b", "", false},
		{strings.Repeat("a.", 128) + "a", "", false},
	}
	for _, tt := range tests {
		got, ok := Domain(tt.s)
		if got != tt.want || ok != tt.ok {
			t.Errorf("Domain(%q) = %q, %v; want %q, %v", tt.s, got, ok, tt.want, tt.ok)
		}
	}
}

func TestAddrMethods(t *testing.T) {
	a := Addr{Local: "Taro.Yamada", Domain: "example.jp"}
	if got, want := a.String(), "Taro.Yamada@example.jp"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got, want := a.Key(), "taro.yamada@example.jp"; got != want {
		t.Errorf("Key() = %q, want %q", got, want)
	}
	if a.IsNull() {
		t.Error("IsNull() = true for a mailbox")
	}
	var null Addr
	if !null.IsNull() || null.String() != "" || null.Key() != "" {
		t.Errorf("null Addr: IsNull %v, String %q, Key %q", null.IsNull(), null.String(), null.Key())
	}
}

func TestErrorDetail(t *testing.T) {
	_, err := ParsePath("<@relay:user@victim>")
	if got, want := err.Error(), `mailaddr: source route: "<@relay:user@victim>"`; got != want {
		t.Errorf("error = %q, want %q", got, want)
	}
	_, err = Parse(strings.Repeat("a", 100000))
	if len(err.Error()) > 400 {
		t.Errorf("error for huge input is %d bytes long", len(err.Error()))
	}
}
