package server

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/sekisho/sekisho/internal/config"
	"github.com/sekisho/sekisho/internal/store"
	"github.com/sekisho/sekisho/internal/testenv"
)

func parse(t *testing.T, text string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("test.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func baseConfig(dir, listen, upstream string) string {
	return fmt.Sprintf(`hostname = "mx.example.jp"
data_dir = %q
[smtp]
local_domains = ["example.jp"]
relay_networks = []
[[smtp.listener]]
address = %q
tls = "none"
[smtp.upstream]
servers = [%q]
tls = "none"
`, dir, listen, upstream)
}

// A listener that cannot bind stops everything before it starts, and says which one.
func TestBindFailureNamesListener(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cfg := parse(t, baseConfig(t.TempDir(), busy.Addr().String(), "127.0.0.1:1"))
	_, err = New(t.Context(), cfg, testenv.Logger(t))
	if err == nil || !strings.Contains(err.Error(), "smtp.listener[0].address "+busy.Addr().String()) {
		t.Fatalf("New = %v, want an error naming smtp.listener[0].address", err)
	}
}

// The whole server: a whitelisted sender's mail reaches the upstream, a list change made
// through the store (as the CLI does) reaches the running server, and Run returns when its
// context ends.
func TestServeAndStop(t *testing.T) {
	up := testenv.NewUpstream(t, "tcp4")
	cfg := parse(t, baseConfig(t.TempDir(), "127.0.0.1:0", up.Addr))
	srv, err := New(t.Context(), cfg, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx, time.Second) }()

	if err := srv.Store().Put(t.Context(), store.Entry{List: store.White, Key: "friend@partner.test", Kind: store.KindFrom}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Second)
	for !srv.Lists().WhiteFrom("friend@partner.test", "taro@example.jp") {
		if time.Now().After(deadline) {
			t.Fatal("store change not followed within 1 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	addr := srv.SMTPAddrs()[0].String()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SendMail("friend@partner.test", []string{"taro@example.jp"}, strings.NewReader("Subject: hi\r\n\r\nhello\r\n")); err != nil {
		t.Fatal(err)
	}
	c.Quit()
	up.Wait(t, 1)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

// Reload changes the policy for new sessions without a restart.
func TestReload(t *testing.T) {
	up := testenv.NewUpstream(t, "tcp4")
	dir := t.TempDir()
	cfg := parse(t, baseConfig(dir, "127.0.0.1:0", up.Addr))
	srv, err := New(t.Context(), cfg, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	stopped := make(chan struct{})
	go func() { srv.Run(ctx, time.Second); close(stopped) }()
	defer func() { cancel(); <-stopped }()
	addr := srv.SMTPAddrs()[0].String()
	send := func() {
		t.Helper()
		c, err := smtp.Dial(addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Quit()
		if err := c.SendMail("stranger@else.test", []string{"taro@example.jp"}, strings.NewReader("Subject: x\r\n\r\ny\r\n")); err != nil {
			t.Fatal(err)
		}
	}
	send()
	if held, _ := srv.Store().HeldList(t.Context(), store.HeldQuery{}); len(held) != 1 {
		t.Fatalf("before reload: %d held, want 1", len(held))
	}
	next := parse(t, strings.Replace(baseConfig(dir, "127.0.0.1:0", up.Addr), "relay_networks = []", `relay_networks = ["127.0.0.1/32"]`, 1))
	srv.Reload(next)
	send()
	up.Wait(t, 1) // now trusted: passes
}
