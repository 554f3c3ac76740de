package cluster_test

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/lists"
	"github.com/sekisho/sekisho/internal/store"
	"github.com/sekisho/sekisho/internal/testenv"
)

// follower is a node's lists following a PostgreSQL store as `sekisho serve` does: woken by
// Listen, polling only every hour here, so that only the notification path is measured.
func follower(b *testing.B, ctx context.Context, wg *sync.WaitGroup, dsn string) *lists.Lists {
	d := openPG(b, dsn)
	wake := make(chan struct{}, 1)
	wg.Go(func() { d.Listen(ctx, wake) })
	select {
	case <-wake: // connected
	case <-time.After(10 * time.Second):
		b.Fatal("Listen did not connect within 10s")
	}
	l := lists.New()
	if err := l.Reload(ctx, d); err != nil {
		b.Fatal(err)
	}
	wg.Go(func() { l.Follow(ctx, d, time.Hour, wake, testenv.Logger(b)) })
	return l
}

// change i: a list change made on the writing node, and the lookup on a follower that shows
// its effect.
func change(i int) (store.Entry, func(l *lists.Lists) bool) {
	now := time.Now()
	switch i % 5 {
	case 0:
		ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		return store.Entry{List: store.Black, Key: ip.String(), Source: "decoy", Expires: now.Add(time.Hour)},
			func(l *lists.Lists) bool { return l.BlackIP(ip, now) }
	case 1:
		k := fmt.Sprintf("trap%d@example.jp", i)
		return store.Entry{List: store.Decoy, Key: k}, func(l *lists.Lists) bool { return l.Decoy(k) }
	case 2:
		k := fmt.Sprintf("friend%d@partner.test", i)
		return store.Entry{List: store.White, Key: k, Kind: store.KindFrom},
			func(l *lists.Lists) bool { return l.WhiteFrom(k, "taro@example.jp") }
	case 3:
		k := fmt.Sprintf("shop%d@example.jp", i)
		return store.Entry{List: store.Alias, Key: k, Target: "taro@example.jp", Owner: "taro@example.jp"},
			func(l *lists.Lists) bool { _, ok := l.Alias(k); return ok }
	default:
		k := fmt.Sprintf("sender%d@partner.test", i)
		return store.Entry{List: store.Relay, Key: k, Kind: store.KindSender},
			func(l *lists.Lists) bool { return l.RelaySender(k) }
	}
}

// BenchmarkPropagation makes 1,000 list changes (BLACK, DECOY, WHITE, ALIAS, RELAY in turn)
// one after another on node A's store and measures, for each, the time from the start of
// the Put on A until the lookup answers accordingly on every follower node. Reported: p50,
// p99 and max over the changes of all iterations (run with -benchtime=1x for exactly 1,000).
func BenchmarkPropagation(b *testing.B) {
	for _, followers := range []int{1, 3} {
		b.Run(fmt.Sprintf("followers=%d", followers), func(b *testing.B) {
			dsn, _ := testenv.PostgresSchema(b)
			a := openPG(b, dsn)
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			defer wg.Wait()
			defer cancel()
			var ls []*lists.Lists
			for range followers {
				ls = append(ls, follower(b, ctx, &wg, dsn))
			}
			const perIter = 1000
			var delays, puts []time.Duration
			n := 0
			for b.Loop() {
				for range perIter {
					n++
					e, seen := change(n)
					start := time.Now()
					if err := a.Put(ctx, e); err != nil {
						b.Fatal(err)
					}
					puts = append(puts, time.Since(start))
					for _, l := range ls {
						for !seen(l) {
							if time.Since(start) > 5*time.Second {
								b.Fatalf("change %d (%s %s) not seen after 5s", n, e.List, e.Key)
							}
							time.Sleep(20 * time.Microsecond)
						}
					}
					delays = append(delays, time.Since(start))
				}
			}
			slices.Sort(delays)
			slices.Sort(puts)
			ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
			pct := func(d []time.Duration, p int) time.Duration { return d[min(len(d)-1, len(d)*p/100)] }
			b.ReportMetric(ms(pct(delays, 50)), "p50-ms")
			b.ReportMetric(ms(pct(delays, 99)), "p99-ms")
			b.ReportMetric(ms(delays[len(delays)-1]), "max-ms")
			b.ReportMetric(ms(pct(puts, 50)), "put-p50-ms")
			b.ReportMetric(0, "ns/op")
			b.Logf("%d changes, %d follower(s): propagation p50 %v, p99 %v, max %v (the Put itself: p50 %v)", len(delays), followers,
				pct(delays, 50), pct(delays, 99), delays[len(delays)-1], pct(puts, 50))
		})
	}
}
