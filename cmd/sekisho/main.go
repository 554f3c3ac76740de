// Command sekisho is an integrated security proxy: an anti-spam SMTP proxy in front of the
// real mail servers, with the lists and tools to run it. See README.md and SPEC §7.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/sekisho/sekisho/internal/config"
	"github.com/sekisho/sekisho/internal/server"
	"github.com/sekisho/sekisho/internal/store"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `usage: sekisho COMMAND [ARGS] [-config FILE]

commands:
  serve    run every configured module
  check    validate the configuration and exit
  demo     run the real server on a demo configuration with an in-process mailbox
  user     add|del|passwd|list ADDRESS [-admin] [-password-stdin]
  list     show|add|del alias|white|decoy|black|relay|audir [ENTRY] [-owner A] [-kind from|to] [-ttl D] [-note T] [-target M]
  queue    list|show|release|delete [ID]
  token    add|del|list [NAME] [-owner ADDRESS]  (API tokens; the token is printed once)
  version  print the version
`

// errUsage marks a command-line mistake: the message is printed with the usage hint.
var errUsage = errors.New("usage")

// env is what a command runs with.
type env struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

func main() {
	e := env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr}
	os.Exit(run(context.Background(), os.Args[1:], e))
}

// run executes one command and returns the exit status.
func run(ctx context.Context, args []string, e env) int {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, usage)
		return 2
	}
	commands := map[string]func(context.Context, []string, env) error{
		"serve": cmdServe, "check": cmdCheck, "demo": cmdDemo, "user": cmdUser, "list": cmdList, "queue": cmdQueue, "token": cmdToken,
		"version": func(context.Context, []string, env) error { fmt.Fprintln(e.stdout, "sekisho", version); return nil },
	}
	name := args[0]
	if name == "-h" || name == "-help" || name == "--help" || name == "help" {
		fmt.Fprint(e.stdout, usage)
		return 0
	}
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(e.stderr, "sekisho: unknown command %q (run sekisho help)\n", name)
		return 2
	}
	if err := cmd(ctx, args[1:], e); err != nil {
		msg := err.Error()
		if errors.Is(err, errUsage) {
			msg = strings.TrimPrefix(msg, "usage: ")
		}
		fmt.Fprintf(e.stderr, "sekisho %s: %s\n", name, msg)
		if errors.Is(err, errUsage) {
			return 2
		}
		return 1
	}
	return 0
}

// usageErr returns a command-line error.
func usageErr(format string, a ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, a...))
}

// parseFlags parses flags that may stand before, between or after positional arguments
// (sekisho list add white a@b.test -kind from -config F) and returns the positionals.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, usageErr("%v", err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// configFlag adds -config to fs.
func configFlag(fs *flag.FlagSet) *string {
	return fs.String("config", "sekisho.toml", "configuration file")
}

func loadConfig(path string) (*config.Config, error) {
	return config.Load(path)
}

// openStore loads the configuration at path and opens its store; the caller closes it.
func openStore(ctx context.Context, path string, e env) (*config.Config, store.Store, error) {
	cfg, err := loadConfig(path)
	if err != nil {
		return nil, nil, err
	}
	st, err := server.OpenStore(ctx, cfg, newLogger(cfg, e.stderr))
	if err != nil {
		return nil, nil, err
	}
	return cfg, st, nil
}

// newLogger returns the logger the configuration asks for.
func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	switch cfg.Log.Level {
	case "debug":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
