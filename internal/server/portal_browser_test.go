package server

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/emersion/go-smtp"

	"github.com/sekisho/sekisho/internal/testenv"
)

// The portal in a real browser, in Japanese and in English: log in, create an alias, see
// its hit after a swaks send, disable it (the next mail is refused 550), whitelist a sender
// (its mail passes), release a held message. Screenshots of each page are kept.
func TestPortalBrowser(t *testing.T) {
	for _, c := range []struct {
		lang, h1, created, disabledBadge, released string
	}{
		{"ja", "エイリアス", "エイリアスを作成しました。", "無効", "配送しました。"},
		{"en", "My aliases", "Alias created.", "disabled", "Released."},
	} {
		t.Run(c.lang, func(t *testing.T) {
			srv, up, httpsAddr := portalServer(t)
			_, port, _ := net.SplitHostPort(httpsAddr)
			base := "https://mx.example.jp:" + port
			shots := testenv.ArtifactsDir(t, "portal-"+c.lang)
			ctx := testenv.Browser(t, c.lang, chromedp.WindowSize(1100, 900))
			step := 0
			shot := func(name string) {
				t.Helper()
				png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
				if err != nil {
					t.Fatalf("screenshot %s: %v", name, err)
				}
				step++
				file := filepath.Join(shots, fmt.Sprintf("%02d-%s.png", step, name))
				if err := os.WriteFile(file, png, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
				t.Helper()
				if err := chromedp.Do(ctx, steps...); err != nil {
					shot("failed-" + strings.ReplaceAll(what, " ", "-"))
					t.Fatalf("%s: %v", what, err)
				}
			}
			text := func(sel string) string {
				t.Helper()
				s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
				if err != nil {
					t.Fatalf("text of %s: %v", sel, err)
				}
				return strings.TrimSpace(s)
			}

			// A stranger's mail waits in the held queue.
			if err := smtpSend(t, srv, "stranger@else.test", portalUser, "held "+c.lang); err != nil {
				t.Fatal(err)
			}
			held := waitHeld(t, srv, 1)

			do("login page", chromedp.Navigate(base+"/login?lang="+c.lang), chromedp.WaitVisible(chromedp.CSS(`input[name=address]`)))
			do("fill login", chromedp.SendKeys(chromedp.CSS(`input[name=address]`), portalUser), chromedp.SendKeys(chromedp.CSS(`input[name=password]`), portalPW))
			shot("login")
			do("log in", chromedp.Submit(chromedp.CSS(`input[name=password]`)), chromedp.WaitVisible(chromedp.CSS(`#create-alias`)))
			if h := text("main h1"); h != c.h1 {
				t.Fatalf("alias page h1 %q, want %q (language %s)", h, c.h1, c.lang)
			}
			lang, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(`html`), "lang"))
			if err != nil || lang.Value != c.lang {
				t.Fatalf("<html lang> = %v %v, want %s", lang, err, c.lang)
			}
			shot("aliases-empty")

			do("create alias", chromedp.SendKeys(chromedp.CSS(`#create-alias input[name=note]`), "Partner "+c.lang),
				chromedp.Submit(chromedp.CSS(`#create-alias input[name=note]`)), chromedp.WaitVisible(chromedp.CSS(`#new-alias`)))
			alias, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(`#new-alias`)))
			if err != nil || !strings.HasSuffix(alias, "@example.jp") || len(alias) != len("xxxxxxxxxxxx@example.jp") {
				t.Fatalf("new alias %q (%v)", alias, err)
			}
			if f := text(".flash"); !strings.Contains(f, c.created) {
				t.Fatalf("flash %q, want %q", f, c.created)
			}
			shot("alias-created")

			do("whitelist page", chromedp.Navigate(base+"/portal/white"), chromedp.WaitVisible(chromedp.CSS(`#add-white`)))
			do("whitelist friend", chromedp.SendKeys(chromedp.CSS(`#add-white input[name=entry]`), friend),
				chromedp.Submit(chromedp.CSS(`#add-white input[name=entry]`)),
				chromedp.WaitVisible(chromedp.CSS(`tr[data-entry="`+friend+`"]`)))
			shot("whitelist")
			if err := smtpSend(t, srv, friend, portalUser, "whitelisted "+c.lang); err != nil {
				t.Fatalf("mail from the whitelisted sender: %v", err)
			}
			if got := up.Wait(t, 1)[0]; !strings.Contains(string(got.Data), "whitelisted "+c.lang) {
				t.Fatalf("upstream got %q", got.Data)
			}

			if out, rc := swaksSend(t, srv, friend, alias, "alias "+c.lang); rc != 0 {
				t.Fatalf("swaks to the alias: exit %d\n%s", rc, out)
			}
			up.Wait(t, 2)
			row := `tr[data-alias="` + alias + `"]`
			do("aliases page", chromedp.Navigate(base+"/portal/aliases"), chromedp.WaitVisible(chromedp.CSS(row)))
			if hits, sender := text(row+` td.hits`), text(row+` td.last-sender`); hits != "1" || sender != friend {
				t.Fatalf("alias row: hits %q, last sender %q; want 1, %s", hits, sender, friend)
			}
			shot("alias-hit")

			do("disable alias", chromedp.Click(chromedp.CSS(row+` button[name=disable]`)), chromedp.WaitVisible(chromedp.CSS(row+` button[name=enable]`)))
			if s := text(row + ` td.state`); s != c.disabledBadge {
				t.Fatalf("state after disable %q, want %q", s, c.disabledBadge)
			}
			shot("alias-disabled")
			err = smtpSend(t, srv, friend, alias, "after disable")
			if se, ok := err.(*smtp.SMTPError); !ok || se.Code != 550 {
				t.Fatalf("mail to the disabled alias: %v, want 550", err)
			}

			do("held page", chromedp.Navigate(base+"/portal/held"), chromedp.WaitVisible(chromedp.CSS(`tr[data-held="`+held[0].ID+`"]`)))
			shot("held")
			do("open held", chromedp.Click(chromedp.CSS(`tr[data-held="`+held[0].ID+`"] a`)), chromedp.WaitVisible(chromedp.CSS(`#release`)))
			if body := text("#text"); !strings.Contains(body, "body of held "+c.lang) {
				t.Fatalf("held message text %q", body)
			}
			shot("held-message")
			do("release", chromedp.Click(chromedp.CSS(`#release`)), chromedp.WaitVisible(chromedp.CSS(`.flash`)))
			if f := text(".flash"); f != c.released {
				t.Fatalf("flash after release %q, want %q", f, c.released)
			}
			shot("released")
			if got := up.Wait(t, 3)[2]; got.From != "stranger@else.test" || !strings.Contains(string(got.Data), "body of held "+c.lang) {
				t.Fatalf("released message: %s %q", got.From, got.Data)
			}
			waitHeld(t, srv, 0)

			// On a phone's width the pages still work: the alias table drops its optional
			// columns, the disable/enable form is reachable.
			do("phone width", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile),
				chromedp.Navigate(base+"/portal/aliases"), chromedp.WaitVisible(chromedp.CSS(row+` button[name=enable]`)))
			visible, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`getComputedStyle(document.querySelector('td.last-sender')).display !== 'none'`))
			if err != nil || visible {
				t.Fatalf("at 390 px the last-sender column is shown (%v)", err)
			}
			shot("aliases-phone")
		})
	}
}
