package netacl

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"
)

// RefusedError is returned by Dialer when the ACL refuses a destination. Proxies answer it
// with their refusal (HTTP 403, SOCKS reply 0x02), not as a network failure.
type RefusedError struct {
	Reason Reason
	Host   string // the destination as asked for
	Addr   string // the refused address, when the refusal came after resolution
}

func (e *RefusedError) Error() string {
	if e.Addr != "" && e.Addr != e.Host {
		return fmt.Sprintf("netacl: destination %s (%s) refused: %s", e.Host, e.Addr, e.Reason)
	}
	return fmt.Sprintf("netacl: destination %s refused: %s", e.Host, e.Reason)
}

// Resolver looks host names up; *net.Resolver satisfies it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// DialFunc connects to an address; (*net.Dialer).DialContext is one.
type DialFunc func(ctx context.Context, network, address string) (net.Conn, error)

// Dialer connects to destinations the ACL allows. It resolves a name itself, checks every
// address with ACL.Dest, and dials only allowed addresses, as literals: there is no second
// lookup whose answer could differ (DNS rebinding). The zero Dialer uses a new
// net.Resolver and net.Dialer.
type Dialer struct {
	Resolver Resolver
	Dial     DialFunc
}

// minAttempt is the least time one address of several gets before the next is tried.
const minAttempt = 2 * time.Second

// DialACL connects to host:port over TCP if acl allows. host is a name or an address
// literal (IPv6 with or without brackets). Refusals are *RefusedError; when a name resolves
// to both allowed and refused addresses, only the allowed ones are tried.
func (d *Dialer) DialACL(ctx context.Context, acl *ACL, host string, port int) (net.Conn, error) {
	if r := acl.Target(host, port); r != "" {
		return nil, &RefusedError{Reason: r, Host: host}
	}
	h, _ := CanonicalHost(host) // Target checked it
	var addrs []netip.Addr
	if ip, err := netip.ParseAddr(h); err == nil {
		addrs = []netip.Addr{ip}
	} else {
		res := d.Resolver
		if res == nil {
			res = &net.Resolver{}
		}
		if addrs, err = res.LookupNetIP(ctx, "ip", h); err != nil {
			return nil, fmt.Errorf("resolve %s: %w", h, err)
		}
	}
	var allowed []netip.AddrPort
	var refused *RefusedError
	for _, ip := range addrs {
		ap := netip.AddrPortFrom(ip.Unmap(), uint16(port))
		if r := acl.Dest(ap); r != "" {
			if refused == nil {
				refused = &RefusedError{Reason: r, Host: host, Addr: ap.Addr().String()}
			}
			continue
		}
		allowed = append(allowed, ap)
	}
	if len(allowed) == 0 {
		if refused != nil {
			return nil, refused
		}
		return nil, fmt.Errorf("resolve %s: no addresses", h)
	}
	dial := d.Dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	var errs []error
	for i, ap := range allowed {
		actx, cancel := attemptContext(ctx, len(allowed)-i)
		c, err := dial(actx, "tcp", ap.String())
		cancel()
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

// attemptContext shares what is left of ctx's time among the addresses left to try, like
// net.Dialer does, so one black hole does not use it all.
func attemptContext(ctx context.Context, left int) (context.Context, context.CancelFunc) {
	deadline, ok := ctx.Deadline()
	if !ok || left <= 1 {
		return context.WithCancel(ctx)
	}
	share := time.Until(deadline) / time.Duration(left)
	if share < minAttempt {
		share = minAttempt
	}
	return context.WithTimeout(ctx, share)
}

// SplitHostPort splits "host:port" ("[v6]:port") into a host and a numeric port in 1-65535.
func SplitHostPort(hostport string) (string, int, error) {
	host, ps, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(ps)
	if err != nil || port <= 0 || port > 65535 {
		return "", 0, fmt.Errorf("invalid port in %q", hostport)
	}
	if host == "" {
		return "", 0, fmt.Errorf("missing host in %q", hostport)
	}
	return host, port, nil
}
