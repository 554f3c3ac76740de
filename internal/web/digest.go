package web

import (
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/sekisho/sekisho/internal/challenge"
	"github.com/sekisho/sekisho/internal/digest"
	"github.com/sekisho/sekisho/internal/release"
	"github.com/sekisho/sekisho/internal/store"
	"github.com/sekisho/sekisho/internal/webui"
)

// Digest serves the page of one held message linked from a digest mail, /d/{token} (SPEC
// §4 "Digest"): GET shows the message, and a POST of the form shown, not sooner than
// MinWait after the page, releases it to the recipient, releases it and whitelists the
// sender for the recipient's owner, or deletes it for that recipient. The signed token is
// the only credential: it names one message and one recipient, and dies with them.
type Digest struct {
	Store    store.Store
	Releaser *release.Releaser
	Tokens   digest.Tokens
	MinWait  time.Duration // confirm_min_seconds: a scanner that submits forms at once acts on nothing
	Key      []byte        // signs the page views; the same on every node of a cluster
	Now      func() time.Time
	Log      *slog.Logger
}

// Register adds the digest page routes to mux.
func (d *Digest) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /d/{token}", d.get)
	mux.HandleFunc("POST /d/{token}", d.post)
}

// digestPage is what the template shows.
type digestPage struct {
	Lang     Lang
	T        map[string]string
	State    string // "", "again", "released", "whitelisted", "deleted", "failed", "notfound", "gone"
	From     string
	Subject  string
	Received string
	Size     string
	Rcpt     string
	Reason   string
	Auth     string // the sender authentication; "" when not checked
	View     string
}

func (d *Digest) render(w http.ResponseWriter, r *http.Request, status int, p digestPage) {
	p.Lang = pickLang(r)
	p.T = text[p.Lang]
	renderPage(w, d.Log, status, "digest.html", p)
}

// lookup finds the held message and recipient the token names; it renders the 404 page
// (not a token of ours) or the 410 page (the message or that recipient of it is gone)
// itself and returns ok = false when there is nothing to act on.
func (d *Digest) lookup(w http.ResponseWriter, r *http.Request) (h store.Held, rcpt store.HeldRcpt, ok bool) {
	id, to, err := d.Tokens.Parse(r.PathValue("token"))
	if err != nil {
		d.render(w, r, http.StatusNotFound, digestPage{State: "notfound"})
		return h, rcpt, false
	}
	h, _, err = d.Store.HeldGet(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		d.render(w, r, http.StatusGone, digestPage{State: "gone"})
		return h, rcpt, false
	}
	if err != nil {
		d.Log.Error("digest page lookup", "held", id, "err", err)
		http.Error(w, "Service unavailable, please try again later", http.StatusServiceUnavailable)
		return h, rcpt, false
	}
	i := slices.IndexFunc(h.Rcpts, func(hr store.HeldRcpt) bool { return hr.Rcpt == to })
	if i < 0 || (!h.Expires.IsZero() && !d.Now().Before(h.Expires)) {
		d.render(w, r, http.StatusGone, digestPage{State: "gone"})
		return h, rcpt, false
	}
	return h, h.Rcpts[i], true
}

func (d *Digest) get(w http.ResponseWriter, r *http.Request) {
	h, rcpt, ok := d.lookup(w, r)
	if !ok {
		return
	}
	d.showForm(w, r, h, rcpt, "")
}

func (d *Digest) showForm(w http.ResponseWriter, r *http.Request, h store.Held, rcpt store.HeldRcpt, state string) {
	d.render(w, r, http.StatusOK, digestPage{
		State: state, From: digest.Sender(h.From), Subject: digest.Display(h.Subject),
		Received: h.Received.Local().Format("2006-01-02 15:04"), Size: strconv.FormatInt(h.Size, 10),
		Rcpt: rcpt.Rcpt, Reason: digest.Display(rcpt.Reason), Auth: digest.Display(h.Auth),
		View: viewTokens{d.Key}.issue(challenge.HashToken(r.PathValue("token")), d.Now()),
	})
}

func (d *Digest) post(w http.ResponseWriter, r *http.Request) {
	h, rcpt, ok := d.lookup(w, r)
	if !ok {
		return
	}
	age, genuine, fresh := viewTokens{d.Key}.fresh(challenge.HashToken(r.PathValue("token")), r.PostFormValue("v"), d.Now(), d.MinWait)
	action := r.PostFormValue("action")
	if !fresh || (action != "release" && action != "whitelist" && action != "delete") {
		d.Log.Info("digest page asked again", "held", h.ID, "genuine", genuine, "age", age.Round(time.Millisecond), "action", store.OneLine(action, 20))
		d.showForm(w, r, h, rcpt, "again")
		return
	}
	log := d.Log.With("held", h.ID, "rcpt", rcpt.Rcpt, "from", h.From, "client", webui.ClientIP(r).String())
	if action == "delete" {
		if err := d.Store.HeldRemove(r.Context(), h.ID, []string{rcpt.Rcpt}); err != nil && !errors.Is(err, store.ErrNotFound) {
			log.Error("digest page: delete", "err", err)
			http.Error(w, "Service unavailable, please try again later", http.StatusServiceUnavailable)
			return
		}
		log.Info("held mail deleted from the digest page")
		d.render(w, r, http.StatusOK, digestPage{State: "deleted"})
		return
	}
	state := "released"
	if action == "whitelist" && h.From != "" {
		owner := digest.Owner(rcpt)
		e := store.Entry{List: store.White, Key: h.From, Kind: store.KindFrom, Owner: owner, Note: "digest " + d.Now().UTC().Format(time.DateOnly)}
		if err := d.Store.Put(r.Context(), e); err != nil {
			log.Error("digest page: whitelist", "err", err)
			http.Error(w, "Service unavailable, please try again later", http.StatusServiceUnavailable)
			return
		}
		log.Info("sender whitelisted from the digest page", "owner", owner)
		state = "whitelisted"
	}
	if _, err := d.Releaser.Release(r.Context(), h.ID, []string{rcpt.Rcpt}); err != nil {
		if errors.Is(err, store.ErrNotFound) { // released or deleted meanwhile, maybe on another node
			d.render(w, r, http.StatusGone, digestPage{State: "gone"})
			return
		}
		log.Warn("digest page: release failed, the message stays held", "err", err)
		d.render(w, r, http.StatusServiceUnavailable, digestPage{State: "failed"})
		return
	}
	log.Info("held mail released from the digest page", "action", action)
	d.render(w, r, http.StatusOK, digestPage{State: state})
}
