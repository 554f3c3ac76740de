package interop

import (
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"
)

// TestAPIWithCurl: the real binary, curl and smtp-sink. `sekisho token add` prints a token
// that curl uses to list and release held mail and to whitelist a sender, whose next mail
// then passes at once; no token, and a deleted one, get 401.
func TestAPIWithCurl(t *testing.T) {
	requireBin(t, "curl", "curl")
	sk := startSink(t, "127.0.0.1")
	s := startSekisho(t, sekishoConf{servers: []string{sk.addr}, web: true})
	token := strings.TrimSpace(s.mustCLI("token", "add", "ops"))
	_, port, _ := net.SplitHostPort(s.webAddr())
	base := "https://mx.interop.test:" + port + "/api/v1/"
	curl := func(args ...string) (int, string) {
		t.Helper()
		return runCurl(t, append([]string{"--resolve", "mx.interop.test:" + port + ":127.0.0.1"}, args...)...)
	}
	auth := []string{"-H", "Authorization: Bearer " + token}

	const stranger = "stranger@elsewhere.test"
	send(t, s.addr(), stranger, "api-held").mustPass(t)
	code, body := curl(append(auth, base+"held")...)
	var held struct{ Held []struct{ ID, From string } }
	if err := json.Unmarshal([]byte(body), &held); code != 200 || err != nil || len(held.Held) != 1 || held.Held[0].From != stranger {
		t.Fatalf("GET held: %d %s (%v)", code, body, err)
	}
	if code, body := curl(append(auth, "-X", "POST", base+"held/"+held.Held[0].ID+"/release")...); code != 200 || !strings.Contains(body, `"released":1`) {
		t.Fatalf("release: %d %s", code, body)
	}
	sk.waitMessage(t, "marker api-held", 10*time.Second)
	if n := s.heldCount(); n != 0 {
		t.Errorf("%d held after the release, want 0", n)
	}

	const pal = "pal@partner.test"
	if code, body := curl(append(auth, "-H", "Content-Type: application/json", "--data", `{"entry": "`+pal+`", "kind": "from"}`, base+"lists/white")...); code != 201 {
		t.Fatalf("add white: %d %s", code, body)
	}
	send(t, s.addr(), pal, "api-white").mustPass(t)
	sk.waitMessage(t, "marker api-white", 10*time.Second)

	if code, _ := curl(base + "held"); code != 401 {
		t.Errorf("no token: %d, want 401", code)
	}
	if out := s.mustCLI("token", "list"); !strings.Contains(out, "ops") || strings.Contains(out, "never") || strings.Contains(out, token) {
		t.Errorf("token list after use:\n%s", out)
	}
	s.mustCLI("token", "del", "ops")
	if code, _ := curl(append(auth, base+"held")...); code != 401 {
		t.Errorf("deleted token: %d, want 401", code)
	}
}
