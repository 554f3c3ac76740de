package postgres

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sekisho/sekisho/internal/store"
	"github.com/sekisho/sekisho/internal/store/internal/sqlrow"
)

// PutUser implements store.Store.
func (d *DB) PutUser(ctx context.Context, u store.User) error {
	if u.Created.IsZero() {
		u.Created = d.now()
	}
	_, err := d.pool.Exec(ctx, `INSERT INTO users (address, password_hash, admin, created) VALUES ($1, $2, $3, $4)
		ON CONFLICT (address) DO UPDATE SET password_hash = excluded.password_hash, admin = excluded.admin`,
		u.Address, u.PasswordHash, u.Admin, ms(u.Created))
	if err != nil {
		return fmt.Errorf("put user %s: %w", u.Address, err)
	}
	return nil
}

func scanUser(r scanner) (store.User, error) {
	var u store.User
	var created int64
	err := r.Scan(&u.Address, &u.PasswordHash, &u.Admin, &created)
	u.Created = fromMS(created)
	return u, err
}

// GetUser implements store.Store.
func (d *DB) GetUser(ctx context.Context, address string) (store.User, error) {
	u, err := scanUser(d.pool.QueryRow(ctx, `SELECT address, password_hash, admin, created FROM users WHERE address = $1`, address))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.User{}, store.ErrNotFound
	}
	if err != nil {
		return store.User{}, fmt.Errorf("get user %s: %w", address, err)
	}
	return u, nil
}

// Users implements store.Store.
func (d *DB) Users(ctx context.Context) ([]store.User, error) {
	rows, err := d.pool.Query(ctx, `SELECT address, password_hash, admin, created FROM users ORDER BY address`)
	if err != nil {
		return nil, fmt.Errorf("users: %w", err)
	}
	defer rows.Close()
	var out []store.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("users: %w", err)
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("users: %w", err)
	}
	return out, nil
}

// DeleteUser implements store.Store.
func (d *DB) DeleteUser(ctx context.Context, address string) error {
	tag, err := d.pool.Exec(ctx, `DELETE FROM users WHERE address = $1`, address)
	if err != nil {
		return fmt.Errorf("delete user %s: %w", address, err)
	}
	if tag.RowsAffected() == 0 {
		return store.ErrNotFound
	}
	return nil
}

// newID returns a random identifier for held messages.
func newID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Hold implements store.Store. The message and its recipients go in one statement, committed
// before Hold returns.
func (d *DB) Hold(ctx context.Context, h *store.Held, data []byte) error {
	if h.ID == "" {
		h.ID = newID()
	}
	if h.Received.IsZero() {
		h.Received = d.now()
	}
	h.Size = int64(len(data))
	if data == nil {
		data = []byte{}
	}
	rcpts := make([]string, len(h.Rcpts))
	owners := make([]string, len(h.Rcpts))
	reasons := make([]string, len(h.Rcpts))
	for i, r := range h.Rcpts {
		rcpts[i], owners[i], reasons[i] = r.Rcpt, r.Owner, r.Reason
	}
	_, err := d.pool.Exec(ctx, `WITH m AS (
			INSERT INTO held_messages (id, received, expires, client_ip, helo, mail_from, subject, size, auth, data)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id)
		INSERT INTO held_rcpts (message_id, rcpt, owner, reason)
		SELECT m.id, r.rcpt, r.owner, r.reason FROM m, unnest($11::text[], $12::text[], $13::text[]) AS r (rcpt, owner, reason)
		ON CONFLICT DO NOTHING`,
		h.ID, ms(h.Received), ms(h.Expires), h.ClientIP, h.Helo, h.From, h.Subject, h.Size, h.Auth, data, rcpts, owners, reasons)
	if err != nil {
		return fmt.Errorf("hold: %w", err)
	}
	return nil
}

// HeldList implements store.Store.
func (d *DB) HeldList(ctx context.Context, q store.HeldQuery) ([]store.Held, error) {
	query := `SELECT ` + sqlrow.HeldCols + ` FROM held_messages WHERE ($1 = '' OR id IN (SELECT message_id FROM held_rcpts WHERE owner = $1))
		AND ($2 = '' OR mail_from = $2) ORDER BY received DESC, id`
	args := []any{q.Owner, q.From}
	if q.Limit > 0 {
		query += ` LIMIT $3 OFFSET $4`
		args = append(args, q.Limit, q.Offset)
	}
	rows, err := d.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("held list: %w", err)
	}
	defer rows.Close()
	var out []store.Held
	ids := []string{}
	for rows.Next() {
		h, err := sqlrow.Held(rows)
		if err != nil {
			return nil, fmt.Errorf("held list: %w", err)
		}
		out = append(out, h)
		ids = append(ids, h.ID)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("held list: %w", err)
	}
	if len(out) == 0 {
		return nil, nil
	}
	rcpts, err := d.heldRcpts(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("held list: %w", err)
	}
	for i := range out {
		out[i].Rcpts = rcpts[out[i].ID]
	}
	return out, nil
}

// heldRcpts returns the recipients of the messages ids, by message.
func (d *DB) heldRcpts(ctx context.Context, ids []string) (map[string][]store.HeldRcpt, error) {
	rows, err := d.pool.Query(ctx, `SELECT message_id, rcpt, owner, reason FROM held_rcpts WHERE message_id = ANY($1)
		ORDER BY message_id, rcpt`, ids)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[string][]store.HeldRcpt, len(ids))
	for rows.Next() {
		var id string
		var r store.HeldRcpt
		if err := rows.Scan(&id, &r.Rcpt, &r.Owner, &r.Reason); err != nil {
			return nil, err
		}
		out[id] = append(out[id], r)
	}
	return out, rows.Err()
}

// HeldGet implements store.Store.
func (d *DB) HeldGet(ctx context.Context, id string) (store.Held, []byte, error) {
	var data []byte
	h, err := sqlrow.Held(d.pool.QueryRow(ctx, `SELECT `+sqlrow.HeldCols+`, data FROM held_messages WHERE id = $1`, id), &data)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Held{}, nil, store.ErrNotFound
	}
	if err != nil {
		return store.Held{}, nil, fmt.Errorf("held %s: %w", id, err)
	}
	rcpts, err := d.heldRcpts(ctx, []string{id})
	if err != nil {
		return store.Held{}, nil, fmt.Errorf("held %s: %w", id, err)
	}
	h.Rcpts = rcpts[id]
	return h, data, nil
}

// HeldRemove implements store.Store. The message row is locked first, so that nodes removing
// different recipients of one message at once cannot leave it with none.
func (d *DB) HeldRemove(ctx context.Context, id string, rcpts []string) error {
	err := pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		var found bool
		err := tx.QueryRow(ctx, `SELECT true FROM held_messages WHERE id = $1 FOR UPDATE`, id).Scan(&found)
		if errors.Is(err, pgx.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		if rcpts != nil {
			if _, err := tx.Exec(ctx, `DELETE FROM held_rcpts WHERE message_id = $1 AND rcpt = ANY($2)`, id, rcpts); err != nil {
				return err
			}
		}
		_, err = tx.Exec(ctx, `DELETE FROM held_messages WHERE id = $1 AND ($2 OR NOT EXISTS (SELECT FROM held_rcpts WHERE message_id = $1))`,
			id, rcpts == nil)
		return err
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return err
	case err != nil:
		return fmt.Errorf("held remove %s: %w", id, err)
	}
	return nil
}

// HeldCount implements store.Store.
func (d *DB) HeldCount(ctx context.Context, from string) (int, error) {
	var n int
	if err := d.pool.QueryRow(ctx, `SELECT count(*) FROM held_messages WHERE mail_from = $1`, from).Scan(&n); err != nil {
		return 0, fmt.Errorf("held count %s: %w", from, err)
	}
	return n, nil
}

// HeldStats implements store.Store.
func (d *DB) HeldStats(ctx context.Context) (int, int64, error) {
	var n int
	var size int64
	if err := d.pool.QueryRow(ctx, `SELECT count(*), coalesce(sum(size), 0)::bigint FROM held_messages`).Scan(&n, &size); err != nil {
		return 0, 0, fmt.Errorf("held stats: %w", err)
	}
	return n, size, nil
}

// OutboxLen implements store.Store.
func (d *DB) OutboxLen(ctx context.Context) (int, error) {
	var n int
	if err := d.pool.QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&n); err != nil {
		return 0, fmt.Errorf("outbox length: %w", err)
	}
	return n, nil
}

// HeldExpire implements store.Store.
func (d *DB) HeldExpire(ctx context.Context, now time.Time) (int, error) {
	tag, err := d.pool.Exec(ctx, `DELETE FROM held_messages WHERE expires > 0 AND expires <= $1`, ms(now))
	if err != nil {
		return 0, fmt.Errorf("held expire: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// OutboxAdd implements store.Store.
func (d *DB) OutboxAdd(ctx context.Context, m *store.OutMsg) error {
	return d.outboxInsert(ctx, d.pool, m)
}

// querier is the pool or a transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func (d *DB) outboxInsert(ctx context.Context, q querier, m *store.OutMsg) error {
	if m.Created.IsZero() {
		m.Created = d.now()
	}
	if m.NextTry.IsZero() {
		m.NextTry = m.Created
	}
	to := m.To
	if to == nil {
		to = []string{}
	}
	data := m.Data
	if data == nil {
		data = []byte{}
	}
	err := q.QueryRow(ctx, `INSERT INTO outbox (kind, mail_from, rcpts, data, created, next_try) VALUES ($1, $2, $3, $4, $5, $6)
		RETURNING id`, m.Kind, m.From, to, data, ms(m.Created), ms(m.NextTry)).Scan(&m.ID)
	if err != nil {
		return fmt.Errorf("outbox add: %w", err)
	}
	return nil
}

// OutboxLease is how long a message OutboxDue returned stays out of the other nodes' reach.
const OutboxLease = 5 * time.Minute

// OutboxDue implements store.Store. Several nodes may send the outbox at once: each message
// due is leased to the caller, its next try moved OutboxLease ahead in the same statement
// (rows another node is leasing at that moment are skipped, not waited for), so two callers
// never get the same message while the lease runs. The caller then ends the lease with
// OutboxDone (sent: deleted) or OutboxRetry (rescheduled). A node that dies between
// OutboxDue and either leaves the message to be tried again once the lease has run out: only
// then may a message be sent twice, when the dead node had handed it over already.
//
// NextTry in the result is the time the message was due, not the end of the lease.
func (d *DB) OutboxDue(ctx context.Context, now time.Time, limit int) ([]store.OutMsg, error) {
	rows, err := d.pool.Query(ctx, `WITH due AS (
			SELECT id, next_try FROM outbox WHERE next_try <= $1 ORDER BY next_try, id LIMIT $2 FOR UPDATE SKIP LOCKED)
		UPDATE outbox o SET next_try = $3 FROM due WHERE o.id = due.id
		RETURNING o.id, o.kind, o.mail_from, o.rcpts, o.data, o.created, due.next_try, o.attempts, o.last_error`,
		ms(now), limit, ms(now.Add(OutboxLease)))
	if err != nil {
		return nil, fmt.Errorf("outbox due: %w", err)
	}
	defer rows.Close()
	var out []store.OutMsg
	for rows.Next() {
		var m store.OutMsg
		var created, next int64
		if err := rows.Scan(&m.ID, &m.Kind, &m.From, &m.To, &m.Data, &created, &next, &m.Attempts, &m.LastError); err != nil {
			return nil, fmt.Errorf("outbox due: %w", err)
		}
		m.Created, m.NextTry = fromMS(created), fromMS(next)
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("outbox due: %w", err)
	}
	// UPDATE ... RETURNING keeps no order: oldest due first, as on SQLite.
	slices.SortFunc(out, func(a, b store.OutMsg) int {
		return cmp.Or(a.NextTry.Compare(b.NextTry), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// OutboxDone implements store.Store.
func (d *DB) OutboxDone(ctx context.Context, id int64) error {
	if _, err := d.pool.Exec(ctx, `DELETE FROM outbox WHERE id = $1`, id); err != nil {
		return fmt.Errorf("outbox done %d: %w", id, err)
	}
	return nil
}

// OutboxRetry implements store.Store.
func (d *DB) OutboxRetry(ctx context.Context, id int64, next time.Time, lastErr string) error {
	_, err := d.pool.Exec(ctx, `UPDATE outbox SET next_try = $1, attempts = attempts + 1, last_error = $2 WHERE id = $3`,
		ms(next), lastErr, id)
	if err != nil {
		return fmt.Errorf("outbox retry %d: %w", id, err)
	}
	return nil
}
