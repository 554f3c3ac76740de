package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/sekisho/sekisho/internal/config"
	"github.com/sekisho/sekisho/internal/demo"
	"github.com/sekisho/sekisho/internal/password"
	"github.com/sekisho/sekisho/internal/server"
	"github.com/sekisho/sekisho/internal/store"
	"github.com/sekisho/sekisho/internal/webauth"
)

// demoConfig is the demo's configuration: loopback ports, data in a temporary directory,
// an in-process mailbox as the upstream server.
const demoConfig = `hostname = "localhost"
data_dir = %q

[smtp]
local_domains = ["example.jp"]
relay_networks = ["127.0.0.1/32", "::1/128"]

[[smtp.listener]]
address = %q
tls = "starttls"

[smtp.upstream]
servers = [%q]
tls = "none"

[antispam]
# No DNS in a demo: every unknown sender counts as authenticated and is challenged.
sender_auth = "off"
base_url = %q

[web]
listen = [%q]
`

func cmdDemo(ctx context.Context, args []string, e env) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:2525", "SMTP address of the demo")
	webListen := fs.String("web", "127.0.0.1:8443", "HTTPS address of the confirmation and digest pages")
	pageListen := fs.String("mailbox", "127.0.0.1:8025", "HTTP address of the page that shows the mailbox (loopback)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageErr("demo takes no arguments, got %q", pos[0])
	}
	dir, err := os.MkdirTemp("", "sekisho-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfgPath := filepath.Join(dir, "sekisho.toml")

	probe := config.Default()
	log := newLogger(probe, e.stderr)
	mbox, err := demo.NewMailbox("127.0.0.1:0", log)
	if err != nil {
		return err
	}
	go mbox.Serve()
	defer mbox.Close()

	// The mailbox page and the web server bind first, so that port 0 works and the
	// configuration names the real port.
	pageLn, err := net.Listen("tcp", *pageListen)
	if err != nil {
		return fmt.Errorf("-mailbox %s: %w", *pageListen, err)
	}
	defer pageLn.Close()
	if ip := pageLn.Addr().(*net.TCPAddr).IP; !ip.IsLoopback() {
		return usageErr("-mailbox %s: the mailbox page serves loopback only", *pageListen)
	}
	webLn, err := net.Listen("tcp", *webListen)
	if err != nil {
		return fmt.Errorf("-web %s: %w", *webListen, err)
	}
	webAddr := webLn.Addr().String()
	webLn.Close()
	_, webPort, _ := net.SplitHostPort(webAddr)
	baseURL := "https://localhost:" + webPort
	text := fmt.Sprintf(demoConfig, filepath.Join(dir, "data"), *listen, mbox.Addr(), baseURL, webAddr)
	if err := os.WriteFile(cfgPath, []byte(text), 0o600); err != nil {
		return err
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return err
	}
	srv, err := server.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	err = srv.Store().Put(ctx, store.Entry{List: store.White, Key: "friend@partner.test", Kind: store.KindFrom, Note: "demo"})
	if err == nil {
		err = srv.Store().Put(ctx, store.Entry{List: store.Decoy, Key: "trap@example.jp", Note: "demo"})
	}
	// taro, the demo's user, may log in to the portal and, from the loopback, the admin pages.
	demoPassword := webauth.RandomToken()[:16]
	if err == nil {
		var hash string
		if hash, err = password.Hash(demoPassword); err == nil {
			err = srv.Store().PutUser(ctx, store.User{Address: "taro@example.jp", PasswordHash: hash, Admin: true})
		}
	}
	if err != nil {
		return err
	}
	page := &http.Server{
		Handler:           &demo.Page{Mailbox: mbox, BaseURL: baseURL, Digest: srv.SendDigestNow, Log: log},
		ReadHeaderTimeout: 10 * time.Second,
	}
	go page.Serve(pageLn)
	defer page.Close()
	fmt.Fprintf(e.stdout, `sekisho demo: SMTP on %[1]s, mail that passes goes to an in-process mailbox.
Mailbox page: http://%[3]s/ (what the mailbox received: passed and released mail, challenges,
digests; the links in them open sekisho's pages at %[4]s, a self-signed certificate).
Configuration: %[2]s (removed on exit). Try, from another terminal:

  swaks --server %[1]s --local-interface 127.0.0.2 -f friend@partner.test -t taro@example.jp   # whitelisted: delivered
  swaks --server %[1]s --local-interface 127.0.0.2 -f stranger@else.test -t taro@example.jp    # unknown: held, challenged
      # the challenge appears on the mailbox page: open its link, press the button: delivered
  swaks --server %[1]s --local-interface 127.0.0.2 -f receipts@shop.test -t taro@example.jp --header "Auto-Submitted: auto-generated"
      # automated: held, never challenged; "Send the digest now" on the mailbox page lists it
  sekisho queue list -config %[2]s
  sekisho queue release ID -config %[2]s
  swaks --server %[1]s --local-interface 127.0.0.3 -f s@spam.test -t trap@example.jp          # decoy: 127.0.0.3 blacklisted
  sekisho list show black -config %[2]s

Portal and admin pages: %[4]s/login as taro@example.jp, password %[5]s
(make an alias, whitelist a sender, release held mail; /admin/ for the charts and the lists).

Stop with Ctrl-C.
`, srv.SMTPAddrs()[0], cfgPath, pageLn.Addr(), baseURL, demoPassword)
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return srv.Run(ctx, shutdownGrace)
}
