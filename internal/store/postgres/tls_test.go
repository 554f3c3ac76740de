package postgres

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/store"
	"github.com/sekisho/sekisho/internal/store/storetest"
	"github.com/sekisho/sekisho/internal/testenv"
)

// TestTLS: a throwaway PostgreSQL cluster with ssl on, a certificate of a test CA, and a
// pg_hba.conf that only accepts TLS (hostssl). A store opened with sslmode=verify-full and
// that CA as sslrootcert works; with another CA the certificate is refused; without TLS the
// server refuses the connection.
func TestTLS(t *testing.T) {
	t.Parallel()
	ca := testenv.NewCA(t, "sekisho test CA")
	_, certPEM, keyPEM := ca.Issue(t, "localhost", "127.0.0.1")
	pg := testenv.StartPostgres(t, testenv.PostgresOptions{
		Conf: []string{"ssl = on", "ssl_cert_file = 'server.crt'", "ssl_key_file = 'server.key'"},
		HBA:  []string{"hostssl all all 127.0.0.1/32 trust"},
		Files: map[string][]byte{
			"server.crt": certPEM,
			"server.key": keyPEM,
		},
	})

	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.PEM")
	otherFile := filepath.Join(dir, "other-ca.PEM")
	if err := os.WriteFile(caFile, ca.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(otherFile, testenv.NewCA(t, "another CA").PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	dsn := func(sslmode, rootcert string) string {
		q := url.Values{"sslmode": {sslmode}, "connect_timeout": {"5"}, "pool_max_conns": {"6"}}
		if rootcert != "" {
			q.Set("sslrootcert", rootcert)
		}
		return pg.DSN("localhost", q)
	}
	ctx := context.Background()

	t.Run("verify-full", func(t *testing.T) {
		d, err := OpenWith(ctx, dsn("verify-full", caFile), Options{Logger: testenv.Logger(t)})
		if err != nil {
			t.Fatalf("Open with sslmode=verify-full and the test CA: %v", err)
		}
		defer d.Close()
		var ssl bool
		var version string
		if err := d.pool.QueryRow(ctx, `SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()`).Scan(&ssl, &version); err != nil {
			t.Fatal(err)
		}
		if !ssl {
			t.Fatal("pg_stat_ssl: this connection is not encrypted")
		}
		t.Logf("connected to localhost:%d over %s, certificate verified against the test CA", pg.Port, version)

		if err := d.Put(ctx, store.Entry{List: store.Decoy, Key: "trap@example.jp", Note: "over TLS"}); err != nil {
			t.Fatal(err)
		}
		entries, seq, err := d.Snapshot(ctx)
		if err != nil || len(entries) != 1 || entries[0].Key != "trap@example.jp" || seq != 1 {
			t.Fatalf("Snapshot = %+v at %d, %v; want the one entry at seq 1", entries, seq, err)
		}
		ch, err := d.Changes(ctx, 0, 0)
		if err != nil || len(ch) != 1 || ch[0].Op != store.OpPut || ch[0].Entry.Key != "trap@example.jp" {
			t.Fatalf("Changes = %+v, %v", ch, err)
		}
		// Listen's own connection goes over TLS too.
		wake := startListen(t, d)
		if err := d.Put(ctx, store.Entry{List: store.Black, Key: "192.0.2.1", Source: "decoy"}); err != nil {
			t.Fatal(err)
		}
		select {
		case <-wake:
		case <-time.After(5 * time.Second):
			t.Fatal("no wake over the TLS listening connection")
		}
	})

	t.Run("conformance", func(t *testing.T) {
		admin, err := Open(ctx, dsn("verify-full", caFile))
		if err != nil {
			t.Fatal(err)
		}
		defer admin.Close()
		n := 0
		storetest.Run(t, func(t *testing.T) store.Store {
			n++ // the subtests run one after the other
			schema := fmt.Sprintf("tls_conformance_%d", n)
			if _, err := admin.pool.Exec(ctx, `CREATE SCHEMA `+schema); err != nil {
				t.Fatal(err)
			}
			q := url.Values{"sslmode": {"verify-full"}, "sslrootcert": {caFile}, "search_path": {schema}, "pool_max_conns": {"4"}}
			return open(t, pg.DSN("localhost", q))
		})
	})

	t.Run("other-CA", func(t *testing.T) {
		d, err := Open(ctx, dsn("verify-full", otherFile))
		if err == nil {
			d.Close()
			t.Fatal("Open with sslmode=verify-full and a CA that did not sign the server's certificate succeeded")
		}
		if !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("error does not mention the certificate: %v", err)
		}
		t.Logf("refused as it must be: %v", err)
	})

	t.Run("no-TLS", func(t *testing.T) {
		d, err := Open(ctx, dsn("disable", ""))
		if err == nil {
			d.Close()
			t.Fatal("Open with sslmode=disable succeeded: pg_hba.conf only allows hostssl")
		}
		if !strings.Contains(err.Error(), "pg_hba.conf") {
			t.Fatalf("error does not come from pg_hba.conf: %v", err)
		}
		t.Logf("refused as it must be: %v", err)
	})
}
