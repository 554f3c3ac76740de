package admin

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/api"
	"github.com/sekisho/sekisho/internal/cluster"
	"github.com/sekisho/sekisho/internal/lists"
	"github.com/sekisho/sekisho/internal/release"
	"github.com/sekisho/sekisho/internal/store"
	"github.com/sekisho/sekisho/internal/store/sqlite"
	"github.com/sekisho/sekisho/internal/testenv"
	"github.com/sekisho/sekisho/internal/upstream"
	"github.com/sekisho/sekisho/internal/webauth"
)

// Users of the test site; each password is testenv.WebPassword of the address.
const (
	rootUser  = "root@example.jp"  // an admin
	aliceUser = "alice@example.jp" // not an admin
)

// site is a real HTTPS server with the login pages and the admin pages on a real SQLite
// store, releasing held mail to a real in-process SMTP server.
type site struct {
	srv   *httptest.Server
	store *sqlite.DB
	up    *testenv.Upstream
	lists *lists.Lists
}

func newSite(t testing.TB, adminNets ...string) *site {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	testenv.AddWebUser(t, st, rootUser, true)
	testenv.AddWebUser(t, st, aliceUser, false)
	up := testenv.NewUpstream(t, "tcp4")
	pool, err := upstream.New(upstream.Options{Servers: []string{up.Addr}, TLS: "none", ConnectTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	log := testenv.Logger(t)
	ls := lists.New()
	auth := &webauth.Auth{Store: st, Limiter: webauth.NewLimiter(webauth.Limits{Window: time.Hour, PerAccount: 1000, PerIP: 1000}), Log: log}
	var nets []netip.Prefix
	for _, n := range adminNets {
		nets = append(nets, netip.MustParsePrefix(n))
	}
	a, err := New(Options{
		Auth: auth, Networks: nets, Store: st, Lists: ls, Registry: st,
		Releaser: &release.Releaser{Store: st, Upstream: pool, Scope: "sender", Log: log},
		Log:      log,
	})
	if err != nil {
		t.Fatal(err)
	}
	login, err := webauth.NewPages(auth, "/admin/")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	login.Register(mux)
	a.Register(mux)
	// The test reads a session's CSRF token here (a user who may see no admin page too).
	mux.Handle("GET /test/csrf", auth.RequireUser(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		who, _ := webauth.From(r.Context())
		io.WriteString(w, who.Session.CSRF)
	})))
	srv := httptest.NewTLSServer(mux)
	t.Cleanup(srv.Close)
	return &site{srv: srv, store: st, up: up, lists: ls}
}

// client is a browser-like client of s: cookies kept, redirects not followed.
func (s *site) client() *http.Client { return testenv.WebClient(s.srv) }

// user is a logged-in client and its session's CSRF token.
type user struct {
	c    *http.Client
	csrf string
}

// login logs addr in and returns the client with its CSRF token (read from a page).
func (s *site) login(t testing.TB, addr string) *user {
	t.Helper()
	c := s.client()
	if resp := testenv.WebLogin(t, c, s.srv.URL, addr, testenv.WebPassword(addr), ""); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login %s: %d", addr, resp.StatusCode)
	}
	_, csrf := doGet(t, c, s.srv.URL+"/test/csrf")
	if csrf == "" {
		t.Fatalf("no CSRF token for %s", addr)
	}
	return &user{c: c, csrf: csrf}
}

func doGet(t testing.TB, c *http.Client, u string) (int, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// get fetches path as u in lang.
func (s *site) get(t testing.TB, u *user, path, lang string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", s.srv.URL+path, nil)
	req.Header.Set("Accept-Language", lang)
	resp, err := u.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// post sends form to path as u, with the session's CSRF token unless withCSRF is false.
func (s *site) post(t testing.TB, u *user, path string, form url.Values, withCSRF bool) (int, string, string) {
	t.Helper()
	f := url.Values{}
	for k, v := range form {
		f[k] = v
	}
	if withCSRF {
		f.Set("csrf", u.csrf)
	}
	resp, err := u.c.PostForm(s.srv.URL+path, f)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(b)
}

// state is everything the admin pages may change, printed, to see that nothing did.
func (s *site) state(t testing.TB) string {
	t.Helper()
	ctx := context.Background()
	var b strings.Builder
	us, err := s.store.Users(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range us {
		fmt.Fprintf(&b, "user %s %s %v\n", u.Address, u.PasswordHash, u.Admin)
	}
	for _, l := range store.Lists {
		es, err := s.store.Entries(ctx, l, store.Query{})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			fmt.Fprintf(&b, "%s %s %s %s %v\n", l, e.Key, e.Kind, e.Owner, e.Expires)
		}
	}
	held, err := s.store.HeldList(ctx, store.HeldQuery{})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range held {
		fmt.Fprintf(&b, "held %s %v\n", h.ID, h.Rcpts)
	}
	toks, err := s.store.Tokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range toks {
		fmt.Fprintf(&b, "token %s %s\n", tk.Name, tk.Hash)
	}
	fmt.Fprintf(&b, "upstream %d\n", len(s.up.Messages()))
	return b.String()
}

// seed fills the store with something on every page: an entry in each list, held mail, a
// node, a trap hit, a token and decision counts over the last hour, day and week. It returns
// the held message's ID.
func (s *site) seed(t testing.TB, now time.Time) string {
	t.Helper()
	ctx := context.Background()
	put := func(e store.Entry) {
		if err := s.store.Put(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	put(store.Entry{List: store.Alias, Key: "shop-x7@example.jp", Target: aliceUser, Owner: aliceUser, Note: "online <shop>"})
	put(store.Entry{List: store.White, Key: "friend@partner.test", Kind: store.KindFrom, Owner: aliceUser})
	put(store.Entry{List: store.Decoy, Key: "trap@example.jp", Note: "planted"})
	put(store.Entry{List: store.Black, Key: "192.0.2.66", Source: "decoy", Note: "decoy hit", Expires: now.Add(24 * time.Hour)})
	put(store.Entry{List: store.Audir, Key: "0123abcd", Target: "stranger@else.test", Expires: now.Add(time.Hour)})
	put(store.Entry{List: store.Relay, Key: "known@partner.test", Kind: store.KindSender})
	h := &store.Held{Received: now.Add(-time.Hour), Expires: now.Add(14 * 24 * time.Hour), ClientIP: "198.51.100.7", Helo: "mail.else.test",
		From: "stranger@else.test", Subject: "hello <b>there</b>", Size: 90,
		Rcpts: []store.HeldRcpt{{Rcpt: aliceUser, Owner: aliceUser, Reason: "unknown sender"}}}
	data := []byte("From: stranger@else.test\r\nTo: alice@example.jp\r\nSubject: hello <b>there</b>\r\nX-Evil: <script>alert(1)</script>\r\n\r\nbody text\r\n")
	if err := s.store.Hold(ctx, h, data); err != nil {
		t.Fatal(err)
	}
	if err := s.store.Heartbeat(ctx, cluster.Node{ID: "node-a", Version: "v1.2.3", Started: now.Add(-time.Hour), Heartbeat: now,
		Counters: map[string]int64{"lists_seq": 42}}); err != nil {
		t.Fatal(err)
	}
	if err := s.store.Heartbeat(ctx, cluster.Node{ID: "node-b", Version: "v1.2.2", Started: now.Add(-2 * time.Hour), Heartbeat: now.Add(-5 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if err := s.store.PutTrap(ctx, store.Trap{Address: "k3v9q@trap.example.jp", IP: "203.0.113.5", UserAgent: "Harvester/1.0", URL: "/about.html", Planted: now.Add(-3 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := s.store.AddTrapHit(ctx, "k3v9q@trap.example.jp", "203.0.113.77", "spam@bulk.test", now.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.store.PutToken(ctx, store.Token{Name: "backup-script", Hash: api.HashToken("sk_x"), Owner: "", Created: now.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	snap, seq, err := s.store.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.lists.Load(snap, seq)
	return h.ID
}
