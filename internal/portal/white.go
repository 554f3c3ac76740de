package portal

import (
	"errors"
	"net/http"
	"strings"

	"github.com/sekisho/sekisho/internal/mailaddr"
	"github.com/sekisho/sekisho/internal/store"
)

// whiteForm is what the add form holds.
type whiteForm struct {
	Entry, Kind string
}

type whitePage struct {
	From, To []store.Entry
	Paging   paging
	Form     whiteForm
}

func (p *Portal) white(w http.ResponseWriter, r *http.Request) {
	p.showWhite(w, r, http.StatusOK, "", whiteForm{Kind: store.KindFrom})
}

func (p *Portal) showWhite(w http.ResponseWriter, r *http.Request, status int, problem string, form whiteForm) {
	me := user(r).User.Address
	g := p.paging(r)
	es, err := p.deps.Store.Entries(r.Context(), store.White, store.Query{Owner: me, Limit: g.Size + 1, Offset: g.Offset()})
	if err != nil {
		p.failed(w, r, "whitelist", err)
		return
	}
	es = trim(&g, es)
	page := whitePage{Paging: g, Form: form}
	for _, e := range es {
		if e.Kind == store.KindTo {
			page.To = append(page.To, e)
		} else {
			page.From = append(page.From, e)
		}
	}
	p.render(w, r, status, "white.html", problem, page)
}

// whiteKey validates a sender entry: an address (its lookup key) or @domain.
func whiteKey(s string) (string, bool) {
	if d, ok := strings.CutPrefix(s, "@"); ok {
		d, ok := mailaddr.Domain(d)
		if !ok || !strings.Contains(d, ".") {
			return "", false
		}
		return "@" + d, true
	}
	a, err := mailaddr.Parse(s)
	if err != nil {
		return "", false
	}
	return a.Key(), true
}

// addWhite adds a from entry (any address or @domain) or a to entry (the user's own address
// or one of the user's aliases) owned by the user.
func (p *Portal) addWhite(w http.ResponseWriter, r *http.Request) {
	me := user(r).User.Address
	form := whiteForm{Entry: strings.TrimSpace(r.PostFormValue("entry")), Kind: r.PostFormValue("kind")}
	key, ok := whiteKey(form.Entry)
	switch {
	case form.Kind != store.KindFrom && form.Kind != store.KindTo:
		p.showWhite(w, r, http.StatusBadRequest, "white_bad_kind", form)
		return
	case !ok:
		p.showWhite(w, r, http.StatusBadRequest, "white_bad_entry", form)
		return
	}
	if form.Kind == store.KindTo && key != me {
		_, err := p.ownAlias(r, key)
		if errors.Is(err, store.ErrNotFound) {
			p.showWhite(w, r, http.StatusBadRequest, "white_not_mine", form)
			return
		}
		if err != nil {
			p.failed(w, r, "alias lookup", err)
			return
		}
	}
	e := store.Entry{List: store.White, Key: key, Kind: form.Kind, Owner: me, Note: "portal"}
	if err := p.deps.Store.Put(r.Context(), e); err != nil {
		p.failed(w, r, "whitelist add", err)
		return
	}
	p.catchUp(r)
	p.log.Info("whitelist entry added", "user", me, "entry", key, "kind", form.Kind)
	done(w, r, "/portal/white", "flash_white_added", nil)
}

func (p *Portal) deleteWhite(w http.ResponseWriter, r *http.Request) {
	me := user(r).User.Address
	key, kind := r.PostFormValue("entry"), r.PostFormValue("kind")
	err := p.deps.Store.Delete(r.Context(), store.White, key, kind, me)
	if p.refused(w, r, "whitelist delete", err) {
		return
	}
	p.catchUp(r)
	p.log.Info("whitelist entry deleted", "user", me, "entry", key, "kind", kind)
	done(w, r, "/portal/white", "flash_white_deleted", nil)
}
