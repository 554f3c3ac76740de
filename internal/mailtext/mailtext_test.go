package mailtext

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestShowMessage(t *testing.T) {
	for _, c := range []struct {
		name     string
		msg      string
		text     string
		htmlOnly bool
		noText   bool
		header   string // "Name: value" that must be among the headers
	}{
		{
			name:   "plain",
			msg:    "Subject: hi\r\nX-Folded: one\r\n two\r\n\r\nhello\r\nworld\r\n",
			text:   "hello\nworld\n",
			header: "X-Folded: one two",
		},
		{
			name: "multipart alternative, quoted-printable utf-8 text preferred to html",
			msg: "Subject: =?UTF-8?Q?caf=C3=A9?=\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"b1\"\r\n\r\n" +
				"--b1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<b>bold</b>\r\n" +
				"--b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\ncaf=C3=A9 =\r\nau lait\r\n" +
				"--b1--\r\n",
			text:   "café au lait", // the CRLF before a boundary belongs to the boundary
			header: "Subject: café",
		},
		{
			name: "nested multipart, iso-2022-jp in base64, RFC 2047 iso-2022-jp subject",
			msg: "Subject: =?ISO-2022-JP?B?GyRCN29MPhsoQg==?=\r\nContent-Type: multipart/mixed; boundary=outer\r\n\r\n" +
				"--outer\r\nContent-Type: multipart/alternative; boundary=inner\r\n\r\n" +
				"--inner\r\nContent-Type: text/plain; charset=ISO-2022-JP\r\nContent-Transfer-Encoding: base64\r\n\r\nGyRCJDMkcyRLJEEkTyEi\r\nQCQzJhsoQg==\r\n" +
				"--inner--\r\n--outer\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename=a.txt\r\n\r\nattached\r\n--outer--\r\n",
			text:   "こんにちは、世界",
			header: "Subject: 件名",
		},
		{
			name: "shift_jis",
			msg:  "Content-Type: text/plain; charset=Shift_JIS\r\n\r\n\x93\xfa\x96{\x8c\xea\r\n",
			text: "日本語\n",
		},
		{
			name:     "html only: tags, script and style stripped, entities decoded",
			msg:      "Content-Type: text/html\r\n\r\n<html><head><style>p{}</style></head><body><p>a &amp; b</p><script>evil()</script><img src=http://x.test/t.png><!-- c --></body></html>",
			text:     "a & b",
			htmlOnly: true,
		},
		{
			name:   "attachment only",
			msg:    "Content-Type: application/pdf\r\n\r\n%PDF\r\n",
			noText: true,
		},
		{
			name: "invalid utf-8 replaced",
			msg:  "Content-Type: text/plain; charset=utf-8\r\n\r\nok \xff\xfe\r\n",
			text: "ok \uFFFD\n",
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := Show([]byte(c.msg))
			if got.Text != c.text || got.HTMLOnly != c.htmlOnly || got.NoText != c.noText {
				t.Errorf("text %q html-only %v no-text %v; want %q %v %v", got.Text, got.HTMLOnly, got.NoText, c.text, c.htmlOnly, c.noText)
			}
			if c.header != "" {
				var hs []string
				for _, h := range got.Headers {
					hs = append(hs, h.Name+": "+h.Value)
				}
				if !strings.Contains(strings.Join(hs, "\n"), c.header) {
					t.Errorf("headers %q lack %q", hs, c.header)
				}
			}
		})
	}
}

func FuzzShowMessage(f *testing.F) {
	f.Add([]byte("Subject: x\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>x</p>\r\n--b--\r\n"))
	f.Add([]byte("Content-Type: text/plain; charset=iso-2022-jp\r\nContent-Transfer-Encoding: base64\r\n\r\nGyRCJDMkcyRLJEEkTyEi\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got := Show(data)
		if !utf8.ValidString(got.Text) {
			t.Fatalf("text is not valid UTF-8: %q", got.Text)
		}
		for _, h := range got.Headers {
			if !utf8.ValidString(h.Value) {
				t.Fatalf("header %s is not valid UTF-8: %q", h.Name, h.Value)
			}
		}
		if len(got.Text) > maxShownText || len(got.Headers) > maxShownHeaders {
			t.Fatalf("limits exceeded: %d bytes, %d headers", len(got.Text), len(got.Headers))
		}
	})
}
