package web

import (
	"bytes"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/store"
)

// heldFor returns the held message of env e whose recipient is rcpt, and its digest link.
func (e *confirmEnv) heldFor(t *testing.T, rcpt string) (store.Held, string) {
	t.Helper()
	held, err := e.st.HeldList(t.Context(), store.HeldQuery{Owner: rcpt})
	if err != nil || len(held) != 1 {
		t.Fatalf("held for %s: %d (%v)", rcpt, len(held), err)
	}
	return held[0], "/d/" + e.dig.Make(held[0].ID, rcpt)
}

func (e *confirmEnv) view(t testing.TB, path, lang string) string {
	t.Helper()
	code, page := e.do(t, "GET", path, nil, lang)
	m := viewField.FindStringSubmatch(page)
	if code != 200 || m == nil {
		t.Fatalf("GET %s: %d\n%s", path, code, page)
	}
	return m[1]
}

// GET shows the message and releases nothing; a POST too soon, without a view of this
// page, or with an unknown action is asked again; release delivers the message byte for
// byte to that recipient only; the link then answers 410.
func TestDigestRelease(t *testing.T) {
	e := newConfirmEnv(t, 300*time.Millisecond)
	h, path := e.heldFor(t, "taro@example.jp")
	code, page := e.do(t, "GET", path, nil, "ja")
	for _, want := range []string{"保留中のメール", "alice@sender.test", "invoice 42", "taro@example.jp", "unknown-sender", `value="release"`, `value="whitelist"`, `value="delete"`} {
		if code != 200 || !strings.Contains(page, want) {
			t.Fatalf("GET %s: %d, lacks %q\n%s", path, code, want, page)
		}
	}
	v := viewField.FindStringSubmatch(page)[1]
	_, otherPath := e.heldFor(t, "hanako@example.jp")
	otherView := e.view(t, otherPath, "en")
	for _, form := range []url.Values{
		{"v": {v}, "action": {"release"}},                  // too soon
		{"action": {"release"}},                            // no page view
		{"v": {otherView}, "action": {"release"}},          // a view of another message's page
		{"v": {v}, "action": {"release; drop table held"}}, // no such action
	} {
		if form.Get("v") == v && form.Get("action") != "release" {
			time.Sleep(350 * time.Millisecond)
		}
		code, page := e.do(t, "POST", path, form, "en")
		if code != 200 || !strings.Contains(page, "Please press the button again") {
			t.Fatalf("POST %v: %d\n%s", form, code, page)
		}
	}
	if n := len(e.up.Messages()); n != 0 {
		t.Fatalf("released %d messages before a valid POST", n)
	}
	time.Sleep(350 * time.Millisecond)
	code, page = e.do(t, "POST", path, url.Values{"v": {v}, "action": {"release"}}, "en")
	if code != 200 || !strings.Contains(page, "has been delivered") {
		t.Fatalf("release: %d\n%s", code, page)
	}
	msg := e.up.Wait(t, 1)[0]
	if msg.From != h.From || len(msg.To) != 1 || msg.To[0] != "taro@example.jp" || !bytes.Equal(msg.Data, []byte(heldBody)) {
		t.Fatalf("released %s -> %v: %q", msg.From, msg.To, msg.Data)
	}
	if code, page := e.do(t, "GET", path, nil, "en"); code != 410 || !strings.Contains(page, "no longer held") {
		t.Fatalf("the link after release: %d\n%s", code, page)
	}
	if code, _ := e.do(t, "POST", path, url.Values{"v": {v}, "action": {"release"}}, "en"); code != 410 {
		t.Fatalf("a second release: %d, want 410", code)
	}
	if len(e.up.Messages()) != 1 {
		t.Fatal("released twice")
	}
	if held, _ := e.st.HeldList(t.Context(), store.HeldQuery{}); len(held) != 1 || held[0].Rcpts[0].Rcpt != "hanako@example.jp" {
		t.Fatalf("the other recipient's message is gone: %+v", held)
	}
}

// Release and whitelist adds the sender to WHITE for the recipient's owner only; delete
// removes the message without sending it.
func TestDigestWhitelistAndDelete(t *testing.T) {
	e := newConfirmEnv(t, 0)
	_, taro := e.heldFor(t, "taro@example.jp")
	_, hanako := e.heldFor(t, "hanako@example.jp")
	code, page := e.do(t, "POST", taro, url.Values{"v": {e.view(t, taro, "")}, "action": {"whitelist"}}, "ja")
	if code != 200 || !strings.Contains(page, "許可リスト") {
		t.Fatalf("whitelist: %d\n%s", code, page)
	}
	e.up.Wait(t, 1)
	white, _ := e.st.Entries(t.Context(), store.White, store.Query{})
	if len(white) != 1 || white[0].Key != "alice@sender.test" || white[0].Kind != store.KindFrom || white[0].Owner != "taro@example.jp" {
		t.Fatalf("WHITE = %+v, want alice for taro", white)
	}
	code, page = e.do(t, "POST", hanako, url.Values{"v": {e.view(t, hanako, "")}, "action": {"delete"}}, "en")
	if code != 200 || !strings.Contains(page, "has been deleted") {
		t.Fatalf("delete: %d\n%s", code, page)
	}
	if held, _ := e.st.HeldList(t.Context(), store.HeldQuery{}); len(held) != 0 {
		t.Fatalf("still held: %+v", held)
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(e.up.Messages()); n != 1 {
		t.Fatalf("upstream got %d messages, want only the whitelisted one", n)
	}
}

// A link not signed with our key is 404; a genuine link for a recipient the message does not
// have, or for a message gone, is 410.
func TestDigestUnknownAndGone(t *testing.T) {
	e := newConfirmEnv(t, 0)
	h, path := e.heldFor(t, "taro@example.jp")
	for _, p := range []string{"/d/x", "/d/" + strings.Repeat("A", 2000), path[:len(path)-3] + "AAA", "/d/a.b.c"} {
		if code, page := e.do(t, "GET", p, nil, ""); code != 404 || !strings.Contains(page, "not valid") {
			t.Errorf("GET %.60s: %d", p, code)
		}
	}
	for _, p := range []string{"/d/" + e.dig.Make(h.ID, "jiro@example.jp"), "/d/" + e.dig.Make("no-such-id", "taro@example.jp")} {
		if code, _ := e.do(t, "GET", p, nil, ""); code != 410 {
			t.Errorf("GET %s: %d, want 410", p, code)
		}
	}
}
