// Package storetest is the conformance suite every store.Store backend must pass.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/store"
)

// Run runs the suite; open returns a fresh, empty store for each subtest.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("PutGetDelete", func(t *testing.T) { testPutDelete(t, open(t)) })
	t.Run("ChangeLog", func(t *testing.T) { testChangeLog(t, open(t)) })
	t.Run("Expire", func(t *testing.T) { testExpire(t, open(t)) })
	t.Run("Users", func(t *testing.T) { testUsers(t, open(t)) })
	t.Run("Held", func(t *testing.T) { testHeld(t, open(t)) })
	t.Run("HeldPages", func(t *testing.T) { testHeldPages(t, open(t)) })
	t.Run("Outbox", func(t *testing.T) { testOutbox(t, open(t)) })
	t.Run("Secret", func(t *testing.T) { testSecret(t, open(t)) })
	t.Run("Sessions", func(t *testing.T) { testSessions(t, open(t)) })
	t.Run("Tokens", func(t *testing.T) { testTokens(t, open(t)) })
	t.Run("Stats", func(t *testing.T) { testStats(t, open(t)) })
	t.Run("Traps", func(t *testing.T) { testTraps(t, open(t)) })
	t.Run("AliasSenders", func(t *testing.T) { testAliasSenders(t, open(t)) })
	t.Run("ExactQueries", func(t *testing.T) { testExactQueries(t, open(t)) })
	t.Run("DigestLedger", func(t *testing.T) { testDigestLedger(t, open(t)) })
}

// digestLedger is digest.Ledger (not imported: the backends import digest, whose tests
// import the backends).
type digestLedger interface {
	QueueDigest(ctx context.Context, day, owner string, m *store.OutMsg) (bool, error)
}

func testDigestLedger(t *testing.T, s store.Store) {
	l, ok := s.(digestLedger)
	if !ok {
		t.Fatalf("%T keeps no digest ledger", s)
	}
	ctx := context.Background()
	queue := func(day, owner string) bool {
		t.Helper()
		ok, err := l.QueueDigest(ctx, day, owner, &store.OutMsg{Kind: "digest", To: []string{owner}, Data: []byte(day + "\r\n")})
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !queue("2026-11-22", "a@x.test") || !queue("2026-11-22", "b@x.test") || !queue("2026-11-23", "a@x.test") {
		t.Fatal("a first digest of the day was not queued")
	}
	if queue("2026-11-22", "a@x.test") {
		t.Fatal("a second digest the same day was queued")
	}
	due, err := s.OutboxDue(ctx, time.Now().Add(time.Minute), 10)
	if err != nil || len(due) != 3 {
		t.Fatalf("outbox holds %d messages (%v), want the 3 queued", len(due), err)
	}
}

func testSecret(t *testing.T, s store.Store) {
	ctx := context.Background()
	a, err := s.Secret(ctx, "web", 32)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Secret(ctx, "web", 32)
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.Secret(ctx, "other", 32)
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != 32 || !bytes.Equal(a, b) || bytes.Equal(a, c) {
		t.Fatalf("Secret: %x, again %x, other %x; want one stable random value per name", a, b, c)
	}
}

func testPutDelete(t *testing.T, s store.Store) {
	ctx := context.Background()
	white := store.Entry{List: store.White, Key: "@example.com", Kind: store.KindFrom, Owner: "u@example.jp", Note: "n1"}
	if err := s.Put(ctx, white); err != nil {
		t.Fatal(err)
	}
	// Same key, other owner: a separate entry.
	global := white
	global.Owner = ""
	if err := s.Put(ctx, global); err != nil {
		t.Fatal(err)
	}
	// Replace keeps Created and changes Note.
	white.Note = "n2"
	if err := s.Put(ctx, white); err != nil {
		t.Fatal(err)
	}
	got, err := s.Entries(ctx, store.White, store.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("Entries = %d entries, want 2: %+v", len(got), got)
	}
	mine, err := s.Entries(ctx, store.White, store.Query{Owner: "u@example.jp"})
	if err != nil {
		t.Fatal(err)
	}
	if len(mine) != 1 || mine[0].Note != "n2" || mine[0].Created.IsZero() {
		t.Fatalf("owner's entries = %+v, want one with note n2", mine)
	}
	found, err := s.Entries(ctx, store.White, store.Query{Q: "n2"})
	if err != nil || len(found) != 1 {
		t.Fatalf("search n2 = %+v, %v; want 1 entry", found, err)
	}
	if err := s.Hit(ctx, store.White, white.Key, white.Kind, white.Owner, "a@example.com", time.Now()); err != nil {
		t.Fatal(err)
	}
	mine, _ = s.Entries(ctx, store.White, store.Query{Owner: "u@example.jp"})
	if mine[0].Hits != 1 || mine[0].LastSender != "a@example.com" {
		t.Fatalf("after Hit: %+v, want hits 1 and last sender", mine[0])
	}
	if err := s.Delete(ctx, store.White, white.Key, white.Kind, white.Owner); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, store.White, white.Key, white.Kind, white.Owner); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second Delete = %v, want ErrNotFound", err)
	}
	got, _ = s.Entries(ctx, store.White, store.Query{})
	if len(got) != 1 || got[0].Owner != "" {
		t.Fatalf("after delete: %+v, want the global entry only", got)
	}
}

func testChangeLog(t *testing.T, s store.Store) {
	ctx := context.Background()
	_, seq0, err := s.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a@x.test", "b@x.test", "c@x.test"} {
		if err := s.Put(ctx, store.Entry{List: store.Decoy, Key: k}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Delete(ctx, store.Decoy, "b@x.test", "", ""); err != nil {
		t.Fatal(err)
	}
	ch, err := s.Changes(ctx, seq0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(ch) != 4 {
		t.Fatalf("Changes = %d, want 4", len(ch))
	}
	for i, c := range ch {
		if c.Seq != seq0+int64(i)+1 {
			t.Errorf("change %d seq = %d, want %d", i, c.Seq, seq0+int64(i)+1)
		}
	}
	if ch[3].Op != store.OpDel || ch[3].Entry.Key != "b@x.test" || ch[0].Op != store.OpPut || ch[0].Entry.List != store.Decoy {
		t.Errorf("changes = %+v", ch)
	}
	tail, err := s.Changes(ctx, ch[1].Seq, 1)
	if err != nil || len(tail) != 1 || tail[0].Seq != ch[2].Seq {
		t.Fatalf("Changes(since, 1) = %+v, %v", tail, err)
	}
	entries, seq, err := s.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if seq != ch[3].Seq || len(entries) != 2 {
		t.Fatalf("Snapshot = %d entries at seq %d, want 2 at %d", len(entries), seq, ch[3].Seq)
	}
}

func testExpire(t *testing.T, s store.Store) {
	ctx := context.Background()
	now := time.Now()
	past := store.Entry{List: store.Black, Key: "192.0.2.1", Source: "decoy", Expires: now.Add(-time.Minute)}
	future := store.Entry{List: store.Black, Key: "192.0.2.2", Source: "admin", Expires: now.Add(time.Hour)}
	for _, e := range []store.Entry{past, future} {
		if err := s.Put(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	entries, seq, _ := s.Snapshot(ctx)
	if len(entries) != 1 || entries[0].Key != "192.0.2.2" {
		t.Fatalf("Snapshot = %+v, want only the unexpired entry", entries)
	}
	n, err := s.Expire(ctx, now)
	if err != nil || n != 1 {
		t.Fatalf("Expire = %d, %v; want 1", n, err)
	}
	ch, err := s.Changes(ctx, seq, 0)
	if err != nil || len(ch) != 1 || ch[0].Op != store.OpDel || ch[0].Entry.Key != "192.0.2.1" {
		t.Fatalf("changes after Expire = %+v, %v", ch, err)
	}
}

func testUsers(t *testing.T, s store.Store) {
	ctx := context.Background()
	if _, err := s.GetUser(ctx, "u@example.jp"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetUser of nobody = %v, want ErrNotFound", err)
	}
	if err := s.PutUser(ctx, store.User{Address: "u@example.jp", PasswordHash: "h1", Admin: true}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutUser(ctx, store.User{Address: "u@example.jp", PasswordHash: "h2", Admin: false}); err != nil {
		t.Fatal(err)
	}
	u, err := s.GetUser(ctx, "u@example.jp")
	if err != nil || u.PasswordHash != "h2" || u.Admin || u.Created.IsZero() {
		t.Fatalf("GetUser = %+v, %v", u, err)
	}
	users, err := s.Users(ctx)
	if err != nil || len(users) != 1 {
		t.Fatalf("Users = %+v, %v", users, err)
	}
	if err := s.DeleteUser(ctx, "u@example.jp"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteUser(ctx, "u@example.jp"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second DeleteUser = %v, want ErrNotFound", err)
	}
}

func testHeld(t *testing.T, s store.Store) {
	ctx := context.Background()
	data := []byte("Subject: hi\r\n\r\nbody\r\n")
	h := store.Held{
		Expires: time.Now().Add(time.Hour), ClientIP: "192.0.2.9", Helo: "h.test", From: "s@x.test", Subject: "hi",
		Auth:  "spf=pass smtp.mailfrom=x.test; dkim=none",
		Rcpts: []store.HeldRcpt{{Rcpt: "a@example.jp", Owner: "a@example.jp", Reason: "unknown"}, {Rcpt: "b@example.jp", Owner: "b@example.jp", Reason: "unknown"}},
	}
	if err := s.Hold(ctx, &h, data); err != nil {
		t.Fatal(err)
	}
	if h.ID == "" || h.Size != int64(len(data)) {
		t.Fatalf("Hold set ID %q size %d", h.ID, h.Size)
	}
	got, body, err := s.HeldGet(ctx, h.ID)
	if err != nil || !bytes.Equal(body, data) || len(got.Rcpts) != 2 || got.From != "s@x.test" || got.Auth != h.Auth {
		t.Fatalf("HeldGet = %+v %q %v", got, body, err)
	}
	if n, _ := s.HeldCount(ctx, "s@x.test"); n != 1 {
		t.Fatalf("HeldCount = %d, want 1", n)
	}
	if n, size, err := s.HeldStats(ctx); err != nil || n != 1 || size != int64(len(data)) {
		t.Fatalf("HeldStats = %d, %d, %v; want 1, %d", n, size, err, len(data))
	}
	forB, err := s.HeldList(ctx, store.HeldQuery{Owner: "b@example.jp"})
	if err != nil || len(forB) != 1 || forB[0].Auth != h.Auth {
		t.Fatalf("HeldList(owner b) = %+v, %v", forB, err)
	}
	none, _ := s.HeldList(ctx, store.HeldQuery{Owner: "c@example.jp"})
	if len(none) != 0 {
		t.Fatalf("HeldList(owner c) = %+v, want none", none)
	}
	if err := s.HeldRemove(ctx, h.ID, []string{"a@example.jp"}); err != nil {
		t.Fatal(err)
	}
	got, _, err = s.HeldGet(ctx, h.ID)
	if err != nil || len(got.Rcpts) != 1 || got.Rcpts[0].Rcpt != "b@example.jp" {
		t.Fatalf("after removing a: %+v, %v", got, err)
	}
	if err := s.HeldRemove(ctx, h.ID, []string{"b@example.jp"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.HeldGet(ctx, h.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("message with no recipient left: %v, want ErrNotFound", err)
	}
	if n, size, err := s.HeldStats(ctx); err != nil || n != 0 || size != 0 {
		t.Fatalf("HeldStats with nothing held = %d, %d, %v; want 0, 0", n, size, err)
	}
	old := store.Held{Expires: time.Now().Add(-time.Second), From: "s@x.test", Rcpts: []store.HeldRcpt{{Rcpt: "a@example.jp"}}}
	if err := s.Hold(ctx, &old, data); err != nil {
		t.Fatal(err)
	}
	if n, err := s.HeldExpire(ctx, time.Now()); err != nil || n != 1 {
		t.Fatalf("HeldExpire = %d, %v; want 1", n, err)
	}
}

// testHeldPages: HeldList pages through one owner's messages, newest first, with the
// sender filter, as the portal's held-mail page does.
func testHeldPages(t *testing.T, s store.Store) {
	ctx := context.Background()
	t0 := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	var want []string // a's messages, newest first
	for i := range 7 {
		owner := "a@example.jp"
		if i%3 == 2 {
			owner = "b@example.jp"
		}
		h := store.Held{Received: t0.Add(time.Duration(i) * time.Minute), Expires: t0.Add(2 * time.Hour), ClientIP: "192.0.2.9",
			Helo: "h.test", From: fmt.Sprintf("s%d@x.test", i%2), Subject: fmt.Sprint(i),
			Rcpts: []store.HeldRcpt{{Rcpt: owner, Owner: owner, Reason: "unknown"}}}
		if err := s.Hold(ctx, &h, []byte("Subject: x\r\n\r\nx\r\n")); err != nil {
			t.Fatal(err)
		}
		if owner == "a@example.jp" {
			want = append([]string{h.Subject}, want...)
		}
	}
	subjects := func(q store.HeldQuery) []string {
		t.Helper()
		hs, err := s.HeldList(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, h := range hs {
			if len(h.Rcpts) != 1 {
				t.Fatalf("held %s has recipients %+v", h.ID, h.Rcpts)
			}
			out = append(out, h.Subject)
		}
		return out
	}
	var paged []string
	for off := 0; ; off += 2 {
		page := subjects(store.HeldQuery{Owner: "a@example.jp", Limit: 2, Offset: off})
		if len(page) == 0 {
			break
		}
		paged = append(paged, page...)
	}
	if fmt.Sprint(paged) != fmt.Sprint(want) {
		t.Fatalf("a's messages page by page: %v, want %v", paged, want)
	}
	if got := subjects(store.HeldQuery{Owner: "a@example.jp", From: "s1@x.test", Limit: 10}); fmt.Sprint(got) != "[3 1]" {
		t.Fatalf("a's messages from s1: %v, want [3 1]", got)
	}
	if got := subjects(store.HeldQuery{}); len(got) != 7 || got[0] != "6" || got[6] != "0" {
		t.Fatalf("all messages: %v, want 6 ... 0", got)
	}
}

func testOutbox(t *testing.T, s store.Store) {
	ctx := context.Background()
	now := time.Now()
	m := store.OutMsg{Kind: "challenge", From: "", To: []string{"s@x.test"}, Data: []byte("x\r\n"), NextTry: now.Add(-time.Second)}
	if err := s.OutboxAdd(ctx, &m); err != nil {
		t.Fatal(err)
	}
	due, err := s.OutboxDue(ctx, now, 10)
	if err != nil || len(due) != 1 || due[0].To[0] != "s@x.test" {
		t.Fatalf("OutboxDue = %+v, %v", due, err)
	}
	if n, err := s.OutboxLen(ctx); err != nil || n != 1 {
		t.Fatalf("OutboxLen = %d, %v; want 1", n, err)
	}
	if err := s.OutboxRetry(ctx, m.ID, now.Add(time.Hour), "refused"); err != nil {
		t.Fatal(err)
	}
	if due, _ := s.OutboxDue(ctx, now, 10); len(due) != 0 {
		t.Fatalf("retried message due too early: %+v", due)
	}
	due, _ = s.OutboxDue(ctx, now.Add(2*time.Hour), 10)
	if len(due) != 1 || due[0].Attempts != 1 || due[0].LastError != "refused" {
		t.Fatalf("after retry: %+v", due)
	}
	if err := s.OutboxDone(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	if due, _ := s.OutboxDue(ctx, now.Add(2*time.Hour), 10); len(due) != 0 {
		t.Fatalf("done message still due: %+v", due)
	}
	if n, err := s.OutboxLen(ctx); err != nil || n != 0 {
		t.Fatalf("OutboxLen after done = %d, %v; want 0", n, err)
	}
}
