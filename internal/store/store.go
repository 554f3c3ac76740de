// Package store defines sekisho's persistent state: the six lists, users, held mail and the
// outbox, behind one interface that every backend (SQLite, PostgreSQL) satisfies.
//
// Every change to a list entry is appended to a change log with a growing sequence number.
// Each process keeps the lists in memory and follows that log (see package lists), so a
// change made by any node or by the command line reaches every running server.
package store

import (
	"context"
	"errors"
	"strings"
	"time"
	"unicode/utf8"
)

// List names one of the six lists.
type List string

// The six lists of SPEC §3.
const (
	Alias List = "alias"
	White List = "white"
	Decoy List = "decoy"
	Black List = "black"
	Relay List = "relay"
	Audir List = "audir"
)

// Lists is every list, in the order the SPEC names them.
var Lists = []List{Alias, White, Decoy, Black, Audir, Relay}

// ParseList returns the List called name.
func ParseList(name string) (List, bool) {
	for _, l := range Lists {
		if string(l) == name {
			return l, true
		}
	}
	return "", false
}

// Kinds used in entries.
const (
	KindFrom   = "from"   // WHITE: the sender address or @domain
	KindTo     = "to"     // WHITE: one of our recipients
	KindSender = "sender" // RELAY: the sender alone passes
	KindPair   = "pair"   // RELAY: the (sender, recipient) pair passes; Key is PairKey
	KindMsgID  = "msgid"  // RELAY: a Message-ID our users sent; replies and bounces naming it pass
)

// PairKey is the RELAY key of a (sender, recipient) pair.
func PairKey(sender, rcpt string) string { return sender + " " + rcpt }

// Entry is one entry of a list. Which fields mean something depends on the list:
//
//	alias: Key the alias address, Target the owner's mailbox, Owner the owning user, Note, Enabled
//	white: Key an address or @domain, Kind from|to, Owner a user ("" = global)
//	decoy: Key an address, Note
//	black: Key an IP, CIDR or sender address, Note the reason, Source, Expires
//	audir: Key the token hash, Target the sender address, Expires
//	relay: Key a sender (Kind sender), PairKey (Kind pair) or <message-id> (Kind msgid), Expires
//
// An entry is identified by (List, Key, Kind, Owner).
type Entry struct {
	List       List      `json:"list"`
	Key        string    `json:"key"`
	Kind       string    `json:"kind,omitempty"`
	Owner      string    `json:"owner,omitempty"`
	Target     string    `json:"target,omitempty"`
	Note       string    `json:"note,omitempty"`
	Source     string    `json:"source,omitempty"`
	Disabled   bool      `json:"disabled,omitempty"`
	Created    time.Time `json:"created"`
	Updated    time.Time `json:"updated"`
	Expires    time.Time `json:"expires,omitzero"`
	Hits       int64     `json:"hits,omitempty"`
	LastHit    time.Time `json:"last_hit,omitzero"`
	LastSender string    `json:"last_sender,omitempty"`
}

// Expired reports whether e has an expiry at or before now.
func (e *Entry) Expired(now time.Time) bool {
	return !e.Expires.IsZero() && !now.Before(e.Expires)
}

// Op is the kind of a change.
type Op string

// Change operations.
const (
	OpPut Op = "put"
	OpDel Op = "del"
)

// Change is one record of the change log.
type Change struct {
	Seq   int64
	Op    Op
	Entry Entry
}

// Query selects list entries for display.
type Query struct {
	Key    string // exactly this key (an index lookup); "" = any
	Target string // exactly this target (an index lookup); "" = any
	Q      string // substring of Key, Target, Owner or Note; "" = all
	Owner  string // only this owner's entries; "" = any
	Limit  int    // 0 = no limit
	Offset int
}

// User is a sekisho user: a mailbox that may log in.
type User struct {
	Address      string
	PasswordHash string
	Admin        bool
	Created      time.Time
}

// HeldRcpt is one recipient of a held message.
type HeldRcpt struct {
	Rcpt   string // the recipient as given by the client (after alias rewrite: the mailbox)
	Owner  string // the user whose mailbox it is
	Reason string // why it was held
}

// Held describes a held message; its bytes are fetched separately.
type Held struct {
	ID       string
	Received time.Time
	Expires  time.Time
	ClientIP string
	Helo     string
	From     string
	Subject  string
	Size     int64
	// Auth is the sender authentication when the message was held, in the style of
	// Authentication-Results ("spf=pass smtp.mailfrom=x.jp; dkim=none"); "" if not checked.
	Auth  string
	Rcpts []HeldRcpt
}

// HeldQuery selects held messages.
type HeldQuery struct {
	Owner  string // only messages with a recipient owned by this user
	From   string // only this sender
	Limit  int
	Offset int
}

// OutMsg is a message sekisho itself sends (challenges, released mail), kept until sent.
type OutMsg struct {
	ID        int64
	Kind      string // "challenge", "release", ...
	From      string
	To        []string
	Data      []byte
	Created   time.Time
	NextTry   time.Time
	Attempts  int
	LastError string
}

// Session is a logged-in web session. ID is the hash of the cookie value, never the value.
type Session struct {
	ID      string
	User    string
	CSRF    string // the session's CSRF token
	Created time.Time
	Expires time.Time
}

// Token is an API bearer token. Only its hash is kept; the token is shown once when made.
type Token struct {
	Name     string
	Hash     string
	Owner    string // "" = admin rights; else the rights of this one user
	Created  time.Time
	LastUsed time.Time
}

// StatCount is how often one event happened in the minute starting at Bucket.
type StatCount struct {
	Bucket time.Time
	Name   string
	Count  int64
}

// Trap is a harvest-trap address planted in a web page for one visitor.
type Trap struct {
	Address   string
	IP        string
	UserAgent string
	URL       string
	Planted   time.Time
}

// TrapHit is mail that arrived at a trap address, with the visit that harvested it.
type TrapHit struct {
	Trap   Trap
	IP     string // the client that sent the mail
	Sender string
	At     time.Time
}

// AliasSender counts the mail one alias received from one sender domain.
type AliasSender struct {
	Alias  string
	Domain string
	Hits   int64
	First  time.Time
	Last   time.Time
}

// Errors returned by every backend.
var (
	ErrNotFound  = errors.New("store: not found")
	ErrLogPruned = errors.New("store: change log pruned past the requested sequence")
)

// Store is the persistent state. Implementations are safe for concurrent use, and several
// processes may use one database at once.
type Store interface {
	// Put inserts or replaces the entry identified by (List, Key, Kind, Owner), keeping its
	// Created time and counters, and appends a change.
	Put(ctx context.Context, e Entry) error
	// Delete removes the identified entry and appends a change; ErrNotFound if absent.
	Delete(ctx context.Context, l List, key, kind, owner string) error
	// Entries lists the entries of one list, ordered by key.
	Entries(ctx context.Context, l List, q Query) ([]Entry, error)
	// Snapshot returns every unexpired entry and the sequence number of the last change
	// they include.
	Snapshot(ctx context.Context) ([]Entry, int64, error)
	// Changes returns up to limit changes with Seq > since, in order. ErrLogPruned when
	// changes after since are no longer kept (the caller reloads a Snapshot).
	Changes(ctx context.Context, since int64, limit int) ([]Change, error)
	// Hit counts a use of an entry (alias hits, relay pass history) without a change record.
	Hit(ctx context.Context, l List, key, kind, owner, sender string, at time.Time) error
	// Expire deletes entries whose expiry is at or before now, with change records.
	Expire(ctx context.Context, now time.Time) (int, error)

	PutUser(ctx context.Context, u User) error
	GetUser(ctx context.Context, address string) (User, error)
	Users(ctx context.Context) ([]User, error)
	DeleteUser(ctx context.Context, address string) error

	// Hold stores a held message durably (committed before it returns) and sets h.ID.
	Hold(ctx context.Context, h *Held, data []byte) error
	HeldList(ctx context.Context, q HeldQuery) ([]Held, error)
	HeldGet(ctx context.Context, id string) (Held, []byte, error)
	// HeldRemove drops the given recipients of a held message (all when rcpts is nil); the
	// message goes when it has no recipient left.
	HeldRemove(ctx context.Context, id string, rcpts []string) error
	// HeldCount counts held messages from one sender.
	HeldCount(ctx context.Context, from string) (int, error)
	// HeldExpire deletes held messages whose expiry is at or before now.
	HeldExpire(ctx context.Context, now time.Time) (int, error)
	// HeldStats counts every held message and the bytes they take (metrics).
	HeldStats(ctx context.Context) (messages int, bytes int64, err error)

	// Secret returns the installation's secret called name, made of size random bytes the
	// first time it is asked for; every process and node sharing the store gets the same.
	Secret(ctx context.Context, name string, size int) ([]byte, error)

	// PutSession stores a web session; GetSession returns ErrNotFound for an unknown or
	// expired one.
	PutSession(ctx context.Context, s Session) error
	GetSession(ctx context.Context, id string, now time.Time) (Session, error)
	DeleteSession(ctx context.Context, id string) error
	// DeleteUserSessions ends every session of a user (password reset, user deleted).
	DeleteUserSessions(ctx context.Context, user string) error
	// SessionsExpire deletes sessions whose expiry is at or before now.
	SessionsExpire(ctx context.Context, now time.Time) (int, error)

	// PutToken stores a new API token; a token with the same name is replaced.
	PutToken(ctx context.Context, t Token) error
	// TokenByHash finds a token and records its use at now.
	TokenByHash(ctx context.Context, hash string, now time.Time) (Token, error)
	Tokens(ctx context.Context) ([]Token, error)
	DeleteToken(ctx context.Context, name string) error

	// AddStats adds counts to their minute buckets (summing with what is there).
	AddStats(ctx context.Context, counts []StatCount) error
	// Stats returns the buckets in [since, until), ordered by bucket and name.
	Stats(ctx context.Context, since, until time.Time) ([]StatCount, error)

	// PutTrap records a planted trap address; an address already recorded is kept as is.
	PutTrap(ctx context.Context, t Trap) error
	// GetTrap returns the visit that a trap address was planted for.
	GetTrap(ctx context.Context, address string) (Trap, error)
	// AddTrapHit records mail sent to a trap address.
	AddTrapHit(ctx context.Context, address, ip, sender string, at time.Time) error
	// TrapHits lists hits, newest first, with the visit that planted each address.
	TrapHits(ctx context.Context, limit, offset int) ([]TrapHit, error)
	// TrapsExpire deletes traps planted before the given time, with their hits.
	TrapsExpire(ctx context.Context, before time.Time) (int, error)

	// AliasSenders returns, for each alias given, the sender domains it received mail from,
	// most recent first. Hit on the alias list feeds it.
	AliasSenders(ctx context.Context, aliases []string) (map[string][]AliasSender, error)

	OutboxAdd(ctx context.Context, m *OutMsg) error
	OutboxDue(ctx context.Context, now time.Time, limit int) ([]OutMsg, error)
	OutboxDone(ctx context.Context, id int64) error
	OutboxRetry(ctx context.Context, id int64, next time.Time, lastErr string) error
	// OutboxLen counts the messages in the outbox, due or not (metrics).
	OutboxLen(ctx context.Context) (int, error)

	Close() error
}

// Minute returns the start of the minute t falls in, the bucket of a StatCount.
func Minute(t time.Time) time.Time { return t.Truncate(time.Minute) }

// SenderDomain is the domain of a sender address, lower-cased; "" for the null sender.
func SenderDomain(sender string) string {
	at := strings.LastIndexByte(sender, '@')
	if at < 0 {
		return ""
	}
	return strings.ToLower(sender[at+1:])
}

// OneLine makes s fit a one-line text field (a note, a subject, a user agent): control
// characters become spaces, and it is cut to at most max bytes on a character boundary, so
// that what is stored stays valid UTF-8 (PostgreSQL refuses anything else).
func OneLine(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}
