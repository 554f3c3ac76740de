package smtpproxy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/sekisho/sekisho/internal/harvest"
	"github.com/sekisho/sekisho/internal/mailaddr"
	"github.com/sekisho/sekisho/internal/metrics"
	"github.com/sekisho/sekisho/internal/policy"
	"github.com/sekisho/sekisho/internal/store"
	"github.com/sekisho/sekisho/internal/upstream"
	"github.com/sekisho/sekisho/internal/wiretap"
)

type backend struct {
	p  *Proxy
	lc Listener
}

// NewSession is called at the client's first EHLO/HELO.
func (b *backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	p := b.p
	ip := clientIP(c.Conn())
	ctx, cancel := context.WithCancel(context.Background())
	st := p.settings()
	s := &session{
		p: p, cfg: st, lc: b.lc, conn: c, ctx: ctx, cancel: cancel,
		clientIP: ip, trusted: st.trusted(ip), tap: findTap(c.Conn()),
		log: p.log.With("client", ip.String(), "helo", c.Hostname()),
	}
	return s, nil
}

// session is one SMTP connection, from EHLO to QUIT. Its methods follow the order of a
// transaction: Mail, Rcpt, Data, then Reset.
type session struct {
	p        *Proxy
	cfg      *settings // the options in force when the session started
	lc       Listener
	conn     *smtp.Conn
	tap      *wiretap.Conn // raw RCPT paths and the TLS state; nil only in tests of parts
	ctx      context.Context
	cancel   context.CancelFunc
	log      *slog.Logger
	clientIP netip.Addr
	trusted  bool   // in relay_networks
	user     string // authenticated user, "" if none
	burned   bool   // a decoy was hit: everything after is refused

	// The current transaction.
	id       string
	start    time.Time
	from     mailaddr.Addr
	mailOpts smtp.MailOptions
	rcpts    []recipient
	tx       *upstream.Tx
	counted  bool            // the transaction's verdict is counted
	refused  bool            // a recipient was refused ...
	refusal  metrics.Verdict // ... the last one with this verdict
}

// recipient is one accepted RCPT.
type recipient struct {
	Given   string        // as the client gave it (canonical key)
	Mailbox string        // where it goes (alias rewritten)
	Alias   bool          // Given is an alias of Mailbox
	Discard bool          // accepted and dropped (decoy with decoy_action = discard)
	Reason  policy.Reason // the RCPT decision
}

var _ smtp.AuthSession = (*session)(nil)

func smtpErr(r policy.Reply) *smtp.SMTPError {
	return &smtp.SMTPError{Code: r.Code, EnhancedCode: smtp.EnhancedCode(r.Enhanced), Message: r.Text}
}

// Replies of the data path that are not policy decisions.
var (
	errShuttingDown  = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "Service shutting down, try again later"}
	errNeedTLS       = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Must issue a STARTTLS command first"}
	errNeedAuth      = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}
	errBadSender     = &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 1, 7}, Message: "Sender address syntax not accepted"}
	errBareLF        = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "Bare CR or LF not allowed in message"}
	errUpstreamDown  = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 4, 1}, Message: "Mail servers unavailable, try again later"}
	errLocal         = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Local error, try again later"}
	errHeldQuota     = &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 2, 2}, Message: "Too many messages held for this sender"}
	errAuthBadCreds  = smtp.ErrAuthFailed
	errAuthNotOfferd = smtp.ErrAuthUnsupported
)

// upstreamErr converts an upstream failure into the reply for our client: an upstream SMTP
// reply is relayed as is, no reachable server is 451 4.4.1, anything else 451 4.3.0.
func upstreamErr(err error) *smtp.SMTPError {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		if se.Code == 421 { // the upstream closes; our client's connection stays open
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 4, 2}, Message: se.Message}
		}
		return se
	}
	if errors.Is(err, upstream.ErrUnavailable) {
		return errUpstreamDown
	}
	return errLocal
}

// AuthMechanisms offers AUTH only on submission listeners and only after TLS (the wiretap
// owns TLS, so go-smtp is told to allow AUTH and the session decides).
func (s *session) AuthMechanisms() []string {
	if s.lc.Role != "submission" || !s.isTLS() {
		return nil
	}
	return []string{sasl.Plain, sasl.Login}
}

// Auth checks a user's password against the store.
func (s *session) Auth(mech string) (sasl.Server, error) {
	if s.lc.Role != "submission" || !s.isTLS() {
		return nil, errAuthNotOfferd
	}
	check := func(username, pw string) error {
		if !s.p.checkPassword(s.ctx, username, pw) {
			s.log.Info("smtp auth failed", "user", username)
			return errAuthBadCreds
		}
		s.user = strings.ToLower(username)
		s.log = s.log.With("user", s.user)
		return nil
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(identity, username, pw string) error {
			if identity != "" && identity != username {
				return errAuthBadCreds
			}
			return check(username, pw)
		}), nil
	case sasl.Login:
		return newLoginServer(check), nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

// Mail starts a transaction.
func (s *session) Mail(from string, opts *smtp.MailOptions) error {
	switch {
	case s.burned:
		s.p.deps.Metrics.Transaction(metrics.RefusedBlack)
		return smtpErr(policy.ReplyRefused)
	case s.p.draining.Load():
		return errShuttingDown
	case s.lc.RequireTLS && !s.isTLS():
		return errNeedTLS
	case s.lc.Role == "submission" && s.user == "":
		return errNeedAuth
	}
	var addr mailaddr.Addr
	if from != "" {
		var err error
		if addr, err = mailaddr.Parse(from); err != nil {
			s.log.Info("smtp mail rejected", "from", from, "err", err)
			s.p.deps.Metrics.Transaction(metrics.RefusedSyntax)
			return errBadSender
		}
		if s.p.deps.Lists.BlackSender(addr.Key(), s.p.now()) {
			s.log.Info("smtp mail rejected", "from", addr.Key(), "reason", policy.ReasonBlackSender)
			s.p.deps.Metrics.Transaction(metrics.RefusedBlack)
			return smtpErr(policy.ReplyBlack)
		}
	}
	s.id = s.p.newID()
	s.start = s.p.now()
	s.from = addr
	if opts != nil {
		s.mailOpts = *opts
	}
	return nil
}

func (s *session) isTLS() bool {
	if s.tap == nil {
		return false
	}
	_, ok := s.tap.ConnectionState()
	return ok
}

// Rcpt checks one recipient in the order of SPEC §4 stage 4, then asks the upstream server
// whether it takes the mailbox, so that its answer reaches our client now.
func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	raw, ok := s.rawRcpt(to)
	if !ok {
		s.log.Warn("smtp rcpt: raw path not seen on the wire", "id", s.id, "rcpt", to)
		s.refuseRcpt(metrics.Tempfail)
		return errLocal
	}
	addr, perr := mailaddr.ParsePath(raw)
	key := addr.Key()
	f := policy.RcptFacts{
		Addr: addr, SyntaxErr: perr, AfterDecoy: s.burned, DecoyAction: s.cfg.DecoyAction,
		MayRelay: s.trusted || s.user != "",
	}
	if perr == nil {
		l := s.p.deps.Lists
		f.Decoy = l.Decoy(key)
		f.Local = s.cfg.local[addr.Domain]
		if t, ok := l.Alias(key); ok {
			f.Alias, f.AliasOff, f.AliasTarget = true, t.Disabled, t.Mailbox
		}
	}
	v := policy.Rcpt(f)
	if v.Blacklist {
		s.decoyHit(key)
	}
	switch v.Action {
	case policy.RcptReject:
		s.log.Info("smtp rcpt rejected", "id", s.id, "rcpt", raw, "reason", v.Reason, "reply", v.Reply.Code)
		s.refuseRcpt(rcptVerdict(v.Reason))
		return smtpErr(v.Reply)
	case policy.RcptDiscard:
		s.log.Info("smtp rcpt discarded", "id", s.id, "rcpt", key, "reason", v.Reason)
		s.p.deps.Metrics.Recipients(metrics.Decoy, 1)
		s.rcpts = append(s.rcpts, recipient{Given: key, Discard: true, Reason: v.Reason})
		return nil
	}
	for _, r := range s.rcpts {
		if !r.Discard && r.Mailbox == v.Rcpt { // two aliases of one mailbox: one copy
			s.rcpts = append(s.rcpts, recipient{Given: key, Mailbox: v.Rcpt, Alias: f.Alias, Discard: true, Reason: v.Reason})
			return nil
		}
	}
	if err := s.verifyUpstream(v.Rcpt); err != nil {
		s.log.Info("smtp rcpt rejected", "id", s.id, "rcpt", key, "reason", "upstream", "reply", err.Code)
		s.refuseRcpt(replyVerdict(err, metrics.RefusedUpstream))
		return err
	}
	s.rcpts = append(s.rcpts, recipient{Given: key, Mailbox: v.Rcpt, Alias: f.Alias, Reason: v.Reason})
	return nil
}

// refuseRcpt counts a refused recipient, and remembers its verdict for the transaction.
func (s *session) refuseRcpt(v metrics.Verdict) {
	s.p.deps.Metrics.Recipients(v, 1)
	s.refused, s.refusal = true, v
}

// rcptVerdict is the metrics verdict of a recipient refused by the policy.
func rcptVerdict(r policy.Reason) metrics.Verdict {
	switch r {
	case policy.ReasonDecoy:
		return metrics.Decoy
	case policy.ReasonRelayDenied:
		return metrics.RefusedRelay
	case policy.ReasonAliasDisabled:
		return metrics.AliasDisabled
	case policy.ReasonAfterDecoy:
		return metrics.RefusedBlack
	}
	return metrics.RefusedSyntax // bad address, source route
}

// replyVerdict is Tempfail for a 4xx reply, else permanent.
func replyVerdict(e *smtp.SMTPError, permanent metrics.Verdict) metrics.Verdict {
	if e.Code/100 == 4 {
		return metrics.Tempfail
	}
	return permanent
}

// endTx counts the transaction and its undecided recipients with one verdict (a DATA that
// failed or was refused).
func (s *session) endTx(v metrics.Verdict) {
	n := 0
	for _, r := range s.rcpts {
		if !r.Discard {
			n++
		}
	}
	s.p.deps.Metrics.Transaction(v)
	s.p.deps.Metrics.Recipients(v, n)
	s.counted = true
}

// verifyUpstream opens the upstream transaction on the first recipient and passes RCPT on.
func (s *session) verifyUpstream(mailbox string) *smtp.SMTPError {
	if s.tx == nil {
		tx, err := s.cfg.up.Begin(s.ctx, s.envelope(), int(s.mailOpts.Size), mailbox)
		if err != nil {
			s.log.Warn("upstream unavailable", "id", s.id, "err", err)
			return upstreamErr(err)
		}
		s.tx = tx
	}
	if err := s.tx.Rcpt(s.ctx, mailbox); err != nil {
		return upstreamErr(err)
	}
	return nil
}

func (s *session) envelope() upstream.Envelope {
	proto := "ESMTP"
	if s.conn.Hostname() == "" {
		proto = "SMTP"
	}
	return upstream.Envelope{
		From:     s.from.String(),
		SMTPUTF8: s.mailOpts.UTF8,
		EightBit: s.mailOpts.Body == smtp.Body8BitMIME,
		Client:   upstream.Client{Addr: s.clientIP, Helo: s.conn.Hostname(), Proto: proto},
	}
}

// decoyHit puts the client in BLACK at once, for every node (SPEC §4 stage 4). A harvest
// trap (an address planted in a web page, SPEC §5) also puts the IP that harvested it in
// BLACK, and records the hit with the visit.
func (s *session) decoyHit(decoy string) {
	s.burned = true
	s.p.deps.Metrics.DecoyHit()
	now := s.p.now()
	e := store.Entry{
		List: store.Black, Key: s.clientIP.String(), Source: "decoy",
		Note: "mailed decoy " + decoy, Expires: now.Add(s.cfg.BlackTTL),
	}
	if err := s.p.deps.Store.Put(s.ctx, e); err != nil {
		s.log.Error("blacklist decoy hit", "id", s.id, "err", err)
		return
	}
	if d, ok := s.p.deps.Lists.DecoyOf(decoy); ok && d.Source == harvest.Source {
		s.harvestHit(decoy, d.Target, now)
	}
	if err := s.p.deps.Lists.CatchUp(s.ctx, s.p.deps.Store); err != nil {
		s.log.Warn("lists catch up", "err", err)
	}
	s.log.Warn("decoy hit: client blacklisted", "id", s.id, "decoy", decoy, "ttl", s.cfg.BlackTTL)
}

// harvestHit blacklists the visitor a trap address was planted for (source harvest) and
// records the hit.
func (s *session) harvestHit(trap, harvester string, now time.Time) {
	if err := s.p.deps.Store.AddTrapHit(s.ctx, trap, s.clientIP.String(), s.from.String(), now); err != nil {
		s.log.Error("record harvest trap hit", "id", s.id, "trap", trap, "err", err)
	}
	s.p.deps.Metrics.HarvestHit()
	ip, err := netip.ParseAddr(harvester)
	if err != nil {
		s.log.Error("harvest trap without a visitor IP", "id", s.id, "trap", trap, "target", harvester)
		return
	}
	if ip = ip.Unmap(); ip == s.clientIP {
		s.log.Info("harvest trap hit by its harvester", "id", s.id, "trap", trap, "harvester", ip.String())
		return
	}
	e := store.Entry{
		List: store.Black, Key: ip.String(), Source: harvest.Source,
		Note: "harvested trap " + trap + ", mailed from " + s.clientIP.String(), Expires: now.Add(s.cfg.BlackTTL),
	}
	if err := s.p.deps.Store.Put(s.ctx, e); err != nil {
		s.log.Error("blacklist harvester", "id", s.id, "harvester", ip.String(), "err", err)
		return
	}
	s.log.Warn("harvest trap hit: harvester blacklisted", "id", s.id, "trap", trap, "harvester", ip.String(), "ttl", s.cfg.BlackTTL)
}

// Data reads the message, decides per recipient, holds or forwards, and answers 250 only
// when every copy is accepted upstream or committed to the store.
func (s *session) Data(r io.Reader) error {
	if s.burned {
		io.Copy(io.Discard, r)
		if s.tap != nil {
			s.tap.TakeMessage() // dropped
		}
		s.endTx(metrics.Decoy)
		return smtpErr(policy.ReplyRefused)
	}
	body, err := s.readData(r)
	if errors.Is(err, errBareLineEnding) {
		s.log.Info("smtp data rejected", "id", s.id, "reason", "bare-line-ending")
		s.endTx(metrics.RefusedSyntax)
		return errBareLF
	}
	if err != nil {
		var se *smtp.SMTPError
		if errors.As(err, &se) {
			s.log.Info("smtp data rejected", "id", s.id, "reply", se.Code, "err", se.Message)
			s.endTx(replyVerdict(se, metrics.RefusedSyntax))
			return se
		}
		s.endTx(metrics.Tempfail)
		return errLocal
	}
	t := transaction{s: s, body: body, hdr: parseHeader(body)}
	return t.run()
}

// Reset ends the transaction; the upstream connection goes back to the pool. A transaction
// that ends with every recipient refused is counted with the verdict of the last one.
func (s *session) Reset() {
	if s.tx != nil {
		s.tx.Close()
		s.tx = nil
	}
	if s.id != "" && !s.counted && s.refused && len(s.rcpts) == 0 {
		s.p.deps.Metrics.Transaction(s.refusal)
	}
	s.id, s.from, s.rcpts, s.mailOpts = "", mailaddr.Addr{}, nil, smtp.MailOptions{}
	s.counted, s.refused = false, false
}

// Logout frees the session.
func (s *session) Logout() error {
	s.Reset()
	s.cancel()
	return nil
}

// rawRcpt returns the RCPT path exactly as the client sent it; go-smtp's processed address
// has lost source routes and quoting, so it is never checked in its place.
func (s *session) rawRcpt(processed string) (string, bool) {
	if s.tap == nil {
		return "", false
	}
	return s.tap.NextRcpt(processed)
}
