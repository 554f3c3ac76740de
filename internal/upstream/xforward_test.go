package upstream

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func TestXForward(t *testing.T) {
	for _, tc := range []struct {
		name    string
		ext     []string // besides PIPELINING
		option  bool     // Options.XForward
		client  Client
		want    []string
		comment string
	}{
		{
			name:   "all attributes",
			ext:    []string{"XFORWARD NAME ADDR PROTO HELO"},
			option: true,
			client: Client{Addr: netip.MustParseAddr("192.0.2.7"), Helo: "client.example.org", Proto: "ESMTP", Name: "mail.example.org"},
			want:   []string{"XFORWARD NAME=mail.example.org ADDR=192.0.2.7 PROTO=ESMTP HELO=client.example.org"},
		},
		{
			name:   "unknown values",
			ext:    []string{"XFORWARD NAME ADDR PROTO HELO"},
			option: true,
			client: Client{},
			want:   []string{"XFORWARD NAME=[UNAVAILABLE] ADDR=[UNAVAILABLE] PROTO=[UNAVAILABLE] HELO=[UNAVAILABLE]"},
		},
		{
			name:   "ipv6 and xtext",
			ext:    []string{"XFORWARD NAME ADDR PROTO HELO"},
			option: true,
			client: Client{
				Addr:  netip.MustParseAddr("2001:db8::7"),
				Helo:  "evil\r\nRCPT TO:<x@example.com> a+b=c",
				Proto: "SMTP",
				Name:  "[UNAVAILABLE]",
			},
			want: []string{"XFORWARD NAME=[UNAVAILABLE] ADDR=2001:db8::7 PROTO=SMTP HELO=evil+0D+0ARCPT+20TO:<x@example.com>+20a+2Bb+3Dc"},
		},
		{
			name:   "ipv4-mapped address",
			ext:    []string{"XFORWARD ADDR"},
			option: true,
			client: Client{Addr: netip.MustParseAddr("::ffff:192.0.2.7")},
			want:   []string{"XFORWARD ADDR=192.0.2.7"},
		},
		{
			name:   "only offered attributes, any case",
			ext:    []string{"XFORWARD addr Helo IDENT SOURCE"},
			option: true,
			client: Client{Addr: netip.MustParseAddr("192.0.2.7"), Helo: "h", Proto: "ESMTP", Name: "n"},
			want:   []string{"XFORWARD ADDR=192.0.2.7 HELO=h"},
		},
		{
			name:   "not offered",
			option: true,
			client: Client{Addr: netip.MustParseAddr("192.0.2.7")},
		},
		{
			name:   "not wanted",
			ext:    []string{"XFORWARD NAME ADDR PROTO HELO"},
			client: Client{Addr: netip.MustParseAddr("192.0.2.7")},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs := newRawServer(t, append([]string{"PIPELINING"}, tc.ext...)...)
			p := newPool(t, Options{Servers: []string{rs.Addr}, XForward: tc.option})
			env := testEnvelope()
			env.Client = tc.client
			if _, err := p.Send(t.Context(), env, []byte(testBody)); err != nil {
				t.Fatalf("Send: %v", err)
			}
			if got := rs.commands("XFORWARD"); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("XFORWARD commands\n got %q\nwant %q", got, tc.want)
			}
			if len(rs.messages()) != 1 {
				t.Errorf("message not delivered")
			}
		})
	}
}

// XFORWARD describes one message's client, so it goes before every MAIL,
// also on a reused connection.
func TestXForwardPerTransaction(t *testing.T) {
	rs := newRawServer(t, "PIPELINING", "XFORWARD NAME ADDR PROTO HELO")
	p := newPool(t, Options{Servers: []string{rs.Addr}, XForward: true})
	for _, ip := range []string{"192.0.2.1", "192.0.2.2"} {
		env := testEnvelope()
		env.Client.Addr = netip.MustParseAddr(ip)
		if _, err := p.Send(t.Context(), env, []byte(testBody)); err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	if n := rs.connCount(); n != 1 {
		t.Fatalf("%d connections, want 1", n)
	}
	var verbs []string
	for _, l := range rs.received() {
		verb, _, _ := strings.Cut(l.Line, " ")
		verbs = append(verbs, verb)
	}
	want := []string{"EHLO", "XFORWARD", "MAIL", "RCPT", "DATA", "RSET", "XFORWARD", "MAIL", "RCPT", "DATA"}
	if !reflect.DeepEqual(verbs, want) {
		t.Errorf("commands %v, want %v", verbs, want)
	}
	xf := rs.commands("XFORWARD")
	if len(xf) != 2 || !strings.Contains(xf[0], "ADDR=192.0.2.1 ") || !strings.Contains(xf[1], "ADDR=192.0.2.2 ") {
		t.Errorf("XFORWARD commands %q", xf)
	}
}

func TestXForwardLongValues(t *testing.T) {
	rs := newRawServer(t, "XFORWARD NAME ADDR PROTO HELO")
	p := newPool(t, Options{Servers: []string{rs.Addr}, XForward: true})
	env := testEnvelope()
	env.Client = Client{
		Addr:  netip.MustParseAddr("2001:db8:1234:5678:9abc:def0:1234:5678"),
		Name:  strings.Repeat("n", 300),
		Helo:  strings.Repeat("h=", 300), // "=" becomes "+3D"
		Proto: strings.Repeat("P", 100),
	}
	if _, err := p.Send(t.Context(), env, []byte(testBody)); err != nil {
		t.Fatalf("Send: %v", err)
	}
	xf := rs.commands("XFORWARD")
	if len(xf) < 2 {
		t.Fatalf("XFORWARD commands %q, want the attributes split over several", xf)
	}
	attrs := map[string]string{}
	for _, line := range xf {
		if len(line)+2 > 512 {
			t.Errorf("XFORWARD line of %d bytes with CRLF: %.40q...", len(line)+2, line)
		}
		for _, a := range strings.Fields(line)[1:] {
			k, v, _ := strings.Cut(a, "=")
			attrs[k] = v
		}
	}
	if v := attrs["NAME"]; v != strings.Repeat("n", 255) {
		t.Errorf("NAME %d bytes, want cut to 255", len(v))
	}
	if v := attrs["HELO"]; len(v) != 253 || !strings.HasPrefix(xtext(env.Client.Helo, 1000), v) {
		t.Errorf("HELO %q: want the first 253 bytes of its xtext, no \"+XX\" cut", v)
	}
	if v := attrs["PROTO"]; v != strings.Repeat("P", 64) {
		t.Errorf("PROTO %q, want cut to 64", v)
	}
	if v := attrs["ADDR"]; v != "2001:db8:1234:5678:9abc:def0:1234:5678" {
		t.Errorf("ADDR %q", v)
	}
}

// A refused XFORWARD costs the log line, not the message.
func TestXForwardRefused(t *testing.T) {
	rs := newRawServer(t, "PIPELINING", "XFORWARD NAME ADDR PROTO HELO")
	rs.set("XFORWARD", "550 5.7.0 insufficient authorization")
	p := newPool(t, Options{Servers: []string{rs.Addr}, XForward: true})
	if _, err := p.Send(t.Context(), testEnvelope(), []byte(testBody)); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if len(rs.messages()) != 1 {
		t.Errorf("message not delivered")
	}
}

func TestXtext(t *testing.T) {
	for _, tc := range []struct {
		in    string
		limit int
		want  string
	}{
		{"mail.example.org", 255, "mail.example.org"},
		{"a+b=c d", 255, "a+2Bb+3Dc+20d"},
		{"\x00\x7f\xff~!", 255, "+00+7F+FF~!"},
		{"grüße", 255, "gr+C3+BC+C3+9Fe"},
		{"abcdef", 4, "abcd"},
		{"ab cd", 4, "ab"}, // never half a "+20"
		{"ab cd", 5, "ab+20"},
		{"", 10, ""},
	} {
		if got := xtext(tc.in, tc.limit); got != tc.want {
			t.Errorf("xtext(%q, %d) = %q, want %q", tc.in, tc.limit, got, tc.want)
		}
	}
}

// unxtext decodes xtext, for the round trip.
func unxtext(s string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '+':
			if i+2 >= len(s) {
				return "", false
			}
			var v byte
			for _, h := range []byte(s[i+1 : i+3]) {
				switch {
				case h >= '0' && h <= '9':
					v = v<<4 | (h - '0')
				case h >= 'A' && h <= 'F':
					v = v<<4 | (h - 'A' + 10)
				default:
					return "", false
				}
			}
			b.WriteByte(v)
			i += 2
		case c < '!' || c > '~' || c == '=':
			return "", false
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), true
}

func FuzzXtext(f *testing.F) {
	for _, s := range []string{"", "mail.example.org", "a+b=c d", "\r\n", "grüße", "[UNAVAILABLE]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		enc := xtext(s, 255)
		if len(enc) > 255 {
			t.Fatalf("xtext(%q) is %d bytes", s, len(enc))
		}
		dec, ok := unxtext(enc)
		if !ok {
			t.Fatalf("xtext(%q) = %q, not valid xtext", s, enc)
		}
		if !strings.HasPrefix(s, dec) || (len(enc) <= 255-3 && dec != s) {
			t.Fatalf("xtext(%q) = %q decodes to %q", s, enc, dec)
		}
	})
}

func TestXForwardCommandsFit(t *testing.T) {
	long := strings.Repeat("\x01", 300) // every byte triples
	cl := Client{Addr: netip.MustParseAddr("2001:db8::1"), Helo: long, Proto: long, Name: long}
	cmds := xforwardCommands("NAME ADDR PROTO HELO", cl)
	seen := map[string]bool{}
	for _, c := range cmds {
		if len(c)+2 > maxCommandLine {
			t.Errorf("command of %d bytes", len(c)+2)
		}
		if !strings.HasPrefix(c, "XFORWARD ") {
			t.Errorf("command %.20q...", c)
		}
		for _, a := range strings.Fields(c)[1:] {
			k, _, _ := strings.Cut(a, "=")
			seen[k] = true
		}
	}
	if len(seen) != 4 {
		t.Errorf("attributes sent: %v, want all four", seen)
	}
}
