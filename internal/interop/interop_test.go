package interop

import (
	"bytes"
	"crypto/tls"
	"encoding/pem"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/testenv"
)

const (
	outsideIP  = "127.0.0.2"         // an outside client: not in relay_networks
	clientHelo = "swaks-client.test" // the HELO of our test clients
	friend     = "friend@partner.test"
	rcpt       = "taro@example.jp"
)

// send runs swaks from the outside client to addr with a unique body marker.
func send(t *testing.T, addr, from, marker string, extra ...string) swaksResult {
	t.Helper()
	args := append(serverArgs(addr), "--ehlo", clientHelo, "-f", from, "-t", rcpt,
		"--header", "Subject: interop "+marker, "--body", "body line one\nmarker "+marker+"\nlast line")
	if host := hostOf(addr); net.ParseIP(host).To4() != nil {
		args = append(args, "--local-interface", outsideIP)
	}
	return swaks(t, append(args, extra...)...)
}

// TestSinkWhitelistAndHold: a whitelisted sender's mail reaches smtp-sink with our Received
// header and the body intact; an unknown sender's mail is held (250), not forwarded, listed by
// `sekisho queue list`, and forwarded by `sekisho queue release`.
func TestSinkWhitelistAndHold(t *testing.T) {
	sk := startSink(t, "127.0.0.1")
	s := startSekisho(t, sekishoConf{servers: []string{sk.addr}})

	// Whitelisted through the CLI while the server runs (another process).
	s.mustCLI("list", "add", "white", friend)
	s.syncLists()

	send(t, s.addr(), friend, "white-1").mustPass(t)
	msg := sk.waitMessage(t, "marker white-1", 10*time.Second)
	if !receivedRE(clientHelo, outsideIP, "ESMTP").MatchString(msg) {
		t.Errorf("no Received header of sekisho for [%s] in:\n%s", outsideIP, msg)
	}
	if !strings.Contains(msg, "body line one\r\nmarker white-1\r\nlast line\r\n") &&
		!strings.Contains(msg, "body line one\nmarker white-1\nlast line\n") {
		t.Errorf("body not intact:\n%s", msg)
	}
	if !strings.Contains(msg, "Subject: interop white-1") {
		t.Errorf("header lost:\n%s", msg)
	}

	// Unknown sender: 250, held, nothing at the sink.
	const stranger = "stranger@elsewhere.test"
	send(t, s.addr(), stranger, "held-1").mustPass(t)
	ids := s.heldIDs(stranger)
	if len(ids) != 1 {
		t.Fatalf("queue list: want 1 held message from %s, got %v:\n%s", stranger, ids, s.mustCLI("queue", "list"))
	}
	if n := len(sk.messages(t)); n != 1 {
		t.Fatalf("sink holds %d messages after the held one, want 1 (the whitelisted one)", n)
	}
	show := s.mustCLI("queue", "show", ids[0])
	if !strings.Contains(show, "marker held-1") || !receivedRE(clientHelo, outsideIP, "ESMTP").MatchString(show) {
		t.Errorf("queue show %s lacks the body or our Received header:\n%s", ids[0], show)
	}

	// Released: forwarded to the sink, gone from the queue.
	out := s.mustCLI("queue", "release", ids[0])
	t.Logf("queue release: %s", strings.TrimSpace(out))
	rel := sk.waitMessage(t, "marker held-1", 10*time.Second)
	if !strings.Contains(rel, "X-Mail-Args: <"+stranger+">") {
		t.Errorf("released message lost its sender:\n%s", rel)
	}
	if n := s.heldCount(); n != 0 {
		t.Errorf("queue list after release: %d held, want 0", n)
	}
}

// TestClientSTARTTLS: swaks --tls to a starttls listener; a require_tls listener refuses MAIL
// before STARTTLS with 530.
func TestClientSTARTTLS(t *testing.T) {
	sk := startSink(t, "127.0.0.1")
	s := startSekisho(t, sekishoConf{
		listeners: []listenerConf{{tls: "starttls"}, {tls: "starttls", requireTLS: true}},
		servers:   []string{sk.addr},
		white:     []string{friend},
	})
	plain, strict := s.addrs[0], s.addrs[1]

	r := send(t, plain, friend, "tls-1", "--tls")
	r.mustPass(t)
	if !strings.Contains(r.out, "STARTTLS") || !strings.Contains(r.out, "TLS started") {
		t.Errorf("swaks did not negotiate TLS:\n%s", r.out)
	}
	msg := sk.waitMessage(t, "marker tls-1", 10*time.Second)
	if !receivedRE(clientHelo, outsideIP, "ESMTPS").MatchString(msg) {
		t.Errorf("Received header does not say ESMTPS:\n%s", msg)
	}

	// require_tls: MAIL without STARTTLS is refused; with --tls it passes.
	send(t, strict, friend, "tls-2").mustReply(t, "MAIL", "530 5.7.0")
	send(t, strict, friend, "tls-3", "--tls").mustPass(t)
	sk.waitMessage(t, "marker tls-3", 10*time.Second)
	for _, m := range sk.messages(t) {
		if strings.Contains(m, "marker tls-2") {
			t.Errorf("the message refused with 530 reached the sink")
		}
	}

	// The certificate served is the self-signed one sekisho generated in data_dir.
	c, _ := dialFrom(t, outsideIP, plain)
	c.expect("EHLO "+clientHelo, "250")
	c.expect("STARTTLS", "220")
	tc := tls.Client(c.conn, &tls.Config{InsecureSkipVerify: true, ServerName: "mx.interop.test"})
	if err := tc.Handshake(); err != nil {
		t.Fatalf("TLS handshake: %v", err)
	}
	defer tc.Close()
	served := tc.ConnectionState().PeerCertificates[0]
	if !dataDirHasCert(t, s.dataDir, served.Raw) {
		t.Errorf("the certificate served (subject %q) is not in data_dir %s", served.Subject, s.dataDir)
	}
}

// dataDirHasCert reports whether a PEM file under dir holds the certificate der.
func dataDirHasCert(t *testing.T, dir string, der []byte) bool {
	t.Helper()
	found := false
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		rest, _ := os.ReadFile(path)
		for {
			var b *pem.Block
			b, rest = pem.Decode(rest)
			if b == nil {
				return nil
			}
			if b.Type == "CERTIFICATE" && bytes.Equal(b.Bytes, der) {
				found = true
			}
		}
	})
	return found
}

// TestUpstreamSTARTTLS: the upstream is a real Postfix smtpd offering STARTTLS and sekisho's
// upstream tls = "required"; Postfix logs the TLS session, and the mail reaches the sink.
func TestUpstreamSTARTTLS(t *testing.T) {
	sk := startSink(t, "127.0.0.1")
	pf := startPostfix(t, sk.addr, true)
	s := startSekisho(t, sekishoConf{servers: []string{pf.addr}, upstreamTLS: "required", white: []string{friend}})

	send(t, s.addr(), friend, "uptls-1").mustPass(t)
	pf.waitLog(t, regexp.MustCompile(`postfix/smtpd\[\d+\]: (Anonymous )?TLS connection established from \S*\[127\.0\.0\.1\]`), 20*time.Second)
	sk.waitMessage(t, "marker uptls-1", 30*time.Second)
}

// TestIPv6 crosses address families: an IPv6 client to an IPv4 upstream, and an IPv4
// client to an IPv6 upstream.
func TestIPv6(t *testing.T) {
	requireIPv6(t)
	t.Run("client6-upstream4", func(t *testing.T) {
		sk := startSink(t, "127.0.0.1")
		s := startSekisho(t, sekishoConf{listeners: []listenerConf{{address: "[::1]:0"}}, servers: []string{sk.addr}, white: []string{friend}})
		if !strings.HasPrefix(s.addr(), "[::1]:") {
			t.Fatalf("listener bound %s, want [::1]", s.addr())
		}
		// A plain Go client first (needs nothing but the kernel), then swaks.
		c, greet := dialFrom(t, "", s.addr())
		if !strings.HasPrefix(greet, "220") {
			t.Fatalf("greeting %q", greet)
		}
		c.expect("EHLO "+clientHelo, "250")
		c.expect("MAIL FROM:<"+friend+">", "250")
		c.expect("RCPT TO:<"+rcpt+">", "250")
		c.expect("DATA", "354")
		c.expect("Subject: v6\r\n\r\nmarker v6-0\r\n.", "250")
		c.expect("QUIT", "221")
		msg := sk.waitMessage(t, "marker v6-0", 10*time.Second)
		if !receivedRE(clientHelo, "::1", "ESMTP").MatchString(msg) {
			t.Errorf("Received header does not name the IPv6 client:\n%s", msg)
		}

		requireSwaksIPv6(t)
		send(t, s.addr(), friend, "v6-1").mustPass(t)
		msg = sk.waitMessage(t, "marker v6-1", 10*time.Second)
		if !receivedRE(clientHelo, "::1", "ESMTP").MatchString(msg) {
			t.Errorf("Received header does not name the IPv6 client:\n%s", msg)
		}
	})
	t.Run("client4-upstream6", func(t *testing.T) {
		sk := startSink(t, "::1")
		s := startSekisho(t, sekishoConf{servers: []string{sk.addr}, white: []string{friend}})
		send(t, s.addr(), friend, "v6-2").mustPass(t)
		msg := sk.waitMessage(t, "marker v6-2", 10*time.Second)
		if !receivedRE(clientHelo, outsideIP, "ESMTP").MatchString(msg) {
			t.Errorf("Received header does not name the client:\n%s", msg)
		}
		if !strings.Contains(msg, "X-Client-Addr: ipv6:::1") { // the sink saw sekisho come over IPv6
			t.Errorf("smtp-sink's X-Client-Addr is not ::1:\n%s", msg)
		}
	})
}

// TestFailover: with balance "ordered" a dead first server is skipped; with every server
// dead the client gets 451 4.4.1 at RCPT and nothing is held.
func TestFailover(t *testing.T) {
	t.Run("dead-then-live", func(t *testing.T) {
		sk := startSink(t, "127.0.0.1")
		dead := deadAddr(t)
		s := startSekisho(t, sekishoConf{servers: []string{dead, sk.addr}, balance: "ordered", white: []string{friend}})
		for i := range 3 {
			marker := fmt.Sprintf("failover-%d", i)
			send(t, s.addr(), friend, marker).mustPass(t)
			sk.waitMessage(t, "marker "+marker, 10*time.Second)
		}
		for _, rec := range s.transactions() {
			if rec["upstream"] != sk.addr {
				t.Errorf("transaction went to %v, want %s: %v", rec["upstream"], sk.addr, rec)
			}
		}
	})
	t.Run("all-dead", func(t *testing.T) {
		s := startSekisho(t, sekishoConf{servers: []string{deadAddr(t), deadAddr(t)}, balance: "ordered", white: []string{friend}})
		send(t, s.addr(), friend, "dead-1").mustReply(t, "RCPT", "451 4.4.1")
		send(t, s.addr(), "stranger@elsewhere.test", "dead-2").mustReply(t, "RCPT", "451 4.4.1")
		if n := s.heldCount(); n != 0 {
			t.Errorf("%d messages held with every upstream down, want 0", n)
		}
	})
}

// TestUpstreamRefusal: the upstream's refusal reaches the client unchanged — at RCPT time
// (each recipient is verified with the upstream first) or after the data — and nothing is
// held.
func TestUpstreamRefusal(t *testing.T) {
	for _, tc := range []struct {
		name, cmd string
		sinkArgs  []string
		reply     string
	}{
		{"rcpt-5xx", "RCPT", []string{"-B", "550 5.1.1 No such user here", "-f", "RCPT"}, "550 5.1.1"},
		{"rcpt-4xx", "RCPT", []string{"-b", "452 4.2.2 Mailbox full", "-r", "RCPT"}, "452 4.2.2"},
		{"data-5xx", ".", []string{"-B", "554 5.6.0 Content refused", "-f", "."}, "554 5.6.0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sk := startSink(t, "127.0.0.1", tc.sinkArgs...)
			s := startSekisho(t, sekishoConf{servers: []string{sk.addr}, white: []string{friend}})
			send(t, s.addr(), friend, tc.name).mustReply(t, tc.cmd, tc.reply)
			// An unknown sender's mail to a refused mailbox is refused too, not held.
			if tc.cmd == "RCPT" {
				send(t, s.addr(), "stranger@elsewhere.test", tc.name).mustReply(t, tc.cmd, tc.reply)
			}
			if n := s.heldCount(); n != 0 {
				t.Errorf("%d messages held, want 0", n)
			}
		})
	}
}

// TestXForwardPostfix: the upstream is a real Postfix relay that trusts us for XFORWARD; its
// log names the original client 127.0.0.2, not sekisho's 127.0.0.1, and the mail goes on to
// the sink.
func TestXForwardPostfix(t *testing.T) {
	sk := startSink(t, "127.0.0.1")
	pf := startPostfix(t, sk.addr, false)
	s := startSekisho(t, sekishoConf{servers: []string{pf.addr}, white: []string{friend}})

	send(t, s.addr(), friend, "xfwd-1").mustPass(t)
	// Postfix 3.7 logs "QID: client=unknown[127.0.0.1], orig_client=unknown[127.0.0.2]" for
	// an XFORWARD session (older versions: "client=unknown[127.0.0.2]"): either way the
	// message's client line names the original client.
	m := pf.waitLog(t, regexp.MustCompile(`postfix/smtpd\[\d+\]: ([0-9A-F]+): (client=[^\n]*\[127\.0\.0\.2\][^\n]*)`), 20*time.Second)
	qid := m[1]
	t.Logf("postfix: %s: %s", qid, m[2])
	pf.waitLog(t, regexp.MustCompile(regexp.QuoteMeta(qid)+`: to=<`+regexp.QuoteMeta(rcpt)+`>, relay=\S+, .*status=sent`), 30*time.Second)
	msg := sk.waitMessage(t, "marker xfwd-1", 10*time.Second)
	if !receivedRE(clientHelo, outsideIP, "ESMTP").MatchString(msg) {
		t.Errorf("sekisho's Received header lost on the way through Postfix:\n%s", msg)
	}
	// Postfix's own Received header names the forwarded client too.
}

// TestSmuggling: bare LF (and bare CR) inside DATA — including the "\n.\n" end-of-data that
// SMTP smuggling relies on — is refused whole with 550 5.6.0; nothing reaches the sink, and
// the session stays in step (the smuggled commands are never run).
func TestSmuggling(t *testing.T) {
	sk := startSink(t, "127.0.0.1")
	s := startSekisho(t, sekishoConf{servers: []string{sk.addr}, white: []string{friend}})
	c, greet := dialFrom(t, outsideIP, s.addr())
	if !strings.HasPrefix(greet, "220") {
		t.Fatalf("greeting %q", greet)
	}
	c.expect("EHLO "+clientHelo, "250")

	bodies := map[string]string{
		"lf-dot-lf":    "Subject: smuggle\r\n\r\nhello\n.\nMAIL FROM:<evil@attacker.test>\nRCPT TO:<" + rcpt + ">\nDATA\nsmuggled-1\n.\n",
		"cr-lf-dot-lf": "Subject: smuggle\r\n\r\nhello\r\n.\nMAIL FROM:<evil@attacker.test>\r\nRCPT TO:<" + rcpt + ">\r\nDATA\r\nsmuggled-2\r\n",
		"bare-lf":      "Subject: bare\r\n\r\nline one\nsmuggled-3\r\n",
		"bare-cr":      "Subject: bare\r\n\r\nline one\rsmuggled-4\r\n",
		"lf-dot-cr-lf": "Subject: smuggle\r\n\r\nhello\n.\r\nsmuggled-5\r\n",
	}
	for _, name := range []string{"lf-dot-lf", "cr-lf-dot-lf", "bare-lf", "bare-cr", "lf-dot-cr-lf"} {
		c.expect("MAIL FROM:<"+friend+">", "250")
		c.expect("RCPT TO:<"+rcpt+">", "250")
		c.expect("DATA", "354")
		c.write(bodies[name] + "\r\n.\r\n")
		if r := c.read(); !strings.HasPrefix(r, "550 5.6.0") {
			t.Errorf("%s: end of data answered %q, want 550 5.6.0", name, r)
		}
		// In step: the next command gets its own reply, not one for a smuggled command.
		c.expect("RSET", "250")
	}
	// A clean message in the same session passes; once it is at the sink, nothing else can
	// still be on its way.
	c.expect("MAIL FROM:<"+friend+">", "250")
	c.expect("RCPT TO:<"+rcpt+">", "250")
	c.expect("DATA", "354")
	c.write("Subject: clean\r\n\r\nclean-marker\r\n.\r\n")
	if r := c.read(); !strings.HasPrefix(r, "250") {
		t.Fatalf("clean message: %q", r)
	}
	c.expect("QUIT", "221")
	sk.waitMessage(t, "clean-marker", 10*time.Second)
	msgs := sk.messages(t)
	if len(msgs) != 1 {
		t.Errorf("sink holds %d messages, want only the clean one", len(msgs))
	}
	for _, m := range msgs {
		if strings.Contains(m, "smuggled") || strings.Contains(m, "evil@attacker.test") {
			t.Errorf("smuggled content reached the sink:\n%s", m)
		}
	}
}

// TestRejections: a source-routed RCPT is refused 553 5.1.3 and never forwarded; a decoy is
// refused 550 and blacklists the client, whose next connection is greeted 554.
func TestRejections(t *testing.T) {
	sk := startSink(t, "127.0.0.1")
	s := startSekisho(t, sekishoConf{servers: []string{sk.addr}, white: []string{friend}})

	t.Run("source-route", func(t *testing.T) {
		c, _ := dialFrom(t, outsideIP, s.addr())
		c.expect("EHLO "+clientHelo, "250")
		c.expect("MAIL FROM:<"+friend+">", "250")
		c.expect("RCPT TO:<@relay.example.jp:"+rcpt+">", "553 5.1.3")
		c.expect("RCPT TO:<@a.example.jp,@b.example.jp:"+rcpt+">", "553 5.1.3")
		c.expect("QUIT", "221")
	})

	t.Run("decoy", func(t *testing.T) {
		s.mustCLI("list", "add", "decoy", "trap@example.jp")
		s.syncLists()
		c, _ := dialFrom(t, "127.0.0.3", s.addr())
		c.expect("EHLO "+clientHelo, "250")
		c.expect("MAIL FROM:<"+friend+">", "250")
		c.expect("RCPT TO:<trap@example.jp>", "550")
		c.expect("RCPT TO:<"+rcpt+">", "5") // everything after a decoy hit is refused
		c.cmd("QUIT")

		c2, greet := dialFrom(t, "127.0.0.3", s.addr())
		if !strings.HasPrefix(greet, "554") {
			t.Errorf("greeting after a decoy hit: %q, want 554", greet)
		}
		c2.expect("QUIT", "221")
		if out := s.mustCLI("list", "show", "black", "127.0.0.3"); !strings.Contains(out, "127.0.0.3") {
			t.Errorf("list show black: no entry for 127.0.0.3:\n%s", out)
		}
	})

	if n := len(sk.messages(t)); n != 0 {
		t.Errorf("sink holds %d messages, want 0", n)
	}
}

// TestGracefulShutdown: SIGTERM in the middle of DATA; the transaction finishes (250, at the
// sink), new connections are refused, and the process exits 0 within the grace period.
func TestGracefulShutdown(t *testing.T) {
	sk := startSink(t, "127.0.0.1")
	s := startSekisho(t, sekishoConf{servers: []string{sk.addr}, white: []string{friend}})
	c, _ := dialFrom(t, outsideIP, s.addr())
	c.expect("EHLO "+clientHelo, "250")
	c.expect("MAIL FROM:<"+friend+">", "250")
	c.expect("RCPT TO:<"+rcpt+">", "250")
	c.expect("DATA", "354")
	c.write("Subject: graceful\r\n\r\nfirst half\r\n")

	termAt := time.Now()
	s.terminate()
	if !testenv.Eventually(10*time.Second, func() bool { return len(s.logged("shutting down")) > 0 }) {
		t.Fatal("sekisho did not log \"shutting down\" after SIGTERM")
	}
	// The listener closes: new clients are turned away.
	if !testenv.Eventually(5*time.Second, func() bool {
		nc, err := net.DialTimeout("tcp", s.addr(), time.Second)
		if err != nil {
			return true
		}
		nc.Close()
		return false
	}) {
		t.Error("the listener still accepts connections after SIGTERM")
	}
	if s.proc.exited() {
		t.Fatalf("sekisho exited with a transaction in progress: %v", s.proc.err)
	}

	c.write("second half graceful-marker\r\n.\r\n")
	if r := c.read(); !strings.HasPrefix(r, "250") {
		t.Fatalf("end of data after SIGTERM: %q, want 250", r)
	}
	if r := c.cmd("QUIT"); !strings.HasPrefix(r, "221") {
		t.Errorf("QUIT: %q", r)
	}
	msg := sk.waitMessage(t, "graceful-marker", 10*time.Second)
	if !strings.Contains(msg, "first half") {
		t.Errorf("first half lost:\n%s", msg)
	}

	select {
	case <-s.proc.done:
	case <-time.After(35 * time.Second): // the grace period is 30 s
		t.Fatal("sekisho did not exit within the grace period")
	}
	if s.proc.err != nil {
		t.Errorf("sekisho exit: %v, want status 0", s.proc.err)
	}
	t.Logf("exited %v after SIGTERM (the transaction finished in between)", time.Since(termAt).Round(time.Millisecond))
}
