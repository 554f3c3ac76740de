package testenv

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresDSN is the shared test database: SEKISHO_TEST_POSTGRES (a URL), or the one every
// machine of this project runs (127.0.0.1:5432, trust auth, database test).
func PostgresDSN() string {
	if dsn := os.Getenv("SEKISHO_TEST_POSTGRES"); dsn != "" {
		return dsn
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// PostgresAdmin connects to the test database, closed when the test ends. When it cannot,
// the test is skipped, or fails under CI=true: CI has PostgreSQL, so not reaching it is a
// failure.
func PostgresAdmin(tb testing.TB) *pgx.Conn {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, PostgresDSN())
	if err != nil {
		where := "127.0.0.1:5432"
		if cfg, perr := pgx.ParseConfig(PostgresDSN()); perr == nil {
			where = fmt.Sprintf("%s:%d", cfg.Host, cfg.Port)
		}
		Missing(tb, "PostgreSQL at %s unreachable (the Debian package postgresql, trust auth, database test): %v", where, err)
	}
	tb.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// PostgresSchema creates an empty schema in the test database, dropped when the test ends
// (after what later cleanups stop), and returns a DSN whose search_path and
// application_name are that schema's name.
func PostgresSchema(tb testing.TB) (dsn, name string) {
	tb.Helper()
	conn := PostgresAdmin(tb)
	var b [6]byte
	crand.Read(b[:])
	name = "sekisho_test_" + hex.EncodeToString(b[:])
	ctx := context.Background()
	if _, err := conn.Exec(ctx, `CREATE SCHEMA `+name); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if _, err := conn.Exec(ctx, `DROP SCHEMA `+name+` CASCADE`); err != nil {
			tb.Errorf("drop schema %s: %v", name, err)
		}
	})
	u, err := url.Parse(PostgresDSN())
	if err != nil {
		tb.Fatalf("SEKISHO_TEST_POSTGRES must be a URL: %v", err)
	}
	q := u.Query()
	q.Set("search_path", name)
	q.Set("application_name", name)
	q.Set("pool_max_conns", "6")
	u.RawQuery = q.Encode()
	return u.String(), name
}
