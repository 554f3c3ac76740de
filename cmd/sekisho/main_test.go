package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testConfig writes a minimal configuration into a temporary directory.
func testConfig(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "sekisho.toml")
	cfg := fmt.Sprintf(`hostname = "mx.example.jp"
data_dir = %q

[smtp]
local_domains = ["example.jp"]
`, dir)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// sekisho runs one command and returns its exit status, standard output and standard error.
func sekisho(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, env{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errOut})
	return code, out.String(), errOut.String()
}

func TestListCommands(t *testing.T) {
	cfg := testConfig(t)
	// Flags after the positional arguments, as SPEC §7 allows.
	if code, _, stderr := sekisho(t, "", "list", "add", "white", "Friend@Partner.test", "-kind", "from", "-owner", "taro@example.jp", "-config", cfg); code != 0 {
		t.Fatalf("list add white: exit %d: %s", code, stderr)
	}
	if code, _, stderr := sekisho(t, "", "-config", cfg); code == 0 {
		t.Fatalf("no command accepted: %s", stderr)
	}
	if code, _, stderr := sekisho(t, "", "list", "-config", cfg, "add", "black", "192.0.2.0/24", "-ttl", "1h"); code != 0 {
		t.Fatalf("list add black: exit %d: %s", code, stderr)
	}
	code, out, _ := sekisho(t, "", "list", "show", "white", "-config", cfg)
	if code != 0 || !strings.Contains(out, "friend@partner.test") || !strings.Contains(out, "taro@example.jp") {
		t.Fatalf("list show white: exit %d:\n%s", code, out)
	}
	code, out, _ = sekisho(t, "", "list", "show", "black", "-config", cfg)
	if code != 0 || !strings.Contains(out, "192.0.2.0/24") || !strings.Contains(out, "admin") {
		t.Fatalf("list show black: exit %d:\n%s", code, out)
	}
	if code, _, stderr := sekisho(t, "", "list", "del", "white", "friend@partner.test", "-owner", "taro@example.jp", "-config", cfg); code != 0 {
		t.Fatalf("list del: exit %d: %s", code, stderr)
	}
	if code, _, stderr := sekisho(t, "", "list", "del", "white", "friend@partner.test", "-owner", "taro@example.jp", "-config", cfg); code != 1 || !strings.Contains(stderr, "no entry") {
		t.Fatalf("second list del: exit %d: %s", code, stderr)
	}
}

func TestBadInputExitsNonZeroWithOneLine(t *testing.T) {
	cfg := testConfig(t)
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"frob"}, 2, `unknown command "frob"`},
		{[]string{"list", "add", "pink", "x", "-config", cfg}, 2, `unknown list "pink"`},
		{[]string{"list", "add", "white", "a@@b", "-config", cfg}, 1, `entry "a@@b"`},
		{[]string{"list", "add", "white", "a@b.test", "-kind", "sideways", "-config", cfg}, 2, `-kind "sideways"`},
		{[]string{"list", "add", "alias", "shop@example.jp", "-config", cfg}, 2, "an alias needs an owner"},
		{[]string{"list", "add", "black", "not an ip", "-config", cfg}, 1, "not an IP, CIDR or address"},
		{[]string{"queue", "show", "nosuchid", "-config", cfg}, 1, "no held message nosuchid"},
		{[]string{"user", "passwd", "nobody@example.jp", "-config", cfg}, 1, "no user nobody@example.jp"},
		{[]string{"check", "-config", filepath.Join(t.TempDir(), "missing.toml")}, 1, "missing.toml"},
		{[]string{"list", "show", "white", "-bogus", "-config", cfg}, 2, "flag provided but not defined: -bogus"},
	}
	for _, tt := range tests {
		code, _, stderr := sekisho(t, "", tt.args...)
		if code != tt.code || !strings.Contains(stderr, tt.want) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("sekisho %v: exit %d, stderr %q; want exit %d and one line with %q", tt.args, code, stderr, tt.code, tt.want)
		}
	}
}

func TestUserCommands(t *testing.T) {
	cfg := testConfig(t)
	if code, _, stderr := sekisho(t, "pw1\n", "user", "add", "Taro@Example.jp", "-admin", "-password-stdin", "-config", cfg); code != 0 {
		t.Fatalf("user add: exit %d: %s", code, stderr)
	}
	if code, _, stderr := sekisho(t, "pw2\n", "user", "add", "taro@example.jp", "-password-stdin", "-config", cfg); code != 1 || !strings.Contains(stderr, "exists") {
		t.Fatalf("second user add: exit %d: %s", code, stderr)
	}
	if code, _, stderr := sekisho(t, "pw2\n", "user", "passwd", "taro@example.jp", "-password-stdin", "-config", cfg); code != 0 {
		t.Fatalf("user passwd: exit %d: %s", code, stderr)
	}
	code, out, _ := sekisho(t, "", "user", "list", "-config", cfg)
	if code != 0 || !strings.Contains(out, "taro@example.jp") || !strings.Contains(out, "true") {
		t.Fatalf("user list (admin kept across passwd): exit %d:\n%s", code, out)
	}
	if code, _, stderr := sekisho(t, "", "user", "del", "taro@example.jp", "-config", cfg); code != 0 {
		t.Fatalf("user del: exit %d: %s", code, stderr)
	}
}

func TestCheck(t *testing.T) {
	cfg := testConfig(t)
	if code, out, stderr := sekisho(t, "", "check", "-config", cfg); code != 0 || !strings.Contains(out, "ok") {
		t.Fatalf("check: exit %d: %s %s", code, out, stderr)
	}
	bad := filepath.Join(t.TempDir(), "bad.toml")
	os.WriteFile(bad, []byte("hostname = \"x\"\n[smtp]\nmax_recipients = -1\nfrobnicate = true\n"), 0o600)
	code, _, stderr := sekisho(t, "", "check", "-config", bad)
	if code != 1 || !strings.Contains(stderr, "bad.toml:3: smtp.max_recipients") || !strings.Contains(stderr, "bad.toml:4: smtp.frobnicate: unknown key") {
		t.Fatalf("check of a bad file: exit %d:\n%s", code, stderr)
	}
}

// The shipped example configuration is valid.
func TestExampleConfig(t *testing.T) {
	if code, _, stderr := sekisho(t, "", "check", "-config", "../../sekisho.example.toml"); code != 0 {
		t.Fatalf("sekisho.example.toml: %s", stderr)
	}
}

// cancelOnWrite cancels once what was written contains marker.
type cancelOnWrite struct {
	bytes.Buffer
	marker string
	cancel context.CancelFunc
}

func (w *cancelOnWrite) Write(p []byte) (int, error) {
	n, err := w.Buffer.Write(p)
	if strings.Contains(w.String(), w.marker) {
		w.cancel()
	}
	return n, err
}

// The demo starts the real server with its mailbox, prints how to use it, and stops when
// its context ends (here, once it has printed how to stop it; its setup hashes a password,
// which takes a while on a loaded machine).
func TestDemo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out := &cancelOnWrite{marker: "Stop with Ctrl-C", cancel: cancel}
	var errOut bytes.Buffer
	code := run(ctx, []string{"demo", "-listen", "127.0.0.1:0", "-web", "127.0.0.1:0", "-mailbox", "127.0.0.1:0"}, env{stdin: strings.NewReader(""), stdout: out, stderr: &errOut})
	if code != 0 || !strings.Contains(out.String(), "sekisho demo: SMTP on 127.0.0.1:") || !strings.Contains(errOut.String(), "msg=stopped") {
		t.Fatalf("demo: exit %d\n%s\n%s", code, out.String(), errOut.String())
	}
}
