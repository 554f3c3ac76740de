package admin

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sekisho/sekisho/internal/api"
	"github.com/sekisho/sekisho/internal/store"
	"github.com/sekisho/sekisho/internal/testenv"
)

// A person in a real browser (headless Chromium, no script on any page), in Japanese and in
// English: logs in, walks every admin page (and the overview on a phone-sized screen), adds
// a BLACK entry, makes an API token and sees it once, releases a held message; a screenshot
// of each page is kept under $SEKISHO_ARTIFACTS.
func TestBrowserWalk(t *testing.T) {
	for _, tc := range []struct {
		lang, overview, added, released, once string
	}{
		{"ja", "管理：概要", "エントリを追加しました。", "保留メールを配送しました。", "今回だけ表示"},
		{"en", "Admin: overview", "Entry added.", "Held message released.", "shown only this once"},
	} {
		t.Run(tc.lang, func(t *testing.T) {
			s := newSite(t, "127.0.0.0/8")
			now := time.Now()
			id := s.seed(t, now)
			m := store.Minute(now)
			var counts []store.StatCount
			for i := range 60 * 24 * 7 / 13 { // something every 13 minutes over the week
				at := m.Add(-time.Duration(i*13) * time.Minute)
				counts = append(counts,
					store.StatCount{Bucket: at, Name: "pass", Count: int64(20 + i%17)},
					store.StatCount{Bucket: at, Name: "held", Count: int64(i % 7)},
					store.StatCount{Bucket: at, Name: "decoy", Count: int64(i % 3)},
					store.StatCount{Bucket: at, Name: "relay_refused", Count: int64(i % 5)})
			}
			if err := s.store.AddStats(context.Background(), counts); err != nil {
				t.Fatal(err)
			}
			browser := testenv.Browser(t, tc.lang)
			dir := testenv.ArtifactsDir(t, "admin")
			do := func(steps ...chromedp.Action[chromedp.Void]) {
				t.Helper()
				ctx, cancel := context.WithTimeout(browser, 20*time.Second) // one step, not the browser
				defer cancel()
				if err := chromedp.Do(ctx, steps...); err != nil {
					testenv.Screenshot(t, browser, dir, "admin-"+tc.lang+"-failed")
					t.Fatal(err)
				}
			}
			text := func(sel string) string {
				t.Helper()
				v, err := chromedp.Run(browser, chromedp.Text(chromedp.CSS(sel)))
				if err != nil {
					t.Fatalf("text of %s: %v", sel, err)
				}
				return v
			}
			shot := func(name string) { testenv.Screenshot(t, browser, dir, "admin-"+tc.lang+"-"+name) }

			do(chromedp.Navigate(s.srv.URL+"/admin/"), chromedp.WaitVisible(chromedp.CSS(`input[name=address]`)),
				chromedp.SendKeys(chromedp.CSS(`input[name=address]`), rootUser),
				chromedp.SendKeys(chromedp.CSS(`input[name=password]`), testenv.WebPassword(rootUser)),
				chromedp.Click(chromedp.CSS(`main button[type=submit]`)),
				chromedp.WaitVisible(chromedp.CSS(`svg.chart`)))
			if h := text("h1"); h != tc.overview {
				t.Fatalf("after login: h1 %q, want %q", h, tc.overview)
			}
			shot("overview-hour")

			pages := []struct{ name, path, sel, want string }{
				{"overview-day", "/admin/?range=day", "svg.chart", "<desc"},
				{"overview-week", "/admin/?range=week", "svg.chart", "<desc"},
				{"users", "/admin/users", "table", aliceUser},
				{"list-alias", "/admin/lists/alias", "table", "shop-x7@example.jp"},
				{"list-white", "/admin/lists/white", "table", "friend@partner.test"},
				{"list-decoy", "/admin/lists/decoy", "table", "trap@example.jp"},
				{"list-black", "/admin/lists/black", "table", "192.0.2.66"},
				{"list-audir", "/admin/lists/audir", "table", "0123abcd"},
				{"list-relay", "/admin/lists/relay", "table", "known@partner.test"},
				{"held", "/admin/held", "table", "stranger@else.test"},
				{"held-view", "/admin/held/" + id, "pre", "X-Evil: &lt;script&gt;"},
				{"nodes", "/admin/nodes", "table", "node-b"},
				{"traps", "/admin/traps", "table", "k3v9q@trap.example.jp"},
				{"tokens", "/admin/tokens", "table", "backup-script"},
			}
			for _, p := range pages {
				do(chromedp.Navigate(s.srv.URL+p.path), chromedp.WaitVisible(chromedp.CSS(p.sel)))
				html, err := chromedp.Run(browser, chromedp.OuterHTML(chromedp.CSS("main")))
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(html, p.want) {
					t.Errorf("%s: page lacks %q", p.path, p.want)
				}
				lang, err := chromedp.Run(browser, chromedp.AttributeValue(chromedp.CSS("html"), "lang"))
				if err != nil || lang.Value != tc.lang {
					t.Errorf("%s: lang %q %v, want %s", p.path, lang.Value, err, tc.lang)
				}
				shot(p.name)
			}

			// A phone-sized screen: the overview still fits.
			do(chromedp.EmulateViewport(390, 844), chromedp.Navigate(s.srv.URL+"/admin/?range=day"), chromedp.WaitVisible(chromedp.CSS(`svg.chart`)))
			width, err := chromedp.Run(browser, chromedp.Evaluate[int](`document.documentElement.scrollWidth`))
			if err != nil {
				t.Fatal(err)
			}
			if width > 390 {
				t.Errorf("overview on a 390 px screen is %d px wide", width)
			}
			shot("overview-phone")
			do(chromedp.EmulateViewport(1000, 800))

			// Add a BLACK entry with an expiry.
			do(chromedp.Navigate(s.srv.URL+"/admin/lists/black"), chromedp.WaitVisible(chromedp.CSS(`input[name=entry]`)),
				chromedp.SendKeys(chromedp.CSS(`input[name=entry]`), "198.51.100.0/24"),
				chromedp.SendKeys(chromedp.CSS(`input[name=ttl]`), "7d"),
				chromedp.Click(chromedp.CSS(`form[method=post][action="/admin/lists/black"] button[type=submit]`)),
				chromedp.WaitVisible(chromedp.CSS(`p.flash`)))
			if f := text("p.flash"); f != tc.added {
				t.Errorf("flash after adding: %q, want %q", f, tc.added)
			}
			if es, _ := s.store.Entries(context.Background(), store.Black, store.Query{Q: "198.51.100.0/24"}); len(es) != 1 || es[0].Expires.IsZero() {
				t.Errorf("BLACK after the form: %+v", es)
			}
			shot("list-black-added")

			// Make a token: shown once.
			do(chromedp.Navigate(s.srv.URL+"/admin/tokens"), chromedp.WaitVisible(chromedp.CSS(`input[type=text][name=name]`)),
				chromedp.SendKeys(chromedp.CSS(`input[type=text][name=name]`), "nightly-"+tc.lang),
				chromedp.Click(chromedp.CSS(`form[action="/admin/tokens"] button[type=submit]`)),
				chromedp.WaitVisible(chromedp.CSS(`#token`)))
			tok := text("#token")
			if !strings.HasPrefix(tok, "sk_") || !strings.Contains(text("#newtoken + p"), tc.once) {
				t.Errorf("new token %q", tok)
			}
			if got, err := s.store.TokenByHash(context.Background(), api.HashToken(tok), now); err != nil || got.Name != "nightly-"+tc.lang {
				t.Errorf("token in the store: %+v %v", got, err)
			}
			shot("tokens-created")

			// Release the held message from its page.
			do(chromedp.Navigate(s.srv.URL+"/admin/held/"+id), chromedp.WaitVisible(chromedp.CSS(`pre`)),
				chromedp.Click(chromedp.CSS(`form[action$="/release"] button`)),
				chromedp.WaitVisible(chromedp.CSS(`p.flash`)))
			if f := text("p.flash"); f != tc.released {
				t.Errorf("flash after release: %q, want %q", f, tc.released)
			}
			if msgs := s.up.Wait(t, 1); msgs[0].From != "stranger@else.test" {
				t.Errorf("released upstream: %+v", msgs[0])
			}
			shot("held-released")
		})
	}
}
