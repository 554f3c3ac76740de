package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/sekisho/sekisho/internal/digest"
	"github.com/sekisho/sekisho/internal/store"
)

var _ digest.Ledger = (*DB)(nil)

// QueueDigest implements digest.Ledger: the day's row for owner and the outbox message are
// written in one transaction, or neither when the row is there already (two nodes at once:
// the primary key lets one of them in). Rows older than digest.Keep go in the same
// transaction.
func (d *DB) QueueDigest(ctx context.Context, day, owner string, m *store.OutMsg) (bool, error) {
	queued := false
	err := pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		now := d.now()
		if _, err := tx.Exec(ctx, `DELETE FROM digests WHERE created < $1`, ms(now.Add(-digest.Keep))); err != nil {
			return fmt.Errorf("prune: %w", err)
		}
		tag, err := tx.Exec(ctx, `INSERT INTO digests (day, owner, created) VALUES ($1, $2, $3) ON CONFLICT (day, owner) DO NOTHING`,
			day, owner, ms(now))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return nil
		}
		queued = true
		return d.outboxInsert(ctx, tx, m)
	})
	if err != nil {
		return false, fmt.Errorf("queue digest %s %s: %w", day, owner, err)
	}
	return queued, nil
}
