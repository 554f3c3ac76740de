// Package lists keeps the six lists in memory so that every lookup on the SMTP path is
// answered without a query. A Lists follows the store's change log (see Follow), so a change
// made by any process reaches it within the polling interval.
//
// Keys are looked up as given: callers pass canonical keys (lower-case addresses, see
// mailaddr.Addr.Key), so lookups do not allocate.
package lists

import (
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/sekisho/sekisho/internal/store"
)

// DecoyEntry is what the lists keep of a DECOY entry.
type DecoyEntry struct {
	Source string // "" for an admin's decoy; "harvest" for an address planted in a web page
	Target string // harvest: the IP of the visitor the address was planted for
}

// AliasTarget is what an alias resolves to.
type AliasTarget struct {
	Mailbox  string // the owner's real mailbox
	Owner    string
	Disabled bool
}

type owners []string // "" = global

func (o owners) match(owner string) bool {
	for _, x := range o {
		if x == "" || x == owner {
			return true
		}
	}
	return false
}

func (o owners) with(owner string) owners {
	for _, x := range o {
		if x == owner {
			return o
		}
	}
	return append(o, owner)
}

func (o owners) without(owner string) owners {
	for i, x := range o {
		if x == owner {
			return append(o[:i:i], o[i+1:]...)
		}
	}
	return o
}

// expiry is zero for "never".
type expiry time.Time

func (e expiry) live(now time.Time) bool {
	t := time.Time(e)
	return t.IsZero() || now.Before(t)
}

// Lists is the in-memory view of the six lists. It is safe for concurrent use.
type Lists struct {
	mu        sync.RWMutex
	seq       int64
	alias     map[string]AliasTarget
	whiteFrom map[string]owners
	whiteTo   map[string]owners
	decoy     map[string]DecoyEntry
	blackIP   map[netip.Addr]expiry
	blackNet  map[netip.Prefix]expiry
	netBits   [129]int // how many blackNet prefixes have each length, to probe only those
	blackAddr map[string]expiry
	relay     map[string]struct{} // sender keys and PairKeys
	audir     map[string]string   // token hash -> sender
}

// New returns empty lists at sequence 0.
func New() *Lists {
	l := &Lists{}
	l.reset()
	return l
}

func (l *Lists) reset() {
	l.seq = 0
	l.alias = map[string]AliasTarget{}
	l.whiteFrom = map[string]owners{}
	l.whiteTo = map[string]owners{}
	l.decoy = map[string]DecoyEntry{}
	l.blackIP = map[netip.Addr]expiry{}
	l.blackNet = map[netip.Prefix]expiry{}
	l.netBits = [129]int{}
	l.blackAddr = map[string]expiry{}
	l.relay = map[string]struct{}{}
	l.audir = map[string]string{}
}

// Seq is the sequence number of the last change applied.
func (l *Lists) Seq() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.seq
}

// Load replaces everything with a snapshot taken at seq.
func (l *Lists) Load(entries []store.Entry, seq int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reset()
	for i := range entries {
		l.put(&entries[i])
	}
	l.seq = seq
}

// Apply applies changes in order; changes at or below the current sequence are skipped.
func (l *Lists) Apply(changes []store.Change) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range changes {
		c := &changes[i]
		if c.Seq <= l.seq {
			continue
		}
		switch c.Op {
		case store.OpPut:
			l.put(&c.Entry)
		case store.OpDel:
			l.del(&c.Entry)
		}
		l.seq = c.Seq
	}
}

// ParseBlackKey tells whether a BLACK key is an IP, a network or (neither) a sender address.
func ParseBlackKey(key string) (ip netip.Addr, network netip.Prefix, isAddr bool) {
	if strings.Contains(key, "/") {
		if p, err := netip.ParsePrefix(key); err == nil {
			return netip.Addr{}, p.Masked(), false
		}
	}
	if a, err := netip.ParseAddr(key); err == nil {
		return a.Unmap(), netip.Prefix{}, false
	}
	return netip.Addr{}, netip.Prefix{}, true
}

func (l *Lists) put(e *store.Entry) {
	switch e.List {
	case store.Alias:
		l.alias[e.Key] = AliasTarget{Mailbox: e.Target, Owner: e.Owner, Disabled: e.Disabled}
	case store.White:
		m := l.whiteFrom
		if e.Kind == store.KindTo {
			m = l.whiteTo
		}
		m[e.Key] = m[e.Key].with(e.Owner)
	case store.Decoy:
		l.decoy[e.Key] = DecoyEntry{Source: e.Source, Target: e.Target}
	case store.Black:
		ip, network, isAddr := ParseBlackKey(e.Key)
		switch {
		case isAddr:
			l.blackAddr[e.Key] = expiry(e.Expires)
		case ip.IsValid():
			l.blackIP[ip] = expiry(e.Expires)
		default:
			if _, ok := l.blackNet[network]; !ok {
				l.netBits[network.Bits()]++
			}
			l.blackNet[network] = expiry(e.Expires)
		}
	case store.Relay:
		l.relay[e.Key] = struct{}{}
	case store.Audir:
		l.audir[e.Key] = e.Target
	}
}

func (l *Lists) del(e *store.Entry) {
	switch e.List {
	case store.Alias:
		delete(l.alias, e.Key)
	case store.White:
		m := l.whiteFrom
		if e.Kind == store.KindTo {
			m = l.whiteTo
		}
		if o := m[e.Key].without(e.Owner); len(o) > 0 {
			m[e.Key] = o
		} else {
			delete(m, e.Key)
		}
	case store.Decoy:
		delete(l.decoy, e.Key)
	case store.Black:
		ip, network, isAddr := ParseBlackKey(e.Key)
		switch {
		case isAddr:
			delete(l.blackAddr, e.Key)
		case ip.IsValid():
			delete(l.blackIP, ip)
		default:
			if _, ok := l.blackNet[network]; ok {
				l.netBits[network.Bits()]--
				delete(l.blackNet, network)
			}
		}
	case store.Relay:
		delete(l.relay, e.Key)
	case store.Audir:
		delete(l.audir, e.Key)
	}
}

// Alias returns the target of an alias address.
func (l *Lists) Alias(addr string) (AliasTarget, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	t, ok := l.alias[addr]
	return t, ok
}

// WhiteFrom reports whether sender (an address key) or its @domain is whitelisted as a
// sender, globally or by owner.
func (l *Lists) WhiteFrom(sender, owner string) bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.whiteFrom[sender].match(owner) {
		return true
	}
	if i := strings.LastIndexByte(sender, '@'); i >= 0 {
		return l.whiteFrom[sender[i:]].match(owner)
	}
	return false
}

// WhiteTo reports whether the recipient (an address key) or its @domain is whitelisted as a
// recipient that bypasses confirmation, globally or by owner.
func (l *Lists) WhiteTo(rcpt, owner string) bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.whiteTo[rcpt].match(owner) {
		return true
	}
	if i := strings.LastIndexByte(rcpt, '@'); i >= 0 {
		return l.whiteTo[rcpt[i:]].match(owner)
	}
	return false
}

// Decoy reports whether addr is a decoy address.
func (l *Lists) Decoy(addr string) bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	_, ok := l.decoy[addr]
	return ok
}

// DecoyOf returns what is known of a decoy address: who made it, and for a harvest trap
// the visitor it was planted for.
func (l *Lists) DecoyOf(addr string) (DecoyEntry, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	d, ok := l.decoy[addr]
	return d, ok
}

// BlackIP reports whether ip, or a network containing it, is blacklisted at now.
func (l *Lists) BlackIP(ip netip.Addr, now time.Time) bool {
	ip = ip.Unmap()
	l.mu.RLock()
	defer l.mu.RUnlock()
	if e, ok := l.blackIP[ip]; ok && e.live(now) {
		return true
	}
	if len(l.blackNet) == 0 {
		return false
	}
	for bits := ip.BitLen(); bits >= 0; bits-- {
		if l.netBits[bits] == 0 {
			continue
		}
		p, err := ip.Prefix(bits)
		if err != nil {
			continue
		}
		if e, ok := l.blackNet[p]; ok && e.live(now) {
			return true
		}
	}
	return false
}

// BlackSender reports whether a sender address (key) is blacklisted at now.
func (l *Lists) BlackSender(sender string, now time.Time) bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	e, ok := l.blackAddr[sender]
	return ok && e.live(now)
}

// RelaySender reports whether the sender alone has pass history (RELAY, kind sender).
func (l *Lists) RelaySender(sender string) bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	_, ok := l.relay[sender]
	return ok
}

// RelayPair reports whether the (sender, recipient) pair has pass history. It builds the
// pair key on the stack for short addresses, so it does not allocate.
func (l *Lists) RelayPair(sender, rcpt string) bool {
	var buf [256]byte
	k := append(append(append(buf[:0], sender...), ' '), rcpt...)
	l.mu.RLock()
	defer l.mu.RUnlock()
	_, ok := l.relay[string(k)] // the compiler does not allocate for a map index by string(bytes)
	return ok
}

// RelayMessageID reports whether id (a lower-cased "<...>" Message-ID) is one our users sent.
func (l *Lists) RelayMessageID(id string) bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	_, ok := l.relay[id]
	return ok
}

// Audir returns the sender a confirmation token hash belongs to.
func (l *Lists) Audir(tokenHash string) (string, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	s, ok := l.audir[tokenHash]
	return s, ok
}

// Sizes returns the number of entries in each list.
func (l *Lists) Sizes() map[store.List]int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	white := 0
	for _, o := range l.whiteFrom {
		white += len(o)
	}
	for _, o := range l.whiteTo {
		white += len(o)
	}
	return map[store.List]int{
		store.Alias: len(l.alias), store.White: white, store.Decoy: len(l.decoy),
		store.Black: len(l.blackIP) + len(l.blackNet) + len(l.blackAddr),
		store.Relay: len(l.relay), store.Audir: len(l.audir),
	}
}
