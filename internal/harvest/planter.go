// Package harvest plants harvest traps (SPEC §5 "Harvest traps"): every HTML page served by
// the built-in app and the static routes carries a hidden mailto: link to an address made
// for that visitor at [web] decoy_seed, stored in DECOY with the visit. Spam later sent to
// it is a decoy hit; the SMTP proxy then also blacklists the IP that harvested the page.
//
// The address is derived, not drawn: HMAC-SHA256 under the installation's secret "harvest"
// of the client IP and the UTC day, so every node of a cluster gives a visitor the same
// address without asking the others, and DECOY grows by visitors, not by page views.
package harvest

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sekisho/sekisho/internal/lists"
	"github.com/sekisho/sekisho/internal/store"
)

// Source is the DECOY source of a planted address, and the BLACK source of the IP that
// harvested it.
const Source = "harvest"

// SecretName names the store secret the addresses are derived with.
const SecretName = "harvest"

// LocalPartLen is the length of a planted local part: 16 base32 characters, 80 bits.
const LocalPartLen = 16

// Defaults of Options.
const (
	DefaultMaxVisitors = 1 << 16
	DefaultQueue       = 1024
)

// Bounds on the store work of one address.
const (
	checkTimeout = time.Second     // the user lookup before an address is first shown
	writeTimeout = 5 * time.Second // each store write of a planted trap
	maxAttempts  = 8               // derivations tried before giving up on a visitor
	maxNote      = 200             // User-Agent kept in the DECOY note and the trap
	maxURL       = 500
)

// Counter counts what the traps do; a Prometheus implementation lives elsewhere.
type Counter interface {
	HarvestPlanted() // an address was planted (stored) for a new visitor of the day
	HarvestHit()     // mail arrived at a planted address
}

// Options configure a Planter.
type Options struct {
	Domain string        // decoy_seed: the local domain of the addresses
	TTL    time.Duration // decoy_seed_ttl: how long a planted address stays in DECOY
	// MaxVisitors bounds the (IP, day) pairs remembered in memory; 0: DefaultMaxVisitors.
	MaxVisitors int
	// Queue bounds the traps waiting to be written to the store; 0: DefaultQueue.
	Queue int
}

// Deps are the parts a Planter works with.
type Deps struct {
	Store   store.Store
	Lists   *lists.Lists // users' aliases and admins' decoys, which an address must not equal
	Logger  *slog.Logger // nil: discard
	Now     func() time.Time
	Counter Counter // nil: none
}

// Visit is one page view that shows a trap address.
type Visit struct {
	IP        netip.Addr
	UserAgent string
	URL       string
}

// Planter gives each visitor its trap address and records it the first time this node
// shows it. Run must be running for traps to be stored.
type Planter struct {
	opts   Options
	deps   Deps
	log    *slog.Logger
	secret []byte
	queue  chan plant

	mu      sync.Mutex
	day     int64                   // the UTC day the visitors are of
	visitor map[netip.Addr]*visitor // this day's visitors
}

// visitor is what is known of one (IP, day).
type visitor struct {
	addr    string
	planted bool // queued or stored; cleared when the store write fails
}

// plant is a trap waiting to be stored.
type plant struct {
	addr  string
	visit Visit
	at    time.Time
	day   int64
}

// New returns a Planter, reading (or making) the installation's secret.
func New(ctx context.Context, opts Options, deps Deps) (*Planter, error) {
	if opts.Domain == "" {
		return nil, errors.New("harvest: no domain")
	}
	if opts.MaxVisitors <= 0 {
		opts.MaxVisitors = DefaultMaxVisitors
	}
	if opts.Queue <= 0 {
		opts.Queue = DefaultQueue
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	secret, err := deps.Store.Secret(ctx, SecretName, 32)
	if err != nil {
		return nil, fmt.Errorf("harvest secret: %w", err)
	}
	opts.Domain = strings.ToLower(opts.Domain)
	return &Planter{
		opts: opts, deps: deps, log: deps.Logger, secret: secret,
		queue: make(chan plant, opts.Queue), visitor: map[netip.Addr]*visitor{},
	}, nil
}

// dayOf numbers UTC days since 1970.
func dayOf(t time.Time) int64 { return t.Unix() / 86400 }

// derive is the n-th candidate address of ip on day.
func (p *Planter) derive(ip netip.Addr, day int64, n int) string {
	m := hmac.New(sha256.New, p.secret)
	m.Write([]byte(ip.String()))
	m.Write([]byte{0})
	m.Write(strconv.AppendInt(nil, day, 10))
	if n > 0 {
		m.Write([]byte{0})
		m.Write(strconv.AppendInt(nil, int64(n), 10))
	}
	local := strings.ToLower(base32.StdEncoding.EncodeToString(m.Sum(nil)))[:LocalPartLen]
	return local + "@" + p.opts.Domain
}

// Address returns the trap address of a visitor today, without planting it.
func (p *Planter) Address(ctx context.Context, ip netip.Addr) (string, error) {
	addr, _, err := p.lookup(ctx, ip)
	return addr, err
}

// Plant returns the trap address of the visitor and, the first time this node shows it
// today, queues the trap for the store (DECOY entry and visit) without waiting for it.
// An error means no address may be shown (the check against users failed).
func (p *Planter) Plant(ctx context.Context, v Visit) (string, error) {
	return p.plant(ctx, v.IP, func() Visit { return v })
}

// plant is Plant with the visit made only when it is recorded.
func (p *Planter) plant(ctx context.Context, ip netip.Addr, visit func() Visit) (string, error) {
	ip = ip.Unmap()
	addr, day, err := p.lookup(ctx, ip)
	if err != nil {
		return "", err
	}
	p.mu.Lock()
	vis := p.visitor[ip] // nil when forgotten (day over, memory full) since lookup: plant it
	fresh := vis == nil || p.day != day || !vis.planted
	if vis != nil && p.day == day {
		vis.planted = true
	}
	p.mu.Unlock()
	if !fresh || p.known(addr, ip) {
		return addr, nil
	}
	v := visit()
	v.IP = ip
	select {
	case p.queue <- plant{addr: addr, visit: v, at: p.deps.Now(), day: day}:
	default: // the store is behind: shown unrecorded this time, a later view tries again
		p.unplant(ip, day)
		p.log.Warn("harvest trap not recorded: queue full", "client", ip.String(), "queue", cap(p.queue))
	}
	return addr, nil
}

// lookup returns the visitor's address today, deriving and checking it on first sight.
func (p *Planter) lookup(ctx context.Context, ip netip.Addr) (string, int64, error) {
	ip = ip.Unmap()
	day := dayOf(p.deps.Now().UTC())
	p.mu.Lock()
	if p.day != day {
		p.day, p.visitor = day, map[netip.Addr]*visitor{}
	}
	if v := p.visitor[ip]; v != nil {
		p.mu.Unlock()
		return v.addr, day, nil
	}
	p.mu.Unlock()

	addr, err := p.pick(ctx, ip, day)
	if err != nil {
		return "", 0, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.day == day && p.visitor[ip] == nil {
		if len(p.visitor) >= p.opts.MaxVisitors {
			for k := range p.visitor { // forget one at random; it is derived again if it comes back
				delete(p.visitor, k)
				break
			}
		}
		p.visitor[ip] = &visitor{addr: addr}
	}
	return addr, day, nil
}

// pick derives the visitor's address, skipping any that is a user, an alias, or a decoy
// that is not this visitor's trap. Every node has the same lists and users, so they pick
// the same.
func (p *Planter) pick(ctx context.Context, ip netip.Addr, day int64) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	for n := range maxAttempts {
		addr := p.derive(ip, day, n)
		ok, err := p.free(ctx, addr, ip)
		if err != nil {
			return "", err
		}
		if ok {
			return addr, nil
		}
		p.log.Info("harvest address taken, deriving another", "address", addr, "attempt", n)
	}
	return "", fmt.Errorf("harvest: no free address for %s after %d attempts", ip, maxAttempts)
}

// free reports whether addr may be planted for ip.
func (p *Planter) free(ctx context.Context, addr string, ip netip.Addr) (bool, error) {
	if l := p.deps.Lists; l != nil {
		if _, ok := l.Alias(addr); ok {
			return false, nil
		}
		if d, ok := l.DecoyOf(addr); ok && (d.Source != Source || d.Target != ip.String()) {
			return false, nil
		}
	}
	_, err := p.deps.Store.GetUser(ctx, addr)
	switch {
	case err == nil:
		return false, nil
	case errors.Is(err, store.ErrNotFound):
		return true, nil
	}
	return false, fmt.Errorf("harvest: check user %s: %w", addr, err)
}

// known reports a trap already in DECOY for this visitor: planted by another node, or by
// this one before a restart.
func (p *Planter) known(addr string, ip netip.Addr) bool {
	if p.deps.Lists == nil {
		return false
	}
	d, ok := p.deps.Lists.DecoyOf(addr)
	return ok && d.Source == Source && d.Target == ip.String()
}

// unplant forgets that a visitor's trap was planted, so that the next view plants it.
func (p *Planter) unplant(ip netip.Addr, day int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if v := p.visitor[ip]; v != nil && p.day == day {
		v.planted = false
	}
}

// Run stores queued traps until ctx ends, then what is still queued, for at most a few
// seconds (pages showing them went out; what is left is planted again at a later view).
func (p *Planter) Run(ctx context.Context) {
	for {
		select {
		case pl := <-p.queue:
			p.store(ctx, pl)
		case <-ctx.Done():
			drain, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
			defer cancel()
			for drain.Err() == nil {
				select {
				case pl := <-p.queue:
					p.store(drain, pl)
				default:
					return
				}
			}
			return
		}
	}
}

// store writes one trap: the visit first, then the DECOY entry that makes mail to it a hit.
func (p *Planter) store(ctx context.Context, pl plant) {
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	ip := pl.visit.IP.Unmap().String()
	ua := store.OneLine(pl.visit.UserAgent, maxNote)
	err := p.deps.Store.PutTrap(ctx, store.Trap{
		Address: pl.addr, IP: ip, UserAgent: ua, URL: store.OneLine(pl.visit.URL, maxURL), Planted: pl.at,
	})
	if err == nil {
		err = p.deps.Store.Put(ctx, store.Entry{
			List: store.Decoy, Key: pl.addr, Source: Source, Target: ip, Note: ua,
			Expires: pl.at.Add(p.opts.TTL),
		})
	}
	if err != nil {
		p.unplant(pl.visit.IP.Unmap(), pl.day)
		p.log.Error("harvest trap not recorded", "client", ip, "address", pl.addr, "err", err)
		return
	}
	if p.deps.Lists != nil { // this node knows its trap at once; the others follow the log
		if err := p.deps.Lists.CatchUp(ctx, p.deps.Store); err != nil {
			p.log.Warn("lists catch up", "err", err)
		}
	}
	if p.deps.Counter != nil {
		p.deps.Counter.HarvestPlanted()
	}
	p.log.Info("harvest trap planted", "client", ip, "address", pl.addr, "url", pl.visit.URL)
}
