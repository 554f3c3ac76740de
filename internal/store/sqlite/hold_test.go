package sqlite

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/store"
)

// Many sessions holding at once: every Hold returns only when its message is committed, and
// every message is there, whole.
func TestHoldConcurrent(t *testing.T) {
	s := open(t).(*DB)
	ctx := context.Background()
	const n = 200
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			h := &store.Held{From: fmt.Sprintf("s%d@x.test", i), Expires: time.Now().Add(time.Hour),
				Rcpts: []store.HeldRcpt{{Rcpt: "u@example.jp", Owner: "u@example.jp", Reason: "unknown-sender"}}}
			errs[i] = s.Hold(ctx, h, []byte(fmt.Sprintf("Subject: %d\r\n\r\nbody %d\r\n", i, i)))
			if errs[i] == nil {
				if got, data, err := s.HeldGet(ctx, h.ID); err != nil || got.From != h.From || string(data) != fmt.Sprintf("Subject: %d\r\n\r\nbody %d\r\n", i, i) {
					errs[i] = fmt.Errorf("read back right after Hold: %+v %q %v", got, data, err)
				}
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("hold %d: %v", i, err)
		}
	}
	all, err := s.HeldList(ctx, store.HeldQuery{})
	if err != nil || len(all) != n {
		t.Fatalf("%d held (%v), want %d", len(all), err, n)
	}
}

// A message that cannot be written fails alone; the rest of its commit group is kept.
func TestHoldGroupIsolatesFailures(t *testing.T) {
	s := open(t).(*DB)
	ctx := context.Background()
	first := &store.Held{ID: "dup", From: "a@x.test"}
	if err := s.Hold(ctx, first, []byte("x")); err != nil {
		t.Fatal(err)
	}
	group := []*holdReq{
		{h: &store.Held{ID: "ok1", From: "b@x.test"}, data: []byte("1"), done: make(chan error, 1)},
		{h: &store.Held{ID: "dup", From: "c@x.test"}, data: []byte("2"), done: make(chan error, 1)},
		{h: &store.Held{ID: "ok2", From: "d@x.test"}, data: []byte("3"), done: make(chan error, 1)},
	}
	s.commitGroup(group)
	for i, want := range []bool{true, false, true} {
		if err := <-group[i].done; (err == nil) != want {
			t.Fatalf("message %d: err %v, want success %v", i, err, want)
		}
	}
	for _, id := range []string{"ok1", "ok2"} {
		if _, _, err := s.HeldGet(ctx, id); err != nil {
			t.Fatalf("%s not kept: %v", id, err)
		}
	}
	if h, _, err := s.HeldGet(ctx, "dup"); err != nil || h.From != "a@x.test" {
		t.Fatalf("the first dup was changed: %+v %v", h, err)
	}
}

// After Close, Hold fails at once instead of hanging.
func TestHoldAfterClose(t *testing.T) {
	s := open(t).(*DB)
	s.Close()
	if err := s.Hold(context.Background(), &store.Held{From: "a@x.test"}, []byte("x")); err == nil {
		t.Fatal("Hold after Close succeeded")
	}
}
