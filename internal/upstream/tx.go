package upstream

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Tx is a mail transaction held open on one upstream server while our own client is still
// giving recipients, so that the upstream's answer to each RCPT reaches our client at RCPT
// time (an unknown mailbox is refused before the message is sent, never bounced later).
//
// Begin opens it (XFORWARD, MAIL), Rcpt passes one recipient on, Data sends the message to
// the recipients that pass, Close ends it. A Tx is used by one goroutine.
type Tx struct {
	p        *Pool
	s        *server
	c        *conn
	env      Envelope // From, Client and flags; To is filled as recipients are accepted
	size     int
	accepted []string

	// first is the recipient given to Begin whose reply came with MAIL's; Rcpt hands it out.
	first      string
	firstReply *reply
}

// Begin starts a transaction for env (env.To is ignored) on the first server that takes
// MAIL, with the same failover as Send. size is the client's SIZE= hint (0: unknown).
// first, when not empty, is the first recipient: on a server that offers PIPELINING its RCPT
// goes in the same write as MAIL, saving a round trip, and the Rcpt call for it returns that
// reply. A 5xx to MAIL is returned as the bare *smtp.SMTPError; no reachable server wraps
// ErrUnavailable.
func (p *Pool) Begin(ctx context.Context, env Envelope, size int, first string) (*Tx, error) {
	env.To = nil
	if hasControl(env.From) {
		return nil, errors.New("upstream: control character in sender")
	}
	if hasControl(first) {
		return nil, errors.New("upstream: control character in recipient")
	}
	if p.closed.Load() {
		return nil, fmt.Errorf("%w: pool closed", ErrUnavailable)
	}
	var failed []string
	for _, s := range p.order(time.Now()) {
		if err := ctxErr(ctx); err != nil {
			return nil, fmt.Errorf("upstream: begin: %w", err)
		}
		tx, err := p.beginOn(ctx, s, &env, size, first)
		var fo *failoverError
		switch {
		case errors.As(err, &fo):
			if cerr := ctxErr(ctx); cerr != nil {
				return nil, fmt.Errorf("upstream: begin on %s: %w: %v", s.addr, cerr, fo.err)
			}
			p.markDown(s, fo.err)
			s.sends.Failed()
			failed = append(failed, s.addr+": "+fo.err.Error())
		case err != nil:
			p.markUp(s)
			s.sends.Refused() // a 5xx to MAIL
			return nil, err
		default:
			p.markUp(s)
			return tx, nil
		}
	}
	return nil, fmt.Errorf("%w: %s", ErrUnavailable, strings.Join(failed, "; "))
}

func (p *Pool) beginOn(ctx context.Context, s *server, env *Envelope, size int, first string) (*Tx, error) {
	s.inFlight.Add(1)
	for {
		c, reused := p.takeIdle(s), true
		if c == nil {
			var err error
			if c, err = p.dial(ctx, s); err != nil {
				s.inFlight.Add(-1)
				return nil, &failoverError{err}
			}
			reused = false
		}
		var firstReply *reply
		err := c.guard(ctx, func() (err error) {
			firstReply, err = p.mailOn(ctx, c, env, size, reused, first)
			return err
		})
		var stale *staleError
		if errors.As(err, &stale) {
			// The server may close idle connections whenever it likes; that is no
			// failure of the server: dial afresh.
			c.log.Debug("idle connection unusable", "err", stale.err)
			c.close()
			if err := ctxErr(ctx); err != nil {
				s.inFlight.Add(-1)
				return nil, err
			}
			continue
		}
		if err != nil {
			var fo *failoverError
			if errors.As(err, &fo) {
				c.broken = true
			} else if rerr := c.guard(ctx, func() error { return c.reset(ctx) }); rerr != nil {
				c.broken = true
			}
			p.put(s, c)
			s.inFlight.Add(-1)
			return nil, err
		}
		tx := &Tx{p: p, s: s, c: c, env: *env, size: size}
		if firstReply != nil {
			tx.first, tx.firstReply = first, firstReply
		}
		return tx, nil
	}
}

// staleError is a reused connection that turned out dead at its first command.
type staleError struct{ err error }

func (e *staleError) Error() string { return e.err.Error() }

// mailOn sends XFORWARD and MAIL on c. On a reused connection a RSET goes first, in the same
// pipelined write when the server offers PIPELINING, so reuse costs no extra round trip; so
// does RCPT for first, whose reply it returns (nil when it was not sent).
func (p *Pool) mailOn(ctx context.Context, c *conn, env *Envelope, size int, reused bool, first string) (*reply, error) {
	var cmds []string
	if reused {
		if !c.has("PIPELINING") {
			if err := c.reset(ctx); err != nil {
				return nil, &staleError{err}
			}
		} else {
			cmds = append(cmds, "RSET")
		}
	}
	nr := len(cmds)
	if p.opts.XForward && c.has("XFORWARD") {
		cmds = append(cmds, xforwardCommands(c.ext["XFORWARD"], env.Client)...)
	}
	nx := len(cmds)
	cmds = append(cmds, c.mailCommand(env, size))
	withFirst := first != "" && c.has("PIPELINING")
	if withFirst {
		cmds = append(cmds, "RCPT TO:<"+first+">")
	}
	replies, err := c.envelope(ctx, cmds, nx)
	if nr > 0 && (err != nil || len(replies) == 0 || !replies[0].positive()) {
		if err == nil {
			err = fmt.Errorf("rset: %d", replies[0].code)
		}
		return nil, &staleError{err}
	}
	if err != nil {
		return nil, &failoverError{err}
	}
	for _, r := range replies[nr:min(nx, len(replies))] {
		if r.code == 421 {
			return nil, &failoverError{fmt.Errorf("xforward: %w", r.err())}
		}
		if !r.positive() {
			c.log.Warn("xforward refused, sending without", "err", r.err())
		}
	}
	if len(replies) <= nx {
		return nil, &failoverError{errors.New("mail from: no reply")}
	}
	switch mail := replies[nx]; {
	case !mail.positive() && mail.code/100 == 5:
		return nil, mail.err()
	case !mail.positive():
		return nil, &failoverError{fmt.Errorf("mail from: %w", mail.err())}
	case withFirst && len(replies) <= nx+1:
		return nil, &failoverError{errors.New("rcpt to: no reply")}
	case withFirst:
		return &replies[nx+1], nil
	}
	return nil, nil
}

// Server is the upstream server of the transaction.
func (t *Tx) Server() string { return t.s.addr }

// Rcpt passes one recipient on. The upstream's refusal comes back as a bare
// *smtp.SMTPError; a lost connection (or a 421) as an error wrapping ErrUnavailable, after
// which the transaction can only be closed.
func (t *Tx) Rcpt(ctx context.Context, to string) error {
	if hasControl(to) {
		return errors.New("upstream: control character in recipient")
	}
	if t.c == nil || t.c.broken {
		return fmt.Errorf("%w: %s: connection lost", ErrUnavailable, t.s.addr)
	}
	var r reply
	if t.firstReply != nil && to == t.first {
		r, t.firstReply = *t.firstReply, nil
	} else {
		err := t.c.guard(ctx, func() (err error) {
			r, err = t.c.cmd(ctx, t.p.opts.CommandTimeout, "RCPT TO:<"+to+">")
			return err
		})
		if err != nil {
			t.c.broken = true
			t.p.markDown(t.s, err)
			t.s.sends.Failed()
			return fmt.Errorf("%w: %s: rcpt to: %w", ErrUnavailable, t.s.addr, err)
		}
	}
	switch {
	case r.positive():
		t.accepted = append(t.accepted, to)
		return nil
	case r.code == 421:
		t.c.broken = true
		t.p.markDown(t.s, r.err())
		t.s.sends.Failed()
		return fmt.Errorf("%w: %s: rcpt to: %w", ErrUnavailable, t.s.addr, r.err())
	}
	return r.err()
}

// Data sends body to rcpts, which must have been accepted by Rcpt. When rcpts is every
// accepted recipient, the message goes on this transaction; otherwise (some recipients are
// held rather than delivered), or when this connection failed before the message was
// handed over, it goes through Send, with failover. The errors are Send's; a recipient
// refused on the second try makes the whole call fail with a temporary error, before any
// message was sent.
func (t *Tx) Data(ctx context.Context, rcpts []string, body []byte) error {
	if err := checkCRLF(body); err != nil {
		return err
	}
	if t.c != nil && !t.c.broken && slices.Equal(rcpts, t.accepted) {
		err := t.dataHere(ctx, body)
		var fo *failoverError
		if !errors.As(err, &fo) {
			return err
		}
		t.p.markDown(t.s, fo.err)
		t.s.sends.Failed()
	}
	t.Close()
	env := t.env
	env.To = rcpts
	res, err := t.p.Send(ctx, env, body)
	if err != nil {
		return err
	}
	for i, rerr := range res.Rcpt {
		if rerr != nil {
			return fmt.Errorf("upstream: %s refused %s on the second try: %w", res.Server, rcpts[i], rerr)
		}
	}
	return nil
}

// dataHere sends the message on the open transaction.
func (t *Tx) dataHere(ctx context.Context, body []byte) error {
	c := t.c
	err := c.guard(ctx, func() error {
		r, err := c.cmd(ctx, t.p.opts.CommandTimeout, "DATA")
		switch {
		case err != nil:
			return &failoverError{err}
		case r.code == 354:
		case r.code/100 == 5:
			return r.err()
		default:
			return &failoverError{fmt.Errorf("data: %w", r.err())}
		}
		if sent, err := c.writeBody(ctx, body); err != nil {
			if !sent {
				return &failoverError{fmt.Errorf("send message: %w", err)}
			}
			return &unconfirmedError{fmt.Errorf("send message: %w", err)}
		}
		r, err = c.read(ctx, t.p.opts.DataTimeout, "end of data")
		switch {
		case err != nil:
			return &unconfirmedError{err}
		case r.positive():
			return nil
		case r.code/100 == 4, r.code/100 == 5:
			return r.err()
		}
		return &unconfirmedError{fmt.Errorf("unexpected reply %d to end of data", r.code)}
	})
	var (
		fo *failoverError
		un *unconfirmedError
	)
	switch {
	case errors.As(err, &fo):
		c.broken = true
		return err
	case errors.As(err, &un):
		c.broken = true
		t.p.markDown(t.s, un.err)
		t.s.sends.Unconfirmed()
		t.finish()
		return fmt.Errorf("%w: %s: %w", ErrUnconfirmed, t.s.addr, un.err)
	case err != nil:
		t.s.sends.Refused()
	default:
		t.s.sends.OK()
	}
	t.accepted = nil // the transaction is over: nothing to reset
	t.finish()
	return err
}

// Close ends the transaction and gives the connection back; the pool resets a reused
// connection (RSET) before its next transaction.
func (t *Tx) Close() { t.finish() }

func (t *Tx) finish() {
	if t.c == nil {
		return
	}
	t.p.put(t.s, t.c)
	t.s.inFlight.Add(-1)
	t.c = nil
}
