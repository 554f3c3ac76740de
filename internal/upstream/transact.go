package upstream

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
)

// transact runs one mail transaction on c: XFORWARD, MAIL, RCPT, DATA.
//
// Its error is a *failoverError while the message may still go to another
// server, an *unconfirmedError once it may have been delivered without a
// word from the server, and a bare *smtp.SMTPError for the server's reply.
func (c *conn) transact(ctx context.Context, env *Envelope, body []byte, xforward bool) (Result, error) {
	var res Result
	var cmds []string
	if xforward && c.has("XFORWARD") {
		cmds = xforwardCommands(c.ext["XFORWARD"], env.Client)
	}
	nx := len(cmds)
	cmds = append(cmds, c.mailCommand(env, len(body)))
	for _, to := range env.To {
		cmds = append(cmds, "RCPT TO:<"+to+">")
	}
	replies, err := c.envelope(ctx, cmds, nx)
	if err != nil {
		return res, &failoverError{err}
	}

	// After a 421 the server says no more, so replies may stop short: at
	// the 421, which the checks below meet first.
	for _, r := range replies[:min(nx, len(replies))] {
		if r.code == 421 {
			return res, &failoverError{fmt.Errorf("xforward: %w", r.err())}
		}
		if !r.positive() {
			// The message matters more than the log line it would get.
			c.log.Warn("xforward refused, sending without", "err", r.err())
		}
	}

	mail := replies[nx]
	switch {
	case mail.positive():
	case mail.code/100 == 5:
		return res, mail.err()
	default:
		return res, &failoverError{fmt.Errorf("mail from: %w", mail.err())}
	}

	res.Rcpt = make([]error, len(env.To))
	accepted := 0
	for i, r := range replies[nx+1:] {
		switch {
		case r.positive():
			accepted++
		case r.code == 421:
			return res, &failoverError{fmt.Errorf("rcpt to: %w", r.err())}
		case r.code/100 == 4, r.code/100 == 5:
			res.Rcpt[i] = r.err()
		default:
			return res, &failoverError{fmt.Errorf("rcpt to: unexpected reply %d", r.code)}
		}
	}
	if accepted == 0 {
		if err := c.reset(ctx); err != nil {
			c.log.Debug("rset after refused recipients", "err", err)
		}
		return res, nil
	}

	r, err := c.cmd(ctx, c.opts.CommandTimeout, "DATA")
	switch {
	case err != nil:
		return res, &failoverError{err}
	case r.code == 354:
	case r.code/100 == 5:
		return res, r.err()
	default:
		// Nothing of the message has been sent: another server may have it.
		return res, &failoverError{fmt.Errorf("data: %w", r.err())}
	}

	if sent, err := c.writeBody(ctx, body); err != nil {
		if !sent {
			return res, &failoverError{fmt.Errorf("send message: %w", err)}
		}
		return res, &unconfirmedError{fmt.Errorf("send message: %w", err)}
	}
	// From here on the server may have the message: whatever happens, it
	// is not sent anywhere again.
	r, err = c.read(ctx, c.opts.DataTimeout, "end of data")
	switch {
	case err != nil:
		return res, &unconfirmedError{err}
	case r.positive():
		return res, nil
	case r.code/100 == 4, r.code/100 == 5:
		return res, r.err()
	default:
		c.broken = true
		return res, &unconfirmedError{fmt.Errorf("unexpected reply %d to end of data", r.code)}
	}
}

// mailCommand builds MAIL FROM with the parameters the message needs and
// the server offers. Without 8BITMIME or SMTPUTF8 the message goes as it is
// and the server decides, as Postfix does.
func (c *conn) mailCommand(env *Envelope, size int) string {
	cmd := "MAIL FROM:<" + env.From + ">"
	if c.has("SIZE") {
		cmd += " SIZE=" + strconv.Itoa(size)
	}
	if env.EightBit && c.has("8BITMIME") {
		cmd += " BODY=8BITMIME"
	}
	if env.SMTPUTF8 && c.has("SMTPUTF8") {
		cmd += " SMTPUTF8"
	}
	return cmd
}

// envelope sends the XFORWARD (the first nx), MAIL and RCPT commands and
// returns their replies, pipelined when the server offers PIPELINING. The
// replies stop short after a 421, and, one at a time, after a refused MAIL.
func (c *conn) envelope(ctx context.Context, cmds []string, nx int) ([]reply, error) {
	replies := make([]reply, 0, len(cmds))
	if c.has("PIPELINING") {
		// MAIL and RCPT may be pipelined (RFC 2920 §3.1), and so may
		// XFORWARD (XFORWARD_README); DATA waits for their replies, so
		// that a message never follows an envelope with no recipient.
		for batch := range slices.Chunk(cmds, pipelineBatch) {
			for _, line := range batch {
				c.write(ctx, line)
			}
			if err := c.flush(ctx, c.opts.CommandTimeout); err != nil {
				return nil, fmt.Errorf("send envelope: %w", err)
			}
			for _, line := range batch {
				r, err := c.read(ctx, c.opts.CommandTimeout, verb(line))
				if err != nil {
					return nil, err
				}
				replies = append(replies, r)
				if r.code == 421 {
					return replies, nil
				}
			}
		}
		return replies, nil
	}
	for i, line := range cmds {
		r, err := c.cmd(ctx, c.opts.CommandTimeout, line)
		if err != nil {
			return nil, err
		}
		replies = append(replies, r)
		if r.code == 421 || (i == nx && !r.positive()) {
			break
		}
	}
	return replies, nil
}

// verb is the command word of a command line, for messages.
func verb(line string) string {
	for i := 0; i < len(line); i++ {
		if line[i] == ' ' {
			return line[:i]
		}
	}
	return line
}

var (
	crlf    = []byte("\r\n")
	crlfDot = []byte("\r\n.")
)

// writeBody sends the message dot-stuffed (RFC 5321 §4.5.2) and the end of
// data. body has CRLF line endings only (checkCRLF); a last line without one
// gets one. sent reports whether the end of data left us, even if err is
// not nil: from then on the server may have the message.
func (c *conn) writeBody(ctx context.Context, body []byte) (sent bool, err error) {
	c.deadline(ctx, c.opts.DataTimeout)
	// The offset of the end of data in everything written to the
	// connection. Not from w after the fact: once a write fails, w drops
	// the rest.
	end := c.out.n + int64(c.w.Buffered()) + dotStuff(c.w, body)
	if err := c.w.Flush(); err != nil {
		c.broken = true
		return c.out.n >= end, err
	}
	return true, nil
}

// dotStuff writes body to w with a "." added before every line that starts
// with one, a CRLF after a last line that lacks it, and the end of data. It
// returns the number of bytes that makes, whether or not w took them all;
// errors stay in w.
func dotStuff(w *bufio.Writer, body []byte) int64 {
	n := int64(len(body))
	rest := body
	if len(rest) > 0 && rest[0] == '.' {
		w.WriteByte('.')
		n++
	}
	for {
		i := bytes.Index(rest, crlfDot)
		if i < 0 {
			break
		}
		w.Write(rest[:i+3])
		w.WriteByte('.')
		n++
		rest = rest[i+3:]
	}
	w.Write(rest)
	if len(body) > 0 && !bytes.HasSuffix(body, crlf) {
		w.Write(crlf)
		n += int64(len(crlf))
	}
	w.WriteString(".\r\n")
	return n + 3
}
