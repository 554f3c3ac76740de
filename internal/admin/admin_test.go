package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/api"
	"github.com/sekisho/sekisho/internal/store"
)

// route is one admin route with a request that would change the store if it were served.
type route struct {
	method, path string
	form         url.Values
}

func routes(heldID string) []route {
	var rs []route
	for _, p := range []string{"/admin", "/admin/", "/admin/?range=week", "/admin/users", "/admin/held", "/admin/held/" + heldID,
		"/admin/nodes", "/admin/traps", "/admin/tokens", "/admin/nope"} {
		rs = append(rs, route{method: "GET", path: p})
	}
	for _, l := range store.Lists {
		rs = append(rs, route{method: "GET", path: "/admin/lists/" + string(l) + "?q=a"})
	}
	return append(rs,
		route{"POST", "/admin/users", url.Values{"address": {"mallory@example.jp"}, "password": {"0123456789ab"}, "admin": {"on"}}},
		route{"POST", "/admin/users/password", url.Values{"address": {aliceUser}, "password": {"0123456789ab"}}},
		route{"POST", "/admin/users/admin", url.Values{"address": {aliceUser}}},
		route{"POST", "/admin/users/delete", url.Values{"address": {aliceUser}}},
		route{"POST", "/admin/lists/black", url.Values{"entry": {"198.51.100.0/24"}, "ttl": {"1h"}}},
		route{"POST", "/admin/lists/decoy/delete", url.Values{"key": {"trap@example.jp"}}},
		route{"POST", "/admin/held/" + heldID + "/release", nil},
		route{"POST", "/admin/held/" + heldID + "/delete", nil},
		route{"POST", "/admin/tokens", url.Values{"name": {"evil"}}},
		route{"POST", "/admin/tokens/delete", url.Values{"name": {"backup-script"}}},
	)
}

// Outside admin_networks every admin route is 403 even for a logged-in admin with the
// right CSRF token, and nothing changes.
func TestRefusedOutsideAdminNetworks(t *testing.T) {
	t.Parallel()
	s := newSite(t, "10.0.0.0/8", "::1/128")
	id := s.seed(t, time.Now())
	root := s.login(t, rootUser)
	before := s.state(t)
	for _, r := range routes(id) {
		var code int
		if r.method == "GET" {
			code, _ = s.get(t, root, r.path, "en")
		} else {
			code, _, _ = s.post(t, root, r.path, r.form, true)
		}
		if code != http.StatusForbidden {
			t.Errorf("%s %s from 127.0.0.1: %d, want 403", r.method, r.path, code)
		}
	}
	if after := s.state(t); after != before {
		t.Errorf("the store changed:\n%s\nwant\n%s", after, before)
	}
}

// A logged-in user without the admin flag gets 403 everywhere; nobody is sent to the
// login page (GET) or refused (POST); nothing changes.
func TestRefusedNonAdminAndNobody(t *testing.T) {
	t.Parallel()
	s := newSite(t, "127.0.0.0/8")
	id := s.seed(t, time.Now())
	alice := s.login(t, aliceUser)
	nobody := &user{c: s.client(), csrf: "x"}
	before := s.state(t)
	for _, r := range routes(id) {
		if r.method == "GET" {
			if code, _ := s.get(t, alice, r.path, "en"); code != http.StatusForbidden {
				t.Errorf("GET %s as a user: %d, want 403", r.path, code)
			}
			resp, err := nobody.c.Get(s.srv.URL + r.path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/login?next=") {
				t.Errorf("GET %s as nobody: %d to %q, want 303 to /login", r.path, resp.StatusCode, loc)
			}
			continue
		}
		if code, _, _ := s.post(t, alice, r.path, r.form, true); code != http.StatusForbidden {
			t.Errorf("POST %s as a user: %d, want 403", r.path, code)
		}
		if code, _, _ := s.post(t, nobody, r.path, r.form, true); code != http.StatusForbidden {
			t.Errorf("POST %s as nobody: %d, want 403", r.path, code)
		}
	}
	if after := s.state(t); after != before {
		t.Errorf("the store changed:\n%s\nwant\n%s", after, before)
	}
}

// A post without the session's CSRF token (none, or another session's) is refused 403 and
// changes nothing, though the admin may do it with the token.
func TestPostsWithoutCSRFRefused(t *testing.T) {
	t.Parallel()
	s := newSite(t, "127.0.0.0/8")
	id := s.seed(t, time.Now())
	root := s.login(t, rootUser)
	other := s.login(t, rootUser) // a second session: its token is not root's
	before := s.state(t)
	for _, r := range routes(id) {
		if r.method != "POST" {
			continue
		}
		if code, _, _ := s.post(t, root, r.path, r.form, false); code != http.StatusForbidden {
			t.Errorf("POST %s without a token: %d, want 403", r.path, code)
		}
		wrong := &user{c: root.c, csrf: other.csrf}
		if code, _, _ := s.post(t, wrong, r.path, r.form, true); code != http.StatusForbidden {
			t.Errorf("POST %s with another session's token: %d, want 403", r.path, code)
		}
	}
	if after := s.state(t); after != before {
		t.Errorf("the store changed:\n%s\nwant\n%s", after, before)
	}
}

// Every page renders, in both languages, with the data the store holds; untrusted text is
// escaped.
func TestPagesRenderWithData(t *testing.T) {
	t.Parallel()
	s := newSite(t, "127.0.0.0/8")
	now := time.Now()
	id := s.seed(t, now)
	root := s.login(t, rootUser)
	pages := []struct {
		path string
		want []string
	}{
		{"/admin/", []string{"<svg", `class="counters"`, "<desc id=\"decisions-desc\">"}},
		{"/admin/users", []string{rootUser, aliceUser}},
		{"/admin/lists/alias", []string{"shop-x7@example.jp", "online &lt;shop&gt;", aliceUser}},
		{"/admin/lists/white", []string{"friend@partner.test", ">from<"}},
		{"/admin/lists/decoy", []string{"trap@example.jp"}},
		{"/admin/lists/black", []string{"192.0.2.66", "decoy hit"}},
		{"/admin/lists/audir", []string{"0123abcd", "stranger@else.test"}},
		{"/admin/lists/relay", []string{"known@partner.test", ">sender<"}},
		{"/admin/held", []string{"stranger@else.test", "hello &lt;b&gt;there&lt;/b&gt;", "/admin/held/" + id}},
		{"/admin/held/" + id, []string{"X-Evil: &lt;script&gt;alert(1)&lt;/script&gt;", "198.51.100.7"}},
		{"/admin/nodes", []string{"node-a", "v1.2.3", "lists_seq", `<tr class="live">`, `<tr class="stale">`}},
		{"/admin/traps", []string{"k3v9q@trap.example.jp", "203.0.113.5", "Harvester/1.0", "/about.html", "203.0.113.77", "spam@bulk.test"}},
		{"/admin/tokens", []string{"backup-script"}},
	}
	for _, lang := range []string{"en", "ja"} {
		for _, p := range pages {
			code, body := s.get(t, root, p.path, lang)
			if code != http.StatusOK {
				t.Errorf("%s GET %s: %d\n%s", lang, p.path, code, body)
				continue
			}
			if !strings.Contains(body, `<html lang="`+lang+`">`) {
				t.Errorf("%s GET %s: not in %s", lang, p.path, lang)
			}
			for _, w := range p.want {
				if !strings.Contains(body, w) {
					t.Errorf("%s GET %s: no %q", lang, p.path, w)
				}
			}
			if strings.Contains(body, "<script>") || strings.Contains(body, "<b>there") {
				t.Errorf("%s GET %s: unescaped markup from the data", lang, p.path)
			}
		}
	}
	if _, body := s.get(t, root, "/admin/nodes", "ja"); !strings.Contains(body, "応答なし") {
		t.Error("ja nodes page does not flag the silent node")
	}
	if code, _ := s.get(t, root, "/admin/held/nosuch", "en"); code != http.StatusNotFound {
		t.Errorf("unknown held message: %d, want 404", code)
	}
	if code, _ := s.get(t, root, "/admin/lists/nosuch", "en"); code != http.StatusNotFound {
		t.Errorf("unknown list: %d, want 404", code)
	}
}

// Paging: 120 entries show 50 a page with links to the next and previous pages; the search
// narrows them.
func TestListPagingAndSearch(t *testing.T) {
	t.Parallel()
	s := newSite(t, "127.0.0.0/8")
	root := s.login(t, rootUser)
	for i := range 120 {
		key := fmt.Sprintf("d%03d@example.jp", i)
		if err := s.store.Put(context.Background(), store.Entry{List: store.Decoy, Key: key}); err != nil {
			t.Fatal(err)
		}
	}
	rows := regexp.MustCompile(`<td>d\d{3}@example.jp</td>`)
	_, body := s.get(t, root, "/admin/lists/decoy", "en")
	if n := len(rows.FindAllString(body, -1)); n != PageSize || !strings.Contains(body, `href="?offset=50"`) || strings.Contains(body, `rel="prev"`) {
		t.Fatalf("first page: %d rows, want %d with a next link only", n, PageSize)
	}
	_, body = s.get(t, root, "/admin/lists/decoy?offset=100", "en")
	if n := len(rows.FindAllString(body, -1)); n != 20 || !strings.Contains(body, `href="?offset=50"`) || strings.Contains(body, `rel="next"`) {
		t.Fatalf("last page: %d rows, want 20 with a previous link only", n)
	}
	if !strings.Contains(body, "<td>d100@example.jp</td>") {
		t.Fatal("last page does not start at entry 100")
	}
	_, body = s.get(t, root, "/admin/lists/decoy?q=d11", "en")
	if n := len(rows.FindAllString(body, -1)); n != 10 {
		t.Fatalf("search d11: %d rows, want 10", n)
	}
}

// The actions change the store as they say.
func TestActions(t *testing.T) {
	t.Parallel()
	s := newSite(t, "127.0.0.0/8")
	now := time.Now()
	id := s.seed(t, now)
	ctx := context.Background()
	root := s.login(t, rootUser)
	ok := func(path string, form url.Values, wantLoc string) {
		t.Helper()
		code, loc, body := s.post(t, root, path, form, true)
		if code != http.StatusSeeOther || loc != wantLoc {
			t.Fatalf("POST %s %v: %d to %q, want 303 to %q\n%s", path, form, code, loc, wantLoc, body)
		}
		if _, body := s.get(t, root, loc, "en"); !strings.Contains(body, `class="flash"`) {
			t.Errorf("after POST %s the page says nothing", path)
		}
	}
	refused := func(path string, form url.Values, want int) {
		t.Helper()
		before := s.state(t)
		if code, _, body := s.post(t, root, path, form, true); code != want {
			t.Errorf("POST %s %v: %d, want %d\n%s", path, form, code, want, body)
		}
		if s.state(t) != before {
			t.Errorf("refused POST %s %v changed the store", path, form)
		}
	}

	t.Run("users", func(t *testing.T) {
		ok("/admin/users", url.Values{"address": {"Bob@Example.JP"}, "password": {"pw-bob@example.jp"}}, "/admin/users?ok=user_created")
		bob, err := s.store.GetUser(ctx, "bob@example.jp")
		if err != nil || bob.Admin {
			t.Fatalf("bob after create: %+v %v", bob, err)
		}
		refused("/admin/users", url.Values{"address": {"bob@example.jp"}, "password": {"0123456789ab"}}, http.StatusConflict)
		refused("/admin/users", url.Values{"address": {"carol@example.jp"}, "password": {"short"}}, http.StatusBadRequest)
		refused("/admin/users", url.Values{"address": {"not an address"}, "password": {"0123456789ab"}}, http.StatusBadRequest)

		bobSession := s.login(t, "bob@example.jp")
		ok("/admin/users/password", url.Values{"address": {"bob@example.jp"}, "password": {"new-password-1"}}, "/admin/users?ok=password_reset")
		if resp, err := bobSession.c.Get(s.srv.URL + "/test/csrf"); err != nil || resp.StatusCode != http.StatusSeeOther {
			t.Errorf("bob's session after the reset: %v %v, want it ended (303 to login)", resp.StatusCode, err)
		}
		ok("/admin/users/admin", url.Values{"address": {"bob@example.jp"}}, "/admin/users?ok=admin_set")
		if bob, _ := s.store.GetUser(ctx, "bob@example.jp"); !bob.Admin {
			t.Error("bob is no admin after the toggle")
		}
		refused("/admin/users/admin", url.Values{"address": {rootUser}}, http.StatusBadRequest)
		refused("/admin/users/delete", url.Values{"address": {rootUser}}, http.StatusBadRequest)
		refused("/admin/users/delete", url.Values{"address": {"nobody@example.jp"}}, http.StatusNotFound)
		ok("/admin/users/delete", url.Values{"address": {"bob@example.jp"}}, "/admin/users?ok=user_deleted")
		if _, err := s.store.GetUser(ctx, "bob@example.jp"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("bob after delete: %v", err)
		}
	})

	t.Run("lists", func(t *testing.T) {
		ok("/admin/lists/black", url.Values{"entry": {"198.51.100.0/24"}, "ttl": {"2d"}}, "/admin/lists/black?ok=entry_added")
		es, _ := s.store.Entries(ctx, store.Black, store.Query{Q: "198.51.100.0/24"})
		if len(es) != 1 || es[0].Source != "admin" || es[0].Note != "added by "+rootUser ||
			es[0].Expires.Sub(now) < 47*time.Hour || es[0].Expires.Sub(now) > 49*time.Hour {
			t.Fatalf("black entry: %+v, want admin source and 2 days to live", es)
		}
		ok("/admin/lists/white", url.Values{"entry": {"News@Lists.Example"}, "kind": {"to"}, "owner": {aliceUser}, "note": {"mailing list"}}, "/admin/lists/white?ok=entry_added")
		if es, _ := s.store.Entries(ctx, store.White, store.Query{Q: "news@lists.example"}); len(es) != 1 || es[0].Kind != "to" || es[0].Owner != aliceUser {
			t.Fatalf("white entry: %+v", es)
		}
		ok("/admin/lists/alias", url.Values{"entry": {"promo@example.jp"}, "owner": {aliceUser}, "note": {"promo"}}, "/admin/lists/alias?ok=entry_added")
		if es, _ := s.store.Entries(ctx, store.Alias, store.Query{Q: "promo@"}); len(es) != 1 || es[0].Target != aliceUser {
			t.Fatalf("alias entry: %+v", es)
		}
		refused("/admin/lists/black", url.Values{"entry": {"not an ip or address"}}, http.StatusBadRequest)
		refused("/admin/lists/black", url.Values{"entry": {"192.0.2.1"}, "ttl": {"soon"}}, http.StatusBadRequest)
		refused("/admin/lists/white", url.Values{"entry": {"x@y.test"}, "kind": {"sideways"}}, http.StatusBadRequest)
		refused("/admin/lists/audir", url.Values{"entry": {"abc"}}, http.StatusBadRequest)
		refused("/admin/lists/nosuch", url.Values{"entry": {"abc"}}, http.StatusNotFound)
		refused("/admin/lists/decoy/delete", url.Values{"key": {"absent@example.jp"}}, http.StatusNotFound)
		ok("/admin/lists/white/delete", url.Values{"key": {"friend@partner.test"}, "kind": {"from"}, "owner": {aliceUser}}, "/admin/lists/white?ok=entry_deleted")
		if es, _ := s.store.Entries(ctx, store.White, store.Query{Q: "friend@"}); len(es) != 0 {
			t.Fatalf("white entry after delete: %+v", es)
		}
		// A refused entry is offered again in the form, its problem named.
		_, _, body := s.post(t, root, "/admin/lists/decoy", url.Values{"entry": {"bad@@x"}, "note": {"keep me"}}, true)
		if !strings.Contains(body, `value="bad@@x"`) || !strings.Contains(body, `value="keep me"`) || !strings.Contains(body, `class="error"`) {
			t.Errorf("refused entry not offered again: %s", body)
		}
	})

	t.Run("held", func(t *testing.T) {
		h2 := &store.Held{Received: now, Expires: now.Add(time.Hour), From: "other@else.test", Subject: "two", Size: 10,
			Rcpts: []store.HeldRcpt{{Rcpt: aliceUser, Owner: aliceUser}}}
		if err := s.store.Hold(ctx, h2, []byte("Subject: two\r\n\r\nx\r\n")); err != nil {
			t.Fatal(err)
		}
		_, body := s.get(t, root, "/admin/held?from=Stranger@Else.test", "en")
		if !strings.Contains(body, "/admin/held/"+id) || strings.Contains(body, "/admin/held/"+h2.ID) {
			t.Errorf("filter by sender: %s", body)
		}
		ok("/admin/held/"+id+"/release", nil, "/admin/held?ok=released")
		msgs := s.up.Wait(t, 1)
		if msgs[0].From != "stranger@else.test" || len(msgs[0].To) != 1 || msgs[0].To[0] != aliceUser || !strings.Contains(string(msgs[0].Data), "body text") {
			t.Errorf("released message upstream: %+v", msgs[0])
		}
		if _, _, err := s.store.HeldGet(ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("released message still held: %v", err)
		}
		if es, _ := s.store.Entries(ctx, store.Relay, store.Query{Q: "stranger@else.test"}); len(es) != 1 {
			t.Errorf("released sender not in RELAY: %+v", es)
		}
		ok("/admin/held/"+h2.ID+"/delete", nil, "/admin/held?ok=held_deleted")
		if _, _, err := s.store.HeldGet(ctx, h2.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("deleted message still held: %v", err)
		}
		refused("/admin/held/"+h2.ID+"/release", nil, http.StatusNotFound)
		if n := len(s.up.Messages()); n != 1 {
			t.Errorf("%d messages upstream, want 1", n)
		}
	})

	t.Run("tokens", func(t *testing.T) {
		code, _, body := s.post(t, root, "/admin/tokens", url.Values{"name": {"ci-bot"}, "owner": {aliceUser}}, true)
		m := regexp.MustCompile(`<code class="token" id="token">(sk_[A-Za-z0-9_-]{43})</code>`).FindStringSubmatch(body)
		if code != http.StatusOK || m == nil {
			t.Fatalf("create token: %d\n%s", code, body)
		}
		tok, err := s.store.TokenByHash(ctx, api.HashToken(m[1]), now)
		if err != nil || tok.Name != "ci-bot" || tok.Owner != aliceUser {
			t.Fatalf("stored token: %+v %v", tok, err)
		}
		if _, body := s.get(t, root, "/admin/tokens", "en"); strings.Contains(body, m[1]) || !strings.Contains(body, "ci-bot") {
			t.Error("the token is shown again, or its name is not listed")
		}
		refused("/admin/tokens", url.Values{"name": {"ci-bot"}}, http.StatusConflict)
		refused("/admin/tokens", url.Values{"name": {"bad name!"}}, http.StatusBadRequest)
		refused("/admin/tokens", url.Values{"name": {"x"}, "owner": {"ghost@example.jp"}}, http.StatusBadRequest)
		ok("/admin/tokens/delete", url.Values{"name": {"ci-bot"}}, "/admin/tokens?ok=token_deleted")
		if _, err := s.store.TokenByHash(ctx, api.HashToken(m[1]), now); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("token after delete: %v", err)
		}
	})
}
