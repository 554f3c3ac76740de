package demo

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/sekisho/sekisho/internal/testenv"
)

// The page lists what the mailbox received with the text decoded; only URLs under base_url
// become links, and nothing of a message is taken for HTML.
func TestPage(t *testing.T) {
	m, err := NewMailbox("127.0.0.1:0", testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	go m.Serve()
	defer m.Close()
	body := "From: x@y.test\r\nSubject: =?UTF-8?B?56K66KqN?= <script>alert(1)</script>\r\n" +
		"Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" +
		"=E3=81=93=E3=82=93 https://localhost:8443/c/TOKEN123\r\nevil https://evil.test/c/x and javascript:alert(2)\r\n" +
		"<a href=3D\"https://evil.test/\">click</a>\r\n"
	c, err := smtp.Dial(m.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SendMail("", []string{"alice@sender.test"}, strings.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	c.Quit()
	digested := 0
	p := &Page{Mailbox: m, BaseURL: "https://localhost:8443", Log: testenv.Logger(t),
		Digest: func(context.Context) (int, error) { digested++; return 1, nil }}
	srv := httptest.NewServer(p)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	text := string(page)
	for _, want := range []string{
		`<a href="https://localhost:8443/c/TOKEN123">`, "確認 &lt;script&gt;", "こん", "&lt;a href=&#34;https://evil.test/&#34;&gt;", "&lt;&gt;", "alice@sender.test",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("page lacks %q:\n%s", want, text)
		}
	}
	for _, bad := range []string{`href="https://evil.test`, "<script>", `href="javascript`} {
		if strings.Contains(text, bad) {
			t.Errorf("page has %q:\n%s", bad, text)
		}
	}
	req, _ := http.NewRequest("POST", srv.URL+"/digest", nil)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 403 {
		t.Fatalf("cross-site POST: %v %v", resp, err)
	}
	resp, err = http.Post(srv.URL+"/digest", "application/x-www-form-urlencoded", nil)
	if err != nil || resp.StatusCode != 200 || digested != 1 {
		t.Fatalf("POST /digest: %v %v, digest ran %d times", resp, err, digested)
	}
	resp.Body.Close()
}
