// Package webauth logs people in to the built-in app's pages: the password of a sekisho
// user, a server-side session kept in the store (so any node of a cluster serves it), a
// CSRF token per session checked on every state-changing request, and limits on failed
// logins per account and per client IP.
//
// The session cookie is __Host- prefixed, Secure, HttpOnly and SameSite=Lax; the store keeps
// only the SHA-256 of its value.
package webauth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"time"

	"github.com/sekisho/sekisho/internal/password"
	"github.com/sekisho/sekisho/internal/store"
	"github.com/sekisho/sekisho/internal/webui"
)

// Cookie names.
const (
	SessionCookie = "__Host-sekisho"
	LoginCookie   = "__Host-sekisho-login" // double-submit token of the login form
)

// CSRFField is the form field (or, for scripts, the X-CSRF-Token header) that carries the
// session's CSRF token.
const CSRFField = "csrf"

// DefaultTTL is how long a session lasts without a new login.
const DefaultTTL = 12 * time.Hour

// Errors of Login.
var (
	ErrBadLogin = errors.New("wrong address or password")
	ErrTooMany  = errors.New("too many failed logins; try again later")
)

// Who is the logged-in user of a request.
type Who struct {
	User    store.User
	Session store.Session
}

// Auth checks passwords and keeps sessions.
type Auth struct {
	Store   store.Store
	Limiter *Limiter      // nil: NewLimiter with the defaults
	TTL     time.Duration // 0: DefaultTTL
	Now     func() time.Time
	Log     *slog.Logger

	once  sync.Once
	dummy string // a password hash checked when the account does not exist
}

func (a *Auth) init() {
	a.once.Do(func() {
		if a.Limiter == nil {
			a.Limiter = NewLimiter(DefaultLimits)
		}
		a.dummy, _ = password.Hash(RandomToken())
	})
}

func (a *Auth) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

func (a *Auth) ttl() time.Duration {
	if a.TTL > 0 {
		return a.TTL
	}
	return DefaultTTL
}

// RandomToken returns 32 random bytes, URL-safe base64.
func RandomToken() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

// hashID is what the store keeps of a session cookie.
func hashID(v string) string {
	h := sha256.Sum256([]byte(v))
	return hex.EncodeToString(h[:])
}

// Login checks address and password; on success it starts a session and sets its cookie.
// Failures are counted against the account and the client IP.
func (a *Auth) Login(w http.ResponseWriter, r *http.Request, address, pw string) (Who, error) {
	a.init()
	lim := a.Limiter
	ip := webui.ClientIP(r)
	now := a.now()
	if !lim.Allow(address, ip, now) {
		return Who{}, ErrTooMany
	}
	u, err := a.Store.GetUser(r.Context(), address)
	if errors.Is(err, store.ErrNotFound) {
		// Spend the time a check takes, so timing does not tell which accounts exist.
		password.Check(a.dummy, pw)
		lim.Fail(address, ip, now)
		return Who{}, ErrBadLogin
	}
	if err != nil {
		return Who{}, err
	}
	ok, err := password.Check(u.PasswordHash, pw)
	if err != nil || !ok {
		lim.Fail(address, ip, now)
		return Who{}, ErrBadLogin
	}
	lim.Succeed(address)
	cookie := RandomToken()
	se := store.Session{ID: hashID(cookie), User: u.Address, CSRF: RandomToken(), Created: now, Expires: now.Add(a.ttl())}
	if err := a.Store.PutSession(r.Context(), se); err != nil {
		return Who{}, err
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: cookie, Path: "/", Expires: se.Expires,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	return Who{User: u, Session: se}, nil
}

// Logout ends the session of r, if any, and clears its cookie.
func (a *Auth) Logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(SessionCookie); err == nil {
		if err := a.Store.DeleteSession(r.Context(), hashID(c.Value)); err != nil && a.Log != nil {
			a.Log.Warn("logout", "err", err)
		}
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1, Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
}

// Lookup returns the logged-in user of r: a valid session cookie whose user still exists.
func (a *Auth) Lookup(r *http.Request) (Who, bool) {
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" || len(c.Value) > 128 {
		return Who{}, false
	}
	se, err := a.Store.GetSession(r.Context(), hashID(c.Value), a.now())
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) && a.Log != nil {
			a.Log.Warn("session lookup", "err", err)
		}
		return Who{}, false
	}
	u, err := a.Store.GetUser(r.Context(), se.User)
	if err != nil {
		return Who{}, false
	}
	return Who{User: u, Session: se}, true
}

type ctxKey struct{}

// From returns the logged-in user that RequireUser put in ctx.
func From(ctx context.Context) (Who, bool) {
	w, ok := ctx.Value(ctxKey{}).(Who)
	return w, ok
}

// safeMethod reports whether m changes nothing (no CSRF check needed).
func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// CheckCSRF reports whether a state-changing request carries its session's CSRF token.
func CheckCSRF(r *http.Request, who Who) bool {
	got := r.Header.Get("X-CSRF-Token")
	if got == "" {
		got = r.PostFormValue(CSRFField)
	}
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(who.Session.CSRF)) == 1
}

// RequireUser serves next only to a logged-in user, with Who in the request context. A
// request without a session is sent to /login (GET) or refused 403 (other methods); a
// state-changing request without the session's CSRF token is refused 403.
func (a *Auth) RequireUser(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		who, ok := a.Lookup(r)
		if !ok {
			if safeMethod(r.Method) {
				http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			http.Error(w, "Forbidden: not logged in", http.StatusForbidden)
			return
		}
		if !safeMethod(r.Method) {
			r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
			if !CheckCSRF(r, who) {
				http.Error(w, "Forbidden: missing or wrong CSRF token; reload the page and try again", http.StatusForbidden)
				return
			}
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, who)))
	})
}

// RequireAdmin is RequireUser for admin users coming from one of networks; anyone else
// gets 403 (a client outside networks before anything else, so it learns nothing).
func (a *Auth) RequireAdmin(networks []netip.Prefix, next http.Handler) http.Handler {
	inner := a.RequireUser(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		who, _ := From(r.Context())
		if !who.User.Admin {
			http.Error(w, "Forbidden: administrators only", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !InNetworks(webui.ClientIP(r), networks) {
			http.Error(w, "Forbidden", http.StatusForbidden)
			return
		}
		inner.ServeHTTP(w, r)
	})
}

// InNetworks reports whether ip is in one of networks.
func InNetworks(ip netip.Addr, networks []netip.Prefix) bool {
	for _, n := range networks {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// maxFormBytes bounds the body of a form post.
const maxFormBytes = 64 << 10
