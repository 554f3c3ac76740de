package server

import (
	"bytes"
	"io"
	"mime/quotedprintable"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sekisho/sekisho/internal/testenv"
)

// mailText is the decoded text of a quoted-printable mail.
func mailText(t *testing.T, data []byte) string {
	t.Helper()
	_, qp, _ := bytes.Cut(data, []byte("\r\n\r\n"))
	text, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(qp)))
	if err != nil {
		t.Fatal(err)
	}
	return string(text)
}

var digestURL = regexp.MustCompile(`https://mx\.example\.jp/d/[A-Za-z0-9_.-]+`)

// The product as a person uses it, in a real browser, in Japanese and in English: the link of
// the challenge mail caught upstream opens the confirm page; the button, pressed after
// confirm_min_seconds, delivers the held mail; the link of a digest opens the message's page,
// and its release button delivers that message. Screenshots of each page are kept.
func TestBrowserConfirmAndDigest(t *testing.T) {
	for _, tc := range []struct{ lang, form, delivered, released string }{
		{"ja", "メール送信の確認", "メールを配送しました", "メールを配送しました。"},
		{"en", "Please confirm your message", "Your mail has been delivered", "The message has been delivered."},
	} {
		t.Run(tc.lang, func(t *testing.T) {
			srv, up, dns := confirmServer(t)
			dns.TXT("sender.test", "v=spf1 ip4:127.0.0.0/8 -all")
			browser := testenv.Browser(t, tc.lang, chromedp.WindowSize(900, 800))
			dir := testenv.ArtifactsDir(t, "confirm")
			httpsAddrs, _ := srv.web.Addrs()
			_, port, _ := net.SplitHostPort(httpsAddrs[0].String())
			local := func(link string) string { // the mail's URL, at the test server's port
				return strings.Replace(link, "https://mx.example.jp/", "https://mx.example.jp:"+port+"/", 1)
			}
			do := func(steps ...chromedp.Action[chromedp.Void]) {
				t.Helper()
				if err := chromedp.Do(browser, steps...); err != nil {
					t.Fatal(err)
				}
			}
			text := func(sel string) string {
				t.Helper()
				v, err := chromedp.Run(browser, chromedp.Text(chromedp.CSS(sel)))
				if err != nil {
					t.Fatal(err)
				}
				return v
			}
			shot := func(name string) {
				t.Helper()
				png, err := chromedp.Run(browser, chromedp.FullScreenshot(100))
				if err == nil {
					err = os.WriteFile(filepath.Join(dir, "browser-"+tc.lang+"-"+name+".png"), png, 0o644)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			wait := time.Second + 200*time.Millisecond // confirm_min_seconds = 1

			// Challenge → confirm page → delivered.
			body := "From: Alice <alice@sender.test>\r\nSubject: browser " + tc.lang + "\r\n\r\nheld until confirmed\r\n"
			sendFrom(t, srv, "alice@sender.test", body)
			link := confirmURL.FindString(mailText(t, up.Wait(t, 1)[0].Data))
			if link == "" {
				t.Fatal("no confirmation URL in the challenge")
			}
			do(chromedp.Navigate(local(link)), chromedp.WaitVisible(chromedp.CSS(`button[type=submit]`)))
			title := text(`h1`)
			shot("confirm")
			do(chromedp.Sleep(wait), chromedp.Click(chromedp.CSS(`button[type=submit]`)), chromedp.WaitVisible(chromedp.CSS(`p.msg`)))
			done := text(`p.msg`)
			shot("confirmed")
			if title != tc.form || !strings.Contains(done, tc.delivered) {
				t.Fatalf("confirm page %q, after the click %q", title, done)
			}
			released := up.Wait(t, 2)[1]
			if released.From != "alice@sender.test" || !bytes.HasSuffix(released.Data, []byte(body)) {
				t.Fatalf("released %s: %q", released.From, released.Data)
			}

			// An unauthenticated sender is held silently; the digest lists it; its page
			// releases it.
			sendFrom(t, srv, "bob@nospf.test", "Subject: receipt "+tc.lang+"\r\n\r\nyour receipt\r\n")
			if _, err := srv.digest.Send(t.Context(), "browser-"+tc.lang); err != nil {
				t.Fatal(err)
			}
			dmail := up.Wait(t, 3)[2]
			if len(dmail.To) != 1 || dmail.To[0] != "taro@example.jp" {
				t.Fatalf("digest sent to %v", dmail.To)
			}
			dlink := digestURL.FindString(mailText(t, dmail.Data))
			if dlink == "" {
				t.Fatalf("no digest link in:\n%s", mailText(t, dmail.Data))
			}
			do(chromedp.Navigate(local(dlink)), chromedp.WaitVisible(chromedp.CSS(`#release`)))
			subject := text(`dl`)
			shot("digest")
			do(chromedp.Sleep(wait), chromedp.Click(chromedp.CSS(`#release`)), chromedp.WaitVisible(chromedp.CSS(`#done`)))
			result := text(`#done`)
			shot("digest-released")
			if !strings.Contains(subject, "receipt "+tc.lang) || result != tc.released {
				t.Fatalf("digest page shows %q, after the click %q", subject, result)
			}
			got := up.Wait(t, 4)[3]
			if got.From != "bob@nospf.test" || len(got.To) != 1 || got.To[0] != "taro@example.jp" || !bytes.Contains(got.Data, []byte("your receipt")) {
				t.Fatalf("released from the digest: %s -> %v %q", got.From, got.To, got.Data)
			}
		})
	}
}
