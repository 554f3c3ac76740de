package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/sekisho/sekisho/internal/logbuf"
	"github.com/sekisho/sekisho/internal/server"
)

// GC defaults of serve, each unless its environment variable says otherwise: collect when
// the heap has grown by gcPercent (Go's default is 100; a proxy's live heap is small and
// most of its garbage is per-message buffers, so collecting less often saves about a fifth
// of the CPU per message), and collect harder near gcSoftLimit, so that many idle sessions
// cannot make the heap grow four times over.
const (
	gcPercent   = 400
	gcSoftLimit = 512 << 20
)

// minProcs is the fewest Ps (GOMAXPROCS) serve runs with when no CPU quota limits it. The
// proxies spend most of their time in system calls, and on a host with few cores shared
// with other processes (the mail server, the load) a P whose thread sits in a long write(2)
// or was descheduled holds up the goroutines queued on it; more Ps than cores let the
// kernel run the rest. On 2 cores with wrk and nginx beside it: reverse proxy 1 KB +21%,
// 64 KB +6% with its p99 from 26 to 11 ms, forward proxy +12%; 8 Ps against 4 gave the
// reverse proxy 16–34% more. SMTP pays for it: with 2 Ps it passed 1–40% more messages
// (noisy; idle Ps cost thread wake-ups), yet it stays above its 0.5× target with 8. Under a
// CPU quota (Go's default then is below the CPU count) more Ps would only spend the quota
// sooner, so the default stays.
const minProcs = 8

// tuneRuntime applies the GC and scheduler defaults of serve.
func tuneRuntime() {
	if os.Getenv("GOMAXPROCS") == "" && runtime.GOMAXPROCS(0) == runtime.NumCPU() && runtime.NumCPU() < minProcs {
		runtime.GOMAXPROCS(minProcs)
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(gcSoftLimit)
	}
}

// logFlushInterval is the longest a log line of serve waits before it is written.
const logFlushInterval = 100 * time.Millisecond

// shutdownGrace is how long transactions in progress may take after SIGTERM.
const shutdownGrace = 30 * time.Second

func cmdServe(ctx context.Context, args []string, e env) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	path := configFlag(fs)
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageErr("serve takes no arguments, got %q", pos[0])
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		return err
	}
	logs := logbuf.New(e.stderr, logFlushInterval)
	defer logs.Close()
	log := newLogger(cfg, logs)
	tuneRuntime()
	srv, err := server.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	srv.SetVersion(version)
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second signal kills the process the default way
	}()
	log.Info("sekisho started", "version", version, "config", *path, "hostname", cfg.Hostname, "procs", runtime.GOMAXPROCS(0))
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
			}
			next, err := loadConfig(*path)
			if err != nil { // one line; the running configuration stays
				log.Error("reload refused, keeping the running configuration", "err", strings.ReplaceAll(err.Error(), "\n", "; "))
				continue
			}
			srv.Reload(next)
		}
	}()
	return srv.Run(ctx, shutdownGrace)
}

func cmdCheck(_ context.Context, args []string, e env) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	path := configFlag(fs)
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageErr("check takes no arguments, got %q", pos[0])
	}
	if _, err := loadConfig(*path); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s: ok\n", *path)
	return nil
}
