package smtpproxy

import (
	"bytes"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/sekisho/sekisho/internal/metrics"
	"github.com/sekisho/sekisho/internal/store"
)

// BenchmarkPassPath sends 10 KB messages from a whitelisted sender through the proxy to an
// in-process upstream, 8 clients at once, one message per connection (the MX pattern), with
// metrics counted as in production.
func BenchmarkPassPath(b *testing.B) {
	m := metrics.New()
	h := newHarness(b, harnessOpts{listener: Listener{TLS: "none"}, metrics: m,
		logger: slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	h.put(store.Entry{List: store.White, Key: "bench@sender.test", Kind: store.KindFrom})
	body := []byte("Subject: bench\r\n\r\n" + strings.Repeat(strings.Repeat("x", 78)+"\r\n", 128))
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	ch := make(chan struct{})
	for range 8 {
		wg.Go(func() {
			for range ch {
				c, err := smtp.Dial(h.addr)
				if err != nil {
					b.Error(err)
					return
				}
				if err := c.SendMail("bench@sender.test", []string{"user@example.jp"}, bytes.NewReader(body)); err != nil {
					b.Error(err)
				}
				c.Quit()
			}
		})
	}
	for range b.N {
		ch <- struct{}{}
	}
	close(ch)
	wg.Wait()
	b.StopTimer()
	if got := m.Decisions()["pass"]; got != int64(b.N) {
		b.Errorf("counted %d passed recipients, sent %d", got, b.N)
	}
}
