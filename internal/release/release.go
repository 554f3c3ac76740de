// Package release forwards held mail to the upstream servers and records the sender's pass
// history, for the command line now and the confirmation page and portal later.
package release

import (
	"context"
	"fmt"
	"log/slog"
	"slices"

	"github.com/sekisho/sekisho/internal/lists"
	"github.com/sekisho/sekisho/internal/metrics"
	"github.com/sekisho/sekisho/internal/store"
	"github.com/sekisho/sekisho/internal/upstream"
)

// Upstream delivers one message; *upstream.Pool is one (see upstream.Pool.Send).
type Upstream interface {
	Send(ctx context.Context, env upstream.Envelope, body []byte) (upstream.Result, error)
}

// Releaser releases held messages.
type Releaser struct {
	Store    store.Store
	Upstream Upstream
	Scope    string // confirm_scope: "sender" adds the sender to RELAY, "recipient" the pairs
	Log      *slog.Logger
	// Lists, when set, are brought up to date after a RELAY write, so this process passes
	// the sender's next message at once (other processes follow within their interval).
	Lists *lists.Lists
	// Metrics, when set, counts the released recipients as confirmed (the confirmation
	// page's Releaser); nil counts nothing.
	Metrics *metrics.Metrics
}

// Release forwards held message id to rcpts (all its recipients when nil), adds the sender to
// RELAY, and removes the delivered recipients from the held message. It returns how many
// recipients the upstream accepted. The message stays held for any recipient not accepted.
func (r *Releaser) Release(ctx context.Context, id string, rcpts []string) (int, error) {
	from, done, err := r.forward(ctx, id, rcpts)
	if err != nil && len(done) == 0 {
		return 0, err
	}
	if from != "" {
		if err := r.Remember(ctx, from, done); err != nil {
			return len(done), fmt.Errorf("release %s: delivered, but pass history not recorded: %w", id, err)
		}
	}
	return len(done), err
}

// Forward is Release without the pass history, for a caller that records it once for many
// messages (Remember): it forwards held message id to rcpts (all when nil) and removes the
// delivered recipients, and returns how many the upstream accepted.
func (r *Releaser) Forward(ctx context.Context, id string, rcpts []string) (int, error) {
	_, done, err := r.forward(ctx, id, rcpts)
	return len(done), err
}

// forward sends and un-holds; it returns the sender and the recipients delivered.
func (r *Releaser) forward(ctx context.Context, id string, rcpts []string) (string, []string, error) {
	h, data, err := r.Store.HeldGet(ctx, id)
	if err != nil {
		return "", nil, err
	}
	var to []string
	for _, hr := range h.Rcpts {
		if rcpts == nil || slices.Contains(rcpts, hr.Rcpt) {
			to = append(to, hr.Rcpt)
		}
	}
	if len(to) == 0 {
		return "", nil, fmt.Errorf("release %s: %w", id, store.ErrNotFound)
	}
	res, err := r.Upstream.Send(ctx, upstream.Envelope{From: h.From, To: to}, data)
	if err != nil {
		return "", nil, fmt.Errorf("release %s: %w", id, err)
	}
	var done []string
	for i, rerr := range res.Rcpt {
		if rerr == nil {
			done = append(done, to[i])
		} else {
			r.Log.Warn("release: upstream refused recipient", "held", id, "rcpt", to[i], "err", rerr)
		}
	}
	if len(done) == 0 {
		return "", nil, fmt.Errorf("release %s: upstream refused every recipient: %v", id, res.Rcpt[0])
	}
	r.Metrics.Recipients(metrics.Confirmed, len(done))
	r.Log.Info("held mail released", "held", id, "from", h.From, "rcpts", done, "upstream", res.Server)
	if err := r.Store.HeldRemove(ctx, id, done); err != nil {
		return h.From, done, fmt.Errorf("release %s: delivered, but not removed from the held queue: %w", id, err)
	}
	return h.From, done, nil
}

// Remember adds the sender (or, with confirm_scope "recipient", the sender-recipient pairs)
// to RELAY, so that the sender's next mail passes.
func (r *Releaser) Remember(ctx context.Context, sender string, rcpts []string) error {
	if r.Scope == "recipient" {
		for _, rc := range rcpts {
			e := store.Entry{List: store.Relay, Key: store.PairKey(sender, rc), Kind: store.KindPair, Note: "released"}
			if err := r.Store.Put(ctx, e); err != nil {
				return err
			}
		}
		return r.catchUp(ctx)
	}
	if err := r.Store.Put(ctx, store.Entry{List: store.Relay, Key: sender, Kind: store.KindSender, Note: "released"}); err != nil {
		return err
	}
	return r.catchUp(ctx)
}

func (r *Releaser) catchUp(ctx context.Context) error {
	if r.Lists == nil {
		return nil
	}
	return r.Lists.CatchUp(ctx, r.Store)
}
