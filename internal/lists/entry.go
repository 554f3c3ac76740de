package lists

import (
	"fmt"
	"strings"
	"time"

	"github.com/sekisho/sekisho/internal/mailaddr"
	"github.com/sekisho/sekisho/internal/store"
)

// EntryInput is a list entry as a person writes it: on the command line, in the JSON API or
// in a web form.
type EntryInput struct {
	List   store.List
	Entry  string // the key as written: an address, @domain, IP, CIDR, SENDER,RECIPIENT
	Kind   string // white: from|to (default from); relay: sender|pair|msgid (default from the key)
	Owner  string // alias, white: the owning user
	Target string // alias: the mailbox it delivers to (default Owner)
	Note   string
	TTL    time.Duration // 0: no expiry
}

// FieldError is a problem with one field of an EntryInput. Field is "entry", "kind",
// "owner", "target" or "ttl"; callers may name the field their own way (a flag, a JSON key).
type FieldError struct {
	Field   string
	Value   string
	Problem string
	Err     error // the underlying parse error, if any
}

func (e *FieldError) Error() string {
	if e.Value == "" {
		return e.Field + ": " + e.Problem
	}
	return fmt.Sprintf("%s %q: %s", e.Field, e.Value, e.Problem)
}

func (e *FieldError) Unwrap() error { return e.Err }

func fieldErr(field, value string, err error, format string, a ...any) *FieldError {
	p := fmt.Sprintf(format, a...)
	switch {
	case err != nil && format == "":
		p = err.Error()
	case err != nil:
		p += ": " + err.Error()
	}
	return &FieldError{Field: field, Value: value, Problem: p, Err: err}
}

// ParseEntry validates and normalises an entry to add: keys lower-cased and canonical,
// defaults filled in (white kind from, relay kind by key, alias target = owner, black
// source "admin"). Errors are *FieldError.
func ParseEntry(in EntryInput, now time.Time) (store.Entry, error) {
	key, kind, err := ParseKey(in.List, in.Entry, in.Kind)
	if err != nil {
		return store.Entry{}, err
	}
	e := store.Entry{List: in.List, Key: key, Kind: kind, Note: in.Note}
	if e.Owner, err = ParseOwner(in.Owner); err != nil {
		return e, err
	}
	if in.TTL < 0 {
		return e, fieldErr("ttl", in.TTL.String(), nil, "must be positive")
	}
	if in.TTL > 0 {
		e.Expires = now.Add(in.TTL)
	}
	switch in.List {
	case store.White:
		if e.Kind == "" {
			e.Kind = store.KindFrom
		}
	case store.Black:
		e.Source = "admin"
		if e.Note == "" {
			e.Note = "added by hand"
		}
	case store.Alias:
		e.Target = e.Owner
		if in.Target != "" {
			t, err := mailaddr.Parse(in.Target)
			if err != nil {
				return e, fieldErr("target", in.Target, err, "")
			}
			e.Target = t.Key()
		}
		if e.Target == "" {
			return e, fieldErr("owner", "", nil, "an alias needs an owner (or a target): the mailbox it delivers to")
		}
		if e.Owner == "" {
			e.Owner = e.Target
		}
	}
	return e, nil
}

// ParseOwner normalises an owner address ("" stays ""). Errors are *FieldError.
func ParseOwner(owner string) (string, error) {
	if owner == "" {
		return "", nil
	}
	a, err := mailaddr.Parse(owner)
	if err != nil {
		return "", fieldErr("owner", owner, err, "")
	}
	return a.Key(), nil
}

// ParseKey validates and normalises the key of an entry of list l and its kind, as needed to
// name an entry (to delete it) or to add one. An empty kind stays empty, except for RELAY,
// where it follows the key (SENDER,RECIPIENT is a pair). Errors are *FieldError.
func ParseKey(l store.List, raw, kind string) (key, outKind string, err error) {
	noKind := func() error {
		if kind != "" {
			return fieldErr("kind", kind, nil, "%s entries have no kind", l)
		}
		return nil
	}
	parseAddr := func() (string, error) {
		a, err := mailaddr.Parse(raw)
		if err != nil {
			return "", fieldErr("entry", raw, err, "")
		}
		return a.Key(), nil
	}
	switch l {
	case store.White:
		if kind != "" && kind != store.KindFrom && kind != store.KindTo {
			return "", "", fieldErr("kind", kind, nil, "want from or to")
		}
		key, err := addressOrDomain(raw)
		return key, kind, err
	case store.Relay:
		if kind == "" {
			kind = store.KindSender
			if strings.Contains(raw, ",") {
				kind = store.KindPair
			}
		}
		switch kind {
		case store.KindSender:
			key, err := parseAddr()
			return key, kind, err
		case store.KindPair:
			s, r, ok := strings.Cut(raw, ",")
			sa, err1 := mailaddr.Parse(strings.TrimSpace(s))
			ra, err2 := mailaddr.Parse(strings.TrimSpace(r))
			if !ok || err1 != nil || err2 != nil {
				return "", "", fieldErr("entry", raw, nil, "want SENDER,RECIPIENT")
			}
			return store.PairKey(sa.Key(), ra.Key()), kind, nil
		case store.KindMsgID:
			if !strings.HasPrefix(raw, "<") || !strings.HasSuffix(raw, ">") || strings.ContainsAny(raw, " \t\r\n") {
				return "", "", fieldErr("entry", raw, nil, "want a Message-ID in angle brackets")
			}
			return raw, kind, nil
		}
		return "", "", fieldErr("kind", kind, nil, "want sender, pair or msgid")
	case store.Black:
		if err := noKind(); err != nil {
			return "", "", err
		}
		ip, network, isAddr := ParseBlackKey(raw)
		switch {
		case ip.IsValid():
			return ip.String(), "", nil
		case network.IsValid():
			return network.String(), "", nil
		case isAddr:
			a, err := mailaddr.Parse(raw)
			if err != nil {
				return "", "", fieldErr("entry", raw, err, "not an IP, CIDR or address")
			}
			return a.Key(), "", nil
		}
	case store.Alias, store.Decoy:
		if err := noKind(); err != nil {
			return "", "", err
		}
		key, err := parseAddr()
		return key, "", err
	case store.Audir:
		// Token hashes, made by the confirmation flow; named as they are shown.
		if raw == "" {
			return "", "", fieldErr("entry", raw, nil, "empty")
		}
		return raw, kind, nil
	}
	return "", "", fieldErr("list", string(l), nil, "unknown list")
}

// addressOrDomain accepts an address or @domain.
func addressOrDomain(raw string) (string, error) {
	if d, ok := strings.CutPrefix(raw, "@"); ok {
		dom, valid := mailaddr.Domain(d)
		if !valid {
			return "", fieldErr("entry", raw, nil, "bad domain")
		}
		return "@" + dom, nil
	}
	a, err := mailaddr.Parse(raw)
	if err != nil {
		return "", fieldErr("entry", raw, err, "")
	}
	return a.Key(), nil
}
