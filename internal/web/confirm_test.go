package web

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/challenge"
	"github.com/sekisho/sekisho/internal/digest"
	"github.com/sekisho/sekisho/internal/lists"
	"github.com/sekisho/sekisho/internal/release"
	"github.com/sekisho/sekisho/internal/store"
	"github.com/sekisho/sekisho/internal/store/sqlite"
	"github.com/sekisho/sekisho/internal/testenv"
	"github.com/sekisho/sekisho/internal/upstream"
)

type confirmEnv struct {
	st    store.Store
	up    *testenv.Upstream
	lists *lists.Lists
	srv   *httptest.Server
	token string
	dig   digest.Tokens // signs the /d/ links of the Digest page, registered beside Confirm
}

const heldBody = "Subject: invoice 42\r\n\r\nthe secret words of the held message\r\n"

func newConfirmEnv(t testing.TB, minWait time.Duration) *confirmEnv {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	up := testenv.NewUpstream(t, "tcp4")
	pool, err := upstream.New(upstream.Options{Servers: []string{up.Addr}, TLS: "none", HeloName: "mx.example.jp"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	log := testenv.Logger(t)
	rel := &release.Releaser{Store: st, Upstream: pool, Scope: "sender", Log: log}
	c := &Confirm{Store: st, Releaser: rel, MinWait: minWait, Key: []byte("test key"), Now: time.Now, Log: log}
	mux := http.NewServeMux()
	c.Register(mux)
	dig := digest.Tokens{Key: []byte("digest key")}
	(&Digest{Store: st, Releaser: rel, Tokens: dig, MinWait: minWait, Key: []byte("test key"), Now: time.Now, Log: log}).Register(mux)
	l := lists.New()
	ws := &Server{opts: Options{AppHost: "mx.example.jp"}, deps: Deps{Lists: l, App: mux, Logger: log, Now: time.Now}, log: log}
	srv := httptest.NewServer(ws.Handler())
	t.Cleanup(srv.Close)

	token, _ := challenge.NewToken()
	if err := st.Put(t.Context(), store.Entry{List: store.Audir, Key: challenge.HashToken(token), Target: "alice@sender.test", Expires: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	for _, rcpt := range []string{"taro@example.jp", "hanako@example.jp"} {
		h := store.Held{From: "alice@sender.test", Subject: "invoice 42", Size: int64(len(heldBody)), Expires: time.Now().Add(time.Hour), Rcpts: []store.HeldRcpt{{Rcpt: rcpt, Owner: rcpt, Reason: "unknown-sender"}}}
		if err := st.Hold(t.Context(), &h, []byte(heldBody)); err != nil {
			t.Fatal(err)
		}
	}
	return &confirmEnv{st: st, up: up, lists: l, srv: srv, token: token, dig: dig}
}

func (e *confirmEnv) do(t testing.TB, method, path string, form url.Values, lang string) (int, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, e.srv.URL+path, body)
	req.Host = "mx.example.jp"
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if lang != "" {
		req.Header.Set("Accept-Language", lang)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var viewField = regexp.MustCompile(`name="v" value="([^"]+)"`)

func TestConfirmFlow(t *testing.T) {
	e := newConfirmEnv(t, 300*time.Millisecond)
	code, page := e.do(t, "GET", "/c/"+e.token, nil, "ja,en;q=0.5")
	if code != 200 || !strings.Contains(page, "メール送信の確認") || !strings.Contains(page, "t***@example.jp") || !strings.Contains(page, "h***@example.jp") {
		t.Fatalf("GET: %d\n%s", code, page)
	}
	if strings.Contains(page, "taro@") || strings.Contains(page, "invoice") || strings.Contains(page, "secret words") {
		t.Fatalf("the page shows an unmasked recipient or the held message:\n%s", page)
	}
	if n := len(e.up.Messages()); n != 0 {
		t.Fatalf("a GET released %d messages", n)
	}
	m := viewField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no view token in the form:\n%s", page)
	}
	// A scanner: POST at once, or with no view token, or a forged one.
	for _, v := range []string{m[1], "", "AAAA", strings.Repeat("A", 54)} {
		code, page = e.do(t, "POST", "/c/"+e.token, url.Values{"v": {v}}, "en")
		if code != 200 || !strings.Contains(page, "Please press the button again") {
			t.Fatalf("POST with view %q: %d\n%s", v, code, page)
		}
	}
	if n := len(e.up.Messages()); n != 0 {
		t.Fatalf("an early POST released %d messages", n)
	}
	time.Sleep(350 * time.Millisecond)
	code, page = e.do(t, "POST", "/c/"+e.token, url.Values{"v": {m[1]}}, "en")
	if code != 200 || !strings.Contains(page, "has been delivered") || !strings.Contains(page, "<dd>2</dd>") {
		t.Fatalf("POST after the wait: %d\n%s", code, page)
	}
	msgs := e.up.Wait(t, 2)
	for _, msg := range msgs {
		if !bytes.Equal(msg.Data, []byte(heldBody)) || msg.From != "alice@sender.test" {
			t.Errorf("released message changed: %s %q", msg.From, msg.Data)
		}
	}
	if held, _ := e.st.HeldList(t.Context(), store.HeldQuery{}); len(held) != 0 {
		t.Errorf("still held after confirm: %+v", held)
	}
	relay, _ := e.st.Entries(t.Context(), store.Relay, store.Query{})
	if len(relay) != 1 || relay[0].Key != "alice@sender.test" {
		t.Errorf("RELAY = %+v, want the sender", relay)
	}
	audir, _ := e.st.Entries(t.Context(), store.Audir, store.Query{})
	if len(audir) != 1 || !strings.HasPrefix(audir[0].Note, "confirmed ") {
		t.Errorf("AUDIR not marked confirmed: %+v", audir)
	}
}

func TestConfirmUnknownAndExpired(t *testing.T) {
	e := newConfirmEnv(t, 0)
	for _, path := range []string{"/c/" + strings.Repeat("B", 43), "/c/short", "/c/" + strings.Repeat("%00", 30)} {
		if code, page := e.do(t, "GET", path, nil, ""); code != 404 || !strings.Contains(page, "not valid") {
			t.Errorf("GET %s: %d\n%s", path, code, page)
		}
	}
	old, _ := challenge.NewToken()
	e.st.Put(t.Context(), store.Entry{List: store.Audir, Key: challenge.HashToken(old), Target: "bob@sender.test", Expires: time.Now().Add(-time.Minute)})
	if code, page := e.do(t, "GET", "/c/"+old, nil, "ja"); code != 410 || !strings.Contains(page, "有効期限") {
		t.Errorf("expired token: %d\n%s", code, page)
	}
	if code, _ := e.do(t, "POST", "/c/"+old, url.Values{"v": {"x"}}, ""); code != 410 {
		t.Errorf("POST to an expired token: %d", code)
	}
}

func TestGuard(t *testing.T) {
	e := newConfirmEnv(t, 0)
	if code, body := e.do(t, "GET", "/healthz", nil, ""); code != 200 || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	req, _ := http.NewRequest("GET", e.srv.URL+"/c/"+e.token, nil)
	req.Host = "other.host.test"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("unknown Host: %d, want 404", resp.StatusCode)
	}
	e.lists.Load([]store.Entry{{List: store.Black, Key: "127.0.0.1"}}, 1)
	if code, _ := e.do(t, "GET", "/c/"+e.token, nil, ""); code != 403 {
		t.Errorf("blacklisted client: %d, want 403", code)
	}
}

// FuzzViewToken: no view token is accepted for a page it was not issued for.
func FuzzViewToken(f *testing.F) {
	f.Add("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "x")
	f.Add("../../etc/passwd", "%00")
	f.Fuzz(func(t *testing.T, token, view string) {
		if _, err := challenge.ParseToken(token); err != nil {
			return
		}
		if _, ok := (viewTokens{[]byte("k")}).check(challenge.HashToken(token), view); ok {
			t.Fatalf("forged view token %q accepted", view)
		}
	})
}

// A proxy-style request at the web server is a probe: 400.
func TestProxyProbeRefused(t *testing.T) {
	e := newConfirmEnv(t, 0)
	proxyURL, _ := url.Parse(e.srv.URL)
	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL)}}
	resp, err := client.Get("http://other.example.test/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("absolute-form request for another host: %d, want 400", resp.StatusCode)
	}
}
