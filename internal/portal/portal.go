// Package portal is the self-service part of the built-in app: a logged-in user manages
// their own disposable aliases (with the leak view), their own whitelist entries, and the
// held mail addressed to them. Every page is rendered on the server and works without
// JavaScript, in Japanese and English.
//
// Authorisation: the owner of everything a handler reads or changes is the user of the
// session (webauth.From), never a form field; an entry or message that is not theirs is
// answered 404 and left as it is.
package portal

import (
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/sekisho/sekisho/internal/lists"
	"github.com/sekisho/sekisho/internal/release"
	"github.com/sekisho/sekisho/internal/store"
	"github.com/sekisho/sekisho/internal/webauth"
	"github.com/sekisho/sekisho/internal/webui"
)

// DefaultPageSize is how many rows a list page shows.
const DefaultPageSize = 50

// Options configure the portal.
type Options struct {
	// Domains are the domains a user may make aliases under ([smtp] local_domains); the
	// first is the default choice. With none, no alias can be made.
	Domains []string
	// PageSize is the number of rows per page (0: DefaultPageSize).
	PageSize int
}

// Deps are the parts the portal works with.
type Deps struct {
	Store    store.Store
	Auth     *webauth.Auth
	Releaser *release.Releaser
	// Lists answer whether an address is taken, and are brought up to date after a change,
	// so this process applies it at once (other processes follow the change log).
	Lists  *lists.Lists
	Logger *slog.Logger
}

// Portal serves /portal/.
type Portal struct {
	opts  Options
	deps  Deps
	log   *slog.Logger
	pages *webui.Pages
}

//go:embed templates/*.html
var templates embed.FS

// New parses the portal's pages.
func New(opts Options, deps Deps) (*Portal, error) {
	if deps.Store == nil || deps.Auth == nil || deps.Releaser == nil || deps.Lists == nil {
		return nil, errors.New("portal: store, auth, releaser and lists are required")
	}
	if opts.PageSize <= 0 {
		opts.PageSize = DefaultPageSize
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	pages, err := webui.ParsePages(templates, "templates/*.html", texts, log)
	if err != nil {
		return nil, fmt.Errorf("portal templates: %w", err)
	}
	return &Portal{opts: opts, deps: deps, log: log, pages: pages}, nil
}

// Register adds the portal's routes to mux, each behind the login, and sends / to the
// alias page.
func (p *Portal) Register(mux *http.ServeMux) {
	home := func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/portal/aliases", http.StatusSeeOther)
	}
	mux.HandleFunc("GET /{$}", home)
	mux.HandleFunc("GET /portal/{$}", home)
	for pattern, h := range map[string]http.HandlerFunc{
		"GET /portal/aliases":                  p.aliases,
		"POST /portal/aliases":                 p.createAlias,
		"POST /portal/aliases/disable":         p.setAliasDisabled(true),
		"POST /portal/aliases/enable":          p.setAliasDisabled(false),
		"POST /portal/aliases/delete":          p.deleteAlias,
		"GET /portal/white":                    p.white,
		"POST /portal/white":                   p.addWhite,
		"POST /portal/white/delete":            p.deleteWhite,
		"GET /portal/held":                     p.held,
		"GET /portal/held/{id}":                p.message,
		"POST /portal/held/{id}/release":       p.releaseHeld(false),
		"POST /portal/held/{id}/release-white": p.releaseHeld(true),
		"POST /portal/held/{id}/delete":        p.deleteHeld,
	} {
		mux.Handle(pattern, p.deps.Auth.RequireUser(h))
	}
}

// user returns the logged-in user; RequireUser guarantees one.
func user(r *http.Request) webauth.Who {
	who, _ := webauth.From(r.Context())
	return who
}

// text returns the page text key in the language of r.
func text(r *http.Request, key string) string {
	return texts[webui.PickLang(r)][key]
}

// render writes a portal page for the logged-in user. A flash= parameter naming one of the
// flash texts becomes the page's flash.
func (p *Portal) render(w http.ResponseWriter, r *http.Request, status int, name, problem string, data any) {
	who := user(r)
	page := webui.Page{User: who.User.Address, Admin: who.User.Admin, CSRF: who.Session.CSRF, Data: data}
	if k := r.URL.Query().Get("flash"); strings.HasPrefix(k, "flash_") {
		page.Flash = text(r, k)
	}
	if problem != "" {
		page.Error = text(r, problem)
	}
	p.pages.Render(w, r, status, name, page)
}

// done redirects after a successful change (POST, redirect, GET), with a flash text.
func done(w http.ResponseWriter, r *http.Request, to, flash string, params url.Values) {
	if params == nil {
		params = url.Values{}
	}
	params.Set("flash", flash)
	http.Redirect(w, r, to+"?"+params.Encode(), http.StatusSeeOther)
}

// notFound answers a request for something that does not exist or is not the user's.
func (p *Portal) notFound(w http.ResponseWriter, r *http.Request) {
	p.render(w, r, http.StatusNotFound, "error.html", "not_found", nil)
}

// refused answers a failed lookup or change: 404 for store.ErrNotFound (absent, or not the
// user's), else a temporary error. It reports whether there was an error to answer.
func (p *Portal) refused(w http.ResponseWriter, r *http.Request, what string, err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, store.ErrNotFound):
		p.notFound(w, r)
	default:
		p.failed(w, r, what, err)
	}
	return true
}

// failed answers a store or upstream failure.
func (p *Portal) failed(w http.ResponseWriter, r *http.Request, what string, err error) {
	p.log.Error(what, "user", user(r).User.Address, "err", err)
	p.render(w, r, http.StatusServiceUnavailable, "error.html", "temporary", nil)
}

// paging is the page of a list a request asks for.
type paging struct {
	Page int // from 1
	Size int
	Next bool // there is a next page
}

func (p *Portal) paging(r *http.Request) paging {
	n, err := strconv.Atoi(r.URL.Query().Get("page"))
	if err != nil || n < 1 {
		n = 1
	}
	return paging{Page: min(n, 1_000_000), Size: p.opts.PageSize}
}

// Offset is the first row of the page.
func (g paging) Offset() int { return (g.Page - 1) * g.Size }

// Prev is the previous page number (0 on the first page).
func (g paging) Prev() int { return g.Page - 1 }

// NextPage is the next page number.
func (g paging) NextPage() int { return g.Page + 1 }

// trim takes the extra row asked for to learn whether a next page exists.
func trim[T any](g *paging, rows []T) []T {
	if len(rows) > g.Size {
		g.Next = true
		return rows[:g.Size]
	}
	return rows
}

// catchUp brings this process's lists up to date after a change.
func (p *Portal) catchUp(r *http.Request) {
	if err := p.deps.Lists.CatchUp(r.Context(), p.deps.Store); err != nil {
		p.log.Warn("lists catch up", "err", err)
	}
}
