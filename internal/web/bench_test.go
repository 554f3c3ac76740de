package web

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/challenge"
	"github.com/sekisho/sekisho/internal/store"
)

// BenchmarkConfirmRelease measures the confirming POST for a sender with 10 held messages,
// from the request to the page saying all 10 were accepted by the upstream server (the
// release is synchronous): SQLite store, a real SMTP upstream, the web server's handler.
// It reports the median and the 99th percentile over b.N confirmations (run it with
// -benchtime 100x or more for a meaningful p99).
func BenchmarkConfirmRelease(b *testing.B) {
	e := newConfirmEnv(b, 0)
	ctx := b.Context()
	var took []time.Duration
	want := len(e.up.Messages())
	for i := range b.N {
		b.StopTimer()
		sender := fmt.Sprintf("s%d@sender.test", i)
		token, hash := challenge.NewToken()
		if err := e.st.Put(ctx, store.Entry{List: store.Audir, Key: hash, Target: sender, Expires: time.Now().Add(time.Hour)}); err != nil {
			b.Fatal(err)
		}
		for range 10 {
			h := store.Held{From: sender, Expires: time.Now().Add(time.Hour), Rcpts: []store.HeldRcpt{{Rcpt: "taro@example.jp", Owner: "taro@example.jp"}}}
			if err := e.st.Hold(ctx, &h, []byte(heldBody)); err != nil {
				b.Fatal(err)
			}
		}
		view := e.view(b, "/c/"+token, "en")
		b.StartTimer()
		start := time.Now()
		code, page := e.do(b, "POST", "/c/"+token, url.Values{"v": {view}}, "en")
		took = append(took, time.Since(start))
		if code != 200 || !strings.Contains(page, "<dd>10</dd>") {
			b.Fatalf("confirm: %d\n%s", code, page)
		}
		if want += 10; len(e.up.Messages()) != want {
			b.Fatalf("upstream has %d messages, want %d", len(e.up.Messages()), want)
		}
	}
	slices.Sort(took)
	pct := func(p float64) float64 { return float64(took[int(p*float64(len(took)-1))].Microseconds()) / 1000 }
	b.ReportMetric(pct(0.5), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(took[len(took)-1].Microseconds())/1000, "max-ms")
}
