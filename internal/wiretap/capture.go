package wiretap

import (
	"bytes"
	"slices"

	"github.com/emersion/go-smtp"
)

// DATA capture (Options.CaptureData).
//
// go-smtp reads message content through its dataReader one byte at a time
// (bufio.Reader.ReadByte, beneath it lineLimitReader). When the Conn
// captures, it reads the content itself, in large reads, and undoes the
// dot-stuffing in place with the dataReader's own state machine
// (scanner.unstuff), so that the message is byte for byte what the
// dataReader would have returned. go-smtp is handed only an end marker,
// ".\r\n", and after it whatever the client sent behind the real one: it
// sees an empty message and goes on with the commands, which are scanned as
// ever. The session takes the message with Conn.TakeMessage.
//
// The Conn captures only when it knows exactly where go-smtp stands when
// the 354 reply is written: go-smtp's buffer holds nothing after the DATA
// line (the client did not pipeline content behind DATA, as RFC 2920
// requires), so its dataReader starts at the beginning of a line and its
// lineLimitReader has just counted the line feed of "DATA\r\n". Otherwise
// (content pipelined behind DATA, a BDAT earlier on the connection, a read
// error) go-smtp reads the content itself as before, and TakeMessage
// reports nothing.
//
// What go-smtp would have made of the content is reproduced:
//
//   - The size limit: go-smtp's dataReader refuses a message of
//     Server.MaxMessageBytes bytes or more (ErrDataTooLarge), then reads
//     on to the end marker. The Conn stops storing at CaptureData bytes and
//     reports tooBig, however the stream goes on.
//   - The line limit: go-smtp's lineLimitReader fails a read in which a
//     line grows beyond Server.MaxLineLength (a read with an error is not
//     counted), dropping the whole read, and every read after. The Conn
//     counts the same way over each read, content and what follows the end
//     marker, and then fails with smtp.ErrTooLongLine from then on.
//   - A read error (the client went away) before the end marker is handed
//     to go-smtp, whose dataReader makes io.ErrUnexpectedEOF of io.EOF.

const (
	captureInitial = 32 << 10 // first buffer of a connection
	captureMinRead = 16 << 10 // least room for one read
	captureMaxHint = 4 << 20  // largest buffer sized from the previous message
	maxOutBuf      = 64 << 10 // largest bytes-after-the-marker buffer kept
)

// capture is the state of a DATA capture. Reading goroutine only, apart
// from what endCapture hands over under Conn.mu.
type capture struct {
	limit   int64 // Options.CaptureData
	lineMax int   // go-smtp's MaxLineLength; 0: no limit

	active bool
	seq    uint64 // scanner.dataSeq of the DATA captured
	buf    []byte // the content so far; its spare capacity is the read buffer
	tooBig bool   // buf reached limit: no longer stored
	line   int    // go-smtp's lineLimitReader count

	// Line endings of the content: bare when an LF follows anything but a
	// CR, or there are more CRs than LFs.
	bareLF  bool
	lastCR  bool
	crs     int64
	lfs     int64
	lastLen int // the length of the previous message, to size the next buffer
}

// message is a captured message waiting for TakeMessage.
type message struct {
	body         []byte
	tooBig, bare bool
	ok           bool
	seq          uint64
}

func (cp *capture) start(seq uint64) {
	size := max(captureInitial, min(cp.lastLen+cp.lastLen/8+captureMinRead, captureMaxHint))
	if int64(size) > cp.limit {
		size = int(cp.limit) + captureMinRead
	}
	if cap(cp.buf) < size {
		cp.buf = make([]byte, 0, size)
	}
	*cp = capture{
		limit: cp.limit, lineMax: cp.lineMax, lastLen: cp.lastLen,
		active: true, seq: seq, buf: cp.buf[:0],
		line: 1, // after the line feed of "DATA\r\n"
	}
}

// room returns the buffer for the next read.
func (cp *capture) room() []byte {
	if cap(cp.buf)-len(cp.buf) < captureMinRead {
		grow := max(cap(cp.buf), captureMinRead)
		if left := cp.limit - int64(len(cp.buf)); left < int64(grow) {
			grow = int(left) + captureMinRead // len(buf) < limit while storing
		}
		cp.buf = slices.Grow(cp.buf, grow)
	}
	return cp.buf[len(cp.buf):cap(cp.buf)]
}

// overlong counts the lines of one read as go-smtp's lineLimitReader does,
// and reports whether it fails the read.
func (cp *capture) overlong(b []byte) bool {
	if cp.lineMax <= 0 {
		return false
	}
	n := cp.line
	for {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			n += len(b)
			break
		}
		if n+i > cp.lineMax {
			return true
		}
		n = 1 // the line feed counts for the next line
		b = b[i+1:]
	}
	cp.line = n
	return n > cp.lineMax
}

// add notes content just written after buf: its line endings, and the
// size limit.
func (cp *capture) add(w int) {
	out := cp.buf[len(cp.buf) : len(cp.buf)+w]
	if len(out) == 0 {
		return
	}
	if !cp.bareLF {
		for i := 0; ; {
			j := bytes.IndexByte(out[i:], '\n')
			if j < 0 {
				break
			}
			i += j
			if i == 0 && !cp.lastCR || i > 0 && out[i-1] != '\r' {
				cp.bareLF = true
				break
			}
			cp.lfs++
			i++
		}
		cp.crs += int64(bytes.Count(out, []byte{'\r'}))
	}
	cp.lastCR = out[len(out)-1] == '\r'
	cp.buf = cp.buf[:len(cp.buf)+w]
	if int64(len(cp.buf)) >= cp.limit {
		// go-smtp's dataReader fails at limit bytes, even if the end
		// marker comes next.
		cp.tooBig = true
		cp.buf = cp.buf[:0]
	}
}

// captureRead reads once from the client while the Conn captures message
// content. progress is false when nothing was read; err is for go-smtp.
// When the end marker is read, c.out holds what go-smtp gets instead.
func (c *Conn) captureRead() (progress bool, err error) {
	cp := &c.capt
	if !cp.active {
		c.mu.Lock()
		seq := c.sc.dataSeq
		c.mu.Unlock()
		cp.start(seq)
	}
	room := cp.room()
	n, err := c.transport().Read(room)
	chunk := room[:n]

	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil && cp.overlong(chunk) {
		// go-smtp's lineLimitReader would drop this read and fail every
		// read from now on.
		c.tooLong = true
		c.sc.clientErr()
		c.endCapture(false)
		return false, smtp.ErrTooLongLine
	}
	var k int
	var end bool
	if cp.tooBig {
		k = c.sc.data(chunk)
		end = c.sc.mode != modeData
	} else {
		var w int
		w, k, end = c.sc.unstuff(chunk)
		cp.add(w)
	}
	if end {
		c.endCapture(true)
		// go-smtp gets an end marker of its own and what followed the
		// client's, in a single read as the client's came.
		rest := chunk[k:]
		j, intercept := c.sc.client(rest, true)
		if cap(c.outBuf) > maxOutBuf {
			c.outBuf = nil
		}
		c.outBuf = append(append(c.outBuf[:0], ".\r\n"...), rest[:j]...)
		c.out = c.outBuf
		switch {
		case intercept:
			c.held = append(c.held[:0], rest[j:]...)
			c.pending = true
			c.readErr = err
		case err != nil:
			c.sc.clientErr()
			c.outErr = err
		}
		return true, nil
	}
	if err != nil {
		c.sc.clientErr()
		c.endCapture(false)
		return false, err
	}
	return n > 0, nil
}

// endCapture ends a capture; complete means the end marker was read. The
// message is kept for TakeMessage if it is complete or too big. Called
// with c.mu held.
func (c *Conn) endCapture(complete bool) {
	cp := &c.capt
	cp.active = false
	if !complete && !cp.tooBig {
		cp.buf = nil
		return
	}
	m := message{ok: true, seq: cp.seq, tooBig: cp.tooBig}
	if !cp.tooBig {
		m.body = cp.buf
		m.bare = cp.bareLF || cp.crs != cp.lfs
		cp.lastLen = len(cp.buf)
	}
	cp.buf = nil // handed over, or large
	c.done = m
}

// TakeMessage returns the message of the DATA command go-smtp is handling,
// captured by the Conn (Options.CaptureData). Call it from Session.Data
// after the reader go-smtp passed returned io.EOF (an empty message, when
// the Conn captured) or an error.
//
// ok is false when the Conn did not capture this message: capture is off,
// the client pipelined content behind DATA (go-smtp's reader then yields
// the message as usual), or the stream failed before the end marker (the
// reader returned the error). Otherwise tooBig reports that the message
// reached Options.CaptureData bytes (go-smtp's reader would have failed
// with smtp.ErrDataTooLarge; msg is nil); else msg is the whole message,
// as go-smtp's reader would have returned it, and bareLineEnding reports
// a CR not followed by LF or an LF not preceded by CR in it.
//
// The caller owns msg: the Conn keeps no reference to it.
func (c *Conn) TakeMessage() (msg []byte, tooBig bool, bareLineEnding bool, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.done
	c.done = message{}
	if !m.ok || m.seq != c.sc.dataSeq {
		return nil, false, false, false
	}
	return m.body, m.tooBig, m.bare, true
}
