package postgres

import (
	"context"
	"fmt"
	"github.com/sekisho/sekisho/internal/testenv"
	"sync"
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/store"
)

// Nodes sending the outbox at once: every message due goes to exactly one of them.
func TestOutboxDueDisjoint(t *testing.T) {
	t.Parallel()
	dsn, _ := testenv.PostgresSchema(t)
	nodes := []*DB{open(t, dsn), open(t, dsn), open(t, dsn)}
	ctx := context.Background()
	now := time.Now()
	const total = 600
	for i := range total {
		m := store.OutMsg{Kind: "challenge", To: []string{fmt.Sprintf("s%d@x.test", i)}, Data: []byte("x\r\n"),
			Created: now.Add(-time.Hour), NextTry: now.Add(-time.Duration(i%50) * time.Second)}
		if err := nodes[i%3].OutboxAdd(ctx, &m); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	got := map[int64]int{} // message -> which goroutine got it
	dup := 0
	var wg sync.WaitGroup
	for n, d := range nodes {
		for w := range 3 {
			who := n*10 + w
			wg.Go(func() {
				for range total { // bounded: a store without leases hands out the same ones forever
					due, err := d.OutboxDue(ctx, now, 7)
					if err != nil {
						t.Error(err)
						return
					}
					if len(due) == 0 {
						return
					}
					for i, m := range due {
						if i > 0 && (m.NextTry.Before(due[i-1].NextTry) || m.NextTry.Equal(due[i-1].NextTry) && m.ID < due[i-1].ID) {
							t.Errorf("OutboxDue not in due order: %d after %d", m.ID, due[i-1].ID)
						}
					}
					mu.Lock()
					for _, m := range due {
						if prev, ok := got[m.ID]; ok {
							if dup++; dup <= 5 {
								t.Errorf("message %d returned to %d and %d", m.ID, prev, who)
							}
						}
						got[m.ID] = who
					}
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	if len(got) != total || dup != 0 {
		t.Fatalf("%d messages handed out (%d twice), want each of %d once", len(got), dup, total)
	}
	per := map[int]int{}
	for _, who := range got {
		per[who/10]++
	}
	t.Logf("%d messages leased by 3 nodes x 3 senders: per node %v", total, per)
}

// A leased message is not due again until the lease has run out; OutboxRetry and OutboxDone
// end the lease.
func TestOutboxLease(t *testing.T) {
	t.Parallel()
	dsn, _ := testenv.PostgresSchema(t)
	a, b := open(t, dsn), open(t, dsn)
	ctx := context.Background()
	now := time.UnixMilli(time.Now().UnixMilli())
	m1 := store.OutMsg{Kind: "challenge", To: []string{"a@x.test"}, Data: []byte("1"), NextTry: now.Add(-time.Minute)}
	m2 := store.OutMsg{Kind: "challenge", To: []string{"b@x.test"}, Data: []byte("2"), NextTry: now.Add(-time.Second)}
	for _, m := range []*store.OutMsg{&m2, &m1} {
		if err := a.OutboxAdd(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	due, err := a.OutboxDue(ctx, now, 10)
	if err != nil || len(due) != 2 || due[0].ID != m1.ID || due[1].ID != m2.ID {
		t.Fatalf("OutboxDue = %+v, %v; want m1, m2", due, err)
	}
	if !due[0].NextTry.Equal(m1.NextTry) {
		t.Errorf("NextTry = %v, want the time it was due, %v", due[0].NextTry, m1.NextTry)
	}
	if again, _ := b.OutboxDue(ctx, now.Add(OutboxLease-time.Millisecond), 10); len(again) != 0 {
		t.Fatalf("leased messages handed out again within the lease: %+v", again)
	}
	// The node that leased m1 sent it; m2's node died: m2 comes back once the lease is over.
	if err := a.OutboxDone(ctx, m1.ID); err != nil {
		t.Fatal(err)
	}
	again, err := b.OutboxDue(ctx, now.Add(OutboxLease), 10)
	if err != nil || len(again) != 1 || again[0].ID != m2.ID || again[0].Attempts != 0 {
		t.Fatalf("after the lease: %+v, %v; want m2 alone", again, err)
	}
	if err := b.OutboxRetry(ctx, m2.ID, now.Add(time.Hour), "451 try later"); err != nil {
		t.Fatal(err)
	}
	if d, _ := a.OutboxDue(ctx, now.Add(time.Hour-time.Millisecond), 10); len(d) != 0 {
		t.Fatalf("retried message due before its next try: %+v", d)
	}
	if d, _ := a.OutboxDue(ctx, now.Add(time.Hour), 10); len(d) != 1 || d[0].Attempts != 1 || d[0].LastError != "451 try later" {
		t.Fatalf("at its next try: %+v", d)
	}
}
