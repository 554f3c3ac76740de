// Package stats keeps counts of decisions over time for the admin charts: a Recorder turns
// the process's cumulative counters into per-minute counts in the store, and Series reads
// them back summed into steps. Every node adds its own counts to the same minute buckets, so
// a cluster's chart is the sum of its nodes.
package stats

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/sekisho/sekisho/internal/store"
)

// Decision names the Recorder's source is expected to report.
const (
	Pass         = "pass"
	Held         = "held"
	Confirmed    = "confirmed"
	Decoy        = "decoy"
	RelayRefused = "relay_refused"
	ProxyRefused = "proxy_refused"
)

// DefaultPeriod is how often a Recorder writes by default: the buckets' size.
const DefaultPeriod = time.Minute

// flushTimeout bounds the last write at shutdown.
const flushTimeout = 10 * time.Second

// Decisions are the names charted, in the order the admin pages show them.
func Decisions() []string {
	return []string{Pass, Held, Confirmed, Decoy, RelayRefused, ProxyRefused}
}

// Recorder writes what its Source counted since the last write into the store's minute
// buckets, every Period and once more when Run ends.
type Recorder struct {
	Store store.Store
	// Source returns cumulative totals by name since the process started (for instance
	// metrics.Decisions). A total that went down is taken as a restart from zero.
	Source func() map[string]int64
	Period time.Duration // default DefaultPeriod
	Now    func() time.Time
	Log    *slog.Logger

	mu   sync.Mutex
	last map[string]int64 // totals already written
}

// Run records every Period until ctx ends, then records once more (with a context of its
// own: the store is still open until Run returns).
func (r *Recorder) Run(ctx context.Context) {
	period := r.Period
	if period <= 0 {
		period = DefaultPeriod
	}
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), flushTimeout)
			defer cancel()
			if err := r.Record(fctx); err != nil {
				r.log().Warn("record decision counts at shutdown", "err", err)
			}
			return
		case <-t.C:
			if err := r.Record(ctx); err != nil {
				r.log().Warn("record decision counts", "err", err)
			}
		}
	}
}

// Record reads the source and adds what it counted since the last successful Record to the
// current minute. After a failed write the counts wait for the next one; none is lost or
// counted twice.
func (r *Recorder) Record(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	totals := r.Source()
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	bucket := store.Minute(now())
	var counts []store.StatCount
	for _, name := range slices.Sorted(maps.Keys(totals)) {
		d := totals[name] - r.last[name]
		if totals[name] < r.last[name] {
			d = totals[name]
		}
		if d > 0 {
			counts = append(counts, store.StatCount{Bucket: bucket, Name: name, Count: d})
		}
	}
	if len(counts) > 0 {
		if err := r.Store.AddStats(ctx, counts); err != nil {
			return fmt.Errorf("record decision counts: %w", err)
		}
	}
	r.last = maps.Clone(totals)
	return nil
}

func (r *Recorder) log() *slog.Logger {
	if r.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Log
}

// Series sums the minute counts of the given names over window, ending with the step that
// holds now, in steps of step (a whole number of minutes that divides window), for a chart:
// for each name one count per step, zeros where nothing was counted, and the start of each
// step. Steps are aligned to multiples of step (from midnight UTC), so a chart drawn a
// minute later shows the same steps. Examples: 1h in 1m steps, 24h in 15m, 168h in 2h.
func Series(ctx context.Context, st store.Store, names []string, window, step time.Duration, now time.Time) (map[string][]int64, []time.Time, error) {
	if step < time.Minute || step%time.Minute != 0 || window < step || window%step != 0 {
		return nil, nil, fmt.Errorf("stats series: window %v and step %v: want whole minutes, the step dividing the window", window, step)
	}
	n := int(window / step)
	end := now.Truncate(step).Add(step)
	start := end.Add(-window)
	counts, err := st.Stats(ctx, start, end)
	if err != nil {
		return nil, nil, fmt.Errorf("stats series: %w", err)
	}
	out := make(map[string][]int64, len(names))
	for _, name := range names {
		out[name] = make([]int64, n)
	}
	for _, c := range counts {
		s, ok := out[c.Name]
		if !ok {
			continue
		}
		if i := int(c.Bucket.Sub(start) / step); i >= 0 && i < n {
			s[i] += c.Count
		}
	}
	times := make([]time.Time, n)
	for i := range times {
		times[i] = start.Add(time.Duration(i) * step)
	}
	return out, times, nil
}
