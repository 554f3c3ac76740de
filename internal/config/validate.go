package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// Validate checks the rules that values must follow, alone and together,
// and returns every problem found as an errors.Join of *Error, or nil. It
// does not change c and touches nothing outside it. Error lines are 0 here;
// Parse fills them in.
//
// Validate accepts the derived defaults either filled in or empty, so a
// Config from Parse validates again.
func (c *Config) Validate() error {
	errs := c.validate()
	if len(errs) == 0 {
		return nil
	}
	return joinErrors(errs)
}

// validator collects problems.
type validator struct {
	file string
	errs []*Error
	// listen maps each listening address with a fixed port to the key that
	// first used it.
	listen map[string]string
}

func (v *validator) add(key, format string, args ...any) {
	v.errs = append(v.errs, &Error{File: v.file, Key: key, Msg: fmt.Sprintf(format, args...)})
}

func (c *Config) validate() []*Error {
	v := &validator{file: c.File, listen: map[string]string{}}
	switch {
	case c.Hostname == "":
		v.add("hostname", `required (the name this server answers as, e.g. "mx.example.jp")`)
	case !isDomain(c.Hostname):
		v.add("hostname", "invalid host name %q", c.Hostname)
	}
	if c.DataDir == "" {
		v.add("data_dir", "required (a directory for the database and the certificate)")
	}
	c.Store.validate(v)
	c.TLS.validate(v)
	c.DNS.validate(v)
	c.Log.validate(v)
	c.SMTP.validate(v)
	c.Antispam.validate(v)
	c.Web.validate(v, c.SMTP.LocalDomains)
	c.HTTPProxy.validate(v)
	c.Socks.validate(v)
	return v.errs
}

func (s *Store) validate(v *validator) {
	v.oneOf("store.driver", s.Driver, "sqlite", "postgres")
	if s.Driver == "postgres" && s.DSN == "" {
		v.add("store.dsn", `required with driver = "postgres" (e.g. "postgres://sekisho@db.example.jp/sekisho?sslmode=verify-full")`)
	}
}

func (t *TLS) validate(v *validator) {
	if t.CertFile != "" && t.KeyFile == "" {
		v.add("tls.key_file", "required when tls.cert_file is set")
	}
	if t.KeyFile != "" && t.CertFile == "" {
		v.add("tls.cert_file", "required when tls.key_file is set")
	}
}

func (d *DNS) validate(v *validator) {
	if d.Resolver != "" {
		v.dialAddress("dns.resolver", d.Resolver)
	}
	v.positive("dns.timeout", d.Timeout)
}

func (l *Log) validate(v *validator) {
	v.oneOf("log.level", l.Level, "debug", "info", "warn", "error")
	v.oneOf("log.format", l.Format, "text", "json")
}

func (s *SMTP) validate(v *validator) {
	if len(s.Listeners) > 0 && len(s.LocalDomains) == 0 {
		v.add("smtp.local_domains", `required when an SMTP listener is configured (the domains we receive mail for, e.g. ["example.jp"])`)
	}
	seen := map[string]int{}
	for i, d := range s.LocalDomains {
		key := indexKey("smtp.local_domains", i)
		if !isDomain(d) {
			v.add(key, "invalid domain %q", d)
			continue
		}
		if j, ok := seen[strings.ToLower(d)]; ok {
			v.add(key, "%q is listed twice (also smtp.local_domains[%d])", d, j)
			continue
		}
		seen[strings.ToLower(d)] = i
	}
	v.networks("smtp.relay_networks", s.RelayNetworks)
	if s.MaxMessageBytes <= 0 {
		v.add("smtp.max_message_bytes", "must be positive, got %d", s.MaxMessageBytes)
	}
	if s.MaxRecipients <= 0 {
		v.add("smtp.max_recipients", "must be positive, got %d", s.MaxRecipients)
	}
	for i, l := range s.Listeners {
		key := indexKey("smtp.listener", i)
		v.listenAddress(key+".address", l.Address)
		v.oneOf(key+".role", l.Role, "mx", "submission")
		v.oneOf(key+".tls", l.TLS, "none", "starttls", "implicit")
		if l.Role == "submission" && l.TLS == "none" {
			v.add(key+".tls", `"none" is not allowed on a submission listener (AUTH is offered only after TLS; want starttls or implicit)`)
		}
		if l.RequireTLS && l.TLS == "none" {
			v.add(key+".require_tls", `cannot be met with tls = "none" (want tls = "starttls")`)
		}
	}

	u := &s.Upstream
	if len(s.Listeners) > 0 && len(u.Servers) == 0 {
		v.add("smtp.upstream.servers", `required when an SMTP listener is configured (the real mail servers, e.g. ["192.0.2.10:25"])`)
	}
	for i, srv := range u.Servers {
		v.dialAddress(indexKey("smtp.upstream.servers", i), srv)
	}
	v.oneOf("smtp.upstream.balance", u.Balance, "round_robin", "least_conn", "ordered")
	v.oneOf("smtp.upstream.tls", u.TLS, "none", "opportunistic", "required", "verify")
	v.positive("smtp.upstream.connect_timeout", u.ConnectTimeout)
}

func (a *Antispam) validate(v *validator) {
	if a.BaseURL != "" && !validBaseURL(a.BaseURL) {
		v.add("antispam.base_url", `invalid URL %q (want "https://host" or "https://host:port"; the confirm pages are served at /c/ on it)`, a.BaseURL)
	}
	if a.ChallengeFrom != "" {
		if _, _, ok := cutAddress(a.ChallengeFrom); !ok {
			v.add("antispam.challenge_from", `invalid address %q (want local@domain, e.g. "postmaster@example.jp")`, a.ChallengeFrom)
		}
	}
	if a.ChallengeRelay != "" {
		v.dialAddress("antispam.challenge_relay", a.ChallengeRelay)
	}
	v.oneOf("antispam.challenge_language", a.ChallengeLanguage, "auto", "ja", "en")
	v.positive("antispam.challenge_interval", a.ChallengeInterval)
	v.positive("antispam.hold_for", a.HoldFor)
	v.oneOf("antispam.confirm_scope", a.ConfirmScope, "sender", "recipient")
	v.oneOf("antispam.sender_auth", a.SenderAuth, "gate", "off")
	v.positiveInt("antispam.challenge_per_ip_hour", a.ChallengePerIPHour)
	v.positiveInt("antispam.challenge_per_hour", a.ChallengePerHour)
	if a.ConfirmMinSeconds < 0 {
		v.add("antispam.confirm_min_seconds", "must not be negative, got %d", a.ConfirmMinSeconds)
	}
	v.positiveInt("antispam.max_held_per_sender", a.MaxHeldPerSender)
	v.oneOf("antispam.digest", a.Digest, "daily", "off")
	if !validClock(a.DigestTime) {
		v.add("antispam.digest_time", `invalid time %q (want HH:MM, 24-hour, e.g. "08:00")`, a.DigestTime)
	}
	v.oneOf("antispam.null_sender", a.NullSender, "verify", "pass", "hold")
	v.oneOf("antispam.decoy_action", a.DecoyAction, "reject", "discard")
	v.positive("antispam.black_ttl", a.BlackTTL)
	v.oneOf("antispam.black_action", a.BlackAction, "reject", "tempfail")
}

func (w *Web) validate(v *validator, localDomains []string) {
	for i, a := range w.Listen {
		v.listenAddress(indexKey("web.listen", i), a)
	}
	for i, a := range w.ListenPlain {
		v.listenAddress(indexKey("web.listen_plain", i), a)
	}
	if w.AppHost != "" && !isDomain(w.AppHost) {
		v.add("web.app_host", "invalid host name %q", w.AppHost)
	}
	v.networks("web.admin_networks", w.AdminNetworks)
	if w.DecoySeed != "" {
		switch {
		case !isDomain(w.DecoySeed):
			v.add("web.decoy_seed", "invalid domain %q", w.DecoySeed)
		case !containsFold(localDomains, w.DecoySeed):
			v.add("web.decoy_seed", "%q is not in smtp.local_domains (mail to the planted addresses must reach this server)", w.DecoySeed)
		}
	}
	v.positive("web.decoy_seed_ttl", w.DecoySeedTTL)

	seen := map[string]int{}
	for i, r := range w.Routes {
		key := indexKey("web.route", i)
		switch {
		case r.Host == "":
			v.add(key+".host", `required (the Host this route serves, e.g. "www.example.jp")`)
		case !isDomain(r.Host):
			v.add(key+".host", "invalid host name %q", r.Host)
		}
		if !strings.HasPrefix(r.Path, "/") {
			v.add(key+".path", `must start with "/", got %q`, r.Path)
		} else if j, ok := seen[strings.ToLower(r.Host)+" "+r.Path]; ok {
			v.add(key+".path", "duplicate route for host %q and path %q (also web.route[%d])", r.Host, r.Path, j)
		} else {
			seen[strings.ToLower(r.Host)+" "+r.Path] = i
		}
		switch {
		case len(r.Upstreams) > 0 && r.Root != "":
			v.add(key, "set either upstreams or root, not both")
		case len(r.Upstreams) == 0 && r.Root == "":
			v.add(key, `want upstreams (a reverse proxy) or root (static files), e.g. upstreams = ["127.0.0.1:8080"]`)
		}
		for j, u := range r.Upstreams {
			v.dialAddress(indexKey(key+".upstreams", j), u)
		}
		v.oneOf(key+".balance", r.Balance, "round_robin", "least_conn")
		if r.HealthPath != "" && !strings.HasPrefix(r.HealthPath, "/") {
			v.add(key+".health_path", `must start with "/", got %q`, r.HealthPath)
		}
		v.positive(key+".health_interval", r.HealthInterval)
		v.oneOf(key+".plain", r.Plain, "redirect", "serve")
	}
}

func (p *HTTPProxy) validate(v *validator) {
	for i, a := range p.Listen {
		v.listenAddress(indexKey("http_proxy.listen", i), a)
	}
	v.networks("http_proxy.allow_networks", p.AllowNetworks)
	v.ports("http_proxy.connect_ports", p.ConnectPorts)
	for i, h := range p.DenyHosts {
		if strings.TrimSpace(h) == "" {
			v.add(indexKey("http_proxy.deny_hosts", i), "empty pattern")
		}
	}
	v.networks("http_proxy.deny_networks", p.DenyNetworks)
}

func (s *Socks) validate(v *validator) {
	for i, a := range s.Listen {
		v.listenAddress(indexKey("socks.listen", i), a)
	}
	v.networks("socks.allow_networks", s.AllowNetworks)
	v.ports("socks.connect_ports", s.ConnectPorts)
	v.networks("socks.deny_networks", s.DenyNetworks)
}

// oneOf checks an enumeration.
func (v *validator) oneOf(key, val string, allowed ...string) {
	for _, a := range allowed {
		if val == a {
			return
		}
	}
	v.add(key, "unknown value %q (want one of: %s)", val, strings.Join(allowed, ", "))
}

func (v *validator) positive(key string, d Duration) {
	if d.Duration <= 0 {
		v.add(key, "must be positive, got %q", d.String())
	}
}

func (v *validator) positiveInt(key string, n int) {
	if n <= 0 {
		v.add(key, "must be positive, got %d", n)
	}
}

func (v *validator) networks(key string, ps []Prefix) {
	for i, p := range ps {
		if !p.IsValid() {
			v.add(indexKey(key, i), `invalid network (want a CIDR such as "10.0.0.0/8" or an IP address)`)
		}
	}
}

func (v *validator) ports(key string, ports []int) {
	for i, p := range ports {
		if p < 1 || p > 65535 {
			v.add(indexKey(key, i), "%d is not a port (want 1-65535)", p)
		}
	}
}

// listenAddress checks "host:port" to listen on: the host may be empty (all
// addresses) and port 0 picks a free port.
func (v *validator) listenAddress(key, addr string) {
	if addr == "" {
		v.add(key, `required (want host:port, e.g. "127.0.0.1:25" or "[::1]:25")`)
		return
	}
	port, ok := v.hostPort(key, addr, true)
	if !ok || port == 0 {
		return
	}
	if other, ok := v.listen[addr]; ok {
		v.add(key, "%q is already used by %s", addr, other)
		return
	}
	v.listen[addr] = key
}

// dialAddress checks "host:port" to connect to.
func (v *validator) dialAddress(key, addr string) {
	v.hostPort(key, addr, false)
}

// hostPort checks addr and returns its port.
func (v *validator) hostPort(key, addr string, listen bool) (int, bool) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		v.add(key, `invalid address %q (want host:port; IPv6 in brackets, e.g. "[2001:db8::1]:25")`, addr)
		return 0, false
	}
	low := 1
	if listen {
		low = 0
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < low || n > 65535 || port[0] == '+' || port[0] == '-' {
		v.add(key, "invalid port in %q (want %d-65535)", addr, low)
		return 0, false
	}
	switch {
	case host == "" && listen:
	case host == "":
		v.add(key, "missing host in %q", addr)
		return 0, false
	case !validHost(host):
		v.add(key, "invalid host in %q", addr)
		return 0, false
	}
	return n, true
}

// validHost accepts an IP address or a host name; underscores are allowed
// for names of internal services.
func validHost(h string) bool {
	if _, err := netip.ParseAddr(h); err == nil {
		return true
	}
	return isDomain(strings.ReplaceAll(h, "_", "x"))
}

// isDomain reports whether s is a DNS name in ASCII (letters, digits and
// hyphens in labels of 1 to 63 bytes). Internationalised names must be
// written as A-labels ("xn--...").
func isDomain(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// cutAddress splits a plain mail address at its last "@"; ok is false when
// it is not of the form local@domain.
func cutAddress(s string) (local, domain string, ok bool) {
	i := strings.LastIndexByte(s, '@')
	if i <= 0 {
		return "", "", false
	}
	local, domain = s[:i], s[i+1:]
	if !isDomain(domain) {
		return "", "", false
	}
	for _, c := range []byte(local) {
		// atext and "." of RFC 5322 dot-atom; quoted local parts are not
		// worth supporting in a From we choose.
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>[]:;@\,"`, c) >= 0 {
			return "", "", false
		}
	}
	return local, domain, true
}

// validBaseURL accepts http(s)://host[:port] with nothing after it.
func validBaseURL(s string) bool {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" && u.Scheme != "http" {
		return false
	}
	if u.Host == "" || u.User != nil || u.Opaque != "" || u.Path != "" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return false
	}
	host := u.Hostname()
	if _, err := netip.ParseAddr(host); err != nil && !isDomain(host) {
		return false
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return false
		}
	}
	return true
}

// validClock accepts HH:MM, 24-hour.
func validClock(s string) bool {
	if len(s) != 5 || s[2] != ':' {
		return false
	}
	h, err1 := strconv.Atoi(s[:2])
	m, err2 := strconv.Atoi(s[3:])
	return err1 == nil && err2 == nil && s[0] != '+' && s[0] != '-' && s[3] != '+' && s[3] != '-' &&
		h >= 0 && h < 24 && m >= 0 && m < 60
}

func containsFold(list []string, s string) bool {
	for _, e := range list {
		if strings.EqualFold(e, s) {
			return true
		}
	}
	return false
}
