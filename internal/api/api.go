// Package api is sekisho's JSON API under /api/v1/ (SPEC §5): the six lists, users and held
// mail, for scripts and other systems.
//
// Every request carries "Authorization: Bearer TOKEN"; tokens are made by an admin (NewToken)
// and only their SHA-256 is stored. A token without an owner has admin rights. A token with
// an owner has that user's rights and no more: its own alias and white entries, and held mail
// addressed to it. Another user's entries and messages answer exactly as if they did not
// exist (404); lists and routes a user may never use (users, decoy, black, relay, audir)
// answer 403. No or a bad token answers 401, and a client IP that sends too many bad tokens
// gets 429 for a while. Every error is {"error": "..."}.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sekisho/sekisho/internal/lists"
	"github.com/sekisho/sekisho/internal/release"
	"github.com/sekisho/sekisho/internal/store"
)

// Prefix is the path under which the API is served.
const Prefix = "/api/v1/"

// Defaults of Options.
const (
	DefaultMaxBody           = 64 << 10
	DefaultFailuresPerMinute = 10
	DefaultLimit             = 1000 // entries or held messages per page when no limit is given
	MaxLimit                 = 10000
)

// Options configure the API. The zero value is usable.
type Options struct {
	// LocalDomains are the domains under which a user token may make aliases
	// (smtp.local_domains). An admin token may make aliases anywhere.
	LocalDomains []string
	// MaxBody bounds a request body; a larger one gets 413 (default DefaultMaxBody).
	MaxBody int64
	// FailuresPerMinute is how many bad tokens one client (an IPv4 address, an IPv6 /64)
	// may send per minute before it gets 429 (default DefaultFailuresPerMinute).
	FailuresPerMinute int
}

// Deps are the parts the API works with.
type Deps struct {
	Store store.Store
	// Releaser forwards released held mail; nil answers 503 to a release.
	Releaser *release.Releaser
	// Lists, when set, are brought up to date after each list write, so this process acts
	// on the change at once (others follow the store's change log).
	Lists  *lists.Lists
	Logger *slog.Logger
	Now    func() time.Time
}

// API serves /api/v1/. Make it with New.
type API struct {
	opts  Options
	deps  Deps
	log   *slog.Logger
	mux   *http.ServeMux
	fails *failures
}

// New returns the API handler.
func New(opts Options, deps Deps) *API {
	if opts.MaxBody <= 0 {
		opts.MaxBody = DefaultMaxBody
	}
	if opts.FailuresPerMinute <= 0 {
		opts.FailuresPerMinute = DefaultFailuresPerMinute
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	a := &API{opts: opts, deps: deps, log: deps.Logger, mux: http.NewServeMux(), fails: newFailures(opts.FailuresPerMinute)}
	a.handle("/api/v1/lists/{list}", byMethod{"GET": a.listGet, "POST": a.listAdd})
	a.handle("/api/v1/lists/{list}/{entry...}", byMethod{"DELETE": a.listDelete})
	a.handle("/api/v1/users", byMethod{"GET": a.usersGet, "POST": a.userAdd})
	a.handle("/api/v1/users/{address}", byMethod{"DELETE": a.userDelete})
	a.handle("/api/v1/held", byMethod{"GET": a.heldGet})
	a.handle("/api/v1/held/{id}", byMethod{"DELETE": a.heldDelete})
	a.handle("/api/v1/held/{id}/release", byMethod{"POST": a.heldRelease})
	a.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such API path")
	})
	return a
}

// Register serves the API under Prefix on mux.
func (a *API) Register(mux *http.ServeMux) { mux.Handle(Prefix, a) }

// caller is who a request acts as.
type caller struct {
	token string // the token's name, for logs
	owner string // "" = admin
}

func (c caller) admin() bool { return c.owner == "" }

type callerKey struct{}

// byMethod maps a method to its handler on one path.
type byMethod map[string]func(http.ResponseWriter, *http.Request, caller)

func (a *API) handle(pattern string, m byMethod) {
	var allow []string
	for method := range m {
		allow = append(allow, method)
	}
	slices.Sort(allow)
	a.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		h, ok := m[r.Method]
		if !ok {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed here")
			return
		}
		h(w, r, r.Context().Value(callerKey{}).(caller))
	})
}

// ServeHTTP authenticates the request, then routes it.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	now := a.deps.Now()
	client := clientKey(r)
	if a.fails.blocked(client, now) {
		w.Header().Set("Retry-After", "60")
		writeError(w, http.StatusTooManyRequests, "too many bad tokens from this address; try again later")
		return
	}
	c, status, msg := a.authenticate(r, now)
	if status != 0 {
		if status == http.StatusUnauthorized {
			challenge := `Bearer realm="sekisho"`
			if r.Header.Get("Authorization") != "" {
				a.fails.add(client, now)
				a.log.Info("api token refused", "client", client.String(), "reason", msg)
				challenge += `, error="invalid_token"` // RFC 6750 §3.1
			}
			w.Header().Set("WWW-Authenticate", challenge)
		}
		writeError(w, status, msg)
		return
	}
	a.mux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, c)))
}

// authenticate finds the request's token. It returns a status other than 0 and a message
// when the request may not go on.
func (a *API) authenticate(r *http.Request, now time.Time) (caller, int, string) {
	h := r.Header.Get("Authorization")
	scheme, token, _ := strings.Cut(h, " ")
	token = strings.TrimSpace(token)
	if h == "" || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return caller{}, http.StatusUnauthorized, "a bearer token is required"
	}
	if len(token) > 256 {
		return caller{}, http.StatusUnauthorized, "bad token"
	}
	t, err := a.deps.Store.TokenByHash(r.Context(), HashToken(token), now)
	if errors.Is(err, store.ErrNotFound) {
		return caller{}, http.StatusUnauthorized, "bad token"
	}
	if err != nil {
		a.log.Error("api token lookup", "err", err)
		return caller{}, http.StatusServiceUnavailable, "service unavailable, try again later"
	}
	if t.Owner != "" {
		// A token outlives nothing: once its user is gone, it is refused.
		if _, err := a.deps.Store.GetUser(r.Context(), t.Owner); errors.Is(err, store.ErrNotFound) {
			return caller{}, http.StatusUnauthorized, "bad token"
		} else if err != nil {
			a.log.Error("api token owner lookup", "err", err)
			return caller{}, http.StatusServiceUnavailable, "service unavailable, try again later"
		}
	}
	return caller{token: t.Name, owner: t.Owner}, 0, ""
}

// errorBody is every error answer.
type errorBody struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errorBody{Error: msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// internalError logs err and answers 500 without its detail.
func (a *API) internalError(w http.ResponseWriter, what string, err error) {
	a.log.Error("api: "+what, "err", err)
	writeError(w, http.StatusInternalServerError, "internal error")
}

// decode reads one JSON object of at most MaxBody bytes into v, with no unknown fields. It
// answers the error itself and returns false when the body is not acceptable.
func (a *API) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	body := http.MaxBytesReader(w, r.Body, a.opts.MaxBody)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, extra := dec.Token(); extra != io.EOF {
			err = errors.New("more than one JSON value")
			if extra != nil && !errors.Is(extra, io.ErrUnexpectedEOF) {
				err = extra
			}
		}
	}
	var tooBig *http.MaxBytesError
	switch {
	case err == nil:
		return true
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over %d bytes", tooBig.Limit))
	case errors.Is(err, io.EOF):
		writeError(w, http.StatusBadRequest, "bad JSON: empty body")
	default:
		writeError(w, http.StatusBadRequest, "bad JSON: "+err.Error())
	}
	return false
}

// page reads limit and offset from the query.
func page(r *http.Request) (limit, offset int, err error) {
	limit, offset = DefaultLimit, 0
	q := r.URL.Query()
	if s := q.Get("limit"); s != "" {
		if limit, err = strconv.Atoi(s); err != nil || limit < 1 || limit > MaxLimit {
			return 0, 0, fmt.Errorf("limit %q: want 1 to %d", s, MaxLimit)
		}
	}
	if s := q.Get("offset"); s != "" {
		if offset, err = strconv.Atoi(s); err != nil || offset < 0 {
			return 0, 0, fmt.Errorf("offset %q: want 0 or more", s)
		}
	}
	return limit, offset, nil
}

// clientKey is what failed attempts are counted by: the IPv4 address, or the IPv6 /64.
func clientKey(r *http.Request) netip.Prefix {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Prefix{}
	}
	ip := ap.Addr().Unmap()
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, _ := ip.Prefix(bits)
	return p
}
