// Package wiretap lets an SMTP session built on github.com/emersion/go-smtp
// see the RCPT paths exactly as the client sent them.
//
// go-smtp parses "RCPT TO:<...>" itself and hands Session.Rcpt a processed
// address: it silently drops source routes (<@a,@b:u@c> becomes u@c) and
// unquotes quoted local parts ("a@b"@c becomes a@b@c). A Conn wraps the
// client connection beneath go-smtp, follows the conversation in both
// directions as go-smtp conducts it, and records the raw path of each RCPT
// command, which the session fetches with NextRcpt and checks with package
// mailaddr.
//
// # Use
//
// Wrap every accepted connection before go-smtp sees it, and in
// Backend.NewSession find the Conn again with c.Conn().(*wiretap.Conn):
//
//	type listener struct{ net.Listener; tls *tls.Config }
//
//	func (l listener) Accept() (net.Conn, error) {
//		c, err := l.Listener.Accept()
//		if err != nil {
//			return nil, err
//		}
//		return wiretap.NewWithOptions(c, wiretap.Options{StartTLS: l.tls}), nil
//	}
//
// For an implicit-TLS listener (port 465), wrap the *tls.Conn instead:
// wiretap.New(tls.Server(c, cfg)).
//
// # TLS
//
// go-smtp cannot be used for TLS together with a Conn, for two reasons found
// in go-smtp v0.25.1:
//
//   - STARTTLS: conn.go handleStartTLS calls tls.Server(c.conn, ...) on the
//     connection it was given, our Conn, and reads through the result. A
//     Conn beneath go-smtp would see only ciphertext after STARTTLS, and
//     go-smtp offers no hook to put anything above its tls.Conn.
//   - implicit TLS: go-smtp recognises TLS only by the type assertion
//     c.conn.(*tls.Conn) (conn.go TLSConnectionState, server.go
//     handleConn). Wrapped in a Conn, a TLS connection looks like plaintext
//     to go-smtp: it skips its handshake, offers STARTTLS (when
//     Server.TLSConfig is set), refuses AUTH with 523 unless
//     AllowInsecureAuth, and Conn.TLSConnectionState reports no TLS. A
//     ConnectionState method cannot help: go-smtp asserts the concrete type.
//
// So a Conn owns TLS and go-smtp never does it:
//
//   - Set go-smtp's Server.TLSConfig to nil, always.
//   - STARTTLS listeners: pass the configuration in Options.StartTLS. The
//     Conn then adds STARTTLS to go-smtp's EHLO replies, answers the
//     STARTTLS command itself (go-smtp never sees it), drops whatever the
//     client pipelined after it (RFC 3207 §5, CVE-2011-0411), performs the
//     handshake, and hands go-smtp a RSET of its own, whose reply it drops,
//     so that go-smtp forgets the plaintext transaction. Unlike go-smtp's
//     own STARTTLS, the Session is not replaced, and go-smtp keeps the EHLO
//     name until the client sends EHLO again (clients must, RFC 3207 §4.2):
//     the session must not cache TLS state taken before the handshake.
//   - Implicit TLS: wrap the *tls.Conn; the Conn performs the handshake,
//     bounded by Options.HandshakeTimeout, before the greeting.
//   - Ask Conn.ConnectionState, not go-smtp's Conn.TLSConnectionState,
//     which always reports no TLS.
//   - AUTH: go-smtp refuses it on what it believes is plaintext, so set
//     Server.AllowInsecureAuth and let the session offer mechanisms
//     (AuthSession.AuthMechanisms) and accept AUTH only when
//     ConnectionState reports TLS.
//
// If go-smtp does start TLS itself (Server.TLSConfig set: a
// misconfiguration), the Conn goes blind at go-smtp's 220 reply and records
// nothing more, and the session go-smtp creates after the handshake finds
// go-smtp's *tls.Conn in c.Conn(), not a Conn.
//
// # How commands are matched
//
// The Conn mirrors go-smtp's line handling (bufio.Reader.ReadLine, parse.go
// parseCmd and parsePath) and its DATA and BDAT readers, and counts the
// final replies go-smtp writes: go-smtp handles one command at a time and
// answers each before reading the next, so while it calls Session.Rcpt for
// its n-th command, n replies have been written. A recorded path is handed
// out only for that very command and only when go-smtp's processing of it
// gives the address go-smtp passed to the session. Anything else, including
// a mismatch between the mirror and go-smtp, makes NextRcpt report false:
// the session should then refuse the recipient (451 4.3.0), never accept it
// unchecked. With go-smtp's default limits this does not happen to a client
// that follows RFC 5321, nor to one that pipelines against the rules.
//
// # DATA capture
//
// With Options.CaptureData, the Conn also reads DATA message content
// itself, in large reads, rather than let go-smtp read it one byte at a
// time: it undoes the dot-stuffing exactly as go-smtp's dataReader would,
// checks the size limit and the line endings, and hands go-smtp only an end
// marker, so that go-smtp reads an empty message; Session.Data takes the
// real one with TakeMessage. See capture.go.
//
// A Conn serves one go-smtp server connection (SMTP, not LMTP); everything
// written to it must be go-smtp's replies.
package wiretap

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

const (
	// DefaultHandshakeTimeout bounds a TLS handshake when
	// Options.HandshakeTimeout is zero.
	DefaultHandshakeTimeout = time.Minute
	// DefaultMaxLineLength is go-smtp's default Server.MaxLineLength. A
	// longer command line is counted but not recorded; go-smtp closes the
	// connection on one anyway.
	DefaultMaxLineLength = 2000
)

// Options configures a Conn. The zero value records RCPT paths and does no
// STARTTLS.
type Options struct {
	// StartTLS, if not nil, makes the Conn offer and answer STARTTLS with
	// this configuration (see the package documentation). go-smtp's
	// Server.TLSConfig must then be nil.
	StartTLS *tls.Config
	// HandshakeTimeout bounds a TLS handshake, after STARTTLS or on an
	// implicit-TLS connection; zero means DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// MaxLineLength is the longest command line recorded; zero means
	// DefaultMaxLineLength. Set it to go-smtp's Server.MaxLineLength if
	// that is changed, or to -1 if that is turned off (zero or less): it
	// is also go-smtp's line limit, which the Conn applies to message
	// content it captures.
	MaxLineLength int
	// CaptureData, if positive, makes the Conn take the content of DATA
	// commands off go-smtp's hands: go-smtp reads an empty message, and
	// the session fetches the real one with TakeMessage (see capture.go).
	// It is the size limit: set it to go-smtp's Server.MaxMessageBytes.
	// Zero leaves the content to go-smtp.
	CaptureData int64
}

// Conn is a client connection that records the raw RCPT paths go-smtp
// reads through it. Read and Write are for go-smtp; NextRcpt and the other
// methods are for the session.
type Conn struct {
	net.Conn // the connection wrapped: TCP, or TLS for implicit TLS

	opts     Options
	implicit *tls.Conn // the wrapped connection, if it is a *tls.Conn
	hsOnce   sync.Once
	hsErr    error

	mu       sync.Mutex
	sc       *scanner
	tls      *tls.Conn // TLS in use: implicit, or started by STARTTLS
	broken   error     // a failed STARTTLS handshake: the stream is garbage
	writeErr error     // the first failed write; later replies are dropped
	wpend    []byte    // continuation lines of a reply, written with its last line

	// Used by the reading goroutine only.
	out     []byte // scanned bytes for go-smtp
	outErr  error  // error to return with the last of out
	outBuf  []byte // backing of out after a capture
	held    []byte // an intercepted STARTTLS line and what followed it
	pending bool   // held is waiting for go-smtp to answer what came before
	readErr error  // error to return once out is drained
	capt    capture
	tooLong bool // captured content broke go-smtp's line limit: reads fail

	done message // a captured message for TakeMessage; under mu
}

var _ net.Conn = (*Conn)(nil)

// New wraps c with the zero Options.
func New(c net.Conn) *Conn {
	return NewWithOptions(c, Options{})
}

// NewWithOptions wraps c. If c is a *tls.Conn, the connection uses
// implicit TLS and opts.StartTLS is ignored.
func NewWithOptions(c net.Conn, opts Options) *Conn {
	w := &Conn{Conn: c, opts: opts}
	if tc, ok := c.(*tls.Conn); ok {
		w.implicit, w.tls = tc, tc
		w.opts.StartTLS = nil
	}
	if w.opts.HandshakeTimeout <= 0 {
		w.opts.HandshakeTimeout = DefaultHandshakeTimeout
	}
	w.sc = newScanner(opts.MaxLineLength, w.opts.StartTLS != nil)
	if opts.CaptureData > 0 {
		w.sc.capture = true
		w.capt.limit = opts.CaptureData
		w.capt.lineMax = max(opts.MaxLineLength, 0)
		if opts.MaxLineLength == 0 {
			w.capt.lineMax = DefaultMaxLineLength
		}
	}
	return w
}

// NextRcpt returns the raw path of the RCPT command go-smtp is handling,
// such as "<@relay:user@victim>", given the address go-smtp passed to
// Session.Rcpt. Call it once from Session.Rcpt. ok is false if the path is
// unknown: the command was not recorded (too long a line, TLS started by
// go-smtp), or it does not match processed.
func (c *Conn) NextRcpt(processed string) (raw string, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sc.nextRcpt(processed)
}

// Reset drops the recorded paths not yet fetched. It is not needed in the
// normal course: paths are dropped when go-smtp answers their command.
func (c *Conn) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sc.rcpts = nil
}

// Blind reports whether the Conn has stopped following the conversation:
// go-smtp started TLS itself, or the client broke a limit. NextRcpt then
// always reports false.
func (c *Conn) Blind() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sc.mode == modeBlind
}

// ConnectionState returns the TLS state of the connection and true, or
// false if it does not use TLS (yet).
func (c *Conn) ConnectionState() (tls.ConnectionState, bool) {
	c.mu.Lock()
	tc := c.tls
	c.mu.Unlock()
	if tc == nil {
		return tls.ConnectionState{}, false
	}
	st := tc.ConnectionState()
	return st, st.HandshakeComplete
}

// Read reads from the client for go-smtp.
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if err := c.handshake(); err != nil {
		return 0, err
	}
	for {
		if len(c.out) > 0 {
			n := copy(p, c.out)
			c.out = c.out[n:]
			if err := c.outErr; len(c.out) == 0 && err != nil {
				c.outErr = nil
				return n, err
			}
			return n, nil
		}
		if c.pending {
			if err := c.startTLS(); err != nil {
				return 0, err
			}
			continue
		}
		if err := c.readErr; err != nil {
			c.readErr = nil
			return 0, err
		}
		if c.tooLong {
			return 0, smtp.ErrTooLongLine
		}
		c.mu.Lock()
		broken := c.broken
		capturing := c.sc.capturingData()
		c.mu.Unlock()
		if broken != nil {
			return 0, broken
		}
		if capturing {
			progress, err := c.captureRead()
			if err != nil {
				return 0, err
			}
			if !progress {
				return 0, nil
			}
			continue
		}

		n, err := c.transport().Read(p)
		c.mu.Lock()
		k, intercept := c.sc.client(p[:n], true)
		if err != nil && !intercept {
			c.sc.clientErr()
		}
		c.mu.Unlock()
		if !intercept {
			return n, err
		}
		c.held = append(c.held[:0], p[k:n]...)
		c.pending = true
		c.readErr = err
		if k > 0 {
			// go-smtp first handles what came before STARTTLS; its
			// next Read finds everything answered.
			return k, nil
		}
	}
}

// startTLS answers an intercepted STARTTLS command once go-smtp has
// answered everything before it.
func (c *Conn) startTLS() error {
	c.pending = false
	held := c.held
	c.held = nil
	c.mu.Lock()
	ready := c.readErr == nil && c.sc.readyForTLS()
	if !ready {
		c.sc.blind()
	}
	c.mu.Unlock()
	if !ready {
		// Not expected: go-smtp is not where the mirror thinks. Let
		// go-smtp answer the command (with 502, having no TLSConfig) and
		// record nothing more.
		c.out = append(c.out[:0], held...)
		return nil
	}

	// RFC 3207 §4.2, §5: what the client pipelined after STARTTLS (held,
	// after the command line) is discarded, never read as commands.
	raw := c.Conn
	deadline := time.Now().Add(c.opts.HandshakeTimeout)
	_ = raw.SetWriteDeadline(deadline)
	_, err := io.WriteString(raw, replyStartTLS)
	if err == nil {
		tc := tls.Server(raw, c.opts.StartTLS)
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		err = tc.HandshakeContext(ctx)
		cancel()
		if err == nil {
			// go-smtp sets its own deadline before each reply, if any.
			_ = raw.SetWriteDeadline(time.Time{})
			c.mu.Lock()
			c.tls = tc
			c.sc.startedTLS()
			c.mu.Unlock()
			c.out = append(c.out[:0], cmdReset...)
			return nil
		}
	}
	c.mu.Lock()
	c.broken = err
	c.sc.blind()
	c.mu.Unlock()
	return err
}

// handshake completes the handshake of an implicit-TLS connection, bounded
// by the timeout; go-smtp does not, as it does not know it is TLS.
func (c *Conn) handshake() error {
	if c.implicit == nil {
		return nil
	}
	c.hsOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), c.opts.HandshakeTimeout)
		defer cancel()
		c.hsErr = c.implicit.HandshakeContext(ctx)
	})
	return c.hsErr
}

// transport is what the client bytes travel on now.
func (c *Conn) transport() net.Conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tls != nil {
		return c.tls
	}
	return c.Conn
}

// Write writes go-smtp's replies to the client.
//
// When writing fails, Write closes the connection and reports success, now
// and for every later call: go-smtp writes through a bufio.Writer, which
// after one error passes nothing on, and go-smtp carries on with the
// commands it has buffered; the Conn must still see those replies to keep
// count. (go-smtp ignores write errors anyway.)
func (c *Conn) Write(p []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	c.mu.Lock()
	if err := c.broken; err != nil {
		c.mu.Unlock()
		return 0, err
	}
	out := c.sc.reply(p)
	failed := c.writeErr != nil
	if len(out) > 0 && !failed && continued(out) && len(c.wpend)+len(out) <= maxPendingReply {
		// go-smtp writes a multi-line reply (EHLO) one line per system call; the lines
		// before the last are kept and go out with it, in one write.
		c.wpend = append(c.wpend, out...)
		c.mu.Unlock()
		return len(p), nil
	}
	if len(c.wpend) > 0 && len(out) > 0 && !failed {
		out = append(c.wpend, out...)
		c.wpend = c.wpend[:0:0]
	}
	c.mu.Unlock()
	if len(out) == 0 || failed {
		return len(p), nil
	}
	t := c.transport()
	if _, err := t.Write(out); err != nil {
		c.mu.Lock()
		c.writeErr = err
		c.mu.Unlock()
		_ = t.Close()
	}
	return len(p), nil
}

// maxPendingReply bounds the continuation lines kept back for one reply.
const maxPendingReply = 16 << 10

// continued reports whether the last line in b is a continuation line of a multi-line reply
// ("250-..."), so more lines of the same reply follow.
func continued(b []byte) bool {
	b = bytes.TrimSuffix(b, []byte("\r\n"))
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		b = b[i+1:]
	}
	return len(b) >= 4 && b[3] == '-'
}

// Close closes the connection, with a TLS close_notify if TLS is in use.
func (c *Conn) Close() error {
	return c.transport().Close()
}
