package senderauth

import (
	"net"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// cacheKey names one question.
type cacheKey struct {
	name  string // lowercase, fully qualified
	qtype uint16
}

// entry is one answer: records, or the fact that there are none. Failures (SERVFAIL,
// timeouts) are never cached.
type entry struct {
	rrs      []dns.RR // read-only once stored
	notFound bool
	ttl      time.Duration
	expires  time.Time
}

// result gives the entry to a caller asking for name.
func (e entry) result(name string) ([]dns.RR, error) {
	if e.notFound {
		return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
	}
	return e.rrs, nil
}

// cache keeps answers until their TTL runs out, at most max of them. When full, expired
// entries go first, then arbitrary ones (map order), an eighth at a time so that a full
// cache does not pay a scan on every insert.
type cache struct {
	max int

	mu sync.Mutex
	m  map[cacheKey]entry
}

func newCache(size int) *cache {
	return &cache{max: size, m: make(map[cacheKey]entry)}
}

func (c *cache) get(k cacheKey, now time.Time) (entry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if !ok {
		return entry{}, false
	}
	if !now.Before(e.expires) {
		delete(c.m, k)
		return entry{}, false
	}
	return e, true
}

func (c *cache) put(k cacheKey, e entry, now time.Time) {
	e.expires = now.Add(e.ttl)
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[k]; !ok && len(c.m) >= c.max {
		c.evict(now)
	}
	c.m[k] = e
}

// evict makes room; c.mu is held.
func (c *cache) evict(now time.Time) {
	for k, e := range c.m {
		if !now.Before(e.expires) {
			delete(c.m, k)
		}
	}
	if len(c.m) < c.max {
		return
	}
	target := c.max - max(1, c.max/8)
	for k := range c.m {
		if len(c.m) <= target {
			break
		}
		delete(c.m, k)
	}
}

func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
