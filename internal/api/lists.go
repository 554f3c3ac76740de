package api

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/sekisho/sekisho/internal/lists"
	"github.com/sekisho/sekisho/internal/store"
)

// listOf finds the list of the request and checks that the caller may use it. It answers
// the error itself and returns false otherwise.
func listOf(w http.ResponseWriter, r *http.Request, c caller) (store.List, bool) {
	l, ok := store.ParseList(r.PathValue("list"))
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("unknown list %q (want alias, white, decoy, black, relay or audir)", r.PathValue("list")))
		return "", false
	}
	if !c.admin() && l != store.Alias && l != store.White {
		writeError(w, http.StatusForbidden, fmt.Sprintf("a user token may not use the %s list", l))
		return "", false
	}
	return l, true
}

// ownerParam is the owner the request names in ?owner=: for a user token, itself (naming
// anyone else is refused); for an admin, whoever is named, and set says whether one was.
func ownerParam(w http.ResponseWriter, r *http.Request, c caller) (owner string, set, ok bool) {
	q := r.URL.Query()
	if !q.Has("owner") {
		return c.owner, !c.admin(), true
	}
	owner, err := lists.ParseOwner(q.Get("owner"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return "", false, false
	}
	if !c.admin() && owner != c.owner {
		writeError(w, http.StatusForbidden, "a user token sees its own entries only")
		return "", false, false
	}
	return owner, true, true
}

// listing reads what a GET of entries or held mail asks for: the owner (see ownerParam) and
// the page. It answers the error itself and returns false when the query is not acceptable.
func listing(w http.ResponseWriter, r *http.Request, c caller) (owner string, limit, offset int, ok bool) {
	if owner, _, ok = ownerParam(w, r, c); !ok {
		return "", 0, 0, false
	}
	limit, offset, err := page(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return "", 0, 0, false
	}
	return owner, limit, offset, true
}

// entriesBody is the answer of GET /api/v1/lists/{list}.
type entriesBody struct {
	List    store.List    `json:"list"`
	Entries []store.Entry `json:"entries"`
	Limit   int           `json:"limit"`
	Offset  int           `json:"offset"`
}

func (a *API) listGet(w http.ResponseWriter, r *http.Request, c caller) {
	l, ok := listOf(w, r, c)
	if !ok {
		return
	}
	owner, limit, offset, ok := listing(w, r, c)
	if !ok {
		return
	}
	// An admin asking for owner "" gets every entry; global entries alone are not a query
	// the store offers.
	entries, err := a.deps.Store.Entries(r.Context(), l, store.Query{Q: r.URL.Query().Get("q"), Owner: owner, Limit: limit, Offset: offset})
	if err != nil {
		a.internalError(w, "list entries", err)
		return
	}
	if entries == nil {
		entries = []store.Entry{}
	}
	writeJSON(w, http.StatusOK, entriesBody{List: l, Entries: entries, Limit: limit, Offset: offset})
}

// addRequest is the body of POST /api/v1/lists/{list}.
type addRequest struct {
	Entry  string `json:"entry"`
	Kind   string `json:"kind"`
	Owner  string `json:"owner"`
	Target string `json:"target"` // alias: the mailbox it delivers to (admin; default owner)
	TTL    string `json:"ttl"`
	Note   string `json:"note"`
	// Disabled keeps an alias that refuses mail (550) until it is added again without it.
	Disabled bool `json:"disabled"`
}

func (a *API) listAdd(w http.ResponseWriter, r *http.Request, c caller) {
	l, ok := listOf(w, r, c)
	if !ok {
		return
	}
	if l == store.Audir {
		w.Header().Set("Allow", "GET")
		writeError(w, http.StatusMethodNotAllowed, "audir entries are made by the challenge step only")
		return
	}
	var req addRequest
	if !a.decode(w, r, &req) {
		return
	}
	var ttl time.Duration
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		if err != nil || d <= 0 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("ttl %q: want a positive duration such as \"24h\"", req.TTL))
			return
		}
		ttl = d
	}
	if len(req.Note) > 1000 {
		writeError(w, http.StatusBadRequest, "note: over 1000 bytes")
		return
	}
	in := lists.EntryInput{List: l, Entry: req.Entry, Kind: req.Kind, Owner: req.Owner, Target: req.Target, Note: req.Note, TTL: ttl}
	if !c.admin() {
		if !a.sameUser(w, "owner", req.Owner, c) || !a.sameUser(w, "target", req.Target, c) {
			return
		}
		in.Owner, in.Target = c.owner, c.owner
	}
	e, err := lists.ParseEntry(in, a.deps.Now())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if req.Disabled && l != store.Alias {
		writeError(w, http.StatusBadRequest, "disabled: only aliases are disabled")
		return
	}
	e.Disabled = req.Disabled
	if l == store.Alias && !a.aliasFree(w, r, c, e) {
		return
	}
	if err := a.deps.Store.Put(r.Context(), e); err != nil {
		a.internalError(w, "add entry", err)
		return
	}
	a.catchUp(r)
	a.log.Info("api entry added", "token", c.token, "list", l, "entry", e.Key, "kind", e.Kind, "owner", e.Owner)
	writeJSON(w, http.StatusCreated, a.stored(r, e))
}

// stored returns the entry as the store keeps it (created, updated, counters).
func (a *API) stored(r *http.Request, e store.Entry) store.Entry {
	e.Created, e.Updated = a.deps.Now(), a.deps.Now()
	have, err := a.deps.Store.Entries(r.Context(), e.List, store.Query{Key: e.Key, Owner: e.Owner})
	if err != nil {
		a.log.Warn("api: read back entry", "err", err)
		return e
	}
	for _, x := range have {
		if x.Key == e.Key && x.Kind == e.Kind {
			return x
		}
	}
	return e
}

// sameUser checks that a user token names no one but itself in field.
func (a *API) sameUser(w http.ResponseWriter, field, value string, c caller) bool {
	if value == "" {
		return true
	}
	v, err := lists.ParseOwner(value)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return false
	}
	if v != c.owner {
		writeError(w, http.StatusForbidden, field+": a user token adds entries for its own user only")
		return false
	}
	return true
}

// aliasFree checks that a new alias takes nobody's mail: its domain is one of ours (user
// tokens), it is no user's mailbox, and no other owner has it.
func (a *API) aliasFree(w http.ResponseWriter, r *http.Request, c caller, e store.Entry) bool {
	if !c.admin() && !slices.Contains(a.opts.LocalDomains, store.SenderDomain(e.Key)) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("entry %q: an alias must be under one of our domains %v", e.Key, a.opts.LocalDomains))
		return false
	}
	if _, err := a.deps.Store.GetUser(r.Context(), e.Key); err == nil {
		writeError(w, http.StatusConflict, fmt.Sprintf("entry %q: a user's mailbox cannot be an alias", e.Key))
		return false
	} else if !errors.Is(err, store.ErrNotFound) {
		a.internalError(w, "alias check", err)
		return false
	}
	owners, err := a.aliasOwners(r, e.Key)
	if err != nil {
		a.internalError(w, "alias check", err)
		return false
	}
	for _, o := range owners {
		if o != e.Owner {
			// Unavoidable: an alias address is one mailbox, whoever holds it.
			writeError(w, http.StatusConflict, fmt.Sprintf("entry %q: the alias is taken", e.Key))
			return false
		}
	}
	return true
}

// aliasOwners returns who has the alias key: from the lists in memory when there are
// some (a lookup), else from the store (a scan).
func (a *API) aliasOwners(r *http.Request, key string) ([]string, error) {
	if a.deps.Lists != nil {
		if t, ok := a.deps.Lists.Alias(key); ok {
			return []string{t.Owner}, nil
		}
		return nil, nil
	}
	have, err := a.deps.Store.Entries(r.Context(), store.Alias, store.Query{Key: key})
	var owners []string
	for _, x := range have {
		if x.Key == key {
			owners = append(owners, x.Owner)
		}
	}
	return owners, err
}

func (a *API) listDelete(w http.ResponseWriter, r *http.Request, c caller) {
	l, ok := listOf(w, r, c)
	if !ok {
		return
	}
	owner, ownerSet, ok := ownerParam(w, r, c)
	if !ok {
		return
	}
	key, kind, err := lists.ParseKey(l, r.PathValue("entry"), r.URL.Query().Get("kind"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	have, err := a.deps.Store.Entries(r.Context(), l, store.Query{Key: key, Owner: owner})
	if err != nil {
		a.internalError(w, "find entry", err)
		return
	}
	var match []store.Entry
	for _, x := range have {
		if x.Key == key && (kind == "" || x.Kind == kind) && (!ownerSet || x.Owner == owner) {
			match = append(match, x)
		}
	}
	switch {
	case len(match) == 0:
		writeError(w, http.StatusNotFound, fmt.Sprintf("no such %s entry", l))
		return
	case len(match) > 1:
		writeError(w, http.StatusConflict, fmt.Sprintf("%d %s entries are %s: name one with ?kind= and ?owner=", len(match), l, key))
		return
	}
	e := match[0]
	err = a.deps.Store.Delete(r.Context(), l, e.Key, e.Kind, e.Owner)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no such %s entry", l))
		return
	}
	if err != nil {
		a.internalError(w, "delete entry", err)
		return
	}
	a.catchUp(r)
	a.log.Info("api entry deleted", "token", c.token, "list", l, "entry", e.Key, "kind", e.Kind, "owner", e.Owner)
	w.WriteHeader(http.StatusNoContent)
}

// catchUp brings this process's lists up to date after a write.
func (a *API) catchUp(r *http.Request) {
	if a.deps.Lists == nil {
		return
	}
	if err := a.deps.Lists.CatchUp(r.Context(), a.deps.Store); err != nil {
		a.log.Warn("api: lists catch up", "err", err)
	}
}
