package senderauth

import "testing"

func TestNormalizeDomain(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Example.JP", "example.jp"},
		{"example.jp.", "example.jp"},
		{"日本語.jp", "xn--wgv71a119e.jp"},
		{"xn--wgv71a119e.jp", "xn--wgv71a119e.jp"},
		{"_dmarc.example.jp", "_dmarc.example.jp"},
		{"", ""},
		{".", ""},
		{"a..jp", ""},
		{"[192.0.2.1]", ""},
		{"exa mple.jp", ""},
		{"a+b.jp", ""},
		{"\xff.jp", ""},
	}
	for _, tt := range tests {
		if got := normalizeDomain(tt.in); got != tt.want {
			t.Errorf("normalizeDomain(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestAligned(t *testing.T) {
	tests := []struct {
		sender, sig string
		want        bool
	}{
		{"example.jp", "example.jp", true},
		{"mail.example.jp", "example.jp", true},
		{"a.b.example.jp", "b.example.jp", true},
		{"mail.example.co.jp", "example.co.jp", true}, // the PSL knows co.jp
		{"example.co.jp", "co.jp", false},             // a public suffix vouches for nobody
		{"mail.example.co.jp", "co.jp", false},
		{"mail.example.co.jp", "jp", false},
		{"example.jp", "jp", false},
		{"example.jp", "mail.example.jp", false}, // child: not for the parent (SPEC §4)
		{"news.example.jp", "shop.example.jp", false},
		{"example.jp", "other.test", false},
		{"myexample.jp", "example.jp", false}, // suffix, not a label boundary
		{"foo.github.io", "github.io", false}, // private section of the PSL
		{"a.foo.github.io", "foo.github.io", true},
		{"other.test", "other.test", true}, // no PSL rule: "*" makes test the suffix
		{"a.other.test", "other.test", true},
		{"", "example.jp", false},
		{"example.jp", "", false},
	}
	for _, tt := range tests {
		if got := aligned(tt.sender, tt.sig); got != tt.want {
			t.Errorf("aligned(%q, %q) = %v, want %v", tt.sender, tt.sig, got, tt.want)
		}
	}
}
