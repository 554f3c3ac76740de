package lists

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/sekisho/sekisho/internal/store"
)

// Source is what Follow reads: the snapshot and the change log of a store.
type Source interface {
	Snapshot(ctx context.Context) ([]store.Entry, int64, error)
	Changes(ctx context.Context, since int64, limit int) ([]store.Change, error)
}

// Reload loads a full snapshot of src into l.
func (l *Lists) Reload(ctx context.Context, src Source) error {
	entries, seq, err := src.Snapshot(ctx)
	if err != nil {
		return fmt.Errorf("load lists: %w", err)
	}
	l.Load(entries, seq)
	return nil
}

// CatchUp applies every change of src after l's sequence number, reloading the whole
// snapshot when the log no longer reaches back that far.
func (l *Lists) CatchUp(ctx context.Context, src Source) error {
	for {
		changes, err := src.Changes(ctx, l.Seq(), 1000)
		if errors.Is(err, store.ErrLogPruned) {
			return l.Reload(ctx, src)
		}
		if err != nil {
			return fmt.Errorf("follow changes: %w", err)
		}
		if len(changes) == 0 {
			return nil
		}
		l.Apply(changes)
	}
}

// Follow keeps l current with src until ctx ends, polling every interval (wake, when not nil,
// triggers an immediate poll, e.g. after a local write; log nil discards). Errors are logged
// and retried:
// while the store is unreachable l keeps answering from memory.
func (l *Lists) Follow(ctx context.Context, src Source, interval time.Duration, wake <-chan struct{}, log *slog.Logger) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-wake:
		}
		err := l.CatchUp(ctx, src)
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			log.Warn("lists follow failed", "err", err)
			failing = true
		case err == nil && failing:
			log.Info("lists follow recovered", "seq", l.Seq())
			failing = false
		}
	}
}
