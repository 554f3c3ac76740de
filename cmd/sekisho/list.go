package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sekisho/sekisho/internal/lists"
	"github.com/sekisho/sekisho/internal/store"
)

func cmdList(ctx context.Context, args []string, e env) error {
	fs := flag.NewFlagSet("list", flag.ContinueOnError)
	path := configFlag(fs)
	owner := fs.String("owner", "", "owning user (alias, white)")
	kind := fs.String("kind", "", "white: from|to; relay: sender|pair")
	ttl := fs.Duration("ttl", 0, "expire after this long (e.g. 24h)")
	note := fs.String("note", "", "note")
	target := fs.String("target", "", "alias: the mailbox it delivers to (default: -owner)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 2 {
		return usageErr("list show|add|del alias|white|decoy|black|relay|audir [ENTRY] [-owner A] [-kind from|to] [-ttl D] [-note T]")
	}
	verb := pos[0]
	l, ok := store.ParseList(pos[1])
	if !ok {
		return usageErr("unknown list %q (want alias, white, decoy, black, relay or audir)", pos[1])
	}
	switch verb {
	case "show":
		if len(pos) > 3 {
			return usageErr("list show LIST [SEARCH]")
		}
	case "add", "del":
		if len(pos) != 3 {
			return usageErr("list %s %s needs one ENTRY", verb, l)
		}
	default:
		return usageErr("unknown list command %q (want show, add or del)", verb)
	}
	var entry store.Entry
	if verb != "show" {
		entry, err = listEntry(l, pos[2], *kind, *owner, *target, *note, *ttl, time.Now())
		if err != nil {
			return err
		}
	}
	_, st, err := openStore(ctx, *path, e)
	if err != nil {
		return err
	}
	defer st.Close()
	switch verb {
	case "show":
		q := store.Query{Owner: *owner}
		if len(pos) == 3 {
			q.Q = pos[2]
		}
		entries, err := st.Entries(ctx, l, q)
		if err != nil {
			return err
		}
		printEntries(e, l, entries)
		return nil
	case "add":
		if err := st.Put(ctx, entry); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s: added %s\n", l, entry.Key)
		return nil
	}
	err = st.Delete(ctx, l, entry.Key, entry.Kind, entry.Owner)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%s: no entry %s (kind %q, owner %q)", l, entry.Key, entry.Kind, entry.Owner)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s: deleted %s\n", l, entry.Key)
	return nil
}

// listEntry validates and normalises an entry given on the command line, with the rules
// every other way in shares (lists.ParseEntry). A bad flag is a usage error; a bad entry is not.
func listEntry(l store.List, raw, kind, owner, target, note string, ttl time.Duration, now time.Time) (store.Entry, error) {
	in := lists.EntryInput{List: l, Entry: raw, Kind: kind, Owner: owner, Target: target, Note: note, TTL: ttl}
	e, err := lists.ParseEntry(in, now)
	var fe *lists.FieldError
	if errors.As(err, &fe) && fe.Field != "entry" {
		fe.Field = "-" + fe.Field
		return e, usageErr("%v", fe)
	}
	return e, err
}

func printEntries(e env, l store.List, entries []store.Entry) {
	w := tabwriter.NewWriter(e.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ENTRY\tKIND\tOWNER\tTARGET\tSOURCE\tEXPIRES\tHITS\tNOTE")
	for _, x := range entries {
		exp := stamp(x.Expires, "-")
		key := x.Key
		if l == store.Relay && x.Kind == store.KindPair {
			key = strings.Replace(key, " ", ",", 1)
		}
		state := ""
		if x.Disabled {
			state = " (disabled)"
		}
		fmt.Fprintf(w, "%s%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", key, state, dash(x.Kind), dash(x.Owner), dash(x.Target), dash(x.Source), exp, x.Hits, x.Note)
	}
	w.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// stamp formats a time for a table, zero for the zero time.
func stamp(t time.Time, zero string) string {
	if t.IsZero() {
		return zero
	}
	return t.Local().Format("2006-01-02 15:04")
}
