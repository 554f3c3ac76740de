package interop

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/testenv"
)

// listenerConf is one [[smtp.listener]].
type listenerConf struct {
	address    string // default 127.0.0.1:0 (the bound address is read from the log)
	tls        string // default "none"
	requireTLS bool
}

// sekishoConf is what a test sets in sekisho's configuration; the rest is fixed below.
type sekishoConf struct {
	listeners   []listenerConf // default one plain listener on 127.0.0.1
	servers     []string       // [smtp.upstream] servers
	balance     string         // default round_robin
	upstreamTLS string         // default "none"
	white       []string       // senders whitelisted (CLI) before the server starts
	web         bool           // an HTTPS listener on 127.0.0.1 (webAddr)
	extra       string         // more TOML tables, appended (e.g. [web])
}

// sekisho is a running `sekisho serve`.
type sekisho struct {
	t       *testing.T
	config  string
	dataDir string
	proc    *proc
	addrs   []string // bound listener addresses, in configuration order
}

// Fixed parts of every test configuration: mail for example.jp, only 127.0.0.1 is "our
// users" (127.0.0.2 and ::1 are outside senders), no challenge mail, no digest.
const confTemplate = `hostname = "mx.interop.test"
data_dir = %s

[log]
level = "debug"
format = "json"

[smtp]
local_domains = ["example.jp"]
relay_networks = ["127.0.0.1/32"]

[antispam]
challenge = false
digest = "off"
sender_auth = "off"
`

// startSekisho writes a configuration into a temp dir and runs `sekisho serve` on it; the
// server is stopped (SIGTERM) when the test ends and its log printed if the test failed.
func startSekisho(t *testing.T, sc sekishoConf) *sekisho {
	t.Helper()
	dir := t.TempDir()
	s := &sekisho{t: t, config: filepath.Join(dir, "sekisho.toml"), dataDir: filepath.Join(dir, "data")}
	if err := os.Mkdir(s.dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if len(sc.listeners) == 0 {
		sc.listeners = []listenerConf{{}}
	}
	var b strings.Builder
	fmt.Fprintf(&b, confTemplate, strconv.Quote(s.dataDir))
	for _, l := range sc.listeners {
		if l.address == "" {
			l.address = "127.0.0.1:0"
		}
		if l.tls == "" {
			l.tls = "none"
		}
		fmt.Fprintf(&b, "\n[[smtp.listener]]\naddress = %q\nrole = \"mx\"\ntls = %q\nrequire_tls = %v\n", l.address, l.tls, l.requireTLS)
	}
	if sc.balance == "" {
		sc.balance = "round_robin"
	}
	if sc.upstreamTLS == "" {
		sc.upstreamTLS = "none"
	}
	var servers []string
	for _, srv := range sc.servers {
		servers = append(servers, strconv.Quote(srv))
	}
	fmt.Fprintf(&b, "\n[smtp.upstream]\nservers = [%s]\nbalance = %q\ntls = %q\nxforward = true\nconnect_timeout = \"5s\"\n",
		strings.Join(servers, ", "), sc.balance, sc.upstreamTLS)
	if sc.web {
		b.WriteString("\n[web]\nlisten = [\"127.0.0.1:0\"]\n")
	}
	b.WriteString(sc.extra)
	if err := os.WriteFile(s.config, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := s.cli("check"); err != nil {
		t.Fatalf("sekisho check: %v\n%s\nconfig:\n%s", err, out, b.String())
	}
	for _, w := range sc.white {
		s.mustCLI("list", "add", "white", w)
	}

	s.proc = startProc(t, "sekisho", filepath.Join(dir, "sekisho.log"), sekishoBin, "serve", "-config", s.config)
	if !testenv.Eventually(15*time.Second, func() bool {
		s.addrs = s.listening()
		return len(s.addrs) == len(sc.listeners) || s.proc.exited()
	}) || s.proc.exited() {
		t.Fatalf("sekisho did not start its %d listener(s) (got %v, exited %v: %v)", len(sc.listeners), s.addrs, s.proc.exited(), s.proc.err)
	}
	return s
}

// webAddr returns the bound address of the HTTPS listener (sekishoConf.web, or a listen of
// a [web] in extra). The web server logs it after startSekisho saw the SMTP listeners.
func (s *sekisho) webAddr() string {
	s.t.Helper()
	var addr string
	testenv.Eventually(10*time.Second, func() bool {
		for _, rec := range s.logged("web listening") {
			if a, ok := rec["address"].(string); ok && rec["tls"] == true {
				addr = a
				return true
			}
		}
		return false
	})
	if addr == "" {
		s.t.Fatal("sekisho logged no HTTPS listener")
	}
	return addr
}

// addr returns the first listener's address.
func (s *sekisho) addr() string { return s.addrs[0] }

// logLines returns sekisho's JSON log records so far.
func (s *sekisho) logLines() []map[string]any {
	f, err := os.Open(s.proc.logPath)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) == nil {
			out = append(out, rec)
		}
	}
	return out
}

// logged returns the log records whose msg is msg.
func (s *sekisho) logged(msg string) []map[string]any {
	var out []map[string]any
	for _, rec := range s.logLines() {
		if rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// listening returns the addresses of the "smtp listening" log records.
func (s *sekisho) listening() []string {
	var out []string
	for _, rec := range s.logged("smtp listening") {
		if a, ok := rec["address"].(string); ok {
			out = append(out, a)
		}
	}
	return out
}

// cli runs a sekisho subcommand against this server's configuration and returns its
// standard output; a failure's error includes its standard error.
func (s *sekisho) cli(args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	err := runCmdTo(&stdout, &stderr, 30*time.Second, sekishoBin, append(args, "-config", s.config)...)
	if err != nil {
		err = fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), err
}

// mustCLI runs a subcommand and fails the test when it fails.
func (s *sekisho) mustCLI(args ...string) string {
	s.t.Helper()
	out, err := s.cli(args...)
	if err != nil {
		s.t.Fatalf("sekisho %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// heldIDs returns the IDs `sekisho queue list` shows, with the lines that mention match.
func (s *sekisho) heldIDs(match string) []string {
	s.t.Helper()
	out := s.mustCLI("queue", "list")
	var ids []string
	for i, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if i == 0 || !strings.Contains(line, match) { // header
			continue
		}
		ids = append(ids, strings.Fields(line)[0])
	}
	return ids
}

// heldCount returns how many messages `sekisho queue list` shows.
func (s *sekisho) heldCount() int {
	s.t.Helper()
	return len(s.heldIDs(""))
}

var barrierIP atomic.Int32

// syncLists waits until the running server has every list change made so far: it
// blacklists a fresh 127.0.0.x through the CLI and waits until that address is greeted 554.
// The change log is ordered, so every earlier change is then in the server's memory too.
func (s *sekisho) syncLists() {
	s.t.Helper()
	ip := fmt.Sprintf("127.0.0.%d", 200+barrierIP.Add(1)%50)
	s.mustCLI("list", "add", "black", ip, "-note", "interop barrier")
	var last string
	if !testenv.Eventually(10*time.Second, func() bool {
		d := net.Dialer{Timeout: time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
		c, err := d.Dial("tcp", s.addr())
		if err != nil {
			last = err.Error()
			return false
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		last = line
		if strings.HasPrefix(line, "220") {
			c.Write([]byte("QUIT\r\n"))
		}
		return err == nil && strings.HasPrefix(line, "554")
	}) {
		s.t.Fatalf("the server did not see a list change within 10 s (greeting for %s: %q)", ip, last)
	}
}

// terminate sends SIGTERM.
func (s *sekisho) terminate() {
	s.t.Helper()
	if err := s.proc.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		s.t.Fatalf("SIGTERM: %v", err)
	}
}

// transactions returns the "smtp transaction" log records.
func (s *sekisho) transactions() []map[string]any { return s.logged("smtp transaction") }

// receivedRE matches sekisho's Received header for a client.
func receivedRE(helo, ip, with string) *regexp.Regexp {
	return regexp.MustCompile(`(?m)^Received: from ` + regexp.QuoteMeta(helo) + ` \(\[` + regexp.QuoteMeta(ip) +
		`\]\)\r?\n\s+by mx\.interop\.test \(sekisho\) with ` + with + ` id `)
}
