package stats_test

import (
	"context"
	"path/filepath"
	"slices"
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

func TestSeries(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "sekisho.db"))
	now := time.Date(2026, 11, 22, 10, 37, 20, 0, time.UTC)
	at := func(d time.Duration) time.Time { return store.Minute(now.Add(-d)) }
	err := st.AddStats(t.Context(), []store.StatCount{
		{Bucket: at(0), Name: stats.Pass, Count: 1},
		{Bucket: at(time.Minute), Name: stats.Pass, Count: 2},
		{Bucket: at(time.Minute), Name: stats.Held, Count: 5},
		{Bucket: at(20 * time.Minute), Name: stats.Pass, Count: 4},
		{Bucket: at(3 * time.Hour), Name: stats.Pass, Count: 8},
		{Bucket: at(30 * time.Hour), Name: stats.Decoy, Count: 16},
		{Bucket: at(8 * 24 * time.Hour), Name: stats.Pass, Count: 32}, // beyond a week
		{Bucket: at(time.Minute), Name: "other", Count: 64},           // not asked for
	})
	if err != nil {
		t.Fatal(err)
	}
	names := []string{stats.Pass, stats.Held, stats.Decoy}
	tests := []struct {
		name         string
		window, step time.Duration
		steps        int
		first        time.Time
		sums         map[string]int64
		last         map[string]int64 // the step holding now
	}{
		{"hour by minute", time.Hour, time.Minute, 60, time.Date(2026, 11, 22, 9, 38, 0, 0, time.UTC),
			map[string]int64{stats.Pass: 7, stats.Held: 5}, map[string]int64{stats.Pass: 1}},
		{"day by 15 minutes", 24 * time.Hour, 15 * time.Minute, 96, time.Date(2026, 11, 21, 10, 45, 0, 0, time.UTC),
			map[string]int64{stats.Pass: 15, stats.Held: 5}, map[string]int64{stats.Pass: 3, stats.Held: 5}},
		{"week by 2 hours", 7 * 24 * time.Hour, 2 * time.Hour, 84, time.Date(2026, 11, 15, 12, 0, 0, 0, time.UTC),
			map[string]int64{stats.Pass: 15, stats.Held: 5, stats.Decoy: 16}, map[string]int64{stats.Pass: 7, stats.Held: 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			series, times, err := stats.Series(t.Context(), st, names, tt.window, tt.step, now)
			if err != nil {
				t.Fatal(err)
			}
			if len(times) != tt.steps || !times[0].Equal(tt.first) || !times[len(times)-1].Add(tt.step).After(now) || times[len(times)-1].After(now) {
				t.Fatalf("%d steps from %v to %v; want %d from %v, the last holding %v", len(times), times[0], times[len(times)-1], tt.steps, tt.first, now)
			}
			for _, name := range names {
				s := series[name]
				if len(s) != tt.steps {
					t.Fatalf("%s: %d values, want %d", name, len(s), tt.steps)
				}
				var sum int64
				for _, v := range s {
					sum += v
				}
				if sum != tt.sums[name] || s[len(s)-1] != tt.last[name] {
					t.Errorf("%s: sum %d, last step %d; want %d and %d (%v)", name, sum, s[len(s)-1], tt.sums[name], tt.last[name], s)
				}
			}
			if _, ok := series["other"]; ok {
				t.Error("a name not asked for is in the series")
			}
		})
	}
	// The hour by minute, exactly: zeros filled in.
	series, _, _ := stats.Series(t.Context(), st, []string{stats.Pass}, time.Hour, time.Minute, now)
	want := make([]int64, 60)
	want[59], want[58], want[39] = 1, 2, 4
	if !slices.Equal(series[stats.Pass], want) {
		t.Errorf("pass by minute: %v, want %v", series[stats.Pass], want)
	}
	for _, bad := range [][2]time.Duration{{time.Hour, 0}, {time.Hour, 30 * time.Second}, {time.Hour, 7 * time.Minute}, {time.Minute, time.Hour}} {
		if _, _, err := stats.Series(t.Context(), st, names, bad[0], bad[1], now); err == nil {
			t.Errorf("window %v step %v: no error", bad[0], bad[1])
		}
	}
}
