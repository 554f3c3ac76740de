package main

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sekisho/sekisho/internal/api"
	"github.com/sekisho/sekisho/internal/store/sqlite"
)

// sekisho token add prints a token once; list shows name, owner and use, never the token;
// the token printed works against the API with the rights asked for.
func TestTokenCommands(t *testing.T) {
	cfg := testConfig(t)
	if code, _, stderr := sekisho(t, "pw\n", "user", "add", "taro@example.jp", "-password-stdin", "-config", cfg); code != 0 {
		t.Fatalf("user add: %s", stderr)
	}
	code, adminTok, stderr := sekisho(t, "", "token", "add", "deploy", "-config", cfg)
	if code != 0 || !strings.HasPrefix(adminTok, api.TokenPrefix) || strings.Count(adminTok, "\n") != 1 || !strings.Contains(stderr, "shown this once") {
		t.Fatalf("token add: exit %d, stdout %q, stderr %q", code, adminTok, stderr)
	}
	adminTok = strings.TrimSpace(adminTok)
	// Flags before the arguments, the owner's address in any case.
	code, taroTok, stderr := sekisho(t, "", "token", "-owner", "Taro@Example.jp", "-config", cfg, "add", "taro-script")
	if code != 0 {
		t.Fatalf("token add -owner: exit %d: %s", code, stderr)
	}
	taroTok = strings.TrimSpace(taroTok)
	if len(taroTok) < len(api.TokenPrefix)+22 || taroTok == adminTok { // 22 base64 characters are 128 bits
		t.Fatalf("tokens %q and %q: too short or equal", adminTok, taroTok)
	}

	code, out, _ := sekisho(t, "", "token", "list", "-config", cfg)
	if code != 0 || !strings.Contains(out, "deploy") || !strings.Contains(out, "(admin)") || !strings.Contains(out, "taro-script") ||
		!strings.Contains(out, "taro@example.jp") || strings.Count(out, "never") != 2 {
		t.Fatalf("token list: exit %d:\n%s", code, out)
	}
	if strings.Contains(out, adminTok[len(api.TokenPrefix):len(api.TokenPrefix)+8]) || strings.Contains(out, api.HashToken(adminTok)[:16]) {
		t.Fatalf("token list shows a token or its hash:\n%s", out)
	}

	// The tokens as printed open the API: the admin's everything, taro's his own only.
	st, err := sqlite.Open(t.Context(), filepath.Join(filepath.Dir(cfg), "sekisho.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	srv := httptest.NewServer(api.New(api.Options{}, api.Deps{Store: st}))
	defer srv.Close()
	status := func(tok, path string) int {
		req, _ := http.NewRequestWithContext(t.Context(), "GET", srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := status(adminTok, "/api/v1/users"); got != 200 {
		t.Errorf("admin token on users: %d", got)
	}
	if got := status(taroTok, "/api/v1/users"); got != 403 {
		t.Errorf("taro's token on users: %d, want 403", got)
	}
	if got := status(taroTok, "/api/v1/lists/alias"); got != 200 {
		t.Errorf("taro's token on his aliases: %d", got)
	}
	if _, out, _ := sekisho(t, "", "token", "list", "-config", cfg); strings.Count(out, "never") != 0 {
		t.Errorf("token list after use still says never:\n%s", out)
	}

	if code, _, stderr := sekisho(t, "", "token", "del", "deploy", "-config", cfg); code != 0 {
		t.Fatalf("token del: exit %d: %s", code, stderr)
	}
	if got := status(adminTok, "/api/v1/users"); got != 401 {
		t.Errorf("deleted token: %d, want 401", got)
	}
}

func TestTokenBadInput(t *testing.T) {
	cfg := testConfig(t)
	if code, _, stderr := sekisho(t, "", "token", "add", "one", "-config", cfg); code != 0 {
		t.Fatalf("token add: %s", stderr)
	}
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"token", "-config", cfg}, 2, "token add|del|list"},
		{[]string{"token", "add", "-config", cfg}, 2, "needs one NAME"},
		{[]string{"token", "add", "two words", "-config", cfg}, 2, "without spaces"},
		{[]string{"token", "frob", "x", "-config", cfg}, 2, `unknown token command "frob"`},
		{[]string{"token", "add", "one", "-config", cfg}, 1, "token one exists"},
		{[]string{"token", "add", "two", "-owner", "nobody@example.jp", "-config", cfg}, 1, "no such user"},
		{[]string{"token", "add", "two", "-owner", "a@@b", "-config", cfg}, 1, `-owner "a@@b"`},
		{[]string{"token", "del", "nosuch", "-config", cfg}, 1, "no token nosuch"},
		{[]string{"token", "del", "one", "-owner", "x@example.jp", "-config", cfg}, 2, "-owner is for token add"},
	}
	for _, tt := range tests {
		code, _, stderr := sekisho(t, "", tt.args...)
		if code != tt.code || !strings.Contains(stderr, tt.want) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("sekisho %v: exit %d, stderr %q; want exit %d and one line with %q", tt.args, code, stderr, tt.code, tt.want)
		}
	}
}
