package fwdproxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/netacl"
)

func TestCurlGet(t *testing.T) {
	t.Parallel()
	o := newOrigin(t, false)
	h := newHarness(t, harnessConfig{})
	url := fmt.Sprintf("http://127.0.0.1:%d/a", o.port)
	// Two URLs in one curl: keep-alive to the client and to the origin.
	res := curl(t, "--proxy", h.proxyURL(),
		"-H", "Connection: X-Hop", "-H", "X-Hop: secret", "-H", "Keep-Alive: timeout=5",
		"-H", "Proxy-Connection: keep-alive", "-H", "TE: gzip", "-H", "X-Forwarded-For: 10.9.9.9",
		"-H", "X-End-To-End: kept",
		url, url)
	if res.exit != 0 || res.code != 200 {
		t.Fatalf("curl: exit %d, status %d: %s", res.exit, res.code, res.stderr)
	}
	if want := fmt.Sprintf("hello from 127.0.0.1:%d over HTTP/1.1", o.port); !strings.Contains(res.body, want) {
		t.Errorf("body %q, want %q", res.body, want)
	}
	if len(res.connects) != 2 || res.connects[1] != 0 {
		t.Errorf("curl connects per request = %v, want [1 0] (client keep-alive)", res.connects)
	}
	if n := o.newConns(); n != 1 {
		t.Errorf("origin saw %d connections, want 1 (origin keep-alive)", n)
	}
	reqs := o.requests()
	if len(reqs) != 2 {
		t.Fatalf("origin saw %d requests, want 2", len(reqs))
	}
	got := reqs[0].Header
	for _, name := range []string{"Connection", "X-Hop", "Keep-Alive", "Proxy-Connection", "Te", "X-Forwarded-For", "Proxy-Authorization"} {
		if v, ok := got[name]; ok {
			t.Errorf("hop-by-hop header %s reached the origin: %q", name, v)
		}
	}
	if v, ok := got["Accept-Encoding"]; ok {
		t.Errorf("the proxy asked the origin for an encoding: %q", v)
	}
	if got.Get("X-End-To-End") != "kept" {
		t.Errorf("end-to-end header lost: %v", got)
	}
	if v := got.Get("Via"); v != "1.1 proxy.test" {
		t.Errorf("Via at origin = %q, want %q", v, "1.1 proxy.test")
	}
	lines := h.waitAccessLines(2)
	if len(lines) != 2 {
		t.Fatalf("%d access lines, want 2", len(lines))
	}
	l := lines[0]
	if l["client"] != "127.0.0.1" || l["method"] != "GET" || l["target"] != url || l["status"] != 200.0 ||
		l["bytes"] != float64(len(res.body)/2) || l["duration"] == nil || l["reason"] != nil {
		t.Errorf("access line %v", l)
	}
}

func TestCurlResponseVia(t *testing.T) {
	t.Parallel()
	o := newOrigin(t, false)
	h := newHarness(t, harnessConfig{})
	res := curl(t, "--proxy", h.proxyURL(), "-D", "-", fmt.Sprintf("http://127.0.0.1:%d/", o.port))
	if res.code != 200 {
		t.Fatalf("status %d: %s", res.code, res.stderr)
	}
	if !strings.Contains(res.body, "Via: 1.1 proxy.test") {
		t.Errorf("response has no Via: %q", res.body)
	}
}

func TestCurlConnect(t *testing.T) {
	t.Parallel()
	o := newOrigin(t, true)
	h := newHarness(t, harnessConfig{opts: func(o2 *Options) { o2.Rules.ConnectPorts = []int{o.port} }})
	url := fmt.Sprintf("https://127.0.0.1:%d/tls", o.port)
	res := curl(t, "-k", "--proxy", h.proxyURL(), url)
	if res.exit != 0 || res.code != 200 || res.connect != 200 {
		t.Fatalf("curl: exit %d, status %d, connect %d: %s", res.exit, res.code, res.connect, res.stderr)
	}
	if !strings.Contains(res.body, "hello from") {
		t.Errorf("body %q", res.body)
	}
	lines := h.waitAccessLines(1)
	if len(lines) != 1 {
		t.Fatalf("%d access lines, want 1", len(lines))
	}
	l := lines[0]
	if l["method"] != "CONNECT" || l["target"] != fmt.Sprintf("127.0.0.1:%d", o.port) || l["status"] != 200.0 ||
		l["bytes"].(float64) <= 0 || l["bytes_up"].(float64) <= 0 {
		t.Errorf("access line %v", l)
	}
	if s := h.proxy.Stats(); s.BytesUp <= 0 || s.BytesDown <= 0 || s.Tunnels != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestCurlAuth(t *testing.T) {
	t.Parallel()
	plain := newOrigin(t, false)
	secure := newOrigin(t, true)
	h := newHarness(t, harnessConfig{
		users: map[string]string{"alice@example.jp": "s3cret"},
		opts: func(o *Options) {
			o.Auth = true
			o.Realm = "sekisho proxy"
			o.Rules.ConnectPorts = []int{secure.port}
		},
	})
	get := fmt.Sprintf("http://127.0.0.1:%d/", plain.port)
	tunnel := fmt.Sprintf("https://127.0.0.1:%d/", secure.port)
	tests := []struct {
		name   string
		args   []string
		code   int // GET status or CONNECT status
		reason netacl.Reason
	}{
		{"GET without credentials", []string{get}, 407, netacl.ReasonAuthRequired},
		{"GET wrong password", []string{"--proxy-user", "alice@example.jp:wrong", get}, 407, netacl.ReasonAuthFailed},
		{"GET unknown user", []string{"--proxy-user", "bob@example.jp:s3cret", get}, 407, netacl.ReasonAuthFailed},
		{"GET good", []string{"--proxy-user", "alice@example.jp:s3cret", get}, 200, ""},
		{"CONNECT without credentials", []string{"-k", tunnel}, 407, netacl.ReasonAuthRequired},
		{"CONNECT good", []string{"-k", "--proxy-user", "alice@example.jp:s3cret", tunnel}, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := h.proxy.Stats().Refused[tt.reason]
			res := curl(t, append([]string{"--proxy", h.proxyURL()}, tt.args...)...)
			got := res.code
			if strings.HasPrefix(tt.name, "CONNECT") {
				got = res.connect
			}
			if got != tt.code {
				t.Errorf("status %d (connect %d), want %d: %s", res.code, res.connect, tt.code, res.stderr)
			}
			if tt.reason != "" {
				if n := h.proxy.Stats().Refused[tt.reason] - before; n != 1 {
					t.Errorf("refusals for %s went up by %d, want 1", tt.reason, n)
				}
			}
		})
	}
	// The 407 carries the realm.
	res := curl(t, "--proxy", h.proxyURL(), "-D", "-", get)
	if !strings.Contains(res.body, `Proxy-Authenticate: Basic realm="sekisho proxy", charset="UTF-8"`) {
		t.Errorf("407 without realm: %q", res.body)
	}
	for _, r := range plain.requests() {
		if _, ok := r.Header["Proxy-Authorization"]; ok {
			t.Errorf("Proxy-Authorization reached the origin")
		}
	}
	if len(h.bl.Calls()) != 0 {
		t.Errorf("auth failures blacklisted: %v", h.bl.Calls())
	}
	var users []string
	for _, l := range h.accessLines() {
		if u, ok := l["user"].(string); ok {
			users = append(users, u)
		}
	}
	if len(users) == 0 {
		t.Errorf("no access line names the user")
	}
}

// TestDefaultDenyNetworks keeps SPEC §8's deny_networks: nothing on this host is reached,
// neither by address nor by a name that resolves to it.
func TestDefaultDenyNetworks(t *testing.T) {
	t.Parallel()
	o := newOrigin(t, false)
	h := newHarness(t, harnessConfig{
		resolver: fakeResolver{"metadata.test": "169.254.169.254", "rebind.test": "127.0.0.1"},
		opts: func(opts *Options) {
			opts.Rules.DenyNetworks = []netip.Prefix{
				netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128"),
				netip.MustParsePrefix("169.254.0.0/16"), netip.MustParsePrefix("fe80::/10"),
			}
			opts.Rules.ConnectPorts = []int{443, o.port}
		},
	})
	port := strconv.Itoa(o.port)
	tests := []struct {
		name, url string
		connect   bool
	}{
		{"loopback address", "http://127.0.0.1:" + port + "/", false},
		{"localhost, refused after resolution", "http://localhost:" + port + "/", false},
		{"v6 loopback", "http://[::1]:" + port + "/", false},
		{"DNS rebinding to loopback", "http://rebind.test:" + port + "/", false},
		{"cloud metadata by name", "http://metadata.test/latest/meta-data/", false},
		{"cloud metadata by address", "http://169.254.169.254/latest/meta-data/", false},
		{"CONNECT to loopback", "http://127.0.0.1:" + port + "/", true},
		{"CONNECT to localhost", "http://localhost:" + port + "/", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"--proxy", h.proxyURL(), tt.url}
			if tt.connect {
				args = append([]string{"-p"}, args...)
			}
			before := h.proxy.Stats().Refused[netacl.ReasonDenyNetwork]
			res := curl(t, args...)
			got := res.code
			if tt.connect {
				got = res.connect
			}
			if got != 403 {
				t.Errorf("status %d (connect %d), want 403: %s", res.code, res.connect, res.stderr)
			}
			if n := h.proxy.Stats().Refused[netacl.ReasonDenyNetwork] - before; n != 1 {
				t.Errorf("deny-network refusals went up by %d, want 1", n)
			}
		})
	}
	if n := len(o.requests()); n != 0 {
		t.Errorf("the origin on loopback got %d requests", n)
	}
	if d := h.dials.Addrs(); len(d) != 0 {
		t.Errorf("dialled %v", d)
	}
	if len(h.bl.Calls()) != 0 {
		t.Errorf("deny-network refusals blacklisted: %v", h.bl.Calls())
	}
	// Resolution still serves names that resolve elsewhere: the refusal is by address.
	if r := h.proxy.settings().acl.Target("metadata.test", 80); r != "" {
		t.Errorf("name refused before resolution: %s", r)
	}
}

// TestAbuse: every probe shape is refused without contacting anything, counted, handed to
// the Blacklister with source proxy-abuse, and the client's next request is refused as
// BLACK.
func TestAbuse(t *testing.T) {
	t.Parallel()
	o := newOrigin(t, false)
	secure := newOrigin(t, true)
	good := fmt.Sprintf("http://127.0.0.1:%d/", o.port)
	tests := []struct {
		name      string
		opts      func(*Options)
		args      []string // curl arguments after --proxy
		client    string   // source address
		connect   bool     // the status to check is the CONNECT answer
		reason    netacl.Reason
		blacklist bool
	}{
		{name: "CONNECT :25", args: []string{"-p", "http://127.0.0.1:25/"}, connect: true, reason: netacl.ReasonMailPort, blacklist: true},
		{name: "CONNECT :465", args: []string{"-p", "http://127.0.0.1:465/"}, connect: true, reason: netacl.ReasonMailPort, blacklist: true},
		{name: "CONNECT :587", args: []string{"-p", "http://mx.example.com:587/"}, connect: true, reason: netacl.ReasonMailPort, blacklist: true},
		{name: "CONNECT :25 even when listed", opts: func(o *Options) { o.Rules.ConnectPorts = []int{25, 443} },
			args: []string{"-p", "http://127.0.0.1:25/"}, connect: true, reason: netacl.ReasonMailPort, blacklist: true},
		{name: "POST to :25", args: []string{"-d", "HELO x", "http://127.0.0.1:25/"}, reason: netacl.ReasonMailPort, blacklist: true},
		{name: "CONNECT to a port not listed", args: []string{"-k", fmt.Sprintf("https://127.0.0.1:%d/", secure.port)},
			connect: true, reason: netacl.ReasonPort, blacklist: true},
		{name: "client outside allow_networks", args: []string{good}, client: "127.0.0.2",
			reason: netacl.ReasonClient, blacklist: true},
		{name: "empty allow_networks refuses everyone", opts: func(o *Options) { o.Rules.AllowNetworks = nil },
			args: []string{good}, reason: netacl.ReasonClient, blacklist: true},
		{name: "blacklist_probes off", opts: func(o *Options) { o.BlacklistProbes = false },
			args: []string{"-p", "http://127.0.0.1:25/"}, connect: true, reason: netacl.ReasonMailPort},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, harnessConfig{opts: tt.opts})
			client := tt.client
			if client == "" {
				client = "127.0.0.1"
			}
			args := append([]string{"--interface", client, "--proxy", h.proxyURL()}, tt.args...)
			res := curl(t, args...)
			got := res.code
			if tt.connect {
				got = res.connect
			}
			if got != 403 {
				t.Errorf("status %d (connect %d), want 403: %s", res.code, res.connect, res.stderr)
			}
			if n := h.proxy.Stats().Refused[tt.reason]; n != 1 {
				t.Errorf("refusals for %s = %d, want 1 (all: %v)", tt.reason, n, h.proxy.Stats().Refused)
			}
			if d := h.dials.Addrs(); len(d) != 0 {
				t.Errorf("dialled %v: nothing may be contacted", d)
			}
			calls := h.bl.Calls()
			ip := netip.MustParseAddr(client)
			if !tt.blacklist {
				if len(calls) != 0 {
					t.Errorf("blacklisted: %v", calls)
				}
				if h.lists.BlackIP(ip, time.Now()) {
					t.Errorf("%s in BLACK", ip)
				}
				return
			}
			if len(calls) != 1 || calls[0].ip != ip || calls[0].source != "proxy-abuse" || !strings.Contains(calls[0].note, string(tt.reason)) {
				t.Fatalf("blacklister calls %+v, want one for %s, source proxy-abuse", calls, ip)
			}
			if !h.lists.BlackIP(ip, time.Now()) {
				t.Fatalf("%s not in BLACK (the SMTP proxy would not refuse it)", ip)
			}
			// The next request, even a good one, is refused as BLACK.
			seen := len(o.requests())
			res = curl(t, "--interface", client, "--proxy", h.proxyURL(), good)
			if res.code != 403 {
				t.Errorf("next request: status %d, want 403", res.code)
			}
			if n := h.proxy.Stats().Refused[netacl.ReasonBlack]; n != 1 {
				t.Errorf("black refusals = %d, want 1", n)
			}
			if len(o.requests()) != seen {
				t.Errorf("the origin was reached by a blacklisted client")
			}
			if n := len(h.bl.Calls()); n != 1 {
				t.Errorf("blacklister called %d times, want 1 (a BLACK client is not a new probe)", n)
			}
		})
	}
}

// TestMailPortsAllowed: allow_mail_ports lets a listed mail port through.
func TestMailPortsAllowed(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessConfig{opts: func(o *Options) {
		o.Rules.AllowMailPorts = true
		o.Rules.ConnectPorts = []int{25}
	}})
	res := curl(t, "--proxy", h.proxyURL(), "-p", "--max-time", "3", "http://127.0.0.1:25/")
	// Nothing listens on :25 here: the proxy tried, so the answer is 502, not 403.
	if res.connect != 502 {
		t.Errorf("connect status %d, want 502: %s", res.connect, res.stderr)
	}
	if d := h.dials.Addrs(); len(d) != 1 || d[0] != "127.0.0.1:25" {
		t.Errorf("dialled %v, want [127.0.0.1:25]", d)
	}
}

func TestDenyHosts(t *testing.T) {
	t.Parallel()
	o := newOrigin(t, false)
	h := newHarness(t, harnessConfig{
		resolver: fakeResolver{"www.blocked.test": "127.0.0.1", "ok.test": "127.0.0.1"},
		opts:     func(opts *Options) { opts.Rules.DenyHosts = []string{".blocked.test"} },
	})
	port := strconv.Itoa(o.port)
	if res := curl(t, "--proxy", h.proxyURL(), "http://www.blocked.test:"+port+"/"); res.code != 403 {
		t.Errorf("denied host: status %d, want 403", res.code)
	}
	if res := curl(t, "--proxy", h.proxyURL(), "http://ok.test:"+port+"/"); res.code != 200 {
		t.Errorf("other host: status %d, want 200: %s", res.code, res.stderr)
	}
	if n := h.proxy.Stats().Refused[netacl.ReasonDenyHost]; n != 1 {
		t.Errorf("deny-host refusals = %d, want 1", n)
	}
}

// TestLoop: the proxy refuses to be its own destination.
func TestLoop(t *testing.T) {
	t.Parallel()
	o := newOrigin(t, false)
	h := newHarness(t, harnessConfig{
		resolver: fakeResolver{"proxy.name.test": "127.0.0.1"},
	})
	_, port, _ := net.SplitHostPort(h.addr)
	h.proxy.Reload(Options{Hostname: "proxy.test", Rules: netacl.Rules{
		AllowNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		ConnectPorts:  []int{443, mustAtoi(port)},
		DenyNetworks:  []netip.Prefix{netip.MustParsePrefix("169.254.0.0/16")},
	}})
	tests := []struct {
		name    string
		args    []string
		connect bool
	}{
		{"GET to the proxy", []string{"http://127.0.0.1:" + port + "/"}, false},
		{"GET to the proxy by name", []string{"http://proxy.name.test:" + port + "/"}, false},
		{"CONNECT to the proxy", []string{"-p", "http://127.0.0.1:" + port + "/"}, true},
		{"Via names us", []string{"-H", "Via: 1.1 other.test, 1.1 proxy.test", fmt.Sprintf("http://127.0.0.1:%d/", o.port)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := h.proxy.Stats().Refused[netacl.ReasonLoop]
			res := curl(t, append([]string{"--proxy", h.proxyURL()}, tt.args...)...)
			got := res.code
			if tt.connect {
				got = res.connect
			}
			if got != 403 {
				t.Errorf("status %d (connect %d), want 403: %s", res.code, res.connect, res.stderr)
			}
			if n := h.proxy.Stats().Refused[netacl.ReasonLoop] - before; n != 1 {
				t.Errorf("loop refusals went up by %d, want 1", n)
			}
		})
	}
	if n := len(o.requests()); n != 0 {
		t.Errorf("origin got %d requests", n)
	}
	// Only the proxy's own listener is a loop: other ports of loopback stay reachable.
	if res := curl(t, "--proxy", h.proxyURL(), fmt.Sprintf("http://127.0.0.1:%d/", o.port)); res.code != 200 {
		t.Errorf("origin next to the proxy: status %d", res.code)
	}
}

func mustAtoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		panic(err)
	}
	return n
}

// TestNotAbsolute: a plain request must be in absolute form.
func TestNotAbsolute(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessConfig{})
	c, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: www.example.com\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("status %d, want 400", resp.StatusCode)
	}
}

// TestOriginHTTP2: an absolute-form https:// request reaches a TLS origin over HTTP/2.
func TestOriginHTTP2(t *testing.T) {
	t.Parallel()
	o := newOrigin(t, true)
	h := newHarness(t, harnessConfig{opts: func(opts *Options) {
		opts.OriginTLS = &tls.Config{RootCAs: o.srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}
	}})
	c, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	for range 2 {
		fmt.Fprintf(c, "GET https://127.0.0.1:%d/h2 HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n", o.port, o.port)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasSuffix(string(body), "over HTTP/2.0") {
			t.Fatalf("status %d, body %q", resp.StatusCode, body)
		}
		if v := resp.Header.Get("Via"); v != "2 proxy.test" {
			t.Errorf("response Via = %q, want %q", v, "2 proxy.test")
		}
	}
	if n := o.newConns(); n != 1 {
		t.Errorf("origin saw %d connections, want 1", n)
	}
}

// connectRaw opens a tunnel through the proxy by hand.
func connectRaw(t *testing.T, proxy, target string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", proxy)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("CONNECT %s: %s", target, resp.Status)
	}
	return c, br
}

// echoServer accepts TCP connections and hands them to serve.
func echoServer(t *testing.T, serve func(net.Conn)) (port int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				serve(c)
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

func TestTunnelIdleTimeout(t *testing.T) {
	t.Parallel()
	// The origin sends a byte every 40 ms for 600 ms, then falls silent.
	port := echoServer(t, func(c net.Conn) {
		for range 15 {
			if _, err := c.Write([]byte{'x'}); err != nil {
				return
			}
			time.Sleep(40 * time.Millisecond)
		}
		io.Copy(io.Discard, c)
	})
	h := newHarness(t, harnessConfig{opts: func(o *Options) {
		o.Rules.ConnectPorts = []int{port}
		o.TunnelIdleTimeout = 200 * time.Millisecond
	}})
	c, br := connectRaw(t, h.addr, fmt.Sprintf("127.0.0.1:%d", port))
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(br)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	// One-way traffic keeps the tunnel open: every byte arrives, though the client sent
	// nothing for longer than the idle timeout.
	if len(got) != 15 {
		t.Errorf("got %d bytes, want 15", len(got))
	}
	if d := time.Since(start); d < 600*time.Millisecond || d > 3*time.Second {
		t.Errorf("tunnel closed after %v, want soon after the origin fell silent", d)
	}
	lines := h.waitAccessLines(1)
	if len(lines) != 1 || lines[0]["err"] != "tunnel idle timeout" || lines[0]["bytes"] != 15.0 {
		t.Errorf("access lines %v", lines)
	}
}

func TestTunnelHalfClose(t *testing.T) {
	t.Parallel()
	// The origin answers after the client has finished sending (like a request/response
	// protocol with shutdown(SHUT_WR)).
	port := echoServer(t, func(c net.Conn) {
		data, _ := io.ReadAll(c)
		c.Write([]byte(strings.ToUpper(string(data))))
	})
	h := newHarness(t, harnessConfig{opts: func(o *Options) { o.Rules.ConnectPorts = []int{port} }})
	c, br := connectRaw(t, h.addr, fmt.Sprintf("127.0.0.1:%d", port))
	io.WriteString(c, "hello tunnel")
	c.(*net.TCPConn).CloseWrite()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(br)
	if err != nil || string(got) != "HELLO TUNNEL" {
		t.Errorf("got %q, %v", got, err)
	}
}

func TestShutdownClosesTunnels(t *testing.T) {
	t.Parallel()
	port := echoServer(t, func(c net.Conn) { io.Copy(c, c) })
	h := newHarness(t, harnessConfig{opts: func(o *Options) { o.Rules.ConnectPorts = []int{port} }})
	c, br := connectRaw(t, h.addr, fmt.Sprintf("127.0.0.1:%d", port))
	io.WriteString(c, "ping")
	buf := make([]byte, 4)
	if _, err := io.ReadFull(br, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo: %q, %v", buf, err)
	}
	if n := h.proxy.Stats().Tunnels; n != 1 {
		t.Fatalf("tunnels = %d, want 1", n)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := h.proxy.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want the deadline (a tunnel had to be cut)", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Shutdown took %v", d)
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("tunnel after Shutdown: read err %v, want EOF", err)
	}
	if err := <-h.serve; !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve = %v", err)
	}
	h.serve <- ErrServerClosed // for the cleanup
	if _, err := net.DialTimeout("tcp", h.addr, time.Second); err == nil {
		t.Errorf("listener still accepts after Shutdown")
	}
}

func TestShutdownGraceful(t *testing.T) {
	t.Parallel()
	port := echoServer(t, func(c net.Conn) {
		buf := make([]byte, 4)
		io.ReadFull(c, buf)
		time.Sleep(150 * time.Millisecond)
		c.Write(buf)
	})
	h := newHarness(t, harnessConfig{opts: func(o *Options) { o.Rules.ConnectPorts = []int{port} }})
	c, br := connectRaw(t, h.addr, fmt.Sprintf("127.0.0.1:%d", port))
	io.WriteString(c, "late")
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- h.proxy.Shutdown(ctx)
	}()
	buf := make([]byte, 4)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(br, buf); err != nil || string(buf) != "late" {
		t.Errorf("tunnel during graceful shutdown: %q, %v", buf, err)
	}
	c.Close()
	if err := <-done; err != nil {
		t.Errorf("Shutdown = %v, want nil", err)
	}
}

func TestHelpers(t *testing.T) {
	if !viaLoop([]string{"1.0 a.test, 1.1 Proxy.Test (sekisho)"}, "proxy.test") {
		t.Error("viaLoop missed us")
	}
	if viaLoop([]string{"1.1 proxy.test.example"}, "proxy.test") {
		t.Error("viaLoop matched another name")
	}
	tests := []struct {
		h, user, pass string
		ok            bool
	}{
		{"Basic YWxpY2U6czNjcmV0", "alice", "s3cret", true},
		{"basic  YWxpY2U6czNjcmV0 ", "alice", "s3cret", true},
		{"Basic YWxpY2U6czM6Y3JldA==", "alice", "s3:cret", true},
		{"Bearer YWxpY2U6czNjcmV0", "", "", false},
		{"Basic !!!", "", "", false},
		{"Basic YWxpY2U=", "alice", "", false},
		{"", "", "", false},
	}
	for _, tt := range tests {
		u, p, ok := proxyBasicAuth(tt.h)
		if u != tt.user || p != tt.pass || ok != tt.ok {
			t.Errorf("proxyBasicAuth(%q) = %q, %q, %v", tt.h, u, p, ok)
		}
	}
}

// A CONNECT tunnel between two TCP sockets moves its bytes by splice(2), also though the
// listener's HTTP/1.1 server handed the connection to net/http.
func TestConnectSplices(t *testing.T) {
	origin, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { origin.Close() })
	go func() {
		c, err := origin.Accept()
		if err == nil {
			io.Copy(c, c) // echo
			c.Close()
		}
	}()
	port := origin.Addr().(*net.TCPAddr).Port
	h := newHarness(t, harnessConfig{opts: func(o *Options) { o.Rules.ConnectPorts = []int{port} }})
	c, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n", port, port)
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("CONNECT: %v %v", res, err)
	}
	io.WriteString(c, "ping")
	buf := make([]byte, 4)
	if _, err := io.ReadFull(br, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo %q, %v", buf, err)
	}
	h.proxy.mu.Lock()
	var kernel []bool
	for tn := range h.proxy.tunnels {
		kernel = append(kernel, tn.Kernel())
	}
	h.proxy.mu.Unlock()
	if len(kernel) != 1 || !kernel[0] {
		t.Errorf("tunnels in kernel mode: %v, want [true]", kernel)
	}
}
