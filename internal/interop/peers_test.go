package interop

import (
	"fmt"
	"net"
	"net/textproto"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/testenv"
)

// ---------------------------------------------------------------- smtp-sink

// sink is Postfix's smtp-sink, writing every message it accepts to a file of its own.
type sink struct {
	addr string // host:port, [::1]:port for IPv6
	dir  string // one file per message
	proc *proc
}

// startSink runs smtp-sink on host ("127.0.0.1" or "::1") at a free port; extra are more
// smtp-sink options (e.g. "-f", "RCPT" to refuse every recipient).
func startSink(t *testing.T, host string, extra ...string) *sink {
	t.Helper()
	bin := requireBin(t, "smtp-sink", "postfix")
	work := openDir(t)
	dir := filepath.Join(work, "mail")
	if err := os.Mkdir(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil { // past the umask: smtp-sink writes as nobody
		t.Fatal(err)
	}
	for attempt := 1; ; attempt++ {
		addr := net.JoinHostPort(host, freePort(t, host))
		var args []string
		if os.Geteuid() == 0 {
			args = append(args, "-u", "nobody") // required when started as root
		}
		args = append(args, extra...)
		args = append(args, "-c", "-d", dir+"/%M.", addr, "100")
		p := startProc(t, "smtp-sink "+addr, filepath.Join(work, "sink-"+itoa(attempt)+".log"), bin, args...)
		if p.waitListen(addr, 10*time.Second) {
			return &sink{addr: addr, dir: dir, proc: p}
		}
		p.stop(time.Second)
		if attempt == 3 {
			dumpLog(t, "smtp-sink", p.logPath)
			t.Fatalf("smtp-sink did not come up on %s", addr)
		}
	}
}

// messages returns the messages the sink holds, oldest first.
func (s *sink) messages(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		t.Fatal(err)
	}
	type msg struct {
		mod  time.Time
		text string
	}
	var ms []msg
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(s.dir, e.Name()))
		if err != nil || len(b) == 0 {
			continue // smtp-sink creates the file at MAIL and fills it at the end of DATA
		}
		var mod time.Time
		if fi, err := e.Info(); err == nil {
			mod = fi.ModTime()
		}
		ms = append(ms, msg{mod, string(b)})
	}
	sort.SliceStable(ms, func(i, j int) bool { return ms[i].mod.Before(ms[j].mod) })
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.text
	}
	return out
}

// waitMessage waits until a message containing marker arrives and returns it.
func (s *sink) waitMessage(t *testing.T, marker string, timeout time.Duration) string {
	t.Helper()
	var found string
	if !testenv.Eventually(timeout, func() bool {
		for _, m := range s.messages(t) {
			if strings.Contains(m, marker) {
				found = m
				return true
			}
		}
		return false
	}) {
		t.Fatalf("the sink did not get a message with %q within %v (it holds %d)", marker, timeout, len(s.messages(t)))
	}
	return found
}

// ---------------------------------------------------------------- swaks

// swaksResult is one swaks run: its transcript and exit status.
type swaksResult struct {
	out  string
	code int
}

// swaks runs swaks with args (plus a timeout), e.g. "--server", addr, "-f", from, ...
func swaks(t *testing.T, args ...string) swaksResult {
	t.Helper()
	bin := requireBin(t, "swaks", "swaks")
	args = append([]string{"--timeout", "30"}, args...)
	out, err := runCmd(60*time.Second, bin, args...)
	if err != nil && exitCode(err) < 0 {
		t.Fatalf("swaks: %v\n%s", err, out)
	}
	return swaksResult{out: out, code: exitCode(err)}
}

// requireSwaksIPv6 checks that swaks can speak IPv6: it needs the Perl module
// IO::Socket::INET6, which Debian's swaks only recommends.
func requireSwaksIPv6(t *testing.T) {
	t.Helper()
	requireBin(t, "swaks", "swaks")
	if out, err := runCmd(30*time.Second, "perl", "-MIO::Socket::INET6", "-e", "1"); err != nil {
		testenv.Missing(t, "swaks cannot use IPv6 without IO::Socket::INET6: install the Debian package \"libio-socket-inet6-perl\" (%v %s)", err, strings.TrimSpace(out))
	}
}

// serverArgs are swaks's options to reach addr ("host:port", IPv6 in brackets).
func serverArgs(addr string) []string {
	host, port, _ := net.SplitHostPort(addr)
	return []string{"--server", host, "--port", port}
}

// mustPass fails the test unless swaks delivered the message (exit 0, 250 after DATA).
func (r swaksResult) mustPass(t *testing.T) {
	t.Helper()
	if r.code != 0 || !strings.Contains(r.out, "<-  250") {
		t.Fatalf("swaks failed (exit %d):\n%s", r.code, r.out)
	}
}

// mustReply fails the test unless swaks saw an error reply starting with reply ("530 5.7.0")
// right after the command cmd ("MAIL", "RCPT", "DATA" or "." for the end of data).
func (r swaksResult) mustReply(t *testing.T, cmd, reply string) {
	t.Helper()
	lines := strings.Split(r.out, "\n")
	last := ""
	for _, l := range lines {
		l = strings.TrimRight(l, "\r")
		switch {
		case strings.HasPrefix(l, " -> ") || strings.HasPrefix(l, " ~> "):
			last = strings.TrimSpace(l[4:])
		case strings.HasPrefix(l, "<** ") || strings.HasPrefix(l, "<~* "):
			if strings.HasPrefix(strings.TrimSpace(l[4:]), reply) && strings.HasPrefix(strings.ToUpper(last), cmd) {
				return
			}
		}
	}
	t.Fatalf("swaks: want %q after %s; transcript (exit %d):\n%s", reply, cmd, r.code, r.out)
}

// ---------------------------------------------------------------- raw SMTP client

// rawClient is an SMTP client that sends exactly the bytes it is given.
type rawClient struct {
	t    *testing.T
	conn net.Conn
	tp   *textproto.Conn
}

// dialFrom connects to addr from the local IP from ("" for any) and reads the greeting.
func dialFrom(t *testing.T, from, addr string) (*rawClient, string) {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, from, err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(60 * time.Second))
	c := &rawClient{t: t, conn: conn, tp: textproto.NewConn(conn)}
	return c, c.read()
}

// read returns the next reply, all its lines joined by "\n", each "CODE text".
func (c *rawClient) read() string {
	c.t.Helper()
	var lines []string
	for {
		l, err := c.tp.ReadLine()
		if err != nil {
			c.t.Fatalf("read reply: %v (so far %q)", err, lines)
		}
		lines = append(lines, l)
		if len(l) < 4 || l[3] != '-' {
			return strings.Join(lines, "\n")
		}
	}
}

// cmd sends one command line and returns the reply.
func (c *rawClient) cmd(line string) string {
	c.t.Helper()
	c.write(line + "\r\n")
	return c.read()
}

// expect sends a command and fails unless the reply starts with want.
func (c *rawClient) expect(line, want string) string {
	c.t.Helper()
	r := c.cmd(line)
	if !strings.HasPrefix(r, want) {
		c.t.Fatalf("%s: got %q, want %q...", line, r, want)
	}
	return r
}

// write sends raw bytes.
func (c *rawClient) write(s string) {
	c.t.Helper()
	if _, err := c.conn.Write([]byte(s)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// ---------------------------------------------------------------- Postfix relay

// postfixRelay is a real Postfix (master, smtpd, qmgr, smtp) with its own config_directory
// and queue in a temp dir, relaying example.jp to a sink.
type postfixRelay struct {
	addr    string // smtpd, 127.0.0.1:port
	etc     string
	maillog string
}

// startPostfix starts Postfix with smtpd on a free loopback port, relayhost = relayTo.
// With tls, smtpd offers STARTTLS with a self-signed certificate and logs TLS sessions.
func startPostfix(t *testing.T, relayTo string, tls bool) *postfixRelay {
	t.Helper()
	bin := requireBin(t, "postfix", "postfix")
	requireRoot(t, "Postfix")
	if _, err := user.Lookup("postfix"); err != nil {
		testenv.Missing(t, "user postfix missing: install the Debian package \"postfix\"")
	}
	if _, err := user.LookupGroup("postdrop"); err != nil {
		testenv.Missing(t, "group postdrop missing: install the Debian package \"postfix\"")
	}
	dir := openDir(t)
	pf := &postfixRelay{
		addr:    net.JoinHostPort("127.0.0.1", freePort(t, "127.0.0.1")),
		etc:     filepath.Join(dir, "etc"),
		maillog: filepath.Join(dir, "maillog"),
	}
	queue, data := filepath.Join(dir, "queue"), filepath.Join(dir, "data")
	for _, d := range []string{pf.etc, queue, data} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := runCmd(10*time.Second, "chown", "postfix:postfix", data); err != nil {
		t.Fatalf("chown postfix %s: %v %s", data, err, out)
	}
	protocols := "all"
	if l, err := net.Listen("tcp6", "[::1]:0"); err != nil {
		protocols = "ipv4"
	} else {
		l.Close()
	}
	mainCF := fmt.Sprintf(`# interop test: a relay for example.jp to the sink, no local delivery
compatibility_level = 3.6
queue_directory = %[1]s
data_directory = %[2]s
mail_owner = postfix
setgid_group = postdrop
myhostname = relay.interop.test
mydomain = interop.test
myorigin = $myhostname
mydestination =
local_recipient_maps =
local_transport = error:local delivery disabled
alias_maps =
alias_database =
relay_domains = example.jp
relayhost = [%[3]s]:%[4]s
mynetworks = 127.0.0.0/8 [::1]/128
inet_interfaces = loopback-only
inet_protocols = %[5]s
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_authorized_xforward_hosts = 127.0.0.0/8 [::1]/128
smtpd_peername_lookup = no
smtp_dns_support_level = disabled
biff = no
append_dot_mydomain = no
smtputf8_enable = no
maillog_file = %[6]s
maillog_file_prefixes = %[7]s
`, queue, data, hostOf(relayTo), portOf(relayTo), protocols, pf.maillog, dir)
	if tls {
		cert, key := filepath.Join(pf.etc, "cert.pem"), filepath.Join(pf.etc, "key.pem")
		writeCert(t, cert, key, "relay.interop.test")
		mainCF += fmt.Sprintf("smtpd_tls_cert_file = %s\nsmtpd_tls_key_file = %s\nsmtpd_tls_security_level = may\nsmtpd_tls_loglevel = 1\n", cert, key)
	}
	if err := os.WriteFile(filepath.Join(pf.etc, "main.cf"), []byte(mainCF), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pf.etc, "master.cf"), []byte(masterCF(pf.addr)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := runCmd(60*time.Second, bin, "-c", pf.etc, "check"); err != nil {
		t.Fatalf("postfix check: %v\n%s", err, out)
	}
	pidFile := filepath.Join(queue, "pid", "master.pid")
	t.Cleanup(func() {
		pf.stop(t, bin, pidFile)
		if t.Failed() {
			dumpLog(t, "postfix", pf.maillog)
		}
	})
	if out, err := runCmd(60*time.Second, bin, "-c", pf.etc, "start"); err != nil {
		t.Fatalf("postfix start: %v\n%s", err, out)
	}
	if !testenv.Eventually(30*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", pf.addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil
	}) {
		t.Fatalf("postfix smtpd did not come up on %s", pf.addr)
	}
	return pf
}

// stop stops the master we started and makes sure it is gone.
func (pf *postfixRelay) stop(t *testing.T, bin, pidFile string) {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return // never started
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		t.Errorf("postfix master.pid: %q", b)
		return
	}
	runCmd(30*time.Second, bin, "-c", pf.etc, "stop")
	alive := func() bool { return processAlive(pid) }
	if testenv.Eventually(15*time.Second, func() bool { return !alive() }) {
		return
	}
	t.Errorf("postfix master %d still running after postfix stop; killing it", pid)
	if p, err := os.FindProcess(pid); err == nil {
		p.Kill()
	}
}

// processAlive reports whether pid exists and is not a zombie.
func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

// log returns Postfix's log so far.
func (pf *postfixRelay) log() string {
	b, _ := os.ReadFile(pf.maillog)
	return string(b)
}

// waitLog waits until Postfix's log matches re and returns the first match's submatches.
func (pf *postfixRelay) waitLog(t *testing.T, re *regexp.Regexp, timeout time.Duration) []string {
	t.Helper()
	var m []string
	if !testenv.Eventually(timeout, func() bool { m = re.FindStringSubmatch(pf.log()); return m != nil }) {
		t.Fatalf("postfix log: no line matching %s within %v:\n%s", re, timeout, pf.log())
	}
	return m
}

// masterCF is Postfix 3.7's default master.cf without chroot and pipe transports, smtpd
// listening on addr only.
func masterCF(addr string) string {
	return addr + ` inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`
}

// writeCert writes a certificate for host, from a CA of its own, and its key as PEM files.
func writeCert(t *testing.T, certFile, keyFile, host string) {
	t.Helper()
	_, certPEM, keyPEM := testenv.NewCA(t, host+" CA").Issue(t, host)
	if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
}

func hostOf(addr string) string { h, _, _ := net.SplitHostPort(addr); return h }
func portOf(addr string) string { _, p, _ := net.SplitHostPort(addr); return p }
