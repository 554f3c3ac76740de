package api

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/sekisho/sekisho/internal/mailaddr"
	"github.com/sekisho/sekisho/internal/password"
	"github.com/sekisho/sekisho/internal/store"
)

// userBody is a user as the API shows it (never the password hash).
type userBody struct {
	Address string    `json:"address"`
	Admin   bool      `json:"admin"`
	Created time.Time `json:"created"`
}

// adminOnly refuses user tokens.
func adminOnly(w http.ResponseWriter, c caller) bool {
	if !c.admin() {
		writeError(w, http.StatusForbidden, "users are managed by admin tokens only")
		return false
	}
	return true
}

func (a *API) usersGet(w http.ResponseWriter, r *http.Request, c caller) {
	if !adminOnly(w, c) {
		return
	}
	users, err := a.deps.Store.Users(r.Context())
	if err != nil {
		a.internalError(w, "users", err)
		return
	}
	out := []userBody{}
	for _, u := range users {
		out = append(out, userBody{Address: u.Address, Admin: u.Admin, Created: u.Created})
	}
	writeJSON(w, http.StatusOK, map[string][]userBody{"users": out})
}

// userRequest is the body of POST /api/v1/users.
type userRequest struct {
	Address  string `json:"address"`
	Password string `json:"password"`
	Admin    bool   `json:"admin"`
}

func (a *API) userAdd(w http.ResponseWriter, r *http.Request, c caller) {
	if !adminOnly(w, c) {
		return
	}
	var req userRequest
	if !a.decode(w, r, &req) {
		return
	}
	addr, err := mailaddr.Parse(req.Address)
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("address %q: %v", req.Address, err))
		return
	}
	if req.Password == "" {
		writeError(w, http.StatusBadRequest, "password: empty")
		return
	}
	if len(req.Password) > 1024 {
		writeError(w, http.StatusBadRequest, "password: over 1024 bytes")
		return
	}
	switch _, err := a.deps.Store.GetUser(r.Context(), addr.Key()); {
	case err == nil:
		writeError(w, http.StatusConflict, fmt.Sprintf("user %s exists", addr.Key()))
		return
	case !errors.Is(err, store.ErrNotFound):
		a.internalError(w, "user lookup", err)
		return
	}
	hash, err := password.Hash(req.Password)
	if err != nil {
		a.internalError(w, "hash password", err)
		return
	}
	u := store.User{Address: addr.Key(), PasswordHash: hash, Admin: req.Admin, Created: a.deps.Now()}
	if err := a.deps.Store.PutUser(r.Context(), u); err != nil {
		a.internalError(w, "add user", err)
		return
	}
	a.log.Info("api user added", "token", c.token, "user", u.Address, "admin", u.Admin)
	writeJSON(w, http.StatusCreated, userBody{Address: u.Address, Admin: u.Admin, Created: u.Created})
}

// userDelete deletes a user with its sessions and API tokens.
func (a *API) userDelete(w http.ResponseWriter, r *http.Request, c caller) {
	if !adminOnly(w, c) {
		return
	}
	addr, err := mailaddr.Parse(r.PathValue("address"))
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("address %q: %v", r.PathValue("address"), err))
		return
	}
	ctx := r.Context()
	if err := a.deps.Store.DeleteUser(ctx, addr.Key()); errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, "no such user")
		return
	} else if err != nil {
		a.internalError(w, "delete user", err)
		return
	}
	if err := a.deps.Store.DeleteUserSessions(ctx, addr.Key()); err != nil {
		a.log.Warn("api: delete user sessions", "user", addr.Key(), "err", err)
	}
	tokens, err := a.deps.Store.Tokens(ctx)
	if err != nil {
		a.log.Warn("api: tokens of deleted user", "user", addr.Key(), "err", err)
	}
	for _, t := range tokens {
		if t.Owner == addr.Key() {
			if err := a.deps.Store.DeleteToken(ctx, t.Name); err != nil && !errors.Is(err, store.ErrNotFound) {
				a.log.Warn("api: delete token of deleted user", "user", addr.Key(), "token", t.Name, "err", err)
			}
		}
	}
	a.log.Info("api user deleted", "token", c.token, "user", addr.Key())
	w.WriteHeader(http.StatusNoContent)
}
