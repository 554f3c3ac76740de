// Package sqlite is the embedded store: one SQLite database file in WAL mode, shared safely by
// the running server and the command line.
package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sekisho/sekisho/internal/store"
	"github.com/sekisho/sekisho/internal/store/internal/sqlrow"

	_ "modernc.org/sqlite" // database/sql driver "sqlite"
)

//go:embed migrations/*.sql
var migrations embed.FS

// keepChanges is how many change records are kept at least when old ones are pruned.
const keepChanges = 100000

// DB is a store.Store on SQLite.
type DB struct {
	db  *sql.DB
	now func() time.Time

	holds     chan *holdReq // to the committer (see hold.go)
	stop      chan struct{} // closed by Close
	committer sync.WaitGroup
	closeOnce sync.Once
}

var _ store.Store = (*DB)(nil)

// Open opens (creating if needed) the database file at path and applies migrations.
func Open(ctx context.Context, path string) (*DB, error) {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("open store %s: %w", path, err)
		}
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	db.SetMaxOpenConns(8)
	db.SetConnMaxIdleTime(time.Minute)
	s := &DB{db: db, now: time.Now, holds: make(chan *holdReq), stop: make(chan struct{})}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	s.committer.Go(s.commitHolds)
	return s, nil
}

// Close stops the committer of held mail, then closes the database.
func (s *DB) Close() error {
	s.closeOnce.Do(func() { close(s.stop) })
	s.committer.Wait()
	return s.db.Close()
}

func (s *DB) migrate(ctx context.Context) error {
	tx, err := s.db.BeginTx(ctx, nil) // BEGIN IMMEDIATE: concurrent starters wait for each other
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version TEXT PRIMARY KEY, applied INTEGER NOT NULL)`); err != nil {
		return err
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		version := strings.TrimSuffix(filepath.Base(name), ".sql")
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, version).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			continue
		}
		body, err := migrations.ReadFile(name)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			return fmt.Errorf("migration %s: %w", version, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied) VALUES (?, ?)`, version, ms(s.now())); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// Times are stored as Unix milliseconds, the same in both backends.
func ms(t time.Time) int64     { return sqlrow.MS(t) }
func fromMS(v int64) time.Time { return sqlrow.FromMS(v) }

const entryCols = `list, key, kind, owner, target, note, source, disabled, created, updated, expires, hits, last_hit, last_sender`

type scanner interface{ Scan(dest ...any) error }

func scanEntry(r scanner) (store.Entry, error) {
	var e store.Entry
	var list string
	var disabled int
	var created, updated, expires, lastHit int64
	err := r.Scan(&list, &e.Key, &e.Kind, &e.Owner, &e.Target, &e.Note, &e.Source, &disabled,
		&created, &updated, &expires, &e.Hits, &lastHit, &e.LastSender)
	e.List = store.List(list)
	e.Disabled = disabled != 0
	e.Created, e.Updated, e.Expires, e.LastHit = fromMS(created), fromMS(updated), fromMS(expires), fromMS(lastHit)
	return e, err
}

func appendChange(ctx context.Context, tx *sql.Tx, at time.Time, op store.Op, e store.Entry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO changes (at, op, entry) VALUES (?, ?, ?)`, ms(at), string(op), string(b))
	return err
}

// Put implements store.Store.
func (s *DB) Put(ctx context.Context, e store.Entry) error {
	now := s.now()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("put %s %q: %w", e.List, e.Key, err)
	}
	defer tx.Rollback()
	row := tx.QueryRowContext(ctx, `SELECT `+entryCols+` FROM entries WHERE list = ? AND key = ? AND kind = ? AND owner = ?`,
		string(e.List), e.Key, e.Kind, e.Owner)
	old, err := scanEntry(row)
	switch {
	case err == nil:
		e.Created, e.Hits, e.LastHit, e.LastSender = old.Created, old.Hits, old.LastHit, old.LastSender
	case errors.Is(err, sql.ErrNoRows):
		if e.Created.IsZero() {
			e.Created = now
		}
	default:
		return fmt.Errorf("put %s %q: %w", e.List, e.Key, err)
	}
	e.Updated = now
	e.Created = e.Created.UTC().Truncate(time.Millisecond)
	e.Updated = e.Updated.UTC().Truncate(time.Millisecond)
	e.Expires = e.Expires.UTC().Truncate(time.Millisecond)
	_, err = tx.ExecContext(ctx, `INSERT INTO entries (`+entryCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)
		ON CONFLICT (list, key, kind, owner) DO UPDATE SET target = excluded.target, note = excluded.note,
		source = excluded.source, disabled = excluded.disabled, updated = excluded.updated, expires = excluded.expires`,
		string(e.List), e.Key, e.Kind, e.Owner, e.Target, e.Note, e.Source, boolInt(e.Disabled),
		ms(e.Created), ms(e.Updated), ms(e.Expires), e.Hits, ms(e.LastHit), e.LastSender)
	if err != nil {
		return fmt.Errorf("put %s %q: %w", e.List, e.Key, err)
	}
	if err := appendChange(ctx, tx, now, store.OpPut, e); err != nil {
		return fmt.Errorf("put %s %q: %w", e.List, e.Key, err)
	}
	return tx.Commit()
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Delete implements store.Store.
func (s *DB) Delete(ctx context.Context, l store.List, key, kind, owner string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("delete %s %q: %w", l, key, err)
	}
	defer tx.Rollback()
	row := tx.QueryRowContext(ctx, `SELECT `+entryCols+` FROM entries WHERE list = ? AND key = ? AND kind = ? AND owner = ?`,
		string(l), key, kind, owner)
	e, err := scanEntry(row)
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("delete %s %q: %w", l, key, err)
	}
	if err := deleteEntry(ctx, tx, s.now(), e); err != nil {
		return fmt.Errorf("delete %s %q: %w", l, key, err)
	}
	return tx.Commit()
}

func deleteEntry(ctx context.Context, tx *sql.Tx, now time.Time, e store.Entry) error {
	_, err := tx.ExecContext(ctx, `DELETE FROM entries WHERE list = ? AND key = ? AND kind = ? AND owner = ?`,
		string(e.List), e.Key, e.Kind, e.Owner)
	if err != nil {
		return err
	}
	return appendChange(ctx, tx, now, store.OpDel, e)
}

// Entries implements store.Store.
func (s *DB) Entries(ctx context.Context, l store.List, q store.Query) ([]store.Entry, error) {
	query := `SELECT ` + entryCols + ` FROM entries WHERE list = ?`
	args := []any{string(l)}
	if q.Owner != "" {
		query += ` AND owner = ?`
		args = append(args, q.Owner)
	}
	if q.Key != "" {
		query += ` AND key = ?`
		args = append(args, q.Key)
	}
	if q.Target != "" {
		query += ` AND target = ?`
		args = append(args, q.Target)
	}
	if q.Q != "" {
		like := "%" + escapeLike(q.Q) + "%"
		query += ` AND (key LIKE ? ESCAPE '\' OR target LIKE ? ESCAPE '\' OR owner LIKE ? ESCAPE '\' OR note LIKE ? ESCAPE '\')`
		args = append(args, like, like, like, like)
	}
	query += ` ORDER BY key, kind, owner`
	if q.Limit > 0 {
		query += ` LIMIT ? OFFSET ?`
		args = append(args, q.Limit, q.Offset)
	}
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", l, err)
	}
	defer rows.Close()
	var out []store.Entry
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", l, err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

func escapeLike(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(s)
}

// Snapshot implements store.Store.
func (s *DB) Snapshot(ctx context.Context) ([]store.Entry, int64, error) {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, 0, fmt.Errorf("snapshot: %w", err)
	}
	defer tx.Rollback()
	var seq int64
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM changes`).Scan(&seq); err != nil {
		return nil, 0, fmt.Errorf("snapshot: %w", err)
	}
	if seq == 0 {
		seq, err = lastSeq(ctx, tx)
		if err != nil {
			return nil, 0, fmt.Errorf("snapshot: %w", err)
		}
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+entryCols+` FROM entries WHERE expires = 0 OR expires > ?`, ms(s.now()))
	if err != nil {
		return nil, 0, fmt.Errorf("snapshot: %w", err)
	}
	defer rows.Close()
	var out []store.Entry
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			return nil, 0, fmt.Errorf("snapshot: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("snapshot: %w", err)
	}
	return out, seq, nil
}

// lastSeq is the highest sequence number ever handed out, even if pruned since.
func lastSeq(ctx context.Context, tx *sql.Tx) (int64, error) {
	var seq int64
	err := tx.QueryRowContext(ctx, `SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'changes'), 0)`).Scan(&seq)
	return seq, err
}

// Changes implements store.Store.
func (s *DB) Changes(ctx context.Context, since int64, limit int) ([]store.Change, error) {
	if limit <= 0 {
		limit = 1000
	}
	rows, err := s.db.QueryContext(ctx, `SELECT seq, op, entry FROM changes WHERE seq > ? ORDER BY seq LIMIT ?`, since, limit)
	if err != nil {
		return nil, fmt.Errorf("changes since %d: %w", since, err)
	}
	defer rows.Close()
	var out []store.Change
	for rows.Next() {
		var c store.Change
		var op, entry string
		if err := rows.Scan(&c.Seq, &op, &entry); err != nil {
			return nil, fmt.Errorf("changes since %d: %w", since, err)
		}
		c.Op = store.Op(op)
		if err := json.Unmarshal([]byte(entry), &c.Entry); err != nil {
			return nil, fmt.Errorf("changes since %d: seq %d: %w", since, c.Seq, err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("changes since %d: %w", since, err)
	}
	// A gap between since and the first change kept means records were pruned.
	if len(out) > 0 && out[0].Seq != since+1 {
		return nil, store.ErrLogPruned
	}
	return out, nil
}

// Hit implements store.Store.
func (s *DB) Hit(ctx context.Context, l store.List, key, kind, owner, sender string, at time.Time) error {
	err := s.hit(ctx, l, key, kind, owner, sender, at)
	if err != nil {
		return fmt.Errorf("hit %s %q: %w", l, key, err)
	}
	return nil
}

// hit counts the use. For an alias, the sender's domain is counted in the same transaction:
// one disk sync on the SMTP path, not two.
func (s *DB) hit(ctx context.Context, l store.List, key, kind, owner, sender string, at time.Time) error {
	count := func(q execer) error {
		_, err := q.ExecContext(ctx, `UPDATE entries SET hits = hits + 1, last_hit = ?, last_sender = ?
			WHERE list = ? AND key = ? AND kind = ? AND owner = ?`, ms(at), sender, string(l), key, kind, owner)
		return err
	}
	if l != store.Alias {
		return count(s.db) // one statement needs no transaction of its own
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := count(tx); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO alias_senders (alias, domain, hits, first, last) VALUES (?, ?, 1, ?, ?)
		ON CONFLICT (alias, domain) DO UPDATE SET hits = hits + 1, last = excluded.last`,
		key, store.SenderDomain(sender), ms(at), ms(at)); err != nil {
		return err
	}
	return tx.Commit()
}

// Expire implements store.Store. It also prunes old change records.
func (s *DB) Expire(ctx context.Context, now time.Time) (int, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("expire: %w", err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT `+entryCols+` FROM entries WHERE expires > 0 AND expires <= ?`, ms(now))
	if err != nil {
		return 0, fmt.Errorf("expire: %w", err)
	}
	var gone []store.Entry
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			rows.Close()
			return 0, fmt.Errorf("expire: %w", err)
		}
		gone = append(gone, e)
	}
	rows.Close()
	for _, e := range gone {
		if err := deleteEntry(ctx, tx, now, e); err != nil {
			return 0, fmt.Errorf("expire: %w", err)
		}
	}
	// Keep a day of changes, and at least the last keepChanges.
	if _, err := tx.ExecContext(ctx, `DELETE FROM changes WHERE at < ? AND seq <= (SELECT max(seq) FROM changes) - ?`,
		ms(now.Add(-24*time.Hour)), keepChanges); err != nil {
		return 0, fmt.Errorf("expire: prune changes: %w", err)
	}
	return len(gone), tx.Commit()
}

// PutUser implements store.Store.
func (s *DB) PutUser(ctx context.Context, u store.User) error {
	if u.Created.IsZero() {
		u.Created = s.now()
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO users (address, password_hash, admin, created) VALUES (?, ?, ?, ?)
		ON CONFLICT (address) DO UPDATE SET password_hash = excluded.password_hash, admin = excluded.admin`,
		u.Address, u.PasswordHash, boolInt(u.Admin), ms(u.Created))
	if err != nil {
		return fmt.Errorf("put user %s: %w", u.Address, err)
	}
	return nil
}

// GetUser implements store.Store.
func (s *DB) GetUser(ctx context.Context, address string) (store.User, error) {
	var u store.User
	var admin int
	var created int64
	err := s.db.QueryRowContext(ctx, `SELECT address, password_hash, admin, created FROM users WHERE address = ?`, address).
		Scan(&u.Address, &u.PasswordHash, &admin, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return u, store.ErrNotFound
	}
	if err != nil {
		return u, fmt.Errorf("get user %s: %w", address, err)
	}
	u.Admin, u.Created = admin != 0, fromMS(created)
	return u, nil
}

// Users implements store.Store.
func (s *DB) Users(ctx context.Context) ([]store.User, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT address, password_hash, admin, created FROM users ORDER BY address`)
	if err != nil {
		return nil, fmt.Errorf("users: %w", err)
	}
	defer rows.Close()
	var out []store.User
	for rows.Next() {
		var u store.User
		var admin int
		var created int64
		if err := rows.Scan(&u.Address, &u.PasswordHash, &admin, &created); err != nil {
			return nil, fmt.Errorf("users: %w", err)
		}
		u.Admin, u.Created = admin != 0, fromMS(created)
		out = append(out, u)
	}
	return out, rows.Err()
}

// DeleteUser implements store.Store.
func (s *DB) DeleteUser(ctx context.Context, address string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM users WHERE address = ?`, address)
	if err != nil {
		return fmt.Errorf("delete user %s: %w", address, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return store.ErrNotFound
	}
	return nil
}

// NewID returns a random identifier for held messages.
func NewID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// HeldList implements store.Store.
func (s *DB) HeldList(ctx context.Context, q store.HeldQuery) ([]store.Held, error) {
	where := `1 = 1`
	var args []any
	if q.Owner != "" {
		where += ` AND h.id IN (SELECT message_id FROM held_rcpts WHERE owner = ?)`
		args = append(args, q.Owner)
	}
	if q.From != "" {
		where += ` AND h.mail_from = ?`
		args = append(args, q.From)
	}
	query := `SELECT ` + sqlrow.HeldCols + ` FROM held_messages m WHERE m.id IN (SELECT h.id FROM held_messages h WHERE ` + where
	if q.Limit > 0 {
		// The page is chosen from the (id, received) index alone; only its rows are read
		// from the table (migration 006).
		query += ` ORDER BY h.received DESC, h.id LIMIT ? OFFSET ?`
		args = append(args, q.Limit, q.Offset)
	}
	query += `) ORDER BY m.received DESC, m.id`
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("held list: %w", err)
	}
	var out []store.Held
	for rows.Next() {
		h, err := sqlrow.Held(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("held list: %w", err)
		}
		out = append(out, h)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("held list: %w", err)
	}
	for i := range out {
		if out[i].Rcpts, err = s.heldRcpts(ctx, out[i].ID); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (s *DB) heldRcpts(ctx context.Context, id string) ([]store.HeldRcpt, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT rcpt, owner, reason FROM held_rcpts WHERE message_id = ? ORDER BY rcpt`, id)
	if err != nil {
		return nil, fmt.Errorf("held %s: %w", id, err)
	}
	defer rows.Close()
	var out []store.HeldRcpt
	for rows.Next() {
		var r store.HeldRcpt
		if err := rows.Scan(&r.Rcpt, &r.Owner, &r.Reason); err != nil {
			return nil, fmt.Errorf("held %s: %w", id, err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// HeldGet implements store.Store.
func (s *DB) HeldGet(ctx context.Context, id string) (store.Held, []byte, error) {
	var data []byte
	h, err := sqlrow.Held(s.db.QueryRowContext(ctx, `SELECT `+sqlrow.HeldCols+`, data FROM held_messages WHERE id = ?`, id), &data)
	if errors.Is(err, sql.ErrNoRows) {
		return h, nil, store.ErrNotFound
	}
	if err != nil {
		return h, nil, fmt.Errorf("held %s: %w", id, err)
	}
	h.Rcpts, err = s.heldRcpts(ctx, id)
	return h, data, err
}

// HeldRemove implements store.Store.
func (s *DB) HeldRemove(ctx context.Context, id string, rcpts []string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("held remove %s: %w", id, err)
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM held_messages WHERE id = ?`, id).Scan(&n); err != nil {
		return fmt.Errorf("held remove %s: %w", id, err)
	}
	if n == 0 {
		return store.ErrNotFound
	}
	for _, r := range rcpts {
		if _, err := tx.ExecContext(ctx, `DELETE FROM held_rcpts WHERE message_id = ? AND rcpt = ?`, id, r); err != nil {
			return fmt.Errorf("held remove %s: %w", id, err)
		}
	}
	var left int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM held_rcpts WHERE message_id = ?`, id).Scan(&left); err != nil {
		return fmt.Errorf("held remove %s: %w", id, err)
	}
	if rcpts == nil || left == 0 {
		if _, err := tx.ExecContext(ctx, `DELETE FROM held_messages WHERE id = ?`, id); err != nil {
			return fmt.Errorf("held remove %s: %w", id, err)
		}
	}
	return tx.Commit()
}

// HeldCount implements store.Store.
func (s *DB) HeldCount(ctx context.Context, from string) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM held_messages WHERE mail_from = ?`, from).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("held count %s: %w", from, err)
	}
	return n, nil
}

// HeldStats implements store.Store.
func (s *DB) HeldStats(ctx context.Context) (int, int64, error) {
	var n int
	var size int64
	err := s.db.QueryRowContext(ctx, `SELECT count(*), coalesce(sum(size), 0) FROM held_messages`).Scan(&n, &size)
	if err != nil {
		return 0, 0, fmt.Errorf("held stats: %w", err)
	}
	return n, size, nil
}

// OutboxLen implements store.Store.
func (s *DB) OutboxLen(ctx context.Context) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM outbox`).Scan(&n); err != nil {
		return 0, fmt.Errorf("outbox length: %w", err)
	}
	return n, nil
}

// HeldExpire implements store.Store.
func (s *DB) HeldExpire(ctx context.Context, now time.Time) (int, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM held_messages WHERE expires > 0 AND expires <= ?`, ms(now))
	if err != nil {
		return 0, fmt.Errorf("held expire: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// OutboxAdd implements store.Store.
func (s *DB) OutboxAdd(ctx context.Context, m *store.OutMsg) error {
	return s.outboxInsert(ctx, s.db, m)
}

// execer is a *sql.DB or a *sql.Tx.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func (s *DB) outboxInsert(ctx context.Context, q execer, m *store.OutMsg) error {
	if m.Created.IsZero() {
		m.Created = s.now()
	}
	if m.NextTry.IsZero() {
		m.NextTry = m.Created
	}
	to, err := json.Marshal(m.To)
	if err != nil {
		return err
	}
	res, err := q.ExecContext(ctx, `INSERT INTO outbox (kind, mail_from, rcpts, data, created, next_try) VALUES (?, ?, ?, ?, ?, ?)`,
		m.Kind, m.From, string(to), m.Data, ms(m.Created), ms(m.NextTry))
	if err != nil {
		return fmt.Errorf("outbox add: %w", err)
	}
	m.ID, err = res.LastInsertId()
	return err
}

// OutboxDue implements store.Store.
func (s *DB) OutboxDue(ctx context.Context, now time.Time, limit int) ([]store.OutMsg, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, kind, mail_from, rcpts, data, created, next_try, attempts, last_error
		FROM outbox WHERE next_try <= ? ORDER BY next_try, id LIMIT ?`, ms(now), limit)
	if err != nil {
		return nil, fmt.Errorf("outbox due: %w", err)
	}
	defer rows.Close()
	var out []store.OutMsg
	for rows.Next() {
		var m store.OutMsg
		var to string
		var created, next int64
		if err := rows.Scan(&m.ID, &m.Kind, &m.From, &to, &m.Data, &created, &next, &m.Attempts, &m.LastError); err != nil {
			return nil, fmt.Errorf("outbox due: %w", err)
		}
		if err := json.Unmarshal([]byte(to), &m.To); err != nil {
			return nil, fmt.Errorf("outbox due: message %d: %w", m.ID, err)
		}
		m.Created, m.NextTry = fromMS(created), fromMS(next)
		out = append(out, m)
	}
	return out, rows.Err()
}

// OutboxDone implements store.Store.
func (s *DB) OutboxDone(ctx context.Context, id int64) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM outbox WHERE id = ?`, id); err != nil {
		return fmt.Errorf("outbox done %d: %w", id, err)
	}
	return nil
}

// OutboxRetry implements store.Store.
func (s *DB) OutboxRetry(ctx context.Context, id int64, next time.Time, lastErr string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE outbox SET next_try = ?, attempts = attempts + 1, last_error = ? WHERE id = ?`,
		ms(next), lastErr, id)
	if err != nil {
		return fmt.Errorf("outbox retry %d: %w", id, err)
	}
	return nil
}
