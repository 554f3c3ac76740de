package upstream

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"
)

const (
	// maxReplyBytes bounds one reply, all its lines, far above what any
	// real server sends, so that a broken one cannot fill our memory.
	maxReplyBytes = 64 << 10
	// maxCommandLine is the longest command line, CRLF included
	// (RFC 5321 §4.5.3.1.4).
	maxCommandLine = 512
	// pipelineBatch bounds the commands written before their replies are
	// read, so that neither side's socket buffers can fill up.
	pipelineBatch = 100
	// quitTimeout bounds saying goodbye.
	quitTimeout = 2 * time.Second
)

// aLongTimeAgo is a deadline in the past: it fails all pending and future
// I/O at once.
var aLongTimeAgo = time.Unix(1, 0)

// conn is one SMTP client connection to an upstream server. It is used by
// one goroutine at a time: the Send that took it from the pool.
type conn struct {
	raw  net.Conn // the TCP connection: deadlines, close
	nc   net.Conn // raw, or the TLS client on top of it
	br   *bufio.Reader
	text *textproto.Reader
	in   budgetReader // between br and nc
	w    *bufio.Writer
	out  countWriter // between w and nc

	s    *server
	opts *Options
	log  *slog.Logger

	ext map[string]string // EHLO keywords, upper case, to their parameters; nil after HELO
	tls bool

	used    time.Time   // when the last transaction ended
	broken  bool        // unfit for another transaction
	aborted atomic.Bool // a context was cancelled: all I/O fails from now on
}

func newConn(nc net.Conn, s *server, opts *Options, log *slog.Logger) *conn {
	c := &conn{raw: nc, s: s, opts: opts, log: log}
	c.setTransport(nc)
	return c
}

// setTransport layers the buffered reader and writer over nc, dropping
// whatever was buffered for the previous transport.
func (c *conn) setTransport(nc net.Conn) {
	c.nc = nc
	c.in = budgetReader{r: nc}
	c.out = countWriter{w: nc}
	c.br = bufio.NewReader(&c.in)
	c.text = textproto.NewReader(c.br)
	c.w = bufio.NewWriterSize(&c.out, writeBuffer)
}

// writeBuffer is the size of a connection's write buffer: a message goes out in a few large
// writes rather than one system call per 4 KB.
const writeBuffer = 64 << 10

// guard runs f with a cancellation of ctx failing c's I/O, which deadlines
// alone would not do for a context without a deadline. A connection whose
// context was cancelled is not used again.
func (c *conn) guard(ctx context.Context, f func() error) error {
	stop := context.AfterFunc(ctx, func() {
		c.aborted.Store(true)
		c.raw.SetDeadline(aLongTimeAgo)
	})
	err := f()
	if !stop() {
		c.broken = true
		if err == nil {
			err = ctx.Err()
		}
	}
	return err
}

// deadline bounds the next I/O to d from now, or ctx's deadline if sooner.
func (c *conn) deadline(ctx context.Context, d time.Duration) {
	t := time.Now().Add(d)
	if dl, ok := ctx.Deadline(); ok && dl.Before(t) {
		t = dl
	}
	c.raw.SetDeadline(t)
	// guard's cancellation may have run between our reading the clock and
	// setting the deadline: it must win.
	if c.aborted.Load() {
		c.raw.SetDeadline(aLongTimeAgo)
	}
}

// has reports whether the server offered the EHLO keyword ext.
func (c *conn) has(ext string) bool {
	_, ok := c.ext[ext]
	return ok
}

// write buffers one command line.
func (c *conn) write(ctx context.Context, line string) {
	if c.log.Enabled(ctx, slog.LevelDebug) {
		c.log.Debug("smtp send", "cmd", line)
	}
	c.w.WriteString(line)
	c.w.WriteString("\r\n")
}

// flush sends the buffered commands.
func (c *conn) flush(ctx context.Context, timeout time.Duration) error {
	c.deadline(ctx, timeout)
	if err := c.w.Flush(); err != nil {
		c.broken = true
		return err
	}
	return nil
}

// read reads one reply.
func (c *conn) read(ctx context.Context, timeout time.Duration, what string) (reply, error) {
	c.deadline(ctx, timeout)
	c.in.n = maxReplyBytes
	code, msg, err := c.text.ReadResponse(0)
	if err != nil {
		c.broken = true
		return reply{}, fmt.Errorf("%s: %w", what, err)
	}
	if c.log.Enabled(ctx, slog.LevelDebug) {
		c.log.Debug("smtp reply", "to", what, "code", code, "msg", msg)
	}
	if code == 421 {
		// The server is closing the connection (RFC 5321 §3.8).
		c.broken = true
	}
	return reply{code, msg}, nil
}

// cmd sends one command and reads its reply.
func (c *conn) cmd(ctx context.Context, timeout time.Duration, line string) (reply, error) {
	c.write(ctx, line)
	what := verb(line)
	if err := c.flush(ctx, timeout); err != nil {
		return reply{}, fmt.Errorf("send %s: %w", what, err)
	}
	return c.read(ctx, timeout, what)
}

// hello reads the greeting, introduces us and starts TLS under the policy
// mode.
func (c *conn) hello(ctx context.Context, mode string) error {
	r, err := c.read(ctx, c.opts.CommandTimeout, "greeting")
	if err != nil {
		return err
	}
	if r.code != 220 {
		return fmt.Errorf("greeting: %w", r.err())
	}
	if err := c.ehlo(ctx); err != nil {
		return err
	}
	if mode == TLSNone {
		return nil
	}
	if !c.has("STARTTLS") {
		if mode == TLSOpportunistic {
			return nil
		}
		return errors.New("starttls not offered")
	}
	r, err = c.cmd(ctx, c.opts.CommandTimeout, "STARTTLS")
	if err != nil {
		return err
	}
	if r.code != 220 {
		if mode == TLSOpportunistic {
			return nil // still in plain text, as if STARTTLS had not been offered
		}
		return fmt.Errorf("starttls: %w", r.err())
	}
	if c.br.Buffered() > 0 {
		// Anything sent before the handshake could be injected by a man in
		// the middle into the encrypted session (CVE-2011-0411).
		c.broken = true
		return errors.New("starttls: data after the 220 reply")
	}
	tc := tls.Client(c.raw, c.s.tls)
	c.deadline(ctx, c.opts.CommandTimeout)
	if err := tc.HandshakeContext(ctx); err != nil {
		c.broken = true
		return &handshakeError{err}
	}
	c.setTransport(tc)
	c.tls = true
	// RFC 3207 §4.2: forget what was learnt before TLS and ask again.
	return c.ehlo(ctx)
}

// ehlo sends EHLO, and HELO if the server does not know EHLO, and records
// the extensions offered.
func (c *conn) ehlo(ctx context.Context) error {
	c.ext = nil
	r, err := c.cmd(ctx, c.opts.CommandTimeout, "EHLO "+c.opts.HeloName)
	if err != nil {
		return err
	}
	if r.positive() {
		c.ext = parseEHLO(r.msg)
		return nil
	}
	if r.code/100 != 5 {
		return fmt.Errorf("ehlo: %w", r.err())
	}
	// RFC 5321 §3.2: a server that does not support EHLO answers 5xx; an
	// old one may still speak plain SMTP.
	r, err = c.cmd(ctx, c.opts.CommandTimeout, "HELO "+c.opts.HeloName)
	if err != nil {
		return err
	}
	if !r.positive() {
		return fmt.Errorf("helo: %w", r.err())
	}
	return nil
}

// reset sends RSET on a reused connection: it ends any transaction left
// open and shows the connection is still alive.
func (c *conn) reset(ctx context.Context) error {
	r, err := c.cmd(ctx, c.opts.ConnectTimeout, "RSET")
	if err != nil {
		return err
	}
	if !r.positive() {
		c.broken = true
		return fmt.Errorf("rset: %w", r.err())
	}
	return nil
}

// quit says goodbye and closes the connection; with wait it also waits
// (briefly) for the server's reply.
func (c *conn) quit(wait bool) {
	c.raw.SetDeadline(time.Now().Add(quitTimeout))
	c.w.WriteString("QUIT\r\n")
	if c.w.Flush() == nil && wait {
		c.in.n = maxReplyBytes
		c.text.ReadResponse(0)
	}
	c.nc.Close()
}

// close closes the connection without a word, as befits a broken one.
func (c *conn) close() {
	c.raw.Close()
}

// parseEHLO maps the keywords of an EHLO reply, upper case, to their
// parameters. The first line is the server's greeting, not a keyword.
func parseEHLO(msg string) map[string]string {
	ext := make(map[string]string)
	_, rest, _ := strings.Cut(msg, "\n")
	for line := range strings.Lines(rest) {
		k, v, _ := strings.Cut(strings.TrimRight(line, "\n"), " ")
		ext[strings.ToUpper(k)] = v
	}
	return ext
}

// reply is one SMTP reply; multi-line text is joined with "\n".
type reply struct {
	code int
	msg  string
}

func (r reply) positive() bool { return r.code/100 == 2 }

// err turns a reply into the error callers relay to their own client: the
// code, the enhanced code (RFC 2034) if any line had one, and the text with
// the enhanced codes taken off every line, as go-smtp writes them back.
func (r reply) err() *smtp.SMTPError {
	e := &smtp.SMTPError{Code: r.code}
	lines := strings.Split(r.msg, "\n")
	for i, line := range lines {
		ec, rest, ok := cutEnhancedCode(line, r.code/100)
		if !ok {
			continue
		}
		if e.EnhancedCode == smtp.EnhancedCodeNotSet {
			e.EnhancedCode = ec
		}
		lines[i] = rest
	}
	e.Message = strings.Join(lines, "\n")
	return e
}

// cutEnhancedCode takes an enhanced status code (RFC 3463 §2: class,
// subject of 1-3 digits, detail of 1-3 digits) of the given class off the
// front of a reply line.
func cutEnhancedCode(line string, class int) (smtp.EnhancedCode, string, bool) {
	word, rest, _ := strings.Cut(line, " ")
	parts := strings.Split(word, ".")
	if (class != 2 && class != 4 && class != 5) || len(parts) != 3 || parts[0] != strconv.Itoa(class) {
		return smtp.EnhancedCode{}, "", false
	}
	var ec smtp.EnhancedCode
	for i, p := range parts {
		if len(p) < 1 || len(p) > 3 || strings.Trim(p, "0123456789") != "" {
			return smtp.EnhancedCode{}, "", false
		}
		ec[i], _ = strconv.Atoi(p)
	}
	return ec, rest, true
}

// budgetReader fails reads once n bytes have been read, so that a reply
// cannot be endless.
type budgetReader struct {
	r io.Reader
	n int
}

var errReplyTooLong = errors.New("reply too long")

func (b *budgetReader) Read(p []byte) (int, error) {
	if b.n <= 0 {
		return 0, errReplyTooLong
	}
	if len(p) > b.n {
		p = p[:b.n]
	}
	n, err := b.r.Read(p)
	b.n -= n
	return n, err
}

// countWriter counts the bytes its writer took, which tells whether the end
// of a message left us before a write failed.
type countWriter struct {
	w io.Writer
	n int64
}

func (cw *countWriter) Write(p []byte) (int, error) {
	n, err := cw.w.Write(p)
	cw.n += int64(n)
	return n, err
}
