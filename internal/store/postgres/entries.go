package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sekisho/sekisho/internal/store"
)

const entryCols = `list, key, kind, owner, target, note, source, disabled, created, updated, expires, hits, last_hit, last_sender`

type scanner interface{ Scan(dest ...any) error }

func scanEntry(r scanner, before ...any) (store.Entry, error) {
	var e store.Entry
	var list string
	var created, updated, expires, lastHit int64
	dest := append(before, &list, &e.Key, &e.Kind, &e.Owner, &e.Target, &e.Note, &e.Source, &e.Disabled,
		&created, &updated, &expires, &e.Hits, &lastHit, &e.LastSender)
	err := r.Scan(dest...)
	e.List = store.List(list)
	e.Created, e.Updated, e.Expires, e.LastHit = fromMS(created), fromMS(updated), fromMS(expires), fromMS(lastHit)
	return e, err
}

// logged makes modify, a statement that changes entries (given without RETURNING), append a
// change record for every row it changes, with op, in the same statement; it then notifies
// Channel. The statement takes $1 (the time of the change, Unix ms) and $2 (the schema);
// modify's own parameters start at $3. It returns one row per change.
//
// The order of the CTEs is the order of the locks: m locks the entry rows, and only once m
// has run to the end (n counts it) does c increment change_seq, whose row lock is then held
// to commit. See the package documentation.
func logged(op store.Op, modify string) string {
	return `WITH m AS (` + modify + ` RETURNING ` + entryCols + `),
	n AS (SELECT count(*) AS n FROM m),
	c AS (UPDATE change_seq SET seq = change_seq.seq + n.n FROM n WHERE n.n > 0 RETURNING change_seq.seq, n.n),
	ins AS (INSERT INTO changes (seq, at, op, ` + entryCols + `)
		SELECT c.seq - c.n + row_number() OVER (ORDER BY m.list, m.key, m.kind, m.owner), $1, '` + string(op) + `', m.*
		FROM c, m RETURNING seq)
	SELECT pg_notify('` + Channel + `', $2 || ' ' || (SELECT max(seq) FROM ins)) FROM ins`
}

var (
	putSQL = logged(store.OpPut, `INSERT INTO entries (`+entryCols+`) VALUES ($3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
		ON CONFLICT (list, key, kind, owner) DO UPDATE SET target = excluded.target, note = excluded.note,
		source = excluded.source, disabled = excluded.disabled, updated = excluded.updated, expires = excluded.expires`)
	deleteSQL = logged(store.OpDel, `DELETE FROM entries WHERE list = $3 AND key = $4 AND kind = $5 AND owner = $6`)
	expireSQL = logged(store.OpDel, `DELETE FROM entries WHERE (list, key, kind, owner) IN (
	SELECT list, key, kind, owner FROM entries WHERE expires > 0 AND expires <= $1 FOR UPDATE SKIP LOCKED)`)
)

// Put implements store.Store.
func (d *DB) Put(ctx context.Context, e store.Entry) error {
	now := d.now()
	if e.Created.IsZero() {
		e.Created = now
	}
	_, err := d.pool.Exec(ctx, putSQL, ms(now), d.schema,
		string(e.List), e.Key, e.Kind, e.Owner, e.Target, e.Note, e.Source, e.Disabled,
		ms(e.Created), ms(now), ms(e.Expires), e.Hits, ms(e.LastHit), e.LastSender)
	if err != nil {
		return fmt.Errorf("put %s %q: %w", e.List, e.Key, err)
	}
	return nil
}

// Delete implements store.Store.
func (d *DB) Delete(ctx context.Context, l store.List, key, kind, owner string) error {
	tag, err := d.pool.Exec(ctx, deleteSQL, ms(d.now()), d.schema, string(l), key, kind, owner)
	if err != nil {
		return fmt.Errorf("delete %s %q: %w", l, key, err)
	}
	if tag.RowsAffected() == 0 {
		return store.ErrNotFound
	}
	return nil
}

// Entries implements store.Store.
func (d *DB) Entries(ctx context.Context, l store.List, q store.Query) ([]store.Entry, error) {
	query := `SELECT ` + entryCols + ` FROM entries WHERE list = $1`
	args := []any{string(l)}
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if q.Owner != "" {
		query += ` AND owner = ` + arg(q.Owner)
	}
	if q.Key != "" {
		query += ` AND key = ` + arg(q.Key)
	}
	if q.Target != "" {
		query += ` AND target = ` + arg(q.Target)
	}
	if q.Q != "" {
		// Case-insensitive, as SQLite's LIKE is (there for ASCII letters only).
		p := arg("%" + escapeLike(q.Q) + "%")
		query += ` AND (key ILIKE ` + p + ` OR target ILIKE ` + p + ` OR owner ILIKE ` + p + ` OR note ILIKE ` + p + `)`
	}
	query += ` ORDER BY key, kind, owner`
	if q.Limit > 0 {
		query += ` LIMIT ` + arg(q.Limit) + ` OFFSET ` + arg(q.Offset)
	}
	rows, err := d.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", l, err)
	}
	out, err := collectEntries(rows)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", l, err)
	}
	return out, nil
}

func collectEntries(rows pgx.Rows) ([]store.Entry, error) {
	defer rows.Close()
	var out []store.Entry
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// escapeLike escapes the LIKE wildcards of s for the default escape character, backslash.
func escapeLike(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(s)
}

// Snapshot implements store.Store. The entries and the sequence number come from one
// transaction snapshot, and every change commits together with its sequence number, so the
// entries are exactly those of the changes up to it.
func (d *DB) Snapshot(ctx context.Context) ([]store.Entry, int64, error) {
	tx, err := d.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, 0, fmt.Errorf("snapshot: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var seq int64
	if err := tx.QueryRow(ctx, `SELECT seq FROM change_seq`).Scan(&seq); err != nil {
		return nil, 0, fmt.Errorf("snapshot: %w", err)
	}
	rows, err := tx.Query(ctx, `SELECT `+entryCols+` FROM entries WHERE expires = 0 OR expires > $1`, ms(d.now()))
	if err != nil {
		return nil, 0, fmt.Errorf("snapshot: %w", err)
	}
	out, err := collectEntries(rows)
	if err != nil {
		return nil, 0, fmt.Errorf("snapshot: %w", err)
	}
	return out, seq, tx.Commit(ctx)
}

// changesSQL returns the last sequence number handed out and the changes after $1, at least
// one row (zeros when there is no change to return), in one statement.
const changesSQL = `SELECT h.seq, coalesce(c.seq, 0), coalesce(c.op, ''),
	coalesce(c.list, ''), coalesce(c.key, ''), coalesce(c.kind, ''), coalesce(c.owner, ''),
	coalesce(c.target, ''), coalesce(c.note, ''), coalesce(c.source, ''), coalesce(c.disabled, false),
	coalesce(c.created, 0), coalesce(c.updated, 0), coalesce(c.expires, 0), coalesce(c.hits, 0),
	coalesce(c.last_hit, 0), coalesce(c.last_sender, '')
	FROM change_seq h LEFT JOIN LATERAL (SELECT * FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2) c ON true
	ORDER BY c.seq`

// Changes implements store.Store. Besides a pruned log, it returns ErrLogPruned when since is
// beyond the last sequence number handed out: the database is not the one the caller
// followed (restored from a backup, or a standby that had not received everything), and
// what the caller holds must be reloaded.
func (d *DB) Changes(ctx context.Context, since int64, limit int) ([]store.Change, error) {
	if limit <= 0 {
		limit = 1000
	}
	rows, err := d.pool.Query(ctx, changesSQL, since, limit)
	if err != nil {
		return nil, fmt.Errorf("changes since %d: %w", since, err)
	}
	defer rows.Close()
	var out []store.Change
	var head int64
	for rows.Next() {
		var c store.Change
		var op string
		c.Entry, err = scanEntry(rows, &head, &c.Seq, &op)
		if err != nil {
			return nil, fmt.Errorf("changes since %d: %w", since, err)
		}
		if c.Seq == 0 { // no change after since
			break
		}
		c.Op = store.Op(op)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("changes since %d: %w", since, err)
	}
	// Numbers have no gaps: one between since and the first change kept means pruning.
	if len(out) > 0 && out[0].Seq != since+1 || since > head {
		return nil, store.ErrLogPruned
	}
	return out, nil
}

// Hit implements store.Store.
func (d *DB) Hit(ctx context.Context, l store.List, key, kind, owner, sender string, at time.Time) error {
	const count = `UPDATE entries SET hits = hits + 1, last_hit = $1, last_sender = $2
		WHERE list = $3 AND key = $4 AND kind = $5 AND owner = $6`
	var err error
	if l == store.Alias {
		// One statement (one round trip, one commit) counts the use and the sender's domain.
		_, err = d.pool.Exec(ctx, `WITH counted AS (`+count+` RETURNING 1)
			INSERT INTO alias_senders (alias, domain, hits, first, last) VALUES ($4, $7, 1, $1, $1)
			ON CONFLICT (alias, domain) DO UPDATE SET hits = alias_senders.hits + 1, last = excluded.last`,
			ms(at), sender, string(l), key, kind, owner, store.SenderDomain(sender))
	} else {
		_, err = d.pool.Exec(ctx, count, ms(at), sender, string(l), key, kind, owner)
	}
	if err != nil {
		return fmt.Errorf("hit %s %q: %w", l, key, err)
	}
	return nil
}

// Expire implements store.Store. It also prunes old change records. Nodes may run it at the
// same time: an entry is deleted, and its change recorded, once.
func (d *DB) Expire(ctx context.Context, now time.Time) (int, error) {
	tag, err := d.pool.Exec(ctx, expireSQL, ms(now), d.schema)
	if err != nil {
		return 0, fmt.Errorf("expire: %w", err)
	}
	// Keep a day of changes, and at least the last keepChanges.
	if _, err := d.pool.Exec(ctx, `DELETE FROM changes WHERE at < $1 AND seq <= (SELECT seq FROM change_seq) - $2`,
		ms(now.Add(-24*time.Hour)), keepChanges); err != nil {
		return 0, fmt.Errorf("expire: prune changes: %w", err)
	}
	return int(tag.RowsAffected()), nil
}
