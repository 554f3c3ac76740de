package admin

import (
	"errors"
	"net/http"
	"strings"

	"github.com/sekisho/sekisho/internal/mailaddr"
	"github.com/sekisho/sekisho/internal/password"
	"github.com/sekisho/sekisho/internal/store"
	"github.com/sekisho/sekisho/internal/webauth"
)

// MinPassword is the shortest password the admin pages set.
const MinPassword = 10

type usersData struct {
	Users []store.User
	Me    string
}

func (a *Admin) users(w http.ResponseWriter, r *http.Request) {
	a.usersPage(w, r, http.StatusOK, "")
}

func (a *Admin) usersPage(w http.ResponseWriter, r *http.Request, status int, problem string) {
	us, err := a.o.Store.Users(r.Context())
	if err != nil {
		a.fail(w, r, "users", err)
		return
	}
	who, _ := webauth.From(r.Context())
	a.render(w, r, status, "users.html", usersData{Users: us, Me: who.User.Address}, flash(r), problem)
}

// address reads and normalises the form field name as a mail address.
func address(r *http.Request, name string) (string, bool) {
	a, err := mailaddr.Parse(strings.TrimSpace(r.PostFormValue(name)))
	if err != nil {
		return "", false
	}
	return a.Key(), true
}

func (a *Admin) userCreate(w http.ResponseWriter, r *http.Request) {
	addr, ok := address(r, "address")
	if !ok {
		a.usersPage(w, r, http.StatusBadRequest, text(r, "err_address"))
		return
	}
	pw := r.PostFormValue("password")
	if len(pw) < MinPassword {
		a.usersPage(w, r, http.StatusBadRequest, text(r, "err_password"))
		return
	}
	if _, err := a.o.Store.GetUser(r.Context(), addr); err == nil {
		a.usersPage(w, r, http.StatusConflict, text(r, "err_user_exists"))
		return
	} else if !errors.Is(err, store.ErrNotFound) {
		a.fail(w, r, "get user", err)
		return
	}
	hash, err := password.Hash(pw)
	if err != nil {
		a.fail(w, r, "hash password", err)
		return
	}
	u := store.User{Address: addr, PasswordHash: hash, Admin: r.PostFormValue("admin") == "on", Created: a.o.Now()}
	if err := a.o.Store.PutUser(r.Context(), u); err != nil {
		a.fail(w, r, "create user", err)
		return
	}
	a.o.Log.Info("user created", "user", addr, "admin", u.Admin, "by", a.who(r))
	done(w, r, "/admin/users", "user_created", nil)
}

// who is the address of the admin making the request, for the log.
func (a *Admin) who(r *http.Request) string {
	w, _ := webauth.From(r.Context())
	return w.User.Address
}

// existing returns the user named by the form field "address".
func (a *Admin) existing(w http.ResponseWriter, r *http.Request) (store.User, bool) {
	addr, ok := address(r, "address")
	if !ok {
		a.usersPage(w, r, http.StatusBadRequest, text(r, "err_address"))
		return store.User{}, false
	}
	u, err := a.o.Store.GetUser(r.Context(), addr)
	if err != nil {
		a.fail(w, r, "get user", err)
		return store.User{}, false
	}
	return u, true
}

// other is existing for a user other than the admin making the request.
func (a *Admin) other(w http.ResponseWriter, r *http.Request) (store.User, bool) {
	u, ok := a.existing(w, r)
	if ok && u.Address == a.who(r) {
		a.usersPage(w, r, http.StatusBadRequest, text(r, "err_self"))
		return store.User{}, false
	}
	return u, ok
}

// userPassword sets a new password and ends the user's sessions.
func (a *Admin) userPassword(w http.ResponseWriter, r *http.Request) {
	u, ok := a.existing(w, r)
	if !ok {
		return
	}
	pw := r.PostFormValue("password")
	if len(pw) < MinPassword {
		a.usersPage(w, r, http.StatusBadRequest, text(r, "err_password"))
		return
	}
	hash, err := password.Hash(pw)
	if err != nil {
		a.fail(w, r, "hash password", err)
		return
	}
	u.PasswordHash = hash
	if err := a.o.Store.PutUser(r.Context(), u); err != nil {
		a.fail(w, r, "reset password", err)
		return
	}
	if err := a.o.Store.DeleteUserSessions(r.Context(), u.Address); err != nil {
		a.fail(w, r, "end sessions", err)
		return
	}
	a.o.Log.Info("user password reset", "user", u.Address, "by", a.who(r))
	done(w, r, "/admin/users", "password_reset", nil)
}

// userAdmin turns the admin flag of another user on or off (not one's own: an admin
// cannot lock themselves out).
func (a *Admin) userAdmin(w http.ResponseWriter, r *http.Request) {
	u, ok := a.other(w, r)
	if !ok {
		return
	}
	u.Admin = !u.Admin
	if err := a.o.Store.PutUser(r.Context(), u); err != nil {
		a.fail(w, r, "set admin flag", err)
		return
	}
	a.o.Log.Info("user admin flag set", "user", u.Address, "admin", u.Admin, "by", a.who(r))
	done(w, r, "/admin/users", "admin_set", nil)
}

// userDelete deletes another user and ends their sessions.
func (a *Admin) userDelete(w http.ResponseWriter, r *http.Request) {
	u, ok := a.other(w, r)
	if !ok {
		return
	}
	if err := a.o.Store.DeleteUser(r.Context(), u.Address); err != nil {
		a.fail(w, r, "delete user", err)
		return
	}
	if err := a.o.Store.DeleteUserSessions(r.Context(), u.Address); err != nil {
		a.fail(w, r, "end sessions", err)
		return
	}
	a.o.Log.Info("user deleted", "user", u.Address, "by", a.who(r))
	done(w, r, "/admin/users", "user_deleted", nil)
}
