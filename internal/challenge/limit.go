package challenge

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"time"
)

// Window is the span the caps count over: challenge_per_ip_hour and challenge_per_hour.
const Window = time.Hour

// Counter counts events per key. Limiter counts the challenges sent under the keys
// "ip:{client}" and "all". MemCounter counts for one process; a counter kept in the store
// makes the caps hold across a cluster.
//
// Implementations are safe for concurrent use.
type Counter interface {
	// Count returns how many events were added for key at a time after since.
	Count(ctx context.Context, key string, since time.Time) (int, error)
	// Add records one event for key at time at.
	Add(ctx context.Context, key string, at time.Time) error
}

// MemCounter is a Counter in memory. It keeps each event for Window, then forgets it: it
// answers Count only for since no earlier than Window before the latest Add. Its size is
// bounded by the events added in one Window, which Limiter only adds for challenges sent,
// at most challenge_per_hour of them.
type MemCounter struct {
	mu     sync.Mutex
	events map[string][]time.Time // per key, in the order added
	swept  time.Time              // when all keys were last pruned
}

// NewMemCounter returns an empty MemCounter.
func NewMemCounter() *MemCounter {
	return &MemCounter{events: make(map[string][]time.Time)}
}

// Count implements Counter.
func (c *MemCounter) Count(_ context.Context, key string, since time.Time) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.events[key] {
		if t.After(since) {
			n++
		}
	}
	return n, nil
}

// Add implements Counter.
func (c *MemCounter) Add(_ context.Context, key string, at time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	cut := at.Add(-Window)
	c.events[key] = append(prune(c.events[key], cut), at)
	if at.Sub(c.swept) >= Window {
		// A key that saw no event for a Window is dropped, so a flood from many client
		// IPs leaves nothing behind.
		for k, ts := range c.events {
			if ts = prune(ts, cut); len(ts) == 0 {
				delete(c.events, k)
			} else {
				c.events[k] = ts
			}
		}
		c.swept = at
	}
	return nil
}

// prune drops the events at or before cut. Events are kept in the order added, which is
// time order unless the clock stepped back; then an old event lives a little longer.
func prune(ts []time.Time, cut time.Time) []time.Time {
	i := 0
	for i < len(ts) && !ts[i].After(cut) {
		i++
	}
	return ts[i:]
}

// Limiter applies challenge_per_ip_hour and challenge_per_hour. Its Decide is the one place
// where a challenge is decided and counted, so that two messages decided at once cannot
// both take the last challenge of an hour.
type Limiter struct {
	perIP, global int
	counter       Counter
	mu            sync.Mutex // serialises count, decide and add
}

// NewLimiter returns a Limiter allowing perIPHour challenges per client IP and perHour in
// all, counting in c (nil: a new MemCounter). A limit of zero or less allows none.
//
// With a Counter shared by several processes the check and the count are atomic within
// each process only: the processes together may exceed a cap by one challenge per process
// at the moment it is reached.
func NewLimiter(perIPHour, perHour int, c Counter) *Limiter {
	if c == nil {
		c = NewMemCounter()
	}
	return &Limiter{perIP: perIPHour, global: perHour, counter: c}
}

// Decide completes f with the counts for client and the limits, calls Decide, and, when a
// challenge is to be sent, counts it at f.Now: the caller then sends it. On an error from
// the Counter no challenge is sent; the error says why.
func (l *Limiter) Decide(ctx context.Context, client netip.Addr, f Facts) (challenge bool, reason Reason, err error) {
	// The rules that need no count come first: a message suppressed anyway takes no lock
	// and costs no query.
	pre := f
	pre.IPCount, pre.IPLimit, pre.GlobalCount, pre.GlobalLimit = 0, 1, 0, 1
	if ok, reason := Decide(pre); !ok {
		return false, reason, nil
	}
	f.IPLimit, f.GlobalLimit = l.perIP, l.global

	l.mu.Lock()
	defer l.mu.Unlock()
	key := "ip:" + ipKey(client)
	since := f.Now.Add(-Window)
	if f.IPCount, err = l.counter.Count(ctx, key, since); err != nil {
		return false, "", fmt.Errorf("challenge: count %s: %w", key, err)
	}
	if f.GlobalCount, err = l.counter.Count(ctx, "all", since); err != nil {
		return false, "", fmt.Errorf("challenge: count all: %w", err)
	}
	if ok, reason := Decide(f); !ok {
		return false, reason, nil
	}
	if err := l.counter.Add(ctx, key, f.Now); err != nil {
		return false, "", fmt.Errorf("challenge: count %s: %w", key, err)
	}
	if err := l.counter.Add(ctx, "all", f.Now); err != nil {
		return false, "", fmt.Errorf("challenge: count all: %w", err)
	}
	return true, "", nil
}

// ipKey is the unit the per-IP cap counts: the address for IPv4, the /64 for IPv6, since
// one host commonly has a whole /64 to pick addresses from.
func ipKey(ip netip.Addr) string {
	ip = ip.Unmap()
	if !ip.IsValid() {
		return "unknown"
	}
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}
