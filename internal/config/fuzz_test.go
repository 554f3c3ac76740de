package config

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzParse checks that Parse never panics, that every problem is an *Error
// placed inside the file, and that an accepted configuration validates again
// and survives Redacted and a second Parse unchanged.
func FuzzParse(f *testing.F) {
	for _, name := range []string{
		filepath.Join("..", "..", "sekisho.example.toml"),
		filepath.Join("testdata", "spec.toml"),
	} {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, tt := range parseErrorTests {
		f.Add([]byte(tt.in))
	}
	f.Add([]byte("hostname = \"mx.example.jp\"\n[[web.route]]\nhost = \"a.example.jp\"\nroot = \"/srv\"\n"))
	f.Add([]byte("[smtp]\nlocal_domains = [\"example.jp\"]\nupstream.servers = [\"[::1]:25\"]\nlistener = [{address = \":25\"}]\n"))
	f.Add([]byte("[store]\ndriver = \"postgres\"\ndsn = \"postgres://u:p@db/x\"\n[http_proxy]\nlisten = [\":3128\"]\ndeny_hosts = [\"*.example\"]\n"))

	f.Fuzz(func(t *testing.T, data []byte) {
		checkParse(t, data)
		// Most inputs lack a hostname and stop at Validate; with one, more
		// of them reach the round trip below.
		if !bytes.Contains(data, []byte("hostname")) {
			checkParse(t, append([]byte("hostname = \"mx.example.jp\"\n"), data...))
		}
	})
}

// checkParse asserts the invariants of FuzzParse on one input.
func checkParse(t *testing.T, data []byte) {
	lines := keyLines(data)
	maxLine := bytes.Count(data, []byte("\n")) + 1
	for key, n := range lines {
		if n < 1 || n > maxLine {
			t.Errorf("keyLines: %q at line %d of %d", key, n, maxLine)
		}
	}

	c, err := Parse("fuzz.toml", data)
	if err != nil {
		if c != nil {
			t.Error("Parse returned both a config and an error")
		}
		for _, e := range unjoin(err) {
			var ce *Error
			if !errors.As(e, &ce) {
				t.Fatalf("error %q is a %T, want *Error", e, e)
			}
			if ce.File != "fuzz.toml" || ce.Msg == "" || ce.Line < 0 || ce.Line > maxLine {
				t.Errorf("bad error %#v", ce)
			}
		}
		return
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("accepted config does not validate again: %v", err)
	}

	out := c.Redacted()
	back, err := Parse("fuzz.toml", []byte(out))
	if err != nil {
		t.Fatalf("Redacted output does not parse: %v\n%s", err, out)
	}
	if back.Store.DSN != c.Store.DSN && back.Store.DSN == redactDSN(c.Store.DSN) {
		back.Store.DSN = c.Store.DSN // the password was masked
	}
	if !reflect.DeepEqual(back, c) {
		t.Fatalf("config changed through Redacted:\n%s\nback: %+v\nwant: %+v", out, back, c)
	}
}
