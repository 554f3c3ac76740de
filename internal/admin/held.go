package admin

import (
	"bytes"
	"net/http"
	"net/url"
	"strings"

	"github.com/sekisho/sekisho/internal/mailaddr"
	"github.com/sekisho/sekisho/internal/store"
)

// MaxHeaderView bounds the header section shown of a held message.
const MaxHeaderView = 32 << 10

type heldData struct {
	From string
	Rows []store.Held
	Page pager
}

func (a *Admin) held(w http.ResponseWriter, r *http.Request) {
	from := strings.TrimSpace(r.URL.Query().Get("from"))
	if ad, err := mailaddr.Parse(from); err == nil {
		from = ad.Key()
	}
	off := offset(r)
	rows, err := a.o.Store.HeldList(r.Context(), store.HeldQuery{From: from, Limit: PageSize + 1, Offset: off})
	if err != nil {
		a.fail(w, r, "held list", err)
		return
	}
	d := heldData{From: from, Rows: rows[:min(len(rows), PageSize)], Page: page(r, off, len(rows))}
	problem := ""
	if e := r.URL.Query().Get("err"); e != "" {
		problem = text(r, "err_release")
	}
	a.render(w, r, http.StatusOK, "held.html", d, flash(r), problem)
}

type heldViewData struct {
	Held    store.Held
	Headers string
	Cut     bool // the header section was longer than MaxHeaderView
}

// heldView shows one held message's envelope and header section (as text: the template
// escapes it; the body is never shown here).
func (a *Admin) heldView(w http.ResponseWriter, r *http.Request) {
	h, data, err := a.o.Store.HeldGet(r.Context(), r.PathValue("id"))
	if err != nil {
		a.fail(w, r, "held get", err)
		return
	}
	head := data
	if i := bytes.Index(data, []byte("\r\n\r\n")); i >= 0 {
		head = data[:i]
	}
	d := heldViewData{Held: h}
	if len(head) > MaxHeaderView {
		head, d.Cut = head[:MaxHeaderView], true
	}
	d.Headers = strings.ToValidUTF8(string(head), "\uFFFD")
	a.render(w, r, http.StatusOK, "heldview.html", d, flash(r), "")
}

// heldRelease forwards a held message to all its recipients (adding the sender to RELAY).
func (a *Admin) heldRelease(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if a.o.Releaser == nil {
		http.Error(w, text(r, "err_internal"), http.StatusServiceUnavailable)
		return
	}
	if _, _, err := a.o.Store.HeldGet(r.Context(), id); err != nil {
		a.fail(w, r, "held get", err)
		return
	}
	n, err := a.o.Releaser.Release(r.Context(), id, nil)
	if err != nil {
		a.o.Log.Warn("admin release failed", "held", id, "err", err, "by", a.who(r))
		http.Redirect(w, r, "/admin/held?"+url.Values{"err": {"release"}}.Encode(), http.StatusSeeOther)
		return
	}
	a.o.Log.Info("held mail released", "held", id, "rcpts", n, "by", a.who(r))
	done(w, r, "/admin/held", "released", nil)
}

// heldDelete drops a held message for every recipient.
func (a *Admin) heldDelete(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := a.o.Store.HeldRemove(r.Context(), id, nil); err != nil {
		a.fail(w, r, "held delete", err)
		return
	}
	a.o.Log.Info("held mail deleted", "held", id, "by", a.who(r))
	done(w, r, "/admin/held", "held_deleted", nil)
}
