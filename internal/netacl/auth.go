package netacl

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"sync"
	"time"

	"github.com/sekisho/sekisho/internal/mailaddr"
	"github.com/sekisho/sekisho/internal/password"
	"github.com/sekisho/sekisho/internal/store"
)

// Users finds sekisho users; store.Store satisfies it.
type Users interface {
	GetUser(ctx context.Context, address string) (store.User, error)
}

// Authenticator checks proxy credentials (HTTP Basic Proxy-Authorization, RFC 1929) against
// sekisho users. A password check costs an argon2id hash (64 MiB, tens of milliseconds),
// and a proxy client sends its credentials with every request, so good credentials are
// remembered for CacheTTL, and at most a few checks run at once.
//
// A changed password or a deleted user therefore takes up to CacheTTL to lock a client out.
type Authenticator struct {
	users Users
	ttl   time.Duration
	now   func() time.Time
	sem   chan struct{}

	mu   sync.Mutex
	good map[[sha256.Size]byte]time.Time // hash of user and password -> expiry
}

// Authenticator defaults.
const (
	DefaultAuthCacheTTL = time.Minute
	maxAuthCache        = 10000
	maxAuthParallel     = 4
)

// NewAuthenticator returns an Authenticator over users; ttl 0 is DefaultAuthCacheTTL; now
// nil is time.Now.
func NewAuthenticator(users Users, ttl time.Duration, now func() time.Time) *Authenticator {
	if ttl <= 0 {
		ttl = DefaultAuthCacheTTL
	}
	if now == nil {
		now = time.Now
	}
	return &Authenticator{
		users: users, ttl: ttl, now: now,
		sem:  make(chan struct{}, maxAuthParallel),
		good: map[[sha256.Size]byte]time.Time{},
	}
}

// Check reports whether pass is the password of the user named user (a mailbox address,
// compared in its canonical form). An error means the check could not be made (store down,
// ctx done), not that the credentials are wrong.
func (a *Authenticator) Check(ctx context.Context, user, pass string) (bool, error) {
	if user == "" || pass == "" {
		return false, nil
	}
	if addr, err := mailaddr.Parse(user); err == nil {
		user = addr.Key()
	}
	key := credKey(user, pass)
	now := a.now()
	a.mu.Lock()
	exp, ok := a.good[key]
	a.mu.Unlock()
	if ok && now.Before(exp) {
		return true, nil
	}

	select {
	case a.sem <- struct{}{}:
		defer func() { <-a.sem }()
	case <-ctx.Done():
		return false, ctx.Err()
	}
	u, err := a.users.GetUser(ctx, user)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	good, err := password.Check(u.PasswordHash, pass)
	if err != nil || !good {
		return false, nil // a malformed stored hash never lets anyone in
	}
	a.mu.Lock()
	if len(a.good) >= maxAuthCache {
		for k, e := range a.good {
			if !now.Before(e) {
				delete(a.good, k)
			}
		}
		if len(a.good) >= maxAuthCache {
			clear(a.good)
		}
	}
	a.good[key] = now.Add(a.ttl)
	a.mu.Unlock()
	return true, nil
}

func credKey(user, pass string) [sha256.Size]byte {
	h := sha256.New()
	h.Write(binary.BigEndian.AppendUint32(nil, uint32(len(user)))) // no (user, pass) split is ambiguous
	h.Write([]byte(user))
	h.Write([]byte(pass))
	var k [sha256.Size]byte
	h.Sum(k[:0])
	return k
}
