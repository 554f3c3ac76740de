// Package webui is what the built-in app's HTML pages share: the language of a request
// (Japanese or English), the page layout with its navigation, the data every page gets, and
// rendering with the security headers every page carries.
//
// Each page is its own template set: the layout ("layout.html", which calls the "title" and
// "content" templates) parsed together with one page file that defines them.
package webui

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"path"
	"strconv"
	"strings"
	"time"
)

// Lang is a page language.
type Lang string

// The languages of the pages.
const (
	Ja Lang = "ja"
	En Lang = "en"
)

// LangCookie remembers the language a user switched to.
const LangCookie = "lang"

// PickLang chooses the language of a request: a ?lang= parameter (remembered in a cookie by
// Remember), then that cookie, then the highest-q of ja and en in Accept-Language; English
// when none of them says.
func PickLang(r *http.Request) Lang {
	if l, ok := parseLang(r.URL.Query().Get("lang")); ok {
		return l
	}
	if c, err := r.Cookie(LangCookie); err == nil {
		if l, ok := parseLang(c.Value); ok {
			return l
		}
	}
	best, bestQ := En, -1.0
	for part := range strings.SplitSeq(r.Header.Get("Accept-Language"), ",") {
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				q = f
			}
		}
		tag = strings.ToLower(tag)
		l, ok := parseLang(tag)
		if !ok && strings.HasPrefix(tag, "ja-") {
			l, ok = Ja, true
		} else if !ok && strings.HasPrefix(tag, "en-") {
			l, ok = En, true
		}
		if ok && q > bestQ {
			best, bestQ = l, q
		}
	}
	return best
}

func parseLang(s string) (Lang, bool) {
	switch s {
	case "ja":
		return Ja, true
	case "en":
		return En, true
	}
	return "", false
}

// Remember keeps a ?lang= choice in a cookie, so the next pages use it too.
func Remember(w http.ResponseWriter, r *http.Request) {
	if l, ok := parseLang(r.URL.Query().Get("lang")); ok {
		http.SetCookie(w, &http.Cookie{Name: LangCookie, Value: string(l), Path: "/", MaxAge: 365 * 24 * 3600,
			Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	}
}

// Catalog holds the texts of pages by language and key.
type Catalog map[Lang]map[string]string

// With returns a catalog holding c's texts and more's (more wins on equal keys).
func (c Catalog) With(more Catalog) Catalog {
	out := Catalog{}
	for _, src := range []Catalog{c, more} {
		for l, m := range src {
			if out[l] == nil {
				out[l] = map[string]string{}
			}
			for k, v := range m {
				out[l][k] = v
			}
		}
	}
	return out
}

// Texts are the layout's own texts; page catalogs extend them with With.
var Texts = Catalog{
	Ja: {
		"app": "関所", "nav_aliases": "エイリアス", "nav_white": "ホワイトリスト", "nav_held": "保留メール",
		"nav_admin": "管理", "nav_logout": "ログアウト", "nav_login": "ログイン", "otherlang": "English", "otherlangcode": "en",
	},
	En: {
		"app": "sekisho", "nav_aliases": "Aliases", "nav_white": "Whitelist", "nav_held": "Held mail",
		"nav_admin": "Admin", "nav_logout": "Log out", "nav_login": "Log in", "otherlang": "日本語", "otherlangcode": "ja",
	},
}

// Page is the data every page template gets; Data is the page's own.
type Page struct {
	Lang  Lang
	T     map[string]string
	User  string // the logged-in user; "" when nobody is
	Admin bool
	CSRF  string // the session's CSRF token, for the forms
	Path  string // the request path, for the language switch
	Flash string // a one-line message about what the last action did
	Error string // a one-line problem with the last action
	Data  any
}

//go:embed templates/layout.html
var layoutFS embed.FS

// Pages is a set of page templates, one per page file, each with the layout.
type Pages struct {
	catalog Catalog
	sets    map[string]*template.Template
	log     *slog.Logger
}

// Funcs are the functions page templates may call besides the html/template ones.
var funcs = template.FuncMap{
	"date": func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.Local().Format("2006-01-02 15:04")
	},
	"size": func(n int64) string {
		switch {
		case n >= 1<<20:
			return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
		case n >= 1<<10:
			return fmt.Sprintf("%.1f KB", float64(n)/(1<<10))
		}
		return fmt.Sprintf("%d B", n)
	},
}

// ParsePages parses every file matching pattern in fsys as a page with the layout; files
// whose name starts with "_" are partials that every page of the set may call. The page
// texts are Texts extended with catalog.
func ParsePages(fsys fs.FS, pattern string, catalog Catalog, log *slog.Logger) (*Pages, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	layout, err := template.New("layout.html").Funcs(funcs).ParseFS(layoutFS, "templates/layout.html")
	if err != nil {
		return nil, err
	}
	files, err := fs.Glob(fsys, pattern)
	if err != nil {
		return nil, err
	}
	// Files named "_*.html" are partials (shared {{define}}s), parsed into every page.
	var partials, pages []string
	for _, f := range files {
		if strings.HasPrefix(path.Base(f), "_") {
			partials = append(partials, f)
		} else {
			pages = append(pages, f)
		}
	}
	if len(partials) > 0 {
		if layout, err = layout.ParseFS(fsys, partials...); err != nil {
			return nil, err
		}
	}
	p := &Pages{catalog: Texts.With(catalog), sets: map[string]*template.Template{}, log: log}
	for _, f := range pages {
		set, err := template.Must(layout.Clone()).ParseFS(fsys, f)
		if err != nil {
			return nil, err
		}
		p.sets[path.Base(f)] = set
	}
	return p, nil
}

// Render writes page name with the layout. It fills Lang, T and Path; the caller fills the
// user, CSRF token and Data. The page is rendered into a buffer first, so a template
// error gives a clean 500, never half a page.
func (p *Pages) Render(w http.ResponseWriter, r *http.Request, status int, name string, page Page) {
	set, ok := p.sets[name]
	if !ok {
		p.log.Error("no such page template", "page", name)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	Remember(w, r)
	page.Lang = PickLang(r)
	page.T = p.catalog[page.Lang]
	page.Path = r.URL.Path
	var buf bytes.Buffer
	if err := set.ExecuteTemplate(&buf, "layout.html", page); err != nil {
		p.log.Error("render page", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	SecurityHeaders(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// SecurityHeaders sets what every app page carries: no caching, no framing, no referrer, no
// script and no remote content.
func SecurityHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'")
}

// ClientIP is the address of the client of r: the TCP peer, never a forwarding header.
// An IPv4-mapped address is unmapped; an unparsable RemoteAddr gives the zero Addr.
func ClientIP(r *http.Request) netip.Addr {
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		return ap.Addr().Unmap()
	}
	ip, _ := netip.ParseAddr(r.RemoteAddr)
	return ip.Unmap()
}
