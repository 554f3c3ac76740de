package harvest

import (
	"context"
	"net/netip"
	"path/filepath"
	"regexp"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/lists"
	"github.com/sekisho/sekisho/internal/store"
	"github.com/sekisho/sekisho/internal/store/sqlite"
	"github.com/sekisho/sekisho/internal/testenv"
)

type counter struct{ planted, hits atomic.Int64 }

func (c *counter) HarvestPlanted() { c.planted.Add(1) }
func (c *counter) HarvestHit()     { c.hits.Add(1) }

// node is one sekisho node's view: its lists and planter over a shared store.
type node struct {
	p     *Planter
	lists *lists.Lists
	count *counter
}

func openStore(t testing.TB) store.Store {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// newNode makes a planter over st; with run, its writer runs until the test ends.
func newNode(t testing.TB, st store.Store, clk *testenv.Clock, run bool) *node {
	t.Helper()
	l := lists.New()
	if err := l.Reload(t.Context(), st); err != nil {
		t.Fatal(err)
	}
	c := &counter{}
	p, err := New(t.Context(), Options{Domain: "Trap.Example.JP", TTL: 90 * 24 * time.Hour},
		Deps{Store: st, Lists: l, Logger: testenv.Logger(t), Now: clk.Now, Counter: c})
	if err != nil {
		t.Fatal(err)
	}
	if run {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { p.Run(ctx); close(done) }()
		t.Cleanup(func() { cancel(); <-done })
	}
	return &node{p: p, lists: l, count: c}
}

var addrRE = regexp.MustCompile(`^[a-z2-7]{16}@trap\.example\.jp$`)

// One address per client IP per UTC day, the same on every node sharing the store.
func TestAddressPerVisitorPerDay(t *testing.T) {
	st := openStore(t)
	clk := testenv.NewClock(time.Date(2026, 11, 22, 0, 0, 1, 0, time.UTC))
	a, b := newNode(t, st, clk, false), newNode(t, st, clk, false)
	ip7, ip8 := netip.MustParseAddr("127.0.0.7"), netip.MustParseAddr("127.0.0.8")
	addr := func(n *node, ip netip.Addr) string {
		t.Helper()
		s, err := n.p.Address(t.Context(), ip)
		if err != nil {
			t.Fatal(err)
		}
		if !addrRE.MatchString(s) {
			t.Fatalf("address %q does not look like %s", s, addrRE)
		}
		return s
	}
	first := addr(a, ip7)
	clk.Set(clk.Now().Add(23 * time.Hour)) // still 2026-11-22 UTC
	if again := addr(a, ip7); again != first {
		t.Errorf("same IP, same day: %q then %q", first, again)
	}
	if other := addr(b, ip7); other != first {
		t.Errorf("another node gives %q for the visitor %q was made for", other, first)
	}
	if mapped := addr(a, netip.MustParseAddr("::ffff:127.0.0.7")); mapped != first {
		t.Errorf("v4-mapped form of the same IP: %q, want %q", mapped, first)
	}
	if other := addr(a, ip8); other == first {
		t.Errorf("two IPs got the same address %q", other)
	}
	clk.Set(clk.Now().Add(2 * time.Hour)) // 2026-11-23
	if next := addr(a, ip7); next == first {
		t.Errorf("the next day still gives %q", next)
	}

	// Another installation (another secret) gives other addresses.
	c := newNode(t, openStore(t), clk, false)
	if x, y := addr(a, ip7), addr(c, ip7); x == y {
		t.Errorf("two installations derive the same address %q", x)
	}
}

// The first view of a visitor plants the trap: the visit, and a DECOY entry that expires
// after the TTL; later views the same day write nothing.
func TestPlantRecordsOnce(t *testing.T) {
	st := openStore(t)
	clk := testenv.NewClock(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC))
	n := newNode(t, st, clk, true)
	ip := netip.MustParseAddr("127.0.0.7")
	v := Visit{IP: ip, UserAgent: "Harvester/2.0\r\nX-Evil: 1", URL: "https://www.example.jp/about.html"}
	addr, err := n.p.Plant(t.Context(), v)
	if err != nil {
		t.Fatal(err)
	}
	waitTrap(t, st, addr)
	tr, _ := st.GetTrap(t.Context(), addr)
	if tr.IP != "127.0.0.7" || tr.URL != v.URL || tr.UserAgent != "Harvester/2.0  X-Evil: 1" || !tr.Planted.Equal(clk.Now()) {
		t.Errorf("trap = %+v", tr)
	}
	if !testenv.Eventually(5*time.Second, func() bool { return n.lists.Decoy(addr) }) {
		t.Fatal("the planting node's lists do not have the DECOY entry")
	}
	es, err := st.Entries(t.Context(), store.Decoy, store.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 1 || es[0].Key != addr || es[0].Source != "harvest" || es[0].Target != "127.0.0.7" ||
		es[0].Note != tr.UserAgent || !es[0].Expires.Equal(clk.Now().Add(90*24*time.Hour)) {
		t.Fatalf("DECOY = %+v, want %s from harvest for 127.0.0.7 expiring in 90 days", es, addr)
	}
	_, seq, _ := st.Snapshot(t.Context())
	for range 5 {
		if again, err := n.p.Plant(t.Context(), v); err != nil || again != addr {
			t.Fatalf("Plant again = %q, %v", again, err)
		}
	}
	// Another node sees the trap in its lists and does not write it again.
	other := newNode(t, st, clk, true)
	if again, err := other.p.Plant(t.Context(), v); err != nil || again != addr {
		t.Fatalf("Plant on another node = %q, %v", again, err)
	}
	time.Sleep(100 * time.Millisecond) // give a wrong write the time to happen
	if _, seq2, _ := st.Snapshot(t.Context()); seq2 != seq {
		t.Errorf("views after the first wrote %d changes, want none", seq2-seq)
	}
	if got := n.count.planted.Load() + other.count.planted.Load(); got != 1 {
		t.Errorf("HarvestPlanted counted %d, want 1", got)
	}
}

// An address that is a user, an alias, an admin's decoy or another visitor's trap is
// never planted: the next derivation is used.
func TestAddressAvoidsTakenAddresses(t *testing.T) {
	st := openStore(t)
	clk := testenv.NewClock(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC))
	ip := netip.MustParseAddr("192.0.2.10")
	probe := newNode(t, st, clk, false)
	day := dayOf(clk.Now())
	cand := make([]string, 5)
	for i := range cand {
		cand[i] = probe.p.derive(ip, day, i)
	}
	ctx := t.Context()
	if err := st.PutUser(ctx, store.User{Address: cand[0], PasswordHash: "x"}); err != nil {
		t.Fatal(err)
	}
	for _, e := range []store.Entry{
		{List: store.Alias, Key: cand[1], Target: "taro@example.jp", Owner: "taro@example.jp"},
		{List: store.Decoy, Key: cand[2]},
		{List: store.Decoy, Key: cand[3], Source: "harvest", Target: "192.0.2.99"},
	} {
		if err := st.Put(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	n := newNode(t, st, clk, false)
	got, err := n.p.Address(ctx, ip)
	if err != nil {
		t.Fatal(err)
	}
	if got != cand[4] {
		t.Errorf("address = %q, want the fifth derivation %q (the first four are taken: %v)", got, cand[4], cand[:4])
	}
	// This visitor's own trap, planted earlier (by any node), is not "taken".
	if err := st.Put(ctx, store.Entry{List: store.Decoy, Key: cand[4], Source: "harvest", Target: "192.0.2.10"}); err != nil {
		t.Fatal(err)
	}
	n2 := newNode(t, st, clk, false)
	if got2, err := n2.p.Address(ctx, ip); err != nil || got2 != cand[4] {
		t.Errorf("with its own trap in DECOY: %q, %v; want %q", got2, err, cand[4])
	}
}

// A store that fails the user check means no address: the page goes out unseeded.
func TestAddressStoreDown(t *testing.T) {
	st := openStore(t)
	clk := testenv.NewClock(time.Now())
	n := newNode(t, st, clk, false)
	st.Close()
	if a, err := n.p.Address(t.Context(), netip.MustParseAddr("192.0.2.1")); err == nil {
		t.Fatalf("Address with the store closed = %q, want an error", a)
	}
}

func waitTrap(t *testing.T, st store.Store, addr string) {
	t.Helper()
	if !testenv.Eventually(5*time.Second, func() bool { _, err := st.GetTrap(t.Context(), addr); return err == nil }) {
		t.Fatalf("trap %s not stored", addr)
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// The memory of the day's visitors is bounded, and a full write queue leaves a trap to be
// planted at a later view, never lost as "planted".
func TestPlanterBounds(t *testing.T) {
	st := openStore(t)
	clk := testenv.NewClock(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC))
	l := lists.New()
	p, err := New(t.Context(), Options{Domain: "example.jp", TTL: time.Hour, MaxVisitors: 2, Queue: 1},
		Deps{Store: st, Lists: l, Logger: testenv.Logger(t), Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	ips := []netip.Addr{mustAddr("192.0.2.1"), mustAddr("192.0.2.2"), mustAddr("192.0.2.3")}
	var addrs []string
	for _, ip := range ips {
		a, err := p.Plant(t.Context(), Visit{IP: ip})
		if err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, a)
	}
	if n := len(p.visitor); n > 2 {
		t.Errorf("%d visitors remembered, want at most 2", n)
	}
	for i, ip := range ips { // forgotten ones are derived again, the same
		if a, _ := p.Address(t.Context(), ip); a != addrs[i] {
			t.Errorf("%s: %q, then %q", ip, addrs[i], a)
		}
	}
	// Queue of 1, no writer: the first visitor is queued, the others were not recorded.
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	waitTrap(t, st, addrs[0])
	if _, err := p.Plant(t.Context(), Visit{IP: ips[2]}); err != nil {
		t.Fatal(err)
	}
	waitTrap(t, st, addrs[2]) // the view after the full queue plants it
}
