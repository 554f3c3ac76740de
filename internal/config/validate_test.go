package config

import "testing"

func TestValueRules(t *testing.T) {
	tests := []struct {
		rule string
		f    func(string) bool
		ok   []string
		bad  []string
	}{
		{"isDomain", isDomain,
			[]string{"example.jp", "MX.Example.JP", "localhost", "xn--r8jz45g.jp", "a-b.c0", "192.0.2.1"},
			[]string{"", "a..b", ".a", "a.", "-a.jp", "a-.jp", "a_b.jp", "例え.jp", "a b"}},
		{"validBaseURL", validBaseURL,
			[]string{"https://mx.example.jp", "https://mx.example.jp:8443", "http://localhost:8080", "https://[::1]:8443", "https://192.0.2.1"},
			[]string{"", "mx.example.jp", "ftp://mx.example.jp", "https://", "https://mx.example.jp/", "https://mx.example.jp/x", "https://u:p@mx.example.jp", "https://mx.example.jp?x=1", "https://mx.example.jp#f", "https://mx.example.jp:0", "https://bad_host"}},
		{"validClock", validClock,
			[]string{"00:00", "08:00", "23:59"},
			[]string{"", "8:00", "24:00", "12:60", "+1:00", "12:-1", "12-00", "12:000"}},
		{"cutAddress", func(s string) bool { _, _, ok := cutAddress(s); return ok },
			[]string{"postmaster@example.jp", "a.b+c@Example.JP", "x@localhost"},
			[]string{"", "postmaster", "@example.jp", "a b@example.jp", "a@b@example.jp", "<a@example.jp>", "a@", "a@bad_domain"}},
	}
	for _, tt := range tests {
		for _, s := range tt.ok {
			if !tt.f(s) {
				t.Errorf("%s(%q) = false, want true", tt.rule, s)
			}
		}
		for _, s := range tt.bad {
			if tt.f(s) {
				t.Errorf("%s(%q) = true, want false", tt.rule, s)
			}
		}
	}
}

func TestHostPort(t *testing.T) {
	tests := []struct {
		addr   string
		listen bool
		want   string // "" for valid
	}{
		{"127.0.0.1:25", false, ""},
		{"[2001:db8::10]:25", false, ""},
		{"[fe80::1%eth0]:25", false, ""},
		{"mail.example.jp:25", false, ""},
		{"mail_1:25", false, ""},
		{":25", true, ""},
		{"127.0.0.1:0", true, ""},
		{"[::]:25", true, ""},
		{":25", false, `k: missing host in ":25"`},
		{"127.0.0.1:0", false, `k: invalid port in "127.0.0.1:0" (want 1-65535)`},
		{"127.0.0.1:+25", false, `k: invalid port in "127.0.0.1:+25" (want 1-65535)`},
		{"127.0.0.1:smtp", true, `k: invalid port in "127.0.0.1:smtp" (want 0-65535)`},
		{"127.0.0.1:65536", true, `k: invalid port in "127.0.0.1:65536" (want 0-65535)`},
		{"2001:db8::10:25", false, `k: invalid address "2001:db8::10:25" (want host:port; IPv6 in brackets, e.g. "[2001:db8::1]:25")`},
		{"mail.example.jp", false, `k: invalid address "mail.example.jp" (want host:port; IPv6 in brackets, e.g. "[2001:db8::1]:25")`},
		{"-bad-:25", false, `k: invalid host in "-bad-:25"`},
	}
	for _, tt := range tests {
		v := &validator{}
		v.hostPort("k", tt.addr, tt.listen)
		got := ""
		if len(v.errs) > 0 {
			got = v.errs[0].Error()
		}
		if got != tt.want {
			t.Errorf("hostPort(%q, listen=%v) = %q, want %q", tt.addr, tt.listen, got, tt.want)
		}
	}
}
