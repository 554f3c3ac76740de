package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/sekisho/sekisho/internal/api"
	"github.com/sekisho/sekisho/internal/lists"
	"github.com/sekisho/sekisho/internal/password"
	"github.com/sekisho/sekisho/internal/release"
	"github.com/sekisho/sekisho/internal/store"
	"github.com/sekisho/sekisho/internal/store/sqlite"
	"github.com/sekisho/sekisho/internal/testenv"
	"github.com/sekisho/sekisho/internal/upstream"
)

const (
	taro   = "taro@example.jp"
	hanako = "hanako@example.jp"
)

// env is an API on a real SQLite store with three tokens (admin, taro, hanako), served by a
// real HTTP server, releasing to a real in-process SMTP server.
type env struct {
	t      testing.TB
	st     store.Store
	lists  *lists.Lists // nil: the API finds aliases in the store
	up     *testenv.Upstream
	srv    *httptest.Server
	clock  *testenv.Clock
	tokens map[string]string // "admin", taro, hanako -> token
}

// newEnv returns an env with the lists in memory, as in the server.
func newEnv(t testing.TB) *env {
	t.Helper()
	return newEnvLists(t, true)
}

func newEnvLists(t testing.TB, withLists bool) *env {
	t.Helper()
	ctx := t.Context()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "sekisho.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	up := testenv.NewUpstream(t, "tcp4")
	pool, err := upstream.New(upstream.Options{Servers: []string{up.Addr}, TLS: "none", ConnectTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	log := testenv.Logger(t)
	e := &env{t: t, st: st, up: up, clock: testenv.NewClock(time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)), tokens: map[string]string{}}
	for _, u := range []store.User{{Address: "admin@example.jp", Admin: true}, {Address: taro}, {Address: hanako}} {
		if err := st.PutUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	for name, owner := range map[string]string{"admin": "", taro: taro, hanako: hanako} {
		tok, hash, err := api.NewToken()
		if err != nil {
			t.Fatal(err)
		}
		if err := st.PutToken(ctx, store.Token{Name: name, Hash: hash, Owner: owner}); err != nil {
			t.Fatal(err)
		}
		e.tokens[name] = tok
	}
	if withLists {
		e.lists = lists.New()
		if err := e.lists.Reload(ctx, st); err != nil {
			t.Fatal(err)
		}
	}
	a := api.New(api.Options{LocalDomains: []string{"example.jp"}, MaxBody: 4096}, api.Deps{
		Store:    st,
		Lists:    e.lists,
		Releaser: &release.Releaser{Store: st, Upstream: pool, Scope: "sender", Log: log},
		Logger:   log,
		Now:      e.clock.Now,
	})
	mux := http.NewServeMux()
	a.Register(mux)
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	return e
}

// do sends a request as who ("" = no Authorization header) and returns the status and body.
func (e *env) do(who, method, path, body string) (int, string) {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(e.t.Context(), method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if who != "" {
		tok, ok := e.tokens[who]
		if !ok {
			tok = who // a literal (bad) token
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 400 {
		var eb struct{ Error string }
		if err := json.Unmarshal(b, &eb); err != nil || eb.Error == "" || resp.Header.Get("Content-Type") != "application/json; charset=utf-8" {
			e.t.Errorf("%s %s: status %d with a body that is not {\"error\": ...}: %q", method, path, resp.StatusCode, b)
		}
	}
	return resp.StatusCode, string(b)
}

// must sends a request and fails the test unless the status is want.
func (e *env) must(want int, who, method, path, body string) string {
	e.t.Helper()
	code, b := e.do(who, method, path, body)
	if code != want {
		e.t.Fatalf("%s %s %s as %q: status %d, want %d: %s", method, path, body, who, code, want, b)
	}
	return b
}

// put adds an entry straight into the store.
func (e *env) put(en store.Entry) {
	e.t.Helper()
	if err := e.st.Put(e.t.Context(), en); err != nil {
		e.t.Fatal(err)
	}
	if e.lists != nil {
		if err := e.lists.CatchUp(e.t.Context(), e.st); err != nil {
			e.t.Fatal(err)
		}
	}
}

// hold stores a held message for the given recipients (each its own owner).
func (e *env) hold(from string, rcpts ...string) string {
	e.t.Helper()
	h := &store.Held{Received: e.clock.Now(), Expires: e.clock.Now().Add(time.Hour), ClientIP: "192.0.2.1", Helo: "mx.sender.test", From: from, Subject: "hello", Size: 40}
	for _, r := range rcpts {
		h.Rcpts = append(h.Rcpts, store.HeldRcpt{Rcpt: r, Owner: r, Reason: "unknown sender"})
	}
	if err := e.st.Hold(e.t.Context(), h, []byte("Subject: hello\r\n\r\nheld for "+strings.Join(rcpts, ",")+"\r\n")); err != nil {
		e.t.Fatal(err)
	}
	return h.ID
}

// state is everything the API can change, in one comparable string.
func (e *env) state() string {
	e.t.Helper()
	ctx := e.t.Context()
	var b strings.Builder
	for _, l := range store.Lists {
		entries, err := e.st.Entries(ctx, l, store.Query{})
		if err != nil {
			e.t.Fatal(err)
		}
		for _, x := range entries {
			fmt.Fprintf(&b, "%s %s %s %s %s %s %v %v\n", l, x.Key, x.Kind, x.Owner, x.Target, x.Note, x.Disabled, x.Expires)
		}
	}
	users, err := e.st.Users(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, u := range users {
		fmt.Fprintf(&b, "user %s %v %s\n", u.Address, u.Admin, u.PasswordHash)
	}
	held, err := e.st.HeldList(ctx, store.HeldQuery{})
	if err != nil {
		e.t.Fatal(err)
	}
	for _, h := range held {
		fmt.Fprintf(&b, "held %s %s %v\n", h.ID, h.From, h.Rcpts)
	}
	tokens, err := e.st.Tokens(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, t := range tokens {
		fmt.Fprintf(&b, "token %s %s\n", t.Name, t.Owner)
	}
	return b.String()
}

func entriesOf(t *testing.T, body string) []store.Entry {
	t.Helper()
	var got struct{ Entries []store.Entry }
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("entries answer %q: %v", body, err)
	}
	return got.Entries
}

func keys(entries []store.Entry) []string {
	var out []string
	for _, x := range entries {
		out = append(out, x.Key+"/"+x.Owner)
	}
	return out
}

func TestNoOrBadToken(t *testing.T) {
	e := newEnv(t)
	routes := []struct{ method, path string }{
		{"GET", "/api/v1/lists/white"}, {"POST", "/api/v1/lists/white"}, {"DELETE", "/api/v1/lists/white/a@b.test"},
		{"GET", "/api/v1/users"}, {"POST", "/api/v1/users"}, {"DELETE", "/api/v1/users/taro@example.jp"},
		{"GET", "/api/v1/held"}, {"POST", "/api/v1/held/x/release"}, {"DELETE", "/api/v1/held/x"},
		{"GET", "/api/v1/nothing"},
	}
	before := e.state()
	for _, rt := range routes {
		for _, who := range []string{"", "sk_not-a-real-token"} {
			e.clock.Advance(time.Minute) // past the limit on bad tokens
			req, _ := http.NewRequestWithContext(t.Context(), rt.method, e.srv.URL+rt.path, strings.NewReader(`{"entry":"x@y.test"}`))
			if who != "" {
				req.Header.Set("Authorization", "Bearer "+who)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s %s with token %q: status %d, WWW-Authenticate %q; want 401 Bearer", rt.method, rt.path, who, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
			}
		}
	}
	// Another scheme, and the right token in the wrong scheme.
	for _, h := range []string{"Basic " + e.tokens["admin"], e.tokens["admin"], "Bearer"} {
		e.clock.Advance(time.Minute)
		req, _ := http.NewRequestWithContext(t.Context(), "GET", e.srv.URL+"/api/v1/users", nil)
		req.Header.Set("Authorization", h)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("Authorization %.12q...: status %d, want 401", h, resp.StatusCode)
		}
	}
	if after := e.state(); after != before {
		t.Errorf("the store changed without a token:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// A token whose user is gone is refused, and deleting a user by the API deletes its tokens.
func TestTokenOfDeletedUser(t *testing.T) {
	e := newEnv(t)
	e.must(200, taro, "GET", "/api/v1/lists/alias", "")
	if err := e.st.DeleteUser(t.Context(), taro); err != nil {
		t.Fatal(err)
	}
	e.must(401, taro, "GET", "/api/v1/lists/alias", "")
	e.must(204, "admin", "DELETE", "/api/v1/users/"+hanako, "")
	e.must(401, hanako, "GET", "/api/v1/lists/alias", "")
	if tokens, _ := e.st.Tokens(t.Context()); slices.ContainsFunc(tokens, func(t store.Token) bool { return t.Owner == hanako }) {
		t.Errorf("hanako's token outlived her: %v", tokens)
	}
}

// Ten bad tokens a minute from one address, then 429 even for a good token, until the
// minute is over.
func TestBadTokenRateLimit(t *testing.T) {
	e := newEnv(t)
	for i := range api.DefaultFailuresPerMinute {
		if code, _ := e.do(fmt.Sprintf("sk_guess%d", i), "GET", "/api/v1/held", ""); code != 401 {
			t.Fatalf("guess %d: status %d, want 401", i, code)
		}
	}
	e.must(429, "sk_one-more", "GET", "/api/v1/held", "")
	e.must(429, "admin", "GET", "/api/v1/held", "")
	e.clock.Advance(time.Minute)
	e.must(200, "admin", "GET", "/api/v1/held", "")
	// Requests without a token guess nothing and are not counted.
	for range api.DefaultFailuresPerMinute + 1 {
		e.must(401, "", "GET", "/api/v1/held", "")
	}
	e.must(200, "admin", "GET", "/api/v1/held", "")
}

// An admin token adds, sees and deletes entries of every list; entries are validated and
// normalised as on the command line.
func TestListsAsAdmin(t *testing.T) {
	e := newEnv(t)
	adds := []struct {
		list, body, key string
	}{
		{"alias", `{"entry": "Shop@Example.jp", "owner": "taro@example.jp", "note": "the shop"}`, "shop@example.jp"},
		{"white", `{"entry": "@Partner.test", "kind": "from"}`, "@partner.test"},
		{"white", `{"entry": "list@example.jp", "kind": "to", "owner": "hanako@example.jp"}`, "list@example.jp"},
		{"decoy", `{"entry": "trap@example.jp"}`, "trap@example.jp"},
		{"black", `{"entry": "192.0.2.77/24", "ttl": "24h", "note": "spam run"}`, "192.0.2.0/24"},
		{"black", `{"entry": "2001:db8::1"}`, "2001:db8::1"},
		{"relay", `{"entry": "friend@partner.test"}`, "friend@partner.test"},
		{"relay", `{"entry": "a@partner.test,taro@example.jp"}`, "a@partner.test taro@example.jp"},
	}
	for _, a := range adds {
		body := e.must(201, "admin", "POST", "/api/v1/lists/"+a.list, a.body)
		var got store.Entry
		if err := json.Unmarshal([]byte(body), &got); err != nil || got.Key != a.key || got.Created.IsZero() {
			t.Errorf("add %s %s: answer %s, want key %q", a.list, a.body, body, a.key)
		}
		if !slices.Contains(keys(entriesOf(t, e.must(200, "admin", "GET", "/api/v1/lists/"+a.list, ""))), a.key+"/"+got.Owner) {
			t.Errorf("list %s does not show %s", a.list, a.key)
		}
	}
	black := entriesOf(t, e.must(200, "admin", "GET", "/api/v1/lists/black?q=192.0.2", ""))
	if len(black) != 1 || !black[0].Expires.Equal(e.clock.Now().Add(24*time.Hour)) || black[0].Source != "admin" {
		t.Errorf("black entry with ttl: %+v", black)
	}
	// Paging.
	if got := entriesOf(t, e.must(200, "admin", "GET", "/api/v1/lists/black?limit=1&offset=1", "")); len(got) != 1 || got[0].Key != "2001:db8::1" {
		t.Errorf("black limit=1 offset=1: %v", keys(got))
	}
	// Deleting: a CIDR with its slash escaped or not, a pair as SENDER,RECIPIENT, a white
	// entry named by kind and owner, an alias by its key alone.
	e.must(204, "admin", "DELETE", "/api/v1/lists/black/192.0.2.0%2F24", "")
	e.must(404, "admin", "DELETE", "/api/v1/lists/black/192.0.2.0/24", "")
	e.must(204, "admin", "DELETE", "/api/v1/lists/black/2001:db8::1", "")
	e.must(204, "admin", "DELETE", "/api/v1/lists/relay/a@partner.test,taro@example.jp", "")
	e.must(204, "admin", "DELETE", "/api/v1/lists/relay/FRIEND@partner.test", "")
	e.must(204, "admin", "DELETE", "/api/v1/lists/white/list@example.jp?kind=to&owner=hanako@example.jp", "")
	e.must(204, "admin", "DELETE", "/api/v1/lists/white/@partner.test?owner=", "")
	e.must(204, "admin", "DELETE", "/api/v1/lists/alias/shop@example.jp", "")
	e.must(204, "admin", "DELETE", "/api/v1/lists/decoy/trap@example.jp", "")
	if s := e.state(); strings.Contains(s, "\nalias") || strings.Contains(s, "black") || strings.Contains(s, "relay") || strings.Contains(s, "white") || strings.Contains(s, "decoy") {
		t.Errorf("entries left after deleting all:\n%s", s)
	}
	// Two entries with one key need naming.
	e.put(store.Entry{List: store.White, Key: "x@partner.test", Kind: store.KindFrom, Owner: taro})
	e.put(store.Entry{List: store.White, Key: "x@partner.test", Kind: store.KindFrom})
	e.must(409, "admin", "DELETE", "/api/v1/lists/white/x@partner.test", "")
	e.must(204, "admin", "DELETE", "/api/v1/lists/white/x@partner.test?owner="+taro, "")
	e.must(204, "admin", "DELETE", "/api/v1/lists/white/x@partner.test", "")
	// The audir list is shown, never added to by hand.
	e.must(200, "admin", "GET", "/api/v1/lists/audir", "")
	e.must(405, "admin", "POST", "/api/v1/lists/audir", `{"entry": "abc"}`)
}

func TestBadRequests(t *testing.T) {
	e := newEnv(t)
	before := e.state()
	tests := []struct {
		name, method, path, body string
		want                     int
		says                     string
	}{
		{"bad JSON", "POST", "/api/v1/lists/white", `{"entry": `, 400, "bad JSON"},
		{"not an object", "POST", "/api/v1/lists/white", `["a@b.test"]`, 400, "bad JSON"},
		{"two objects", "POST", "/api/v1/lists/white", `{"entry": "a@b.test"} {"entry": "c@d.test"}`, 400, "more than one"},
		{"empty body", "POST", "/api/v1/lists/white", ``, 400, "empty body"},
		{"disabled white", "POST", "/api/v1/lists/white", `{"entry": "a@b.test", "disabled": true}`, 400, "only aliases"},
		{"unknown field", "POST", "/api/v1/lists/white", `{"entry": "a@b.test", "colour": "red"}`, 400, "colour"},
		{"bad address", "POST", "/api/v1/lists/white", `{"entry": "a@@b"}`, 400, `a@@b`},
		{"bad kind", "POST", "/api/v1/lists/white", `{"entry": "a@b.test", "kind": "sideways"}`, 400, "want from or to"},
		{"bad ttl", "POST", "/api/v1/lists/black", `{"entry": "192.0.2.1", "ttl": "a while"}`, 400, "ttl"},
		{"negative ttl", "POST", "/api/v1/lists/black", `{"entry": "192.0.2.1", "ttl": "-1h"}`, 400, "ttl"},
		{"not an IP", "POST", "/api/v1/lists/black", `{"entry": "not an ip"}`, 400, "not an IP, CIDR or address"},
		{"source route", "POST", "/api/v1/lists/decoy", `{"entry": "@relay.test:u@example.jp"}`, 400, "entry"},
		{"alias without owner", "POST", "/api/v1/lists/alias", `{"entry": "x@example.jp"}`, 400, "needs an owner"},
		{"unknown list", "GET", "/api/v1/lists/pink", ``, 404, "unknown list"},
		{"unknown list add", "POST", "/api/v1/lists/pink", `{"entry": "a@b.test"}`, 404, "unknown list"},
		{"unknown path", "GET", "/api/v1/frobs", ``, 404, "no such"},
		{"oversized body", "POST", "/api/v1/lists/white", `{"entry": "a@b.test", "note": "` + strings.Repeat("x", 5000) + `"}`, 413, "over 4096 bytes"},
		{"method", "PUT", "/api/v1/lists/white", `{}`, 405, "not allowed"},
		{"bad limit", "GET", "/api/v1/lists/white?limit=lots", ``, 400, "limit"},
		{"bad user", "POST", "/api/v1/users", `{"address": "nobody", "password": "pw"}`, 400, "address"},
		{"no password", "POST", "/api/v1/users", `{"address": "jiro@example.jp"}`, 400, "password"},
		{"existing user", "POST", "/api/v1/users", `{"address": "Taro@example.jp", "password": "pw"}`, 409, "exists"},
		{"unknown user", "DELETE", "/api/v1/users/nobody@example.jp", ``, 404, "no such user"},
		{"unknown held", "DELETE", "/api/v1/held/nosuchid", ``, 404, "no such held"},
		{"unknown held release", "POST", "/api/v1/held/nosuchid/release", ``, 404, "no such held"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := e.do("admin", tt.method, tt.path, tt.body)
			if code != tt.want || !strings.Contains(body, tt.says) {
				t.Errorf("%s %s: status %d %s; want %d saying %q", tt.method, tt.path, code, body, tt.want, tt.says)
			}
		})
	}
	if after := e.state(); after != before {
		t.Errorf("refused requests changed the store:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// A user token works on its own alias and white entries only: the owner is itself whatever
// it asks, aliases only under our domains and never someone else's address.
func TestListsAsOwner(t *testing.T) {
	e := newEnv(t)
	e.put(store.Entry{List: store.Alias, Key: "hanako-shop@example.jp", Owner: hanako, Target: hanako, Note: "hanako's"})
	e.put(store.Entry{List: store.White, Key: "@global.test", Kind: store.KindFrom})

	body := e.must(201, taro, "POST", "/api/v1/lists/alias", `{"entry": "Taro-Shop@example.jp", "note": "the shop"}`)
	var got store.Entry
	if err := json.Unmarshal([]byte(body), &got); err != nil || got.Owner != taro || got.Target != taro {
		t.Errorf("taro's alias: %s, want owner and target %s", body, taro)
	}
	e.must(201, taro, "POST", "/api/v1/lists/alias", `{"entry": "taro-list@example.jp", "owner": "Taro@Example.jp"}`)
	e.must(201, taro, "POST", "/api/v1/lists/white", `{"entry": "friend@partner.test"}`)
	e.must(201, taro, "POST", "/api/v1/lists/white", `{"entry": "taro-list@example.jp", "kind": "to"}`)

	before := e.state()
	refused := []struct {
		name, body string
		list       string
		want       int
	}{
		{"alias for hanako", `{"entry": "x@example.jp", "owner": "hanako@example.jp"}`, "alias", 403},
		{"alias to hanako", `{"entry": "x@example.jp", "target": "hanako@example.jp"}`, "alias", 403},
		{"white for hanako", `{"entry": "a@partner.test", "owner": "hanako@example.jp"}`, "white", 403},
		{"alias outside our domains", `{"entry": "taro@elsewhere.test"}`, "alias", 400},
		{"alias of a user's mailbox", `{"entry": "hanako@example.jp"}`, "alias", 409},
		{"alias of its own mailbox", `{"entry": "taro@example.jp"}`, "alias", 409},
		{"hanako's alias", `{"entry": "hanako-shop@example.jp"}`, "alias", 409},
	}
	for _, tt := range refused {
		if code, b := e.do(taro, "POST", "/api/v1/lists/"+tt.list, tt.body); code != tt.want {
			t.Errorf("%s: status %d %s, want %d", tt.name, code, b, tt.want)
		}
	}
	// What a user sees is its own.
	if got := keys(entriesOf(t, e.must(200, taro, "GET", "/api/v1/lists/alias", ""))); !slices.Equal(got, []string{"taro-list@example.jp/" + taro, "taro-shop@example.jp/" + taro}) {
		t.Errorf("taro's aliases: %v", got)
	}
	if got := keys(entriesOf(t, e.must(200, taro, "GET", "/api/v1/lists/white?q=global", ""))); len(got) != 0 {
		t.Errorf("taro sees global white entries: %v", got)
	}
	if got := keys(entriesOf(t, e.must(200, hanako, "GET", "/api/v1/lists/alias?q=shop", ""))); !slices.Equal(got, []string{"hanako-shop@example.jp/" + hanako}) {
		t.Errorf("hanako's aliases: %v", got)
	}
	e.must(403, taro, "GET", "/api/v1/lists/alias?owner="+hanako, "")
	if after := e.state(); after != before {
		t.Errorf("refused requests changed the store:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	// Disables its alias (added again with disabled), and enables it again.
	e.must(201, taro, "POST", "/api/v1/lists/alias", `{"entry": "taro-shop@example.jp", "note": "the shop", "disabled": true}`)
	inMemory, _ := e.lists.Alias("taro-shop@example.jp")
	if got := entriesOf(t, e.must(200, taro, "GET", "/api/v1/lists/alias?q=taro-shop", "")); len(got) != 1 || !got[0].Disabled || !inMemory.Disabled {
		t.Errorf("alias not disabled: %+v, in memory %+v", got, inMemory)
	}
	e.must(201, taro, "POST", "/api/v1/lists/alias", `{"entry": "taro-shop@example.jp", "note": "the shop"}`)
	// And deletes its own.
	e.must(204, taro, "DELETE", "/api/v1/lists/alias/taro-shop@example.jp", "")
	e.must(204, taro, "DELETE", "/api/v1/lists/white/taro-list@example.jp?kind=to", "")
	if s := e.state(); strings.Contains(s, "taro-shop") || strings.Contains(s, "white taro-list") {
		t.Errorf("taro's entries not deleted:\n%s", s)
	}
}

// Without lists in memory, the API finds an alias's owner in the store.
func TestAliasTakenWithoutLists(t *testing.T) {
	e := newEnvLists(t, false)
	e.put(store.Entry{List: store.Alias, Key: "shop@example.jp", Owner: hanako, Target: hanako})
	e.must(409, taro, "POST", "/api/v1/lists/alias", `{"entry": "shop@example.jp"}`)
	e.must(201, hanako, "POST", "/api/v1/lists/alias", `{"entry": "shop@example.jp", "note": "renamed"}`)
	e.must(201, taro, "POST", "/api/v1/lists/alias", `{"entry": "taro-shop@example.jp"}`)
}

// Every route as the wrong user, and a user on what is the admin's: 403 or 404, and the
// store exactly as it was. Another user's entry answers exactly like a missing one.
func TestWrongUser(t *testing.T) {
	e := newEnv(t)
	e.put(store.Entry{List: store.Alias, Key: "taro-shop@example.jp", Owner: taro, Target: taro})
	e.put(store.Entry{List: store.White, Key: "friend@partner.test", Kind: store.KindFrom, Owner: taro})
	e.put(store.Entry{List: store.White, Key: "@global.test", Kind: store.KindFrom})
	e.put(store.Entry{List: store.Decoy, Key: "trap@example.jp"})
	e.put(store.Entry{List: store.Black, Key: "192.0.2.9", Source: "admin"})
	e.put(store.Entry{List: store.Relay, Key: "friend@partner.test", Kind: store.KindSender})
	e.put(store.Entry{List: store.Audir, Key: "0123abcd", Target: "friend@partner.test"})
	held := e.hold("stranger@spam.test", taro)
	before := e.state()

	tests := []struct {
		method, path, body string
		want               int
	}{
		{"DELETE", "/api/v1/lists/alias/taro-shop@example.jp", "", 404},
		{"DELETE", "/api/v1/lists/alias/nosuch@example.jp", "", 404},
		{"DELETE", "/api/v1/lists/alias/taro-shop@example.jp?owner=" + taro, "", 403},
		{"DELETE", "/api/v1/lists/white/friend@partner.test", "", 404},
		{"DELETE", "/api/v1/lists/white/@global.test", "", 404},
		{"DELETE", "/api/v1/lists/white/@global.test?owner=", "", 403},
		{"POST", "/api/v1/lists/alias", `{"entry": "taro-shop@example.jp"}`, 409},
		{"GET", "/api/v1/lists/white?owner=" + taro, "", 403},
		{"GET", "/api/v1/held?owner=" + taro, "", 403},
		{"POST", "/api/v1/held/" + held + "/release", "", 404},
		{"DELETE", "/api/v1/held/" + held, "", 404},
		{"POST", "/api/v1/held/nosuchid/release", "", 404},
		{"DELETE", "/api/v1/held/nosuchid", "", 404},
	}
	for _, l := range []string{"decoy", "black", "relay", "audir"} {
		tests = append(tests,
			struct {
				method, path, body string
				want               int
			}{"GET", "/api/v1/lists/" + l, "", 403},
			struct {
				method, path, body string
				want               int
			}{"POST", "/api/v1/lists/" + l, `{"entry": "x@example.jp"}`, 403},
			struct {
				method, path, body string
				want               int
			}{"DELETE", "/api/v1/lists/" + l + "/trap@example.jp", "", 403})
	}
	tests = append(tests, []struct {
		method, path, body string
		want               int
	}{
		{"GET", "/api/v1/users", "", 403},
		{"POST", "/api/v1/users", `{"address": "jiro@example.jp", "password": "pw", "admin": true}`, 403},
		{"DELETE", "/api/v1/users/" + taro, "", 403},
	}...)
	for _, tt := range tests {
		if code, b := e.do(hanako, tt.method, tt.path, tt.body); code != tt.want {
			t.Errorf("hanako %s %s: status %d %s, want %d", tt.method, tt.path, code, b, tt.want)
		}
	}
	// Nothing of taro's shows in hanako's answers.
	for _, path := range []string{"/api/v1/lists/alias", "/api/v1/lists/white", "/api/v1/held"} {
		if b := e.must(200, hanako, "GET", path, ""); strings.Contains(b, "taro") || strings.Contains(b, "global") {
			t.Errorf("hanako GET %s shows another's: %s", path, b)
		}
	}
	if after := e.state(); after != before {
		t.Errorf("the wrong user changed the store:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

func TestUsers(t *testing.T) {
	e := newEnv(t)
	e.must(201, "admin", "POST", "/api/v1/users", `{"address": "Jiro@Example.jp", "password": "s3cret pass", "admin": true}`)
	u, err := e.st.GetUser(t.Context(), "jiro@example.jp")
	if err != nil || !u.Admin {
		t.Fatalf("user added by the API: %+v, %v", u, err)
	}
	if ok, err := password.Check(u.PasswordHash, "s3cret pass"); !ok || err != nil {
		t.Errorf("the stored hash does not check the password: %v %v", ok, err)
	}
	body := e.must(200, "admin", "GET", "/api/v1/users", "")
	if !strings.Contains(body, `"address":"jiro@example.jp","admin":true`) || strings.Contains(body, "argon") || strings.Contains(body, u.PasswordHash) {
		t.Errorf("users: %s", body)
	}
	e.must(204, "admin", "DELETE", "/api/v1/users/jiro@example.jp", "")
	if _, err := e.st.GetUser(t.Context(), "jiro@example.jp"); err == nil {
		t.Error("user not deleted")
	}
}

// Held mail: each user sees and acts on its own recipients only; a release delivers to a real
// SMTP server and removes what was delivered from the store.
func TestHeld(t *testing.T) {
	e := newEnv(t)
	both := e.hold("sender@partner.test", taro, hanako)
	hanakoOnly := e.hold("other@partner.test", hanako)

	var list struct {
		Held []struct {
			ID    string
			From  string
			Rcpts []struct{ Rcpt string }
		}
	}
	if err := json.Unmarshal([]byte(e.must(200, taro, "GET", "/api/v1/held", "")), &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Held) != 1 || list.Held[0].ID != both || len(list.Held[0].Rcpts) != 1 || list.Held[0].Rcpts[0].Rcpt != taro {
		t.Errorf("taro's held mail: %+v; want %s with taro alone as recipient", list.Held, both)
	}
	if err := json.Unmarshal([]byte(e.must(200, "admin", "GET", "/api/v1/held?owner="+hanako, "")), &list); err != nil || len(list.Held) != 2 {
		t.Errorf("admin, hanako's held mail: %+v %v", list.Held, err)
	}

	// Taro releases his copy: the upstream gets it for taro only; hanako's copy stays.
	if b := e.must(200, taro, "POST", "/api/v1/held/"+both+"/release", ""); !strings.Contains(b, `"released":1`) {
		t.Errorf("release answer %s", b)
	}
	msgs := e.up.Wait(t, 1)
	if !slices.Equal(msgs[0].To, []string{taro}) || msgs[0].From != "sender@partner.test" || !bytes.Contains(msgs[0].Data, []byte("held for")) {
		t.Errorf("upstream got %+v", msgs[0])
	}
	h, _, err := e.st.HeldGet(t.Context(), both)
	if err != nil || len(h.Rcpts) != 1 || h.Rcpts[0].Rcpt != hanako {
		t.Errorf("after taro's release the message holds %+v (%v); want hanako's copy", h.Rcpts, err)
	}
	e.must(404, taro, "POST", "/api/v1/held/"+both+"/release", "")
	// Hanako deletes hers; the admin releases the rest.
	e.must(204, hanako, "DELETE", "/api/v1/held/"+both, "")
	if _, _, err := e.st.HeldGet(t.Context(), both); err == nil {
		t.Error("message still held after every recipient was released or deleted")
	}
	e.must(200, "admin", "POST", "/api/v1/held/"+hanakoOnly+"/release", "")
	if msgs := e.up.Wait(t, 2); !slices.Equal(msgs[1].To, []string{hanako}) {
		t.Errorf("admin release went to %v", msgs[1].To)
	}
	if held, _ := e.st.HeldList(t.Context(), store.HeldQuery{}); len(held) != 0 {
		t.Errorf("held after release: %+v", held)
	}
	// A release records the sender's pass history, as the confirmation page does.
	if rel, _ := e.st.Entries(t.Context(), store.Relay, store.Query{}); !slices.Contains(keys(rel), "other@partner.test/") {
		t.Errorf("relay after release: %v", keys(rel))
	}
}

// A release the upstream refuses answers 502 and keeps the message.
func TestReleaseRefused(t *testing.T) {
	e := newEnv(t)
	id := e.hold("sender@partner.test", taro)
	e.up.FailData(&smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "no thanks"})
	e.must(502, "admin", "POST", "/api/v1/held/"+id+"/release", "")
	if _, _, err := e.st.HeldGet(context.Background(), id); err != nil {
		t.Errorf("message gone after a refused release: %v", err)
	}
}
