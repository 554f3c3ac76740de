package config

import (
	"reflect"
	"testing"
)

func TestKeyLines(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want lineIndex
	}{
		{
			name: "keys and tables",
			in: `# comment = 1
a = 1

[t]
b = "x" # c = 2
[ u . v ]
w = true
`,
			want: lineIndex{"a": 2, "t": 4, "t.b": 5, "u": 6, "u.v": 6, "u.v.w": 7},
		},
		{
			name: "arrays of tables",
			in: `[[s.l]]
x = 1
[[s.l]]
x = 2
[s.l.sub]
y = 3
[[s.l.n]]
[[s.l.n]]
z = 4
[[s.l]]
[s]
k = 5
`,
			want: lineIndex{
				"s": 1, "s.l": 1,
				"s.l[0]": 1, "s.l[0].x": 2,
				"s.l[1]": 3, "s.l[1].x": 4,
				"s.l[1].sub": 5, "s.l[1].sub.y": 6,
				"s.l[1].n": 7, "s.l[1].n[0]": 7, "s.l[1].n[1]": 8, "s.l[1].n[1].z": 9,
				"s.l[2]": 10,
				"s.k":    12,
			},
		},
		{
			name: "dotted and quoted keys",
			in: `a.b.c = 1
[t]
d . e = 2
"x y" = 3
'lit.eral' = 4
"esc\u0041\x42\"" = 5
site."google.com" = 6
`,
			want: lineIndex{
				"a": 1, "a.b": 1, "a.b.c": 1,
				"t": 2, "t.d": 3, "t.d.e": 3,
				`t."x y"`: 4, `t."lit.eral"`: 5, `t."escAB\""`: 6,
				"t.site": 7, `t.site."google.com"`: 7,
			},
		},
		{
			name: "multi-line strings hide what looks like keys",
			in: `a = """
b = 1
[c]
"""
d = '''
e = 2 '''
f = """\
  g = \"""
  """"
h = 'x = 1 # y' # z = 3
i = "j = \" [k]"
`,
			want: lineIndex{"a": 1, "d": 5, "f": 7, "h": 10, "i": 11},
		},
		{
			name: "multi-line arrays",
			in: `n = [
  "10.0.0.0/8", # first
  # a = 1
  "bad",

  [1, 2],
  """x
y""", "z",
]
m = 1
`,
			want: lineIndex{"n": 1, "n[0]": 2, "n[1]": 4, "n[2]": 6, "n[2][0]": 6, "n[2][1]": 6, "n[3]": 7, "n[4]": 8, "m": 10},
		},
		{
			name: "inline tables",
			in: `t = { a = 1, b = { c = "}" }, d.e = [1] }
l = [
  { x = 1 },
  { x = 2, y = [3] },
]
u = {
  v = 1,
}
w = 1979-05-27 07:32:00Z
`,
			want: lineIndex{
				"t": 1, "t.a": 1, "t.b": 1, "t.b.c": 1, "t.d": 1, "t.d.e": 1, "t.d.e[0]": 1,
				"l": 2, "l[0]": 3, "l[0].x": 3, "l[1]": 4, "l[1].x": 4, "l[1].y": 4, "l[1].y[0]": 4,
				"u": 6, "u.v": 7,
				"w": 9,
			},
		},
		{
			name: "CRLF and BOM",
			in:   "\xef\xbb\xbfa = 1\r\n[t]\r\nb = [\r\n  1,\r\n]\r\n",
			want: lineIndex{"a": 1, "t": 2, "t.b": 3, "t.b[0]": 4},
		},
		{
			name: "first occurrence wins",
			in: `[a]
b.c = 1
b.d = 2
`,
			want: lineIndex{"a": 1, "a.b": 2, "a.b.c": 2, "a.b.d": 3},
		},
		{
			name: "garbage does not stop the scan",
			in: `= 1
[
"open
x = [1, {
y = 2
`,
			want: lineIndex{"x": 4, "x[0]": 4, "x[1]": 4, "x[1].y": 5},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := keyLines([]byte(tt.in))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("keyLines:\n got %v\nwant %v", got, tt.want)
			}
		})
	}
}

func TestLineIndexFind(t *testing.T) {
	x := lineIndex{
		"smtp": 3, "smtp.listener": 7, "smtp.listener[1]": 9, "smtp.listener[1].role": 10,
		`a."b.c"`: 20, "a": 19,
	}
	tests := []struct {
		key  string
		want int
	}{
		{"smtp.listener[1].role", 10},
		{"smtp.listener[1].tls", 9},
		{"smtp.listener[2].tls", 7},
		{"smtp.upstream.servers[0]", 3},
		{`a."b.c"`, 20},
		{`a."b.c".d`, 20},
		{`a."x.y"`, 19},
		{"hostname", 0},
		{"", 0},
	}
	for _, tt := range tests {
		if got := x.find(tt.key); got != tt.want {
			t.Errorf("find(%q) = %d, want %d", tt.key, got, tt.want)
		}
	}
}

func TestUnescapeBasic(t *testing.T) {
	tests := []struct{ in, want string }{
		{`plain`, "plain"},
		{`a\tb\n\\\"`, "a\tb\n\\\""},
		{`\u00e9\U0001F600\x41\e`, "é😀A\x1b"},
		{`\u12`, `\u12`},
		{`\uD800`, `\uD800`},
		{`\q`, `\q`},
		{`end\`, `end\`},
	}
	for _, tt := range tests {
		if got := unescapeBasic(tt.in); got != tt.want {
			t.Errorf("unescapeBasic(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
