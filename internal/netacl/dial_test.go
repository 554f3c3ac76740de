package netacl

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"
)

// fakeResolver answers from a table, like a DNS server an attacker controls.
type fakeResolver map[string][]string

func (f fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	ss, ok := f[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out, nil
}

// dialLog records every address dialled; dialling fails unless the address is in ok.
type dialLog struct {
	mu    sync.Mutex
	addrs []string
	ok    map[string]bool
}

func (d *dialLog) dial(_ context.Context, _, address string) (net.Conn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.addrs = append(d.addrs, address)
	if d.ok[address] {
		c1, c2 := net.Pipe()
		c2.Close()
		return c1, nil
	}
	return nil, errors.New("connection refused")
}

func TestDialACL(t *testing.T) {
	res := fakeResolver{
		"public.example":   {"192.0.2.10"},
		"rebind.example":   {"127.0.0.1"},
		"metadata.example": {"169.254.169.254"},
		"mixed.example":    {"127.0.0.1", "192.0.2.11", "169.254.169.254", "192.0.2.12"},
		"mapped.example":   {"::ffff:127.0.0.1"},
		"self.example":     {"10.0.0.5"},
		"proxy.example":    {"192.0.2.20"},
	}
	self := Self{Addrs: []netip.Addr{netip.MustParseAddr("10.0.0.5")}, Listen: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.20:3128")}}
	r := specDefaults()
	r.ConnectPorts = []int{443, 3128}
	r.DenyHosts = []string{"*.blocked.example"}
	acl := mustACL(t, r, self)

	tests := []struct {
		name      string
		host      string
		port      int
		ok        []string // addresses that accept
		want      Reason   // refusal, or "" for success / network error
		wantErr   bool
		wantDials []string
	}{
		{"public", "public.example", 443, []string{"192.0.2.10:443"}, "", false, []string{"192.0.2.10:443"}},
		{"literal", "192.0.2.30", 443, []string{"192.0.2.30:443"}, "", false, []string{"192.0.2.30:443"}},
		{"v6 literal", "[2001:db8::1]", 443, []string{"[2001:db8::1]:443"}, "", false, []string{"[2001:db8::1]:443"}},
		{"rebinding to loopback", "rebind.example", 443, nil, ReasonDenyNetwork, true, nil},
		{"metadata", "metadata.example", 443, nil, ReasonDenyNetwork, true, nil},
		{"mapped loopback", "mapped.example", 443, nil, ReasonDenyNetwork, true, nil},
		{"own address", "self.example", 443, nil, ReasonDenyNetwork, true, nil},
		{"loop", "proxy.example", 3128, nil, ReasonLoop, true, nil},
		{"mixed answer: only allowed addresses, in order", "mixed.example", 443, []string{"192.0.2.12:443"}, "", false,
			[]string{"192.0.2.11:443", "192.0.2.12:443"}},
		{"loopback literal", "127.0.0.1", 443, nil, ReasonDenyNetwork, true, nil},
		{"denied name, not even resolved", "x.blocked.example", 443, nil, ReasonDenyHost, true, nil},
		{"unknown name", "nx.example", 443, nil, "", true, nil},
		{"all fail", "public.example", 443, nil, "", true, []string{"192.0.2.10:443"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dl := &dialLog{ok: map[string]bool{}}
			for _, a := range tt.ok {
				dl.ok[a] = true
			}
			d := &Dialer{Resolver: res, Dial: dl.dial}
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			c, err := d.DialACL(ctx, acl, tt.host, tt.port)
			if c != nil {
				c.Close()
			}
			if (err != nil) != tt.wantErr {
				t.Fatalf("DialACL(%s, %d) err = %v, want error %v", tt.host, tt.port, err, tt.wantErr)
			}
			var re *RefusedError
			var got Reason
			if errors.As(err, &re) {
				got = re.Reason
			}
			if got != tt.want {
				t.Errorf("refusal = %q, want %q (err %v)", got, tt.want, err)
			}
			if !slices.Equal(dl.addrs, tt.wantDials) {
				t.Errorf("dialled %q, want %q", dl.addrs, tt.wantDials)
			}
		})
	}
}

func TestSplitHostPort(t *testing.T) {
	tests := []struct {
		in   string
		host string
		port int
		ok   bool
	}{
		{"example.com:443", "example.com", 443, true},
		{"[::1]:80", "::1", 80, true},
		{"example.com:025", "example.com", 25, true},
		{"example.com", "", 0, false},
		{"example.com:0", "", 0, false},
		{"example.com:65536", "", 0, false},
		{"example.com:x", "", 0, false},
		{":443", "", 0, false},
	}
	for _, tt := range tests {
		h, p, err := SplitHostPort(tt.in)
		if (err == nil) != tt.ok || h != tt.host || p != tt.port {
			t.Errorf("SplitHostPort(%q) = %q, %d, %v; want %q, %d, ok %v", tt.in, h, p, err, tt.host, tt.port, tt.ok)
		}
	}
}
