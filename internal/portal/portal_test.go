package portal

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/store"
)

// ownAliases returns the user's aliases from the store.
func (s *site) ownAliases(t *testing.T, owner string) map[string]store.Entry {
	t.Helper()
	es, err := s.store.Entries(context.Background(), store.Alias, store.Query{Owner: owner})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]store.Entry{}
	for _, e := range es {
		out[e.Key] = e
	}
	return out
}

var randomAlias = regexp.MustCompile(`^[a-z0-9]{12}@alias\.example\.jp$`)

// Aliases with real SQLite: create random and chosen, refuse bad input, disable, enable,
// delete; the store and the in-memory lists follow each step.
func TestAliasLifecycle(t *testing.T) {
	s := newSite(t)
	c := s.login(t, alice)

	code, loc := c.postCSRF("/portal/aliases", url.Values{"note": {"Shop A"}, "domain": {"alias.example.jp"}})
	if code != http.StatusSeeOther {
		t.Fatalf("create random alias: %d %s", code, loc)
	}
	got := s.ownAliases(t, alice)
	if len(got) != 1 {
		t.Fatalf("aliases after one create: %v", got)
	}
	var random store.Entry
	for _, e := range got {
		random = e
	}
	if !randomAlias.MatchString(random.Key) || random.Target != alice || random.Owner != alice || random.Note != "Shop A" || random.Disabled {
		t.Fatalf("random alias %+v: want 12 lower-case letters and digits at alias.example.jp, target and owner alice, note Shop A", random)
	}
	if at, ok := s.lists.Alias(random.Key); !ok || at.Mailbox != alice {
		t.Fatalf("lists.Alias(%s) = %+v %v", random.Key, at, ok)
	}
	// The redirect shows the new address, ready to copy.
	code, body := c.get(loc)
	if code != 200 || !strings.Contains(body, `id="new-alias" type="text" readonly value="`+random.Key+`"`) || !strings.Contains(body, "Alias created.") {
		t.Fatalf("page after create (%s): %d\n%s", loc, code, body)
	}

	if code, loc := c.postCSRF("/portal/aliases", url.Values{"note": {"Bank"}, "local": {"My.Bank"}, "domain": {"example.jp"}}); code != http.StatusSeeOther {
		t.Fatalf("create chosen alias: %d %s", code, loc)
	}
	if e, ok := s.ownAliases(t, alice)["my.bank@example.jp"]; !ok || e.Target != alice || e.Note != "Bank" {
		t.Fatalf("chosen alias: %+v %v", e, ok)
	}
	for _, bad := range []struct {
		name string
		form url.Values
		code int
		text string
	}{
		{"no note", url.Values{"note": {""}, "domain": {"example.jp"}}, 400, "alias_need_note"},
		{"foreign domain", url.Values{"note": {"x"}, "domain": {"evil.test"}}, 400, "alias_bad_domain"},
		{"bad local", url.Values{"note": {"x"}, "local": {"a b"}, "domain": {"example.jp"}}, 400, "alias_bad_local"},
		{"percent hack", url.Values{"note": {"x"}, "local": {"a%b"}, "domain": {"example.jp"}}, 400, "alias_bad_local"},
		{"leading dot", url.Values{"note": {"x"}, "local": {".a"}, "domain": {"example.jp"}}, 400, "alias_bad_local"},
		{"exists", url.Values{"note": {"x"}, "local": {"my.bank"}, "domain": {"example.jp"}}, 409, "alias_taken"},
		{"own address", url.Values{"note": {"x"}, "local": {"alice"}, "domain": {"example.jp"}}, 409, "alias_taken"},
	} {
		code, body := c.postCSRF("/portal/aliases", bad.form)
		if code != bad.code || !strings.Contains(body, html.EscapeString(texts["en"][bad.text])) {
			t.Errorf("%s: %d, want %d with %q", bad.name, code, bad.code, texts["en"][bad.text])
		}
	}
	if n := len(s.ownAliases(t, alice)); n != 2 {
		t.Fatalf("%d aliases after the refusals, want 2", n)
	}

	if code, _ := c.postCSRF("/portal/aliases/disable", url.Values{"alias": {"my.bank@example.jp"}}); code != http.StatusSeeOther {
		t.Fatalf("disable: %d", code)
	}
	if e := s.ownAliases(t, alice)["my.bank@example.jp"]; !e.Disabled || e.Note != "Bank" || e.Target != alice {
		t.Fatalf("after disable: %+v", e)
	}
	if at, _ := s.lists.Alias("my.bank@example.jp"); !at.Disabled {
		t.Fatal("lists do not know the alias is disabled")
	}
	if _, body := c.get("/portal/aliases?q=bank"); !strings.Contains(body, `name="enable"`) || strings.Contains(body, random.Key) {
		t.Fatalf("search for bank:\n%s", body)
	}
	if code, _ := c.postCSRF("/portal/aliases/enable", url.Values{"alias": {"my.bank@example.jp"}}); code != http.StatusSeeOther {
		t.Fatalf("enable: %d", code)
	}
	if e := s.ownAliases(t, alice)["my.bank@example.jp"]; e.Disabled {
		t.Fatalf("after enable: %+v", e)
	}
	if code, _ := c.postCSRF("/portal/aliases/delete", url.Values{"alias": {"my.bank@example.jp"}}); code != http.StatusSeeOther {
		t.Fatalf("delete: %d", code)
	}
	if _, ok := s.ownAliases(t, alice)["my.bank@example.jp"]; ok {
		t.Fatal("deleted alias still in the store")
	}
	if _, ok := s.lists.Alias("my.bank@example.jp"); ok {
		t.Fatal("deleted alias still in the lists")
	}
	if code, _ := c.postCSRF("/portal/aliases/delete", url.Values{"alias": {"my.bank@example.jp"}}); code != http.StatusNotFound {
		t.Fatalf("delete again: %d, want 404", code)
	}
}

// Paging and search, and the leak view: hits from a second sender domain flag the alias, the
// correspondent's (first) domain first.
func TestAliasPagesAndLeak(t *testing.T) {
	s := newSite(t)
	for _, k := range []string{"a1", "a2", "a3", "a4", "a5", "a6", "a7"} {
		s.put(t, store.Entry{List: store.Alias, Key: k + "@example.jp", Target: alice, Owner: alice, Note: "note " + k})
	}
	ctx := context.Background()
	t0 := time.Now().Add(-time.Hour)
	hits := []struct{ alias, sender string }{
		{"a1@example.jp", "news@shop.test"}, {"a1@example.jp", "offers@shop.test"}, {"a1@example.jp", "spam@spammer.test"},
		{"a2@example.jp", "bank@bank.test"},
	}
	for i, h := range hits {
		if err := s.store.Hit(ctx, store.Alias, h.alias, "", alice, h.sender, t0.Add(time.Duration(i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	c := s.login(t, alice)
	_, body := c.get("/portal/aliases")
	for _, want := range []string{"a1@example.jp", "a5@example.jp", `rel="next" href="?page=2"`, `<td class="hits">3</td>`, "spam@spammer.test", "this address has leaked"} {
		if !strings.Contains(body, want) {
			t.Errorf("page 1 lacks %q", want)
		}
	}
	if strings.Contains(body, "a6@example.jp") {
		t.Error("page 1 (5 rows) shows a6")
	}
	row := body[strings.Index(body, `data-alias="a1@example.jp"`):]
	row = row[:strings.Index(row, "</tr>")]
	if i, j := strings.Index(row, `"leak-domain">shop.test`), strings.Index(row, `"leak-domain">spammer.test`); i < 0 || j < i {
		t.Errorf("leak view of a1 should list shop.test (the correspondent) then spammer.test:\n%s", row)
	}
	row = body[strings.Index(body, `data-alias="a2@example.jp"`):]
	row = row[:strings.Index(row, "</tr>")]
	if strings.Contains(row, "leaked") {
		t.Errorf("a2 had one sender domain and is flagged:\n%s", row)
	}
	_, body = c.get("/portal/aliases?page=2")
	if !strings.Contains(body, "a6@example.jp") || !strings.Contains(body, "a7@example.jp") || strings.Contains(body, "a1@example.jp") || strings.Contains(body, `rel="next"`) {
		t.Errorf("page 2:\n%s", body)
	}
	_, body = c.get("/portal/aliases?q=note+a3")
	if !strings.Contains(body, "a3@example.jp") || strings.Contains(body, "a4@example.jp") {
		t.Errorf("search by note:\n%s", body)
	}
}

// The whitelist: from entries (address, @domain), to entries only for the user's own address
// and aliases; remove.
func TestWhitelist(t *testing.T) {
	s := newSite(t)
	s.put(t, store.Entry{List: store.Alias, Key: "list@example.jp", Target: alice, Owner: alice, Note: "ML"})
	c := s.login(t, alice)
	for _, ok := range []struct{ entry, kind, key string }{
		{"Friend@Partner.test", "from", "friend@partner.test"},
		{"@Partner.test", "from", "@partner.test"},
		{alice, "to", alice},
		{"list@example.jp", "to", "list@example.jp"},
	} {
		if code, body := c.postCSRF("/portal/white", url.Values{"entry": {ok.entry}, "kind": {ok.kind}}); code != http.StatusSeeOther {
			t.Fatalf("add %s %s: %d\n%s", ok.kind, ok.entry, code, body)
		}
		es, _ := s.store.Entries(context.Background(), store.White, store.Query{Owner: alice})
		if !slices.ContainsFunc(es, func(e store.Entry) bool { return e.Key == ok.key && e.Kind == ok.kind && e.Owner == alice }) {
			t.Fatalf("after adding %s %s: %+v", ok.kind, ok.entry, es)
		}
	}
	if !s.lists.WhiteFrom("anyone@partner.test", alice) || !s.lists.WhiteTo("list@example.jp", alice) {
		t.Fatal("lists do not follow the whitelist")
	}
	for _, bad := range []struct{ entry, kind, text string }{
		{"not an address", "from", "white_bad_entry"},
		{"@nodot", "from", "white_bad_entry"},
		{"a%b@x.test", "from", "white_bad_entry"},
		{"x@y.test", "bcc", "white_bad_kind"},
		{"stranger@example.jp", "to", "white_not_mine"},
		{"@example.jp", "to", "white_not_mine"},
	} {
		if code, body := c.postCSRF("/portal/white", url.Values{"entry": {bad.entry}, "kind": {bad.kind}}); code != 400 || !strings.Contains(body, html.EscapeString(texts["en"][bad.text])) {
			t.Errorf("add %s %q: %d, want 400 %q", bad.kind, bad.entry, code, bad.text)
		}
	}
	_, body := c.get("/portal/white")
	for _, want := range []string{"friend@partner.test", "@partner.test", "list@example.jp"} {
		if !strings.Contains(body, `data-entry="`+want+`"`) {
			t.Errorf("whitelist page lacks %s", want)
		}
	}
	if code, _ := c.postCSRF("/portal/white/delete", url.Values{"entry": {"@partner.test"}, "kind": {"from"}}); code != http.StatusSeeOther {
		t.Fatalf("remove: %d", code)
	}
	if s.lists.WhiteFrom("anyone@partner.test", alice) {
		t.Fatal("removed @partner.test still whitelisted")
	}
	if es, _ := s.store.Entries(context.Background(), store.White, store.Query{Owner: alice}); len(es) != 3 {
		t.Fatalf("after remove: %+v", es)
	}
}

// Held mail of two users in one message: Alice sees it, releases her recipient only (the
// upstream gets exactly her), Bob's stays held; release-and-whitelist adds the sender;
// delete drops only her recipient.
func TestHeldMail(t *testing.T) {
	s := newSite(t)
	ctx := context.Background()
	msg := "From: Shop <news@shop.test>\r\nSubject: =?UTF-8?B?5L6h5qC844Gu44GK55+l44KJ44Gb?=\r\nContent-Type: text/html\r\n\r\n<p>Sale <script>alert(1)</script><img src=\"http://tracker.test/x.png\"></p>\r\n"
	shared := hold(t, s.store, "news@shop.test", "=?UTF-8?B?5L6h5qC844Gu44GK55+l44KJ44Gb?=", []byte(msg), alice, bob)
	c := s.login(t, alice)
	_, body := c.get("/portal/held")
	if !strings.Contains(body, `data-held="`+shared+`"`) || !strings.Contains(body, "価格のお知らせ") || strings.Contains(body, bob) {
		t.Fatalf("held list:\n%s", body)
	}
	_, body = c.get("/portal/held/" + shared)
	if !strings.Contains(body, "Subject: 価格のお知らせ") || !strings.Contains(body, "HTML only") || !strings.Contains(body, `<pre id="text">Sale</pre>`) {
		t.Errorf("message page:\n%s", body)
	}
	if strings.Contains(body, "<script>alert") || strings.Contains(body, "<img") || strings.Contains(body, bob) {
		t.Errorf("message page renders the message's HTML or shows bob:\n%s", body)
	}
	if code, _ := c.postCSRF("/portal/held/"+shared+"/release", nil); code != http.StatusSeeOther {
		t.Fatalf("release: %d", code)
	}
	got := s.up.Wait(t, 1)[0]
	if got.From != "news@shop.test" || len(got.To) != 1 || got.To[0] != alice || string(got.Data) != msg {
		t.Fatalf("released %q -> %v:\n%q", got.From, got.To, got.Data)
	}
	h, _, err := s.store.HeldGet(ctx, shared)
	if err != nil || len(h.Rcpts) != 1 || h.Rcpts[0].Rcpt != bob {
		t.Fatalf("after alice's release the message holds %+v (%v), want bob only", h.Rcpts, err)
	}
	if code, _ := c.get("/portal/held/" + shared); code != http.StatusNotFound {
		t.Fatalf("released message still alice's: %d", code)
	}

	second := hold(t, s.store, "promo@shop.test", "second", []byte("Subject: second\r\n\r\nhello\r\n"), alice)
	if code, _ := c.postCSRF("/portal/held/"+second+"/release-white", nil); code != http.StatusSeeOther {
		t.Fatalf("release-white: %d", code)
	}
	s.up.Wait(t, 2)
	if !s.lists.WhiteFrom("promo@shop.test", alice) || s.lists.WhiteFrom("promo@shop.test", bob) {
		t.Fatal("release-white did not whitelist the sender for alice (only)")
	}

	third := hold(t, s.store, "x@spam.test", "third", []byte("Subject: third\r\n\r\nx\r\n"), alice, bob)
	if code, _ := c.postCSRF("/portal/held/"+third+"/delete", nil); code != http.StatusSeeOther {
		t.Fatalf("delete: %d", code)
	}
	if h, _, err := s.store.HeldGet(ctx, third); err != nil || len(h.Rcpts) != 1 || h.Rcpts[0].Rcpt != bob {
		t.Fatalf("after alice's delete: %+v (%v), want bob's recipient kept", h.Rcpts, err)
	}
	if n := len(s.up.Messages()); n != 2 {
		t.Fatalf("upstream got %d messages, want 2", n)
	}
}
