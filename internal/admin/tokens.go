package admin

import (
	"errors"
	"net/http"
	"regexp"
	"strings"

	"github.com/sekisho/sekisho/internal/api"
	"github.com/sekisho/sekisho/internal/store"
)

// tokenName is what a token may be called.
var tokenName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

type tokensData struct {
	Rows  []store.Token
	Users []store.User
	New   string // the token just made, shown this once
	Name  string // its name
}

func (a *Admin) tokens(w http.ResponseWriter, r *http.Request) {
	a.tokensPage(w, r, http.StatusOK, tokensData{}, flash(r), "")
}

func (a *Admin) tokensPage(w http.ResponseWriter, r *http.Request, status int, d tokensData, flash, problem string) {
	var err error
	if d.Rows, err = a.o.Store.Tokens(r.Context()); err != nil {
		a.fail(w, r, "tokens", err)
		return
	}
	if d.Users, err = a.o.Store.Users(r.Context()); err != nil {
		a.fail(w, r, "users", err)
		return
	}
	a.render(w, r, status, "tokens.html", d, flash, problem)
}

// tokenCreate makes a token and shows it on the page it answers with, once; a reload of
// that page (a GET) no longer shows it.
func (a *Admin) tokenCreate(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimSpace(r.PostFormValue("name"))
	if !tokenName.MatchString(name) {
		a.tokensPage(w, r, http.StatusBadRequest, tokensData{}, "", text(r, "err_token_name"))
		return
	}
	owner := ""
	if strings.TrimSpace(r.PostFormValue("owner")) != "" {
		addr, ok := address(r, "owner")
		if !ok {
			a.tokensPage(w, r, http.StatusBadRequest, tokensData{}, "", text(r, "err_address"))
			return
		}
		if _, err := a.o.Store.GetUser(r.Context(), addr); errors.Is(err, store.ErrNotFound) {
			a.tokensPage(w, r, http.StatusBadRequest, tokensData{}, "", text(r, "err_no_user"))
			return
		} else if err != nil {
			a.fail(w, r, "get user", err)
			return
		}
		owner = addr
	}
	existing, err := a.o.Store.Tokens(r.Context())
	if err != nil {
		a.fail(w, r, "tokens", err)
		return
	}
	for _, t := range existing {
		if t.Name == name {
			a.tokensPage(w, r, http.StatusConflict, tokensData{}, "", text(r, "err_token_exists"))
			return
		}
	}
	token, hash, err := api.NewToken()
	if err != nil {
		a.fail(w, r, "make token", err)
		return
	}
	if err := a.o.Store.PutToken(r.Context(), store.Token{Name: name, Hash: hash, Owner: owner, Created: a.o.Now()}); err != nil {
		a.fail(w, r, "put token", err)
		return
	}
	a.o.Log.Info("api token created", "name", name, "owner", owner, "by", a.who(r))
	a.tokensPage(w, r, http.StatusOK, tokensData{New: token, Name: name}, text(r, "ok_token_created"), "")
}

func (a *Admin) tokenDelete(w http.ResponseWriter, r *http.Request) {
	name := r.PostFormValue("name")
	if err := a.o.Store.DeleteToken(r.Context(), name); err != nil {
		a.fail(w, r, "delete token", err)
		return
	}
	a.o.Log.Info("api token deleted", "name", name, "by", a.who(r))
	done(w, r, "/admin/tokens", "token_deleted", nil)
}
