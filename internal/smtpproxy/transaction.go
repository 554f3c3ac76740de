package smtpproxy

import (
	"errors"
	"log/slog"

	"github.com/emersion/go-smtp"

	"github.com/sekisho/sekisho/internal/metrics"
	"github.com/sekisho/sekisho/internal/policy"
	"github.com/sekisho/sekisho/internal/senderauth"
	"github.com/sekisho/sekisho/internal/store"
)

// transaction is the part of a session after the message arrived: decide, hold, forward,
// answer, log.
type transaction struct {
	s    *session
	body []byte
	hdr  header
	msg  []byte // Received + body, what is forwarded or held

	pass []string
	held []store.HeldRcpt
	verd []slog.Attr
	auth *senderauth.Result // computed once, when needed
}

func (t *transaction) run() error {
	s := t.s
	t.decide()
	if len(t.pass) == 0 && len(t.held) == 0 { // only discarded recipients
		t.logDone("discarded", nil)
		s.p.deps.Metrics.Transaction(metrics.Decoy) // the recipients were counted at RCPT
		s.counted = true
		return nil
	}
	t.msg = t.withReceived()

	var heldID string
	if len(t.held) > 0 {
		id, err := t.hold()
		if err != nil {
			t.logDone("failed", err)
			s.endTx(metrics.Tempfail)
			return err
		}
		heldID = id
	}
	if len(t.pass) > 0 {
		if err := s.tx.Data(s.ctx, t.pass, t.msg); err != nil {
			if heldID != "" { // nothing is kept when the client is told to retry or give up
				if rerr := s.p.deps.Store.HeldRemove(s.ctx, heldID, nil); rerr != nil {
					s.log.Error("undo hold", "id", s.id, "held", heldID, "err", rerr)
				}
			}
			reply := upstreamErr(err)
			t.logDone("failed", err)
			s.endTx(replyVerdict(reply, metrics.RefusedUpstream))
			if reply.Code/100 == 4 {
				s.log.Warn("upstream data failed", "id", s.id, "err", err)
			}
			return reply
		}
	}
	t.afterDelivery()
	if len(t.held) > 0 {
		var rcpts []string
		for _, h := range t.held {
			rcpts = append(rcpts, h.Rcpt)
		}
		t.challenge(rcpts)
	}
	t.logDone("ok", nil)
	t.count()
	return nil
}

// count counts a transaction that went through: held when any copy was held.
func (t *transaction) count() {
	m := t.s.p.deps.Metrics
	if len(t.held) > 0 {
		m.Transaction(metrics.Held)
	} else {
		m.Transaction(metrics.Pass)
	}
	m.Recipients(metrics.Pass, len(t.pass))
	m.Recipients(metrics.Held, len(t.held))
	t.s.counted = true
}

// decide asks the policy about each recipient.
func (t *transaction) decide() {
	s := t.s
	l := s.p.deps.Lists
	sender := s.from.Key()
	outbound := s.trusted || s.user != ""
	replyToOurs := false
	if !outbound {
		for _, id := range referenced(t.hdr, t.body, s.from.IsNull()) {
			if l.RelayMessageID(id) {
				replyToOurs = true
				break
			}
		}
	}
	for _, r := range s.rcpts {
		if r.Discard {
			t.verd = append(t.verd, slog.String(r.Given, string(r.Reason)))
			continue
		}
		f := policy.DeliverFacts{
			Outbound:    outbound,
			NullSender:  s.from.IsNull(),
			NullMode:    s.cfg.NullSender,
			ReplyToOurs: replyToOurs,
			WhiteTo:     l.WhiteTo(r.Mailbox, r.Mailbox) || (r.Alias && l.WhiteTo(r.Given, r.Mailbox)),
		}
		if !f.NullSender {
			f.WhiteFrom = l.WhiteFrom(sender, r.Mailbox)
			f.RelaySender = l.RelaySender(sender)
			f.RelayPair = l.RelayPair(sender, r.Mailbox)
		}
		if !f.NullSender && !f.Outbound && !f.WhiteTo && (f.WhiteFrom || f.RelaySender || f.RelayPair || f.ReplyToOurs) {
			f.SPFFail = t.authResult().SPFFail
		}
		v := policy.Deliver(f)
		t.verd = append(t.verd, slog.String(r.Given, string(v.Action)+":"+string(v.Reason)))
		if v.Action == policy.Pass {
			t.pass = append(t.pass, r.Mailbox)
		} else {
			t.held = append(t.held, store.HeldRcpt{Rcpt: r.Mailbox, Owner: r.Mailbox, Reason: string(v.Reason)})
		}
	}
}

// withReceived prepends our Received header.
func (t *transaction) withReceived() []byte {
	s := t.s
	with := "ESMTP"
	if s.isTLS() {
		with += "S"
	}
	if s.user != "" {
		with += "A"
	}
	var forRcpt string
	if len(s.rcpts) == 1 {
		forRcpt = s.rcpts[0].Given
	}
	rec := received(receivedInfo{
		Helo: s.conn.Hostname(), ClientIP: s.clientIP.String(), By: s.cfg.Hostname,
		With: with, ID: s.id, For: forRcpt, At: s.p.now(),
	})
	msg := make([]byte, 0, len(rec)+len(t.body))
	return append(append(msg, rec...), t.body...)
}

// hold stores the message for the held recipients, committed before it returns.
func (t *transaction) hold() (string, error) {
	s := t.s
	st := s.p.deps.Store
	if max := s.cfg.MaxHeldPerSender; max > 0 && !s.from.IsNull() {
		n, err := st.HeldCount(s.ctx, s.from.Key())
		if err != nil {
			s.log.Error("held count", "id", s.id, "err", err)
			return "", errLocal
		}
		if n >= max {
			return "", errHeldQuota
		}
	}
	now := s.p.now()
	h := store.Held{
		Received: now, Expires: now.Add(s.cfg.HoldFor), ClientIP: s.clientIP.String(),
		Helo: s.conn.Hostname(), From: s.from.Key(), Subject: t.hdr.Subject, Rcpts: t.held,
	}
	if s.p.deps.Auth != nil { // for the digest and the held-mail pages: who may this be?
		h.Auth = t.authResult().String()
	}
	if err := st.Hold(s.ctx, &h, t.msg); err != nil {
		s.log.Error("hold message", "id", s.id, "err", err)
		return "", errLocal
	}
	return h.ID, nil
}

// afterDelivery records pass history: the replies to mail our users send will pass (RELAY
// reverse pairs), and alias hits are counted.
func (t *transaction) afterDelivery() {
	s := t.s
	st := s.p.deps.Store
	l := s.p.deps.Lists
	now := s.p.now()
	if (s.trusted || s.user != "") && !s.from.IsNull() {
		sender := s.from.Key()
		added := false
		for _, rcpt := range t.pass {
			if l.RelayPair(rcpt, sender) {
				continue
			}
			e := store.Entry{List: store.Relay, Key: store.PairKey(rcpt, sender), Kind: store.KindPair, Note: "outbound"}
			if err := st.Put(s.ctx, e); err != nil {
				s.log.Error("relay pair", "id", s.id, "err", err)
				continue
			}
			added = true
		}
		if id := msgIDs(t.hdr.MessageID, nil); len(id) == 1 && !l.RelayMessageID(id[0]) {
			e := store.Entry{List: store.Relay, Key: id[0], Kind: store.KindMsgID, Note: "sent by " + sender, Expires: now.Add(s.cfg.HoldFor)}
			if err := st.Put(s.ctx, e); err != nil {
				s.log.Error("relay message-id", "id", s.id, "err", err)
			} else {
				added = true
			}
		}
		if added {
			if err := l.CatchUp(s.ctx, st); err != nil {
				s.log.Warn("lists catch up", "err", err)
			}
		}
	}
	for _, r := range s.rcpts {
		if r.Alias && !r.Discard {
			if t, ok := l.Alias(r.Given); ok {
				if err := st.Hit(s.ctx, store.Alias, r.Given, "", t.Owner, s.from.Key(), now); err != nil {
					s.log.Warn("alias hit", "id", s.id, "err", err)
				}
			}
		}
	}
}

// logDone writes the one line per transaction (SPEC §10).
func (t *transaction) logDone(result string, err error) {
	s := t.s
	attrs := []any{
		"id", s.id, "from", s.from.Key(), slog.Group("rcpt", attrsAny(t.verd)...),
		"result", result, "bytes", len(t.body), "duration", s.p.now().Sub(s.start).Round(1e5).String(),
	}
	if s.tx != nil {
		attrs = append(attrs, "upstream", s.tx.Server())
	}
	if err != nil {
		var se *smtp.SMTPError
		if errors.As(err, &se) {
			attrs = append(attrs, "reply", se.Code)
		}
		attrs = append(attrs, "err", err)
	}
	s.log.Info("smtp transaction", attrs...)
}

func attrsAny(a []slog.Attr) []any {
	out := make([]any, len(a))
	for i, x := range a {
		out[i] = x
	}
	return out
}
