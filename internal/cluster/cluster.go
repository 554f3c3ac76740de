// Package cluster is what sekisho nodes sharing one store do together: each registers itself
// with a heartbeat (the admin pages list the nodes), and periodic jobs (expiry, the outbox,
// dropping nodes long gone) run on one node at a time instead of on every node.
//
// Both store backends implement Registry. On PostgreSQL the job lock is a session-level
// advisory lock; on SQLite, which serves one node, it is always granted.
package cluster

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"time"
)

// Timings of the node registry.
const (
	// HeartbeatEvery is how often a node renews its entry.
	HeartbeatEvery = 10 * time.Second
	// NodeTTL is how long a node may stay silent before DropSilent removes its entry.
	NodeTTL = time.Hour
)

// Node is one sekisho process in the registry.
type Node struct {
	ID        string           `json:"id"`
	Version   string           `json:"version"`
	Started   time.Time        `json:"started"`
	Heartbeat time.Time        `json:"heartbeat"`
	Counters  map[string]int64 `json:"counters,omitempty"`
}

// Registry is the part of a store that nodes share beyond the lists: the node entries and
// the job locks. *sqlite.DB and *postgres.DB implement it.
type Registry interface {
	// Heartbeat inserts or replaces the entry of n.ID.
	Heartbeat(ctx context.Context, n Node) error
	// Nodes lists every node entry, ordered by ID.
	Nodes(ctx context.Context) ([]Node, error)
	// DropNodes deletes the entries whose last heartbeat is before olderThan and tells how
	// many went.
	DropNodes(ctx context.Context, olderThan time.Time) (int, error)
	// TryLock takes the lock called name without waiting. ok is false when another node
	// holds it. The lock is held until release is called, or until the store loses the
	// connection that holds it (the database then frees it for the others).
	//
	// Locks are re-entrant per store handle: TryLock of a name the same handle holds
	// succeeds and must be released once more. A holder calls TryLock again to learn that
	// it still holds the lock (ok) or lost it (not ok, or an error).
	TryLock(ctx context.Context, name string) (release func(), ok bool, err error)
}

// Beat keeps n's entry in reg current until ctx ends: a heartbeat at once and then every
// interval, with the counters of that moment (counters may be nil). Failures are logged
// once until a heartbeat succeeds again.
func Beat(ctx context.Context, reg Registry, n Node, interval time.Duration, counters func() map[string]int64, log *slog.Logger) {
	if n.Started.IsZero() {
		n.Started = time.Now()
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	failing := false
	for {
		n.Heartbeat = time.Now()
		if counters != nil {
			n.Counters = maps.Clone(counters())
		}
		err := reg.Heartbeat(ctx, n)
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			log.Warn("node heartbeat failed", "node", n.ID, "err", err)
			failing = true
		case err == nil && failing:
			log.Info("node heartbeat recovered", "node", n.ID)
			failing = false
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// RunOnce runs job every interval on one node of the cluster at a time, until ctx ends.
//
// Every node calls RunOnce with the same name. Each one tries the lock called name at once
// and then at every tick; the node that gets it keeps it and runs job at each of its ticks,
// the others only try again. Before each run the holder makes sure it still holds the lock
// (a database restart frees every lock); when it does not, it stops running job and tries
// again like the others. When the holder stops or dies, the database frees the lock and
// another node takes over at its next tick. A job's error is logged; the lock is kept.
//
// Jobs should still be safe to run twice: a holder cut off from the database is only told
// at its next tick, and the database may free its lock before that.
func RunOnce(ctx context.Context, reg Registry, name string, interval time.Duration, job func(context.Context) error, log *slog.Logger) {
	log = log.With("job", name)
	var held func() // the release of the lock while this node holds it
	defer func() {
		if held != nil {
			held()
		}
	}()
	t := time.NewTicker(interval)
	defer t.Stop()
	for ctx.Err() == nil {
		rel, ok, err := reg.TryLock(ctx, name)
		switch {
		case err != nil || !ok:
			if held != nil {
				held()
				held = nil
				if ctx.Err() == nil {
					log.Warn("job lock lost; another node may run the job", "err", err)
				}
			} else if err != nil {
				log.Debug("job lock", "err", err)
			}
		default:
			if held != nil {
				held() // keep one hold: rel stands for it now
			} else {
				log.Info("job lock taken: this node runs the job")
			}
			held = rel
			if err := job(ctx); err != nil && !errors.Is(err, context.Canceled) {
				log.Warn("job failed", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// DropSilent is the job that removes the entries of nodes silent for longer than after
// (NodeTTL when 0). Run it with RunOnce.
func DropSilent(reg Registry, after time.Duration, log *slog.Logger) func(context.Context) error {
	if after <= 0 {
		after = NodeTTL
	}
	return func(ctx context.Context) error {
		n, err := reg.DropNodes(ctx, time.Now().Add(-after))
		if err != nil {
			return err
		}
		if n > 0 {
			log.Info("silent nodes dropped", "count", n, "silent_for", after)
		}
		return nil
	}
}
