package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strings"
	"text/tabwriter"

	"github.com/sekisho/sekisho/internal/release"
	"github.com/sekisho/sekisho/internal/server"
	"github.com/sekisho/sekisho/internal/store"
)

func cmdQueue(ctx context.Context, args []string, e env) error {
	fs := flag.NewFlagSet("queue", flag.ContinueOnError)
	path := configFlag(fs)
	owner := fs.String("owner", "", "list: only mail held for this user")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usageErr("queue list|show|release|delete [ID]")
	}
	verb := pos[0]
	switch verb {
	case "list":
		if len(pos) != 1 {
			return usageErr("queue list takes no ID")
		}
	case "show", "release", "delete":
		if len(pos) != 2 {
			return usageErr("queue %s needs one ID", verb)
		}
	default:
		return usageErr("unknown queue command %q (want list, show, release or delete)", verb)
	}
	cfg, st, err := openStore(ctx, *path, e)
	if err != nil {
		return err
	}
	defer st.Close()
	notFound := func(err error) error {
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("no held message %s", pos[1])
		}
		return err
	}

	switch verb {
	case "list":
		held, err := st.HeldList(ctx, store.HeldQuery{Owner: strings.ToLower(*owner)})
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(e.stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(w, "ID\tRECEIVED\tSIZE\tFROM\tTO\tREASON\tSUBJECT")
		for _, h := range held {
			var to, why []string
			for _, r := range h.Rcpts {
				to, why = append(to, r.Rcpt), append(why, r.Reason)
			}
			fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%s\t%s\n", h.ID, h.Received.Local().Format("2006-01-02 15:04"), h.Size,
				dash(h.From), strings.Join(to, ","), strings.Join(why, ","), h.Subject)
		}
		return w.Flush()
	case "show":
		h, data, err := st.HeldGet(ctx, pos[1])
		if err != nil {
			return notFound(err)
		}
		fmt.Fprintf(e.stdout, "ID: %s\nReceived: %s\nExpires: %s\nClient: %s (%s)\nFrom: %s\n", h.ID,
			h.Received.Local().Format("2006-01-02 15:04:05"), h.Expires.Local().Format("2006-01-02 15:04:05"), h.ClientIP, h.Helo, dash(h.From))
		for _, r := range h.Rcpts {
			fmt.Fprintf(e.stdout, "To: %s (%s)\n", r.Rcpt, r.Reason)
		}
		fmt.Fprintf(e.stdout, "Size: %d\n\n", h.Size)
		_, err = e.stdout.Write(data)
		return err
	case "delete":
		if err := st.HeldRemove(ctx, pos[1], nil); err != nil {
			return notFound(err)
		}
		fmt.Fprintf(e.stdout, "held message %s deleted\n", pos[1])
		return nil
	}
	pool, err := server.NewUpstream(cfg, newLogger(cfg, e.stderr).With("component", "upstream"), nil)
	if err != nil {
		return err
	}
	defer pool.Close()
	r := release.Releaser{Store: st, Upstream: pool, Scope: cfg.Antispam.ConfirmScope, Log: slog.New(slog.DiscardHandler)}
	n, err := r.Release(ctx, pos[1], nil)
	if err != nil {
		return notFound(err)
	}
	fmt.Fprintf(e.stdout, "held message %s released to %d recipient(s)\n", pos[1], n)
	return nil
}
