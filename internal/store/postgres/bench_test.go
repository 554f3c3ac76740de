package postgres

import (
	"context"
	"fmt"
	"github.com/sekisho/sekisho/internal/testenv"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/lists"
	"github.com/sekisho/sekisho/internal/store"
)

// BenchmarkPut puts new entries one after another: one round trip and one commit each.
func BenchmarkPut(b *testing.B) {
	dsn, _ := testenv.PostgresSchema(b)
	d := open(b, dsn)
	ctx := context.Background()
	i := 0
	for b.Loop() {
		i++
		if err := d.Put(ctx, store.Entry{List: store.Black, Key: fmt.Sprintf("198.51.100.%d/%d", i%256, i), Source: "bench"}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPutParallel puts from two nodes (two pools) and many goroutines at once: change
// log appends are serialized, so this is the cluster's ceiling for list changes.
func BenchmarkPutParallel(b *testing.B) {
	dsn, _ := testenv.PostgresSchema(b)
	nodes := []*DB{open(b, dsn), open(b, dsn)}
	ctx := context.Background()
	var n atomic.Int64
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		i := n.Add(1)
		d := nodes[i%2]
		for pb.Next() {
			key := fmt.Sprintf("k%d@x.test", n.Add(1))
			if err := d.Put(ctx, store.Entry{List: store.Decoy, Key: key}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// fill appends n changes (and entries) directly, for the readers' benchmarks.
func fill(b *testing.B, d *DB, n int) {
	b.Helper()
	ctx := context.Background()
	_, err := d.pool.Exec(ctx, `
		WITH e AS (INSERT INTO entries (list, key, note, created, updated)
			SELECT 'decoy', 'k' || i || '@x.test', 'filler', 1, 1 FROM generate_series(1, $1) AS i
			RETURNING `+entryCols+`)
		INSERT INTO changes (seq, at, op, `+entryCols+`)
		SELECT row_number() OVER (), 1, 'put', e.* FROM e`, n)
	if err == nil {
		_, err = d.pool.Exec(ctx, `UPDATE change_seq SET seq = $1`, n)
	}
	if err == nil { // as autovacuum would have done: statistics, hint bits
		_, err = d.pool.Exec(ctx, `VACUUM ANALYZE entries, changes, change_seq`)
	}
	if err != nil {
		b.Fatal(err)
	}
}

// BenchmarkChanges reads the log a page of 1000 changes at a time (catching up).
func BenchmarkChanges(b *testing.B) {
	dsn, _ := testenv.PostgresSchema(b)
	d := open(b, dsn)
	const total, page = 100000, 1000
	fill(b, d, total)
	ctx := context.Background()
	var since int64
	for b.Loop() {
		ch, err := d.Changes(ctx, since, page)
		if err != nil || len(ch) != page {
			b.Fatalf("Changes(%d) = %d, %v", since, len(ch), err)
		}
		since = (since + page) % total
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*page), "ns/change")
}

// BenchmarkChangesIdle is a follower's poll when nothing changed, what every node does at its
// follow interval.
func BenchmarkChangesIdle(b *testing.B) {
	dsn, _ := testenv.PostgresSchema(b)
	d := open(b, dsn)
	fill(b, d, 100000)
	ctx := context.Background()
	for b.Loop() {
		ch, err := d.Changes(ctx, 100000, 1000)
		if err != nil || len(ch) != 0 {
			b.Fatalf("Changes = %d, %v", len(ch), err)
		}
	}
}

// BenchmarkPropagation measures a change on node B until node A's lists have it, A woken by
// Listen (its polling interval is an hour), and reports the p50 and p99.
func BenchmarkPropagation(b *testing.B) {
	dsn, _ := testenv.PostgresSchema(b)
	a, nodeB := open(b, dsn), open(b, dsn)
	ctx, cancel := context.WithCancel(context.Background())
	wake := make(chan struct{}, 1)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() { a.Listen(ctx, wake) })
	<-wake
	l := lists.New()
	if err := l.Reload(ctx, a); err != nil {
		b.Fatal(err)
	}
	wg.Go(func() { l.Follow(ctx, a, time.Hour, wake, a.log) })
	var delays []time.Duration
	i := 0
	for b.Loop() {
		i++
		key := fmt.Sprintf("d%d@x.test", i)
		start := time.Now()
		if err := nodeB.Put(ctx, store.Entry{List: store.Decoy, Key: key}); err != nil {
			b.Fatal(err)
		}
		for !l.Decoy(key) {
			if time.Since(start) > 5*time.Second {
				b.Fatalf("change %d not seen after 5s", i)
			}
			time.Sleep(50 * time.Microsecond)
		}
		delays = append(delays, time.Since(start))
	}
	slices.Sort(delays)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(delays[len(delays)/2]), "p50-ms")
	b.ReportMetric(ms(delays[len(delays)*99/100]), "p99-ms")
}
