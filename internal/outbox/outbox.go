// Package outbox sends the mail sekisho writes itself (challenges, and later digests) through
// the upstream servers, from a queue in the store, so that it is neither lost when the relay
// is down nor sent twice.
//
// Enqueue commits a message to the store before it returns. Run sends what is due, one
// message at a time, and records each outcome in the store:
//
//   - accepted: removed;
//   - no server available (upstream.ErrUnavailable), a 4xx reply, or any other failure that
//     left the message undelivered: tried again after Backoff(attempt), 1m, 2m, 4m ... 1h;
//   - a 5xx reply: removed and logged as an error. Trying again cannot help; a challenge to
//     a sender whose server refuses it is moot, and the held mail stays held regardless;
//   - sent without a final reply (upstream.ErrUnconfirmed): removed with a warning. The
//     server may have it, and here "never sent twice" wins over "never lost": a second
//     challenge or digest in a mailbox is the kind of noise sekisho exists to prevent;
//   - some recipients accepted or refused for good, others refused for now (4xx): those are
//     queued again as a new message (whose attempt count starts afresh), the rest removed.
//
// A message still queued after MaxAge is given up (removed, logged as an error).
//
// Never twice, within a process: one Run at a time per Sender, one message at a time, and
// an outcome the store failed to record is kept in memory and recorded again before that
// message is looked at; it is never sent again meanwhile. A process should have one Sender
// per store. Several processes sharing a store (PostgreSQL) need the cluster's run-once lock
// around Run, which is not here yet. Across a crash the rule is at least once: a message
// sent just before the crash, and not yet marked, is sent again.
package outbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/sekisho/sekisho/internal/metrics"
	"github.com/sekisho/sekisho/internal/store"
	"github.com/sekisho/sekisho/internal/upstream"
)

// Defaults for the zero values of Sender's fields.
const (
	DefaultPoll   = time.Second
	DefaultBatch  = 100
	MinBackoff    = time.Minute
	MaxBackoff    = time.Hour
	recordTimeout = 30 * time.Second // for store writes after a send, even while shutting down
)

// Kinds of message, the values of Enqueue's kind. They appear in logs and the store.
const (
	KindChallenge = "challenge"
	KindDigest    = "digest"
)

// ErrRunning is returned by Run when the Sender is already running.
var ErrRunning = errors.New("outbox: already running")

// Upstream delivers one message; *upstream.Pool is one. See upstream.Pool.Send for the
// meaning of its results, which Sender relies on.
type Upstream interface {
	Send(ctx context.Context, env upstream.Envelope, body []byte) (upstream.Result, error)
}

var _ Upstream = (*upstream.Pool)(nil)

// Sender queues and sends mail. Set the exported fields before the first call to Enqueue or
// Run and do not change them after; a Sender must not be copied after first use.
type Sender struct {
	Store    store.Store  // required
	Upstream Upstream     // required: the upstream pool, or a pool for challenge_relay
	Log      *slog.Logger // nil discards
	// Now is the clock for queueing and due times; nil means time.Now.
	Now func() time.Time
	// Backoff is the wait after the attempt-th failed attempt (1, 2, ...); nil means
	// Backoff.
	Backoff func(attempt int) time.Duration
	// Poll is how often Run looks for due mail besides when Enqueue wakes it; 0 means
	// DefaultPoll.
	Poll time.Duration
	// MaxAge gives up a message this long after it was queued; 0 means never. For
	// challenges, hold_for: a confirmation URL is worthless after that.
	MaxAge time.Duration
	// Metrics counts the challenges sent (accepted by the relay); nil counts nothing.
	Metrics *metrics.Metrics

	once    sync.Once
	log     *slog.Logger       // Log, or a discarding one
	wake    chan struct{}      // Enqueue → Run, buffered 1
	running atomic.Bool        // one Run at a time
	pending map[int64]*outcome // outcomes not yet recorded in the store; owned by Run
}

// Backoff is the default retry schedule: one minute after the first failure, doubling, at
// most an hour.
func Backoff(attempt int) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	if attempt > 7 {
		return MaxBackoff
	}
	return min(MinBackoff<<(attempt-1), MaxBackoff)
}

func (s *Sender) init() {
	s.once.Do(func() {
		s.wake = make(chan struct{}, 1)
		s.pending = make(map[int64]*outcome)
		s.log = s.Log
		if s.log == nil {
			s.log = slog.New(slog.DiscardHandler)
		}
	})
}

func (s *Sender) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Sender) backoff(attempt int) time.Duration {
	if s.Backoff != nil {
		return s.Backoff(attempt)
	}
	return Backoff(attempt)
}

// Enqueue queues a message for sending: data is the whole message with CRLF line endings,
// from the envelope sender ("" for the null sender <>, as for challenges), to the
// recipients. When Enqueue returns nil the message is committed to the store; Run sends it
// soon after. A message that could never be sent (no recipient, a control character in an
// address, a bare CR or LF) is refused here, not queued.
func (s *Sender) Enqueue(ctx context.Context, kind, from string, to []string, data []byte) error {
	s.init()
	if err := check(kind, from, to, data); err != nil {
		return err
	}
	m := &store.OutMsg{Kind: kind, From: from, To: to, Data: data, Created: s.now()}
	m.NextTry = m.Created
	if err := s.Store.OutboxAdd(ctx, m); err != nil {
		return fmt.Errorf("outbox: enqueue %s: %w", kind, err)
	}
	s.log.Info("outbox queued", "id", m.ID, "kind", kind, "from", from, "to", to, "size", len(data))
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return nil
}

// Run sends due mail until ctx is done, then returns nil; a send under way is cancelled,
// and its outcome recorded. Run returns ErrRunning if the Sender is running already.
func (s *Sender) Run(ctx context.Context) error {
	s.init()
	if !s.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer s.running.Store(false)
	poll := s.Poll
	if poll <= 0 {
		poll = DefaultPoll
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		s.flush(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-s.wake:
		case <-t.C:
		}
	}
}

// flush records the outcomes left pending, then sends every message due now.
func (s *Sender) flush(ctx context.Context) {
	for id, o := range s.pending {
		if err := s.record(ctx, id, o); err != nil {
			s.log.Error("outbox outcome still not recorded", "id", id, "err", err)
			continue
		}
		delete(s.pending, id)
	}
	for ctx.Err() == nil {
		due, err := s.Store.OutboxDue(ctx, s.now(), DefaultBatch)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error("outbox read failed", "err", err)
			}
			return
		}
		sent := 0
		for _, m := range due {
			if ctx.Err() != nil {
				return
			}
			if s.pending[m.ID] != nil {
				continue // its outcome is known, only not recorded: never send it again
			}
			s.send(ctx, &m)
			sent++
		}
		if len(due) < DefaultBatch || sent == 0 {
			return
		}
	}
}

// send tries one message and records the outcome.
func (s *Sender) send(ctx context.Context, m *store.OutMsg) {
	log := s.log.With("id", m.ID, "kind", m.Kind, "from", m.From)
	now := s.now()
	if s.MaxAge > 0 && now.Sub(m.Created) >= s.MaxAge {
		log.Error("outbox message given up", "to", m.To, "queued", m.Created, "attempts", m.Attempts, "last_error", m.LastError)
		s.settle(ctx, log, m.ID, &outcome{done: true})
		return
	}
	env := upstream.Envelope{From: m.From, To: m.To, SMTPUTF8: needsUTF8(m), EightBit: has8bit(m.Data)}
	res, err := s.Upstream.Send(ctx, env, m.Data)
	if err != nil && !errors.Is(err, upstream.ErrUnconfirmed) && ctx.Err() != nil {
		// Shutting down, and nothing was handed over: the message stays as it is.
		log.Debug("outbox send cancelled", "err", err)
		return
	}
	o := s.judge(log, m, res, err, now)
	s.settle(ctx, log, m.ID, o)
}

// judge turns what Send returned into an outcome, and logs it.
func (s *Sender) judge(log *slog.Logger, m *store.OutMsg, res upstream.Result, err error, now time.Time) *outcome {
	attempt := m.Attempts + 1
	retry := func(msg string, err error) *outcome {
		next := now.Add(s.backoff(attempt))
		log.Warn(msg, "to", m.To, "attempt", attempt, "next", next, "err", err)
		return &outcome{next: next, lastErr: err.Error()}
	}
	var se *smtp.SMTPError
	switch {
	case errors.Is(err, upstream.ErrUnconfirmed):
		log.Warn("outbox delivery unconfirmed, not sent again", "to", m.To, "upstream", res.Server, "err", err)
		return &outcome{done: true}
	case errors.As(err, &se) && se.Code/100 == 5:
		log.Error("outbox message refused", "to", m.To, "upstream", res.Server, "err", err)
		return &outcome{done: true}
	case err != nil:
		// ErrUnavailable, a 4xx reply, or anything unforeseen: the message was not
		// delivered, and a later try may succeed.
		return retry("outbox send failed, will retry", err)
	}

	var sent, again []string
	var againErr error
	for i, to := range m.To {
		var rerr error
		if i < len(res.Rcpt) {
			rerr = res.Rcpt[i]
		}
		switch {
		case rerr == nil:
			sent = append(sent, to)
		case errors.As(rerr, &se) && se.Code/100 == 5:
			log.Error("outbox recipient refused", "to", to, "upstream", res.Server, "err", rerr)
		default:
			again, againErr = append(again, to), rerr
		}
	}
	if len(sent) > 0 {
		log.Info("outbox sent", "to", sent, "upstream", res.Server, "attempt", attempt)
		if m.Kind == KindChallenge {
			s.Metrics.ChallengeSent()
		}
	}
	switch {
	case len(again) == 0:
		return &outcome{done: true}
	case len(again) == len(m.To):
		return retry("outbox recipients refused for now, will retry", againErr)
	}
	o := retry("outbox recipients refused for now, will retry", againErr)
	o.done = true
	o.rest = &store.OutMsg{Kind: m.Kind, From: m.From, To: again, Data: m.Data, Created: m.Created, NextTry: o.next}
	return o
}

// outcome is what becomes of a message after an attempt: removed (done), kept for another
// try at next, and/or some of its recipients queued again as rest.
type outcome struct {
	done    bool
	next    time.Time
	lastErr string
	rest    *store.OutMsg // queued before the message is removed; nil once it is
}

// settle records o in the store, or keeps it pending in memory when the store fails.
func (s *Sender) settle(ctx context.Context, log *slog.Logger, id int64, o *outcome) {
	if err := s.record(ctx, id, o); err != nil {
		log.Error("outbox outcome not recorded, will try again", "err", err)
		s.pending[id] = o
	}
}

// record writes o for message id to the store. It goes on after ctx is cancelled, for a
// while: an outcome must be recorded, most of all after a successful send.
func (s *Sender) record(ctx context.Context, id int64, o *outcome) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	if o.rest != nil {
		if err := s.Store.OutboxAdd(ctx, o.rest); err != nil {
			return err
		}
		s.log.Info("outbox queued", "id", o.rest.ID, "kind", o.rest.Kind, "from", o.rest.From, "to", o.rest.To, "size", len(o.rest.Data), "split_from", id)
		o.rest = nil
	}
	if o.done {
		return s.Store.OutboxDone(ctx, id)
	}
	return s.Store.OutboxRetry(ctx, id, o.next, o.lastErr)
}

// check refuses what no upstream could be given.
func check(kind, from string, to []string, data []byte) error {
	if kind == "" {
		return errors.New("outbox: no kind")
	}
	if len(to) == 0 {
		return fmt.Errorf("outbox: %s: no recipients", kind)
	}
	if hasControl(from) {
		return fmt.Errorf("outbox: %s: bad sender %q", kind, from)
	}
	for _, t := range to {
		if t == "" || hasControl(t) {
			return fmt.Errorf("outbox: %s: bad recipient %q", kind, t)
		}
	}
	if len(data) == 0 {
		return fmt.Errorf("outbox: %s: empty message", kind)
	}
	// Every CR and LF must pair up, as upstream.Pool.Send demands (SMTP smuggling).
	crlf := bytes.Count(data, []byte("\r\n"))
	if bytes.Count(data, []byte("\r")) != crlf || bytes.Count(data, []byte("\n")) != crlf {
		return fmt.Errorf("outbox: %s: bare CR or LF in message", kind)
	}
	return nil
}

func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f })
}

// needsUTF8 reports whether m needs SMTPUTF8 (RFC 6531): a UTF-8 address, or UTF-8 in the
// header section.
func needsUTF8(m *store.OutMsg) bool {
	if has8bit([]byte(m.From)) {
		return true
	}
	for _, t := range m.To {
		if has8bit([]byte(t)) {
			return true
		}
	}
	head, _, _ := bytes.Cut(m.Data, []byte("\r\n\r\n"))
	return has8bit(head)
}

func has8bit(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return true
		}
	}
	return false
}
