package policy

import (
	"fmt"
	"testing"

	"github.com/sekisho/sekisho/internal/mailaddr"
)

func TestConnect(t *testing.T) {
	tests := []struct {
		black  bool
		action string
		ok     bool
		code   int
	}{
		{false, "reject", true, 0},
		{true, "reject", false, 554},
		{true, "tempfail", false, 421},
	}
	for _, tt := range tests {
		r, ok := Connect(tt.black, tt.action)
		if ok != tt.ok || r.Code != tt.code {
			t.Errorf("Connect(%v, %q) = %v %v, want code %d ok %v", tt.black, tt.action, r, ok, tt.code, tt.ok)
		}
	}
}

func TestRcpt(t *testing.T) {
	taro := mailaddr.Addr{Local: "Taro", Domain: "example.jp"}
	ext := mailaddr.Addr{Local: "x", Domain: "other.test"}
	srcRoute := fmt.Errorf("%w: %q", mailaddr.ErrSourceRoute, "<@a:b@c>")
	tests := []struct {
		name   string
		f      RcptFacts
		action RcptAction
		code   int
		reason Reason
		rcpt   string
		black  bool
	}{
		{"local", RcptFacts{Addr: taro, Local: true}, RcptAccept, 0, ReasonLocal, "taro@example.jp", false},
		{"source route", RcptFacts{SyntaxErr: srcRoute, Local: true}, RcptReject, 553, ReasonSourceRoute, "", false},
		{"percent", RcptFacts{SyntaxErr: mailaddr.ErrPercentHack}, RcptReject, 553, ReasonSyntax, "", false},
		{"syntax beats relay rights", RcptFacts{SyntaxErr: mailaddr.ErrBangPath, MayRelay: true}, RcptReject, 553, ReasonSyntax, "", false},
		{"decoy", RcptFacts{Addr: taro, Local: true, Decoy: true, DecoyAction: "reject"}, RcptReject, 550, ReasonDecoy, "", true},
		{"decoy discard", RcptFacts{Addr: taro, Local: true, Decoy: true, DecoyAction: "discard"}, RcptDiscard, 0, ReasonDecoy, "", true},
		{"decoy beats relay rights", RcptFacts{Addr: taro, Decoy: true, MayRelay: true}, RcptReject, 550, ReasonDecoy, "", true},
		{"after decoy", RcptFacts{Addr: taro, Local: true, AfterDecoy: true}, RcptReject, 554, ReasonAfterDecoy, "", false},
		{"relay denied", RcptFacts{Addr: ext}, RcptReject, 554, ReasonRelayDenied, "", false},
		{"relay allowed", RcptFacts{Addr: ext, MayRelay: true}, RcptAccept, 0, ReasonLocal, "x@other.test", false},
		{"alias", RcptFacts{Addr: taro, Local: true, Alias: true, AliasTarget: "real@example.jp"}, RcptAccept, 0, ReasonAlias, "real@example.jp", false},
		{"alias disabled", RcptFacts{Addr: taro, Local: true, Alias: true, AliasOff: true, AliasTarget: "real@example.jp"}, RcptReject, 550, ReasonAliasDisabled, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := Rcpt(tt.f)
			if v.Action != tt.action || v.Reply.Code != tt.code || v.Reason != tt.reason || v.Rcpt != tt.rcpt || v.Blacklist != tt.black {
				t.Errorf("Rcpt = %+v, want action %v code %d reason %s rcpt %q blacklist %v", v, tt.action, tt.code, tt.reason, tt.rcpt, tt.black)
			}
		})
	}
}

func TestDeliver(t *testing.T) {
	tests := []struct {
		name string
		f    DeliverFacts
		want Verdict
	}{
		{"unknown sender held", DeliverFacts{}, Verdict{Hold, ReasonUnknown}},
		{"outbound", DeliverFacts{Outbound: true}, Verdict{Pass, ReasonOutbound}},
		{"white from", DeliverFacts{WhiteFrom: true}, Verdict{Pass, ReasonWhiteFrom}},
		{"white to", DeliverFacts{WhiteTo: true}, Verdict{Pass, ReasonWhiteTo}},
		{"relay sender", DeliverFacts{RelaySender: true}, Verdict{Pass, ReasonRelaySender}},
		{"relay pair", DeliverFacts{RelayPair: true}, Verdict{Pass, ReasonRelayPair}},
		{"reply to ours", DeliverFacts{ReplyToOurs: true}, Verdict{Pass, ReasonReply}},
		{"spf fail voids white from", DeliverFacts{SPFFail: true, WhiteFrom: true}, Verdict{Hold, ReasonUnknown}},
		{"spf fail voids relay", DeliverFacts{SPFFail: true, RelaySender: true, RelayPair: true}, Verdict{Hold, ReasonUnknown}},
		{"spf fail keeps white to", DeliverFacts{SPFFail: true, WhiteTo: true}, Verdict{Pass, ReasonWhiteTo}},
		{"null sender verify, not ours", DeliverFacts{NullSender: true, NullMode: "verify"}, Verdict{Hold, ReasonNullSender}},
		{"null sender verify, bounce of ours", DeliverFacts{NullSender: true, NullMode: "verify", ReplyToOurs: true}, Verdict{Pass, ReasonBounce}},
		{"null sender pass", DeliverFacts{NullSender: true, NullMode: "pass"}, Verdict{Pass, ReasonNullSender}},
		{"null sender hold, even ours", DeliverFacts{NullSender: true, NullMode: "hold", ReplyToOurs: true}, Verdict{Hold, ReasonNullSender}},
		{"null sender to white to", DeliverFacts{NullSender: true, NullMode: "hold", WhiteTo: true}, Verdict{Pass, ReasonWhiteTo}},
	}
	for _, tt := range tests {
		if got := Deliver(tt.f); got != tt.want {
			t.Errorf("%s: Deliver(%+v) = %v, want %v", tt.name, tt.f, got, tt.want)
		}
	}
}
