package logbuf

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// sink records every write it gets.
type sink struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes int
	fail   error
}

func (s *sink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	if s.fail != nil {
		return 0, s.fail
	}
	return s.buf.Write(p)
}

func (s *sink) state() (string, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String(), s.writes
}

func TestLinesAreBatchedAndFlushedWithinTheInterval(t *testing.T) {
	var s sink
	w := New(&s, 50*time.Millisecond)
	defer w.Close()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 100 {
				fmt.Fprintf(w, "g%d line %d\n", g, i)
			}
		})
	}
	wg.Wait()
	if text, _ := s.state(); text != "" {
		t.Fatalf("written at once: %d bytes", len(text))
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		text, writes := s.state()
		if strings.Count(text, "\n") == 400 {
			if writes > 2 {
				t.Errorf("400 lines took %d writes, want them batched", writes)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 2s only %d lines passed on", strings.Count(text, "\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Each line arrives whole and each goroutine's lines in order.
	text, _ := s.state()
	next := map[string]int{}
	for _, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		var g string
		var i int
		if _, err := fmt.Sscanf(line, "%s line %d", &g, &i); err != nil || next[g] != i {
			t.Fatalf("line %q out of order or torn (want %s line %d)", line, g, next[g])
		}
		next[g]++
	}
}

func TestFullBufferIsWrittenAtOnce(t *testing.T) {
	var s sink
	w := New(&s, time.Hour)
	defer w.Close()
	line := strings.Repeat("x", 1023) + "\n"
	for range maxPending / len(line) {
		w.Write([]byte(line))
	}
	if text, _ := s.state(); len(text) != maxPending {
		t.Errorf("%d bytes written, want %d as soon as 64 KiB waited", len(text), maxPending)
	}
}

func TestCloseFlushesAndLaterWritesGoThrough(t *testing.T) {
	var s sink
	w := New(&s, time.Hour)
	w.Write([]byte("before close\n"))
	w.Close()
	if text, _ := s.state(); text != "before close\n" {
		t.Fatalf("after Close: %q", text)
	}
	w.Write([]byte("after close\n"))
	if text, _ := s.state(); text != "before close\nafter close\n" {
		t.Errorf("write after Close: %q", text)
	}
	w.Close() // twice is harmless
}

func TestUnderlyingErrorIsReported(t *testing.T) {
	s := sink{fail: errors.New("disk full")}
	w := New(&s, time.Hour)
	defer w.Close()
	w.Write([]byte("lost\n"))
	w.Flush()
	if _, err := w.Write([]byte("next\n")); err == nil || err.Error() != "disk full" {
		t.Errorf("next Write = %v, want the flush's error", err)
	}
}
