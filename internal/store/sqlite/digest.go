package sqlite

import (
	"context"
	"fmt"

	"github.com/sekisho/sekisho/internal/digest"
	"github.com/sekisho/sekisho/internal/store"
)

var _ digest.Ledger = (*DB)(nil)

// QueueDigest implements digest.Ledger: the day's row for owner and the outbox message are
// written in one transaction, or neither when the row is there already. Rows older than
// digest.Keep go in the same transaction.
func (s *DB) QueueDigest(ctx context.Context, day, owner string, m *store.OutMsg) (bool, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("queue digest %s %s: %w", day, owner, err)
	}
	defer tx.Rollback()
	now := s.now()
	if _, err := tx.ExecContext(ctx, `DELETE FROM digests WHERE created < ?`, ms(now.Add(-digest.Keep))); err != nil {
		return false, fmt.Errorf("queue digest: prune: %w", err)
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO digests (day, owner, created) VALUES (?, ?, ?) ON CONFLICT (day, owner) DO NOTHING`,
		day, owner, ms(now))
	if err != nil {
		return false, fmt.Errorf("queue digest %s %s: %w", day, owner, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return false, nil
	}
	if err := s.outboxInsert(ctx, tx, m); err != nil {
		return false, fmt.Errorf("queue digest %s %s: %w", day, owner, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("queue digest %s %s: %w", day, owner, err)
	}
	return true, nil
}
