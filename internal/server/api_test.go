package server

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/api"
	"github.com/sekisho/sekisho/internal/stats"
	"github.com/sekisho/sekisho/internal/store"
	"github.com/sekisho/sekisho/internal/store/sqlite"
	"github.com/sekisho/sekisho/internal/testenv"
)

// The API is part of the built-in app: with curl over HTTPS, a held message (held silently:
// its sender has no SPF) is listed and released to the upstream by an admin token, and
// nobody without a token gets in. The decision counts given by SetDecisions are in the
// store's minute buckets once the server stopped.
func TestAPIAndDecisionCounts(t *testing.T) {
	up := testenv.NewUpstream(t, "tcp4")
	dns := testenv.NewDNS(t)
	dir := t.TempDir()
	cfg := parse(t, baseConfig(dir, "127.0.0.1:0", up.Addr)+fmt.Sprintf(`[dns]
resolver = %q
timeout = "2s"
[web]
listen = ["127.0.0.1:0"]
`, dns.Addr))
	srv, err := New(t.Context(), cfg, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	srv.SetDecisions(func() map[string]int64 { return map[string]int64{stats.Pass: 3, stats.Held: 1} })
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { srv.Run(ctx, time.Second); close(done) }()
	stopped := false
	defer func() {
		if !stopped {
			cancel()
			<-done
		}
	}()

	sendFrom(t, srv, "bob@nospf.test", "Subject: held\r\n\r\nplease release me\r\n")
	token, hash, err := api.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Store().PutToken(t.Context(), store.Token{Name: "ops", Hash: hash}); err != nil {
		t.Fatal(err)
	}
	httpsAddrs, _ := srv.web.Addrs()
	_, port, _ := net.SplitHostPort(httpsAddrs[0].String())
	base := "https://mx.example.jp:" + port + "/api/v1/"
	curl := func(args ...string) (int, string) {
		t.Helper()
		return curlStatus(t, append([]string{"-k", "--resolve", "mx.example.jp:" + port + ":127.0.0.1"}, args...)...)
	}

	code, body := curl("-H", "Authorization: Bearer "+token, base+"held")
	if code != 200 || !strings.Contains(body, `"from":"bob@nospf.test"`) {
		t.Fatalf("GET held: %d %s", code, body)
	}
	held, err := srv.Store().HeldList(t.Context(), store.HeldQuery{})
	if err != nil || len(held) != 1 {
		t.Fatalf("held in the store: %v %v", held, err)
	}
	if code, body := curl(base + "held"); code != 401 || !strings.Contains(body, `"error"`) {
		t.Errorf("GET held without a token: %d %s", code, body)
	}
	code, body = curl("-X", "POST", "-H", "Authorization: Bearer "+token, base+"held/"+held[0].ID+"/release")
	if code != 200 || !strings.Contains(body, `"released":1`) {
		t.Fatalf("release: %d %s", code, body)
	}
	if m := up.Wait(t, 1)[0]; m.From != "bob@nospf.test" || !strings.Contains(string(m.Data), "please release me") {
		t.Errorf("upstream got %q from %s", m.Data, m.From)
	}
	// A list entry made through the API is in force at once: the released sender was added
	// to RELAY, a white entry added now shows in the lists the SMTP proxy reads.
	code, body = curl("-X", "POST", "-H", "Authorization: Bearer "+token, "--data", `{"entry": "friend@partner.test"}`, base+"lists/white")
	if code != 201 {
		t.Fatalf("add white: %d %s", code, body)
	}
	if !srv.Lists().WhiteFrom("friend@partner.test", "taro@example.jp") || !srv.Lists().RelaySender("bob@nospf.test") {
		t.Error("the lists in memory do not have the API's entries")
	}

	cancel()
	<-done
	stopped = true
	st, err := sqlite.Open(t.Context(), filepath.Join(dir, "sekisho.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	counts, err := st.Stats(t.Context(), time.Now().Add(-time.Hour), time.Now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	var pass, heldN int64
	for _, c := range counts {
		switch c.Name {
		case stats.Pass:
			pass += c.Count
		case stats.Held:
			heldN += c.Count
		}
	}
	if pass != 3 || heldN != 1 {
		t.Errorf("decision counts after the server stopped: pass %d held %d, want 3 and 1", pass, heldN)
	}
}
