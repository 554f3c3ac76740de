package smtpproxy

import (
	"context"
	"time"

	"github.com/sekisho/sekisho/internal/challenge"
	"github.com/sekisho/sekisho/internal/outbox"
	"github.com/sekisho/sekisho/internal/senderauth"
	"github.com/sekisho/sekisho/internal/store"
)

// Challenges are the parts of URL-click confirmation the SMTP path uses (SPEC §4): a nil
// *Challenges in Deps means challenge = false.
type Challenges struct {
	Outbox   *outbox.Sender
	Limiter  *challenge.Limiter
	From     string // challenge_from
	BaseURL  string // the confirm URL is BaseURL + "/c/" + token
	Language challenge.Language
	Interval time.Duration // challenge_interval
}

// authResult runs the sender checks (SPF, DKIM) once per transaction, when sender_auth is
// "gate"; with "off" every sender counts as authenticated and none as forged.
func (t *transaction) authResult() senderauth.Result {
	s := t.s
	if t.auth != nil {
		return *t.auth
	}
	var r senderauth.Result
	if s.p.deps.Auth == nil {
		r.Authenticated = true
	} else {
		r = s.p.deps.Auth.Check(s.ctx, s.clientIP, s.conn.Hostname(), s.from.String(), t.body)
	}
	t.auth = &r
	return r
}

// challenge asks the sender of a held message to confirm, when the rules allow (SPEC §4
// "Never challenge"): it makes an AUDIR token, composes the fixed-text mail and queues it in
// the outbox, which sends it with envelope sender <>. Every suppression is logged with its
// reason; a failure here never affects the held message.
func (t *transaction) challenge(rcpts []string) {
	s := t.s
	ch := s.p.deps.Challenges
	if ch == nil {
		return
	}
	sender := s.from.Key()
	now := s.p.now()
	facts := challenge.Facts{
		NullSender:  s.from.IsNull(),
		Header:      challenge.HeaderFacts(t.body),
		BlackClient: s.p.deps.Lists.BlackIP(s.clientIP, now),
		Now:         now,
		Interval:    ch.Interval,
	}
	if !facts.NullSender {
		facts.Authenticated = t.authResult().Authenticated
		last, err := lastChallenge(s.ctx, s.p.deps.Store, sender, now)
		if err != nil {
			s.log.Error("challenge: last challenge", "id", s.id, "err", err)
			return
		}
		facts.LastChallenge = last
	}
	ok, reason, err := ch.Limiter.Decide(s.ctx, s.clientIP, facts)
	if err != nil {
		s.log.Error("challenge: limiter", "id", s.id, "err", err)
		return
	}
	if !ok {
		s.log.Info("challenge suppressed", "id", s.id, "from", sender, "reason", reason)
		s.p.deps.Metrics.ChallengeSuppressed(string(reason))
		return
	}
	token, hash := challenge.NewToken()
	e := store.Entry{List: store.Audir, Key: hash, Target: sender, Source: "challenge", Expires: now.Add(s.cfg.HoldFor)}
	if err := s.p.deps.Store.Put(s.ctx, e); err != nil {
		s.log.Error("challenge: token", "id", s.id, "err", err)
		return
	}
	msg, err := challenge.Compose(challenge.Challenge{
		From: ch.From, To: sender, Recipients: rcpts, URL: ch.BaseURL + "/c/" + token,
		Language: ch.Language, Hostname: s.cfg.Hostname, Now: now,
	})
	if err != nil {
		s.log.Error("challenge: compose", "id", s.id, "err", err)
		return
	}
	if err := ch.Outbox.Enqueue(s.ctx, outbox.KindChallenge, "", []string{sender}, msg); err != nil {
		s.log.Error("challenge: queue", "id", s.id, "err", err)
		return
	}
	s.log.Info("challenge queued", "id", s.id, "from", sender)
}

// lastChallenge is when the sender's newest live token was made (zero: none).
func lastChallenge(ctx context.Context, st store.Store, sender string, now time.Time) (time.Time, error) {
	entries, err := st.Entries(ctx, store.Audir, store.Query{Target: sender})
	if err != nil {
		return time.Time{}, err
	}
	var last time.Time
	for _, e := range entries {
		if e.Target == sender && !e.Expired(now) && e.Created.After(last) {
			last = e.Created
		}
	}
	return last, nil
}
