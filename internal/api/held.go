package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/sekisho/sekisho/internal/store"
)

// heldBody is a held message as the API shows it. A user token sees only its own
// recipients of a message (the others may be Bcc).
type heldBody struct {
	ID       string         `json:"id"`
	Received time.Time      `json:"received"`
	Expires  time.Time      `json:"expires"`
	ClientIP string         `json:"client_ip"`
	Helo     string         `json:"helo"`
	From     string         `json:"from"`
	Subject  string         `json:"subject"`
	Size     int64          `json:"size"`
	Rcpts    []heldRcptBody `json:"rcpts"`
}

type heldRcptBody struct {
	Rcpt   string `json:"rcpt"`
	Owner  string `json:"owner,omitempty"`
	Reason string `json:"reason"`
}

// visible returns the recipients of h the caller may see and act on: all for an admin, the
// caller's own for a user.
func visible(h store.Held, c caller) []store.HeldRcpt {
	if c.admin() {
		return h.Rcpts
	}
	var out []store.HeldRcpt
	for _, r := range h.Rcpts {
		if r.Owner == c.owner {
			out = append(out, r)
		}
	}
	return out
}

func (a *API) heldGet(w http.ResponseWriter, r *http.Request, c caller) {
	owner, limit, offset, ok := listing(w, r, c)
	if !ok {
		return
	}
	held, err := a.deps.Store.HeldList(r.Context(), store.HeldQuery{Owner: owner, Limit: limit, Offset: offset})
	if err != nil {
		a.internalError(w, "held list", err)
		return
	}
	out := []heldBody{}
	for _, h := range held {
		b := heldBody{ID: h.ID, Received: h.Received, Expires: h.Expires, ClientIP: h.ClientIP, Helo: h.Helo,
			From: h.From, Subject: h.Subject, Size: h.Size, Rcpts: []heldRcptBody{}}
		for _, rc := range visible(h, c) {
			b.Rcpts = append(b.Rcpts, heldRcptBody{Rcpt: rc.Rcpt, Owner: rc.Owner, Reason: rc.Reason})
		}
		out = append(out, b)
	}
	writeJSON(w, http.StatusOK, map[string]any{"held": out, "limit": limit, "offset": offset})
}

// heldFor finds the held message of the request and the recipients the caller may act on
// (nil = all). A message the caller has no recipient in answers 404, like a missing one.
func (a *API) heldFor(w http.ResponseWriter, r *http.Request, c caller) (string, []string, bool) {
	id := r.PathValue("id")
	h, _, err := a.deps.Store.HeldGet(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, "no such held message")
		return "", nil, false
	}
	if err != nil {
		a.internalError(w, "held message", err)
		return "", nil, false
	}
	if c.admin() {
		return id, nil, true
	}
	var mine []string
	for _, rc := range visible(h, c) {
		mine = append(mine, rc.Rcpt)
	}
	if len(mine) == 0 {
		writeError(w, http.StatusNotFound, "no such held message")
		return "", nil, false
	}
	return id, mine, true
}

func (a *API) heldRelease(w http.ResponseWriter, r *http.Request, c caller) {
	if a.deps.Releaser == nil {
		writeError(w, http.StatusServiceUnavailable, "release is not available on this server")
		return
	}
	id, rcpts, ok := a.heldFor(w, r, c)
	if !ok {
		return
	}
	n, err := a.deps.Releaser.Release(r.Context(), id, rcpts)
	if errors.Is(err, store.ErrNotFound) && n == 0 {
		writeError(w, http.StatusNotFound, "no such held message")
		return
	}
	if err != nil && n == 0 {
		a.log.Warn("api release failed", "token", c.token, "held", id, "err", err)
		writeError(w, http.StatusBadGateway, "the mail servers did not take the message; it stays held")
		return
	}
	if err != nil {
		a.log.Error("api release", "token", c.token, "held", id, "err", err)
	}
	a.log.Info("api held mail released", "token", c.token, "held", id, "rcpts", n)
	writeJSON(w, http.StatusOK, map[string]int{"released": n})
}

func (a *API) heldDelete(w http.ResponseWriter, r *http.Request, c caller) {
	id, rcpts, ok := a.heldFor(w, r, c)
	if !ok {
		return
	}
	err := a.deps.Store.HeldRemove(r.Context(), id, rcpts)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, "no such held message")
		return
	}
	if err != nil {
		a.internalError(w, "delete held message", err)
		return
	}
	a.log.Info("api held mail deleted", "token", c.token, "held", id, "rcpts", rcpts)
	w.WriteHeader(http.StatusNoContent)
}
