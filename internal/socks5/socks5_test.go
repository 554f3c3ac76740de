package socks5

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/netacl"
)

func TestCurlSocks(t *testing.T) {
	t.Parallel()
	plain := newOrigin(t, false, "")
	secure := newOrigin(t, true, "")
	h := newHarness(t, harnessConfig{
		resolver: fakeResolver{"www.origin.test": "127.0.0.1"},
		opts:     func(o *Options) { o.Rules.ConnectPorts = []int{plain.port, secure.port} },
	})
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"domain name, resolved by the proxy", []string{"--socks5-hostname", h.addr, fmt.Sprintf("http://www.origin.test:%d/", plain.port)},
			fmt.Sprintf("hello from www.origin.test:%d", plain.port)},
		{"IPv4 address", []string{"--socks5", h.addr, fmt.Sprintf("http://127.0.0.1:%d/", plain.port)},
			fmt.Sprintf("hello from 127.0.0.1:%d", plain.port)},
		{"TLS through the tunnel", []string{"-k", "--socks5-hostname", h.addr, fmt.Sprintf("https://www.origin.test:%d/", secure.port)},
			fmt.Sprintf("hello from www.origin.test:%d", secure.port)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := curl(t, tt.args...)
			if res.exit != 0 || res.code != 200 || res.body != tt.want {
				t.Errorf("exit %d, status %d, body %q (want %q): %s", res.exit, res.code, res.body, tt.want, res.stderr)
			}
		})
	}
	lines := h.accessLines(3)
	if len(lines) != 3 {
		t.Fatalf("%d access lines, want 3", len(lines))
	}
	l := lines[0]
	if l["client"] != "127.0.0.1" || l["cmd"] != "connect" || l["target"] != fmt.Sprintf("www.origin.test:%d", plain.port) ||
		l["reply"] != 0.0 || l["bytes"].(float64) <= 0 || l["bytes_up"].(float64) <= 0 || l["reason"] != nil {
		t.Errorf("access line %v", l)
	}
	if s := h.proxy.Stats(); s.Sessions != 3 || s.BytesUp <= 0 || s.BytesDown <= 0 || len(s.Refused) != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestCurlSocksIPv6(t *testing.T) {
	t.Parallel()
	o := newOrigin(t, false, "[::1]:0")
	h := newHarness(t, harnessConfig{opts: func(opts *Options) { opts.Rules.ConnectPorts = []int{o.port} }})
	res := curl(t, "--socks5", h.addr, fmt.Sprintf("http://[::1]:%d/", o.port))
	if res.code != 200 {
		t.Fatalf("status %d: %s", res.code, res.stderr)
	}
	if l := h.accessLines(1); len(l) != 1 || l[0]["target"] != fmt.Sprintf("[::1]:%d", o.port) {
		t.Errorf("access lines %v", l)
	}
}

func TestCurlSocksAuth(t *testing.T) {
	t.Parallel()
	o := newOrigin(t, false, "")
	h := newHarness(t, harnessConfig{
		users: map[string]string{"alice@example.jp": "s3cret"},
		opts: func(opts *Options) {
			opts.Auth = true
			opts.Rules.ConnectPorts = []int{o.port}
		},
	})
	url := fmt.Sprintf("http://127.0.0.1:%d/", o.port)
	tests := []struct {
		name   string
		args   []string
		ok     bool
		reason netacl.Reason
	}{
		{"no credentials", nil, false, netacl.ReasonAuthRequired},
		{"wrong password", []string{"--proxy-user", "alice@example.jp:nope"}, false, netacl.ReasonAuthFailed},
		{"unknown user", []string{"--proxy-user", "bob@example.jp:s3cret"}, false, netacl.ReasonAuthFailed},
		{"good", []string{"--proxy-user", "alice@example.jp:s3cret"}, true, ""},
		{"good, cached", []string{"--proxy-user", "alice@example.jp:s3cret"}, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := h.proxy.Stats().Refused[tt.reason]
			res := curl(t, append(append([]string{"--socks5-hostname", h.addr}, tt.args...), url)...)
			if tt.ok != (res.code == 200) {
				t.Errorf("exit %d, status %d: %s", res.exit, res.code, res.stderr)
			}
			if tt.reason != "" {
				if n := h.proxy.Stats().Refused[tt.reason] - before; n != 1 {
					t.Errorf("%s refusals went up by %d, want 1", tt.reason, n)
				}
			}
		})
	}
	if n := o.requests(); n != 2 {
		t.Errorf("origin got %d requests, want 2", n)
	}
	if len(h.bl.Calls()) != 0 {
		t.Errorf("auth failures blacklisted: %v", h.bl.Calls())
	}
	found := false
	for _, l := range h.accessLines(5) {
		found = found || l["user"] == "alice@example.jp"
	}
	if !found {
		t.Error("no access line names the user")
	}
}

// TestSocksAbuse: SOCKS CONNECT to a mail port, to a port not listed, from outside
// allow_networks: refused with 0x02 before anything is contacted, counted, handed to the
// Blacklister with source proxy-abuse, and the client's next request is refused as BLACK.
func TestSocksAbuse(t *testing.T) {
	t.Parallel()
	o := newOrigin(t, false, "")
	good := fmt.Sprintf("http://127.0.0.1:%d/", o.port)
	tests := []struct {
		name      string
		opts      func(*Options)
		url       string
		client    string
		reason    netacl.Reason
		blacklist bool
	}{
		{name: "CONNECT :25", url: "http://127.0.0.1:25/", reason: netacl.ReasonMailPort, blacklist: true},
		{name: "CONNECT :465 by name", url: "http://mx.example.com:465/", reason: netacl.ReasonMailPort, blacklist: true},
		{name: "CONNECT :587", url: "http://127.0.0.1:587/", reason: netacl.ReasonMailPort, blacklist: true},
		{name: "CONNECT :25 even when listed", opts: func(o *Options) { o.Rules.ConnectPorts = append(o.Rules.ConnectPorts, 25) },
			url: "http://127.0.0.1:25/", reason: netacl.ReasonMailPort, blacklist: true},
		{name: "port not listed", url: "http://127.0.0.1:8080/", reason: netacl.ReasonPort, blacklist: true},
		{name: "client outside allow_networks", url: good, client: "127.0.0.2", reason: netacl.ReasonClient, blacklist: true},
		{name: "empty allow_networks refuses everyone", opts: func(o *Options) { o.Rules.AllowNetworks = nil },
			url: good, reason: netacl.ReasonClient, blacklist: true},
		{name: "blacklist_probes off", opts: func(o *Options) { o.BlacklistProbes = false },
			url: "http://127.0.0.1:25/", reason: netacl.ReasonMailPort},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, harnessConfig{opts: func(opts *Options) {
				opts.Rules.ConnectPorts = []int{443, o.port}
				if tt.opts != nil {
					tt.opts(opts)
				}
			}})
			client := tt.client
			if client == "" {
				client = "127.0.0.1"
			}
			res := curl(t, "--interface", client, "--socks5-hostname", h.addr, tt.url)
			if res.exit == 0 || res.code != 0 {
				t.Errorf("curl: exit %d, status %d, want a SOCKS failure", res.exit, res.code)
			}
			if !strings.Contains(res.stderr, "(2)") && !strings.Contains(strings.ToLower(res.stderr), "not allowed") {
				t.Errorf("curl does not report reply 2: %s", res.stderr)
			}
			if n := h.proxy.Stats().Refused[tt.reason]; n != 1 {
				t.Errorf("%s refusals = %d, want 1 (all: %v)", tt.reason, n, h.proxy.Stats().Refused)
			}
			if d := h.dials.Addrs(); len(d) != 0 {
				t.Errorf("dialled %v: nothing may be contacted", d)
			}
			ip := netip.MustParseAddr(client)
			calls := h.bl.Calls()
			if !tt.blacklist {
				if len(calls) != 0 || h.lists.BlackIP(ip, time.Now()) {
					t.Errorf("blacklisted: %v", calls)
				}
				return
			}
			if len(calls) != 1 || calls[0].ip != ip || calls[0].source != "proxy-abuse" {
				t.Fatalf("blacklister calls %+v, want one for %s, source proxy-abuse", calls, ip)
			}
			if !h.lists.BlackIP(ip, time.Now()) {
				t.Fatalf("%s not in BLACK (the SMTP proxy would not refuse it)", ip)
			}
			seen := o.requests()
			if res := curl(t, "--interface", client, "--socks5-hostname", h.addr, good); res.code != 0 {
				t.Errorf("next request from a BLACK client: status %d", res.code)
			}
			if n := h.proxy.Stats().Refused[netacl.ReasonBlack]; n != 1 {
				t.Errorf("black refusals = %d, want 1", n)
			}
			if o.requests() != seen {
				t.Error("the origin was reached by a blacklisted client")
			}
			if n := len(h.bl.Calls()); n != 1 {
				t.Errorf("blacklister called %d times, want 1", n)
			}
		})
	}
}

// TestSocksReplies checks reply codes with a hand-written client.
func TestSocksReplies(t *testing.T) {
	t.Parallel()
	o := newOrigin(t, false, "")
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := closed.Addr().(*net.TCPAddr).Port
	closed.Close()
	h := newHarness(t, harnessConfig{
		resolver: fakeResolver{"metadata.test": "169.254.169.254"},
		opts:     func(opts *Options) { opts.Rules.ConnectPorts = []int{443, o.port, closedPort} },
	})
	_, proxyPort, _ := net.SplitHostPort(h.addr)
	pp, _ := strconv.Atoi(proxyPort)
	h.proxy.Reload(Options{BlacklistProbes: true, Rules: netacl.Rules{
		AllowNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		ConnectPorts:  []int{443, o.port, closedPort, pp},
		DenyNetworks:  []netip.Prefix{netip.MustParsePrefix("169.254.0.0/16")},
	}})
	req := func(cmd, atyp byte, host string, port int) []byte {
		return appendRequest(nil, request{cmd, atyp, host, port})
	}
	tests := []struct {
		name   string
		raw    []byte
		reply  byte
		reason netacl.Reason
	}{
		{"connect", req(cmdConnect, atypIPv4, "127.0.0.1", o.port), replySucceeded, ""},
		{"connect by name", req(cmdConnect, atypDomain, "localhost", o.port), replySucceeded, ""},
		{"bind", req(cmdBind, atypIPv4, "0.0.0.0", 0), replyCmdNotSupported, netacl.ReasonUnsupported},
		{"udp associate", req(cmdUDPAssociate, atypIPv4, "0.0.0.0", 0), replyCmdNotSupported, netacl.ReasonUnsupported},
		{"address type", []byte{5, 1, 0, 9, 1, 2, 3, 4, 0, 80}, replyAddrNotSupported, ""},
		{"metadata by name", req(cmdConnect, atypDomain, "metadata.test", 443), replyNotAllowed, netacl.ReasonDenyNetwork},
		{"mapped metadata", req(cmdConnect, atypIPv6, "::ffff:169.254.169.254", 443), replyNotAllowed, netacl.ReasonDenyNetwork},
		{"bad name", req(cmdConnect, atypDomain, "a b", 443), replyNotAllowed, netacl.ReasonBadRequest},
		{"loop", req(cmdConnect, atypIPv4, "127.0.0.1", pp), replyNotAllowed, netacl.ReasonLoop},
		{"connection refused", req(cmdConnect, atypIPv4, "127.0.0.1", closedPort), replyConnectionRefused, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := h.proxy.Stats().Refused[tt.reason]
			sc := dialSocks(t, h.addr, "")
			rep, bnd := sc.request(tt.raw)
			if rep != tt.reply {
				t.Fatalf("reply %#x, want %#x", rep, tt.reply)
			}
			if tt.reason != "" {
				if n := h.proxy.Stats().Refused[tt.reason] - before; n != 1 {
					t.Errorf("%s refusals went up by %d", tt.reason, n)
				}
			}
			if rep != replySucceeded {
				if _, err := sc.br.ReadByte(); err != io.EOF {
					t.Errorf("connection open after a failure reply: %v", err)
				}
				return
			}
			if !bnd.Addr().IsLoopback() || bnd.Port() == 0 {
				t.Errorf("bound address %v", bnd)
			}
			fmt.Fprintf(sc.c, "GET / HTTP/1.0\r\nHost: x\r\n\r\n")
			body, _ := io.ReadAll(sc.br)
			if !strings.HasSuffix(string(body), "hello from x") {
				t.Errorf("through the tunnel: %q", body)
			}
		})
	}
	if len(h.bl.Calls()) != 0 {
		t.Errorf("blacklisted: %v", h.bl.Calls())
	}
}

// TestSocksDefaultDenyNetworks keeps SPEC §8's deny_networks: loopback is refused by
// address and by a name that resolves to it.
func TestSocksDefaultDenyNetworks(t *testing.T) {
	t.Parallel()
	o := newOrigin(t, false, "")
	h := newHarness(t, harnessConfig{opts: func(opts *Options) {
		opts.Rules.DenyNetworks = []netip.Prefix{
			netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128"),
			netip.MustParsePrefix("169.254.0.0/16"), netip.MustParsePrefix("fe80::/10"),
		}
		opts.Rules.ConnectPorts = []int{o.port}
	}})
	for _, url := range []string{
		fmt.Sprintf("http://127.0.0.1:%d/", o.port),
		fmt.Sprintf("http://localhost:%d/", o.port),
	} {
		if res := curl(t, "--socks5-hostname", h.addr, url); res.code != 0 || res.exit == 0 {
			t.Errorf("%s: status %d, exit %d", url, res.code, res.exit)
		}
	}
	if n := h.proxy.Stats().Refused[netacl.ReasonDenyNetwork]; n != 2 {
		t.Errorf("deny-network refusals = %d, want 2", n)
	}
	if o.requests() != 0 || len(h.dials.Addrs()) != 0 {
		t.Errorf("origin requests %d, dials %v", o.requests(), h.dials.Addrs())
	}
}

// TestSocksBlackClient: a client in BLACK (put there by any module) is refused with 0x02.
func TestSocksBlackClient(t *testing.T) {
	t.Parallel()
	o := newOrigin(t, false, "")
	h := newHarness(t, harnessConfig{opts: func(opts *Options) { opts.Rules.ConnectPorts = []int{o.port} }})
	if err := h.bl.Blacklist(t.Context(), netip.MustParseAddr("127.0.0.1"), "decoy", "mailed a decoy"); err != nil {
		t.Fatal(err)
	}
	sc := dialSocks(t, h.addr, "")
	if rep, _ := sc.request(appendRequest(nil, request{cmdConnect, atypIPv4, "127.0.0.1", o.port})); rep != replyNotAllowed {
		t.Errorf("reply %#x, want 0x02", rep)
	}
	if n := h.proxy.Stats().Refused[netacl.ReasonBlack]; n != 1 {
		t.Errorf("black refusals = %d", n)
	}
	if o.requests() != 0 {
		t.Error("origin reached")
	}
}

// TestSocksNotSocks: an HTTP probe at the SOCKS port from outside allow_networks is a probe.
func TestSocksNotSocks(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessConfig{})
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
	c, err := d.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "CONNECT mx.example.com:25 HTTP/1.1\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 10)); err != io.EOF {
		t.Errorf("read %d, %v; want the connection closed", n, err)
	}
	if n := h.proxy.Stats().Refused[netacl.ReasonClient]; n != 1 {
		t.Errorf("client-not-allowed refusals = %d", n)
	}
	if calls := h.bl.Calls(); len(calls) != 1 || calls[0].ip != netip.MustParseAddr("127.0.0.2") {
		t.Errorf("blacklister calls %v", calls)
	}
}

func TestSocksIdleTimeout(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(io.Discard, c)
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	h := newHarness(t, harnessConfig{opts: func(o *Options) {
		o.Rules.ConnectPorts = []int{port}
		o.IdleTimeout = 150 * time.Millisecond
	}})
	sc := dialSocks(t, h.addr, "")
	if rep, _ := sc.request(appendRequest(nil, request{cmdConnect, atypIPv4, "127.0.0.1", port})); rep != 0 {
		t.Fatalf("reply %#x", rep)
	}
	start := time.Now()
	if _, err := sc.br.ReadByte(); err != io.EOF {
		t.Errorf("idle tunnel: %v, want EOF", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("closed after %v", d)
	}
	if l := h.accessLines(1); len(l) != 1 || l[0]["err"] != "tunnel idle timeout" {
		t.Errorf("access lines %v", l)
	}
}

func TestSocksShutdown(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	h := newHarness(t, harnessConfig{opts: func(o *Options) { o.Rules.ConnectPorts = []int{port} }})
	sc := dialSocks(t, h.addr, "")
	if rep, _ := sc.request(appendRequest(nil, request{cmdConnect, atypIPv4, "127.0.0.1", port})); rep != 0 {
		t.Fatalf("reply %#x", rep)
	}
	// A second client still in its handshake.
	idle, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if err := h.proxy.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want the deadline", err)
	}
	if _, err := sc.br.ReadByte(); err != io.EOF {
		t.Errorf("tunnel after Shutdown: %v, want EOF", err)
	}
	if err := <-h.serve; !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve = %v", err)
	}
	h.serve <- ErrServerClosed
	if n := h.proxy.Stats().Open; n != 0 {
		t.Errorf("%d sessions open after Shutdown", n)
	}
	if _, err := net.DialTimeout("tcp", h.addr, time.Second); err == nil {
		t.Error("listener still accepts")
	}
}
