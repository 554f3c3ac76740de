package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/sekisho/sekisho/internal/api"
	"github.com/sekisho/sekisho/internal/mailaddr"
	"github.com/sekisho/sekisho/internal/store"
)

// cmdToken manages API tokens (SPEC §5, §7). The token is printed once, at add; only its
// hash is stored.
func cmdToken(ctx context.Context, args []string, e env) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	path := configFlag(fs)
	owner := fs.String("owner", "", "add: the token has this user's rights only (default: admin rights)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usageErr("token add|del|list [NAME] [-owner ADDRESS]")
	}
	verb := pos[0]
	switch verb {
	case "list":
		if len(pos) != 1 {
			return usageErr("token list takes no NAME")
		}
	case "add", "del":
		if len(pos) != 2 {
			return usageErr("token %s needs one NAME", verb)
		}
		if err := checkTokenName(pos[1]); err != nil {
			return err
		}
	default:
		return usageErr("unknown token command %q (want add, del or list)", verb)
	}
	if *owner != "" && verb != "add" {
		return usageErr("-owner is for token add")
	}
	var ownerKey string
	if *owner != "" {
		a, err := mailaddr.Parse(*owner)
		if err != nil {
			return fmt.Errorf("-owner %q: %w", *owner, err)
		}
		ownerKey = a.Key()
	}
	_, st, err := openStore(ctx, *path, e)
	if err != nil {
		return err
	}
	defer st.Close()

	switch verb {
	case "list":
		tokens, err := st.Tokens(ctx)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(e.stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(w, "NAME\tOWNER\tCREATED\tLAST USED")
		for _, t := range tokens {
			o := t.Owner
			if o == "" {
				o = "(admin)"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", t.Name, o, stamp(t.Created, "-"), stamp(t.LastUsed, "never"))
		}
		return w.Flush()
	case "del":
		if err := st.DeleteToken(ctx, pos[1]); errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("no token %s", pos[1])
		} else if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "token %s deleted\n", pos[1])
		return nil
	}
	tokens, err := st.Tokens(ctx)
	if err != nil {
		return err
	}
	for _, t := range tokens {
		if t.Name == pos[1] {
			return fmt.Errorf("token %s exists (del it first to make a new one)", pos[1])
		}
	}
	if ownerKey != "" {
		if _, err := st.GetUser(ctx, ownerKey); errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("-owner %s: no such user (add it with sekisho user add)", ownerKey)
		} else if err != nil {
			return err
		}
	}
	token, hash, err := api.NewToken()
	if err != nil {
		return err
	}
	if err := st.PutToken(ctx, store.Token{Name: pos[1], Hash: hash, Owner: ownerKey, Created: time.Now()}); err != nil {
		return err
	}
	// The token alone on standard output, for scripts; it is not shown again.
	fmt.Fprintln(e.stdout, token)
	fmt.Fprintf(e.stderr, "token %s saved; it is shown this once (use it as: Authorization: Bearer TOKEN)\n", pos[1])
	return nil
}

// checkTokenName accepts 1 to 64 printable characters without spaces.
func checkTokenName(name string) error {
	if name == "" || len(name) > 64 || strings.IndexFunc(name, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) >= 0 {
		return usageErr("token name %q: want 1 to 64 printable characters without spaces", name)
	}
	return nil
}
