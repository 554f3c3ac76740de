package storetest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/store"
)

func testSessions(t *testing.T, s store.Store) {
	ctx := context.Background()
	now := time.Now().Truncate(time.Millisecond).UTC()
	a := store.Session{ID: "h1", User: "a@example.jp", CSRF: "c1", Created: now, Expires: now.Add(time.Hour)}
	b := store.Session{ID: "h2", User: "a@example.jp", CSRF: "c2", Created: now, Expires: now.Add(time.Minute)}
	c := store.Session{ID: "h3", User: "b@example.jp", CSRF: "c3", Created: now, Expires: now.Add(time.Hour)}
	for _, se := range []store.Session{a, b, c} {
		if err := s.PutSession(ctx, se); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.GetSession(ctx, "h1", now)
	if err != nil || got != a {
		t.Fatalf("GetSession h1 = %+v, %v; want %+v", got, err, a)
	}
	if _, err := s.GetSession(ctx, "h2", now.Add(2*time.Minute)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetSession of an expired session: %v, want ErrNotFound", err)
	}
	if n, err := s.SessionsExpire(ctx, now.Add(2*time.Minute)); err != nil || n != 1 {
		t.Fatalf("SessionsExpire = %d, %v; want 1", n, err)
	}
	if err := s.DeleteUserSessions(ctx, "a@example.jp"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetSession(ctx, "h1", now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("session of a user whose sessions were deleted: %v", err)
	}
	if err := s.DeleteSession(ctx, "h3"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetSession(ctx, "h3", now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted session: %v", err)
	}
}

func testTokens(t *testing.T, s store.Store) {
	ctx := context.Background()
	now := time.Now().Truncate(time.Millisecond).UTC()
	if err := s.PutToken(ctx, store.Token{Name: "ci", Hash: "hash-ci", Created: now}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutToken(ctx, store.Token{Name: "alice", Hash: "hash-alice", Owner: "alice@example.jp", Created: now}); err != nil {
		t.Fatal(err)
	}
	used := now.Add(time.Minute)
	got, err := s.TokenByHash(ctx, "hash-alice", used)
	if err != nil || got.Name != "alice" || got.Owner != "alice@example.jp" || !got.LastUsed.Equal(used) || !got.Created.Equal(now) {
		t.Fatalf("TokenByHash = %+v, %v", got, err)
	}
	if _, err := s.TokenByHash(ctx, "nope", used); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown token: %v", err)
	}
	all, err := s.Tokens(ctx)
	if err != nil || len(all) != 2 || all[0].Name != "alice" || all[1].Name != "ci" {
		t.Fatalf("Tokens = %+v, %v", all, err)
	}
	if err := s.DeleteToken(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.TokenByHash(ctx, "hash-alice", used); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted token still found: %v", err)
	}
	if err := s.DeleteToken(ctx, "alice"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleting a missing token: %v", err)
	}
}

func testStats(t *testing.T, s store.Store) {
	ctx := context.Background()
	m := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	add := []store.StatCount{
		{Bucket: m.Add(10 * time.Second), Name: "pass", Count: 3},
		{Bucket: m.Add(50 * time.Second), Name: "pass", Count: 2},
		{Bucket: m, Name: "held", Count: 1},
		{Bucket: m.Add(time.Minute), Name: "pass", Count: 7},
		{Bucket: m.Add(2 * time.Minute), Name: "pass", Count: 9},
	}
	if err := s.AddStats(ctx, add[:3]); err != nil {
		t.Fatal(err)
	}
	if err := s.AddStats(ctx, add[3:]); err != nil {
		t.Fatal(err)
	}
	got, err := s.Stats(ctx, m, m.Add(2*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	want := []store.StatCount{
		{Bucket: m, Name: "held", Count: 1},
		{Bucket: m, Name: "pass", Count: 5},
		{Bucket: m.Add(time.Minute), Name: "pass", Count: 7},
	}
	if len(got) != len(want) {
		t.Fatalf("Stats = %+v, want %+v", got, want)
	}
	for i := range want {
		if !got[i].Bucket.Equal(want[i].Bucket) || got[i].Name != want[i].Name || got[i].Count != want[i].Count {
			t.Fatalf("Stats[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func testTraps(t *testing.T, s store.Store) {
	ctx := context.Background()
	day := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	trap := store.Trap{Address: "x7@trap.example.jp", IP: "192.0.2.7", UserAgent: "harvester/1.0", URL: "https://www.example.jp/", Planted: day}
	if err := s.PutTrap(ctx, trap); err != nil {
		t.Fatal(err)
	}
	again := trap
	again.IP, again.Planted = "192.0.2.99", day.Add(time.Hour)
	if err := s.PutTrap(ctx, again); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetTrap(ctx, trap.Address); err != nil || got != trap {
		t.Fatalf("GetTrap = %+v, %v; want the first visit %+v", got, err, trap)
	}
	if _, err := s.GetTrap(ctx, "none@trap.example.jp"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetTrap of an unknown address: %v", err)
	}
	old := store.Trap{Address: "old@trap.example.jp", IP: "192.0.2.1", Planted: day.Add(-100 * 24 * time.Hour)}
	if err := s.PutTrap(ctx, old); err != nil {
		t.Fatal(err)
	}
	for i, at := range []time.Time{day.Add(2 * time.Hour), day.Add(3 * time.Hour)} {
		if err := s.AddTrapHit(ctx, trap.Address, "198.51.100.8", "spam@spam.test", at); err != nil {
			t.Fatalf("hit %d: %v", i, err)
		}
	}
	if err := s.AddTrapHit(ctx, old.Address, "198.51.100.9", "", day); err != nil {
		t.Fatal(err)
	}
	hits, err := s.TrapHits(ctx, 2, 0)
	if err != nil || len(hits) != 2 || hits[0].Trap != trap || hits[0].IP != "198.51.100.8" || !hits[0].At.Equal(day.Add(3*time.Hour)) {
		t.Fatalf("TrapHits = %+v, %v", hits, err)
	}
	if n, err := s.TrapsExpire(ctx, day.Add(-90*24*time.Hour)); err != nil || n != 1 {
		t.Fatalf("TrapsExpire = %d, %v; want 1", n, err)
	}
	if hits, err := s.TrapHits(ctx, 0, 0); err != nil || len(hits) != 2 {
		t.Fatalf("after expiry TrapHits = %+v, %v; want the two hits of the kept trap", hits, err)
	}
}

func testAliasSenders(t *testing.T, s store.Store) {
	ctx := context.Background()
	now := time.Now().Truncate(time.Millisecond).UTC()
	alias := store.Entry{List: store.Alias, Key: "shop1@alias.example.jp", Target: "a@example.jp", Owner: "a@example.jp"}
	if err := s.Put(ctx, alias); err != nil {
		t.Fatal(err)
	}
	for i, from := range []string{"news@Shop.example", "orders@shop.example", "x@leak.test"} {
		if err := s.Hit(ctx, store.Alias, alias.Key, "", alias.Owner, from, now.Add(time.Duration(i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.AliasSenders(ctx, []string{alias.Key, "none@alias.example.jp"})
	if err != nil {
		t.Fatal(err)
	}
	d := got[alias.Key]
	if len(got) != 1 || len(d) != 2 || d[0].Domain != "leak.test" || d[1].Domain != "shop.example" || d[1].Hits != 2 ||
		!d[1].First.Equal(now) || !d[1].Last.Equal(now.Add(time.Minute)) {
		t.Fatalf("AliasSenders = %+v", got)
	}
}

func testExactQueries(t *testing.T, s store.Store) {
	ctx := context.Background()
	for _, e := range []store.Entry{
		{List: store.Audir, Key: "h1", Target: "a@x.test"},
		{List: store.Audir, Key: "h2", Target: "a@x.test"},
		{List: store.Audir, Key: "h10", Target: "b@x.test"},
		{List: store.White, Key: "a@x.test", Kind: store.KindFrom, Owner: "u@example.jp"},
	} {
		if err := s.Put(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	keys := func(q store.Query) string {
		t.Helper()
		got, err := s.Entries(ctx, store.Audir, q)
		if err != nil {
			t.Fatal(err)
		}
		var ks []string
		for _, e := range got {
			ks = append(ks, e.Key)
		}
		return strings.Join(ks, ",")
	}
	if got := keys(store.Query{Key: "h1"}); got != "h1" {
		t.Errorf("Query{Key: h1} = %s, want h1 alone (not h10)", got)
	}
	if got := keys(store.Query{Target: "a@x.test"}); got != "h1,h2" {
		t.Errorf("Query{Target: a@x.test} = %s, want h1,h2 (and no entry of another list)", got)
	}
	if got := keys(store.Query{Key: "h10", Target: "a@x.test"}); got != "" {
		t.Errorf("Query{Key: h10, Target: a@x.test} = %s, want nothing", got)
	}
}
