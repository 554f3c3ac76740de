package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sekisho/sekisho/internal/store"
	"github.com/sekisho/sekisho/internal/store/internal/sqlrow"
)

// PutSession implements store.Store.
func (s *DB) PutSession(ctx context.Context, se store.Session) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO sessions (id, user, csrf, created, expires) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET expires = excluded.expires`,
		se.ID, se.User, se.CSRF, ms(se.Created), ms(se.Expires))
	if err != nil {
		return fmt.Errorf("put session: %w", err)
	}
	return nil
}

// GetSession implements store.Store.
func (s *DB) GetSession(ctx context.Context, id string, now time.Time) (store.Session, error) {
	se, err := sqlrow.Session(s.db.QueryRowContext(ctx, `SELECT user, csrf, created, expires FROM sessions WHERE id = ? AND expires > ?`,
		id, ms(now)), id)
	if errors.Is(err, sql.ErrNoRows) {
		return se, store.ErrNotFound
	}
	if err != nil {
		return se, fmt.Errorf("get session: %w", err)
	}
	return se, nil
}

// DeleteSession implements store.Store.
func (s *DB) DeleteSession(ctx context.Context, id string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE id = ?`, id); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// DeleteUserSessions implements store.Store.
func (s *DB) DeleteUserSessions(ctx context.Context, user string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE user = ?`, user); err != nil {
		return fmt.Errorf("delete sessions of %s: %w", user, err)
	}
	return nil
}

// SessionsExpire implements store.Store.
func (s *DB) SessionsExpire(ctx context.Context, now time.Time) (int, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE expires <= ?`, ms(now))
	if err != nil {
		return 0, fmt.Errorf("expire sessions: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// PutToken implements store.Store.
func (s *DB) PutToken(ctx context.Context, t store.Token) error {
	if t.Created.IsZero() {
		t.Created = s.now()
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO tokens (name, hash, owner, created) VALUES (?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET hash = excluded.hash, owner = excluded.owner, created = excluded.created, last_used = 0`,
		t.Name, t.Hash, t.Owner, ms(t.Created))
	if err != nil {
		return fmt.Errorf("put token %s: %w", t.Name, err)
	}
	return nil
}

// TokenByHash implements store.Store.
func (s *DB) TokenByHash(ctx context.Context, hash string, now time.Time) (store.Token, error) {
	t, err := sqlrow.Token(s.db.QueryRowContext(ctx, `UPDATE tokens SET last_used = ? WHERE hash = ?
		RETURNING `+sqlrow.TokenCols, ms(now), hash))
	if errors.Is(err, sql.ErrNoRows) {
		return t, store.ErrNotFound
	}
	if err != nil {
		return t, fmt.Errorf("token: %w", err)
	}
	return t, nil
}

// Tokens implements store.Store.
func (s *DB) Tokens(ctx context.Context) ([]store.Token, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+sqlrow.TokenCols+` FROM tokens ORDER BY name`)
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
func (s *DB) DeleteToken(ctx context.Context, name string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM tokens WHERE name = ?`, name)
	if err != nil {
		return fmt.Errorf("delete token %s: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return store.ErrNotFound
	}
	return nil
}

// AddStats implements store.Store.
func (s *DB) AddStats(ctx context.Context, counts []store.StatCount) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("add stats: %w", err)
	}
	defer tx.Rollback()
	for _, c := range counts {
		if _, err := tx.ExecContext(ctx, `INSERT INTO stats (bucket, name, count) VALUES (?, ?, ?)
			ON CONFLICT (bucket, name) DO UPDATE SET count = count + excluded.count`,
			ms(store.Minute(c.Bucket)), c.Name, c.Count); err != nil {
			return fmt.Errorf("add stats: %w", err)
		}
	}
	return tx.Commit()
}

// Stats implements store.Store.
func (s *DB) Stats(ctx context.Context, since, until time.Time) ([]store.StatCount, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+sqlrow.StatCols+` FROM stats WHERE bucket >= ? AND bucket < ? ORDER BY bucket, name`,
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
func (s *DB) PutTrap(ctx context.Context, t store.Trap) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO traps (address, ip, user_agent, url, planted) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (address) DO NOTHING`, t.Address, t.IP, t.UserAgent, t.URL, ms(t.Planted))
	if err != nil {
		return fmt.Errorf("put trap %s: %w", t.Address, err)
	}
	return nil
}

// GetTrap implements store.Store.
func (s *DB) GetTrap(ctx context.Context, address string) (store.Trap, error) {
	t, err := sqlrow.Trap(s.db.QueryRowContext(ctx, `SELECT `+sqlrow.TrapCols+` FROM traps WHERE address = ?`, address))
	if errors.Is(err, sql.ErrNoRows) {
		return t, store.ErrNotFound
	}
	if err != nil {
		return t, fmt.Errorf("get trap %s: %w", address, err)
	}
	return t, nil
}

// AddTrapHit implements store.Store.
func (s *DB) AddTrapHit(ctx context.Context, address, ip, sender string, at time.Time) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO trap_hits (address, ip, sender, at) VALUES (?, ?, ?, ?)`, address, ip, sender, ms(at))
	if err != nil {
		return fmt.Errorf("trap hit %s: %w", address, err)
	}
	return nil
}

// TrapHits implements store.Store.
func (s *DB) TrapHits(ctx context.Context, limit, offset int) ([]store.TrapHit, error) {
	if limit <= 0 {
		limit = -1
	}
	rows, err := s.db.QueryContext(ctx, sqlrow.TrapHitsFrom+` LIMIT ? OFFSET ?`, limit, offset)
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
func (s *DB) TrapsExpire(ctx context.Context, before time.Time) (int, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM traps WHERE planted < ?`, ms(before))
	if err != nil {
		return 0, fmt.Errorf("expire traps: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// AliasSenders implements store.Store.
func (s *DB) AliasSenders(ctx context.Context, aliases []string) (map[string][]store.AliasSender, error) {
	out := make(map[string][]store.AliasSender, len(aliases))
	if len(aliases) == 0 {
		return out, nil
	}
	args := make([]any, len(aliases))
	for i, a := range aliases {
		args[i] = a
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+sqlrow.AliasSenderCols+` FROM alias_senders
		WHERE alias IN (?`+strings.Repeat(", ?", len(aliases)-1)+`) ORDER BY alias, last DESC, domain`, args...)
	if err != nil {
		return nil, fmt.Errorf("alias senders: %w", err)
	}
	defer rows.Close()
	if err := sqlrow.AliasSenders(rows, out); err != nil {
		return nil, fmt.Errorf("alias senders: %w", err)
	}
	return out, nil
}
