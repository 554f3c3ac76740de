package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/sekisho/sekisho/internal/store"
)

// Held mail is committed in groups: SQLite makes one writer wait for another, and every
// commit waits for the disk (synchronous=FULL). One committer goroutine takes the Hold calls
// that queued up while the previous commit was syncing and commits them together, so many
// SMTP sessions holding mail at once share one sync. Each call still returns only after its
// message is on disk; no time is spent waiting for company.

// maxHoldGroup bounds the messages of one commit.
const maxHoldGroup = 64

// holdReq is one Hold waiting for the committer.
type holdReq struct {
	h    *store.Held
	data []byte
	done chan error
}

var errClosed = errors.New("store closed")

// Hold implements store.Store.
func (s *DB) Hold(ctx context.Context, h *store.Held, data []byte) error {
	if h.ID == "" {
		h.ID = NewID()
	}
	if h.Received.IsZero() {
		h.Received = s.now()
	}
	h.Size = int64(len(data))
	req := &holdReq{h: h, data: data, done: make(chan error, 1)}
	select {
	case s.holds <- req:
	case <-ctx.Done():
		return fmt.Errorf("hold: %w", ctx.Err())
	case <-s.stop:
		return fmt.Errorf("hold: %w", errClosed)
	}
	// Once queued, the outcome is waited for even if ctx ends: the caller must not report a
	// failure for a message that is then committed.
	return <-req.done
}

// commitHolds is the committer: it runs until Close.
func (s *DB) commitHolds() {
	for {
		var group []*holdReq
		select {
		case r := <-s.holds:
			group = append(group, r)
		case <-s.stop:
			return
		}
	more:
		for len(group) < maxHoldGroup {
			select {
			case r := <-s.holds:
				group = append(group, r)
			default:
				break more
			}
		}
		s.commitGroup(group)
	}
}

// commitGroup writes every message of group in one transaction; a message whose rows fail
// is left out (a savepoint each) and told why, the others are committed.
func (s *DB) commitGroup(group []*holdReq) {
	ctx := context.Background()
	errs := make([]error, len(group))
	err := func() error {
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		for i, r := range group {
			if _, err := tx.ExecContext(ctx, `SAVEPOINT hold`); err != nil {
				return err
			}
			if errs[i] = insertHeld(ctx, tx, r.h, r.data); errs[i] != nil {
				if _, err := tx.ExecContext(ctx, `ROLLBACK TO hold`); err != nil {
					return err
				}
			}
			if _, err := tx.ExecContext(ctx, `RELEASE hold`); err != nil {
				return err
			}
		}
		return tx.Commit()
	}()
	for i, r := range group {
		switch {
		case err != nil:
			r.done <- fmt.Errorf("hold: commit: %w", err)
		case errs[i] != nil:
			r.done <- fmt.Errorf("hold: %w", errs[i])
		default:
			r.done <- nil
		}
	}
}

// insertHeld writes one held message and its recipients.
func insertHeld(ctx context.Context, tx *sql.Tx, h *store.Held, data []byte) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO held_messages (id, received, expires, client_ip, helo, mail_from, subject, size, auth, data)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, h.ID, ms(h.Received), ms(h.Expires), h.ClientIP, h.Helo, h.From, h.Subject, h.Size, h.Auth, data)
	if err != nil {
		return err
	}
	for _, r := range h.Rcpts {
		if _, err := tx.ExecContext(ctx, `INSERT INTO held_rcpts (message_id, rcpt, owner, reason) VALUES (?, ?, ?, ?)
			ON CONFLICT DO NOTHING`, h.ID, r.Rcpt, r.Owner, r.Reason); err != nil {
			return err
		}
	}
	return nil
}
