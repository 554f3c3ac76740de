package cluster_test

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sekisho/sekisho/internal/store/postgres"
	"github.com/sekisho/sekisho/internal/store/sqlite"
	"github.com/sekisho/sekisho/internal/testenv"
)

// testDSN is the database the tests use: SEKISHO_TEST_POSTGRES (a URL), or the one CI runs.
func testDSN() string {
	if dsn := os.Getenv("SEKISHO_TEST_POSTGRES"); dsn != "" {
		return dsn
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// adminConn connects to the test database. When it cannot, the test is skipped, or fails
// under CI=true: CI has PostgreSQL, so not reaching it is a failure.
func adminConn(tb testing.TB) *pgx.Conn {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, testDSN())
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("PostgreSQL (%s) unreachable (CI=true: failing, not skipping): %v", testDSN(), err)
		}
		tb.Skipf("PostgreSQL (%s) unreachable: %v", testDSN(), err)
	}
	tb.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// testSchema creates an empty schema, dropped when the test ends, and returns a DSN whose
// search_path and application_name are that schema's name.
func testSchema(tb testing.TB) (dsn, name string) {
	tb.Helper()
	conn := adminConn(tb)
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
	u, err := url.Parse(testDSN())
	if err != nil {
		tb.Fatalf("SEKISHO_TEST_POSTGRES must be a URL: %v", err)
	}
	q := u.Query()
	q.Set("search_path", name)
	q.Set("application_name", name)
	q.Set("pool_max_conns", "4")
	u.RawQuery = q.Encode()
	return u.String(), name
}

func openPG(tb testing.TB, dsn string) *postgres.DB {
	tb.Helper()
	d, err := postgres.OpenWith(context.Background(), dsn, postgres.Options{Logger: testenv.Logger(tb)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { d.Close() })
	return d
}

func openSQLite(tb testing.TB) *sqlite.DB {
	tb.Helper()
	d, err := sqlite.Open(context.Background(), filepath.Join(tb.TempDir(), "sekisho.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { d.Close() })
	return d
}

// terminateLockSession ends the lock connection of the store opened on schema name, as a
// database restart or a network cut would, and returns how many sessions it ended.
func terminateLockSession(tb testing.TB, admin *pgx.Conn, name string) int {
	tb.Helper()
	var n int
	err := admin.QueryRow(context.Background(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`,
		name+"-lock").Scan(&n)
	if err != nil {
		tb.Fatal(fmt.Errorf("terminate lock session: %w", err))
	}
	return n
}
