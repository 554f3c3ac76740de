package portal

import (
	"errors"
	"net/http"

	"github.com/sekisho/sekisho/internal/mailtext"
	"github.com/sekisho/sekisho/internal/store"
)

// heldRow is one held message on the list page.
type heldRow struct {
	store.Held
	Mine []string // the recipients that are the user's
}

type heldPage struct {
	Rows   []heldRow
	Paging paging
}

type messagePage struct {
	Held store.Held
	Mine []string
	Text mailtext.Shown
}

// mine returns the recipients of h that the user owns.
func mine(h store.Held, me string) []string {
	var out []string
	for _, rc := range h.Rcpts {
		if rc.Owner == me {
			out = append(out, rc.Rcpt)
		}
	}
	return out
}

func (p *Portal) held(w http.ResponseWriter, r *http.Request) {
	me := user(r).User.Address
	g := p.paging(r)
	hs, err := p.deps.Store.HeldList(r.Context(), store.HeldQuery{Owner: me, Limit: g.Size + 1, Offset: g.Offset()})
	if err != nil {
		p.failed(w, r, "held list", err)
		return
	}
	hs = trim(&g, hs)
	page := heldPage{Paging: g}
	for _, h := range hs {
		h.Subject = mailtext.DecodeWords(h.Subject) // the store keeps the header as it came
		page.Rows = append(page.Rows, heldRow{Held: h, Mine: mine(h, me)})
	}
	p.render(w, r, http.StatusOK, "held.html", "", page)
}

// ownHeld returns held message id with the user's recipients; store.ErrNotFound when it
// does not exist or has no recipient of the user's.
func (p *Portal) ownHeld(r *http.Request, id string) (store.Held, []byte, []string, error) {
	h, data, err := p.deps.Store.HeldGet(r.Context(), id)
	if err != nil {
		return h, nil, nil, err
	}
	my := mine(h, user(r).User.Address)
	if len(my) == 0 {
		return store.Held{}, nil, nil, store.ErrNotFound
	}
	return h, data, my, nil
}

// message shows one held message: its headers and its text, never its HTML.
func (p *Portal) message(w http.ResponseWriter, r *http.Request) {
	h, data, my, err := p.ownHeld(r, r.PathValue("id"))
	if p.refused(w, r, "held get", err) {
		return
	}
	h.Subject = mailtext.DecodeWords(h.Subject)
	p.render(w, r, http.StatusOK, "message.html", "", messagePage{Held: h, Mine: my, Text: mailtext.Show(data)})
}

// releaseHeld sends the user's recipients of a held message on; with whitelist, the sender
// goes to the user's WHITE from entries first, so its next mail passes too.
func (p *Portal) releaseHeld(whitelist bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		me := user(r).User.Address
		h, _, my, err := p.ownHeld(r, r.PathValue("id"))
		if p.refused(w, r, "held get", err) {
			return
		}
		if whitelist {
			if h.From == "" {
				p.render(w, r, http.StatusBadRequest, "error.html", "held_null_sender", nil)
				return
			}
			e := store.Entry{List: store.White, Key: h.From, Kind: store.KindFrom, Owner: me, Note: "portal: released"}
			if err := p.deps.Store.Put(r.Context(), e); err != nil {
				p.failed(w, r, "whitelist add", err)
				return
			}
			p.catchUp(r)
		}
		if _, err := p.deps.Releaser.Release(r.Context(), h.ID, my); err != nil {
			p.failed(w, r, "held release", err)
			return
		}
		flash := "flash_held_released"
		if whitelist {
			flash = "flash_held_released_white"
		}
		done(w, r, "/portal/held", flash, nil)
	}
}

// deleteHeld drops the user's recipients of a held message; the message goes when no
// recipient is left.
func (p *Portal) deleteHeld(w http.ResponseWriter, r *http.Request) {
	h, _, my, err := p.ownHeld(r, r.PathValue("id"))
	if p.refused(w, r, "held get", err) {
		return
	}
	if err := p.deps.Store.HeldRemove(r.Context(), h.ID, my); err != nil && !errors.Is(err, store.ErrNotFound) {
		p.failed(w, r, "held delete", err)
		return
	}
	p.log.Info("held mail deleted", "user", user(r).User.Address, "held", h.ID, "rcpts", my)
	done(w, r, "/portal/held", "flash_held_deleted", nil)
}
