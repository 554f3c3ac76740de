package web

import (
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/challenge"
	"github.com/sekisho/sekisho/internal/store"
)

// FuzzPages drives the confirm and digest pages through the web server's handler with any
// path, method, query and form values: no panic, and never a 5xx (the store and upstream
// are up, so nothing may fail inside). A valid link and a valid view are among the seeds, so
// the fuzzer also reaches the actions (release, whitelist, delete, confirm).
func FuzzPages(f *testing.F) {
	e := newConfirmEnv(f, 0)
	held, err := e.st.HeldList(f.Context(), store.HeldQuery{})
	if err != nil || len(held) == 0 {
		f.Fatalf("held: %d (%v)", len(held), err)
	}
	dtok := e.dig.Make(held[0].ID, held[0].Rcpts[0].Rcpt)
	cview := viewTokens{[]byte("test key")}.issue(challenge.HashToken(e.token), time.Now())
	dview := viewTokens{[]byte("test key")}.issue(challenge.HashToken(dtok), time.Now())
	for _, s := range []struct{ method, path, query, v, action string }{
		{"GET", "/c/" + e.token, "", "", ""},
		{"POST", "/c/" + e.token, "lang=ja", cview, ""},
		{"GET", "/d/" + dtok, "lang=en", "", ""},
		{"POST", "/d/" + dtok, "", dview, "release"},
		{"POST", "/d/" + dtok, "", dview, "whitelist"},
		{"POST", "/d/" + dtok, "", dview, "delete"},
		{"POST", "/d/" + dtok + "x", "", dview, "delete"},
		{"GET", "/d/..%2f..%2fetc", "", "", ""},
		{"PUT", "/c/%00", "lang=%zz", "\x00", "\xff"},
		{"POST", "/d/a.b.c", "", strings.Repeat("A", 60), "release"},
	} {
		f.Add(s.method, s.path, s.query, s.v, s.action)
	}
	h := e.srv.Config.Handler
	f.Fuzz(func(t *testing.T, method, path, query, v, action string) {
		if method == "" || strings.ContainsAny(method, " \t\r\n()<>@,;:\\\"/[]?={}") || !isToken(method) {
			method = "GET"
		}
		form := url.Values{"v": {v}, "action": {action}}.Encode()
		req := httptest.NewRequest("GET", "https://mx.example.jp/", strings.NewReader(form))
		req.Method = method
		req.URL.Path, req.URL.RawPath, req.URL.RawQuery = "/"+strings.TrimPrefix(path, "/"), "", query
		req.Host = "mx.example.jp"
		req.RemoteAddr = "192.0.2.1:1234"
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code < 200 || w.Code >= 500 {
			t.Fatalf("%s %q ?%q v=%q action=%q: status %d\n%s", method, path, query, v, action, w.Code, w.Body)
		}
	})
}

func isToken(s string) bool {
	for _, c := range []byte(s) {
		if c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}
