package cluster_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/sekisho/sekisho/internal/store/postgres"
	"github.com/sekisho/sekisho/internal/store/sqlite"
	"github.com/sekisho/sekisho/internal/testenv"
)

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
