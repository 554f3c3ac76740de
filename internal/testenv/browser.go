package testenv

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// ArtifactsDir is where tests leave what a person may want to look at afterwards
// (screenshots): $SEKISHO_ARTIFACTS/name when SEKISHO_ARTIFACTS is set (.ci/run sets it),
// else a temporary directory of the test.
func ArtifactsDir(t testing.TB, name string) string {
	base := os.Getenv("SEKISHO_ARTIFACTS")
	if base == "" {
		return t.TempDir()
	}
	dir := filepath.Join(base, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Browser starts a headless Chromium that asks for pages in lang, accepts the test servers'
// self-signed certificates and resolves mx.example.jp to the loopback; it stops with the
// test. extra adds or overrides options (a window size, ...). Without Chromium the test is
// skipped, except with CI=true, where it fails.
func Browser(t testing.TB, lang string, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	var path string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		Missing(t, "chromium not found (Debian packages chromium and fonts-noto-cjk)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Flag("ignore-certificate-errors", true),
		chromedp.Flag("lang", lang),
		chromedp.Flag("accept-lang", lang),
		chromedp.Flag("host-resolver-rules", "MAP mx.example.jp 127.0.0.1"),
		chromedp.WindowSize(1000, 800),
		chromedp.UserDataDir(t.TempDir()),
	)
	opts = append(opts, extra...)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// Screenshot saves a full-page screenshot of the browser's page as name.png in dir.
func Screenshot(t testing.TB, browser context.Context, dir, name string) {
	t.Helper()
	png, err := chromedp.Run(browser, chromedp.FullScreenshot(100))
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644)
	}
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
}
