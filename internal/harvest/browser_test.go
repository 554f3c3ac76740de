package harvest

import (
	"bytes"
	"fmt"
	"image"
	"image/png"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sekisho/sekisho/internal/static"
	"github.com/sekisho/sekisho/internal/testenv"
)

// browserPage has what a hidden link could disturb: flex and grid layout, margins at the
// end of the body, :last-child rules inside it, CJK text, a footer pushed down by flex.
// (A rule on the body's own last child, body > :last-child, would match the link instead:
// the one layout a link before </body> can change.)
const browserPage = `<!doctype html>
<html lang="ja"><head><meta charset="utf-8"><title>関所</title>
<style>
html, body { margin: 0; font-family: "Noto Sans CJK JP", sans-serif; }
body { display: flex; flex-direction: column; min-height: 100vh; background: #fafaf5; }
header { background: #234; color: #fff; padding: 12px 20px; }
main { flex: 1; display: grid; grid-template-columns: 1fr 1fr; gap: 16px; padding: 20px; }
main p { margin: 0 0 24px; }
section:last-child { border: 2px solid #a33; }
footer { background: #ddd; padding: 10px 20px; margin-bottom: 30px; }
footer:last-of-type { outline: 3px solid #3a3; }
section p:last-child { margin-bottom: 0; }
</style></head>
<body>
<header><h1>セキュリティ関所</h1></header>
<main>
<section><p>迷惑メールの送信者は、ウェブページからアドレスを集めます。</p><p>Spammers harvest addresses from web pages.</p></section>
<section><p>お問い合わせは下記まで。</p><p>Contact: info (at) example.jp</p></section>
</main>
<footer>© 2026 sekisho</footer>
</body>
</html>
`

// A seeded page looks exactly like the unseeded one in headless Chromium, and its link is
// rendered nowhere and is out of the accessibility tree.
func TestSeededPageScreenshot(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "index.html"), []byte(browserPage), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := static.New(static.Options{Root: root}, static.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := newNode(t, openStore(t), testenv.NewClock(time.Now()), true)
	seeded := httptest.NewServer(Seed(f, n.p))
	defer seeded.Close()
	plain := httptest.NewServer(f)
	defer plain.Close()

	ctx := testenv.Browser(t, "ja", chromedp.WindowSize(1024, 768), chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("force-color-profile", "srgb"), chromedp.Flag("font-render-hinting", "none"))

	shot := func(url string) (image.Image, int, bool) {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.Navigate(url), chromedp.WaitReady("footer")); err != nil {
			t.Fatalf("chromium on %s: %v", url, err)
		}
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.fonts.ready.then(() => true)`, chromedp.EvalAwaitPromise)); err != nil {
			t.Fatalf("fonts: %v", err)
		}
		links, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('a[href^="mailto:"]').length`))
		if err != nil {
			t.Fatal(err)
		}
		rendered, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`[...document.querySelectorAll('a[href^="mailto:"]')].some(a => a.getClientRects().length > 0 || a.checkVisibility())`))
		if err != nil {
			t.Fatal(err)
		}
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot of %s: %v", url, err)
		}
		return decodePNG(t, png), links, rendered
	}
	want, links, _ := shot(plain.URL + "/")
	if links != 0 {
		t.Fatalf("the unseeded page has %d mailto links", links)
	}
	got, links, rendered := shot(seeded.URL + "/")
	if links != 1 {
		t.Fatalf("the seeded page has %d mailto links, want 1", links)
	}
	if rendered {
		t.Error("the trap link has a box or is visible")
	}
	if ax, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('a[href^="mailto:"]').getAttribute('aria-hidden')`)); err != nil || ax != "true" {
		t.Errorf("aria-hidden = %s, %v", ax, err)
	}
	if diff := pixelDiff(want, got); diff != "" {
		t.Errorf("seeded page differs from the unseeded one: %s", diff)
	}
}

func decodePNG(t *testing.T, b []byte) image.Image {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	return img
}

// pixelDiff describes how two images differ, "" when they are the same pixel by pixel.
func pixelDiff(a, b image.Image) string {
	if a.Bounds() != b.Bounds() {
		return "size " + a.Bounds().String() + " vs " + b.Bounds().String()
	}
	n := 0
	var first image.Point
	r := a.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			r1, g1, b1, a1 := a.At(x, y).RGBA()
			r2, g2, b2, a2 := b.At(x, y).RGBA()
			if r1 != r2 || g1 != g2 || b1 != b2 || a1 != a2 {
				if n == 0 {
					first = image.Pt(x, y)
				}
				n++
			}
		}
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("%d pixels differ, the first at %v", n, first)
}
