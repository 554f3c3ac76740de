package webauth

import (
	"net/netip"
	"sync"
	"time"
)

// Limits bound failed logins within Window: per account and per client IP.
type Limits struct {
	Window     time.Duration
	PerAccount int
	PerIP      int
}

// DefaultLimits: 5 failures per account and 20 per IP in 15 minutes.
var DefaultLimits = Limits{Window: 15 * time.Minute, PerAccount: 5, PerIP: 20}

// maxTracked bounds the keys a Limiter remembers; past it, the oldest-looking are dropped.
const maxTracked = 100_000

// Limiter counts failed logins in memory (per node: a cluster of n nodes allows at most n
// times the limit, still far from a useful guessing rate).
type Limiter struct {
	limits Limits
	mu     sync.Mutex
	fails  map[string][]time.Time // "a:"+account or "i:"+ip → failure times in the window
}

// NewLimiter returns a Limiter with the given limits.
func NewLimiter(l Limits) *Limiter {
	return &Limiter{limits: l, fails: map[string][]time.Time{}}
}

func (l *Limiter) recent(key string, now time.Time) []time.Time {
	ts := l.fails[key]
	i := 0
	for i < len(ts) && now.Sub(ts[i]) >= l.limits.Window {
		i++
	}
	ts = ts[i:]
	if len(ts) == 0 {
		delete(l.fails, key)
		return nil
	}
	l.fails[key] = ts
	return ts
}

// Allow reports whether a login for account from ip may be tried now.
func (l *Limiter) Allow(account string, ip netip.Addr, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.recent("a:"+account, now)) < l.limits.PerAccount && len(l.recent("i:"+ip.String(), now)) < l.limits.PerIP
}

// Fail counts a failed login.
func (l *Limiter) Fail(account string, ip netip.Addr, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.fails) >= maxTracked {
		for k := range l.fails { // map order is random: drop an arbitrary half
			if len(l.fails) < maxTracked/2 {
				break
			}
			delete(l.fails, k)
		}
	}
	for _, k := range []string{"a:" + account, "i:" + ip.String()} {
		l.fails[k] = append(l.recent(k, now), now)
	}
}

// Succeed forgets the failures of an account after a good login.
func (l *Limiter) Succeed(account string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.fails, "a:"+account)
}
