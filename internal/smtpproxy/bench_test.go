package smtpproxy

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/sekisho/sekisho/internal/challenge"
	"github.com/sekisho/sekisho/internal/metrics"
	"github.com/sekisho/sekisho/internal/outbox"
	"github.com/sekisho/sekisho/internal/store"
)

// benchBody is a 10 KB message.
var benchBody = []byte("Subject: bench\r\n\r\n" + strings.Repeat(strings.Repeat("x", 78)+"\r\n", 128))

func benchLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// sendBench sends b.N messages, the i-th from sender(i), through the proxy at addr, 8 clients
// at once, one message per connection (the MX pattern).
func sendBench(b *testing.B, addr string, sender func(i int) string) {
	b.SetBytes(int64(len(benchBody)))
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	ch := make(chan int)
	for range 8 {
		wg.Go(func() {
			for i := range ch {
				c, err := smtp.Dial(addr)
				if err != nil {
					b.Error(err)
					return
				}
				if err := c.SendMail(sender(i), []string{"user@example.jp"}, bytes.NewReader(benchBody)); err != nil {
					b.Error(err)
				}
				c.Quit()
			}
		})
	}
	for i := range b.N {
		ch <- i
	}
	close(ch)
	wg.Wait()
	b.StopTimer()
}

// BenchmarkPassPath sends 10 KB messages from a whitelisted sender through the proxy to an
// in-process upstream, with metrics counted as in production.
func BenchmarkPassPath(b *testing.B) {
	m := metrics.New()
	h := newHarness(b, harnessOpts{listener: Listener{TLS: "none"}, metrics: m, logger: benchLogger()})
	h.put(store.Entry{List: store.White, Key: "bench@sender.test", Kind: store.KindFrom})
	sendBench(b, h.addr, func(int) string { return "bench@sender.test" })
	if got := m.Decisions()["pass"]; got != int64(b.N) {
		b.Errorf("counted %d passed recipients, sent %d", got, b.N)
	}
}

// BenchmarkHoldPath is BenchmarkPassPath with every sender unknown: each message is held
// (committed to SQLite before the 250) and its sender challenged, once per sender within
// challenge_interval and within the default caps (20 per client IP and hour, 1000 in all),
// as an MX sees a spam run: 500 senders, many messages each. It checks that every message
// was held.
func BenchmarkHoldPath(b *testing.B) {
	h := newHarness(b, harnessOpts{
		listener: Listener{TLS: "none"},
		logger:   benchLogger(),
		opts: func(o *Options) {
			o.RelayNetworks = nil // the client is a stranger
			o.MaxHeldPerSender = 1 << 30
		},
		deps: func(d *Deps) {
			d.Challenges = &Challenges{
				Outbox:   &outbox.Sender{Store: d.Store, Upstream: d.Upstream}, // queued, not sent: Run is not called
				Limiter:  challenge.NewLimiter(20, 1000, challenge.NewMemCounter()),
				From:     "postmaster@example.jp",
				BaseURL:  "https://mx.example.jp",
				Interval: 24 * 3600e9,
			}
		},
	})
	sendBench(b, h.addr, func(i int) string { return fmt.Sprintf("s%d@spam%d.test", i%500, i%7) })
	held, err := h.store.HeldList(b.Context(), store.HeldQuery{})
	if err != nil || len(held) != b.N || len(h.up.Messages()) != 0 {
		b.Fatalf("%d held (%v), %d passed; want all %d held", len(held), err, len(h.up.Messages()), b.N)
	}
}
