package lists

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/store"
	"github.com/sekisho/sekisho/internal/store/sqlite"
)

func TestLookups(t *testing.T) {
	now := time.Now()
	l := New()
	l.Load([]store.Entry{
		{List: store.Alias, Key: "shop1@example.jp", Target: "taro@example.jp", Owner: "taro@example.jp"},
		{List: store.Alias, Key: "old@example.jp", Target: "taro@example.jp", Disabled: true},
		{List: store.White, Key: "friend@a.test", Kind: store.KindFrom, Owner: "taro@example.jp"},
		{List: store.White, Key: "@partner.test", Kind: store.KindFrom},
		{List: store.White, Key: "list@example.jp", Kind: store.KindTo, Owner: "list@example.jp"},
		{List: store.Decoy, Key: "trap@example.jp"},
		{List: store.Decoy, Key: "x7k2@example.jp", Source: "harvest", Target: "203.0.113.9"},
		{List: store.Black, Key: "192.0.2.1"},
		{List: store.Black, Key: "198.51.100.0/24"},
		{List: store.Black, Key: "2001:db8::/32"},
		{List: store.Black, Key: "192.0.2.2", Expires: now.Add(-time.Second)},
		{List: store.Black, Key: "spam@b.test"},
		{List: store.Relay, Key: "s@c.test", Kind: store.KindSender},
		{List: store.Relay, Key: store.PairKey("p@c.test", "taro@example.jp"), Kind: store.KindPair},
	}, 7)
	if l.Seq() != 7 {
		t.Errorf("Seq = %d, want 7", l.Seq())
	}
	if a, ok := l.Alias("shop1@example.jp"); !ok || a.Mailbox != "taro@example.jp" || a.Disabled {
		t.Errorf("Alias(shop1) = %+v %v", a, ok)
	}
	if d, ok := l.DecoyOf("x7k2@example.jp"); !ok || d != (DecoyEntry{Source: "harvest", Target: "203.0.113.9"}) {
		t.Errorf("DecoyOf(harvest trap) = %+v %v", d, ok)
	}
	if d, ok := l.DecoyOf("trap@example.jp"); !ok || d != (DecoyEntry{}) {
		t.Errorf("DecoyOf(admin decoy) = %+v %v", d, ok)
	}
	if _, ok := l.DecoyOf("taro@example.jp"); ok {
		t.Error("DecoyOf(not a decoy) found an entry")
	}
	if a, ok := l.Alias("old@example.jp"); !ok || !a.Disabled {
		t.Errorf("Alias(old) = %+v %v, want disabled", a, ok)
	}
	checks := []struct {
		name string
		got  bool
		want bool
	}{
		{"white from, owner's entry, owner", l.WhiteFrom("friend@a.test", "taro@example.jp"), true},
		{"white from, owner's entry, other user", l.WhiteFrom("friend@a.test", "hanako@example.jp"), false},
		{"white from, global @domain", l.WhiteFrom("x@partner.test", "hanako@example.jp"), true},
		{"white from, unknown", l.WhiteFrom("x@other.test", "taro@example.jp"), false},
		{"white to", l.WhiteTo("list@example.jp", "list@example.jp"), true},
		{"white to, other rcpt", l.WhiteTo("taro@example.jp", "taro@example.jp"), false},
		{"decoy", l.Decoy("trap@example.jp"), true},
		{"not decoy", l.Decoy("taro@example.jp"), false},
		{"black ip", l.BlackIP(netip.MustParseAddr("192.0.2.1"), now), true},
		{"black ip v4-mapped", l.BlackIP(netip.MustParseAddr("::ffff:192.0.2.1"), now), true},
		{"black net v4", l.BlackIP(netip.MustParseAddr("198.51.100.77"), now), true},
		{"black net v6", l.BlackIP(netip.MustParseAddr("2001:db8::5"), now), true},
		{"black expired", l.BlackIP(netip.MustParseAddr("192.0.2.2"), now), false},
		{"not black", l.BlackIP(netip.MustParseAddr("203.0.113.1"), now), false},
		{"black sender", l.BlackSender("spam@b.test", now), true},
		{"relay sender", l.RelaySender("s@c.test"), true},
		{"relay pair", l.RelayPair("p@c.test", "taro@example.jp"), true},
		{"relay pair, other rcpt", l.RelayPair("p@c.test", "hanako@example.jp"), false},
		{"relay pair sender alone", l.RelaySender("p@c.test"), false},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	// Deleting one owner of a white key keeps the others.
	l.Apply([]store.Change{
		{Seq: 8, Op: store.OpPut, Entry: store.Entry{List: store.White, Key: "friend@a.test", Kind: store.KindFrom, Owner: "hanako@example.jp"}},
		{Seq: 9, Op: store.OpDel, Entry: store.Entry{List: store.White, Key: "friend@a.test", Kind: store.KindFrom, Owner: "taro@example.jp"}},
		{Seq: 10, Op: store.OpDel, Entry: store.Entry{List: store.Black, Key: "198.51.100.0/24"}},
		{Seq: 5, Op: store.OpDel, Entry: store.Entry{List: store.Decoy, Key: "trap@example.jp"}}, // old: skipped
	})
	if l.WhiteFrom("friend@a.test", "taro@example.jp") || !l.WhiteFrom("friend@a.test", "hanako@example.jp") {
		t.Error("white owners not updated by changes")
	}
	if l.BlackIP(netip.MustParseAddr("198.51.100.77"), now) {
		t.Error("deleted black network still matches")
	}
	if !l.Decoy("trap@example.jp") {
		t.Error("a change older than the current sequence was applied")
	}
	if l.Seq() != 10 {
		t.Errorf("Seq = %d, want 10", l.Seq())
	}
}

// A change written through one store handle (the CLI) reaches lists that follow another
// handle on the same file (the server).
func TestFollowSeesOtherProcess(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	path := filepath.Join(t.TempDir(), "s.db")
	server, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	cli, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	l := New()
	if err := l.Reload(ctx, server); err != nil {
		t.Fatal(err)
	}
	go l.Follow(ctx, server, 20*time.Millisecond, nil, nil)
	if err := cli.Put(ctx, store.Entry{List: store.Decoy, Key: "trap@example.jp"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Second)
	for !l.Decoy("trap@example.jp") {
		if time.Now().After(deadline) {
			t.Fatal("change made by another handle not seen within 1s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func bigLists(n int) *Lists {
	entries := make([]store.Entry, 0, 3*n)
	for i := range n {
		entries = append(entries,
			store.Entry{List: store.White, Key: fmt.Sprintf("user%d@sender%d.test", i, i%1000), Kind: store.KindFrom},
			store.Entry{List: store.Black, Key: netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}).String()},
			store.Entry{List: store.Relay, Key: store.PairKey(fmt.Sprintf("s%d@x.test", i), "taro@example.jp"), Kind: store.KindPair},
		)
	}
	l := New()
	l.Load(entries, 1)
	return l
}

// BenchmarkLookup measures the lookups of the SMTP path with 1,000,000 entries per list.
func BenchmarkLookup(b *testing.B) {
	l := bigLists(1000000)
	now := time.Now()
	ip := netip.MustParseAddr("10.3.2.1")
	miss := netip.MustParseAddr("192.0.2.1")
	b.Run("WhiteFrom", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !l.WhiteFrom("user4242@sender242.test", "taro@example.jp") {
				b.Fatal("miss")
			}
		}
	})
	b.Run("BlackIP", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !l.BlackIP(ip, now) || l.BlackIP(miss, now) {
				b.Fatal("wrong")
			}
		}
	})
	b.Run("RelayPair", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !l.RelayPair("s4242@x.test", "taro@example.jp") {
				b.Fatal("miss")
			}
		}
	})
}
