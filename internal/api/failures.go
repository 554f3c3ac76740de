package api

import (
	"net/netip"
	"sync"
	"time"
)

// failures counts bad tokens per client in one-minute windows.
type failures struct {
	max int
	mu  sync.Mutex
	m   map[netip.Prefix]window
}

type window struct {
	start time.Time
	n     int
}

// maxClients bounds the table; beyond it, finished windows are dropped.
const maxClients = 100000

func newFailures(max int) *failures {
	return &failures{max: max, m: map[netip.Prefix]window{}}
}

// blocked reports whether the client used up its failures of the current minute.
func (f *failures) blocked(client netip.Prefix, now time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	w, ok := f.m[client]
	return ok && now.Sub(w.start) < time.Minute && w.n >= f.max
}

// add counts one failure of the client.
func (f *failures) add(client netip.Prefix, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := f.m[client]
	if now.Sub(w.start) >= time.Minute {
		w = window{start: now}
	}
	w.n++
	f.m[client] = w
	if len(f.m) > maxClients {
		for k, w := range f.m {
			if now.Sub(w.start) >= time.Minute {
				delete(f.m, k)
			}
		}
	}
}
