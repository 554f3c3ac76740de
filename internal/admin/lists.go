package admin

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sekisho/sekisho/internal/lists"
	"github.com/sekisho/sekisho/internal/store"
)

type listData struct {
	List  store.List
	Lists []store.List
	Q     string
	Rows  []store.Entry
	Page  pager
	Kinds []string // the kinds an entry of this list may have; none: no kind field
	Form  entryForm
	Now   time.Time
}

// entryForm is the add form as last posted, so a refused entry need not be typed again.
type entryForm struct {
	Entry, Kind, Owner, Target, Note, TTL string
}

// kinds are the kinds of entries of each list that has them.
var kinds = map[store.List][]string{
	store.White: {store.KindFrom, store.KindTo},
	store.Relay: {store.KindSender, store.KindPair, store.KindMsgID},
}

func listOf(w http.ResponseWriter, r *http.Request) (store.List, bool) {
	l, ok := store.ParseList(r.PathValue("list"))
	if !ok {
		http.Error(w, text(r, "err_notfound"), http.StatusNotFound)
	}
	return l, ok
}

func (a *Admin) list(w http.ResponseWriter, r *http.Request) {
	l, ok := listOf(w, r)
	if !ok {
		return
	}
	a.listPage(w, r, l, http.StatusOK, entryForm{}, "")
}

func (a *Admin) listPage(w http.ResponseWriter, r *http.Request, l store.List, status int, form entryForm, problem string) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	off := offset(r)
	rows, err := a.o.Store.Entries(r.Context(), l, store.Query{Q: q, Limit: PageSize + 1, Offset: off})
	if err != nil {
		a.fail(w, r, "list entries", err)
		return
	}
	d := listData{List: l, Lists: store.Lists, Q: q, Page: page(r, off, len(rows)), Kinds: kinds[l], Form: form, Now: a.o.Now()}
	d.Rows = rows[:min(len(rows), PageSize)]
	a.render(w, r, status, "list.html", d, flash(r), problem)
}

// parseTTL reads a time to live: a Go duration ("36h", "90m") or a number of days ("7d");
// "" is none.
func parseTTL(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n <= 0 {
			return 0, errors.New("bad number of days")
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, errors.New("want a positive duration such as 24h or 7d")
	}
	return d, nil
}

// listAdd adds an entry, validated as the command line does (lists.ParseEntry). AUDIR
// entries are made by the confirmation flow only.
func (a *Admin) listAdd(w http.ResponseWriter, r *http.Request) {
	l, ok := listOf(w, r)
	if !ok {
		return
	}
	f := entryForm{
		Entry: strings.TrimSpace(r.PostFormValue("entry")), Kind: r.PostFormValue("kind"),
		Owner: strings.TrimSpace(r.PostFormValue("owner")), Target: strings.TrimSpace(r.PostFormValue("target")),
		Note: strings.TrimSpace(r.PostFormValue("note")), TTL: r.PostFormValue("ttl"),
	}
	if l == store.Audir {
		a.listPage(w, r, l, http.StatusBadRequest, f, text(r, "err_audir"))
		return
	}
	ttl, err := parseTTL(f.TTL)
	if err != nil {
		a.listPage(w, r, l, http.StatusBadRequest, f, text(r, "err_entry")+" ttl: "+err.Error())
		return
	}
	e, err := lists.ParseEntry(lists.EntryInput{List: l, Entry: f.Entry, Kind: f.Kind, Owner: f.Owner, Target: f.Target, Note: f.Note, TTL: ttl}, a.o.Now())
	if err != nil {
		a.listPage(w, r, l, http.StatusBadRequest, f, text(r, "err_entry")+" "+err.Error())
		return
	}
	if l == store.Black && f.Note == "" {
		e.Note = "added by " + a.who(r)
	}
	if err := a.o.Store.Put(r.Context(), e); err != nil {
		a.fail(w, r, "add entry", err)
		return
	}
	a.o.Log.Info("list entry added", "list", l, "entry", e.Key, "kind", e.Kind, "owner", e.Owner, "by", a.who(r))
	done(w, r, "/admin/lists/"+string(l), "entry_added", nil)
}

// listDelete deletes the entry named by the form's key, kind and owner, as the table shows
// them.
func (a *Admin) listDelete(w http.ResponseWriter, r *http.Request) {
	l, ok := listOf(w, r)
	if !ok {
		return
	}
	key, kind, owner := r.PostFormValue("key"), r.PostFormValue("kind"), r.PostFormValue("owner")
	if err := a.o.Store.Delete(r.Context(), l, key, kind, owner); err != nil {
		a.fail(w, r, "delete entry", err)
		return
	}
	a.o.Log.Info("list entry deleted", "list", l, "entry", key, "kind", kind, "owner", owner, "by", a.who(r))
	done(w, r, "/admin/lists/"+string(l), "entry_deleted", nil)
}
