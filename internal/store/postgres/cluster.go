package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sekisho/sekisho/internal/cluster"
)

var _ cluster.Registry = (*DB)(nil)

// Heartbeat implements cluster.Registry.
func (d *DB) Heartbeat(ctx context.Context, n cluster.Node) error {
	counters, err := encodeCounters(n.Counters)
	if err != nil {
		return fmt.Errorf("heartbeat %s: %w", n.ID, err)
	}
	_, err = d.pool.Exec(ctx, `INSERT INTO nodes (node_id, version, started, heartbeat, counters) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (node_id) DO UPDATE SET version = excluded.version, started = excluded.started,
			heartbeat = excluded.heartbeat, counters = excluded.counters`,
		n.ID, n.Version, ms(n.Started), ms(n.Heartbeat), counters)
	if err != nil {
		return fmt.Errorf("heartbeat %s: %w", n.ID, err)
	}
	return nil
}

// Nodes implements cluster.Registry.
func (d *DB) Nodes(ctx context.Context) ([]cluster.Node, error) {
	rows, err := d.pool.Query(ctx, `SELECT node_id, version, started, heartbeat, counters FROM nodes ORDER BY node_id`)
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
func (d *DB) DropNodes(ctx context.Context, olderThan time.Time) (int, error) {
	tag, err := d.pool.Exec(ctx, `DELETE FROM nodes WHERE heartbeat < $1`, ms(olderThan))
	if err != nil {
		return 0, fmt.Errorf("drop nodes: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

func encodeCounters(c map[string]int64) (string, error) {
	if c == nil {
		return "{}", nil
	}
	b, err := json.Marshal(c)
	return string(b), err
}

// Timeouts of the lock connection.
const (
	lockConnectTimeout = 10 * time.Second
	lockQueryTimeout   = 5 * time.Second
)

// locker holds the job locks of one DB: session-level advisory locks on a connection of its
// own (application_name "sekisho-lock"), outside the pool, so that a lock is never left
// behind on a pooled connection that another statement then uses, and lives exactly as long
// as that session. The zero value is ready; Close closes the connection.
type locker struct {
	mu   sync.Mutex
	conn *pgx.Conn      // the session holding the locks; nil until needed or after a failure
	held map[string]int // holds per name on conn (PostgreSQL counts them the same way)
}

// TryLock implements cluster.Registry with pg_try_advisory_lock, keyed by the schema and
// name, on the DB's lock connection. The lock goes when release is called, when the DB is
// closed, or when the lock connection is lost: then the database frees it at once, or,
// when the node vanished without closing its connection, once the server's TCP keepalive
// (30 s idle, then 3 probes 10 s apart, set on that session) gives up on it.
//
// A lost connection is found by the next TryLock, which makes a new one and tries again:
// ok then means the lock is held on the new session.
func (d *DB) TryLock(ctx context.Context, name string) (release func(), ok bool, err error) {
	key := "sekisho job " + d.schema + " " + name
	l := &d.locks
	l.mu.Lock()
	defer l.mu.Unlock()
	for attempt := 0; ; attempt++ {
		fresh := false
		if l.conn == nil {
			if err := d.lockConnect(ctx); err != nil {
				return nil, false, fmt.Errorf("lock %s: %w", name, err)
			}
			fresh = true
		}
		qctx, cancel := context.WithTimeout(ctx, lockQueryTimeout)
		err = l.conn.QueryRow(qctx, `SELECT pg_try_advisory_lock(hashtextextended($1, 0))`, key).Scan(&ok)
		cancel()
		if err == nil {
			break
		}
		l.closeConn() // whatever it held is gone, or will be once the server notices
		if fresh || attempt > 0 || ctx.Err() != nil {
			return nil, false, fmt.Errorf("lock %s: %w", name, err)
		}
	}
	if !ok {
		return nil, false, nil
	}
	l.held[name]++
	conn := l.conn
	var once sync.Once
	return func() { once.Do(func() { l.release(conn, name, key) }) }, true, nil
}

// lockConnect makes the lock connection. Called with l.mu held.
func (d *DB) lockConnect(ctx context.Context) error {
	cfg := d.pool.Config().ConnConfig
	params := cfg.RuntimeParams
	params["application_name"] += "-lock"
	// The server finds a vanished node's session, and frees its locks, within about a
	// minute rather than the system default of two hours.
	params["tcp_keepalives_idle"] = "30"
	params["tcp_keepalives_interval"] = "10"
	params["tcp_keepalives_count"] = "3"
	cctx, cancel := context.WithTimeout(ctx, lockConnectTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, cfg)
	if err != nil {
		return err
	}
	d.locks.conn, d.locks.held = conn, map[string]int{}
	return nil
}

// release gives back one hold of name, taken on conn. When conn is no longer the lock
// connection its session, and with it the lock, is gone already.
func (l *locker) release(conn *pgx.Conn, name, key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn != conn || l.held[name] == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), lockQueryTimeout)
	defer cancel()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock(hashtextextended($1, 0))`, key); err != nil {
		l.closeConn() // closing the session frees its locks
		return
	}
	l.held[name]--
}

// closeConn closes the lock connection, which frees every lock it held. Called with l.mu held.
func (l *locker) closeConn() {
	if l.conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.conn.Close(ctx)
	l.conn, l.held = nil, nil
}

// close closes the lock connection, if any.
func (l *locker) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closeConn()
}
