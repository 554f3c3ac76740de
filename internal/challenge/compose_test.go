package challenge_test

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/challenge"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

const testURL = "https://mx.example.jp/c/q4Vh2T0yZ8mXw3kNf6Lb1Rj9Ps5Ue7Ga0Cd2Hi4Ok6M"

var jst = time.FixedZone("JST", 9*60*60)

// base is the challenge of the golden files; each case changes a little.
func base() challenge.Challenge {
	return challenge.Challenge{
		From:       "postmaster@example.jp",
		To:         "taro@example.co.jp",
		Recipients: []string{"hanako@example.jp"},
		URL:        testURL,
		Hostname:   "mx.example.jp",
		Now:        time.Date(2026, 5, 1, 9, 30, 0, 0, jst),
		MessageID:  "4AKHQDFJ3LBJ7XRVD2MDWPWZ4Q@mx.example.jp",
	}
}

var goldenCases = []struct {
	name    string
	c       func() challenge.Challenge
	jaFirst bool
}{
	{"ja-first", base, true},
	{"en-first", func() challenge.Challenge {
		c := base()
		c.To = "john@example.com"
		c.Recipients = []string{"hanako@example.jp", "sales@example.jp"}
		return c
	}, false},
	{"many-recipients", func() challenge.Challenge {
		c := base()
		c.Language = challenge.LanguageEN
		c.Recipients = nil
		for i := range 25 {
			c.Recipients = append(c.Recipients, fmt.Sprintf("user%02d@example.jp", i))
		}
		return c
	}, false},
}

func TestComposeGolden(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.c()
			got, err := challenge.Compose(c)
			if err != nil {
				t.Fatalf("Compose: %v", err)
			}
			golden := filepath.Join("testdata", tc.name+".golden")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				os.WriteFile(filepath.Join("testdata", tc.name+".got"), got, 0o644)
				t.Errorf("Compose differs from %s; output in testdata/%s.got (go test -update accepts it)", golden, tc.name)
			}
			checkMail(t, c, got, tc.jaFirst)
		})
	}
}

// checkMail checks what every challenge mail must be, whatever its text.
func checkMail(t *testing.T, c challenge.Challenge, raw []byte, jaFirst bool) {
	t.Helper()
	for i, line := range bytes.SplitAfter(raw, []byte("\r\n")) {
		if len(line) == 0 {
			continue
		}
		if !bytes.HasSuffix(line, []byte("\r\n")) {
			t.Errorf("line %d does not end in CRLF: %q", i+1, line)
		}
		if bytes.ContainsAny(bytes.TrimSuffix(line, []byte("\r\n")), "\r\n") {
			t.Errorf("line %d has a bare CR or LF: %q", i+1, line)
		}
		if n := len(line) - 2; n > 78 {
			t.Errorf("line %d has %d characters: %q", i+1, n, line)
		}
		for _, b := range line {
			if b >= 0x80 {
				t.Errorf("line %d is not 7-bit: %q", i+1, line)
				break
			}
		}
	}

	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("net/mail: %v", err)
	}
	h := m.Header
	subject, err := new(mime.WordDecoder).DecodeHeader(h.Get("Subject"))
	if err != nil || subject != challenge.Subject {
		t.Errorf("Subject decodes to %q, %v; want %q", subject, err, challenge.Subject)
	}
	for name, want := range map[string]string{
		"From":                      c.From,
		"To":                        c.To,
		"Message-Id":                "<" + c.MessageID + ">",
		"Mime-Version":              "1.0",
		"Content-Type":              "text/plain; charset=UTF-8",
		"Content-Transfer-Encoding": "quoted-printable",
		"Auto-Submitted":            "auto-replied",
		"X-Auto-Response-Suppress":  "All",
	} {
		if got := h[name]; len(got) != 1 || got[0] != want {
			t.Errorf("%s: %q, want [%q]", name, got, want)
		}
	}
	if d, err := h.Date(); err != nil || !d.Equal(c.Now.Truncate(time.Second)) {
		t.Errorf("Date: %v, %v; want %v", d, err, c.Now)
	}
	if len(h["Precedence"]) != 0 {
		t.Errorf("Precedence: %q, want none", h["Precedence"])
	}
	if n := len(h); n != 10 {
		t.Errorf("%d header fields, want 10: %v", n, slices.Sorted(func(yield func(string) bool) {
			for k := range h {
				if !yield(k) {
					return
				}
			}
		}))
	}

	text := decodeBody(t, m)
	lines := strings.Split(text, "\r\n")
	if !slices.Contains(lines, c.URL) {
		t.Errorf("no line is the URL alone:\n%s", text)
	}
	for _, l := range lines {
		if l != c.URL && width(l) > 78 {
			t.Errorf("text line %d columns wide: %q", width(l), l)
		}
	}
	listed := min(len(c.Recipients), challenge.MaxListed)
	for i, r := range c.Recipients {
		if n := strings.Count(text, "  "+r+"\r\n"); i < listed && n != 2 || i >= listed && n != 0 {
			t.Errorf("recipient %s named %d times", r, n)
		}
	}
	ja := strings.Index(text, "お預かりしています")
	en := strings.Index(text, "We are holding a message")
	if ja < 0 || en < 0 {
		t.Fatalf("a language is missing:\n%s", text)
	}
	if (ja < en) != jaFirst {
		t.Errorf("Japanese first: %v, want %v", ja < en, jaFirst)
	}
}

func decodeBody(t *testing.T, m *mail.Message) string {
	t.Helper()
	if cte := m.Header.Get("Content-Transfer-Encoding"); cte != "quoted-printable" {
		t.Fatalf("Content-Transfer-Encoding %q", cte)
	}
	b, err := io.ReadAll(quotedprintable.NewReader(m.Body))
	if err != nil {
		t.Fatalf("quoted-printable body: %v", err)
	}
	return string(b)
}

// width approximates the columns a line takes in a terminal: East Asian wide characters
// take two.
func width(s string) int {
	n := 0
	for _, r := range s {
		n++
		if r >= 0x1100 {
			n++
		}
	}
	return n
}

func TestComposeLanguage(t *testing.T) {
	for _, tc := range []struct {
		lang    challenge.Language
		to      string
		jaFirst bool
	}{
		{challenge.LanguageAuto, "a@example.jp", true},
		{challenge.LanguageAuto, "a@mail.example.co.jp", true},
		{challenge.LanguageAuto, "a@EXAMPLE.JP", true},
		{"", "a@example.ne.jp", true},
		{challenge.LanguageAuto, "a@example.com", false},
		{challenge.LanguageAuto, "a@example.jpn.com", false},
		{challenge.LanguageAuto, "a@jp.example.org", false},
		{challenge.LanguageJA, "a@example.com", true},
		{challenge.LanguageEN, "a@example.jp", false},
	} {
		t.Run(string(tc.lang)+" "+tc.to, func(t *testing.T) {
			c := base()
			c.Language, c.To = tc.lang, tc.to
			raw, err := challenge.Compose(c)
			if err != nil {
				t.Fatal(err)
			}
			m, err := mail.ReadMessage(bytes.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			text := decodeBody(t, m)
			ja := strings.Index(text, "お預かりしています")
			en := strings.Index(text, "We are holding a message")
			if (ja < en) != tc.jaFirst {
				t.Errorf("Japanese first: %v, want %v", ja < en, tc.jaFirst)
			}
		})
	}
}

func TestComposeRandomMessageID(t *testing.T) {
	c := base()
	c.MessageID = ""
	ids := make(map[string]bool)
	for range 10 {
		raw, err := challenge.Compose(c)
		if err != nil {
			t.Fatal(err)
		}
		m, err := mail.ReadMessage(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		id := m.Header.Get("Message-ID")
		if !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, "@mx.example.jp>") || len(id) < 30 {
			t.Errorf("Message-ID %q, want <random@mx.example.jp>", id)
		}
		ids[id] = true
	}
	if len(ids) != 10 {
		t.Errorf("%d distinct Message-IDs in 10 mails", len(ids))
	}
	c.Hostname = ""
	raw, err := challenge.Compose(c)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(raw, []byte("@example.jp>\r\n")) {
		t.Errorf("without Hostname the Message-ID is not at From's domain:\n%s", raw)
	}
}

func TestComposeRefuses(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*challenge.Challenge)
	}{
		{"no from", func(c *challenge.Challenge) { c.From = "" }},
		{"no to", func(c *challenge.Challenge) { c.To = "" }},
		{"to with header injection", func(c *challenge.Challenge) { c.To = "a@example.com\r\nBcc: victim@example.org" }},
		{"to with LF", func(c *challenge.Challenge) { c.To = "a@example.com\nX: y" }},
		{"to in angle brackets", func(c *challenge.Challenge) { c.To = "<a@example.com>" }},
		{"to with display name", func(c *challenge.Challenge) { c.To = "Buy Now <a@example.com>" }},
		{"to source route", func(c *challenge.Challenge) { c.To = "@relay:a@example.com" }},
		{"no recipients", func(c *challenge.Challenge) { c.Recipients = nil }},
		{"recipient with injection", func(c *challenge.Challenge) {
			c.Recipients = []string{"a@example.jp\r\n\r\nBUY CHEAP PILLS http://spam.example/"}
		}},
		{"recipient quoted with spaces", func(c *challenge.Challenge) { c.Recipients = []string{`"buy cheap pills"@example.jp`} }},
		{"empty recipient", func(c *challenge.Challenge) { c.Recipients = []string{"hanako@example.jp", ""} }},
		{"no url", func(c *challenge.Challenge) { c.URL = "" }},
		{"relative url", func(c *challenge.Challenge) { c.URL = "/c/abc" }},
		{"javascript url", func(c *challenge.Challenge) { c.URL = "javascript:alert(1)" }},
		{"url with space", func(c *challenge.Challenge) { c.URL = "https://mx.example.jp/c/a b" }},
		{"url with CRLF", func(c *challenge.Challenge) { c.URL = "https://mx.example.jp/c/a\r\nBcc: x@y" }},
		{"no date", func(c *challenge.Challenge) { c.Now = time.Time{} }},
		{"language", func(c *challenge.Challenge) { c.Language = "fr" }},
		{"message id with brackets", func(c *challenge.Challenge) { c.MessageID = "<a@b>" }},
		{"message id without @", func(c *challenge.Challenge) { c.MessageID = "abc" }},
		{"hostname with CRLF", func(c *challenge.Challenge) { c.MessageID, c.Hostname = "", "mx\r\nBcc: x@y" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.change(&c)
			if raw, err := challenge.Compose(c); err == nil {
				t.Errorf("Compose succeeded:\n%s", raw)
			}
		})
	}
}

// TestChallengeCarriesNothingOfTheMessage guards SPEC §4: a challenge names our recipients
// and the URL and nothing a sender wrote. A new field needs a look at that rule first.
func TestChallengeCarriesNothingOfTheMessage(t *testing.T) {
	want := []string{"From", "To", "Recipients", "URL", "Language", "Hostname", "Now", "MessageID"}
	var got []string
	for _, f := range reflect.VisibleFields(reflect.TypeFor[challenge.Challenge]()) {
		got = append(got, f.Name)
	}
	if !slices.Equal(got, want) {
		t.Errorf("Challenge fields %v, want %v: a challenge must carry nothing of the held message (SPEC §4)", got, want)
	}
}
