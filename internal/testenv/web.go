package testenv

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"testing"

	"github.com/sekisho/sekisho/internal/password"
	"github.com/sekisho/sekisho/internal/store"
)

// WebPassword is the password AddWebUser gives addr.
func WebPassword(addr string) string { return "pw-" + addr }

// AddWebUser stores a user of the web pages whose password is WebPassword(addr).
func AddWebUser(t testing.TB, st store.Store, addr string, admin bool) {
	t.Helper()
	h, err := password.Hash(WebPassword(addr))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.PutUser(context.Background(), store.User{Address: addr, PasswordHash: h, Admin: admin}); err != nil {
		t.Fatal(err)
	}
}

// WebClient is a browser-like client of srv: a cookie jar of its own, redirects not
// followed.
func WebClient(srv *httptest.Server) *http.Client {
	c := *srv.Client() // a copy: the server's client is one shared value
	c.Jar, _ = cookiejar.New(nil)
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

var loginTokenRE = regexp.MustCompile(`name="token" value="([^"]+)"`)

// WebLogin fetches the login form at base+"/login" with c and posts it with addr, pw and
// next; it returns the response of the post (its body closed).
func WebLogin(t testing.TB, c *http.Client, base, addr, pw, next string) *http.Response {
	t.Helper()
	resp, err := c.Get(base + "/login")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := loginTokenRE.FindSubmatch(body)
	if m == nil {
		t.Fatalf("login form without a token: %s", body)
	}
	resp, err = c.PostForm(base+"/login", url.Values{"token": {string(m[1])}, "address": {addr}, "password": {pw}, "next": {next}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}
