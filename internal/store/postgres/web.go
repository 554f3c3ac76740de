package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sekisho/sekisho/internal/store"
	"github.com/sekisho/sekisho/internal/store/internal/sqlrow"
)

// PutSession implements store.Store.
func (d *DB) PutSession(ctx context.Context, se store.Session) error {
	_, err := d.pool.Exec(ctx, `INSERT INTO sessions (id, "user", csrf, created, expires) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (id) DO UPDATE SET expires = excluded.expires`,
		se.ID, se.User, se.CSRF, ms(se.Created), ms(se.Expires))
	if err != nil {
		return fmt.Errorf("put session: %w", err)
	}
	return nil
}

// GetSession implements store.Store.
func (d *DB) GetSession(ctx context.Context, id string, now time.Time) (store.Session, error) {
	se, err := sqlrow.Session(d.pool.QueryRow(ctx, `SELECT "user", csrf, created, expires FROM sessions WHERE id = $1 AND expires > $2`,
		id, ms(now)), id)
	if errors.Is(err, pgx.ErrNoRows) {
		return se, store.ErrNotFound
	}
	if err != nil {
		return se, fmt.Errorf("get session: %w", err)
	}
	return se, nil
}

// DeleteSession implements store.Store.
func (d *DB) DeleteSession(ctx context.Context, id string) error {
	if _, err := d.pool.Exec(ctx, `DELETE FROM sessions WHERE id = $1`, id); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// DeleteUserSessions implements store.Store.
func (d *DB) DeleteUserSessions(ctx context.Context, user string) error {
	if _, err := d.pool.Exec(ctx, `DELETE FROM sessions WHERE "user" = $1`, user); err != nil {
		return fmt.Errorf("delete sessions of %s: %w", user, err)
	}
	return nil
}

// SessionsExpire implements store.Store.
func (d *DB) SessionsExpire(ctx context.Context, now time.Time) (int, error) {
	tag, err := d.pool.Exec(ctx, `DELETE FROM sessions WHERE expires <= $1`, ms(now))
	if err != nil {
		return 0, fmt.Errorf("expire sessions: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// PutToken implements store.Store.
func (d *DB) PutToken(ctx context.Context, t store.Token) error {
	if t.Created.IsZero() {
		t.Created = d.now()
	}
	_, err := d.pool.Exec(ctx, `INSERT INTO tokens (name, hash, owner, created) VALUES ($1, $2, $3, $4)
		ON CONFLICT (name) DO UPDATE SET hash = excluded.hash, owner = excluded.owner, created = excluded.created, last_used = 0`,
		t.Name, t.Hash, t.Owner, ms(t.Created))
	if err != nil {
		return fmt.Errorf("put token %s: %w", t.Name, err)
	}
	return nil
}

// TokenByHash implements store.Store.
func (d *DB) TokenByHash(ctx context.Context, hash string, now time.Time) (store.Token, error) {
	t, err := sqlrow.Token(d.pool.QueryRow(ctx, `UPDATE tokens SET last_used = $1 WHERE hash = $2
		RETURNING `+sqlrow.TokenCols, ms(now), hash))
	if errors.Is(err, pgx.ErrNoRows) {
		return t, store.ErrNotFound
	}
	if err != nil {
		return t, fmt.Errorf("token: %w", err)
	}
	return t, nil
}

// Tokens implements store.Store.
func (d *DB) Tokens(ctx context.Context) ([]store.Token, error) {
	rows, err := d.pool.Query(ctx, `SELECT `+sqlrow.TokenCols+` FROM tokens ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("tokens: %w", err)
	}
	defer rows.Close()
	out, err := sqlrow.All(rows, sqlrow.Token)
	if err != nil {
		return nil, fmt.Errorf("tokens: %w", err)
	}
	return out, nil
}

// DeleteToken implements store.Store.
func (d *DB) DeleteToken(ctx context.Context, name string) error {
	tag, err := d.pool.Exec(ctx, `DELETE FROM tokens WHERE name = $1`, name)
	if err != nil {
		return fmt.Errorf("delete token %s: %w", name, err)
	}
	if tag.RowsAffected() == 0 {
		return store.ErrNotFound
	}
	return nil
}

// AddStats implements store.Store.
func (d *DB) AddStats(ctx context.Context, counts []store.StatCount) error {
	b := &pgx.Batch{}
	for _, c := range counts {
		b.Queue(`INSERT INTO stats (bucket, name, count) VALUES ($1, $2, $3)
			ON CONFLICT (bucket, name) DO UPDATE SET count = stats.count + excluded.count`,
			ms(store.Minute(c.Bucket)), c.Name, c.Count)
	}
	if err := d.pool.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("add stats: %w", err)
	}
	return nil
}

// Stats implements store.Store.
func (d *DB) Stats(ctx context.Context, since, until time.Time) ([]store.StatCount, error) {
	rows, err := d.pool.Query(ctx, `SELECT `+sqlrow.StatCols+` FROM stats WHERE bucket >= $1 AND bucket < $2 ORDER BY bucket, name`,
		ms(since), ms(until))
	if err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	defer rows.Close()
	out, err := sqlrow.All(rows, sqlrow.Stat)
	if err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	return out, nil
}

// PutTrap implements store.Store.
func (d *DB) PutTrap(ctx context.Context, t store.Trap) error {
	_, err := d.pool.Exec(ctx, `INSERT INTO traps (address, ip, user_agent, url, planted) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (address) DO NOTHING`, t.Address, t.IP, t.UserAgent, t.URL, ms(t.Planted))
	if err != nil {
		return fmt.Errorf("put trap %s: %w", t.Address, err)
	}
	return nil
}

// GetTrap implements store.Store.
func (d *DB) GetTrap(ctx context.Context, address string) (store.Trap, error) {
	t, err := sqlrow.Trap(d.pool.QueryRow(ctx, `SELECT `+sqlrow.TrapCols+` FROM traps WHERE address = $1`, address))
	if errors.Is(err, pgx.ErrNoRows) {
		return t, store.ErrNotFound
	}
	if err != nil {
		return t, fmt.Errorf("get trap %s: %w", address, err)
	}
	return t, nil
}

// AddTrapHit implements store.Store.
func (d *DB) AddTrapHit(ctx context.Context, address, ip, sender string, at time.Time) error {
	_, err := d.pool.Exec(ctx, `INSERT INTO trap_hits (address, ip, sender, at) VALUES ($1, $2, $3, $4)`, address, ip, sender, ms(at))
	if err != nil {
		return fmt.Errorf("trap hit %s: %w", address, err)
	}
	return nil
}

// TrapHits implements store.Store.
func (d *DB) TrapHits(ctx context.Context, limit, offset int) ([]store.TrapHit, error) {
	var lim any
	if limit > 0 {
		lim = limit
	}
	rows, err := d.pool.Query(ctx, sqlrow.TrapHitsFrom+` LIMIT $1 OFFSET $2`, lim, offset)
	if err != nil {
		return nil, fmt.Errorf("trap hits: %w", err)
	}
	defer rows.Close()
	out, err := sqlrow.All(rows, sqlrow.TrapHit)
	if err != nil {
		return nil, fmt.Errorf("trap hits: %w", err)
	}
	return out, nil
}

// TrapsExpire implements store.Store.
func (d *DB) TrapsExpire(ctx context.Context, before time.Time) (int, error) {
	tag, err := d.pool.Exec(ctx, `DELETE FROM traps WHERE planted < $1`, ms(before))
	if err != nil {
		return 0, fmt.Errorf("expire traps: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// AliasSenders implements store.Store.
func (d *DB) AliasSenders(ctx context.Context, aliases []string) (map[string][]store.AliasSender, error) {
	out := make(map[string][]store.AliasSender, len(aliases))
	if len(aliases) == 0 {
		return out, nil
	}
	rows, err := d.pool.Query(ctx, `SELECT `+sqlrow.AliasSenderCols+` FROM alias_senders
		WHERE alias = ANY($1) ORDER BY alias, last DESC, domain`, aliases)
	if err != nil {
		return nil, fmt.Errorf("alias senders: %w", err)
	}
	defer rows.Close()
	if err := sqlrow.AliasSenders(rows, out); err != nil {
		return nil, fmt.Errorf("alias senders: %w", err)
	}
	return out, nil
}
