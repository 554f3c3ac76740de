package challenge

import (
	"time"
)

// Reason names why a challenge was not sent; the values appear in logs, metrics and the
// admin UI.
type Reason string

// Reasons for suppressing a challenge, in the order Decide checks them. The message stays
// held in every case; only the mail to its sender is not sent.
const (
	ReasonNullSender      Reason = "null-sender"     // a bounce or DSN: nobody to ask
	ReasonAutoSubmitted   Reason = "auto-submitted"  // Auto-Submitted other than "no" (RFC 3834)
	ReasonPrecedenceBulk  Reason = "precedence-bulk" // Precedence: bulk, list or junk
	ReasonListID          Reason = "list-id"         // List-Id: mailing list traffic (RFC 2919)
	ReasonUnauthenticated Reason = "unauthenticated" // the sender passed neither SPF nor aligned DKIM
	ReasonBlackClient     Reason = "black-client"    // the client IP is in BLACK
	ReasonInterval        Reason = "interval"        // challenged within challenge_interval: its URL stands
	ReasonIPCap           Reason = "ip-cap"          // challenge_per_ip_hour reached for the client IP
	ReasonGlobalCap       Reason = "global-cap"      // challenge_per_hour reached
)

// Facts are what the caller knows when a message has been held: from its envelope and
// header, the sender authentication, the lists, the sender's AUDIR entry and the counters.
// Decide reads nothing else.
type Facts struct {
	NullSender    bool      // the envelope sender is <>
	Header        Header    // from HeaderFacts
	Authenticated bool      // sender_auth passed (SPF pass or aligned DKIM), or sender_auth is off
	BlackClient   bool      // the client IP is in BLACK
	Now           time.Time // the time of the decision
	// LastChallenge is when the sender was last challenged (its AUDIR entry's time), zero if
	// never or if that token has expired. Two messages from one new sender decided at the
	// same moment both see zero: the caller makes the AUDIR write the point where only one
	// of them wins (the other reuses its token and sends nothing).
	LastChallenge time.Time
	// Interval is challenge_interval; zero: no interval.
	Interval time.Duration
	// IPCount and GlobalCount are the challenges caused in the past hour by the client IP and
	// in all; IPLimit and GlobalLimit are challenge_per_ip_hour and challenge_per_hour. A
	// limit of zero or less allows no challenge at all: the caps fail closed.
	IPCount, IPLimit         int
	GlobalCount, GlobalLimit int
}

// Decide reports whether a challenge mail may be sent for a held message, and if not, why.
// It is pure: the facts in, the decision out. The cheap and certain reasons come first, the
// caps last, so that a message that would be suppressed anyway uses up no budget (see
// Limiter.Decide).
func Decide(f Facts) (challenge bool, reason Reason) {
	switch {
	case f.NullSender:
		return false, ReasonNullSender
	case f.Header.autoSubmitted():
		return false, ReasonAutoSubmitted
	case f.Header.bulk():
		return false, ReasonPrecedenceBulk
	case f.Header.ListID:
		return false, ReasonListID
	case !f.Authenticated:
		return false, ReasonUnauthenticated
	case f.BlackClient:
		return false, ReasonBlackClient
	case f.Interval > 0 && !f.LastChallenge.IsZero() && f.Now.Before(f.LastChallenge.Add(f.Interval)):
		return false, ReasonInterval
	case f.IPCount >= f.IPLimit:
		return false, ReasonIPCap
	case f.GlobalCount >= f.GlobalLimit:
		return false, ReasonGlobalCap
	}
	return true, ""
}
