package challenge_test

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/challenge"
)

// allowed are facts that pass every rule but the caps.
func allowed(now time.Time) challenge.Facts {
	return challenge.Facts{Authenticated: true, Now: now, Interval: 24 * time.Hour}
}

func mustDecide(t *testing.T, l *challenge.Limiter, ip string, f challenge.Facts) challenge.Reason {
	t.Helper()
	ok, reason, err := l.Decide(t.Context(), netip.MustParseAddr(ip), f)
	if err != nil {
		t.Fatalf("Limiter.Decide: %v", err)
	}
	if ok != (reason == "") {
		t.Fatalf("Limiter.Decide = %v, %q", ok, reason)
	}
	return reason
}

func TestLimiterPerIP(t *testing.T) {
	l := challenge.NewLimiter(3, 1000, nil)
	now := t0
	for i := range 3 {
		if r := mustDecide(t, l, "192.0.2.1", allowed(now)); r != "" {
			t.Fatalf("challenge %d: %q", i+1, r)
		}
		now = now.Add(10 * time.Minute)
	}
	// t0+30m: three in the past hour.
	if r := mustDecide(t, l, "192.0.2.1", allowed(now)); r != challenge.ReasonIPCap {
		t.Errorf("4th challenge from one IP: %q, want ip-cap", r)
	}
	if r := mustDecide(t, l, "::ffff:192.0.2.1", allowed(now)); r != challenge.ReasonIPCap {
		t.Errorf("4th challenge from the IP, IPv4-mapped: %q, want ip-cap", r)
	}
	if r := mustDecide(t, l, "192.0.2.2", allowed(now)); r != "" {
		t.Errorf("another IP: %q, want a challenge", r)
	}
	// At t0+1h the first challenge leaves the window.
	if r := mustDecide(t, l, "192.0.2.1", allowed(t0.Add(time.Hour))); r != "" {
		t.Errorf("an hour after the first: %q, want a challenge", r)
	}
	if r := mustDecide(t, l, "192.0.2.1", allowed(t0.Add(time.Hour+time.Second))); r != challenge.ReasonIPCap {
		t.Errorf("and then: %q, want ip-cap", r)
	}
}

func TestLimiterIPv6Prefix(t *testing.T) {
	l := challenge.NewLimiter(2, 1000, nil)
	for _, ip := range []string{"2001:db8:1:2::1", "2001:db8:1:2:ffff::9"} {
		if r := mustDecide(t, l, ip, allowed(t0)); r != "" {
			t.Fatalf("%s: %q", ip, r)
		}
	}
	if r := mustDecide(t, l, "2001:db8:1:2::3", allowed(t0)); r != challenge.ReasonIPCap {
		t.Errorf("third address of one /64: %q, want ip-cap", r)
	}
	if r := mustDecide(t, l, "2001:db8:1:3::1", allowed(t0)); r != "" {
		t.Errorf("next /64: %q, want a challenge", r)
	}
}

func TestLimiterGlobal(t *testing.T) {
	l := challenge.NewLimiter(20, 5, nil)
	for i := range 5 {
		ip := netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}).String()
		if r := mustDecide(t, l, ip, allowed(t0)); r != "" {
			t.Fatalf("challenge %d: %q", i+1, r)
		}
	}
	if r := mustDecide(t, l, "203.0.113.1", allowed(t0.Add(59*time.Minute))); r != challenge.ReasonGlobalCap {
		t.Errorf("6th challenge within the hour: %q, want global-cap", r)
	}
	if r := mustDecide(t, l, "203.0.113.1", allowed(t0.Add(time.Hour))); r != "" {
		t.Errorf("an hour later: %q, want a challenge", r)
	}
}

func TestLimiterSuppressedCostsNothing(t *testing.T) {
	l := challenge.NewLimiter(1, 1, nil)
	f := allowed(t0)
	f.Header.ListID = true
	for range 3 {
		if r := mustDecide(t, l, "192.0.2.1", f); r != challenge.ReasonListID {
			t.Fatalf("list mail: %q, want list-id", r)
		}
	}
	f = allowed(t0)
	f.LastChallenge = t0.Add(-time.Hour)
	if r := mustDecide(t, l, "192.0.2.1", f); r != challenge.ReasonInterval {
		t.Fatalf("sender within interval: %q, want interval", r)
	}
	if r := mustDecide(t, l, "192.0.2.1", allowed(t0)); r != "" {
		t.Errorf("after suppressed ones: %q, want a challenge", r)
	}
}

func TestLimiterZeroLimits(t *testing.T) {
	for _, tc := range []struct {
		perIP, global int
		want          challenge.Reason
	}{
		{0, 10, challenge.ReasonIPCap},
		{10, 0, challenge.ReasonGlobalCap},
		{-1, -1, challenge.ReasonIPCap},
	} {
		l := challenge.NewLimiter(tc.perIP, tc.global, nil)
		if r := mustDecide(t, l, "192.0.2.1", allowed(t0)); r != tc.want {
			t.Errorf("NewLimiter(%d, %d): %q, want %q", tc.perIP, tc.global, r, tc.want)
		}
	}
}

func TestLimiterConcurrent(t *testing.T) {
	l := challenge.NewLimiter(1000, 50, nil)
	var sent atomic.Int64
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() {
			ip := netip.AddrFrom4([4]byte{192, 0, 2, byte(i)})
			ok, _, err := l.Decide(t.Context(), ip, allowed(t0))
			if err != nil {
				t.Error(err)
			}
			if ok {
				sent.Add(1)
			}
		})
	}
	wg.Wait()
	if n := sent.Load(); n != 50 {
		t.Errorf("%d challenges decided at once, want exactly the cap of 50", n)
	}
}

type brokenCounter struct{ countErr, addErr error }

func (c brokenCounter) Count(context.Context, string, time.Time) (int, error) { return 0, c.countErr }
func (c brokenCounter) Add(context.Context, string, time.Time) error          { return c.addErr }

func TestLimiterCounterError(t *testing.T) {
	boom := errors.New("database is down")
	for _, c := range []brokenCounter{{countErr: boom}, {addErr: boom}} {
		l := challenge.NewLimiter(10, 10, c)
		ok, reason, err := l.Decide(t.Context(), netip.MustParseAddr("192.0.2.1"), allowed(t0))
		if ok || reason != "" || !errors.Is(err, boom) {
			t.Errorf("Decide with %+v = %v, %q, %v; want false, \"\", the counter's error", c, ok, reason, err)
		}
	}
	// Suppressed before any count: the counter is not asked.
	l := challenge.NewLimiter(10, 10, brokenCounter{countErr: boom})
	ok, reason, err := l.Decide(t.Context(), netip.MustParseAddr("192.0.2.1"), challenge.Facts{NullSender: true})
	if ok || reason != challenge.ReasonNullSender || err != nil {
		t.Errorf("Decide(null sender) = %v, %q, %v; want false, null-sender, nil", ok, reason, err)
	}
}

func TestMemCounter(t *testing.T) {
	ctx := t.Context()
	c := challenge.NewMemCounter()
	for i := range 5 {
		if err := c.Add(ctx, "k", t0.Add(time.Duration(i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		key   string
		since time.Time
		want  int
	}{
		{"k", t0.Add(-time.Second), 5},
		{"k", t0, 4},
		{"k", t0.Add(4 * time.Minute), 0},
		{"other", t0.Add(-time.Hour), 0},
	} {
		if n, err := c.Count(ctx, tc.key, tc.since); err != nil || n != tc.want {
			t.Errorf("Count(%q, %v) = %d, %v; want %d", tc.key, tc.since, n, err, tc.want)
		}
	}
}
