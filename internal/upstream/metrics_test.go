package upstream

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	dto "github.com/prometheus/client_model/go"

	"github.com/sekisho/sekisho/internal/metrics"
	"github.com/sekisho/sekisho/internal/testenv"
)

// sends returns sekisho_upstream_sends_total by "server result".
func sends(t *testing.T, m *metrics.Metrics) map[string]float64 {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "sekisho_upstream_sends_total" {
			continue
		}
		for _, pm := range mf.GetMetric() {
			out[label(pm, "server")+" "+label(pm, "result")] = pm.GetCounter().GetValue()
		}
	}
	return out
}

func label(pm *dto.Metric, name string) string {
	for _, l := range pm.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// Every server's attempts are counted by result: a dead server's failure before failover,
// a message delivered, a message refused, on Send and on a Tx alike.
func TestSendsCounted(t *testing.T) {
	up := testenv.NewUpstream(t, "tcp4")
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close() // nothing listens there now: connections are refused
	m := metrics.New()
	p, err := New(Options{Servers: []string{dead, up.Addr}, Balance: BalanceOrdered, TLS: TLSNone, RetryAfter: time.Hour, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	env := Envelope{From: "a@x.test", To: []string{"b@example.jp"}}
	body := []byte("Subject: x\r\n\r\ny\r\n")

	if _, err := p.Send(ctx, env, body); err != nil {
		t.Fatalf("Send: %v", err)
	}
	up.FailData(&smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "no"})
	if _, err := p.Send(ctx, env, body); err == nil {
		t.Fatal("Send with DATA refused: nil error")
	}
	up.FailData(nil)
	tx, err := p.Begin(ctx, env, 0, "")
	if err != nil {
		t.Fatalf("Begin: %v", err)
	}
	if err := tx.Rcpt(ctx, "b@example.jp"); err != nil {
		t.Fatalf("Rcpt: %v", err)
	}
	if err := tx.Data(ctx, []string{"b@example.jp"}, body); err != nil {
		t.Fatalf("Tx.Data: %v", err)
	}

	want := map[string]float64{
		dead + " failed":         1, // once: then it sits out its penalty, tried last
		dead + " ok":             0,
		up.Addr + " ok":          2,
		up.Addr + " refused":     1,
		up.Addr + " failed":      0,
		up.Addr + " unconfirmed": 0,
	}
	got := sends(t, m)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("sends %s = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
}
