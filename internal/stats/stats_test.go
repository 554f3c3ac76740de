package stats_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/stats"
	"github.com/sekisho/sekisho/internal/store"
	"github.com/sekisho/sekisho/internal/store/sqlite"
	"github.com/sekisho/sekisho/internal/testenv"
)

func openStore(t *testing.T, path string) *sqlite.DB {
	t.Helper()
	st, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// counters stands in for the metrics: cumulative totals that only grow (until a restart).
type counters struct {
	mu sync.Mutex
	m  map[string]int64
}

func (c *counters) add(name string, n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]int64{}
	}
	c.m[name] += n
}

func (c *counters) totals() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int64{}
	for k, v := range c.m {
		out[k] = v
	}
	return out
}

// minute returns the store's counts in the minute of at, by name.
func minute(t *testing.T, st store.Store, at time.Time) map[string]int64 {
	t.Helper()
	counts, err := st.Stats(t.Context(), store.Minute(at), store.Minute(at).Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, c := range counts {
		out[c.Name] += c.Count
	}
	return out
}

func TestRecorderWritesDeltas(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sekisho.db")
	st := openStore(t, path)
	clk := testenv.NewClock(time.Date(2026, 11, 22, 10, 0, 30, 0, time.UTC))
	var c counters
	r := &stats.Recorder{Store: st, Source: c.totals, Now: clk.Now}

	c.add(stats.Pass, 5)
	c.add(stats.Held, 2)
	if err := r.Record(t.Context()); err != nil {
		t.Fatal(err)
	}
	c.add(stats.Pass, 3)
	clk.Advance(time.Minute)
	if err := r.Record(t.Context()); err != nil {
		t.Fatal(err)
	}
	first, second := minute(t, st, clk.Now().Add(-time.Minute)), minute(t, st, clk.Now())
	if first[stats.Pass] != 5 || first[stats.Held] != 2 || second[stats.Pass] != 3 || second[stats.Held] != 0 {
		t.Errorf("minutes: %v then %v; want pass 5 held 2, then pass 3", first, second)
	}

	// A second node adds its own counts to the same minute.
	var c2 counters
	c2.add(stats.Pass, 10)
	if err := (&stats.Recorder{Store: st, Source: c2.totals, Now: clk.Now}).Record(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := minute(t, st, clk.Now())[stats.Pass]; got != 13 {
		t.Errorf("two nodes in one minute: pass %d, want 13", got)
	}

	// A write that fails loses nothing: the counts go with the next one.
	broken, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "broken.db"))
	if err != nil {
		t.Fatal(err)
	}
	broken.Close()
	r.Store = broken
	c.add(stats.Decoy, 4)
	if err := r.Record(t.Context()); err == nil {
		t.Fatal("Record on a closed store: no error")
	}
	r.Store = st
	c.add(stats.Decoy, 1)
	clk.Advance(time.Minute)
	if err := r.Record(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := minute(t, st, clk.Now())[stats.Decoy]; got != 5 {
		t.Errorf("after a failed write: decoy %d, want 5", got)
	}

	// Totals that went down are a restart: counted from zero.
	r2 := &stats.Recorder{Store: st, Source: func() map[string]int64 { return map[string]int64{stats.Confirmed: 7} }, Now: clk.Now}
	r2.Record(t.Context())
	r2.Source = func() map[string]int64 { return map[string]int64{stats.Confirmed: 2} }
	if err := r2.Record(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := minute(t, st, clk.Now())[stats.Confirmed]; got != 9 {
		t.Errorf("after a restart: confirmed %d, want 9", got)
	}
}

// Run writes every period, and once more when it stops, so the last counts are not lost.
func TestRecorderRunFlushesAtShutdown(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "sekisho.db"))
	var c counters
	r := &stats.Recorder{Store: st, Source: c.totals, Period: 20 * time.Millisecond, Log: testenv.Logger(t)}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	c.add(stats.Pass, 1)
	total := func() int64 {
		counts, err := st.Stats(t.Context(), time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		for _, x := range counts {
			n += x.Count
		}
		return n
	}
	deadline := time.Now().Add(5 * time.Second)
	for total() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("after 5 s the recorder wrote %d, want 1", total())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	// An hour's period: no tick comes, only the write at shutdown.
	r = &stats.Recorder{Store: st, Source: c.totals, Period: time.Hour, Log: testenv.Logger(t)}
	ctx, cancel = context.WithCancel(t.Context())
	done = make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	c.add(stats.Pass, 2)
	cancel()
	<-done
	if got := total(); got != 1+3 {
		t.Errorf("after shutdown the store holds %d, want 4 (1, then the 3 counted since the start)", got)
	}
}
