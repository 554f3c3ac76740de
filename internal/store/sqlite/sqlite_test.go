package sqlite

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"github.com/sekisho/sekisho/internal/store"
	"github.com/sekisho/sekisho/internal/store/storetest"
)

func open(t *testing.T) store.Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "sekisho.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) { storetest.Run(t, open) }

// Two handles on one file, as the server and the command line have, see each other's changes
// and never lose a sequence number under concurrent writers.
func TestTwoProcessesShareOneFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "shared.db")
	var handles [2]*DB
	for i := range handles {
		s, err := Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		handles[i] = s
	}
	var wg sync.WaitGroup
	for i, s := range handles {
		wg.Go(func() {
			for j := range 50 {
				e := store.Entry{List: store.Decoy, Key: string(rune('a'+i)) + string(rune('a'+j%26)) + string(rune('a'+j/26)) + "@x.test"}
				if err := s.Put(ctx, e); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	ch, err := handles[1].Changes(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(ch) != 100 {
		t.Fatalf("changes = %d, want 100", len(ch))
	}
	for i, c := range ch {
		if c.Seq != int64(i+1) {
			t.Fatalf("change %d has seq %d: gap in the log", i, c.Seq)
		}
	}
}

func TestReopenKeepsData(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "r.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, store.Entry{List: store.Black, Key: "192.0.2.7"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	entries, seq, err := s.Snapshot(ctx)
	if err != nil || len(entries) != 1 || seq != 1 {
		t.Fatalf("after reopen: %+v seq %d %v", entries, seq, err)
	}
}
