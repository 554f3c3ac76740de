package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/sekisho/sekisho/internal/config"
	"github.com/sekisho/sekisho/internal/demo"
	"github.com/sekisho/sekisho/internal/server"
	"github.com/sekisho/sekisho/internal/store"
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
`

func cmdDemo(ctx context.Context, args []string, e env) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:2525", "SMTP address of the demo")
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

	text := fmt.Sprintf(demoConfig, filepath.Join(dir, "data"), *listen, mbox.Addr())
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
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, `sekisho demo: SMTP on %[1]s, mail that passes goes to an in-process mailbox.
Configuration: %[2]s (removed on exit). Try, from another terminal:

  swaks --server %[1]s --local-interface 127.0.0.2 -f friend@partner.test -t taro@example.jp   # whitelisted: delivered
  swaks --server %[1]s --local-interface 127.0.0.2 -f stranger@else.test -t taro@example.jp    # unknown: held
  sekisho queue list -config %[2]s
  sekisho queue release ID -config %[2]s
  swaks --server %[1]s --local-interface 127.0.0.3 -f s@spam.test -t trap@example.jp          # decoy: 127.0.0.3 blacklisted
  sekisho list show black -config %[2]s

Stop with Ctrl-C.
`, srv.SMTPAddrs()[0], cfgPath)
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return srv.Run(ctx, shutdownGrace)
}
