package metrics_test

import (
	"io"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/lists"
	"github.com/sekisho/sekisho/internal/metrics"
	"github.com/sekisho/sekisho/internal/store"
	"github.com/sekisho/sekisho/internal/store/sqlite"
)

// scrape GETs m's Handler and returns the text exposition.
func scrape(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("scrape: status %d: %s", rec.Code, rec.Body)
	}
	b, err := io.ReadAll(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// hasLine reports whether the exposition has the sample line exactly.
func hasLine(text, line string) bool {
	for l := range strings.SplitSeq(text, "\n") {
		if l == line {
			return true
		}
	}
	return false
}

func TestHandlerNames(t *testing.T) {
	ctx := t.Context()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	l := lists.New()
	l.Load([]store.Entry{
		{List: store.Decoy, Key: "trap@example.jp"},
		{List: store.Black, Key: "192.0.2.1"},
		{List: store.Black, Key: "192.0.2.2"},
	}, 3)

	m := metrics.New()
	m.WatchLists(l)
	m.WatchStore(st, nil)
	m.WatchUpstream(func() []metrics.Health {
		return []metrics.Health{{Server: "192.0.2.10:25", Up: true}, {Server: "192.0.2.11:25", Up: false}}
	})
	m.WatchBackends(func() []metrics.Backend {
		return []metrics.Backend{{Route: "www.example.jp/", Addr: "127.0.0.1:8081", Up: true}}
	})
	m.SMTPConns("mx").Opened()
	m.Transaction(metrics.Pass)
	m.Recipients(metrics.Pass, 2)
	m.Recipients(metrics.RefusedRelay, 1)
	m.DecoyHit()
	m.UpstreamSends("192.0.2.10:25").OK()
	m.ChallengeSent()
	m.ChallengeSuppressed("interval")
	px := m.Proxy(metrics.ProxyHTTP)
	px.Request("CONNECT")
	px.Request("BREW") // not a method we know: "other"
	px.Bytes(10, 20)
	px.Refused("mail-port")
	m.Proxy(metrics.ProxyWeb).Refused("proxy-probe")
	m.HarvestPlanted()
	m.HarvestHit()

	text := scrape(t, m)
	for _, want := range []string{
		`sekisho_smtp_connections_total{listener_role="mx"} 1`,
		`sekisho_smtp_connections_active 1`,
		`sekisho_smtp_transactions_total{verdict="pass"} 1`,
		`sekisho_smtp_transactions_total{verdict="held"} 0`,
		`sekisho_smtp_recipients_total{verdict="pass"} 2`,
		`sekisho_smtp_recipients_total{verdict="refused_relay"} 1`,
		`sekisho_decoy_hits_total 1`,
		`sekisho_list_entries{list="decoy"} 1`,
		`sekisho_list_entries{list="black"} 2`,
		`sekisho_upstream_up{server="192.0.2.10:25"} 1`,
		`sekisho_upstream_up{server="192.0.2.11:25"} 0`,
		`sekisho_upstream_sends_total{result="ok",server="192.0.2.10:25"} 1`,
		`sekisho_backend_up{backend="127.0.0.1:8081",route="www.example.jp/"} 1`,
		`sekisho_challenges_sent_total 1`,
		`sekisho_challenges_suppressed_total{reason="interval"} 1`,
		`sekisho_outbox_depth 0`,
		`sekisho_held_messages 0`,
		`sekisho_held_bytes 0`,
		`sekisho_proxy_requests_total{method="connect",proxy="http"} 1`,
		`sekisho_proxy_requests_total{method="other",proxy="http"} 1`,
		`sekisho_proxy_bytes_total{direction="in",proxy="http"} 10`,
		`sekisho_proxy_bytes_total{direction="out",proxy="http"} 20`,
		`sekisho_proxy_refusals_total{proxy="http",reason="mail_port"} 1`,
		`sekisho_proxy_refusals_total{proxy="web",reason="proxy_probe"} 1`,
		`sekisho_harvest_planted_total 1`,
		`sekisho_harvest_hits_total 1`,
	} {
		if !hasLine(text, want) {
			t.Errorf("scrape has no line %s", want)
		}
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if !strings.Contains(text, "\n"+name+" ") {
			t.Errorf("scrape has no %s (Go and process collectors)", name)
		}
	}

	got := m.Decisions()
	want := map[string]int64{"pass": 2, "held": 0, "confirmed": 0, "decoy": 1, "relay_refused": 1, "proxy_refused": 2}
	if len(got) != len(want) {
		t.Errorf("Decisions() = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("Decisions()[%q] = %d, want %d", k, got[k], v)
		}
	}
}

// TestStoreStatsCached checks that the held mail gauges come from the store at most every
// HeldRefresh, while the outbox depth is read at every scrape.
func TestStoreStatsCached(t *testing.T) {
	ctx := t.Context()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	m := metrics.New()
	m.WatchStore(st, nil)
	if text := scrape(t, m); !hasLine(text, "sekisho_held_messages 0") {
		t.Fatalf("first scrape: no sekisho_held_messages 0")
	}
	data := []byte("Subject: x\r\n\r\nx\r\n")
	h := store.Held{Expires: time.Now().Add(time.Hour), From: "s@x.test", Rcpts: []store.HeldRcpt{{Rcpt: "a@example.jp"}}}
	if err := st.Hold(ctx, &h, data); err != nil {
		t.Fatal(err)
	}
	if err := st.OutboxAdd(ctx, &store.OutMsg{Kind: "challenge", To: []string{"s@x.test"}, Data: data}); err != nil {
		t.Fatal(err)
	}
	text := scrape(t, m)
	if !hasLine(text, "sekisho_held_messages 0") {
		t.Errorf("second scrape within %v read the store again for held mail", metrics.HeldRefresh)
	}
	if !hasLine(text, "sekisho_outbox_depth 1") {
		t.Errorf("second scrape: outbox depth not read at scrape time")
	}
}

func TestNilCountsNothing(t *testing.T) {
	var m *metrics.Metrics
	m.Transaction(metrics.Pass)
	m.Recipients(metrics.Held, 3)
	m.DecoyHit()
	m.SMTPConns("mx").Opened()
	m.SMTPConns("mx").Closed()
	m.UpstreamSends("x:25").OK()
	m.Proxy(metrics.ProxySocks).Request("CONNECT")
	m.Proxy(metrics.ProxySocks).Refused("black")
	m.WatchLists(lists.New())
	if d := m.Decisions(); d != nil {
		t.Errorf("nil Decisions() = %v, want nil", d)
	}
}
