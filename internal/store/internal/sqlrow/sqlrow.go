// Package sqlrow turns result rows into store values the same way for both backends: their
// SQL dialects differ, the columns they select and how those are read do not. Times are
// stored as Unix milliseconds, 0 for the zero time.
package sqlrow

import (
	"time"

	"github.com/sekisho/sekisho/internal/store"
)

// Row is one result row: a *sql.Row or *sql.Rows, a pgx.Row or pgx.Rows.
type Row interface{ Scan(dest ...any) error }

// Rows is a result set: *sql.Rows or pgx.Rows. The caller closes it.
type Rows interface {
	Row
	Next() bool
	Err() error
}

// MS is t as stored: Unix milliseconds, 0 for the zero time.
func MS(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// FromMS is the time stored as v (see MS), in UTC.
func FromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

// All scans every row of rows with scan.
func All[T any](rows Rows, scan func(Row) (T, error)) ([]T, error) {
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// Session reads the columns "user", csrf, created, expires into a session of the given id.
func Session(r Row, id string) (store.Session, error) {
	se := store.Session{ID: id}
	var created, expires int64
	err := r.Scan(&se.User, &se.CSRF, &created, &expires)
	se.Created, se.Expires = FromMS(created), FromMS(expires)
	return se, err
}

// TokenCols are the columns Token reads.
const TokenCols = `name, hash, owner, created, last_used`

// Token reads TokenCols.
func Token(r Row) (store.Token, error) {
	var t store.Token
	var created, used int64
	err := r.Scan(&t.Name, &t.Hash, &t.Owner, &created, &used)
	t.Created, t.LastUsed = FromMS(created), FromMS(used)
	return t, err
}

// StatCols are the columns Stat reads.
const StatCols = `bucket, name, count`

// Stat reads StatCols.
func Stat(r Row) (store.StatCount, error) {
	var c store.StatCount
	var bucket int64
	err := r.Scan(&bucket, &c.Name, &c.Count)
	c.Bucket = FromMS(bucket)
	return c, err
}

// TrapCols are the columns Trap reads.
const TrapCols = `address, ip, user_agent, url, planted`

// Trap reads TrapCols.
func Trap(r Row) (store.Trap, error) {
	var t store.Trap
	var planted int64
	err := r.Scan(&t.Address, &t.IP, &t.UserAgent, &t.URL, &planted)
	t.Planted = FromMS(planted)
	return t, err
}

// TrapHitsFrom selects TrapHit's columns: every hit (h) with its trap (t), newest first.
const TrapHitsFrom = `SELECT t.address, t.ip, t.user_agent, t.url, t.planted, h.ip, h.sender, h.at
	FROM trap_hits h JOIN traps t ON t.address = h.address ORDER BY h.at DESC, h.id DESC`

// TrapHit reads the columns of TrapHitsFrom.
func TrapHit(r Row) (store.TrapHit, error) {
	var h store.TrapHit
	var planted, at int64
	err := r.Scan(&h.Trap.Address, &h.Trap.IP, &h.Trap.UserAgent, &h.Trap.URL, &planted, &h.IP, &h.Sender, &at)
	h.Trap.Planted, h.At = FromMS(planted), FromMS(at)
	return h, err
}

// AliasSenderCols are the columns AliasSenders reads.
const AliasSenderCols = `alias, domain, hits, first, last`

// AliasSenders reads AliasSenderCols of every row, grouped by alias in their order, into out.
func AliasSenders(rows Rows, out map[string][]store.AliasSender) error {
	for rows.Next() {
		var a store.AliasSender
		var first, last int64
		if err := rows.Scan(&a.Alias, &a.Domain, &a.Hits, &first, &last); err != nil {
			return err
		}
		a.First, a.Last = FromMS(first), FromMS(last)
		out[a.Alias] = append(out[a.Alias], a)
	}
	return rows.Err()
}

// HeldCols are the columns Held reads.
const HeldCols = `id, received, expires, client_ip, helo, mail_from, subject, size, auth`

// Held reads HeldCols, then the columns that follow them into more.
func Held(r Row, more ...any) (store.Held, error) {
	var h store.Held
	var received, expires int64
	err := r.Scan(append([]any{&h.ID, &received, &expires, &h.ClientIP, &h.Helo, &h.From, &h.Subject, &h.Size, &h.Auth}, more...)...)
	h.Received, h.Expires = FromMS(received), FromMS(expires)
	return h, err
}
