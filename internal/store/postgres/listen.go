package postgres

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Backoff between attempts to reconnect Listen's connection.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// Listen follows the notifications of changes, made by any node or by the command line, on a
// connection of its own, and sends a wake on wake for each (without blocking: a wake already
// pending stands for any number). It also wakes once each time the connection is made, so a
// follower catches up on what it may have missed meanwhile. When the connection is lost,
// Listen makes it again, backing off up to 5 s, and runs until ctx ends; then it returns nil.
//
// The connection's application_name is the pool's followed by "-listen" ("sekisho-listen").
// Give wake to lists.Follow: a change then reaches the lists of every node within
// milliseconds, and polling at the follow interval stays the fallback.
func (d *DB) Listen(ctx context.Context, wake chan<- struct{}) error {
	if wake == nil {
		return errors.New("listen: nil wake channel")
	}
	delay := minBackoff
	failing := false
	for {
		connected, err := d.listen(ctx, wake)
		if ctx.Err() != nil {
			return nil
		}
		switch {
		case connected:
			d.log.Warn("store listen connection lost", "err", err)
			delay, failing = minBackoff, false
		case !failing: // said once, until a connection is made again
			d.log.Warn("store listen cannot connect", "err", err)
			failing = true
		}
		// Jitter keeps the nodes from reconnecting in step after a database restart.
		wait := delay/2 + rand.N(delay/2+1)
		delay = min(2*delay, maxBackoff)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// listen makes one connection and follows notifications on it until it fails or ctx ends.
// connected tells whether LISTEN had taken effect.
func (d *DB) listen(ctx context.Context, wake chan<- struct{}) (connected bool, err error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	conn, err := pgx.ConnectConfig(cctx, d.listenCfg)
	if err == nil {
		_, err = conn.Exec(cctx, `LISTEN `+Channel)
	}
	cancel()
	if conn != nil {
		defer func() {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			defer cancel()
			conn.Close(cctx)
		}()
	}
	if err != nil {
		return false, fmt.Errorf("connect and listen: %w", err)
	}
	d.log.Info("store listen connected", "channel", Channel)
	poke(wake)
	for {
		wctx, cancel := context.WithTimeout(ctx, d.keepAlive)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			if d.ours(n.Payload) {
				poke(wake)
			}
		case ctx.Err() != nil:
			return true, ctx.Err()
		case pgconn.Timeout(err):
			// Silent for a while: make sure the connection is still there.
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err = conn.Ping(pctx)
			cancel()
			if err != nil {
				return true, fmt.Errorf("keep-alive ping: %w", err)
			}
		default:
			return true, fmt.Errorf("wait for notification: %w", err)
		}
	}
}

// ours tells whether a notification's payload, "<schema> <seq>", is about this store's schema.
// Notifications without a schema (a NOTIFY by hand) count as ours.
func (d *DB) ours(payload string) bool {
	i := strings.LastIndexByte(payload, ' ')
	return i < 0 || payload[:i] == d.schema
}

func poke(wake chan<- struct{}) {
	select {
	case wake <- struct{}{}:
	default:
	}
}
