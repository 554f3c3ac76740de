package webauth

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/store"
	"github.com/sekisho/sekisho/internal/store/sqlite"
	"github.com/sekisho/sekisho/internal/testenv"
)

// site is a real HTTPS server with the login pages, a user page and an admin page.
type site struct {
	srv   *httptest.Server
	store store.Store
}

func newSite(t *testing.T, adminNets []netip.Prefix) *site {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	testenv.AddWebUser(t, st, "alice@example.jp", false)
	testenv.AddWebUser(t, st, "root@example.jp", true)
	a := &Auth{Store: st, Limiter: NewLimiter(Limits{Window: 1 << 40, PerAccount: 3, PerIP: 5})}
	pages, err := NewPages(a, "/me")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	pages.Register(mux)
	mux.Handle("/me", a.RequireUser(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		who, _ := From(r.Context())
		io.WriteString(w, r.Method+" "+who.User.Address+" csrf="+who.Session.CSRF)
	})))
	mux.Handle("/admin", a.RequireAdmin(adminNets, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "admin")
	})))
	srv := httptest.NewTLSServer(mux)
	t.Cleanup(srv.Close)
	return &site{srv: srv, store: st}
}

func get(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestLoginSessionCSRFLogout(t *testing.T) {
	s := newSite(t, []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
	c := testenv.WebClient(s.srv)
	if code, _ := get(t, c, s.srv.URL+"/me"); code != http.StatusSeeOther {
		t.Fatalf("GET /me before login: %d, want 303 to /login", code)
	}
	resp := testenv.WebLogin(t, c, s.srv.URL, "alice@example.jp", "pw-alice@example.jp", "//evil.test/")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/me" {
		t.Fatalf("login: %d to %q; want 303 to /me (an off-site next is ignored)", resp.StatusCode, resp.Header.Get("Location"))
	}
	var cookie *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == SessionCookie {
			cookie = ck
		}
	}
	if cookie == nil || !cookie.Secure || !cookie.HttpOnly || cookie.SameSite != http.SameSiteLaxMode || cookie.Path != "/" {
		t.Fatalf("session cookie %+v: want Secure, HttpOnly, SameSite=Lax, Path=/", cookie)
	}
	if _, err := s.store.GetSession(context.Background(), cookie.Value, time.Now()); err == nil {
		t.Fatal("the store keeps the cookie value itself; it must keep only its hash")
	}
	code, body := get(t, c, s.srv.URL+"/me")
	if code != 200 || !strings.HasPrefix(body, "GET alice@example.jp csrf=") {
		t.Fatalf("GET /me after login: %d %q", code, body)
	}
	csrf := strings.TrimPrefix(body, "GET alice@example.jp csrf=")

	// A POST without the CSRF token, or with a wrong one, is refused; with it, served.
	for _, form := range []url.Values{{}, {"csrf": {"wrong"}}} {
		resp, err := c.PostForm(s.srv.URL+"/me", form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("POST /me with %v: %d, want 403", form, resp.StatusCode)
		}
	}
	resp, err := c.PostForm(s.srv.URL+"/me", url.Values{"csrf": {csrf}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("POST /me with the token: %d", resp.StatusCode)
	}
	// Not an admin.
	if code, _ := get(t, c, s.srv.URL+"/admin"); code != http.StatusForbidden {
		t.Fatalf("GET /admin as a user: %d, want 403", code)
	}
	// Logout needs the token too, then the session is gone.
	resp, _ = c.PostForm(s.srv.URL+"/logout", url.Values{})
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("logout without CSRF: %d, want 403", resp.StatusCode)
	}
	resp, _ = c.PostForm(s.srv.URL+"/logout", url.Values{"csrf": {csrf}})
	resp.Body.Close()
	if code, _ := get(t, c, s.srv.URL+"/me"); code != http.StatusSeeOther {
		t.Fatalf("GET /me after logout: %d, want 303", code)
	}
}

func TestLoginLimits(t *testing.T) {
	s := newSite(t, nil)
	c := testenv.WebClient(s.srv)
	for i := range 3 {
		if resp := testenv.WebLogin(t, c, s.srv.URL, "alice@example.jp", "wrong", ""); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("bad login %d: %d, want 401", i, resp.StatusCode)
		}
	}
	if resp := testenv.WebLogin(t, c, s.srv.URL, "alice@example.jp", "pw-alice@example.jp", ""); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("good password after 3 failures: %d, want 429 (account locked for the window)", resp.StatusCode)
	}
	// The IP limit (5) covers accounts that do not exist too.
	for i := range 2 {
		if resp := testenv.WebLogin(t, c, s.srv.URL, "nobody@example.jp", "x", ""); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("unknown account %d: %d, want 401", i, resp.StatusCode)
		}
	}
	if resp := testenv.WebLogin(t, c, s.srv.URL, "root@example.jp", "pw-root@example.jp", ""); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("login from an IP with 5 failures: %d, want 429", resp.StatusCode)
	}
}

func TestLoginFormNeedsItsToken(t *testing.T) {
	s := newSite(t, nil)
	c := testenv.WebClient(s.srv)
	resp, err := c.PostForm(s.srv.URL+"/login", url.Values{"address": {"alice@example.jp"}, "password": {"pw-alice@example.jp"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("login POST without the form's token: %d, want 403 (login CSRF)", resp.StatusCode)
	}
}

func TestAdminNetworks(t *testing.T) {
	s := newSite(t, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")})
	c := testenv.WebClient(s.srv)
	testenv.WebLogin(t, c, s.srv.URL, "root@example.jp", "pw-root@example.jp", "")
	if code, _ := get(t, c, s.srv.URL+"/admin"); code != http.StatusForbidden {
		t.Fatalf("admin from 127.0.0.1 outside admin_networks: %d, want 403", code)
	}
	s2 := newSite(t, []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
	c2 := testenv.WebClient(s2.srv)
	testenv.WebLogin(t, c2, s2.srv.URL, "root@example.jp", "pw-root@example.jp", "")
	if code, body := get(t, c2, s2.srv.URL+"/admin"); code != 200 || body != "admin" {
		t.Fatalf("admin from inside admin_networks: %d %q", code, body)
	}
}
