package challenge_test

import (
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/challenge"
)

var t0 = time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)

// ok are facts that allow a challenge; each test row changes one thing.
func ok() challenge.Facts {
	return challenge.Facts{
		Authenticated: true,
		Now:           t0,
		Interval:      24 * time.Hour,
		IPCount:       0, IPLimit: 20,
		GlobalCount: 0, GlobalLimit: 1000,
	}
}

func TestDecide(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*challenge.Facts)
		want   challenge.Reason // "" = challenge
	}{
		{"challenge", func(*challenge.Facts) {}, ""},
		{"null sender", func(f *challenge.Facts) { f.NullSender = true }, challenge.ReasonNullSender},
		{"auto-submitted no", func(f *challenge.Facts) { f.Header.AutoSubmitted = []string{"no"} }, ""},
		{"auto-submitted auto-replied", func(f *challenge.Facts) { f.Header.AutoSubmitted = []string{"auto-replied"} }, challenge.ReasonAutoSubmitted},
		{"auto-submitted auto-generated", func(f *challenge.Facts) { f.Header.AutoSubmitted = []string{"auto-generated"} }, challenge.ReasonAutoSubmitted},
		{"auto-submitted unknown", func(f *challenge.Facts) { f.Header.AutoSubmitted = []string{"auto-notified"} }, challenge.ReasonAutoSubmitted},
		{"auto-submitted empty", func(f *challenge.Facts) { f.Header.AutoSubmitted = []string{""} }, challenge.ReasonAutoSubmitted},
		{"auto-submitted no then yes", func(f *challenge.Facts) { f.Header.AutoSubmitted = []string{"no", "auto-replied"} }, challenge.ReasonAutoSubmitted},
		{"precedence bulk", func(f *challenge.Facts) { f.Header.Precedence = []string{"bulk"} }, challenge.ReasonPrecedenceBulk},
		{"precedence list", func(f *challenge.Facts) { f.Header.Precedence = []string{"list"} }, challenge.ReasonPrecedenceBulk},
		{"precedence junk", func(f *challenge.Facts) { f.Header.Precedence = []string{"junk"} }, challenge.ReasonPrecedenceBulk},
		{"precedence first-class", func(f *challenge.Facts) { f.Header.Precedence = []string{"first-class"} }, ""},
		{"precedence urgent", func(f *challenge.Facts) { f.Header.Precedence = []string{"urgent"} }, ""},
		{"list-id", func(f *challenge.Facts) { f.Header.ListID = true }, challenge.ReasonListID},
		{"unauthenticated", func(f *challenge.Facts) { f.Authenticated = false }, challenge.ReasonUnauthenticated},
		{"black client", func(f *challenge.Facts) { f.BlackClient = true }, challenge.ReasonBlackClient},
		{"within interval", func(f *challenge.Facts) { f.LastChallenge = t0.Add(-23 * time.Hour) }, challenge.ReasonInterval},
		{"challenged just now", func(f *challenge.Facts) { f.LastChallenge = t0 }, challenge.ReasonInterval},
		{"challenged in the future (clock skew)", func(f *challenge.Facts) { f.LastChallenge = t0.Add(time.Minute) }, challenge.ReasonInterval},
		{"interval just over", func(f *challenge.Facts) { f.LastChallenge = t0.Add(-24 * time.Hour) }, ""},
		{"interval long over", func(f *challenge.Facts) { f.LastChallenge = t0.Add(-100 * time.Hour) }, ""},
		{"no interval", func(f *challenge.Facts) { f.LastChallenge, f.Interval = t0, 0 }, ""},
		{"ip below cap", func(f *challenge.Facts) { f.IPCount = 19 }, ""},
		{"ip at cap", func(f *challenge.Facts) { f.IPCount = 20 }, challenge.ReasonIPCap},
		{"ip over cap", func(f *challenge.Facts) { f.IPCount = 25 }, challenge.ReasonIPCap},
		{"ip cap zero", func(f *challenge.Facts) { f.IPLimit = 0 }, challenge.ReasonIPCap},
		{"global below cap", func(f *challenge.Facts) { f.GlobalCount = 999 }, ""},
		{"global at cap", func(f *challenge.Facts) { f.GlobalCount = 1000 }, challenge.ReasonGlobalCap},
		{"global cap zero", func(f *challenge.Facts) { f.GlobalLimit = 0 }, challenge.ReasonGlobalCap},
		{"zero facts", func(f *challenge.Facts) { *f = challenge.Facts{} }, challenge.ReasonUnauthenticated},
		// When several rules apply, the first in the order of the constants names it.
		{"null sender before auto-submitted", func(f *challenge.Facts) {
			f.NullSender, f.Header.AutoSubmitted = true, []string{"auto-replied"}
		}, challenge.ReasonNullSender},
		{"auto-submitted before list", func(f *challenge.Facts) {
			f.Header.AutoSubmitted, f.Header.Precedence, f.Header.ListID = []string{"auto-generated"}, []string{"list"}, true
		}, challenge.ReasonAutoSubmitted},
		{"precedence before list-id", func(f *challenge.Facts) {
			f.Header.Precedence, f.Header.ListID = []string{"bulk"}, true
		}, challenge.ReasonPrecedenceBulk},
		{"list-id before unauthenticated", func(f *challenge.Facts) {
			f.Header.ListID, f.Authenticated = true, false
		}, challenge.ReasonListID},
		{"unauthenticated before black", func(f *challenge.Facts) {
			f.Authenticated, f.BlackClient = false, true
		}, challenge.ReasonUnauthenticated},
		{"black before interval", func(f *challenge.Facts) {
			f.BlackClient, f.LastChallenge = true, t0
		}, challenge.ReasonBlackClient},
		{"interval before caps", func(f *challenge.Facts) {
			f.LastChallenge, f.IPCount, f.GlobalCount = t0, 20, 1000
		}, challenge.ReasonInterval},
		{"ip cap before global cap", func(f *challenge.Facts) {
			f.IPCount, f.GlobalCount = 20, 1000
		}, challenge.ReasonIPCap},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := ok()
			tc.change(&f)
			got, reason := challenge.Decide(f)
			if got != (tc.want == "") || reason != tc.want {
				t.Errorf("Decide = %v, %q; want %v, %q", got, reason, tc.want == "", tc.want)
			}
		})
	}
}
