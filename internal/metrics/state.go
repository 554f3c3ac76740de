package metrics

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sekisho/sekisho/internal/store"
)

// HeldRefresh is how often, at most, the held mail gauges are read from the store: a
// scrape in between gets the values of the last read.
const HeldRefresh = 30 * time.Second

// storeTimeout bounds the store queries of one scrape.
const storeTimeout = 5 * time.Second

// ListSizer gives the number of entries of each list; *lists.Lists is one.
type ListSizer interface {
	Sizes() map[store.List]int
}

// StoreStats are the store queries behind the held mail and outbox gauges; store.Store
// has them.
type StoreStats interface {
	HeldStats(ctx context.Context) (messages int, bytes int64, err error)
	OutboxLen(ctx context.Context) (int, error)
}

// Health is the state of one upstream SMTP server.
type Health struct {
	Server string
	Up     bool
}

// Backend is the state of one reverse-proxy backend.
type Backend struct {
	Route string // the route's host and path
	Addr  string
	Up    bool
}

// WatchLists makes sekisho_list_entries read l at scrape time.
func (m *Metrics) WatchLists(l ListSizer) {
	if m != nil {
		m.state.set(func(s *stateCollector) { s.lists = l })
	}
}

// WatchUpstream makes sekisho_upstream_up read f at scrape time.
func (m *Metrics) WatchUpstream(f func() []Health) {
	if m != nil {
		m.state.set(func(s *stateCollector) { s.upstream = f })
	}
}

// WatchBackends makes sekisho_backend_up read f at scrape time.
func (m *Metrics) WatchBackends(f func() []Backend) {
	if m != nil {
		m.state.set(func(s *stateCollector) { s.backends = f })
	}
}

// WatchStore makes sekisho_outbox_depth read st at scrape time, and sekisho_held_messages
// and sekisho_held_bytes at most every HeldRefresh. Failed reads go to log (nil: discarded).
func (m *Metrics) WatchStore(st StoreStats, log *slog.Logger) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if m != nil {
		m.state.set(func(s *stateCollector) { s.store, s.log = st, log })
	}
}

// stateCollector reports what is a state rather than an event, read from its sources when
// scraped.
type stateCollector struct {
	listEntries, upstreamUp, backendUp, heldMessages, heldBytes, outboxDepth *prometheus.Desc

	mu       sync.Mutex // guards everything below; one scrape at a time reads the store
	lists    ListSizer
	upstream func() []Health
	backends func() []Backend
	store    StoreStats
	log      *slog.Logger
	heldAt   time.Time // last successful held read; zero: never
	held     int
	heldSize int64
}

func newStateCollector() *stateCollector {
	return &stateCollector{
		listEntries:  prometheus.NewDesc("sekisho_list_entries", "Entries in each list, as held in memory.", []string{"list"}, nil),
		upstreamUp:   prometheus.NewDesc("sekisho_upstream_up", "1 when the upstream SMTP server is in use, 0 while it is taken out after a failure.", []string{"server"}, nil),
		backendUp:    prometheus.NewDesc("sekisho_backend_up", "1 when the reverse-proxy backend takes requests, 0 while it is out.", []string{"route", "backend"}, nil),
		heldMessages: prometheus.NewDesc("sekisho_held_messages", "Held messages in the store (refreshed at most every 30 s).", nil, nil),
		heldBytes:    prometheus.NewDesc("sekisho_held_bytes", "Bytes of held messages in the store (refreshed at most every 30 s).", nil, nil),
		outboxDepth:  prometheus.NewDesc("sekisho_outbox_depth", "Messages waiting in the outbox (challenges).", nil, nil),
	}
}

func (s *stateCollector) set(f func(*stateCollector)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

// Describe implements prometheus.Collector.
func (s *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{s.listEntries, s.upstreamUp, s.backendUp, s.heldMessages, s.heldBytes, s.outboxDepth} {
		ch <- d
	}
}

// Collect implements prometheus.Collector. A source not given reports nothing.
func (s *stateCollector) Collect(ch chan<- prometheus.Metric) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lists != nil {
		for l, n := range s.lists.Sizes() {
			ch <- prometheus.MustNewConstMetric(s.listEntries, prometheus.GaugeValue, float64(n), string(l))
		}
	}
	if s.upstream != nil {
		seen := map[string]bool{}
		for _, h := range s.upstream() {
			if !seen[h.Server] { // one series per server, if two pools share one
				seen[h.Server] = true
				ch <- prometheus.MustNewConstMetric(s.upstreamUp, prometheus.GaugeValue, up(h.Up), h.Server)
			}
		}
	}
	if s.backends != nil {
		seen := map[Backend]bool{}
		for _, b := range s.backends() {
			if k := (Backend{Route: b.Route, Addr: b.Addr}); !seen[k] {
				seen[k] = true
				ch <- prometheus.MustNewConstMetric(s.backendUp, prometheus.GaugeValue, up(b.Up), b.Route, b.Addr)
			}
		}
	}
	if s.store != nil {
		s.collectStore(ch)
	}
}

// collectStore reports the outbox depth and the held mail, reading the latter only when
// the last read is HeldRefresh old.
func (s *stateCollector) collectStore(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if n, err := s.store.OutboxLen(ctx); err != nil {
		s.log.Warn("metrics: outbox depth", "err", err)
	} else {
		ch <- prometheus.MustNewConstMetric(s.outboxDepth, prometheus.GaugeValue, float64(n))
	}
	if now := time.Now(); now.Sub(s.heldAt) >= HeldRefresh {
		if n, size, err := s.store.HeldStats(ctx); err != nil {
			s.log.Warn("metrics: held mail", "err", err)
		} else {
			s.heldAt, s.held, s.heldSize = now, n, size
		}
	}
	if !s.heldAt.IsZero() {
		ch <- prometheus.MustNewConstMetric(s.heldMessages, prometheus.GaugeValue, float64(s.held))
		ch <- prometheus.MustNewConstMetric(s.heldBytes, prometheus.GaugeValue, float64(s.heldSize))
	}
}

func up(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
