package netacl

import (
	"maps"
	"sync"
)

// Tally counts refusals by reason. The zero Tally is ready; it is safe for concurrent use.
type Tally struct {
	mu sync.Mutex
	m  map[Reason]int64
}

// Add counts one refusal for r.
func (t *Tally) Add(r Reason) {
	t.mu.Lock()
	if t.m == nil {
		t.m = map[Reason]int64{}
	}
	t.m[r]++
	t.mu.Unlock()
}

// Get returns the count for r.
func (t *Tally) Get(r Reason) int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.m[r]
}

// Snapshot returns a copy of every count.
func (t *Tally) Snapshot() map[Reason]int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return maps.Clone(t.m)
}
