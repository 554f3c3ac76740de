package netacl

import (
	"net/netip"
	"testing"
)

func prefixes(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

// specDefaults are the [http_proxy] defaults of SPEC §8.
func specDefaults() Rules {
	return Rules{
		AllowNetworks: prefixes("127.0.0.0/8", "::1/128"),
		ConnectPorts:  []int{443},
		DenyNetworks:  prefixes("127.0.0.0/8", "::1/128", "169.254.0.0/16", "fe80::/10"),
	}
}

func mustACL(t *testing.T, r Rules, self Self) *ACL {
	t.Helper()
	a, err := New(r, self)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestClient(t *testing.T) {
	a := mustACL(t, specDefaults(), Self{})
	empty := mustACL(t, Rules{}, Self{})
	tests := []struct {
		name  string
		acl   *ACL
		ip    string
		black bool
		want  Reason
	}{
		{"loopback allowed", a, "127.0.0.1", false, ""},
		{"other loopback allowed", a, "127.5.6.7", false, ""},
		{"v6 loopback allowed", a, "::1", false, ""},
		{"mapped v4 allowed", a, "::ffff:127.0.0.1", false, ""},
		{"outside refused", a, "192.0.2.1", false, ReasonClient},
		{"black first", a, "127.0.0.1", true, ReasonBlack},
		{"black outside is black", a, "192.0.2.1", true, ReasonBlack},
		{"empty allow refuses loopback", empty, "127.0.0.1", false, ReasonClient},
		{"empty allow refuses v6", empty, "::1", false, ReasonClient},
		{"invalid address refused", a, "", false, ReasonClient},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ip netip.Addr
			if tt.ip != "" {
				ip = netip.MustParseAddr(tt.ip)
			}
			if got := tt.acl.Client(ip, tt.black); got != tt.want {
				t.Errorf("Client(%s, %v) = %q, want %q", tt.ip, tt.black, got, tt.want)
			}
		})
	}
}

func TestConnectAndForward(t *testing.T) {
	r := specDefaults()
	r.ConnectPorts = []int{443, 8443, 25, 587} // mail ports listed: still refused
	r.DenyHosts = []string{"blocked.example", "*.ads.example", ".tracker.example", "192.0.2.99"}
	self := Self{
		Addrs:  []netip.Addr{netip.MustParseAddr("10.0.0.5"), netip.MustParseAddr("2001:db8::5")},
		Listen: []netip.AddrPort{netip.MustParseAddrPort("10.0.0.5:3128"), netip.MustParseAddrPort("[::]:1080")},
	}
	a := mustACL(t, r, self)
	r.AllowMailPorts = true
	mail := mustACL(t, r, self)

	tests := []struct {
		name    string
		acl     *ACL
		host    string
		port    int
		connect Reason // ACL.Connect
		forward Reason // ACL.Forward
	}{
		{"public name 443", a, "www.example.com", 443, "", ""},
		{"public name 80", a, "www.example.com", 80, ReasonPort, ""},
		{"listed other port", a, "www.example.com", 8443, "", ""},
		{"smtp", a, "mx.example.com", 25, ReasonMailPort, ReasonMailPort},
		{"smtps", a, "mx.example.com", 465, ReasonMailPort, ReasonMailPort},
		{"submission", a, "mx.example.com", 587, ReasonMailPort, ReasonMailPort},
		{"mail port by address", a, "192.0.2.10", 25, ReasonMailPort, ReasonMailPort},
		{"mail ports allowed and listed", mail, "mx.example.com", 25, "", ""},
		{"mail ports allowed, 465 not listed", mail, "mx.example.com", 465, ReasonPort, ""},
		{"port zero", a, "www.example.com", 0, ReasonPort, ReasonBadRequest},
		{"port too big", a, "www.example.com", 70000, ReasonPort, ReasonBadRequest},

		{"deny exact", a, "blocked.example", 443, ReasonDenyHost, ReasonDenyHost},
		{"deny exact, upper case, trailing dot", a, "BLOCKED.Example.", 443, ReasonDenyHost, ReasonDenyHost},
		{"exact does not cover subdomain", a, "www.blocked.example", 443, "", ""},
		{"star covers subdomain", a, "x.ads.example", 443, ReasonDenyHost, ReasonDenyHost},
		{"star covers deep subdomain", a, "a.b.ads.example", 443, ReasonDenyHost, ReasonDenyHost},
		{"star does not cover the domain", a, "ads.example", 443, "", ""},
		{"star needs a label boundary", a, "badads.example", 443, "", ""},
		{"dot covers domain", a, "tracker.example", 443, ReasonDenyHost, ReasonDenyHost},
		{"dot covers subdomain", a, "t.tracker.example", 443, ReasonDenyHost, ReasonDenyHost},
		{"dot needs a label boundary", a, "notracker.example", 443, "", ""},
		{"deny host by address", a, "192.0.2.99", 443, ReasonDenyHost, ReasonDenyHost},

		{"loopback literal", a, "127.0.0.1", 443, ReasonDenyNetwork, ReasonDenyNetwork},
		{"loopback other", a, "127.1.2.3", 443, ReasonDenyNetwork, ReasonDenyNetwork},
		{"v6 loopback bracketed", a, "[::1]", 443, ReasonDenyNetwork, ReasonDenyNetwork},
		{"v6 loopback bare", a, "::1", 443, ReasonDenyNetwork, ReasonDenyNetwork},
		{"mapped loopback", a, "[::ffff:127.0.0.1]", 443, ReasonDenyNetwork, ReasonDenyNetwork},
		{"metadata", a, "169.254.169.254", 443, ReasonDenyNetwork, ReasonDenyNetwork},
		{"link-local v6", a, "[fe80::1]", 443, ReasonDenyNetwork, ReasonDenyNetwork},
		{"zoned v6", a, "fe80::1%eth0", 443, ReasonDenyNetwork, ReasonDenyNetwork},
		{"unspecified v4", a, "0.0.0.0", 443, ReasonDenyNetwork, ReasonDenyNetwork},
		{"this network", a, "0.1.2.3", 443, ReasonDenyNetwork, ReasonDenyNetwork},
		{"unspecified v6", a, "[::]", 443, ReasonDenyNetwork, ReasonDenyNetwork},
		{"broadcast", a, "255.255.255.255", 443, ReasonDenyNetwork, ReasonDenyNetwork},
		{"multicast", a, "224.0.0.1", 443, ReasonDenyNetwork, ReasonDenyNetwork},
		{"own LAN address, any port", a, "10.0.0.5", 443, ReasonDenyNetwork, ReasonDenyNetwork},
		{"own v6 address", a, "[2001:db8::5]", 443, ReasonDenyNetwork, ReasonDenyNetwork},
		{"public literal", a, "192.0.2.10", 443, "", ""},
		{"public v6 literal", a, "[2001:db8::10]", 443, "", ""},

		{"bad host", a, "exa mple.com", 443, ReasonBadRequest, ReasonBadRequest},
		{"empty host", a, "", 443, ReasonBadRequest, ReasonBadRequest},
		{"empty label", a, "a..b", 443, ReasonBadRequest, ReasonBadRequest},
		{"bracketed v4", a, "[192.0.2.1]", 443, ReasonBadRequest, ReasonBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.acl.Connect(tt.host, tt.port); got != tt.connect {
				t.Errorf("Connect(%q, %d) = %q, want %q", tt.host, tt.port, got, tt.connect)
			}
			if got := tt.acl.Forward(tt.host, tt.port); got != tt.forward {
				t.Errorf("Forward(%q, %d) = %q, want %q", tt.host, tt.port, got, tt.forward)
			}
		})
	}
}

func TestDest(t *testing.T) {
	self := Self{
		Addrs: []netip.Addr{netip.MustParseAddr("10.0.0.5")},
		Listen: []netip.AddrPort{
			netip.MustParseAddrPort("127.0.0.1:3128"),
			netip.MustParseAddrPort("0.0.0.0:1080"),
		},
	}
	// Loopback is not denied here, as in a bench or test setup: only the proxy's own
	// listeners are then a loop.
	open := mustACL(t, Rules{DenyNetworks: prefixes("169.254.0.0/16")}, self)
	def := mustACL(t, specDefaults(), self)
	tests := []struct {
		name string
		acl  *ACL
		dest string
		want Reason
	}{
		{"loopback other port", open, "127.0.0.1:8080", ""},
		{"own listener", open, "127.0.0.1:3128", ReasonLoop},
		{"own listener, mapped", open, "[::ffff:127.0.0.1]:3128", ReasonLoop},
		{"same port, other loopback address", open, "127.0.0.2:3128", ""},
		{"wildcard listener via loopback", open, "127.0.0.9:1080", ReasonLoop},
		{"wildcard listener via v6 loopback", open, "[::1]:1080", ReasonLoop},
		{"wildcard listener via LAN address", open, "10.0.0.5:1080", ReasonLoop},
		{"wildcard listener via unspecified", open, "0.0.0.0:1080", ReasonLoop},
		{"LAN address other port", open, "10.0.0.5:80", ReasonDenyNetwork},
		{"other host at the listener port", open, "192.0.2.1:1080", ""},
		{"metadata", open, "169.254.169.254:80", ReasonDenyNetwork},
		{"default denies loopback", def, "127.0.0.1:8080", ReasonDenyNetwork},
		{"default says loop for the listener", def, "127.0.0.1:3128", ReasonLoop},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.acl.Dest(netip.MustParseAddrPort(tt.dest)); got != tt.want {
				t.Errorf("Dest(%s) = %q, want %q", tt.dest, got, tt.want)
			}
		})
	}
	if got := open.Dest(netip.AddrPort{}); got != ReasonDenyNetwork {
		t.Errorf("Dest(invalid) = %q, want %q", got, ReasonDenyNetwork)
	}
}

func TestProbe(t *testing.T) {
	probes := map[Reason]bool{ReasonClient: true, ReasonMailPort: true, ReasonPort: true}
	for _, r := range []Reason{ReasonBlack, ReasonClient, ReasonAuthRequired, ReasonAuthFailed,
		ReasonMailPort, ReasonPort, ReasonDenyHost, ReasonDenyNetwork, ReasonLoop,
		ReasonBadRequest, ReasonUnsupported} {
		if got := r.Probe(); got != probes[r] {
			t.Errorf("%s.Probe() = %v, want %v", r, got, probes[r])
		}
	}
}

func TestBadPatterns(t *testing.T) {
	for _, pat := range []string{"", "*", "*.", ".", "a b", "*.a..b", "http://x", "x/y"} {
		t.Run(pat, func(t *testing.T) {
			if _, err := New(Rules{DenyHosts: []string{pat}}, Self{}); err == nil {
				t.Errorf("New accepted deny_hosts pattern %q", pat)
			}
		})
	}
}

func TestCanonicalHost(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"Example.COM.", "example.com", true},
		{"[2001:DB8::1]", "2001:db8::1", true},
		{"::ffff:10.0.0.1", "10.0.0.1", true},
		{"[::ffff:10.0.0.1]", "10.0.0.1", true},
		{"10.0.0.1", "10.0.0.1", true},
		{"a_b.example", "a_b.example", true},
		{"", "", false},
		{"[x]", "", false},
		{"a%00b", "", false},
		{"a\x00b", "", false},
	}
	for _, tt := range tests {
		got, ok := CanonicalHost(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("CanonicalHost(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestTally(t *testing.T) {
	var ty Tally
	ty.Add(ReasonPort)
	ty.Add(ReasonPort)
	ty.Add(ReasonBlack)
	if got := ty.Get(ReasonPort); got != 2 {
		t.Errorf("Get(port) = %d, want 2", got)
	}
	s := ty.Snapshot()
	s[ReasonBlack] = 99
	if got := ty.Get(ReasonBlack); got != 1 {
		t.Errorf("Snapshot shares the map: Get(black) = %d", got)
	}
}
