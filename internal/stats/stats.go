// Package stats keeps counts of decisions over time for the admin charts: a Recorder turns
// the process's cumulative counters into per-minute counts in the store (the admin overview
// sums them into steps). Every node adds its own counts to the same minute buckets, so a
// cluster's chart is the sum of its nodes.
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
