package portal

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/sekisho/sekisho/internal/store"
)

// state is everything the portal could change, printed, to compare before and after.
func (s *site) state(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	var b strings.Builder
	for _, l := range []store.List{store.Alias, store.White, store.Decoy, store.Relay} {
		es, err := s.store.Entries(ctx, l, store.Query{})
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s: %+v\n", l, es)
	}
	held, err := s.store.HeldList(ctx, store.HeldQuery{})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&b, "held: %+v\nupstream: %d messages\n", held, len(s.up.Messages()))
	return b.String()
}

// Bob's things, seen and changed by nobody but Bob: every route, as Alice (logged in, with
// her valid CSRF token), as nobody, and without or with a wrong CSRF token. The store is
// compared before and after.
func TestAuthorisation(t *testing.T) {
	s := newSite(t)
	s.put(t,
		store.Entry{List: store.Alias, Key: "bobs-shop@example.jp", Target: bob, Owner: bob, Note: "bob's shop"},
		store.Entry{List: store.White, Key: "friend-of-bob@partner.test", Kind: store.KindFrom, Owner: bob},
		store.Entry{List: store.White, Key: "bobs-shop@example.jp", Kind: store.KindTo, Owner: bob},
		store.Entry{List: store.Decoy, Key: "trap@example.jp", Note: "decoy"},
	)
	bobHeld := hold(t, s.store, "someone@sender.test", "zebra for bob", []byte("Subject: zebra for bob\r\n\r\nsecret text\r\n"), bob)
	before := s.state(t)

	alice := s.login(t, alice)
	nobody := s.client(t)
	posts := []struct {
		path string
		form url.Values
	}{
		{"/portal/aliases/disable", url.Values{"alias": {"bobs-shop@example.jp"}}},
		{"/portal/aliases/enable", url.Values{"alias": {"bobs-shop@example.jp"}}},
		{"/portal/aliases/delete", url.Values{"alias": {"bobs-shop@example.jp"}}},
		{"/portal/white/delete", url.Values{"entry": {"friend-of-bob@partner.test"}, "kind": {"from"}}},
		{"/portal/white/delete", url.Values{"entry": {"bobs-shop@example.jp"}, "kind": {"to"}}},
		{"/portal/held/" + bobHeld + "/release", nil},
		{"/portal/held/" + bobHeld + "/release-white", nil},
		{"/portal/held/" + bobHeld + "/delete", nil},
	}
	for _, p := range posts {
		t.Run("alice"+p.path, func(t *testing.T) {
			if code, body := alice.postCSRF(p.path, p.form); code != http.StatusNotFound {
				t.Errorf("POST %s %v as alice: %d, want 404\n%s", p.path, p.form, code, body)
			}
		})
	}
	// Alice cannot take Bob's alias as a recipient entry, nor claim it, Bob's address or a
	// decoy as a new alias; the answer does not say whose it is.
	if code, body := alice.postCSRF("/portal/white", url.Values{"entry": {"bobs-shop@example.jp"}, "kind": {"to"}}); code != http.StatusBadRequest || !strings.Contains(body, texts["en"]["white_not_mine"]) {
		t.Errorf("alice adds bob's alias as a to entry: %d\n%s", code, body)
	}
	for _, local := range []string{"bobs-shop", "bob", "trap"} {
		code, body := alice.postCSRF("/portal/aliases", url.Values{"note": {"mine"}, "local": {local}, "domain": {"example.jp"}})
		if code != http.StatusConflict || !strings.Contains(body, texts["en"]["alias_taken"]) {
			t.Errorf("alice claims %s@example.jp: %d, want 409 with the refusal\n%s", local, code, body)
		}
		if strings.Contains(body, bob) || strings.Contains(body, "bob&#39;s shop") || strings.Contains(body, "decoy") {
			t.Errorf("the refusal of %s reveals its owner or kind:\n%s", local, body)
		}
	}
	// What Alice sees has nothing of Bob's.
	for _, path := range []string{"/portal/aliases", "/portal/aliases?q=bob", "/portal/white", "/portal/held"} {
		code, body := alice.get(path)
		if code != http.StatusOK {
			t.Errorf("GET %s as alice: %d", path, code)
		}
		for _, secret := range []string{"bobs-shop", "friend-of-bob", "zebra", bobHeld} {
			if strings.Contains(body, secret) {
				t.Errorf("GET %s as alice shows bob's %q", path, secret)
			}
		}
	}
	if code, body := alice.get("/portal/held/" + bobHeld); code != http.StatusNotFound || strings.Contains(body, "secret text") {
		t.Errorf("GET bob's held message as alice: %d\n%s", code, body)
	}

	// Nobody: pages send to the login, forms are refused.
	for _, path := range []string{"/portal/aliases", "/portal/white", "/portal/held", "/portal/held/" + bobHeld} {
		if code, loc := nobody.get(path); code != http.StatusSeeOther || !strings.HasPrefix(loc, "/login?next=") {
			t.Errorf("GET %s as nobody: %d %q, want 303 to /login", path, code, loc)
		}
	}
	all := append(posts, struct {
		path string
		form url.Values
	}{"/portal/aliases", url.Values{"note": {"x"}, "domain": {"example.jp"}}}, struct {
		path string
		form url.Values
	}{"/portal/white", url.Values{"entry": {"x@y.test"}, "kind": {"from"}}})
	for _, p := range all {
		if code, _ := nobody.post(p.path, p.form); code != http.StatusForbidden {
			t.Errorf("POST %s as nobody: %d, want 403", p.path, code)
		}
		// Alice's own session, but no CSRF token, or a wrong one.
		if code, _ := alice.post(p.path, p.form); code != http.StatusForbidden {
			t.Errorf("POST %s without CSRF token: %d, want 403", p.path, code)
		}
		f := url.Values{"csrf": {"wrong" + alice.csrf}}
		for k, v := range p.form {
			f[k] = v
		}
		if code, _ := alice.post(p.path, f); code != http.StatusForbidden {
			t.Errorf("POST %s with a wrong CSRF token: %d, want 403", p.path, code)
		}
	}
	// Bob's token in Alice's session is no better.
	bobc := s.login(t, bob)
	f := url.Values{"csrf": {bobc.csrf}, "alias": {"bobs-shop@example.jp"}}
	if code, _ := alice.post("/portal/aliases/delete", f); code != http.StatusForbidden {
		t.Errorf("POST with another session's CSRF token: %d, want 403", code)
	}

	if after := s.state(t); after != before {
		t.Fatalf("the store changed:\nbefore %s\nafter  %s", before, after)
	}
	// And Bob can still do all of it (the refusals above were not for other reasons).
	if code, _ := bobc.postCSRF("/portal/aliases/disable", url.Values{"alias": {"bobs-shop@example.jp"}}); code != http.StatusSeeOther {
		t.Errorf("bob disables his alias: %d", code)
	}
	if code, _ := bobc.postCSRF("/portal/held/"+bobHeld+"/delete", nil); code != http.StatusSeeOther {
		t.Errorf("bob deletes his held mail: %d", code)
	}
	if code, _ := bobc.postCSRF("/portal/white/delete", url.Values{"entry": {"friend-of-bob@partner.test"}, "kind": {"from"}}); code != http.StatusSeeOther {
		t.Errorf("bob deletes his whitelist entry: %d", code)
	}
	if after := s.state(t); after == before {
		t.Fatal("bob's own changes did not reach the store")
	}
}
