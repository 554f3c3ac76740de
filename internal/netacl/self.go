package netacl

import (
	"fmt"
	"net"
	"net/netip"
)

// LocalAddrs returns this host's interface addresses other than loopback, for Self.Addrs.
func LocalAddrs() ([]netip.Addr, error) {
	ifaddrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("netacl: interface addresses: %w", err)
	}
	var out []netip.Addr
	for _, a := range ifaddrs {
		p, err := netip.ParsePrefix(a.String())
		if err != nil {
			continue
		}
		ip := p.Addr().Unmap().WithZone("")
		if ip.IsLoopback() {
			continue
		}
		out = append(out, ip)
	}
	return out, nil
}

// AddrPort returns the IP address and port of a TCP address (a listener's, for Self.Listen,
// or a peer's), IPv4-mapped addresses unmapped.
func AddrPort(a net.Addr) (netip.AddrPort, bool) {
	if ta, ok := a.(*net.TCPAddr); ok {
		ap := ta.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), true
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), true
}
