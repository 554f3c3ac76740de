package interop

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/smtp"
	"net/textproto"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sekisho/sekisho/internal/testenv"
)

// Several `sekisho serve` processes on one PostgreSQL schema (issue 6): each node has its own
// data_dir and SMTP port, and the same store.dsn. The database is the one the store tests
// use: SEKISHO_TEST_POSTGRES, or CI's postgres://postgres@127.0.0.1:5432/test; when it is
// unreachable the tests skip, or fail under CI=true.

// pgQuery runs a query on the test database and returns its rows as strings.
func pgQuery(t *testing.T, query string, args ...any) [][]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, testenv.PostgresDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out [][]string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		row := make([]string, len(vals))
		for i, v := range vals {
			row[i] = fmt.Sprint(v)
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// dsnVia returns dsn with its host:port replaced by addr.
func dsnVia(t *testing.T, dsn, addr string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = addr
	return u.String()
}

// startNode runs `sekisho serve` as node id on the PostgreSQL store dsn, upstream servers,
// and waits until its SMTP listener is up.
func startNode(t *testing.T, id, dsn string, servers ...string) *sekisho {
	t.Helper()
	dir := t.TempDir()
	s := &sekisho{t: t, config: filepath.Join(dir, "sekisho.toml"), dataDir: filepath.Join(dir, "data")}
	if err := os.Mkdir(s.dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	var quoted []string
	for _, srv := range servers {
		quoted = append(quoted, strconv.Quote(srv))
	}
	conf := fmt.Sprintf(confTemplate, strconv.Quote(s.dataDir)) +
		"\n[[smtp.listener]]\naddress = \"127.0.0.1:0\"\nrole = \"mx\"\ntls = \"none\"\n" +
		fmt.Sprintf("\n[smtp.upstream]\nservers = [%s]\nbalance = \"round_robin\"\ntls = \"none\"\nxforward = true\nconnect_timeout = \"5s\"\n", strings.Join(quoted, ", ")) +
		fmt.Sprintf("\n[store]\ndriver = \"postgres\"\ndsn = %q\nnode_id = %q\n", dsn, id)
	if err := os.WriteFile(s.config, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := s.cli("check"); err != nil {
		t.Fatalf("sekisho check: %v\n%s\nconfig:\n%s", err, out, conf)
	}
	s.proc = startProc(t, "sekisho "+id, filepath.Join(dir, "sekisho.log"), sekishoBin, "serve", "-config", s.config)
	if !testenv.Eventually(20*time.Second, func() bool {
		s.addrs = s.listening()
		return len(s.addrs) == 1 || s.proc.exited()
	}) || s.proc.exited() {
		t.Fatalf("node %s did not start listening (listeners %v, exited %v: %v)", id, s.addrs, s.proc.exited(), s.proc.err)
	}
	return s
}

// greeting connects from the local address ip and returns the first reply line (and QUITs).
func greeting(ip, addr string) (string, error) {
	d := net.Dialer{Timeout: time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if strings.HasPrefix(line, "220") {
		c.Write([]byte("QUIT\r\n"))
	}
	return strings.TrimSpace(line), err
}

// waitRefused polls the greeting node gives ip until it is 554 and returns when that was,
// or fails the test after timeout.
func waitRefused(t *testing.T, ip string, node *sekisho, timeout time.Duration) time.Time {
	t.Helper()
	var last string
	if !waitForEvery(timeout, time.Millisecond, func() bool {
		line, err := greeting(ip, node.addr())
		last = line
		if err != nil {
			last += " (" + err.Error() + ")"
		}
		return strings.HasPrefix(line, "554")
	}) {
		t.Fatalf("node %s still greets %s with %q after %v", node.addr(), ip, last, timeout)
	}
	return time.Now()
}

// waitForEvery is waitFor with another polling interval.
func waitForEvery(timeout, every time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(every)
	}
	return true
}

// decoyHit mails the decoy from ip through node with a raw client and returns when the
// decoy RCPT was refused (the client is blacklisted by then).
func decoyHit(t *testing.T, ip string, node *sekisho, decoy string) time.Time {
	t.Helper()
	c, greet := dialFrom(t, ip, node.addr())
	if !strings.HasPrefix(greet, "220") {
		t.Fatalf("greeting for %s before its decoy hit: %q", ip, greet)
	}
	c.expect("EHLO "+clientHelo, "250")
	c.expect("MAIL FROM:<spammer@spam.test>", "250")
	c.expect("RCPT TO:<"+decoy+">", "550")
	at := time.Now()
	c.cmd("QUIT")
	return at
}

// sendTo runs swaks from the outside client to one recipient.
func sendTo(t *testing.T, addr, from, to, marker string) swaksResult {
	t.Helper()
	return swaks(t, append(serverArgs(addr), "--ehlo", clientHelo, "-f", from, "-t", to, "--local-interface", outsideIP,
		"--header", "Subject: interop "+marker, "--body", "marker "+marker)...)
}

func percentile(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

// TestCluster: three nodes on one schema. A decoy hit on one node is refused by the others
// (propagation measured); an alias made with the CLI on one node's configuration works
// through another; mail held by one node is released with another's configuration, and its
// sender then passes on the third.
func TestCluster(t *testing.T) {
	sk := startSink(t, "127.0.0.1")
	dsn, schema := testenv.PostgresSchema(t)
	a := startNode(t, "node-a", dsn, sk.addr)
	b := startNode(t, "node-b", dsn, sk.addr)
	c := startNode(t, "node-c", dsn, sk.addr)
	nodes := map[string]*sekisho{"A": a, "B": b, "C": c}

	a.mustCLI("list", "add", "decoy", "trap@example.jp")
	b.mustCLI("list", "add", "white", friend)
	for _, n := range nodes {
		n.syncLists()
	}

	t.Run("nodes-registered", func(t *testing.T) {
		var rows [][]string
		if !testenv.Eventually(5*time.Second, func() bool {
			rows = pgQuery(t, `SELECT node_id, version, heartbeat > 0, counters FROM `+schema+`.nodes ORDER BY node_id`)
			return len(rows) == 3
		}) {
			t.Fatalf("node registry: %v, want node-a, node-b, node-c (does Server.Run call startCluster?)", rows)
		}
		for i, id := range []string{"node-a", "node-b", "node-c"} {
			if r := rows[i]; r[0] != id || r[1] != "dev" || r[2] != "true" || !strings.Contains(r[3], `"lists_seq":`) {
				t.Errorf("node registry row %v, want %s, version dev (the test build's; does serve call SetVersion?), a heartbeat and its counters", r, id)
			}
		}
	})

	t.Run("decoy-hit-propagates", func(t *testing.T) {
		// The brief's case: swaks from 127.0.0.9 hits the decoy on A; B refuses 127.0.0.9.
		r := swaks(t, append(serverArgs(a.addr()), "--ehlo", clientHelo, "-f", "spammer@spam.test", "-t", "trap@example.jp",
			"--local-interface", "127.0.0.9")...)
		r.mustReply(t, "RCPT", "550")
		done := time.Now()
		refused := waitRefused(t, "127.0.0.9", b, time.Second)
		t.Logf("swaks decoy hit on A from 127.0.0.9; B greets it 554 %v after swaks exited", refused.Sub(done).Round(time.Microsecond))
		if line, _ := greeting("127.0.0.9", c.addr()); !strings.HasPrefix(line, "554") {
			waitRefused(t, "127.0.0.9", c, time.Second)
		}

		// Measured: the decoy RCPT refused on one node to the other node greeting 554.
		pairs := [][2]string{{"A", "B"}, {"B", "C"}, {"C", "A"}}
		var delays []time.Duration
		for i := range 30 {
			p := pairs[i%len(pairs)]
			ip := fmt.Sprintf("127.0.0.%d", 10+i)
			hit := decoyHit(t, ip, nodes[p[0]], "trap@example.jp")
			delays = append(delays, waitRefused(t, ip, nodes[p[1]], time.Second).Sub(hit))
		}
		t.Logf("decoy hit on one node -> client refused (554) by another, %d hits: p50 %v, p90 %v, max %v",
			len(delays), percentile(delays, 50).Round(time.Microsecond), percentile(delays, 90).Round(time.Microsecond),
			percentile(delays, 100).Round(time.Microsecond))
		if worst := percentile(delays, 100); worst > time.Second {
			t.Errorf("slowest propagation %v, SPEC §3 wants every node within 1 s", worst)
		}
	})

	t.Run("alias-made-on-C-used-on-B", func(t *testing.T) {
		c.mustCLI("list", "add", "alias", "shop-x@example.jp", "-owner", rcpt, "-note", "given to shop x")
		b.syncLists()
		sendTo(t, b.addr(), friend, "shop-x@example.jp", "alias-1").mustPass(t)
		msg := sk.waitMessage(t, "marker alias-1", 10*time.Second)
		if !strings.Contains(msg, "X-Rcpt-Args: <"+rcpt+">") {
			t.Errorf("mail to the alias did not reach the owner %s:\n%s", rcpt, msg)
		}
		// The hit counted by B is in the shared store.
		if !testenv.Eventually(5*time.Second, func() bool {
			out, _ := c.cli("list", "show", "alias")
			return strings.Contains(out, "shop-x@example.jp") && hitsOf(out, "shop-x@example.jp") == "1"
		}) {
			out, _ := c.cli("list", "show", "alias")
			t.Errorf("alias hit not counted in the shared store:\n%s", out)
		}
	})

	t.Run("held-on-A-released-with-B", func(t *testing.T) {
		const stranger = "stranger@elsewhere.test"
		send(t, a.addr(), stranger, "held-a").mustPass(t)
		ids := b.heldIDs(stranger) // B's configuration sees what A holds
		if len(ids) != 1 {
			t.Fatalf("queue list with B's configuration: %v, want the message A held", ids)
		}
		for _, m := range sk.messages(t) {
			if strings.Contains(m, "marker held-a") {
				t.Fatal("the held message reached the sink before its release")
			}
		}
		t.Logf("queue release %s (B's configuration): %s", ids[0], strings.TrimSpace(b.mustCLI("queue", "release", ids[0])))
		msg := sk.waitMessage(t, "marker held-a", 10*time.Second)
		if !strings.Contains(msg, "X-Mail-Args: <"+stranger+">") {
			t.Errorf("released message lost its sender:\n%s", msg)
		}
		if n := a.heldCount(); n != 0 {
			t.Errorf("A's configuration still lists %d held messages", n)
		}
		// The release put the sender in RELAY: C lets its next message through.
		c.syncLists()
		send(t, c.addr(), stranger, "after-release-c").mustPass(t)
		sk.waitMessage(t, "marker after-release-c", 10*time.Second)
		if n := c.heldCount(); n != 0 {
			t.Errorf("C held the released sender's next message (%d held)", n)
		}
	})
}

// hitsOf returns the HITS column of key's line in `sekisho list show` output ("" if none).
func hitsOf(out, key string) string {
	lines := strings.Split(out, "\n")
	if len(lines) == 0 {
		return ""
	}
	col := slices.Index(strings.Fields(lines[0]), "HITS")
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) > 0 && f[0] == key && col >= 0 && col < len(f) {
			return f[col]
		}
	}
	return ""
}

// TestClusterKillInData: a node killed with SIGKILL in the middle of DATA loses nothing it
// answered 250 (passed or held), forwards nothing of the interrupted message, and the other
// node serves on.
func TestClusterKillInData(t *testing.T) {
	sk := startSink(t, "127.0.0.1")
	dsn, _ := testenv.PostgresSchema(t)
	a := startNode(t, "node-a", dsn, sk.addr)
	b := startNode(t, "node-b", dsn, sk.addr)
	a.mustCLI("list", "add", "white", friend)
	a.syncLists()
	b.syncLists()

	const stranger = "stranger@elsewhere.test"
	for i := 1; i <= 20; i++ {
		send(t, a.addr(), friend, fmt.Sprintf("kill-%d.", i)).mustPass(t)
		if i%4 == 0 {
			send(t, a.addr(), stranger, fmt.Sprintf("held-%d.", i)).mustPass(t)
		}
	}
	c, _ := dialFrom(t, outsideIP, a.addr())
	c.expect("EHLO "+clientHelo, "250")
	c.expect("MAIL FROM:<"+friend+">", "250")
	c.expect("RCPT TO:<"+rcpt+">", "250")
	c.expect("DATA", "354")
	c.write("Subject: interop kill-21.\r\n\r\nfirst half marker kill-21.\r\n")
	time.Sleep(100 * time.Millisecond) // the node has read the first half
	if err := a.proc.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-a.proc.done
	c.write("second half\r\n.\r\n")
	c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if reply, err := bufio.NewReader(c.conn).ReadString('\n'); err == nil {
		t.Fatalf("the killed node answered %q", reply)
	} else if err != io.EOF && !strings.Contains(err.Error(), "reset") {
		t.Logf("client after the kill: %v", err)
	}

	// Give the sink a moment for anything in flight, then count.
	time.Sleep(500 * time.Millisecond)
	var got []string
	for _, m := range sk.messages(t) {
		for i := 1; i <= 21; i++ {
			if strings.Contains(m, fmt.Sprintf("marker kill-%d.", i)) {
				got = append(got, strconv.Itoa(i))
			}
		}
	}
	if len(got) != 20 || slices.Contains(got, "21") {
		t.Errorf("the sink holds messages %v, want exactly 1..20 (each answered 250), not 21", got)
	}
	if ids := b.heldIDs(stranger); len(ids) != 5 {
		t.Errorf("queue list with B's configuration: %d held from %s, want the 5 A answered 250", len(ids), stranger)
	}
	// The cluster serves on through B.
	send(t, b.addr(), friend, "after-kill").mustPass(t)
	sk.waitMessage(t, "marker after-kill", 10*time.Second)
	t.Logf("node A killed in DATA: sink has the 20 passed messages, the queue the 5 held ones; B serves on")
}

// tcpProxy forwards a local port to target; it can be cut (every connection closed, nothing
// accepted) and restored on the same port.
type tcpProxy struct {
	t      *testing.T
	target string
	addr   string
	mu     sync.Mutex
	l      net.Listener
	conns  map[net.Conn]bool
	wg     sync.WaitGroup
}

func startTCPProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{t: t, target: target, addr: l.Addr().String(), conns: map[net.Conn]bool{}}
	p.serve(l)
	t.Cleanup(func() {
		p.cut()
		p.wg.Wait()
	})
	return p
}

func (p *tcpProxy) serve(l net.Listener) {
	p.mu.Lock()
	p.l = l
	p.mu.Unlock()
	p.wg.Go(func() {
		for {
			down, err := l.Accept()
			if err != nil {
				return
			}
			up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
			if err != nil {
				down.Close()
				continue
			}
			p.mu.Lock()
			if p.l != l { // cut meanwhile
				p.mu.Unlock()
				down.Close()
				up.Close()
				continue
			}
			p.conns[down], p.conns[up] = true, true
			p.mu.Unlock()
			pipe := func(dst, src net.Conn) {
				io.Copy(dst, src)
				dst.Close()
				src.Close()
			}
			p.wg.Go(func() { pipe(up, down) })
			p.wg.Go(func() { pipe(down, up) })
		}
	})
}

// cut closes the listener and every connection: the database is unreachable.
func (p *tcpProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.l != nil {
		p.l.Close()
		p.l = nil
	}
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// restore listens on the same address again.
func (p *tcpProxy) restore() {
	p.t.Helper()
	var l net.Listener
	if !testenv.Eventually(5*time.Second, func() bool {
		var err error
		l, err = net.Listen("tcp", p.addr)
		return err == nil
	}) {
		p.t.Fatalf("cannot listen on %s again", p.addr)
	}
	p.serve(l)
}

// loadResult counts the replies a load client got at the end of DATA.
type loadResult struct {
	mu      sync.Mutex
	ok      []string       // markers answered 250
	refused map[string]int // other final replies (or errors), by first line
}

func (r *loadResult) add(marker string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil {
		r.ok = append(r.ok, marker)
		return
	}
	if r.refused == nil {
		r.refused = map[string]int{}
	}
	msg := err.Error()
	var te *textproto.Error
	if errors.As(err, &te) {
		msg = strconv.Itoa(te.Code)
		if f := strings.Fields(te.Msg); len(f) > 0 {
			msg += " " + f[0] // "451 4.3.0"
		}
	}
	r.refused[msg]++
}

// sendLoop sends through addr from from(i), marked prefix+i+".", every 5 ms until stop
// closes, counting the replies in res.
func sendLoop(stop <-chan struct{}, addr, prefix string, res *loadResult, from func(i int) string) {
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		marker := fmt.Sprintf("%s%d.", prefix, i)
		res.add(marker, sendLoad(addr, from(i), marker))
		time.Sleep(5 * time.Millisecond)
	}
}

// markers returns the markers beginning with prefix of the messages at the sink.
func (s *sink) markers(t *testing.T, prefix string) map[string]bool {
	got := map[string]bool{}
	for _, m := range s.messages(t) {
		if i := strings.Index(m, "marker "+prefix); i >= 0 {
			got[strings.Fields(m[i+len("marker "):])[0]] = true
		}
	}
	return got
}

// queuedMarkers returns the markers beginning with prefix of the messages held in n's queue.
func (n *sekisho) queuedMarkers(prefix string) map[string]bool {
	got := map[string]bool{}
	for _, line := range strings.Split(n.mustCLI("queue", "list"), "\n") {
		if i := strings.Index(line, "interop "+prefix); i >= 0 {
			got[strings.Fields(line[i+len("interop "):])[0]] = true
		}
	}
	return got
}

// checkLoad accounts for the load's messages after a database failure (during says when):
// whitelisted mail was always answered 250 and is at the sink; mail to hold was answered 250
// or 451 4.3.0, and every one answered 250 is in the queue. A commit whose reply the failure
// lost is held although its client was told 451: the client retries, so that copy is a
// duplicate, never a loss. Only such messages may be in the queue beyond those answered 250.
func checkLoad(t *testing.T, during string, white, held *loadResult, atSink, queued map[string]bool) {
	t.Helper()
	if len(white.refused) > 0 {
		t.Errorf("whitelisted mail refused %s: %v (it must pass from memory)", during, white.refused)
	}
	for reply := range held.refused {
		if reply != "451 4.3.0" {
			t.Errorf("mail to hold answered %q, want 250 or 451 4.3.0", reply)
		}
	}
	for _, mk := range white.ok {
		if !atSink[mk] {
			t.Errorf("whitelisted message %s answered 250 is not at the sink", mk)
		}
	}
	for _, mk := range held.ok {
		if !queued[mk] {
			t.Errorf("message %s answered 250 is not in the queue", mk)
		}
	}
	if extra := len(queued) - len(held.ok); extra < 0 || extra > held.refused["451 4.3.0"] {
		t.Errorf("the queue holds %d load messages, %d were answered 250 and %d refused 451", len(queued), len(held.ok), held.refused["451 4.3.0"])
	} else if extra > 0 {
		t.Logf("%d held copies of messages refused 451 (commit reached the database, its reply did not)", extra)
	}
}

// sendLoad sends one message from the outside client through addr with net/smtp's client:
// nil when the end of DATA was answered 250.
func sendLoad(addr, from, marker string) error {
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(outsideIP)}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		return err
	}
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	c, err := smtp.NewClient(conn, "mx.interop.test")
	if err != nil {
		conn.Close()
		return err
	}
	defer c.Close()
	if err := c.Hello(clientHelo); err != nil {
		return err
	}
	if err := c.Mail(from); err != nil {
		return err
	}
	if err := c.Rcpt(rcpt); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "Subject: interop %s\r\n\r\nmarker %s\r\n", marker, marker)
	if err := w.Close(); err != nil {
		return err
	}
	c.Quit()
	return nil
}

// TestClusterDatabaseOutage: node P reaches PostgreSQL through a proxy that the test cuts
// for two seconds while clients keep sending through P. While the database is unreachable P
// answers from memory: a whitelisted sender's mail passes, mail that would have to be held
// gets 451 (nothing is accepted that cannot be stored). A list change made meanwhile on node
// Q reaches P once the proxy is back; every message answered 250 is at the sink or in the
// queue, and the mail refused with 451 is accepted when the client tries again.
func TestClusterDatabaseOutage(t *testing.T) {
	sk := startSink(t, "127.0.0.1")
	dsn, _ := testenv.PostgresSchema(t)
	u, _ := url.Parse(dsn)
	proxy := startTCPProxy(t, u.Host)
	p := startNode(t, "node-p", dsnVia(t, dsn, proxy.addr), sk.addr)
	q := startNode(t, "node-q", dsn, sk.addr)
	q.mustCLI("list", "add", "white", friend)
	p.syncLists()

	// Load through P from before the cut until after the database is back: a whitelisted
	// sender (passes) and strangers (held, one message each).
	var white, held loadResult
	stop := make(chan struct{})
	var load sync.WaitGroup
	load.Go(func() { sendLoop(stop, p.addr(), "load-white-", &white, func(int) string { return friend }) })
	load.Go(func() {
		sendLoop(stop, p.addr(), "load-held-", &held, func(i int) string { return fmt.Sprintf("load%d@elsewhere.test", i) })
	})
	stopLoad := sync.OnceFunc(func() { close(stop); load.Wait() })
	defer stopLoad()
	time.Sleep(300 * time.Millisecond)

	const stranger, latecomer = "stranger@elsewhere.test", "latecomer@elsewhere.test"
	proxy.cut()
	cutAt := time.Now()

	send(t, p.addr(), friend, "outage-white.").mustPass(t)
	sk.waitMessage(t, "marker outage-white.", 10*time.Second)
	send(t, p.addr(), stranger, "outage-held.").mustReply(t, ".", "451 4.3.0")
	// Changes made meanwhile on Q: a blacklisted IP, then a whitelisted sender.
	q.mustCLI("list", "add", "black", "127.0.0.77")
	q.mustCLI("list", "add", "white", latecomer)
	waitRefused(t, "127.0.0.77", q, 5*time.Second)
	if line, err := greeting("127.0.0.77", p.addr()); !strings.HasPrefix(line, "220") {
		t.Fatalf("P, cut off, greets 127.0.0.77 with %q (%v); want 220 from its memory", line, err)
	}
	if !testenv.Eventually(10*time.Second, func() bool { return len(p.logged("lists follow failed")) > 0 }) {
		t.Error("P did not log that it cannot follow the lists")
	}
	time.Sleep(2*time.Second - time.Since(cutAt))
	t.Logf("database cut for %v: whitelisted mail passed, mail to hold refused 451 4.3.0", time.Since(cutAt).Round(time.Millisecond))

	proxy.restore()
	restored := time.Now()
	caughtUp := waitRefused(t, "127.0.0.77", p, 15*time.Second)
	t.Logf("database back: P applied the change made meanwhile %v later", caughtUp.Sub(restored).Round(time.Millisecond))
	if !testenv.Eventually(10*time.Second, func() bool { return len(p.logged("lists follow recovered")) > 0 }) {
		t.Error("P did not log that it follows the lists again")
	}

	// The sender whitelisted meanwhile passes on P; the client's retry of the 451 is held.
	send(t, p.addr(), latecomer, "after-outage-white.").mustPass(t)
	sk.waitMessage(t, "marker after-outage-white.", 10*time.Second)
	send(t, p.addr(), stranger, "outage-held.").mustPass(t)
	if ids := q.heldIDs(stranger); len(ids) != 1 {
		t.Fatalf("after the retry: %v held from %s, want 1", ids, stranger)
	}

	// Let the load run on a little after the recovery, then account for every message.
	time.Sleep(500 * time.Millisecond)
	stopLoad()
	t.Logf("load through P: whitelisted %d answered 250, other replies %v; to hold %d answered 250, other replies %v",
		len(white.ok), white.refused, len(held.ok), held.refused)
	if held.refused["451 4.3.0"] == 0 {
		t.Error("no mail to hold was refused 451 during the outage")
	}
	atSink := sk.markers(t, "load-")
	outageHeld := len(sk.markers(t, "outage-held.")) > 0
	if len(atSink) != len(white.ok) || outageHeld {
		t.Errorf("the sink holds %d load messages (%d answered 250), and the held one: %v", len(atSink), len(white.ok), outageHeld)
	}
	checkLoad(t, "during the outage", &white, &held, atSink, q.queuedMarkers("load-"))
}
