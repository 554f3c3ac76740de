// Package metrics holds sekisho's Prometheus metrics (SPEC §10): one Metrics per server,
// with its own registry, served in the Prometheus text format by Handler.
//
// The modules count through the methods of *Metrics and of the handles it returns. Every
// one of them does nothing on a nil receiver, so a module given no Metrics counts nothing.
// The handles the data paths use are resolved once (per listener, per upstream server, per
// proxy), never per message or request. What is a state rather than an event (list sizes,
// upstream and backend health, held mail, outbox depth) is read at scrape time from the
// sources given with Watch*.
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

	"github.com/sekisho/sekisho/internal/stats"
)

// Verdict is how one SMTP transaction or recipient ended; its String is the value of the
// verdict label.
type Verdict int

// Verdicts. Refusals at RCPT are counted per recipient; a transaction gets the verdict of
// its DATA, or of its last refused recipient when none was accepted.
const (
	Pass            Verdict = iota // forwarded upstream
	Held                           // held in the store, the sender challenged
	Confirmed                      // recipients of held mail released on confirmation (no transactions)
	Decoy                          // a decoy address was mailed (client blacklisted)
	RefusedRelay                   // not a local domain, client may not relay
	RefusedSyntax                  // bad address, or a message refused at DATA (bare CR/LF, size)
	RefusedBlack                   // sender in BLACK, or the client after a decoy hit
	AliasDisabled                  // mail to a disabled alias
	RefusedUpstream                // the upstream server refused (5xx)
	Tempfail                       // a temporary failure (4xx): upstream down, store error
	numVerdicts
)

func (v Verdict) String() string {
	switch v {
	case Pass:
		return "pass"
	case Held:
		return "held"
	case Confirmed:
		return "confirmed"
	case Decoy:
		return "decoy"
	case RefusedRelay:
		return "refused_relay"
	case RefusedSyntax:
		return "refused_syntax"
	case RefusedBlack:
		return "refused_black"
	case AliasDisabled:
		return "alias_disabled"
	case RefusedUpstream:
		return "refused_upstream"
	case Tempfail:
		return "tempfail"
	}
	return "unknown"
}

// Metrics is every metric of one sekisho server, in a registry of its own.
type Metrics struct {
	reg *prometheus.Registry

	smtpConns  *prometheus.CounterVec
	smtpActive prometheus.Gauge
	txs        [numVerdicts]prometheus.Counter
	rcpts      [numVerdicts]prometheus.Counter
	decoyHits  prometheus.Counter

	upstreamSends *prometheus.CounterVec

	challengesSent       prometheus.Counter
	challengesSuppressed *prometheus.CounterVec

	proxyRequests *prometheus.CounterVec
	proxyBytes    *prometheus.CounterVec
	proxyRefusals *prometheus.CounterVec

	harvestPlanted prometheus.Counter
	harvestHits    prometheus.Counter

	state *stateCollector
}

// New returns a Metrics with every sekisho_* metric, and the Go and process collectors,
// registered in a new registry.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), state: newStateCollector()}
	counter := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
		m.reg.MustRegister(c)
		return c
	}
	counterVec := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
		m.reg.MustRegister(c)
		return c
	}
	m.smtpConns = counterVec("sekisho_smtp_connections_total", "SMTP connections accepted, refused ones included.", "listener_role")
	m.smtpActive = prometheus.NewGauge(prometheus.GaugeOpts{Name: "sekisho_smtp_connections_active", Help: "SMTP connections open now."})
	m.reg.MustRegister(m.smtpActive)
	txs := counterVec("sekisho_smtp_transactions_total", "SMTP transactions by verdict.", "verdict")
	rcpts := counterVec("sekisho_smtp_recipients_total", "SMTP recipients by verdict.", "verdict")
	for v := range numVerdicts {
		m.txs[v] = txs.WithLabelValues(v.String())
		m.rcpts[v] = rcpts.WithLabelValues(v.String())
	}
	m.decoyHits = counter("sekisho_decoy_hits_total", "Decoy addresses mailed.")
	m.upstreamSends = counterVec("sekisho_upstream_sends_total", "Messages handed to upstream SMTP servers, by server and result (ok, refused, failed, unconfirmed).", "server", "result")
	m.challengesSent = counter("sekisho_challenges_sent_total", "Challenge mails accepted by the relay.")
	m.challengesSuppressed = counterVec("sekisho_challenges_suppressed_total", "Challenges not sent, by reason.", "reason")
	m.proxyRequests = counterVec("sekisho_proxy_requests_total", "Proxy requests (http, socks) and web route requests (reverse, static), refused ones included.", "proxy", "method")
	m.proxyBytes = counterVec("sekisho_proxy_bytes_total", "Bytes relayed: in from clients, out to clients.", "proxy", "direction")
	m.proxyRefusals = counterVec("sekisho_proxy_refusals_total", "Refused proxy and web requests, by reason.", "proxy", "reason")
	m.harvestPlanted = counter("sekisho_harvest_planted_total", "Harvest-trap addresses planted in served pages.")
	m.harvestHits = counter("sekisho_harvest_hits_total", "Mail to planted harvest-trap addresses.")
	m.reg.MustRegister(m.state,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Registry is the registry of every metric, for tests and further collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Transaction counts one SMTP transaction.
func (m *Metrics) Transaction(v Verdict) {
	if m != nil {
		m.txs[v].Inc()
	}
}

// Recipients counts n SMTP recipients with one verdict.
func (m *Metrics) Recipients(v Verdict, n int) {
	if m != nil && n > 0 {
		m.rcpts[v].Add(float64(n))
	}
}

// DecoyHit counts a mail to a decoy address.
func (m *Metrics) DecoyHit() {
	if m != nil {
		m.decoyHits.Inc()
	}
}

// ChallengeSent counts a challenge mail the relay accepted.
func (m *Metrics) ChallengeSent() {
	if m != nil {
		m.challengesSent.Inc()
	}
}

// ChallengeSuppressed counts a challenge not sent, by reason (package challenge's Reason
// values: a small fixed set).
func (m *Metrics) ChallengeSuppressed(reason string) {
	if m != nil {
		m.challengesSuppressed.WithLabelValues(reason).Inc()
	}
}

// HarvestPlanted counts a harvest-trap address planted in a served page.
func (m *Metrics) HarvestPlanted() {
	if m != nil {
		m.harvestPlanted.Inc()
	}
}

// HarvestHit counts a mail to a planted harvest-trap address.
func (m *Metrics) HarvestHit() {
	if m != nil {
		m.harvestHits.Inc()
	}
}

// Decisions returns the cumulative totals of the decision series charted by the admin
// pages (stats.Decisions): "pass", "held" and "confirmed" recipients, "decoy" hits,
// "relay_refused" recipients, and "proxy_refused" requests (every proxy and web refusal).
// Nil returns nil.
func (m *Metrics) Decisions() map[string]int64 {
	if m == nil {
		return nil
	}
	return map[string]int64{
		stats.Pass:         value(m.rcpts[Pass]),
		stats.Held:         value(m.rcpts[Held]),
		stats.Confirmed:    value(m.rcpts[Confirmed]),
		stats.Decoy:        value(m.decoyHits),
		stats.RelayRefused: value(m.rcpts[RefusedRelay]),
		stats.ProxyRefused: value(m.proxyRefusals),
	}
}

// value sums what a counter or counter vector has counted.
func value(c prometheus.Collector) int64 {
	ch := make(chan prometheus.Metric, 64)
	go func() {
		c.Collect(ch)
		close(ch)
	}()
	var sum float64
	for pm := range ch {
		var d dto.Metric
		if err := pm.Write(&d); err == nil && d.Counter != nil {
			sum += d.Counter.GetValue()
		}
	}
	return int64(sum)
}
