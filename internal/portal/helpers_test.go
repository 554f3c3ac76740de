package portal

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/lists"
	"github.com/sekisho/sekisho/internal/release"
	"github.com/sekisho/sekisho/internal/store"
	"github.com/sekisho/sekisho/internal/store/sqlite"
	"github.com/sekisho/sekisho/internal/testenv"
	"github.com/sekisho/sekisho/internal/upstream"
	"github.com/sekisho/sekisho/internal/webauth"
)

// Users of the test site; each one's password is testenv.WebPassword of the address.
const (
	alice = "alice@example.jp"
	bob   = "bob@example.jp"
)

// site is the portal on a real HTTPS test server, with the login pages, a real SQLite store,
// the in-memory lists and a real upstream SMTP server for releases.
type site struct {
	srv   *httptest.Server
	store store.Store
	lists *lists.Lists
	up    *testenv.Upstream
}

func newSite(t testing.TB) *site {
	t.Helper()
	return newSiteAt(t, filepath.Join(t.TempDir(), "s.db"))
}

// newSiteAt is newSite on the SQLite database file at path (made if absent).
func newSiteAt(t testing.TB, path string) *site {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	testenv.AddWebUser(t, st, alice, false)
	testenv.AddWebUser(t, st, bob, false)
	ls := lists.New()
	if err := ls.Reload(ctx, st); err != nil {
		t.Fatal(err)
	}
	up := testenv.NewUpstream(t, "tcp4")
	pool, err := upstream.New(upstream.Options{Servers: []string{up.Addr}, TLS: "none", HeloName: "mx.example.jp"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	log := testenv.Logger(t)
	auth := &webauth.Auth{Store: st, Log: log}
	login, err := webauth.NewPages(auth, "/portal/aliases")
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(Options{Domains: []string{"example.jp", "alias.example.jp"}, PageSize: 5}, Deps{
		Store: st, Auth: auth, Lists: ls, Logger: log,
		Releaser: &release.Releaser{Store: st, Upstream: pool, Scope: "sender", Log: log, Lists: ls},
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	login.Register(mux)
	p.Register(mux)
	srv := httptest.NewTLSServer(mux)
	t.Cleanup(srv.Close)
	return &site{srv: srv, store: st, lists: ls, up: up}
}

// client is a browser of the site: a cookie jar, redirects not followed.
type client struct {
	t    testing.TB
	s    *site
	c    *http.Client
	csrf string
}

func (s *site) client(t testing.TB) *client {
	return &client{t: t, s: s, c: testenv.WebClient(s.srv)}
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// login logs the client in as user and learns the session's CSRF token.
func (s *site) login(t testing.TB, user string) *client {
	t.Helper()
	c := s.client(t)
	if resp := testenv.WebLogin(t, c.c, s.srv.URL, user, testenv.WebPassword(user), ""); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login as %s: %d", user, resp.StatusCode)
	}
	code, body := c.get("/portal/aliases")
	if code != http.StatusOK {
		t.Fatalf("GET /portal/aliases after login: %d", code)
	}
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no CSRF token in the page: %s", body)
	}
	c.csrf = m[1]
	return c
}

func (c *client) do(req *http.Request) (int, string) {
	c.t.Helper()
	resp, err := c.c.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusSeeOther {
		return resp.StatusCode, resp.Header.Get("Location")
	}
	return resp.StatusCode, string(b)
}

// get returns the status and body, or for a redirect its Location.
func (c *client) get(path string) (int, string) {
	c.t.Helper()
	req, _ := http.NewRequest("GET", c.s.srv.URL+path, nil)
	return c.do(req)
}

// post sends a form as is (add "csrf" for a valid one; see postCSRF).
func (c *client) post(path string, form url.Values) (int, string) {
	c.t.Helper()
	req, _ := http.NewRequest("POST", c.s.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.do(req)
}

// postCSRF sends a form with the session's CSRF token.
func (c *client) postCSRF(path string, form url.Values) (int, string) {
	c.t.Helper()
	f := url.Values{"csrf": {c.csrf}}
	for k, v := range form {
		f[k] = v
	}
	return c.post(path, f)
}

// hold stores a held message from sender to rcpts (each owned by the mailbox itself, as the
// SMTP proxy does).
func hold(t testing.TB, st store.Store, from, subject string, data []byte, rcpts ...string) string {
	t.Helper()
	h := &store.Held{Received: time.Now(), Expires: time.Now().Add(time.Hour), ClientIP: "192.0.2.1", Helo: "client.test",
		From: from, Subject: subject, Size: int64(len(data))}
	for _, r := range rcpts {
		h.Rcpts = append(h.Rcpts, store.HeldRcpt{Rcpt: r, Owner: r, Reason: "unknown_sender"})
	}
	if err := st.Hold(context.Background(), h, data); err != nil {
		t.Fatal(err)
	}
	return h.ID
}

// put adds entries to the store and brings the site's lists up to date.
func (s *site) put(t testing.TB, es ...store.Entry) {
	t.Helper()
	for _, e := range es {
		if err := s.store.Put(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.lists.CatchUp(context.Background(), s.store); err != nil {
		t.Fatal(err)
	}
}
