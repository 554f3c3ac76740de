package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/sekisho/sekisho/internal/mailaddr"
	"github.com/sekisho/sekisho/internal/password"
	"github.com/sekisho/sekisho/internal/store"
)

func cmdUser(ctx context.Context, args []string, e env) error {
	fs := flag.NewFlagSet("user", flag.ContinueOnError)
	path := configFlag(fs)
	admin := fs.Bool("admin", false, "the user is an administrator")
	fromStdin := fs.Bool("password-stdin", false, "read the password from standard input")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usageErr("user add|del|passwd|list ADDRESS [-admin] [-password-stdin]")
	}
	verb := pos[0]
	var address string
	switch verb {
	case "list":
		if len(pos) != 1 {
			return usageErr("user list takes no address")
		}
	case "add", "del", "passwd":
		if len(pos) != 2 {
			return usageErr("user %s needs one ADDRESS", verb)
		}
		a, err := mailaddr.Parse(pos[1])
		if err != nil {
			return fmt.Errorf("address %q: %w", pos[1], err)
		}
		address = a.Key()
	default:
		return usageErr("unknown user command %q (want add, del, passwd or list)", verb)
	}
	_, st, err := openStore(ctx, *path, e)
	if err != nil {
		return err
	}
	defer st.Close()

	switch verb {
	case "list":
		users, err := st.Users(ctx)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(e.stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(w, "ADDRESS\tADMIN\tCREATED")
		for _, u := range users {
			fmt.Fprintf(w, "%s\t%v\t%s\n", u.Address, u.Admin, u.Created.Format("2006-01-02 15:04"))
		}
		return w.Flush()
	case "del":
		if err := st.DeleteUser(ctx, address); errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("no user %s", address)
		} else if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "user %s deleted\n", address)
		return nil
	}
	old, err := st.GetUser(ctx, address)
	switch {
	case verb == "add" && err == nil:
		return fmt.Errorf("user %s exists (use passwd to change the password)", address)
	case verb == "passwd" && errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("no user %s", address)
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return err
	}
	pw, err := readPassword(e, *fromStdin)
	if err != nil {
		return err
	}
	hash, err := password.Hash(pw)
	if err != nil {
		return err
	}
	u := store.User{Address: address, PasswordHash: hash, Admin: *admin || (verb == "passwd" && old.Admin)}
	if err := st.PutUser(ctx, u); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "user %s saved\n", address)
	return nil
}

// readPassword reads one line: from standard input with -password-stdin, else after a
// prompt (the terminal echoes it: prefer -password-stdin in scripts).
func readPassword(e env, fromStdin bool) (string, error) {
	if !fromStdin {
		fmt.Fprint(e.stderr, "Password: ")
	}
	line, err := bufio.NewReader(e.stdin).ReadString('\n')
	if err != nil && line == "" {
		return "", fmt.Errorf("read password: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return "", errors.New("empty password")
	}
	return pw, nil
}
