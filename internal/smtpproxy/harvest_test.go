package smtpproxy

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/metrics"
	"github.com/sekisho/sekisho/internal/store"
)

// harvestHits reads sekisho_harvest_hits_total.
func harvestHits(t *testing.T, m *metrics.Metrics) float64 {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "sekisho_harvest_hits_total" {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatal("no sekisho_harvest_hits_total")
	return 0
}

// Mail to a harvest trap blacklists the sending client (source decoy) and the visitor the
// address was planted for (source harvest), and records the hit with the visit.
func TestHarvestTrapHit(t *testing.T) {
	m := metrics.New()
	h := newHarness(t, harnessOpts{metrics: m})
	planted := time.Now().Add(-time.Hour).Truncate(time.Second)
	trap := store.Trap{Address: "abcdefgh23456712@example.jp", IP: "198.51.100.7", UserAgent: "Harvester/1.0", URL: "https://www.example.jp/", Planted: planted}
	if err := h.store.PutTrap(t.Context(), trap); err != nil {
		t.Fatal(err)
	}
	h.put(store.Entry{List: store.Decoy, Key: trap.Address, Source: "harvest", Target: trap.IP, Note: trap.UserAgent})
	h.put(store.Entry{List: store.Decoy, Key: "admin-trap@example.jp"}) // an admin's decoy: no harvester

	c, _ := h.dial("127.0.0.3")
	c.expect("250", "EHLO spammer.test")
	c.expect("250", "MAIL FROM:<s@spam.test>")
	c.expect("550 5.1.1", "RCPT TO:<%s>", trap.Address)

	black, err := h.store.Entries(t.Context(), store.Black, store.Query{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, e := range black {
		got[e.Key] = e.Source
		if e.Expires.IsZero() {
			t.Errorf("BLACK %s has no expiry", e.Key)
		}
	}
	if len(got) != 2 || got["127.0.0.3"] != "decoy" || got["198.51.100.7"] != "harvest" {
		t.Fatalf("BLACK = %v, want 127.0.0.3 (decoy) and 198.51.100.7 (harvest)", got)
	}
	if !h.lists.BlackIP(netip.MustParseAddr("198.51.100.7"), time.Now()) {
		t.Error("the harvester is not in this node's lists")
	}
	th, err := h.store.TrapHits(t.Context(), 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(th) != 1 || th[0].IP != "127.0.0.3" || th[0].Sender != "s@spam.test" || th[0].Trap.IP != trap.IP || th[0].Trap.UserAgent != trap.UserAgent || !th[0].Trap.Planted.Equal(planted) {
		t.Fatalf("TrapHits = %+v, want the hit from 127.0.0.3 linked to the visit of 198.51.100.7", th)
	}
	if n := harvestHits(t, m); n != 1 {
		t.Errorf("harvest hits counted %v, want 1", n)
	}

	// An admin's decoy blacklists the sender only, and counts no harvest hit.
	c2, _ := h.dial("127.0.0.4")
	c2.expect("250", "EHLO spammer2.test")
	c2.expect("250", "MAIL FROM:<s2@spam.test>")
	c2.expect("550 5.1.1", "RCPT TO:<admin-trap@example.jp>")
	black, _ = h.store.Entries(t.Context(), store.Black, store.Query{})
	if len(black) != 3 {
		var keys []string
		for _, e := range black {
			keys = append(keys, e.Key+"/"+e.Source)
		}
		t.Errorf("BLACK after an admin decoy hit = %s, want 3 entries", strings.Join(keys, " "))
	}
	if n := harvestHits(t, m); n != 1 {
		t.Errorf("harvest hits counted %v after an admin decoy, want still 1", n)
	}
}
