// Package postgres is the store that several sekisho nodes share: one PostgreSQL database,
// reached over TLS when the DSN asks for it (sslmode=verify-full), with the schema and the
// semantics of package sqlite. The tables live in the first schema of the connection's
// search_path (add search_path=name to the DSN to keep several installations in one database).
//
// # The change log: sequence order is commit order
//
// Followers read the change log with "seq > since" (see package lists). With numbers from a
// plain sequence that is not enough: transaction A takes 7, B takes 8, B commits first, a
// follower reads 8 and moves on, and when A commits, 7 is behind every follower for good.
//
// Here the numbers come from a single row, change_seq, that every statement which appends to
// the log increments. PostgreSQL holds that row's lock until commit, so a second writer waits
// at the row until the first has committed, and only then reads its number. A reader that
// sees change n therefore sees every change below n. A writer that rolls back rolls back its
// increment too, so the numbers have no gaps: Changes tells a pruned log (the first change
// kept is not since+1) from a quiet one, as the SQLite store does.
//
// The price is that appends are serialized across the cluster. Each one is a single statement
// (the row, the counter, the log record and the NOTIFY, sent in one round trip and committed
// implicitly), so the counter is locked only while the server runs that statement and flushes
// its commit, never across a network round trip: throughput is bounded by the database's
// commit latency, not by the distance to the nodes (see BenchmarkPutParallel). List changes
// are rare next to lookups, which nodes answer from memory; hit counters, held mail and the
// outbox do not touch the counter.
//
// The alternative considered, parallel writers with Changes stopping below the oldest
// transaction in flight (an xid8 column and pg_snapshot_xmin(pg_current_snapshot())), keeps
// writers apart but leaves gaps in the numbers, so a pruned log could no longer be told from a
// rollback, and one long transaction anywhere in the database would stall every follower.
//
// Within every change statement, row locks are taken in one order, the entries first and the
// counter last: no writer holds the counter while it waits for an entry, so writers cannot
// deadlock over it.
//
// # Notifications
//
// Each change statement also sends NOTIFY sekisho_changes (delivered at commit) with the
// payload "<schema> <seq>". Listen follows that channel on a connection of its own and wakes a
// follower (lists.Follow), which then reads the log. A notification only says "look now";
// what changed always comes from the log, so a lost connection loses nothing.
//
// # Migrations
//
// Open applies the embedded migrations in one transaction that first takes a transaction-level
// advisory lock keyed by the schema: nodes that start together wait for the first one and then
// find nothing left to do, and the lock cannot outlive a failed migration.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sekisho/sekisho/internal/store"
	"github.com/sekisho/sekisho/internal/store/internal/sqlrow"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Channel is the channel every change is announced on.
const Channel = "sekisho_changes"

// keepChanges is how many change records are kept at least when old ones are pruned.
const keepChanges = 100000

// Options tune OpenWith. The zero value is fine.
type Options struct {
	// Logger receives what Listen survives: a lost connection, a reconnection. Nil discards.
	Logger *slog.Logger
	// ListenKeepAlive is how long Listen's connection may stay silent before it is checked with a
	// ping (a connection that died without a word would otherwise go unnoticed). 0 = 30s.
	ListenKeepAlive time.Duration
}

// DB is a store.Store on PostgreSQL.
type DB struct {
	pool      *pgxpool.Pool
	schema    string          // where the tables are: the first schema of search_path
	listenCfg *pgx.ConnConfig // for Listen's own connection
	log       *slog.Logger
	keepAlive time.Duration
	now       func() time.Time
	locks     locker // the job locks of TryLock (cluster.go)
}

var _ store.Store = (*DB)(nil)

// Open connects to the database dsn names (a URL or key=value string, as libpq takes: sslmode,
// sslrootcert, pool_max_conns, search_path, ...) and applies migrations. Unless dsn sets them,
// the application_name is "sekisho" and connect_timeout 10 s.
func Open(ctx context.Context, dsn string) (*DB, error) {
	return OpenWith(ctx, dsn, Options{})
}

// OpenWith is Open with options.
func OpenWith(ctx context.Context, dsn string, opts Options) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("open store postgres: %w", err)
	}
	if cfg.ConnConfig.ConnectTimeout == 0 { // no connect_timeout in dsn
		cfg.ConnConfig.ConnectTimeout = 10 * time.Second
	}
	params := cfg.ConnConfig.RuntimeParams
	if params["application_name"] == "" {
		params["application_name"] = "sekisho"
	}
	listenCfg := cfg.ConnConfig.Copy()
	listenCfg.RuntimeParams["application_name"] = params["application_name"] + "-listen"

	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open store postgres: %w", err)
	}
	d := &DB{
		pool:      pool,
		listenCfg: listenCfg,
		log:       opts.Logger,
		keepAlive: opts.ListenKeepAlive,
		now:       time.Now,
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.keepAlive <= 0 {
		d.keepAlive = 30 * time.Second
	}
	if err := d.migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open store postgres %s/%s: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Database, err)
	}
	return d, nil
}

// Close closes every connection of the pool and the lock connection (freeing the job locks).
// A running Listen has its own connection, which goes when its context ends.
func (d *DB) Close() error {
	d.locks.close()
	d.pool.Close()
	return nil
}

func (d *DB) migrate(ctx context.Context) error {
	tx, err := d.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var schema *string
	if err := tx.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return err
	}
	if schema == nil {
		return errors.New("no schema of the search_path exists (create it, or fix search_path in the DSN)")
	}
	d.schema = *schema
	// Nodes starting together queue here; the lock is released when the transaction ends.
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('sekisho migrate ' || $1, 0))`, d.schema); err != nil {
		return fmt.Errorf("lock for migrations: %w", err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version TEXT PRIMARY KEY, applied BIGINT NOT NULL)`); err != nil {
		return err
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		version := strings.TrimSuffix(path.Base(name), ".sql")
		var done bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT FROM schema_migrations WHERE version = $1)`, version).Scan(&done); err != nil {
			return err
		}
		if done {
			continue
		}
		body, err := migrations.ReadFile(name)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, string(body)); err != nil {
			return fmt.Errorf("migration %s: %w", version, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, applied) VALUES ($1, $2)`, version, ms(d.now())); err != nil {
			return err
		}
	}
	return tx.Commit(ctx)
}

// Times are stored as Unix milliseconds, the same in both backends.
func ms(t time.Time) int64     { return sqlrow.MS(t) }
func fromMS(v int64) time.Time { return sqlrow.FromMS(v) }
