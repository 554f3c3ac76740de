// Package admin serves the administrators' pages of the built-in app under /admin/: live
// counters and charts of decisions over time, users, the six lists, held mail across users,
// the cluster nodes, harvest traps and API tokens.
//
// Every page is behind webauth's RequireAdmin: a user with the admin flag, from one of the
// admin networks, and every form post carries the session's CSRF token. Pages are rendered on
// the server (webui), without scripts; charts are inline SVG (package chart).
package admin

import (
	"embed"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"time"

	"github.com/sekisho/sekisho/internal/cluster"
	"github.com/sekisho/sekisho/internal/lists"
	"github.com/sekisho/sekisho/internal/release"
	"github.com/sekisho/sekisho/internal/store"
	"github.com/sekisho/sekisho/internal/webauth"
	"github.com/sekisho/sekisho/internal/webui"
)

//go:embed templates/*.html
var templates embed.FS

// PageSize is how many rows a table page shows.
const PageSize = 50

// Options are what the admin pages work with.
type Options struct {
	Auth     *webauth.Auth
	Networks []netip.Prefix // [web] admin_networks: the only clients served
	Store    store.Store
	Lists    *lists.Lists      // the in-memory lists, for the counters
	Releaser *release.Releaser // releases held mail
	Registry cluster.Registry  // the node registry; nil: the nodes page says there is none
	// Heartbeat is how often nodes renew their entry (0: cluster.HeartbeatEvery); a node
	// silent for three of them is flagged.
	Heartbeat time.Duration
	Now       func() time.Time // nil: time.Now
	Log       *slog.Logger
}

// Admin serves the admin pages.
type Admin struct {
	o     Options
	pages *webui.Pages
	cache stepCache // the chart steps already summed
}

// New parses the pages.
func New(o Options) (*Admin, error) {
	if o.Auth == nil || o.Store == nil {
		return nil, errors.New("admin: Auth and Store are required")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = cluster.HeartbeatEvery
	}
	p, err := webui.ParsePages(templates, "templates/*.html", texts, o.Log)
	if err != nil {
		return nil, err
	}
	return &Admin{o: o, pages: p}, nil
}

// Register adds /admin and everything under /admin/ to mux, all behind RequireAdmin.
func (a *Admin) Register(mux *http.ServeMux) {
	in := http.NewServeMux()
	in.HandleFunc("GET /admin/{$}", a.overview)
	in.HandleFunc("GET /admin/users", a.users)
	in.HandleFunc("POST /admin/users", a.userCreate)
	in.HandleFunc("POST /admin/users/password", a.userPassword)
	in.HandleFunc("POST /admin/users/admin", a.userAdmin)
	in.HandleFunc("POST /admin/users/delete", a.userDelete)
	in.HandleFunc("GET /admin/lists/{list}", a.list)
	in.HandleFunc("POST /admin/lists/{list}", a.listAdd)
	in.HandleFunc("POST /admin/lists/{list}/delete", a.listDelete)
	in.HandleFunc("GET /admin/held", a.held)
	in.HandleFunc("GET /admin/held/{id}", a.heldView)
	in.HandleFunc("POST /admin/held/{id}/release", a.heldRelease)
	in.HandleFunc("POST /admin/held/{id}/delete", a.heldDelete)
	in.HandleFunc("GET /admin/nodes", a.nodes)
	in.HandleFunc("GET /admin/traps", a.traps)
	in.HandleFunc("GET /admin/tokens", a.tokens)
	in.HandleFunc("POST /admin/tokens", a.tokenCreate)
	in.HandleFunc("POST /admin/tokens/delete", a.tokenDelete)
	in.HandleFunc("GET /admin", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/admin/", http.StatusSeeOther)
	})
	h := a.o.Auth.RequireAdmin(a.o.Networks, in)
	mux.Handle("/admin/", h)
	mux.Handle("/admin", h)
}

// render writes page name for the admin of r with data; flash and problem are texts of the
// catalog or, for problem, a message of its own.
func (a *Admin) render(w http.ResponseWriter, r *http.Request, status int, name string, data any, flash, problem string) {
	who, _ := webauth.From(r.Context())
	a.pages.Render(w, r, status, name, webui.Page{
		User: who.User.Address, Admin: who.User.Admin, CSRF: who.Session.CSRF,
		Flash: flash, Error: problem, Data: data,
	})
}

// text returns the catalog text key in the language of r.
func text(r *http.Request, key string) string {
	if s, ok := texts[webui.PickLang(r)][key]; ok {
		return s
	}
	return webui.Texts[webui.PickLang(r)][key]
}

// done redirects to path after a successful post, naming what was done (?ok=key) so the
// page shows it once (post/redirect/get: a reload does not post again).
func done(w http.ResponseWriter, r *http.Request, path, key string, extra url.Values) {
	q := url.Values{"ok": {key}}
	for k, v := range extra {
		q[k] = v
	}
	http.Redirect(w, r, path+"?"+q.Encode(), http.StatusSeeOther)
}

// flash is the text of the ?ok= of a redirect by done; only known keys are shown.
func flash(r *http.Request) string {
	k := r.URL.Query().Get("ok")
	if k == "" {
		return ""
	}
	return texts[webui.PickLang(r)]["ok_"+k]
}

// fail answers a failed action: 404 for what does not exist, 500 (logged) for the store's
// trouble, else 400 with the problem.
func (a *Admin) fail(w http.ResponseWriter, r *http.Request, what string, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		http.Error(w, text(r, "err_notfound"), http.StatusNotFound)
	default:
		a.o.Log.Error("admin action failed", "action", what, "err", err)
		http.Error(w, text(r, "err_internal"), http.StatusInternalServerError)
	}
}

// pager is the paging of a table: the offset shown and the links to the pages around it.
type pager struct {
	Offset     int
	Prev, Next string // query strings, "" when there is no such page
}

// offset reads ?offset=, a non-negative multiple of nothing in particular.
func offset(r *http.Request) int {
	n, err := strconv.Atoi(r.URL.Query().Get("offset"))
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// page builds the pager for a table that got got rows when asked for PageSize+1 at off,
// keeping the other query parameters of r.
func page(r *http.Request, off, got int) pager {
	p := pager{Offset: off}
	q := r.URL.Query()
	q.Del("ok")
	if off > 0 {
		q.Set("offset", strconv.Itoa(max(0, off-PageSize)))
		p.Prev = "?" + q.Encode()
	}
	if got > PageSize {
		q.Set("offset", strconv.Itoa(off+PageSize))
		p.Next = "?" + q.Encode()
	}
	return p
}
