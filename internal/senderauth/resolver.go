package senderauth

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"blitiri.com.ar/go/spf"
	"github.com/miekg/dns"
)

// Resolver is the DNS access the SPF and DKIM checks need. *net.Resolver satisfies it.
//
// Errors must be *net.DNSError values, returned as they are (not wrapped): the SPF library
// tells the outcomes apart by type assertion. IsNotFound marks a name that does not exist or
// has no record of the type asked for (RFC 7208 §4.3: SPF none, a void lookup); IsTimeout or
// IsTemporary marks a failure worth retrying later (SPF temperror, DKIM temperror). Anything
// else is permanent. Methods are called concurrently and must honour ctx.
type Resolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
	LookupAddr(ctx context.Context, addr string) ([]string, error)
}

// Interface guards.
var (
	_ spf.DNSResolver = Resolver(nil)
	_ Resolver        = (*net.Resolver)(nil)
	_ Resolver        = (*dnsResolver)(nil)
	_ Resolver        = (*systemResolver)(nil)
)

// DefaultTimeout bounds one lookup (NewResolver) and one whole Check when none is given; it
// is the default of [dns] timeout.
const DefaultTimeout = 5 * time.Second

const (
	// cacheEntries bounds the answer cache of one resolver.
	cacheEntries = 4096
	// maxCacheTTL caps how long an answer is reused, whatever its TTL says.
	maxCacheTTL = time.Hour
	// ednsSize is the UDP payload size we advertise (the DNS Flag Day 2020 value), so that
	// large TXT records (2048-bit DKIM keys) rarely need the TCP retry.
	ednsSize = 1232
)

// NewResolver returns the resolver for [dns] resolver and timeout: addr "" means the
// system's (the stub resolver of the standard library, /etc/resolv.conf, no cache of ours);
// otherwise addr is the "host:port" of a recursive DNS server, queried directly over UDP,
// retried over TCP when the answer is truncated, with answers cached per TTL. Each lookup
// is bounded by timeout (DefaultTimeout when zero or negative) and by its context.
func NewResolver(addr string, timeout time.Duration) (Resolver, error) {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if addr == "" {
		// The system's name server, from resolv.conf, through our client so that answers
		// are cached per TTL; the standard library's resolver when there is none.
		cc, err := dns.ClientConfigFromFile(resolvConf)
		if err != nil || len(cc.Servers) == 0 {
			return &systemResolver{r: &net.Resolver{}, timeout: timeout}, nil
		}
		return newDNSResolver(net.JoinHostPort(cc.Servers[0], cc.Port), timeout), nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("dns resolver %q: %w", addr, err)
	}
	if host == "" {
		return nil, fmt.Errorf("dns resolver %q: missing host", addr)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return nil, fmt.Errorf("dns resolver %q: bad port %q", addr, port)
	}
	return newDNSResolver(addr, timeout), nil
}

// resolvConf is where the system's name servers are listed.
const resolvConf = "/etc/resolv.conf"

// systemResolver is the standard library's resolver with a timeout per lookup. It cannot see
// TTLs, so it caches nothing: the system's resolver is expected to.
type systemResolver struct {
	r       *net.Resolver
	timeout time.Duration
}

func (s *systemResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	txts, err := s.r.LookupTXT(ctx, name)
	return txts, ctxErr(ctx, name, err)
}

func (s *systemResolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	mxs, err := s.r.LookupMX(ctx, name)
	return mxs, ctxErr(ctx, name, err)
}

func (s *systemResolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	ips, err := s.r.LookupIPAddr(ctx, host)
	return ips, ctxErr(ctx, host, err)
}

func (s *systemResolver) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	names, err := s.r.LookupAddr(ctx, addr)
	return names, ctxErr(ctx, addr, err)
}

// ctxErr makes sure a lookup cut short by its context reads as a timeout (temporary): the
// standard library reports a cancelled lookup as a permanent error, which SPF would turn
// into permerror.
func ctxErr(ctx context.Context, name string, err error) error {
	if err == nil || ctx.Err() == nil {
		return err
	}
	return &net.DNSError{Err: ctx.Err().Error(), Name: name, IsTimeout: true}
}

// dnsResolver queries one DNS server directly (miekg/dns) and caches its answers per TTL.
type dnsResolver struct {
	addr    string
	timeout time.Duration
	cache   *cache
	now     func() time.Time
}

func newDNSResolver(addr string, timeout time.Duration) *dnsResolver {
	return &dnsResolver{
		addr:    addr,
		timeout: timeout,
		cache:   newCache(cacheEntries),
		now:     time.Now,
	}
}

func (r *dnsResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	rrs, err := r.lookup(ctx, name, dns.TypeTXT)
	if err != nil {
		return nil, err
	}
	txts := make([]string, 0, len(rrs))
	for _, rr := range rrs {
		// One string per record, its character-strings joined, as net.LookupTXT does
		// (RFC 7208 §3.3, RFC 6376 §3.6.2.2).
		var b strings.Builder
		for _, s := range rr.(*dns.TXT).Txt {
			b.WriteString(unescapeTXT(s))
		}
		txts = append(txts, b.String())
	}
	return txts, nil
}

func (r *dnsResolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	rrs, err := r.lookup(ctx, name, dns.TypeMX)
	if err != nil {
		return nil, err
	}
	mxs := make([]*net.MX, 0, len(rrs))
	for _, rr := range rrs {
		mx := rr.(*dns.MX)
		if !presentable(mx.Mx) {
			continue
		}
		mxs = append(mxs, &net.MX{Host: mx.Mx, Pref: mx.Preference})
	}
	return mxs, nil
}

func (r *dnsResolver) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	arpa, err := dns.ReverseAddr(addr)
	if err != nil {
		return nil, &net.DNSError{Err: "unrecognized address", Name: addr}
	}
	rrs, err := r.lookup(ctx, arpa, dns.TypePTR)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(rrs))
	for _, rr := range rrs {
		if ptr := rr.(*dns.PTR).Ptr; presentable(ptr) {
			names = append(names, ptr)
		}
	}
	return names, nil
}

// LookupIPAddr asks for A and AAAA at once. Addresses of one family are returned even when
// the other lookup failed, as the standard library does.
func (r *dnsResolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	if ip := net.ParseIP(host); ip != nil {
		return []net.IPAddr{{IP: ip}}, nil
	}
	var (
		wg         sync.WaitGroup
		a, aaaa    []dns.RR
		aErr, qErr error
	)
	wg.Go(func() { a, aErr = r.lookup(ctx, host, dns.TypeA) })
	wg.Go(func() { aaaa, qErr = r.lookup(ctx, host, dns.TypeAAAA) })
	wg.Wait()

	// Copies: the records stay in the cache, the caller owns what it gets.
	var ips []net.IPAddr
	for _, rr := range a {
		ips = append(ips, net.IPAddr{IP: slices.Clone(rr.(*dns.A).A)})
	}
	for _, rr := range aaaa {
		ips = append(ips, net.IPAddr{IP: slices.Clone(rr.(*dns.AAAA).AAAA)})
	}
	if len(ips) > 0 {
		return ips, nil
	}
	// Nothing found: a transient failure of either lookup wins over "not found", which is
	// only the answer when both say so.
	for _, err := range []error{aErr, qErr} {
		var de *net.DNSError
		if errors.As(err, &de) && de.Temporary() {
			return nil, err
		}
	}
	if aErr != nil {
		return nil, aErr
	}
	return nil, qErr
}

// lookup returns the records of type qtype at name, following CNAMEs within the answer. It
// returns a *net.DNSError for every failure; "no such name" and "no such record" are both
// IsNotFound, like the standard library's.
func (r *dnsResolver) lookup(ctx context.Context, name string, qtype uint16) ([]dns.RR, error) {
	qname, ok := queryName(name)
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
	}
	key := cacheKey{name: qname, qtype: qtype}
	if e, ok := r.cache.get(key, r.now()); ok {
		return e.result(name)
	}

	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	q := new(dns.Msg)
	q.SetQuestion(qname, qtype)
	q.SetEdns0(ednsSize, false)
	resp, err := r.exchange(ctx, q)
	if err != nil {
		var ne net.Error
		timeout := ctx.Err() != nil || (errors.As(err, &ne) && ne.Timeout())
		return nil, &net.DNSError{Err: err.Error(), Name: name, Server: r.addr, IsTimeout: timeout, IsTemporary: !timeout}
	}

	e, ok := parseAnswer(resp, qname, qtype)
	if !ok {
		return nil, &net.DNSError{Err: "server misbehaving", Name: name, Server: r.addr, IsTemporary: true}
	}
	if e.ttl > 0 {
		r.cache.put(key, e, r.now())
	}
	return e.result(name)
}

// exchange sends q over UDP, and again over TCP when the answer is truncated (RFC 7766 §5).
func (r *dnsResolver) exchange(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
	resp, err := r.exchangeNet(ctx, "udp", q)
	if resp != nil && resp.Truncated {
		return r.exchangeNet(ctx, "tcp", q)
	}
	return resp, err
}

func (r *dnsResolver) exchangeNet(ctx context.Context, network string, q *dns.Msg) (*dns.Msg, error) {
	c := &dns.Client{Net: network, Timeout: r.timeout}
	conn, err := c.DialContext(ctx, r.addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	// miekg/dns takes only the deadline from ctx; closing the connection is what stops a
	// read when ctx is cancelled.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	resp, _, err := c.ExchangeWithConnContext(ctx, q, conn)
	return resp, err
}

// parseAnswer turns a response into a cache entry; ok is false when the response is not an
// answer to q (wrong question) or reports a server failure (SERVFAIL, REFUSED, ...).
func parseAnswer(resp *dns.Msg, qname string, qtype uint16) (e entry, ok bool) {
	switch resp.Rcode {
	case dns.RcodeSuccess, dns.RcodeNameError:
	default:
		return entry{}, false
	}
	if len(resp.Question) != 1 || !strings.EqualFold(resp.Question[0].Name, qname) || resp.Question[0].Qtype != qtype {
		return entry{}, false
	}
	if resp.Rcode == dns.RcodeNameError {
		return entry{notFound: true, ttl: negativeTTL(resp)}, true
	}

	// The names that lead to the answer: qname and the targets of the CNAMEs from it.
	chain := map[string]bool{qname: true}
	ttl := maxCacheTTL
	for grown := true; grown; {
		grown = false
		for _, rr := range resp.Answer {
			c, isCNAME := rr.(*dns.CNAME)
			if !isCNAME || !chain[strings.ToLower(c.Hdr.Name)] || chain[strings.ToLower(c.Target)] {
				continue
			}
			chain[strings.ToLower(c.Target)] = true
			ttl = min(ttl, time.Duration(c.Hdr.Ttl)*time.Second)
			grown = true
		}
	}
	for _, rr := range resp.Answer {
		h := rr.Header()
		if h.Rrtype != qtype || !chain[strings.ToLower(h.Name)] {
			continue
		}
		e.rrs = append(e.rrs, rr)
		ttl = min(ttl, time.Duration(h.Ttl)*time.Second)
	}
	if len(e.rrs) == 0 {
		return entry{notFound: true, ttl: negativeTTL(resp)}, true
	}
	e.ttl = ttl
	return e, true
}

// negativeTTL is how long a "no such name/record" answer may be reused: the smaller of the
// SOA's TTL and its MINIMUM field (RFC 2308 §5); zero (not cached) without a SOA.
func negativeTTL(resp *dns.Msg) time.Duration {
	for _, rr := range resp.Ns {
		if soa, ok := rr.(*dns.SOA); ok {
			return min(maxCacheTTL, time.Duration(min(soa.Hdr.Ttl, soa.Minttl))*time.Second)
		}
	}
	return 0
}

// queryName checks a name as the standard library does (letters, digits, '-', '_', labels
// of 1 to 63 octets, at most 253 octets) and returns it lowercased and fully qualified.
func queryName(name string) (string, bool) {
	name = strings.TrimSuffix(name, ".")
	if name == "" || len(name) > 253 {
		return "", false
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || len(label) > 63 {
			return "", false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return "", false
			}
		}
	}
	return strings.ToLower(name) + ".", true
}

// presentable reports whether a host name from an answer can be handed on as is (no
// presentation-format escapes hiding odd octets).
func presentable(host string) bool {
	_, ok := queryName(host)
	return ok
}

// unescapeTXT undoes miekg/dns's presentation escapes in a TXT character-string
// (`\"`, `\\`, `\DDD`), giving back the octets on the wire.
func unescapeTXT(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 >= len(s) {
			b.WriteByte(c)
			continue
		}
		if i+3 < len(s) && isDigit(s[i+1]) && isDigit(s[i+2]) && isDigit(s[i+3]) {
			n := int(s[i+1]-'0')*100 + int(s[i+2]-'0')*10 + int(s[i+3]-'0')
			if n <= 255 {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i+1])
		i++
	}
	return b.String()
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
