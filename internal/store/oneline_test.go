package store

import (
	"testing"
	"unicode/utf8"
)

func TestOneLine(t *testing.T) {
	for _, tc := range []struct {
		in   string
		max  int
		want string
	}{
		{"Mozilla/5.0\r\nX: y", 200, "Mozilla/5.0  X: y"},
		{"ブラウザ", 7, "ブラ"}, // not cut inside a character
		{"a\xffb", 10, "a\uFFFDb"},
		{"abc", 2, "ab"},
	} {
		got := OneLine(tc.in, tc.max)
		if got != tc.want || !utf8.ValidString(got) || len(got) > tc.max {
			t.Errorf("OneLine(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}
