package senderauth

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// fakeClock is a settable clock for the cache.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func newTestResolver(t *testing.T, d *testDNS, timeout time.Duration) (*dnsResolver, *fakeClock) {
	t.Helper()
	r := newDNSResolver(d.addr, timeout)
	clock := &fakeClock{t: time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)}
	r.now = clock.now
	return r, clock
}

func dnsError(t *testing.T, err error) *net.DNSError {
	t.Helper()
	de, ok := err.(*net.DNSError) // unwrapped, as the SPF library needs it
	if !ok {
		t.Fatalf("error %v (%T) is not a bare *net.DNSError", err, err)
	}
	return de
}

func TestNewResolver(t *testing.T) {
	for _, addr := range []string{"", "192.0.2.53:53", "[2001:db8::53]:5353", "dns.example.jp:53"} {
		r, err := NewResolver(addr, time.Second)
		if err != nil || r == nil {
			t.Errorf("NewResolver(%q) = %v, %v; want a resolver", addr, r, err)
		}
	}
	for _, addr := range []string{"192.0.2.53", ":53", "192.0.2.53:0", "192.0.2.53:dns", "192.0.2.53:70000", "[::1"} {
		if _, err := NewResolver(addr, time.Second); err == nil {
			t.Errorf("NewResolver(%q) succeeded, want an error", addr)
		}
	}
}

func TestResolverLookups(t *testing.T) {
	d := newTestDNS(t)
	d.add(t,
		`txt.test. 300 IN TXT "v=spf1 " "-all"`,
		`txt.test. 300 IN TXT "second"`,
		`esc.test. 300 IN TXT "a\"b\\c\200d;e f"`,
		`alias.test. 300 IN CNAME txt.test.`,
		`mx.test. 300 IN MX 10 mail.mx.test.`,
		`mx.test. 300 IN MX 20 mail2.mx.test.`,
		`mail.mx.test. 300 IN A 192.0.2.25`,
		`mail.mx.test. 300 IN AAAA 2001:db8::25`,
		`v4only.test. 300 IN A 192.0.2.4`,
		`10.2.0.192.in-addr.arpa. 300 IN PTR host.example.test.`,
	)
	r, _ := newTestResolver(t, d, time.Second)
	ctx := t.Context()

	t.Run("txt", func(t *testing.T) {
		got, err := r.LookupTXT(ctx, "TXT.test")
		slices.Sort(got)
		if want := []string{"second", "v=spf1 -all"}; err != nil || !slices.Equal(got, want) {
			t.Errorf("LookupTXT = %q, %v; want %q", got, err, want)
		}
	})
	t.Run("txt escapes", func(t *testing.T) {
		got, err := r.LookupTXT(ctx, "esc.test.")
		if want := []string{"a\"b\\c\xc8d;e f"}; err != nil || !slices.Equal(got, want) {
			t.Errorf("LookupTXT = %q, %v; want %q", got, err, want)
		}
	})
	t.Run("cname", func(t *testing.T) {
		got, err := r.LookupTXT(ctx, "alias.test")
		if err != nil || len(got) != 2 {
			t.Errorf("LookupTXT through CNAME = %q, %v; want the 2 records of txt.test", got, err)
		}
	})
	t.Run("mx", func(t *testing.T) {
		got, err := r.LookupMX(ctx, "mx.test")
		if err != nil || len(got) != 2 {
			t.Fatalf("LookupMX = %v, %v", got, err)
		}
		slices.SortFunc(got, func(a, b *net.MX) int { return int(a.Pref) - int(b.Pref) })
		if got[0].Host != "mail.mx.test." || got[0].Pref != 10 || got[1].Host != "mail2.mx.test." {
			t.Errorf("LookupMX = %v %v", *got[0], *got[1])
		}
	})
	t.Run("ip", func(t *testing.T) {
		got, err := r.LookupIPAddr(ctx, "mail.mx.test")
		var s []string
		for _, ip := range got {
			s = append(s, ip.IP.String())
		}
		slices.Sort(s)
		if want := []string{"192.0.2.25", "2001:db8::25"}; err != nil || !slices.Equal(s, want) {
			t.Errorf("LookupIPAddr = %v, %v; want %v", s, err, want)
		}
	})
	t.Run("ip one family", func(t *testing.T) {
		got, err := r.LookupIPAddr(ctx, "v4only.test")
		if err != nil || len(got) != 1 || got[0].IP.String() != "192.0.2.4" {
			t.Errorf("LookupIPAddr = %v, %v", got, err)
		}
	})
	t.Run("ip literal", func(t *testing.T) {
		before := d.total()
		got, err := r.LookupIPAddr(ctx, "2001:db8::1")
		if err != nil || len(got) != 1 || got[0].IP.String() != "2001:db8::1" || d.total() != before {
			t.Errorf("LookupIPAddr(literal) = %v, %v, %d queries", got, err, d.total()-before)
		}
	})
	t.Run("ptr", func(t *testing.T) {
		got, err := r.LookupAddr(ctx, "192.0.2.10")
		if want := []string{"host.example.test."}; err != nil || !slices.Equal(got, want) {
			t.Errorf("LookupAddr = %q, %v; want %q", got, err, want)
		}
		if _, err := r.LookupAddr(ctx, "not-an-ip"); err == nil {
			t.Error("LookupAddr(not-an-ip) succeeded")
		}
	})
	t.Run("nxdomain", func(t *testing.T) {
		for _, lookup := range []func() error{
			func() error { _, err := r.LookupTXT(ctx, "nowhere.test"); return err },
			func() error { _, err := r.LookupMX(ctx, "nowhere.test"); return err },
			func() error { _, err := r.LookupIPAddr(ctx, "nowhere.test"); return err },
		} {
			if de := dnsError(t, lookup()); !de.IsNotFound || de.Temporary() {
				t.Errorf("lookup of a missing name: %+v, want IsNotFound only", de)
			}
		}
	})
	t.Run("nodata", func(t *testing.T) {
		_, err := r.LookupTXT(ctx, "v4only.test")
		if de := dnsError(t, err); !de.IsNotFound {
			t.Errorf("TXT at a name with only A: %+v, want IsNotFound", de)
		}
	})
	t.Run("bad names are not asked", func(t *testing.T) {
		before := d.total()
		for _, name := range []string{"", ".", "a..test", "sp ace.test", "a+b.test", "ü.test",
			strings.Repeat("a", 64) + ".test", strings.Repeat("abcdefghi.", 26) + "test", `esc\.test`} {
			_, err := r.LookupTXT(ctx, name)
			if de := dnsError(t, err); !de.IsNotFound {
				t.Errorf("LookupTXT(%q): %+v, want IsNotFound", name, de)
			}
		}
		if n := d.total() - before; n != 0 {
			t.Errorf("%d queries sent for invalid names", n)
		}
	})
}

func TestResolverFailures(t *testing.T) {
	d := newTestDNS(t)
	d.add(t, `bad.test. 300 IN TXT "x"`, `spoof.test. 300 IN TXT "x"`)
	d.setServfail("bad.test")
	d.setWrongQuestion("spoof.test")
	r, _ := newTestResolver(t, d, time.Second)

	for _, name := range []string{"bad.test", "spoof.test"} {
		for i := range 2 {
			_, err := r.LookupTXT(t.Context(), name)
			if de := dnsError(t, err); !de.Temporary() || de.IsNotFound {
				t.Errorf("LookupTXT(%s) #%d: %+v, want a temporary error", name, i, de)
			}
		}
		// Failures are not cached: both lookups were sent.
		if udp, _ := d.queries(name, dns.TypeTXT); udp != 2 {
			t.Errorf("%s: %d queries, want 2 (failures are not cached)", name, udp)
		}
	}
}

func TestResolverCache(t *testing.T) {
	d := newTestDNS(t)
	d.add(t,
		`ttl.test. 300 IN TXT "five minutes"`,
		`zero.test. 0 IN TXT "do not keep"`,
		`short.test. 300 IN CNAME target.short.test.`,
		`target.short.test. 10 IN TXT "ten seconds via cname"`,
		`onlya.test. 300 IN A 192.0.2.1`,
	)
	r, clock := newTestResolver(t, d, time.Second)
	ctx := t.Context()

	lookupN := func(name string, n int) {
		t.Helper()
		for range n {
			r.LookupTXT(ctx, name)
		}
	}
	asked := func(name string) int {
		udp, tcp := d.queries(name, dns.TypeTXT)
		return udp + tcp
	}

	lookupN("ttl.test", 3)
	if n := asked("ttl.test"); n != 1 {
		t.Errorf("3 lookups within the TTL sent %d queries, want 1", n)
	}
	clock.t = clock.t.Add(299 * time.Second)
	lookupN("ttl.test", 1)
	if n := asked("ttl.test"); n != 1 {
		t.Errorf("a lookup 299 s later sent a query (TTL 300)")
	}
	clock.t = clock.t.Add(2 * time.Second)
	got, err := r.LookupTXT(ctx, "TTL.test.")
	if n := asked("ttl.test"); n != 2 || err != nil || len(got) != 1 || got[0] != "five minutes" {
		t.Errorf("after the TTL: %q, %v, %d queries; want a fresh answer (2 queries)", got, err, n)
	}

	lookupN("zero.test", 2)
	if n := asked("zero.test"); n != 2 {
		t.Errorf("TTL 0: %d queries for 2 lookups, want 2", n)
	}

	// The smallest TTL along a CNAME chain counts.
	lookupN("short.test", 2)
	clock.t = clock.t.Add(11 * time.Second)
	lookupN("short.test", 1)
	if n := asked("short.test"); n != 2 {
		t.Errorf("CNAME chain: %d queries, want 2 (the target's TTL of 10 s)", n)
	}

	// Negative answers are kept for the SOA minimum (60 s here).
	for _, name := range []string{"nx.test", "onlya.test"} {
		for range 2 {
			_, err := r.LookupTXT(ctx, name)
			if de := dnsError(t, err); !de.IsNotFound {
				t.Errorf("LookupTXT(%s) from the cache: %+v, want IsNotFound", name, de)
			}
		}
		if n := asked(name); n != 1 {
			t.Errorf("%s: %d queries for 2 lookups, want 1 (negative caching)", name, n)
		}
	}
	clock.t = clock.t.Add(61 * time.Second)
	lookupN("nx.test", 1)
	if n := asked("nx.test"); n != 2 {
		t.Errorf("nx.test after the negative TTL: %d queries, want 2", n)
	}
}

func TestCacheBounded(t *testing.T) {
	c := newCache(16)
	now := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	for i := range 1000 {
		c.put(cacheKey{name: fmt.Sprintf("n%d.test.", i), qtype: dns.TypeTXT}, entry{ttl: time.Hour}, now)
		if c.len() > 16 {
			t.Fatalf("cache holds %d entries, bound 16", c.len())
		}
	}
	// The newest entry survives the eviction it caused.
	if _, ok := c.get(cacheKey{name: "n999.test.", qtype: dns.TypeTXT}, now); !ok {
		t.Error("newest entry missing")
	}
	// Expired entries make room before live ones are dropped.
	c = newCache(4)
	for i := range 3 {
		c.put(cacheKey{name: fmt.Sprintf("old%d.", i)}, entry{ttl: time.Second}, now)
	}
	c.put(cacheKey{name: "live."}, entry{ttl: time.Hour}, now)
	c.put(cacheKey{name: "new."}, entry{ttl: time.Hour}, now.Add(time.Minute))
	for _, name := range []string{"live.", "new."} {
		if _, ok := c.get(cacheKey{name: name}, now.Add(time.Minute)); !ok {
			t.Errorf("%s evicted while expired entries were there", name)
		}
	}
}

func TestResolverTCPFallback(t *testing.T) {
	d := newTestDNS(t)
	big := strings.Repeat("k", 3000) // more than fits the test's truncated UDP answer
	d.addTXT("big.test", 300, big)
	d.setTruncate("big.test")
	r, _ := newTestResolver(t, d, time.Second)

	got, err := r.LookupTXT(t.Context(), "big.test")
	if err != nil || len(got) != 1 || got[0] != big {
		t.Fatalf("LookupTXT(big.test) = %d records, %v; want the 3000-octet record", len(got), err)
	}
	if udp, tcp := d.queries("big.test", dns.TypeTXT); udp != 1 || tcp != 1 {
		t.Errorf("queries: %d over UDP, %d over TCP; want 1 and 1", udp, tcp)
	}
}

// blackhole is a UDP "DNS server" that reads queries and never answers; got receives a
// value for every query.
func blackhole(t *testing.T) (addr string, got <-chan struct{}) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan struct{}, 100)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		pc.Close()
		<-done
	})
	return pc.LocalAddr().String(), ch
}

func TestResolverTimeout(t *testing.T) {
	addr, _ := blackhole(t)
	r := newDNSResolver(addr, 200*time.Millisecond)

	start := time.Now()
	_, err := r.LookupTXT(t.Context(), "slow.test")
	elapsed := time.Since(start)
	if de := dnsError(t, err); !de.IsTimeout || !de.Temporary() || de.IsNotFound {
		t.Errorf("LookupTXT against a silent server: %+v, want a timeout", de)
	}
	if elapsed < 150*time.Millisecond || elapsed > 2*time.Second {
		t.Errorf("LookupTXT took %v, want about the 200 ms timeout", elapsed)
	}
}

func TestResolverHonoursContext(t *testing.T) {
	addr, got := blackhole(t)
	r := newDNSResolver(addr, time.Minute)
	ctx, cancel := context.WithCancel(t.Context())

	errc := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := r.LookupTXT(ctx, "slow.test")
		errc <- err
	}()
	<-got // the query is out: now cancel it
	cancel()
	select {
	case err := <-errc:
		if de := dnsError(t, err); !de.IsTimeout {
			t.Errorf("cancelled lookup: %+v, want a timeout (temporary) error", de)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("lookup did not return after its context was cancelled")
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("cancelled lookup returned after %v", elapsed)
	}
}

func TestSystemResolverContext(t *testing.T) {
	r, err := NewResolver("", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = r.LookupTXT(ctx, "example.invalid")
	var de *net.DNSError
	if !errors.As(err, &de) || !de.Temporary() {
		t.Errorf("system resolver with a cancelled context: %v, want a temporary *net.DNSError", err)
	}
}

func TestUnescapeTXT(t *testing.T) {
	tests := []struct{ in, want string }{
		{``, ``},
		{`plain`, `plain`},
		{`a\"b`, `a"b`},
		{`a\\b`, `a\b`},
		{`\255\000x`, "\xff\x00x"},
		{`\256`, `256`},
		{`\12`, `12`},
		{`end\`, `end\`},
	}
	for _, tt := range tests {
		if got := unescapeTXT(tt.in); got != tt.want {
			t.Errorf("unescapeTXT(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
