// Package netacl holds the rules that keep sekisho's HTTP forward proxy and SOCKS5 proxy
// from ever being an open proxy (SPEC §6): which clients are served (allow_networks),
// which ports a tunnel may reach (connect_ports, and never the mail ports 25, 465 and 587
// unless allow_mail_ports), which destination names are refused (deny_hosts) and which
// destination addresses are refused after name resolution (deny_networks, the addresses of
// this host and the proxy's own listeners).
//
// The decisions (ACL) are pure: facts in, a Reason out, no I/O and no clock. A refusal
// Reason says whether it is a probe, the shape of an abuser looking for an open proxy or a
// mail relay, which the proxies put in BLACK when blacklist_probes is set.
//
// Around the decisions sit the few parts both proxies need to enforce them: Dialer resolves
// a destination and connects only to addresses the ACL allows, so a name that resolves to
// 127.0.0.1 or 169.254.169.254 (DNS rebinding) is refused; Authenticator checks proxy
// credentials against sekisho users; Tally counts refusals by reason.
package netacl

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Reason names why a client or a destination is refused. The values appear in logs and
// metrics. The empty Reason means allowed.
type Reason string

// Refusal reasons.
const (
	// ReasonBlack: the client IP is in BLACK.
	ReasonBlack Reason = "black"
	// ReasonClient: the client is outside allow_networks (a probe).
	ReasonClient Reason = "client-not-allowed"
	// ReasonAuthRequired: auth = true and no credentials were given.
	ReasonAuthRequired Reason = "auth-required"
	// ReasonAuthFailed: unknown user or wrong password.
	ReasonAuthFailed Reason = "auth-failed"
	// ReasonMailPort: a destination port of 25, 465 or 587, a mail relay attempt (a probe).
	ReasonMailPort Reason = "mail-port"
	// ReasonPort: a tunnel to a port outside connect_ports (a probe).
	ReasonPort Reason = "port-not-allowed"
	// ReasonDenyHost: the destination name matches a deny_hosts pattern.
	ReasonDenyHost Reason = "deny-host"
	// ReasonDenyNetwork: the destination address is in deny_networks, is an address of
	// this host, or is no unicast address at all.
	ReasonDenyNetwork Reason = "deny-network"
	// ReasonLoop: the destination is the proxy itself.
	ReasonLoop Reason = "loop"
	// ReasonBadRequest: the request is malformed or not a proxy request.
	ReasonBadRequest Reason = "bad-request"
	// ReasonUnsupported: a SOCKS command other than CONNECT (BIND, UDP ASSOCIATE).
	ReasonUnsupported Reason = "command-not-supported"
)

// Probe reports whether r is the shape of an open-proxy or mail-relay probe, for which the
// client goes to BLACK when blacklist_probes is set.
func (r Reason) Probe() bool {
	switch r {
	case ReasonClient, ReasonMailPort, ReasonPort:
		return true
	}
	return false
}

// SourceProxyAbuse is the source of the BLACK entries made for probes.
const SourceProxyAbuse = "proxy-abuse"

// Lists answers whether a client IP is in BLACK; *lists.Lists satisfies it.
type Lists interface {
	BlackIP(ip netip.Addr, now time.Time) bool
}

// Blacklister puts a client in BLACK for every module and node: a store write followed by
// the lists catching up, so that the client's next connection, to any module, is refused.
// source is SourceProxyAbuse; note says what the client did. It is called synchronously,
// before the client gets its refusal, with a context that has a deadline. The forward proxy,
// SOCKS5 and the web listeners share it.
type Blacklister interface {
	Blacklist(ctx context.Context, ip netip.Addr, source, note string) error
}

// MailPorts are refused to every client unless AllowMailPorts is set (SPEC §6).
var mailPorts = [...]int{25, 465, 587}

// IsMailPort reports whether port is one of the SMTP ports 25, 465 and 587.
func IsMailPort(port int) bool {
	return slices.Contains(mailPorts[:], port)
}

// Rules are the settings of SPEC §8 [http_proxy] and [socks].
type Rules struct {
	// AllowNetworks are the clients served; empty refuses everyone.
	AllowNetworks []netip.Prefix
	// ConnectPorts are the ports a tunnel (CONNECT, SOCKS CONNECT) may reach.
	ConnectPorts []int
	// AllowMailPorts lifts the ban on ports 25, 465 and 587.
	AllowMailPorts bool
	// DenyHosts are destination name patterns: "example.com" is that name only,
	// "*.example.com" its subdomains only, ".example.com" both.
	DenyHosts []string
	// DenyNetworks are destination addresses refused after name resolution.
	DenyNetworks []netip.Prefix
}

// Self is what the proxy knows about itself, so that it never connects to itself.
type Self struct {
	// Addrs are this host's interface addresses other than loopback (see LocalAddrs):
	// they are refused at every port, so that a service bound to a wildcard address
	// cannot be reached through the host's LAN address even when loopback is not in
	// deny_networks. Loopback destinations follow deny_networks, which lists them by
	// default.
	Addrs []netip.Addr
	// Listen are the proxy's listening addresses: a destination there is a loop. An
	// unspecified address (0.0.0.0, ::) stands for every address of this host.
	Listen []netip.AddrPort
}

// ACL decides for one proxy. It is immutable and safe for concurrent use; build a new one to
// change the rules.
type ACL struct {
	allow     []netip.Prefix
	ports     map[int]bool
	mail      bool
	exact     map[string]bool // "example.com"
	suffixes  []string        // ".example.com": matches below example.com
	denyNets  []netip.Prefix
	self      map[netip.Addr]bool
	listen    []netip.AddrPort
	listenAny map[uint16]bool // ports of wildcard listeners
}

// New compiles rules and self into an ACL. It fails on a deny_hosts pattern it cannot use.
func New(r Rules, self Self) (*ACL, error) {
	a := &ACL{
		allow:     normPrefixes(r.AllowNetworks),
		ports:     map[int]bool{},
		mail:      r.AllowMailPorts,
		exact:     map[string]bool{},
		denyNets:  normPrefixes(r.DenyNetworks),
		self:      map[netip.Addr]bool{},
		listenAny: map[uint16]bool{},
	}
	for _, p := range r.ConnectPorts {
		a.ports[p] = true
	}
	for _, pat := range r.DenyHosts {
		if err := a.addPattern(pat); err != nil {
			return nil, err
		}
	}
	for _, ip := range self.Addrs {
		a.self[ip.Unmap().WithZone("")] = true
	}
	for _, ap := range self.Listen {
		ip := ap.Addr().Unmap().WithZone("")
		if ip.IsUnspecified() {
			a.listenAny[ap.Port()] = true
			continue
		}
		a.listen = append(a.listen, netip.AddrPortFrom(ip, ap.Port()))
	}
	return a, nil
}

func normPrefixes(ps []netip.Prefix) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(ps))
	for _, p := range ps {
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		out = append(out, p.Masked())
	}
	return out
}

func (a *ACL) addPattern(pat string) error {
	p := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(pat)), ".")
	switch {
	case strings.HasPrefix(p, "*."):
		if !validName(p[2:]) {
			return fmt.Errorf("netacl: deny_hosts pattern %q: want a name, *.name or .name", pat)
		}
		a.suffixes = append(a.suffixes, p[1:])
	case strings.HasPrefix(p, "."):
		if !validName(p[1:]) {
			return fmt.Errorf("netacl: deny_hosts pattern %q: want a name, *.name or .name", pat)
		}
		a.suffixes = append(a.suffixes, p)
		a.exact[p[1:]] = true
	default:
		if ip, err := netip.ParseAddr(strings.Trim(p, "[]")); err == nil {
			a.exact[ip.Unmap().String()] = true
			return nil
		}
		if !validName(p) {
			return fmt.Errorf("netacl: deny_hosts pattern %q: want a name, *.name or .name", pat)
		}
		a.exact[p] = true
	}
	return nil
}

// validName accepts host names as they appear in requests: letters, digits, '-', '_' and
// dots, no empty labels.
func validName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for l := range strings.SplitSeq(s, ".") {
		if l == "" || len(l) > 63 {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// Client decides whether a client may use the proxy at all: black tells whether its IP is
// in BLACK, which is refused first (so a blacklisted prober is not counted as a new probe).
func (a *ACL) Client(ip netip.Addr, black bool) Reason {
	if black {
		return ReasonBlack
	}
	ip = ip.Unmap().WithZone("")
	for _, p := range a.allow {
		if p.Contains(ip) {
			return ""
		}
	}
	return ReasonClient
}

// Connect decides a tunnel (HTTP CONNECT, SOCKS CONNECT) to host and port: the mail ports,
// connect_ports, then the destination (see Target).
func (a *ACL) Connect(host string, port int) Reason {
	if IsMailPort(port) && !a.mail {
		return ReasonMailPort
	}
	if !a.ports[port] {
		return ReasonPort
	}
	return a.Target(host, port)
}

// Forward decides a plain proxied HTTP request to host and port: any port but the mail
// ports (a POST to port 25 is an SMTP relay attempt), then the destination (see Target).
func (a *ACL) Forward(host string, port int) Reason {
	if IsMailPort(port) && !a.mail {
		return ReasonMailPort
	}
	return a.Target(host, port)
}

// Target decides a destination before name resolution: the port must be valid, the name
// must match no deny_hosts pattern, and an address literal must pass Dest. Names are
// checked again after resolution, address by address, by Dest (see Dialer).
func (a *ACL) Target(host string, port int) Reason {
	if port <= 0 || port > 65535 {
		return ReasonBadRequest
	}
	h, ok := CanonicalHost(host)
	if !ok {
		return ReasonBadRequest
	}
	if ip, err := netip.ParseAddr(h); err == nil {
		if a.exact[ip.String()] {
			return ReasonDenyHost
		}
		return a.Dest(netip.AddrPortFrom(ip, uint16(port)))
	}
	if a.denyHost(h) {
		return ReasonDenyHost
	}
	return ""
}

func (a *ACL) denyHost(h string) bool {
	if a.exact[h] {
		return true
	}
	for _, s := range a.suffixes {
		if strings.HasSuffix(h, s) {
			return true
		}
	}
	return false
}

// Dest decides a destination address, as resolved or as given: the proxy's own listeners
// are a loop; deny_networks, this host's addresses, zoned, unspecified, "this network"
// (0.0.0.0/8), multicast and broadcast addresses are refused.
func (a *ACL) Dest(ap netip.AddrPort) Reason {
	ip := ap.Addr().Unmap()
	if !ip.IsValid() || ip.Zone() != "" {
		// A zone (fe80::1%eth0) would slip past prefix matching; no destination we
		// serve needs one.
		return ReasonDenyNetwork
	}
	if a.isLoop(ip, ap.Port()) {
		return ReasonLoop
	}
	if ip.IsUnspecified() || ip.IsMulticast() ||
		ip.Is4() && (ip.As4()[0] == 0 || ip == netip.AddrFrom4([4]byte{255, 255, 255, 255})) {
		// 0.0.0.0 and :: reach this host on Linux; 0/8 is "this network" (RFC 791).
		return ReasonDenyNetwork
	}
	if a.self[ip] {
		return ReasonDenyNetwork
	}
	for _, p := range a.denyNets {
		if p.Contains(ip) {
			return ReasonDenyNetwork
		}
	}
	return ""
}

func (a *ACL) isLoop(ip netip.Addr, port uint16) bool {
	for _, l := range a.listen {
		if l.Port() == port && l.Addr() == ip {
			return true
		}
	}
	if a.listenAny[port] {
		return ip.IsLoopback() || ip.IsUnspecified() || a.self[ip]
	}
	return false
}

// CanonicalHost returns host in the form the rules compare: lower case, without brackets
// around an IPv6 literal, without a trailing dot, IPv4-mapped addresses unmapped. ok is
// false for an empty host or one with characters no host name or address has.
func CanonicalHost(host string) (string, bool) {
	h := host
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		h = h[1 : len(h)-1]
		ip, err := netip.ParseAddr(h)
		if err != nil || !ip.Is6() {
			return "", false
		}
		return ip.Unmap().String(), true
	}
	if ip, err := netip.ParseAddr(h); err == nil {
		return ip.Unmap().String(), true
	}
	h = strings.TrimSuffix(strings.ToLower(h), ".")
	if !validName(h) {
		return "", false
	}
	return h, true
}
