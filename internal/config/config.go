// Package config reads sekisho's TOML configuration file into a typed
// Config, fills in defaults and checks it.
//
// The file format is the contract in SPEC §8: key names are fixed, unknown
// keys are errors, and every problem is reported as
//
//	FILE:LINE: key.path: problem (hint)
//
// Parse returns all problems at once, not only the first. Validate holds the
// rules that span several fields; it is pure, so a reload can check a new file
// before anything is touched.
package config

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Config is the whole configuration file. Field docs are the user docs.
type Config struct {
	// Hostname is our name: SMTP greeting, Received headers, and the default
	// of web.app_host, antispam.base_url and store.node_id.
	Hostname string `toml:"hostname"`
	// DataDir holds the SQLite database and the generated certificate.
	DataDir string `toml:"data_dir"`

	Store     Store     `toml:"store"`
	TLS       TLS       `toml:"tls"`
	DNS       DNS       `toml:"dns"`
	Log       Log       `toml:"log"`
	SMTP      SMTP      `toml:"smtp"`
	Antispam  Antispam  `toml:"antispam"`
	Web       Web       `toml:"web"`
	HTTPProxy HTTPProxy `toml:"http_proxy"`
	Socks     Socks     `toml:"socks"`

	// File is the path the configuration was loaded from (or the name given
	// to Parse); it prefixes error messages.
	File string `toml:"-"`
}

// Store selects where the lists, users and held mail live.
type Store struct {
	// Driver is "sqlite" (embedded, one node) or "postgres" (several nodes).
	Driver string `toml:"driver"`
	// DSN is the SQLite file (default data_dir/sekisho.db) or the PostgreSQL
	// URL. It may hold a password: log it only through Config.Redacted.
	DSN string `toml:"dsn"`
	// NodeID names this node in the cluster (default: hostname).
	NodeID string `toml:"node_id"`
}

// TLS is the server certificate for SMTP STARTTLS and HTTPS.
type TLS struct {
	// CertFile and KeyFile are PEM files; both empty means a self-signed
	// certificate for hostname, kept in data_dir.
	CertFile string `toml:"cert_file"`
	KeyFile  string `toml:"key_file"`
}

// DNS configures the lookups for SPF and DKIM.
type DNS struct {
	// Resolver is "host:port" of a DNS server; empty uses the system's.
	Resolver string `toml:"resolver"`
	// Timeout bounds one lookup.
	Timeout Duration `toml:"timeout"`
}

// Log configures the process log.
type Log struct {
	Level  string `toml:"level"`  // debug|info|warn|error
	Format string `toml:"format"` // text|json
}

// SMTP is the SMTP proxy in front of the real mail servers.
type SMTP struct {
	// LocalDomains are the domains we accept mail for (lower case).
	LocalDomains []string `toml:"local_domains"`
	// RelayNetworks may send to any domain (outbound mail).
	RelayNetworks []Prefix `toml:"relay_networks"`
	// MaxMessageBytes is the largest message accepted (SIZE).
	MaxMessageBytes int64 `toml:"max_message_bytes"`
	// MaxRecipients is the most RCPT commands in one transaction.
	MaxRecipients int `toml:"max_recipients"`
	// Listeners are the [[smtp.listener]] tables; none means SMTP is off.
	Listeners []Listener `toml:"listener"`
	// Upstream is where mail that passes goes.
	Upstream Upstream `toml:"upstream"`
}

// Listener is one SMTP listening socket.
type Listener struct {
	// Address is "host:port"; IPv6 in brackets ("[::]:25").
	Address string `toml:"address"`
	// Role is "mx" (mail for local_domains) or "submission" (AUTH required,
	// relays anywhere). Default "mx".
	Role string `toml:"role"`
	// TLS is "none", "starttls" (default) or "implicit".
	TLS string `toml:"tls"`
	// RequireTLS refuses MAIL before STARTTLS.
	RequireTLS bool `toml:"require_tls"`
}

// Upstream is the pool of real mail servers.
type Upstream struct {
	// Servers are "host:port" of the real mail servers, IPv4 or IPv6.
	Servers []string `toml:"servers"`
	// Balance is round_robin (default), least_conn or ordered.
	Balance string `toml:"balance"`
	// TLS is STARTTLS towards upstream: none, opportunistic (default),
	// required or verify (certificate checked).
	TLS string `toml:"tls"`
	// XForward passes the original client to upstreams that offer XFORWARD.
	XForward bool `toml:"xforward"`
	// ConnectTimeout bounds one connection attempt.
	ConnectTimeout Duration `toml:"connect_timeout"`
}

// Antispam configures holding, the URL-click challenge and the decoys.
type Antispam struct {
	// Challenge mails unknown authenticated senders a confirmation URL.
	Challenge bool `toml:"challenge"`
	// BaseURL prefixes the confirmation URL (default https://{hostname}).
	BaseURL string `toml:"base_url"`
	// ChallengeFrom is the From of challenge mail (default
	// postmaster@{first local domain}).
	ChallengeFrom string `toml:"challenge_from"`
	// ChallengeRelay is "host:port" for challenge mail (default: upstream).
	ChallengeRelay string `toml:"challenge_relay"`
	// ChallengeLanguage is auto, ja or en.
	ChallengeLanguage string `toml:"challenge_language"`
	// ChallengeInterval is the least time between two challenges to one
	// sender.
	ChallengeInterval Duration `toml:"challenge_interval"`
	// HoldFor is how long held mail and confirmation tokens live.
	HoldFor Duration `toml:"hold_for"`
	// ConfirmScope is what a confirmation admits: the sender, or the
	// (sender, recipient) pair.
	ConfirmScope string `toml:"confirm_scope"`
	// SenderAuth is gate (challenge only SPF- or DKIM-authenticated senders)
	// or off.
	SenderAuth string `toml:"sender_auth"`
	// ChallengePerIPHour caps the challenges one client IP causes per hour.
	ChallengePerIPHour int `toml:"challenge_per_ip_hour"`
	// ChallengePerHour caps challenges per hour in the whole cluster.
	ChallengePerHour int `toml:"challenge_per_hour"`
	// ConfirmMinSeconds is the least time between the GET of a confirm page
	// and its POST.
	ConfirmMinSeconds int `toml:"confirm_min_seconds"`
	// MaxHeldPerSender caps the messages held for one sender.
	MaxHeldPerSender int `toml:"max_held_per_sender"`
	// Digest is daily or off.
	Digest string `toml:"digest"`
	// DigestTime is the local time (HH:MM) of the digest mail.
	DigestTime string `toml:"digest_time"`
	// NullSender is what happens to bounces: verify, pass or hold.
	NullSender string `toml:"null_sender"`
	// DecoyAction answers RCPT to a decoy: reject or discard.
	DecoyAction string `toml:"decoy_action"`
	// BlackTTL is how long an automatic BLACK entry lives.
	BlackTTL Duration `toml:"black_ttl"`
	// BlackAction greets a blacklisted client: reject (554) or tempfail (421).
	BlackAction string `toml:"black_action"`
	// BlacklistProbes puts open-proxy and mail-relay probers in BLACK.
	BlacklistProbes bool `toml:"blacklist_probes"`
}

// Web is the HTTPS server: built-in app, static sites, reverse proxy.
type Web struct {
	// Listen are the HTTPS "host:port" addresses; none means web is off.
	Listen []string `toml:"listen"`
	// ListenPlain are plain HTTP addresses (redirect, or serve per route).
	ListenPlain []string `toml:"listen_plain"`
	// AppHost is the Host of the built-in app (default: hostname).
	AppHost string `toml:"app_host"`
	// AdminNetworks may reach the admin pages and /metrics.
	AdminNetworks []Prefix `toml:"admin_networks"`
	// DecoySeed is a local domain for harvest-trap addresses; empty is off.
	DecoySeed string `toml:"decoy_seed"`
	// DecoySeedTTL is how long a planted address stays in DECOY.
	DecoySeedTTL Duration `toml:"decoy_seed_ttl"`
	// Routes are the [[web.route]] tables.
	Routes []Route `toml:"route"`
}

// Route sends requests for Host and a path prefix to upstreams or to a
// directory.
type Route struct {
	Host string `toml:"host"`
	// Path is a prefix (default "/").
	Path string `toml:"path"`
	// Upstreams are "host:port" backends; exclusive with Root.
	Upstreams []string `toml:"upstreams"`
	// Root is a directory of static files; exclusive with Upstreams.
	Root string `toml:"root"`
	// Balance is round_robin (default) or least_conn.
	Balance string `toml:"balance"`
	// HealthPath is polled on every upstream; empty means no active checks.
	HealthPath string `toml:"health_path"`
	// HealthInterval is the time between two health checks (default 5s).
	HealthInterval Duration `toml:"health_interval"`
	// Plain is what the listen_plain listeners do: redirect (default) or
	// serve.
	Plain string `toml:"plain"`
}

// HTTPProxy is the forward proxy for internal clients.
type HTTPProxy struct {
	// Listen are "host:port" addresses; none means the proxy is off.
	Listen []string `toml:"listen"`
	// AllowNetworks are the clients served; empty refuses everyone.
	AllowNetworks []Prefix `toml:"allow_networks"`
	// Auth requires a user's password (Proxy-Authorization).
	Auth bool `toml:"auth"`
	// ConnectPorts are the ports CONNECT may reach.
	ConnectPorts []int `toml:"connect_ports"`
	// AllowMailPorts lifts the ban on ports 25, 465 and 587.
	AllowMailPorts bool `toml:"allow_mail_ports"`
	// DenyHosts are destination host patterns refused.
	DenyHosts []string `toml:"deny_hosts"`
	// DenyNetworks are destination addresses refused, after resolution.
	DenyNetworks []Prefix `toml:"deny_networks"`
}

// Socks is the SOCKS5 proxy; the same rules as HTTPProxy.
type Socks struct {
	Listen        []string `toml:"listen"`
	AllowNetworks []Prefix `toml:"allow_networks"`
	Auth          bool     `toml:"auth"`
	ConnectPorts  []int    `toml:"connect_ports"`
	DenyNetworks  []Prefix `toml:"deny_networks"`
}

// Default returns a new Config holding every default of SPEC §8. Lists of
// listeners and servers are empty: a module without listeners is off.
// Hostname is empty, so Default alone does not validate.
func Default() *Config {
	loopback := func() []Prefix {
		return []Prefix{mustPrefix("127.0.0.0/8"), mustPrefix("::1/128")}
	}
	deny := func() []Prefix {
		return []Prefix{mustPrefix("127.0.0.0/8"), mustPrefix("::1/128"),
			mustPrefix("169.254.0.0/16"), mustPrefix("fe80::/10")}
	}
	return &Config{
		DataDir: "/var/lib/sekisho",
		Store:   Store{Driver: "sqlite"},
		DNS:     DNS{Timeout: Duration{5 * time.Second}},
		Log:     Log{Level: "info", Format: "text"},
		SMTP: SMTP{
			RelayNetworks:   loopback(),
			MaxMessageBytes: 26214400,
			MaxRecipients:   100,
			Upstream: Upstream{
				Balance:        "round_robin",
				TLS:            "opportunistic",
				XForward:       true,
				ConnectTimeout: Duration{10 * time.Second},
			},
		},
		Antispam: Antispam{
			Challenge:          true,
			ChallengeLanguage:  "auto",
			ChallengeInterval:  Duration{24 * time.Hour},
			HoldFor:            Duration{336 * time.Hour},
			ConfirmScope:       "sender",
			SenderAuth:         "gate",
			ChallengePerIPHour: 20,
			ChallengePerHour:   1000,
			ConfirmMinSeconds:  2,
			MaxHeldPerSender:   100,
			Digest:             "daily",
			DigestTime:         "08:00",
			NullSender:         "verify",
			DecoyAction:        "reject",
			BlackTTL:           Duration{24 * time.Hour},
			BlackAction:        "reject",
			BlacklistProbes:    true,
		},
		Web: Web{
			AdminNetworks: loopback(),
			DecoySeedTTL:  Duration{2160 * time.Hour},
		},
		HTTPProxy: HTTPProxy{
			AllowNetworks: loopback(),
			ConnectPorts:  []int{443},
			DenyNetworks:  deny(),
		},
		Socks: Socks{
			AllowNetworks: loopback(),
			ConnectPorts:  []int{443},
			DenyNetworks:  deny(),
		},
	}
}

// defaultListener is what an [[smtp.listener]] table starts from.
func defaultListener() Listener {
	return Listener{Role: "mx", TLS: "starttls"}
}

// defaultRoute is what a [[web.route]] table starts from.
func defaultRoute() Route {
	return Route{Path: "/", Balance: "round_robin", HealthInterval: Duration{5 * time.Second}, Plain: "redirect"}
}

// Load reads the file at path and parses it (see Parse).
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	return Parse(path, data)
}

// Parse decodes data, named name in messages, over the defaults, checks it
// and fills in the defaults derived from other keys (node_id, app_host,
// base_url, challenge_from, the SQLite dsn).
//
// On failure the error is an errors.Join of *Error values, one per problem,
// ordered by line: syntax errors, wrong types and values, unknown keys, and
// everything Validate finds.
func Parse(name string, data []byte) (*Config, error) {
	raw, err := parseTOML(name, data)
	if err != nil {
		return nil, err
	}
	lines := keyLines(data)
	c := Default()
	c.File = name
	d := &decoder{file: name, lines: lines}
	d.config(raw, c)
	c.normalize()

	errs := d.errs
	for _, e := range c.validate() {
		if d.failed(e.Key) {
			continue // already reported as a bad value; say it once
		}
		e.Line = lines.find(e.Key)
		errs = append(errs, e)
	}
	if len(errs) > 0 {
		return nil, joinErrors(errs)
	}
	c.derive()
	return c, nil
}

// normalize puts names into their canonical form before Validate.
func (c *Config) normalize() {
	c.Hostname = strings.ToLower(c.Hostname)
	for i, d := range c.SMTP.LocalDomains {
		c.SMTP.LocalDomains[i] = strings.ToLower(d)
	}
	if local, domain, ok := cutAddress(c.Antispam.ChallengeFrom); ok {
		c.Antispam.ChallengeFrom = local + "@" + strings.ToLower(domain)
	}
	c.Antispam.BaseURL = strings.TrimRight(c.Antispam.BaseURL, "/")
	c.Web.AppHost = strings.ToLower(c.Web.AppHost)
	c.Web.DecoySeed = strings.ToLower(c.Web.DecoySeed)
	for i := range c.Web.Routes {
		c.Web.Routes[i].Host = strings.ToLower(c.Web.Routes[i].Host)
	}
	for i, h := range c.HTTPProxy.DenyHosts {
		c.HTTPProxy.DenyHosts[i] = strings.ToLower(h)
	}
}

// derive fills the defaults that depend on other keys. It runs after
// Validate, on a valid configuration, and keeps it valid.
func (c *Config) derive() {
	if c.Store.NodeID == "" {
		c.Store.NodeID = c.Hostname
	}
	if c.Store.DSN == "" && c.Store.Driver == "sqlite" {
		c.Store.DSN = filepath.Join(c.DataDir, "sekisho.db")
	}
	if c.Web.AppHost == "" {
		c.Web.AppHost = c.Hostname
	}
	if c.Antispam.BaseURL == "" {
		c.Antispam.BaseURL = "https://" + c.Hostname
	}
	if c.Antispam.ChallengeFrom == "" && len(c.SMTP.LocalDomains) > 0 {
		c.Antispam.ChallengeFrom = "postmaster@" + c.SMTP.LocalDomains[0]
	}
}

// Error is one problem in a configuration file.
type Error struct {
	File string // file name as given to Parse or Load
	Line int    // 1-based; 0 when the problem has no place in the file
	Key  string // key path such as "smtp.listener[1].role"; empty for syntax errors
	Msg  string // the problem, with a hint in parentheses where useful
}

// Error formats e as "FILE:LINE: key.path: problem (hint)", leaving out the
// parts that are unknown.
func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case e.File != "" && e.Line > 0:
		b.WriteString(e.File + ":" + strconv.Itoa(e.Line) + ": ")
	case e.File != "":
		b.WriteString(e.File + ": ")
	case e.Line > 0:
		b.WriteString("line " + strconv.Itoa(e.Line) + ": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// joinErrors orders errs by line, those without a line last, and joins them.
func joinErrors(errs []*Error) error {
	slices.SortStableFunc(errs, func(a, b *Error) int {
		if (a.Line == 0) != (b.Line == 0) {
			if a.Line == 0 {
				return 1
			}
			return -1
		}
		return cmp.Compare(a.Line, b.Line)
	})
	list := make([]error, len(errs))
	for i, e := range errs {
		list[i] = e
	}
	return errors.Join(list...)
}
