// Package digest is the daily digest of held mail (SPEC §4 "Digest"): once a day at
// digest_time, each user with held mail gets one mail listing it, with a signed link per
// message to a page (package web) that releases, whitelists or deletes it.
package digest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/sekisho/sekisho/internal/store"
)

// Keep is how long the ledger remembers which digests were queued.
const Keep = 7 * 24 * time.Hour

// KindDigest is the outbox kind of a digest mail.
const KindDigest = "digest"

// Ledger queues a digest mail in the outbox and records it for its day and user in one
// transaction, so it is neither lost nor sent twice, whichever node runs the job.
// *sqlite.DB and *postgres.DB implement it.
type Ledger interface {
	// QueueDigest adds m to the outbox unless a digest for (day, owner) was queued before;
	// queued says which.
	QueueDigest(ctx context.Context, day, owner string, m *store.OutMsg) (queued bool, err error)
}

// Job sends the digests. Run it with cluster.RunOnce every minute or so: Tick sends once the
// day's digest_time has come, and only once a day.
type Job struct {
	Store    store.Store
	Ledger   Ledger
	Tokens   Tokens
	From     string         // challenge_from
	BaseURL  string         // links are BaseURL + "/d/" + token
	Hostname string         // for the Message-ID
	At       string         // digest_time, "HH:MM" local time
	Location *time.Location // of At; nil means time.Local
	Now      func() time.Time
	Log      *slog.Logger

	done string // the last day whose digests are all queued; Tick runs on one goroutine
}

// Tick queues the day's digests when digest_time has passed and they are not queued yet.
func (j *Job) Tick(ctx context.Context) error {
	now := j.now()
	loc := j.Location
	if loc == nil {
		loc = time.Local
	}
	now = now.In(loc)
	at, err := time.ParseInLocation("15:04", j.At, loc)
	if err != nil {
		return fmt.Errorf("digest_time %q: %w", j.At, err)
	}
	day := now.Format(time.DateOnly)
	due := time.Date(now.Year(), now.Month(), now.Day(), at.Hour(), at.Minute(), 0, 0, loc)
	if now.Before(due) || j.done == day {
		return nil
	}
	n, err := j.Send(ctx, day)
	if err != nil {
		return err
	}
	j.done = day
	if n > 0 {
		j.Log.Info("digests queued", "day", day, "count", n)
	}
	return nil
}

func (j *Job) now() time.Time {
	if j.Now != nil {
		return j.Now()
	}
	return time.Now()
}

// Send queues, for each user with held mail who has had no digest on day, one digest, and
// returns how many it queued. A failure for one user does not stop the others.
func (j *Job) Send(ctx context.Context, day string) (int, error) {
	held, err := j.Store.HeldList(ctx, store.HeldQuery{})
	if err != nil {
		return 0, fmt.Errorf("digest: held list: %w", err)
	}
	byOwner := map[string][]Item{}
	for _, h := range held {
		for _, r := range h.Rcpts {
			owner := Owner(r)
			byOwner[owner] = append(byOwner[owner], Item{
				From: h.From, Subject: h.Subject, Received: h.Received, Size: h.Size, Reason: r.Reason, Auth: h.Auth,
				URL: j.BaseURL + "/d/" + j.Tokens.Make(h.ID, r.Rcpt),
			})
		}
	}
	queued := 0
	var errs []error
	for _, owner := range slices.Sorted(maps.Keys(byOwner)) {
		items := byOwner[owner]
		slices.SortStableFunc(items, func(a, b Item) int { return a.Received.Compare(b.Received) })
		msg, err := Compose(Digest{From: j.From, To: owner, Items: items, Hostname: j.Hostname, Now: j.now()})
		if err != nil {
			errs = append(errs, fmt.Errorf("digest for %s: %w", owner, err))
			continue
		}
		ok, err := j.Ledger.QueueDigest(ctx, day, owner, &store.OutMsg{Kind: KindDigest, From: "", To: []string{owner}, Data: msg})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if ok {
			queued++
			j.Log.Info("digest queued", "to", owner, "messages", len(items), "day", day)
		}
	}
	return queued, errors.Join(errs...)
}

// Owner is the user whose digest lists held recipient r: its owner, or the recipient itself
// when it has none.
func Owner(r store.HeldRcpt) string {
	if r.Owner == "" {
		return r.Rcpt
	}
	return r.Owner
}
