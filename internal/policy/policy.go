// Package policy holds sekisho's decisions as pure functions: the facts of a transaction go
// in (list hits, client trust, syntax), a verdict comes out. No I/O, no clock, no globals:
// the SMTP session gathers the facts and acts on the verdict (SPEC §4).
package policy

import (
	"errors"
	"fmt"

	"github.com/sekisho/sekisho/internal/mailaddr"
)

// Reply is an SMTP reply with its enhanced status code (RFC 3463).
type Reply struct {
	Code     int
	Enhanced [3]int
	Text     string
}

func (r Reply) String() string {
	return fmt.Sprintf("%d %d.%d.%d %s", r.Code, r.Enhanced[0], r.Enhanced[1], r.Enhanced[2], r.Text)
}

// Reason names why a decision was taken; the values appear in logs, metrics and the admin UI.
type Reason string

// Reasons.
const (
	ReasonBlackIP       Reason = "black-ip"
	ReasonBlackSender   Reason = "black-sender"
	ReasonSyntax        Reason = "bad-address"
	ReasonSourceRoute   Reason = "source-route"
	ReasonDecoy         Reason = "decoy"
	ReasonAfterDecoy    Reason = "after-decoy"
	ReasonRelayDenied   Reason = "relay-denied"
	ReasonAliasDisabled Reason = "alias-disabled"
	ReasonAlias         Reason = "alias"
	ReasonLocal         Reason = "local"
	ReasonOutbound      Reason = "outbound"
	ReasonWhiteFrom     Reason = "white-from"
	ReasonWhiteTo       Reason = "white-to"
	ReasonRelaySender   Reason = "relay-sender"
	ReasonRelayPair     Reason = "relay-pair"
	ReasonReply         Reason = "reply"
	ReasonBounce        Reason = "bounce"
	ReasonNullSender    Reason = "null-sender"
	ReasonUnknown       Reason = "unknown-sender"
)

// Replies used by the decisions.
var (
	ReplyBlack       = Reply{554, [3]int{5, 7, 1}, "Access denied"}
	ReplyBlackTemp   = Reply{421, [3]int{4, 7, 1}, "Try again later"}
	ReplyBadAddress  = Reply{553, [3]int{5, 1, 3}, "Address syntax not accepted"}
	ReplyNoMailbox   = Reply{550, [3]int{5, 1, 1}, "No such user"}
	ReplyRelayDenied = Reply{554, [3]int{5, 7, 1}, "Relay access denied"}
	ReplyRefused     = Reply{554, [3]int{5, 7, 1}, "Transaction refused"}
)

// Connect decides at connection time: a blacklisted client is refused (SPEC §4 stage 1).
// ok is false when the client must be refused with the returned reply.
func Connect(black bool, blackAction string) (reply Reply, ok bool) {
	if !black {
		return Reply{}, true
	}
	if blackAction == "tempfail" {
		return ReplyBlackTemp, false
	}
	return ReplyBlack, false
}

// RcptFacts are what the session knows about one RCPT command.
type RcptFacts struct {
	Addr        mailaddr.Addr // parsed recipient (zero when SyntaxErr is set)
	SyntaxErr   error         // from mailaddr.ParsePath
	AfterDecoy  bool          // this session already hit a decoy
	Decoy       bool          // Addr is in DECOY
	DecoyAction string        // "reject" or "discard"
	Local       bool          // Addr's domain is one of local_domains
	MayRelay    bool          // client in relay_networks or authenticated
	Alias       bool          // Addr is in ALIAS
	AliasOff    bool          // ... and disabled
	AliasTarget string        // ... and resolves to this mailbox
}

// RcptAction is what to do with a recipient.
type RcptAction int

// Recipient actions.
const (
	RcptAccept  RcptAction = iota // accept; deliver to Verdict.Rcpt
	RcptReject                    // refuse with Verdict.Reply
	RcptDiscard                   // answer 250 and drop silently
)

// RcptVerdict is the decision for one RCPT.
type RcptVerdict struct {
	Action    RcptAction
	Reply     Reply  // for RcptReject
	Reason    Reason // why
	Rcpt      string // the mailbox to deliver to (alias rewritten), for RcptAccept
	Blacklist bool   // put the client IP in BLACK now (decoy hit)
}

// Rcpt decides one recipient, in the order of SPEC §4 stage 4.
func Rcpt(f RcptFacts) RcptVerdict {
	switch {
	case f.AfterDecoy:
		return RcptVerdict{Action: RcptReject, Reply: ReplyRefused, Reason: ReasonAfterDecoy}
	case f.SyntaxErr != nil:
		reason := ReasonSyntax
		if errors.Is(f.SyntaxErr, mailaddr.ErrSourceRoute) {
			reason = ReasonSourceRoute
		}
		return RcptVerdict{Action: RcptReject, Reply: ReplyBadAddress, Reason: reason}
	case f.Decoy:
		v := RcptVerdict{Action: RcptReject, Reply: ReplyNoMailbox, Reason: ReasonDecoy, Blacklist: true}
		if f.DecoyAction == "discard" {
			v.Action, v.Reply = RcptDiscard, Reply{}
		}
		return v
	case !f.Local && !f.MayRelay:
		return RcptVerdict{Action: RcptReject, Reply: ReplyRelayDenied, Reason: ReasonRelayDenied}
	case f.Alias && f.AliasOff:
		return RcptVerdict{Action: RcptReject, Reply: ReplyNoMailbox, Reason: ReasonAliasDisabled}
	case f.Alias:
		return RcptVerdict{Action: RcptAccept, Reason: ReasonAlias, Rcpt: f.AliasTarget}
	}
	return RcptVerdict{Action: RcptAccept, Reason: ReasonLocal, Rcpt: f.Addr.Key()}
}

// DeliverFacts are what the session knows, after DATA, about one accepted recipient.
type DeliverFacts struct {
	Outbound    bool   // client in relay_networks or authenticated
	NullSender  bool   // MAIL FROM:<>
	NullMode    string // null_sender: "verify", "pass" or "hold"
	SPFFail     bool   // the sender's SPF result is fail: sender matches do not count
	WhiteFrom   bool   // WHITE kind from matches the sender for this recipient's owner
	WhiteTo     bool   // WHITE kind to matches the recipient
	RelaySender bool   // RELAY has the sender
	RelayPair   bool   // RELAY has the (sender, recipient) pair
	ReplyToOurs bool   // In-Reply-To/References names a message our users sent
}

// Action is pass or hold.
type Action string

// Delivery actions.
const (
	Pass Action = "pass"
	Hold Action = "hold"
)

// Verdict is the decision for one recipient after DATA.
type Verdict struct {
	Action Action
	Reason Reason
}

// Deliver decides one recipient after DATA (SPEC §4 stage 6).
func Deliver(f DeliverFacts) Verdict {
	switch {
	case f.Outbound:
		return Verdict{Pass, ReasonOutbound}
	case f.WhiteTo:
		return Verdict{Pass, ReasonWhiteTo}
	case f.NullSender:
		switch {
		case f.NullMode == "pass":
			return Verdict{Pass, ReasonNullSender}
		case f.NullMode == "verify" && f.ReplyToOurs:
			return Verdict{Pass, ReasonBounce}
		}
		return Verdict{Hold, ReasonNullSender}
	case f.SPFFail:
		return Verdict{Hold, ReasonUnknown}
	case f.WhiteFrom:
		return Verdict{Pass, ReasonWhiteFrom}
	case f.RelaySender:
		return Verdict{Pass, ReasonRelaySender}
	case f.RelayPair:
		return Verdict{Pass, ReasonRelayPair}
	case f.ReplyToOurs:
		return Verdict{Pass, ReasonReply}
	}
	return Verdict{Hold, ReasonUnknown}
}
