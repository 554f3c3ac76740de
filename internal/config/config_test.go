package config

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// parseErrorTests are broken configurations with their whole error text,
// one problem a line. FuzzParse starts from them too.
var parseErrorTests = []struct {
	name string
	in   string
	want string
}{
	{
		name: "syntax error",
		in: `hostname = "mx.example.jp"
[smtp
`,
		want: `t.toml:2: syntax error: expected '.' or ']' to end table name, but got '\n' instead`,
	},
	{
		name: "duplicate key",
		in: `hostname = "mx.example.jp"
hostname = "mx2.example.jp"
`,
		want: `t.toml:2: syntax error: Key 'hostname' has already been defined.`,
	},
	{
		name: "unknown top-level key",
		in: `hostname = "mx.example.jp"
hostnme = "x"
`,
		want: `t.toml:2: hostnme: unknown key (did you mean "hostname"?)`,
	},
	{
		name: "unknown key in a table",
		in: `hostname = "mx.example.jp"
[log]
colour = "auto"
`,
		want: `t.toml:3: log.colour: unknown key`,
	},
	{
		name: "top-level key after a table",
		in: `hostname = "mx.example.jp"
[store]
driver = "sqlite"
data_dir = "/srv/sekisho"
`,
		want: `t.toml:4: store.data_dir: unknown key (data_dir is a top-level key: write it before the first [table])`,
	},
	{
		name: "section name inside a table",
		in: `hostname = "mx.example.jp"
[smtp]
tls = "verify"
`,
		want: `t.toml:3: smtp.tls: unknown key`,
	},
	{
		name: "unknown table",
		in: `hostname = "mx.example.jp"

[smtpd]
local_domains = ["example.jp"]
`,
		want: `t.toml:3: smtpd: unknown key (did you mean "smtp"?)`,
	},
	{
		name: "unknown key in the second listener",
		in: `hostname = "mx.example.jp"
[smtp]
local_domains = ["example.jp"]
upstream.servers = ["192.0.2.10:25"]
[[smtp.listener]]
address = "127.0.0.1:25"
[[smtp.listener]]
adress = "127.0.0.1:587"
role = "submission"
`,
		want: `t.toml:7: smtp.listener[1].address: required (want host:port, e.g. "127.0.0.1:25" or "[::1]:25")
t.toml:8: smtp.listener[1].adress: unknown key (did you mean "address"?)`,
	},
	{
		name: "unknown quoted and dotted keys",
		in: `hostname = "mx.example.jp"
"log level" = "debug"
smtp.bogus.deep = 1
`,
		want: `t.toml:2: "log level": unknown key
t.toml:3: smtp.bogus: unknown key`,
	},
	{
		name: "key in the wrong case",
		in: `hostname = "mx.example.jp"
[SMTP]
max_recipients = 10
`,
		want: `t.toml:2: SMTP: unknown key (did you mean "smtp"?)`,
	},
	{
		name: "integer for a string",
		in: `hostname = 1
`,
		want: `t.toml:1: hostname: want a string, got an integer`,
	},
	{
		name: "string for an integer",
		in: `hostname = "mx.example.jp"
[smtp]
max_recipients = "100"
`,
		want: `t.toml:3: smtp.max_recipients: want an integer, got a string`,
	},
	{
		name: "string for a boolean",
		in: `hostname = "mx.example.jp"
[antispam]
challenge = "yes"
`,
		want: `t.toml:3: antispam.challenge: want true or false, got a string`,
	},
	{
		name: "table for a value",
		in: `hostname = "mx.example.jp"
[log.level]
x = 1
`,
		want: `t.toml:2: log.level: want a string, got a table`,
	},
	{
		name: "value for a table",
		in: `hostname = "mx.example.jp"
dns = "192.0.2.53:53"
`,
		want: `t.toml:2: dns: want a table, got a string`,
	},
	{
		name: "single table for an array of tables",
		in: `hostname = "mx.example.jp"
[smtp.listener]
address = "127.0.0.1:25"
`,
		want: `t.toml:2: smtp.listener: want an array of tables ([[smtp.listener]]), got a table`,
	},
	{
		name: "bad duration",
		in: `hostname = "mx.example.jp"
[antispam]
hold_for = "14d"
`,
		want: `t.toml:3: antispam.hold_for: invalid duration "14d" (want Go syntax, e.g. "90s", "24h")`,
	},
	{
		name: "integer for a duration",
		in: `hostname = "mx.example.jp"
[dns]
timeout = 5
`,
		want: `t.toml:3: dns.timeout: want a duration such as "10s", got an integer`,
	},
	{
		name: "bad networks in a multi-line array",
		in: `hostname = "mx.example.jp"
[smtp]
relay_networks = [
  "10.0.0.0/8",
  "10.0.0.0/33",  # too long
  "fe80::1%eth0",
  "localhost",
]
`,
		want: `t.toml:5: smtp.relay_networks[1]: invalid network "10.0.0.0/33" (want a CIDR such as "10.0.0.0/8" or an IP address)
t.toml:6: smtp.relay_networks[2]: invalid network "fe80::1%eth0" (want a CIDR such as "10.0.0.0/8" or an IP address)
t.toml:7: smtp.relay_networks[3]: invalid network "localhost" (want a CIDR such as "10.0.0.0/8" or an IP address)`,
	},
	{
		name: "wrong type in a later array of tables element",
		in: `hostname = "mx.example.jp"
[smtp]
local_domains = ["example.jp"]
upstream.servers = ["192.0.2.10:25"]
[[smtp.listener]]
address = "127.0.0.1:25"
[[smtp.listener]]
address = "127.0.0.1:587"
require_tls = "yes"
`,
		want: `t.toml:9: smtp.listener[1].require_tls: want true or false, got a string`,
	},
	{
		name: "inline array of tables",
		in: `hostname = "mx.example.jp"
[smtp]
local_domains = ["example.jp"]
upstream = { servers = ["192.0.2.10:25"], balance = "random" }
listener = [
  { address = "127.0.0.1:25" },
  { address = "127.0.0.1:587", role = "relay" },
]
`,
		want: `t.toml:4: smtp.upstream.balance: unknown value "random" (want one of: round_robin, least_conn, ordered)
t.toml:7: smtp.listener[1].role: unknown value "relay" (want one of: mx, submission)`,
	},
	{
		name: "empty file",
		in:   ``,
		want: `t.toml: hostname: required (the name this server answers as, e.g. "mx.example.jp")`,
	},
	{
		name: "bad hostname and data_dir",
		in: `hostname = "mx_1.example.jp"
data_dir = ""
`,
		want: `t.toml:1: hostname: invalid host name "mx_1.example.jp"
t.toml:2: data_dir: required (a directory for the database and the certificate)`,
	},
	{
		name: "store",
		in: `hostname = "mx.example.jp"
[store]
driver = "mysql"
`,
		want: `t.toml:3: store.driver: unknown value "mysql" (want one of: sqlite, postgres)`,
	},
	{
		name: "postgres without dsn",
		in: `hostname = "mx.example.jp"
[store]
driver = "postgres"
`,
		want: `t.toml:2: store.dsn: required with driver = "postgres" (e.g. "postgres://sekisho@db.example.jp/sekisho?sslmode=verify-full")`,
	},
	{
		name: "cert without key",
		in: `hostname = "mx.example.jp"
[tls]
cert_file = "/etc/ssl/mx.pem"
`,
		want: `t.toml:2: tls.key_file: required when tls.cert_file is set`,
	},
	{
		name: "dns",
		in: `hostname = "mx.example.jp"
[dns]
resolver = "192.0.2.53"
timeout = "0s"
`,
		want: `t.toml:3: dns.resolver: invalid address "192.0.2.53" (want host:port; IPv6 in brackets, e.g. "[2001:db8::1]:25")
t.toml:4: dns.timeout: must be positive, got "0s"`,
	},
	{
		name: "log",
		in: `hostname = "mx.example.jp"
[log]
level = "verbose"
format = "xml"
`,
		want: `t.toml:3: log.level: unknown value "verbose" (want one of: debug, info, warn, error)
t.toml:4: log.format: unknown value "xml" (want one of: text, json)`,
	},
	{
		name: "listener without domains and upstreams",
		in: `hostname = "mx.example.jp"
[[smtp.listener]]
address = "127.0.0.1:25"
`,
		want: `t.toml:2: smtp.local_domains: required when an SMTP listener is configured (the domains we receive mail for, e.g. ["example.jp"])
t.toml:2: smtp.upstream.servers: required when an SMTP listener is configured (the real mail servers, e.g. ["192.0.2.10:25"])`,
	},
	{
		name: "listener values",
		in: `hostname = "mx.example.jp"
[smtp]
local_domains = ["example.jp"]
upstream.servers = ["192.0.2.10:25"]
[[smtp.listener]]
address = "::1:25"
role = "relay"
tls = "ssl"
[[smtp.listener]]
address = "127.0.0.1:70000"
[[smtp.listener]]
address = "127.0.0.1:587"
role = "submission"
tls = "none"
require_tls = true
`,
		want: `t.toml:6: smtp.listener[0].address: invalid address "::1:25" (want host:port; IPv6 in brackets, e.g. "[2001:db8::1]:25")
t.toml:7: smtp.listener[0].role: unknown value "relay" (want one of: mx, submission)
t.toml:8: smtp.listener[0].tls: unknown value "ssl" (want one of: none, starttls, implicit)
t.toml:10: smtp.listener[1].address: invalid port in "127.0.0.1:70000" (want 0-65535)
t.toml:14: smtp.listener[2].tls: "none" is not allowed on a submission listener (AUTH is offered only after TLS; want starttls or implicit)
t.toml:15: smtp.listener[2].require_tls: cannot be met with tls = "none" (want tls = "starttls")`,
	},
	{
		name: "upstream values",
		in: `hostname = "mx.example.jp"
[smtp]
local_domains = ["example.jp"]
max_message_bytes = 0
max_recipients = -1
[[smtp.listener]]
address = "127.0.0.1:25"
[smtp.upstream]
servers = ["192.0.2.10:0", ":25", "mail server:25", "[2001:db8::10]:25"]
balance = "random"
tls = "always"
connect_timeout = "-1s"
`,
		want: `t.toml:4: smtp.max_message_bytes: must be positive, got 0
t.toml:5: smtp.max_recipients: must be positive, got -1
t.toml:9: smtp.upstream.servers[0]: invalid port in "192.0.2.10:0" (want 1-65535)
t.toml:9: smtp.upstream.servers[1]: missing host in ":25"
t.toml:9: smtp.upstream.servers[2]: invalid host in "mail server:25"
t.toml:10: smtp.upstream.balance: unknown value "random" (want one of: round_robin, least_conn, ordered)
t.toml:11: smtp.upstream.tls: unknown value "always" (want one of: none, opportunistic, required, verify)
t.toml:12: smtp.upstream.connect_timeout: must be positive, got "-1s"`,
	},
	{
		name: "local domains",
		in: `hostname = "mx.example.jp"
[smtp]
local_domains = ["example.jp", "Example.JP", "bad_domain.jp", "xn--r8jz45g.jp"]
`,
		want: `t.toml:3: smtp.local_domains[1]: "example.jp" is listed twice (also smtp.local_domains[0])
t.toml:3: smtp.local_domains[2]: invalid domain "bad_domain.jp"`,
	},
	{
		name: "antispam values",
		in: `hostname = "mx.example.jp"
[antispam]
base_url = "https://mx.example.jp/sekisho"
challenge_from = "postmaster"
challenge_relay = "relay.example.jp"
challenge_language = "fr"
challenge_interval = "0s"
confirm_scope = "domain"
sender_auth = "spf"
challenge_per_ip_hour = 0
confirm_min_seconds = -1
digest = "weekly"
digest_time = "8:00"
null_sender = "drop"
decoy_action = "tempfail"
black_action = "drop"
`,
		want: `t.toml:3: antispam.base_url: invalid URL "https://mx.example.jp/sekisho" (want "https://host" or "https://host:port"; the confirm pages are served at /c/ on it)
t.toml:4: antispam.challenge_from: invalid address "postmaster" (want local@domain, e.g. "postmaster@example.jp")
t.toml:5: antispam.challenge_relay: invalid address "relay.example.jp" (want host:port; IPv6 in brackets, e.g. "[2001:db8::1]:25")
t.toml:6: antispam.challenge_language: unknown value "fr" (want one of: auto, ja, en)
t.toml:7: antispam.challenge_interval: must be positive, got "0s"
t.toml:8: antispam.confirm_scope: unknown value "domain" (want one of: sender, recipient)
t.toml:9: antispam.sender_auth: unknown value "spf" (want one of: gate, off)
t.toml:10: antispam.challenge_per_ip_hour: must be positive, got 0
t.toml:11: antispam.confirm_min_seconds: must not be negative, got -1
t.toml:12: antispam.digest: unknown value "weekly" (want one of: daily, off)
t.toml:13: antispam.digest_time: invalid time "8:00" (want HH:MM, 24-hour, e.g. "08:00")
t.toml:14: antispam.null_sender: unknown value "drop" (want one of: verify, pass, hold)
t.toml:15: antispam.decoy_action: unknown value "tempfail" (want one of: reject, discard)
t.toml:16: antispam.black_action: unknown value "drop" (want one of: reject, tempfail)`,
	},
	{
		name: "web values",
		in: `hostname = "mx.example.jp"
[smtp]
local_domains = ["example.jp"]
[web]
listen = ["0.0.0.0:443"]
listen_plain = ["0.0.0.0:443"]
app_host = "app host"
admin_networks = ["10.0.0.0/8", "bad"]
decoy_seed = "trap.example.net"
decoy_seed_ttl = "0s"
`,
		want: `t.toml:6: web.listen_plain[0]: "0.0.0.0:443" is already used by web.listen[0]
t.toml:7: web.app_host: invalid host name "app host"
t.toml:8: web.admin_networks[1]: invalid network "bad" (want a CIDR such as "10.0.0.0/8" or an IP address)
t.toml:9: web.decoy_seed: "trap.example.net" is not in smtp.local_domains (mail to the planted addresses must reach this server)
t.toml:10: web.decoy_seed_ttl: must be positive, got "0s"`,
	},
	{
		name: "routes",
		in: `hostname = "mx.example.jp"
[[web.route]]
host = "www.example.jp"
[[web.route]]
host = "www.example.jp"
upstreams = ["127.0.0.1:8081"]
root = "/srv/www"
[[web.route]]
host = "WWW.example.jp"
path = "/"
upstreams = ["127.0.0.1"]
balance = "ordered"
health_path = "healthz"
health_interval = "0s"
plain = "allow"
[[web.route]]
path = "api"
root = "/srv/api"
`,
		want: `t.toml:2: web.route[0]: want upstreams (a reverse proxy) or root (static files), e.g. upstreams = ["127.0.0.1:8080"]
t.toml:4: web.route[1].path: duplicate route for host "www.example.jp" and path "/" (also web.route[0])
t.toml:4: web.route[1]: set either upstreams or root, not both
t.toml:10: web.route[2].path: duplicate route for host "www.example.jp" and path "/" (also web.route[0])
t.toml:11: web.route[2].upstreams[0]: invalid address "127.0.0.1" (want host:port; IPv6 in brackets, e.g. "[2001:db8::1]:25")
t.toml:12: web.route[2].balance: unknown value "ordered" (want one of: round_robin, least_conn)
t.toml:13: web.route[2].health_path: must start with "/", got "healthz"
t.toml:14: web.route[2].health_interval: must be positive, got "0s"
t.toml:15: web.route[2].plain: unknown value "allow" (want one of: redirect, serve)
t.toml:16: web.route[3].host: required (the Host this route serves, e.g. "www.example.jp")
t.toml:17: web.route[3].path: must start with "/", got "api"`,
	},
	{
		name: "proxies",
		in: `hostname = "mx.example.jp"
[web]
listen = ["127.0.0.1:3128"]
[http_proxy]
listen = ["127.0.0.1:3128", "127.0.0.1:0", "127.0.0.1:0"]
connect_ports = [443, 0, 70000]
deny_hosts = ["", "*.example.net"]
[socks]
listen = ["[::1]:1080"]
connect_ports = [-1]
allow_networks = ["192.0.2.0/24", 1]
`,
		want: `t.toml:5: http_proxy.listen[0]: "127.0.0.1:3128" is already used by web.listen[0]
t.toml:6: http_proxy.connect_ports[1]: 0 is not a port (want 1-65535)
t.toml:6: http_proxy.connect_ports[2]: 70000 is not a port (want 1-65535)
t.toml:7: http_proxy.deny_hosts[0]: empty pattern
t.toml:10: socks.connect_ports[0]: -1 is not a port (want 1-65535)
t.toml:11: socks.allow_networks[1]: want a network such as "10.0.0.0/8", got an integer`,
	},
}

// TestParseErrors feeds broken configurations and checks every message:
// key path, line and hint.
func TestParseErrors(t *testing.T) {
	for _, tt := range parseErrorTests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("t.toml", []byte(tt.in))
			if err == nil {
				t.Fatalf("Parse succeeded, want error:\n%s\ngot config: %+v", tt.want, c)
			}
			if c != nil {
				t.Errorf("Parse returned a config with an error")
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("Parse error:\n%s\nwant:\n%s", got, tt.want)
			}
			for _, e := range unjoin(err) {
				var ce *Error
				if !errors.As(e, &ce) {
					t.Errorf("error %q is a %T, want *Error", e, e)
				}
			}
		})
	}
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func TestDefault(t *testing.T) {
	c := Default()
	tests := []struct {
		key       string
		got, want any
	}{
		{"data_dir", c.DataDir, "/var/lib/sekisho"},
		{"store.driver", c.Store.Driver, "sqlite"},
		{"dns.resolver", c.DNS.Resolver, ""},
		{"dns.timeout", c.DNS.Timeout.Duration, 5 * time.Second},
		{"log.level", c.Log.Level, "info"},
		{"log.format", c.Log.Format, "text"},
		{"smtp.local_domains", len(c.SMTP.LocalDomains), 0},
		{"smtp.relay_networks", prefixes(c.SMTP.RelayNetworks), "127.0.0.0/8 ::1/128"},
		{"smtp.max_message_bytes", c.SMTP.MaxMessageBytes, int64(26214400)},
		{"smtp.max_recipients", c.SMTP.MaxRecipients, 100},
		{"smtp.listener", len(c.SMTP.Listeners), 0},
		{"smtp.upstream.servers", len(c.SMTP.Upstream.Servers), 0},
		{"smtp.upstream.balance", c.SMTP.Upstream.Balance, "round_robin"},
		{"smtp.upstream.tls", c.SMTP.Upstream.TLS, "opportunistic"},
		{"smtp.upstream.xforward", c.SMTP.Upstream.XForward, true},
		{"smtp.upstream.connect_timeout", c.SMTP.Upstream.ConnectTimeout.Duration, 10 * time.Second},
		{"antispam.challenge", c.Antispam.Challenge, true},
		{"antispam.challenge_language", c.Antispam.ChallengeLanguage, "auto"},
		{"antispam.challenge_interval", c.Antispam.ChallengeInterval.Duration, 24 * time.Hour},
		{"antispam.hold_for", c.Antispam.HoldFor.Duration, 336 * time.Hour},
		{"antispam.confirm_scope", c.Antispam.ConfirmScope, "sender"},
		{"antispam.sender_auth", c.Antispam.SenderAuth, "gate"},
		{"antispam.challenge_per_ip_hour", c.Antispam.ChallengePerIPHour, 20},
		{"antispam.challenge_per_hour", c.Antispam.ChallengePerHour, 1000},
		{"antispam.confirm_min_seconds", c.Antispam.ConfirmMinSeconds, 2},
		{"antispam.max_held_per_sender", c.Antispam.MaxHeldPerSender, 100},
		{"antispam.digest", c.Antispam.Digest, "daily"},
		{"antispam.digest_time", c.Antispam.DigestTime, "08:00"},
		{"antispam.null_sender", c.Antispam.NullSender, "verify"},
		{"antispam.decoy_action", c.Antispam.DecoyAction, "reject"},
		{"antispam.black_ttl", c.Antispam.BlackTTL.Duration, 24 * time.Hour},
		{"antispam.black_action", c.Antispam.BlackAction, "reject"},
		{"antispam.blacklist_probes", c.Antispam.BlacklistProbes, true},
		{"web.listen", len(c.Web.Listen), 0},
		{"web.admin_networks", prefixes(c.Web.AdminNetworks), "127.0.0.0/8 ::1/128"},
		{"web.decoy_seed", c.Web.DecoySeed, ""},
		{"web.decoy_seed_ttl", c.Web.DecoySeedTTL.Duration, 2160 * time.Hour},
		{"http_proxy.listen", len(c.HTTPProxy.Listen), 0},
		{"http_proxy.allow_networks", prefixes(c.HTTPProxy.AllowNetworks), "127.0.0.0/8 ::1/128"},
		{"http_proxy.auth", c.HTTPProxy.Auth, false},
		{"http_proxy.connect_ports", c.HTTPProxy.ConnectPorts, []int{443}},
		{"http_proxy.allow_mail_ports", c.HTTPProxy.AllowMailPorts, false},
		{"http_proxy.deny_networks", prefixes(c.HTTPProxy.DenyNetworks), "127.0.0.0/8 ::1/128 169.254.0.0/16 fe80::/10"},
		{"socks.listen", len(c.Socks.Listen), 0},
		{"socks.allow_networks", prefixes(c.Socks.AllowNetworks), "127.0.0.0/8 ::1/128"},
		{"socks.connect_ports", c.Socks.ConnectPorts, []int{443}},
		{"socks.deny_networks", prefixes(c.Socks.DenyNetworks), "127.0.0.0/8 ::1/128 169.254.0.0/16 fe80::/10"},
	}
	for _, tt := range tests {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("%s = %v, want %v", tt.key, tt.got, tt.want)
		}
	}

	// Every call builds new slices: changing one Config leaves the next alone.
	c.HTTPProxy.DenyNetworks[0] = Prefix{}
	if !Default().HTTPProxy.DenyNetworks[0].IsValid() {
		t.Error("Default shares its slices between calls")
	}
}

func prefixes(ps []Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, " ")
}

// TestParseDerived checks the defaults filled in from other keys.
func TestParseDerived(t *testing.T) {
	c, err := Parse("t.toml", []byte(`hostname = "MX.Example.JP"
data_dir = "/srv/sekisho"
[smtp]
local_domains = ["Example.JP", "example.net"]
`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ key, got, want string }{
		{"hostname", c.Hostname, "mx.example.jp"},
		{"smtp.local_domains", strings.Join(c.SMTP.LocalDomains, " "), "example.jp example.net"},
		{"store.node_id", c.Store.NodeID, "mx.example.jp"},
		{"store.dsn", c.Store.DSN, filepath.Join("/srv/sekisho", "sekisho.db")},
		{"web.app_host", c.Web.AppHost, "mx.example.jp"},
		{"antispam.base_url", c.Antispam.BaseURL, "https://mx.example.jp"},
		{"antispam.challenge_from", c.Antispam.ChallengeFrom, "postmaster@example.jp"},
		{"File", c.File, "t.toml"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %q, want %q", tt.key, tt.got, tt.want)
		}
	}

	// Values given are kept (and names lower-cased).
	c, err = Parse("t.toml", []byte(`hostname = "mx.example.jp"
[store]
driver = "postgres"
dsn = "postgres://sekisho@db.example.jp/sekisho"
node_id = "node-1"
[antispam]
base_url = "https://confirm.example.jp:8443/"
challenge_from = "Confirm@Example.JP"
[web]
app_host = "Portal.example.jp"
`))
	if err != nil {
		t.Fatal(err)
	}
	tests = []struct{ key, got, want string }{
		{"store.node_id", c.Store.NodeID, "node-1"},
		{"store.dsn", c.Store.DSN, "postgres://sekisho@db.example.jp/sekisho"},
		{"web.app_host", c.Web.AppHost, "portal.example.jp"},
		{"antispam.base_url", c.Antispam.BaseURL, "https://confirm.example.jp:8443"},
		{"antispam.challenge_from", c.Antispam.ChallengeFrom, "Confirm@example.jp"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %q, want %q", tt.key, tt.got, tt.want)
		}
	}
}

// TestParseElementDefaults checks that keys left out of [[smtp.listener]]
// and [[web.route]] get their defaults, and that given ones win.
func TestParseElementDefaults(t *testing.T) {
	c, err := Parse("t.toml", []byte(`hostname = "mx.example.jp"
[smtp]
local_domains = ["example.jp"]
upstream.servers = ["192.0.2.10:25", "[2001:db8::10]:25"]
[[smtp.listener]]
address = "[::]:25"
[[smtp.listener]]
address = "0.0.0.0:465"
role = "submission"
tls = "implicit"
require_tls = true
[[web.route]]
host = "www.example.jp"
root = "/srv/www"
[[web.route]]
host = "api.example.jp"
path = "/v1/"
upstreams = ["127.0.0.1:8081"]
balance = "least_conn"
health_interval = "1s"
plain = "serve"
`))
	if err != nil {
		t.Fatal(err)
	}
	wantListeners := []Listener{
		{Address: "[::]:25", Role: "mx", TLS: "starttls"},
		{Address: "0.0.0.0:465", Role: "submission", TLS: "implicit", RequireTLS: true},
	}
	if !reflect.DeepEqual(c.SMTP.Listeners, wantListeners) {
		t.Errorf("listeners:\n%+v\nwant\n%+v", c.SMTP.Listeners, wantListeners)
	}
	wantRoutes := []Route{
		{Host: "www.example.jp", Path: "/", Root: "/srv/www", Balance: "round_robin", HealthInterval: Duration{5 * time.Second}, Plain: "redirect"},
		{Host: "api.example.jp", Path: "/v1/", Upstreams: []string{"127.0.0.1:8081"}, Balance: "least_conn", HealthInterval: Duration{time.Second}, Plain: "serve"},
	}
	if !reflect.DeepEqual(c.Web.Routes, wantRoutes) {
		t.Errorf("routes:\n%+v\nwant\n%+v", c.Web.Routes, wantRoutes)
	}
}

// TestExample checks the shipped sample: it is valid, it runs on loopback,
// and it shows every key of the configuration.
func TestExample(t *testing.T) {
	path := filepath.Join("..", "..", "sekisho.example.toml")
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate after Load: %v", err)
	}
	if c.File != path {
		t.Errorf("File = %q, want %q", c.File, path)
	}
	var addrs []string
	for _, l := range c.SMTP.Listeners {
		addrs = append(addrs, l.Role+" "+l.Address+" "+l.TLS)
	}
	want := []string{"mx 127.0.0.1:2525 starttls", "mx [::1]:2525 starttls", "submission 127.0.0.1:5870 starttls"}
	if !slices.Equal(addrs, want) {
		t.Errorf("smtp listeners = %q, want %q", addrs, want)
	}
	checks := []struct{ key, got, want string }{
		{"hostname", c.Hostname, "localhost"},
		{"data_dir", c.DataDir, "./data"},
		{"store.driver", c.Store.Driver, "sqlite"},
		{"smtp.local_domains", strings.Join(c.SMTP.LocalDomains, " "), "example.jp"},
		{"smtp.upstream.servers", strings.Join(c.SMTP.Upstream.Servers, " "), "127.0.0.1:2526"},
		{"web.listen", strings.Join(c.Web.Listen, " "), "127.0.0.1:8443"},
		{"http_proxy.listen", strings.Join(c.HTTPProxy.Listen, " "), "127.0.0.1:3128"},
	}
	for _, tt := range checks {
		if tt.got != tt.want {
			t.Errorf("%s = %q, want %q", tt.key, tt.got, tt.want)
		}
	}

	// Every key is written out, so the sample documents them all. The
	// [[web.route]] table is there as a comment: a route needs a backend.
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := keyLines(data)
	for _, key := range allKeys("", reflect.TypeFor[Config]()) {
		if strings.HasPrefix(key, "web.route") {
			if !strings.Contains(string(data), "# [[web.route]]") {
				t.Error("sample lacks the commented [[web.route]] table")
			}
			continue
		}
		if strings.HasPrefix(key, "smtp.listener.") {
			key = "smtp.listener[0]." + strings.TrimPrefix(key, "smtp.listener.")
		}
		if _, ok := lines[key]; !ok {
			t.Errorf("sample does not show %s", key)
		}
	}
}

// allKeys lists the key paths of the leaves of struct type t.
func allKeys(prefix string, t reflect.Type) []string {
	var keys []string
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("toml"), ",")
		if name == "" || name == "-" {
			continue
		}
		key := joinKey(prefix, name)
		ft := t.Field(i).Type
		if ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct && ft.Elem() != reflect.TypeFor[Prefix]() {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct && ft != reflect.TypeFor[Duration]() && ft != reflect.TypeFor[Prefix]() {
			keys = append(keys, allKeys(key, ft)...)
			continue
		}
		keys = append(keys, key)
	}
	return keys
}

// TestSpecSample parses the listing of SPEC §8: the names there are the
// contract.
func TestSpecSample(t *testing.T) {
	c, err := Load(filepath.Join("testdata", "spec.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.SMTP.Upstream.Servers; !slices.Equal(got, []string{"192.0.2.10:25", "[2001:db8::10]:25"}) {
		t.Errorf("smtp.upstream.servers = %q", got)
	}
	if len(c.Web.Routes) != 1 || len(c.Web.Routes[0].Upstreams) != 2 {
		t.Errorf("web.route = %+v", c.Web.Routes)
	}
}

func TestLoadMissing(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "none.toml"))
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load of a missing file: %v, want an os.ErrNotExist", err)
	}
}

func TestErrorString(t *testing.T) {
	tests := []struct {
		e    Error
		want string
	}{
		{Error{File: "s.toml", Line: 3, Key: "smtp.listener[1].role", Msg: "unknown value"}, "s.toml:3: smtp.listener[1].role: unknown value"},
		{Error{File: "s.toml", Key: "hostname", Msg: "required"}, "s.toml: hostname: required"},
		{Error{File: "s.toml", Line: 2, Msg: "syntax error: x"}, "s.toml:2: syntax error: x"},
		{Error{Line: 2, Key: "a", Msg: "b"}, "line 2: a: b"},
		{Error{Key: "a", Msg: "b"}, "a: b"},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

// TestValidate checks Validate on configurations built in code: pure, all
// problems, no lines.
func TestValidate(t *testing.T) {
	c := Default()
	c.Hostname = "mx.example.jp"
	if err := c.Validate(); err != nil {
		t.Errorf("Validate of the defaults with a hostname: %v", err)
	}

	c.File = "code"
	c.SMTP.Listeners = []Listener{{Address: "127.0.0.1:25", Role: "mx", TLS: "starttls"}}
	c.SMTP.RelayNetworks = append(c.SMTP.RelayNetworks, Prefix{})
	c.Log.Level = "loud"
	before := *c
	before.SMTP.Listeners = slices.Clone(c.SMTP.Listeners)
	before.SMTP.RelayNetworks = slices.Clone(c.SMTP.RelayNetworks)
	err := c.Validate()
	want := `code: log.level: unknown value "loud" (want one of: debug, info, warn, error)
code: smtp.local_domains: required when an SMTP listener is configured (the domains we receive mail for, e.g. ["example.jp"])
code: smtp.relay_networks[2]: invalid network (want a CIDR such as "10.0.0.0/8" or an IP address)
code: smtp.upstream.servers: required when an SMTP listener is configured (the real mail servers, e.g. ["192.0.2.10:25"])`
	if err == nil || err.Error() != want {
		t.Errorf("Validate:\n%v\nwant:\n%s", err, want)
	}
	if !reflect.DeepEqual(*c, before) {
		t.Error("Validate changed the config")
	}
}

func TestDuration(t *testing.T) {
	for _, tt := range []struct {
		in, out string
	}{
		{"90s", "1m30s"},
		{"24h", "24h"},
		{"336h", "336h"},
		{"1h30m", "1h30m"},
		{"1h0m1s", "1h0m1s"},
		{"0s", "0s"},
		{"1.5s", "1.5s"},
		{"250ms", "250ms"},
	} {
		var d Duration
		if err := d.UnmarshalText([]byte(tt.in)); err != nil {
			t.Errorf("UnmarshalText(%q): %v", tt.in, err)
			continue
		}
		out, _ := d.MarshalText()
		if string(out) != tt.out {
			t.Errorf("MarshalText(%q) = %q, want %q", tt.in, out, tt.out)
		}
		var back Duration
		if err := back.UnmarshalText(out); err != nil || back != d {
			t.Errorf("%q does not read back: %v, %v", out, back, err)
		}
	}
	var d Duration
	if err := d.UnmarshalText([]byte("5")); err == nil {
		t.Error(`UnmarshalText("5") succeeded; want a unit required`)
	}
}

func TestPrefix(t *testing.T) {
	for _, tt := range []struct {
		in, want string // want "" means an error
	}{
		{"10.0.0.0/8", "10.0.0.0/8"},
		{"10.1.2.3/8", "10.0.0.0/8"},
		{"::1/128", "::1/128"},
		{"2001:db8::/32", "2001:db8::/32"},
		{"192.0.2.1", "192.0.2.1/32"},
		{"2001:db8::1", "2001:db8::1/128"},
		{"::ffff:192.0.2.1", "::ffff:192.0.2.1/128"},
		{"10.0.0.0/33", ""},
		{"fe80::1%eth0", ""},
		{"fe80::1%eth0/64", ""},
		{"localhost", ""},
		{"", ""},
		{"10.0.0.0/", ""},
	} {
		var p Prefix
		err := p.UnmarshalText([]byte(tt.in))
		switch {
		case tt.want == "" && err == nil:
			t.Errorf("UnmarshalText(%q) = %v, want an error", tt.in, p)
		case tt.want != "" && err != nil:
			t.Errorf("UnmarshalText(%q): %v", tt.in, err)
		case tt.want != "":
			if out, _ := p.MarshalText(); string(out) != tt.want {
				t.Errorf("UnmarshalText(%q) = %s, want %s", tt.in, out, tt.want)
			}
		}
	}
	p := mustPrefix("10.0.0.0/8")
	if !p.Contains(netip.MustParseAddr("10.9.8.7")) {
		t.Error("10.0.0.0/8 does not contain 10.9.8.7")
	}
}

func TestRedacted(t *testing.T) {
	for _, tt := range []struct{ dsn, want string }{
		{"postgres://sekisho:s3cret@db.example.jp/sekisho?sslmode=verify-full", "postgres://sekisho:xxxxx@db.example.jp/sekisho?sslmode=verify-full"},
		{"postgres://sekisho@db.example.jp/sekisho", "postgres://sekisho@db.example.jp/sekisho"},
		{"postgres://db.example.jp/sekisho?user=a&password=s3cret&sslmode=require", "postgres://db.example.jp/sekisho?user=a&password=xxxxx&sslmode=require"},
		{"host=db user=sekisho password=s3cret dbname=sekisho", "host=db user=sekisho password=xxxxx dbname=sekisho"},
		{"host=db password = 'two words' dbname=sekisho", "host=db password = xxxxx dbname=sekisho"},
		{"/var/lib/sekisho/sekisho.db", "/var/lib/sekisho/sekisho.db"},
	} {
		if got := redactDSN(tt.dsn); got != tt.want {
			t.Errorf("redactDSN(%q) = %q, want %q", tt.dsn, got, tt.want)
		}
	}

	c, err := Load(filepath.Join("..", "..", "sekisho.example.toml"))
	if err != nil {
		t.Fatal(err)
	}
	c.Store.Driver = "postgres"
	c.Store.DSN = "postgres://sekisho:s3cret@db.example.jp/sekisho"
	out := c.Redacted()
	if strings.Contains(out, "s3cret") {
		t.Errorf("Redacted shows the password:\n%s", out)
	}
	back, err := Parse("redacted", []byte(out))
	if err != nil {
		t.Fatalf("Redacted output does not parse: %v\n%s", err, out)
	}
	back.File, back.Store.DSN = c.File, c.Store.DSN
	if !reflect.DeepEqual(back, c) {
		t.Errorf("Redacted does not read back:\n%s\nback: %+v\nwant: %+v", out, back, c)
	}
}
