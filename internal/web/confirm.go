package web

import (
	"embed"
	"html/template"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/sekisho/sekisho/internal/challenge"
	"github.com/sekisho/sekisho/internal/release"
	"github.com/sekisho/sekisho/internal/store"
	"github.com/sekisho/sekisho/internal/webui"
)

//go:embed templates/*.html
var templateFS embed.FS

var pages = template.Must(template.New("").Funcs(template.FuncMap{"head": headOf}).ParseFS(templateFS, "templates/*.html"))

// pageHead is what templates/head.html shows.
type pageHead struct {
	Lang         Lang
	T            map[string]string
	Title, Width string
}

func headOf(l Lang, t map[string]string, title, width string) pageHead {
	return pageHead{Lang: l, T: t, Title: title, Width: width}
}

// Confirm serves the URL-click confirmation page /c/{token} (SPEC §4, §5): GET shows what
// waits, only a POST of the form shown, not sooner than MinWait after the page, confirms.
type Confirm struct {
	Store    store.Store
	Releaser *release.Releaser
	MinWait  time.Duration // confirm_min_seconds
	Key      []byte        // signs the page views; the same on every node of a cluster
	Now      func() time.Time
	Log      *slog.Logger
}

// Register adds the confirmation routes to mux.
func (c *Confirm) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /c/{token}", c.get)
	mux.HandleFunc("POST /c/{token}", c.post)
}

// confirmPage is what the template shows.
type confirmPage struct {
	Lang       Lang
	T          map[string]string
	State      string // "", "again", "done", "notfound", "expired"
	Count      int
	Since      string
	Recipients []string
	View       string
	Delivered  int
	Left       int
}

func (c *Confirm) render(w http.ResponseWriter, r *http.Request, status int, p confirmPage) {
	p.Lang = pickLang(r)
	p.T = text[p.Lang]
	renderPage(w, c.Log, status, "confirm.html", p)
}

// renderPage writes a page reached from a mail without a login (confirm, digest): not
// cached, not framed, no referrer (the URL is the credential), no scripts.
func renderPage(w http.ResponseWriter, log *slog.Logger, status int, name string, data any) {
	webui.SecurityHeaders(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := pages.ExecuteTemplate(w, name, data); err != nil {
		log.Warn("render page", "page", name, "err", err)
	}
}

// lookup finds the AUDIR entry of the token in the request. It renders the 404 or 410 page
// itself and returns ok = false when there is none to act on.
func (c *Confirm) lookup(w http.ResponseWriter, r *http.Request) (store.Entry, bool) {
	hash, err := challenge.ParseToken(r.PathValue("token"))
	if err != nil {
		c.render(w, r, http.StatusNotFound, confirmPage{State: "notfound"})
		return store.Entry{}, false
	}
	entries, err := c.Store.Entries(r.Context(), store.Audir, store.Query{Key: hash, Limit: 2})
	if err != nil {
		c.Log.Error("confirm lookup", "err", err)
		http.Error(w, "Service unavailable, please try again later", http.StatusServiceUnavailable)
		return store.Entry{}, false
	}
	for _, e := range entries {
		if e.Key != hash {
			continue
		}
		if e.Expired(c.Now()) {
			c.render(w, r, http.StatusGone, confirmPage{State: "expired"})
			return store.Entry{}, false
		}
		return e, true
	}
	c.render(w, r, http.StatusNotFound, confirmPage{State: "notfound"})
	return store.Entry{}, false
}

// waiting fills the page with the messages held for the sender; recipients are masked,
// since the URL may be forwarded.
func (c *Confirm) waiting(r *http.Request, sender string, p *confirmPage) error {
	held, err := c.Store.HeldList(r.Context(), store.HeldQuery{From: sender})
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	var oldest time.Time
	for _, h := range held {
		if oldest.IsZero() || h.Received.Before(oldest) {
			oldest = h.Received
		}
		for _, rc := range h.Rcpts {
			m := MaskAddress(rc.Rcpt)
			if !seen[m] {
				seen[m] = true
				p.Recipients = append(p.Recipients, m)
			}
		}
	}
	p.Count = len(held)
	if !oldest.IsZero() {
		p.Since = oldest.Local().Format("2006-01-02 15:04")
	}
	return nil
}

func (c *Confirm) get(w http.ResponseWriter, r *http.Request) {
	e, ok := c.lookup(w, r)
	if !ok {
		return
	}
	c.showForm(w, r, e, "")
}

func (c *Confirm) showForm(w http.ResponseWriter, r *http.Request, e store.Entry, state string) {
	p := confirmPage{State: state, View: viewTokens{c.Key}.issue(e.Key, c.Now())}
	if err := c.waiting(r, e.Target, &p); err != nil {
		c.Log.Error("confirm page", "err", err)
		http.Error(w, "Service unavailable, please try again later", http.StatusServiceUnavailable)
		return
	}
	c.render(w, r, http.StatusOK, p)
}

func (c *Confirm) post(w http.ResponseWriter, r *http.Request) {
	e, ok := c.lookup(w, r)
	if !ok {
		return
	}
	age, genuine, fresh := viewTokens{c.Key}.fresh(e.Key, r.PostFormValue("v"), c.Now(), c.MinWait)
	if !fresh {
		c.Log.Info("confirm asked again", "sender", e.Target, "genuine", genuine, "age", age.Round(time.Millisecond))
		c.showForm(w, r, e, "again")
		return
	}
	now := c.Now()
	e.Note = "confirmed " + now.UTC().Format(time.RFC3339) + " from " + webui.ClientIP(r).String() + " " + store.OneLine(r.UserAgent(), 200)
	e.Source = "confirmed"
	if err := c.Store.Put(r.Context(), e); err != nil {
		c.Log.Error("confirm: mark token", "err", err)
		http.Error(w, "Service unavailable, please try again later", http.StatusServiceUnavailable)
		return
	}
	held, err := c.Store.HeldList(r.Context(), store.HeldQuery{From: e.Target})
	if err != nil {
		c.Log.Error("confirm: held list", "err", err)
		http.Error(w, "Service unavailable, please try again later", http.StatusServiceUnavailable)
		return
	}
	p := confirmPage{State: "done"}
	// The sender passes from now on: recorded once, before the held mail goes.
	var rcpts []string
	for _, h := range held {
		for _, hr := range h.Rcpts {
			if !slices.Contains(rcpts, hr.Rcpt) {
				rcpts = append(rcpts, hr.Rcpt)
			}
		}
	}
	if err := c.Releaser.Remember(r.Context(), e.Target, rcpts); err != nil {
		c.Log.Error("confirm: relay", "err", err)
	}
	for _, h := range held {
		n, err := c.Releaser.Forward(r.Context(), h.ID, nil)
		p.Delivered += min(n, 1)
		if err != nil || n < len(h.Rcpts) {
			p.Left++
			c.Log.Warn("confirm: held message not released, stays held", "held", h.ID, "err", err)
		}
	}
	c.Log.Info("sender confirmed", "sender", e.Target, "delivered", p.Delivered, "left", p.Left, "client", webui.ClientIP(r).String())
	c.render(w, r, http.StatusOK, p)
}

// MaskAddress shows the first character of the local part only: t***@example.jp.
func MaskAddress(addr string) string {
	local, domain, ok := strings.Cut(addr, "@")
	if !ok || local == "" {
		return "***"
	}
	first := []rune(local)[0]
	return string(first) + "***@" + domain
}
