package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/sekisho/sekisho/internal/cluster"
)

var _ cluster.Registry = (*DB)(nil)

// Heartbeat implements cluster.Registry.
func (s *DB) Heartbeat(ctx context.Context, n cluster.Node) error {
	counters := []byte("{}")
	if n.Counters != nil {
		var err error
		if counters, err = json.Marshal(n.Counters); err != nil {
			return fmt.Errorf("heartbeat %s: %w", n.ID, err)
		}
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO nodes (node_id, version, started, heartbeat, counters) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (node_id) DO UPDATE SET version = excluded.version, started = excluded.started,
			heartbeat = excluded.heartbeat, counters = excluded.counters`,
		n.ID, n.Version, ms(n.Started), ms(n.Heartbeat), string(counters))
	if err != nil {
		return fmt.Errorf("heartbeat %s: %w", n.ID, err)
	}
	return nil
}

// Nodes implements cluster.Registry.
func (s *DB) Nodes(ctx context.Context) ([]cluster.Node, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT node_id, version, started, heartbeat, counters FROM nodes ORDER BY node_id`)
	if err != nil {
		return nil, fmt.Errorf("nodes: %w", err)
	}
	defer rows.Close()
	var out []cluster.Node
	for rows.Next() {
		var n cluster.Node
		var started, beat int64
		var counters string
		if err := rows.Scan(&n.ID, &n.Version, &started, &beat, &counters); err != nil {
			return nil, fmt.Errorf("nodes: %w", err)
		}
		n.Started, n.Heartbeat = fromMS(started), fromMS(beat)
		if err := json.Unmarshal([]byte(counters), &n.Counters); err != nil {
			return nil, fmt.Errorf("nodes: counters of %s: %w", n.ID, err)
		}
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("nodes: %w", err)
	}
	return out, nil
}

// DropNodes implements cluster.Registry.
func (s *DB) DropNodes(ctx context.Context, olderThan time.Time) (int, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM nodes WHERE heartbeat < ?`, ms(olderThan))
	if err != nil {
		return 0, fmt.Errorf("drop nodes: %w", err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// TryLock implements cluster.Registry. A SQLite database serves one node (the command line
// that shares its file runs no jobs), so the lock is always granted, and release does
// nothing. Likewise OutboxDue leases nothing: that node's one sender is the only reader.
func (s *DB) TryLock(ctx context.Context, name string) (release func(), ok bool, err error) {
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	return func() {}, true, nil
}
