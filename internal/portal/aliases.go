package portal

import (
	"crypto/rand"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/sekisho/sekisho/internal/mailaddr"
	"github.com/sekisho/sekisho/internal/store"
)

// RandomLocalLen is the length of a random alias local part: 36^12 ≈ 2^62 choices, so an
// alias cannot be guessed from another one.
const RandomLocalLen = 12

// maxNote bounds the note of an alias (characters).
const maxNote = 200

// aliasRow is one alias on the page, with the sender domains when it has leaked.
type aliasRow struct {
	store.Entry
	Leaked  bool
	Senders []store.AliasSender // oldest first: the first is the correspondent
}

// aliasForm is what the creation form holds.
type aliasForm struct {
	Note, Local, Domain string
}

type aliasPage struct {
	Rows    []aliasRow
	Q       string
	Paging  paging
	Domains []string
	Form    aliasForm
	New     string // the alias just made
}

func (p *Portal) aliases(w http.ResponseWriter, r *http.Request) {
	var form aliasForm
	if len(p.opts.Domains) > 0 {
		form.Domain = p.opts.Domains[0]
	}
	p.showAliases(w, r, http.StatusOK, "", form)
}

// showAliases renders the alias page (the list of the user's aliases and the creation form).
func (p *Portal) showAliases(w http.ResponseWriter, r *http.Request, status int, problem string, form aliasForm) {
	me := user(r).User.Address
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	g := p.paging(r)
	es, err := p.deps.Store.Entries(r.Context(), store.Alias, store.Query{Owner: me, Q: q, Limit: g.Size + 1, Offset: g.Offset()})
	if err != nil {
		p.failed(w, r, "alias list", err)
		return
	}
	es = trim(&g, es)
	keys := make([]string, len(es))
	for i, e := range es {
		keys[i] = e.Key
	}
	senders, err := p.deps.Store.AliasSenders(r.Context(), keys)
	if err != nil {
		p.failed(w, r, "alias senders", err)
		return
	}
	page := aliasPage{Q: q, Paging: g, Domains: p.opts.Domains, Form: form}
	for _, e := range es {
		row := aliasRow{Entry: e}
		if s := senders[e.Key]; len(s) > 1 {
			row.Leaked = true
			row.Senders = slices.SortedFunc(slices.Values(s), func(a, b store.AliasSender) int { return a.First.Compare(b.First) })
		}
		page.Rows = append(page.Rows, row)
	}
	if n := r.URL.Query().Get("new"); n != "" && slices.Contains(keys, n) {
		page.New = n // shown only when it is one of the user's own aliases
	}
	p.render(w, r, status, "aliases.html", problem, page)
}

// createAlias makes an alias for the user: random or chosen local part, at one of the
// alias domains, delivering to the user's mailbox.
func (p *Portal) createAlias(w http.ResponseWriter, r *http.Request) {
	me := user(r).User.Address
	form := aliasForm{
		Note:   strings.TrimSpace(r.PostFormValue("note")),
		Local:  strings.ToLower(strings.TrimSpace(r.PostFormValue("local"))),
		Domain: strings.ToLower(r.PostFormValue("domain")),
	}
	refuse := func(status int, problem string) { p.showAliases(w, r, status, problem, form) }
	switch {
	case form.Note == "":
		refuse(http.StatusBadRequest, "alias_need_note")
		return
	case utf8.RuneCountInString(form.Note) > maxNote || strings.ContainsAny(form.Note, "\r\n"):
		refuse(http.StatusBadRequest, "alias_bad_note")
		return
	case !slices.Contains(p.opts.Domains, form.Domain):
		refuse(http.StatusBadRequest, "alias_bad_domain")
		return
	}
	var addr string
	if form.Local != "" {
		if !validLocal(form.Local) {
			refuse(http.StatusBadRequest, "alias_bad_local")
			return
		}
		addr = form.Local + "@" + form.Domain
		free, err := p.free(r, addr)
		if err != nil {
			p.failed(w, r, "alias check", err)
			return
		}
		if !free {
			refuse(http.StatusConflict, "alias_taken")
			return
		}
	} else {
		for range 5 { // a collision of random parts is all but impossible; retry anyway
			cand := randomLocal() + "@" + form.Domain
			free, err := p.free(r, cand)
			if err != nil {
				p.failed(w, r, "alias check", err)
				return
			}
			if free {
				addr = cand
				break
			}
		}
		if addr == "" {
			refuse(http.StatusConflict, "alias_taken")
			return
		}
	}
	e := store.Entry{List: store.Alias, Key: addr, Target: me, Owner: me, Note: form.Note}
	if err := p.deps.Store.Put(r.Context(), e); err != nil {
		p.failed(w, r, "alias create", err)
		return
	}
	p.catchUp(r)
	p.log.Info("alias created", "user", me, "alias", addr)
	done(w, r, "/portal/aliases", "flash_alias_created", url.Values{"new": {addr}})
}

// free reports whether addr may become a new alias: not an alias of anybody, not a decoy,
// not a user. Which of these it is stays unsaid. Aliases and decoys are looked up in the
// in-memory lists, which hold every entry and follow changes made on other nodes within a
// second (a substring search of the store would cost 100 ms with 100,000 aliases).
func (p *Portal) free(r *http.Request, addr string) (bool, error) {
	if _, ok := p.deps.Lists.Alias(addr); ok || p.deps.Lists.Decoy(addr) {
		return false, nil
	}
	_, err := p.deps.Store.GetUser(r.Context(), addr)
	switch {
	case err == nil:
		return false, nil
	case errors.Is(err, store.ErrNotFound):
		return true, nil
	}
	return false, err
}

// validLocal reports whether s is an acceptable chosen local part: lower-case letters,
// digits, '.', '-' and '_', no leading, trailing or doubled dot, at most 64 characters.
func validLocal(s string) bool {
	if s == "" || len(s) > 64 || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	_, err := mailaddr.Parse(s + "@example.jp")
	return err == nil
}

// randomLocal returns RandomLocalLen lower-case letters and digits from crypto/rand.
func randomLocal() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	out := make([]byte, 0, RandomLocalLen)
	var buf [32]byte
	for len(out) < RandomLocalLen {
		rand.Read(buf[:]) // never fails (crypto/rand)
		for _, b := range buf {
			if b < 252 && len(out) < RandomLocalLen { // 252 = 7*36: no bias
				out = append(out, alphabet[b%36])
			}
		}
	}
	return string(out)
}

// ownAlias returns the user's alias called key; store.ErrNotFound when there is none.
func (p *Portal) ownAlias(r *http.Request, key string) (store.Entry, error) {
	me := user(r).User.Address
	if key == "" {
		return store.Entry{}, store.ErrNotFound
	}
	es, err := p.deps.Store.Entries(r.Context(), store.Alias, store.Query{Owner: me, Q: key})
	if err != nil {
		return store.Entry{}, err
	}
	for _, e := range es {
		if e.Key == key && e.Owner == me {
			return e, nil
		}
	}
	return store.Entry{}, store.ErrNotFound
}

// setAliasDisabled disables or enables one of the user's aliases.
func (p *Portal) setAliasDisabled(disabled bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		e, err := p.ownAlias(r, r.PostFormValue("alias"))
		if p.refused(w, r, "alias lookup", err) {
			return
		}
		e.Disabled = disabled
		if err := p.deps.Store.Put(r.Context(), e); err != nil {
			p.failed(w, r, "alias update", err)
			return
		}
		p.catchUp(r)
		p.log.Info("alias changed", "user", e.Owner, "alias", e.Key, "disabled", disabled)
		flash := "flash_alias_enabled"
		if disabled {
			flash = "flash_alias_disabled"
		}
		done(w, r, "/portal/aliases", flash, backTo(r))
	}
}

func (p *Portal) deleteAlias(w http.ResponseWriter, r *http.Request) {
	me := user(r).User.Address
	key := r.PostFormValue("alias")
	err := p.deps.Store.Delete(r.Context(), store.Alias, key, "", me)
	if p.refused(w, r, "alias delete", err) {
		return
	}
	p.catchUp(r)
	p.log.Info("alias deleted", "user", me, "alias", key)
	done(w, r, "/portal/aliases", "flash_alias_deleted", backTo(r))
}

// backTo keeps the search and page a list form was posted from.
func backTo(r *http.Request) url.Values {
	v := url.Values{}
	if q := r.PostFormValue("q"); q != "" {
		v.Set("q", q)
	}
	if pg := r.PostFormValue("page"); pg != "" && pg != "1" {
		v.Set("page", pg)
	}
	return v
}
