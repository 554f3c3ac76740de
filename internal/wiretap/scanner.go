package wiretap

import (
	"bytes"
)

// Limits on what one connection may make the scanner hold.
const (
	// maxPending bounds the recorded RCPT paths and reply marks. go-smtp
	// reads ahead one 4 KiB buffer at most, so a few hundred is the most a
	// client can have outstanding; beyond, the oldest are dropped.
	maxPending = 1000
	// maxBacklog bounds the bytes held unscanned while the scanner waits
	// for the reply to DATA, AUTH or STARTTLS (again one read buffer in
	// practice). Beyond it the scanner gives up (goes blind).
	maxBacklog = 64 << 10
)

// mode is what the scanner expects next from the client.
type mode uint8

const (
	modeCommand mode = iota // command lines
	modeAwait               // nothing until the reply to the DATA, AUTH or STARTTLS command awaitIdx
	modeSASL                // one AUTH response line, after a 334 reply
	modeData                // DATA message content, up to <CRLF>.<CRLF>
	modeChunk               // BDAT chunk of chunkLeft bytes
	modeBlind               // ciphertext or lost track: record nothing more
)

// Data content states, as go-smtp's dataReader (data.go) has them.
const (
	stateBeginLine = iota
	stateDot
	stateDotCR
	stateCR
	stateData
)

// The commands the scanner treats specially.
type kind uint8

const (
	kindData kind = iota + 1
	kindAuth
	kindStartTLS
)

// rcpt is a recorded RCPT command.
type rcpt struct {
	idx       uint64 // command number
	raw       string // path as on the wire
	processed string // what go-smtp hands to Session.Rcpt
}

// mark asks for the reply to command idx to be changed.
type mark struct {
	idx     uint64
	swallow bool // drop the reply (to a RSET of our own); else advertise STARTTLS in it (EHLO)
}

// Replies the scanner writes or adds.
const (
	replyStartTLS = "220 2.0.0 Ready to start TLS\r\n"
	capStartTLS   = "250-STARTTLS\r\n"
	cmdReset      = "RSET\r\n"
)

// scanner follows an SMTP server conversation as go-smtp conducts it: the
// bytes go-smtp reads from the client and the replies it writes. It does
// no I/O; Conn feeds it.
//
// Commands are numbered in the order go-smtp reads them. go-smtp handles
// one command at a time and writes exactly one final reply for each before
// it reads the next (intermediate 334 and 354 replies aside), so the number
// of final replies written tells which command go-smtp is working on: while
// it calls Session.Rcpt for command n, replies 0..n-1 have been written and
// reply n has not. Recorded paths carry their command number, so a RCPT
// that go-smtp refused before calling the session (bad parameter, no MAIL,
// too many recipients) can never be mistaken for a later one.
//
// The bytes after DATA, AUTH and STARTTLS mean different things depending
// on the reply (RFC 2920 §3.1: the client must wait for it, but a hostile
// one need not), so scanning stops after such a command and resumes when
// its reply is written.
type scanner struct {
	maxLine   int
	advertise bool // offer STARTTLS in EHLO replies and intercept the command

	mode      mode
	await     kind   // modeAwait: the command awaited
	awaitIdx  uint64 // modeAwait, modeSASL, modeData, modeChunk: its number
	dataState int
	chunkLeft uint64

	line      []byte // current line, up to maxLine bytes
	lineLen   int    // its length so far, possibly more than len(line)
	lineStart int    // where it began in the current fresh input; -1: not all fresh

	cmds    uint64 // command lines go-smtp will have read
	replied uint64 // final replies written to commands
	greeted bool   // go-smtp's greeting has been written

	backlog    []byte // client bytes not scanned yet (modeAwait)
	backlogErr bool   // and a read error after them

	// DATA capture (Options.CaptureData; see capture.go).
	capture   bool   // enabled
	capturing bool   // the Conn takes the content of the current DATA (modeData)
	dataSeq   uint64 // 354 replies to DATA so far
	sawBDAT   bool   // a BDAT command was read
	readFail  bool   // a read from the client failed

	rcpts []rcpt
	marks []mark

	// Reply side.
	wlen     int     // length of the reply line so far
	wcode    [4]byte // its first bytes: code and separator
	wcont    bool    // within a multi-line reply
	wswallow bool    // current line is dropped
	winject  bool    // add the STARTTLS capability after the current line
}

func newScanner(maxLine int, advertise bool) *scanner {
	if maxLine <= 0 {
		maxLine = DefaultMaxLineLength
	}
	return &scanner{maxLine: maxLine, advertise: advertise, lineStart: -1}
}

// client scans bytes read from the client. fresh tells whether they are
// about to be handed to go-smtp (rather than already were). It returns how
// many may be handed on; intercept is true when b[n:] begins with a
// STARTTLS command the caller must answer itself (advertise only).
func (s *scanner) client(b []byte, fresh bool) (n int, intercept bool) {
	s.lineStart = -1
	for i := 0; i < len(b); {
		switch s.mode {
		case modeBlind:
			return len(b), false
		case modeAwait:
			if len(s.backlog)+len(b)-i > maxBacklog {
				s.blind()
				return len(b), false
			}
			s.backlog = append(s.backlog, b[i:]...)
			return len(b), false
		case modeData:
			i += s.data(b[i:])
		case modeChunk:
			k := uint64(len(b) - i)
			if k > s.chunkLeft {
				k = s.chunkLeft
			}
			i += int(k)
			s.chunkLeft -= k
			if s.chunkLeft == 0 {
				s.mode = modeCommand
			}
		case modeCommand, modeSASL:
			if s.lineLen == 0 {
				s.lineStart = -1
				if fresh {
					s.lineStart = i
				}
			}
			j := bytes.IndexByte(b[i:], '\n')
			if j < 0 {
				s.addLine(b[i:])
				i = len(b)
				break
			}
			s.addLine(b[i : i+j])
			i += j + 1
			if s.endLine() {
				return s.lineStart, true
			}
		}
	}
	return len(b), false
}

// clientErr notes that a read from the client failed. go-smtp's bufio
// hands out a partial last line as a whole one before the error; its DATA
// and BDAT readers stop at the error (the reply to BDAT may come before or
// after) and go back to commands; an AUTH exchange whose response line
// could not be read ends with no reply.
func (s *scanner) clientErr() {
	s.lineStart = -1
	s.readFail = true
	switch s.mode {
	case modeAwait:
		s.backlogErr = true
	case modeData, modeChunk:
		s.mode = modeCommand
	case modeCommand:
		if s.lineLen > 0 {
			s.endLine()
		}
	case modeSASL:
		if s.lineLen > 0 {
			s.endLine()
			break
		}
		s.replied++
		s.mode = modeCommand
		s.dropStale()
	}
}

func (s *scanner) addLine(b []byte) {
	if room := s.maxLine - len(s.line); room > 0 {
		s.line = append(s.line, b[:min(room, len(b))]...)
	}
	s.lineLen += len(b)
}

// endLine handles a complete line; true means intercept this STARTTLS.
func (s *scanner) endLine() (intercept bool) {
	line, overlong := s.line, s.lineLen > s.maxLine
	if !overlong && len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1] // bufio.Reader.ReadLine drops CRLF or LF
	}
	str := string(line)
	s.line, s.lineLen = s.line[:0], 0

	if s.mode == modeSASL {
		s.mode = modeAwait // the AUTH command goes on
		return false
	}

	idx := s.cmds
	cmd, arg := parseCmd(str)
	switch cmd {
	case "STARTTLS":
		if s.advertise && !overlong && s.lineStart >= 0 {
			return true // not go-smtp's: not counted
		}
		s.cmds++
		s.pause(kindStartTLS, idx)
	case "DATA":
		s.cmds++
		s.pause(kindData, idx)
	case "AUTH":
		s.cmds++
		s.pause(kindAuth, idx)
	case "BDAT":
		s.cmds++
		s.sawBDAT = true
		if overlong {
			s.blind() // cannot know the chunk size
			break
		}
		if size, ok := bdatSize(arg); ok && size > 0 {
			s.mode, s.awaitIdx, s.chunkLeft = modeChunk, idx, size
		}
	case "RCPT":
		s.cmds++
		if overlong {
			break
		}
		if raw, processed, ok := rcptPath(arg); ok {
			if len(s.rcpts) >= maxPending {
				s.rcpts = s.rcpts[1:]
			}
			s.rcpts = append(s.rcpts, rcpt{idx: idx, raw: raw, processed: processed})
		}
	case "EHLO":
		s.cmds++
		if s.advertise {
			s.addMark(mark{idx: idx})
		}
	default:
		s.cmds++
	}
	return false
}

func (s *scanner) pause(k kind, idx uint64) {
	s.mode, s.await, s.awaitIdx = modeAwait, k, idx
}

func (s *scanner) addMark(m mark) {
	if len(s.marks) >= maxPending {
		s.marks = s.marks[1:]
	}
	s.marks = append(s.marks, m)
}

// data scans message content as go-smtp's dataReader does, and returns the
// number of bytes up to and including the end marker, or len(b).
func (s *scanner) data(b []byte) int {
	for i := 0; i < len(b); i++ {
		if s.dataState == stateData {
			// Inside a line only a CR matters: skip to it in one step.
			j := bytes.IndexByte(b[i:], '\r')
			if j < 0 {
				return len(b)
			}
			i += j
			s.dataState = stateCR
			continue
		}
		c := b[i]
		switch s.dataState {
		case stateBeginLine:
			if c == '.' {
				s.dataState = stateDot
				continue
			}
			if c == '\r' {
				s.dataState = stateCR
				break
			}
			s.dataState = stateData
		case stateDot:
			if c == '\r' {
				s.dataState = stateDotCR
				continue
			}
			s.dataState = stateData
		case stateDotCR:
			if c == '\n' {
				s.mode = modeCommand
				return i + 1
			}
			s.dataState = stateData
		case stateCR:
			if c == '\n' {
				s.dataState = stateBeginLine
				break
			}
			s.dataState = stateData
		case stateData:
			if c == '\r' {
				s.dataState = stateCR
			}
		}
	}
	return len(b)
}

// canCapture reports whether the Conn may take the content of the DATA
// command just answered 354 off go-smtp's hands: go-smtp holds nothing
// after the command line (nothing was pipelined behind DATA), and go-smtp's
// line-length count is known (no read failed, no BDAT, which turns the
// count off while go-smtp reads a chunk). See capture.go.
func (s *scanner) canCapture() bool {
	return len(s.backlog) == 0 && !s.backlogErr && !s.readFail && !s.sawBDAT
}

// capturingData reports whether the Conn is to take the message content
// the client sends now.
func (s *scanner) capturingData() bool {
	return s.mode == modeData && s.capturing
}

// unstuff reads message content as go-smtp's dataReader does (see data),
// and writes what the dataReader would return to the front of b, in place:
// b[:w] is the content of b[:r], and end reports that b[:r] ends with the
// end marker (which is not content).
func (s *scanner) unstuff(b []byte) (w, r int, end bool) {
	for r < len(b) {
		if s.dataState == stateData {
			// Inside a line every byte is content up to a CR: move the run
			// in one step.
			k := len(b) - r
			if j := bytes.IndexByte(b[r:], '\r'); j >= 0 {
				k = j + 1
				s.dataState = stateCR
			}
			if w != r {
				copy(b[w:], b[r:r+k])
			}
			w += k
			r += k
			continue
		}
		c := b[r]
		r++
		switch s.dataState {
		case stateBeginLine:
			switch c {
			case '.':
				s.dataState = stateDot
				continue // dropped
			case '\r':
				s.dataState = stateCR
			default:
				s.dataState = stateData
			}
		case stateDot:
			if c == '\r' {
				s.dataState = stateDotCR
				continue // dropped
			}
			s.dataState = stateData
		case stateDotCR:
			if c == '\n' {
				s.mode = modeCommand
				return w, r, true
			}
			s.dataState = stateData
		case stateCR:
			if c == '\n' {
				s.dataState = stateBeginLine
			} else {
				s.dataState = stateData
			}
		}
		b[w] = c
		w++
	}
	return w, r, false
}

// resume scans the backlog after the awaited reply came.
func (s *scanner) resume() {
	b, failed := s.backlog, s.backlogErr
	s.backlog, s.backlogErr = nil, false
	s.client(b, false)
	if failed {
		s.clientErr()
	}
}

// blind gives up: from now on nothing is recorded.
func (s *scanner) blind() {
	s.mode = modeBlind
	s.rcpts, s.marks, s.backlog, s.line, s.lineLen = nil, nil, nil, nil, 0
}

// reply scans bytes go-smtp writes and returns what should go to the
// client instead: p itself unless a line is dropped or added.
func (s *scanner) reply(p []byte) []byte {
	if s.mode == modeBlind {
		return p
	}
	var out []byte
	changed := false
	for i := 0; i < len(p); {
		if s.wlen == 0 {
			s.beginReplyLine()
		}
		j := bytes.IndexByte(p[i:], '\n')
		end := len(p)
		if j >= 0 {
			end = i + j + 1
		}
		seg := p[i:end]
		for k := 0; k < len(seg) && s.wlen+k < len(s.wcode); k++ {
			s.wcode[s.wlen+k] = seg[k]
		}
		s.wlen += len(seg)
		if s.wswallow && !changed {
			out, changed = append([]byte(nil), p[:i]...), true
		}
		if changed && !s.wswallow {
			out = append(out, seg...)
		}
		i = end
		if j < 0 {
			break
		}
		if add := s.endReplyLine(); add != "" {
			if !changed {
				out, changed = append([]byte(nil), p[:i]...), true
			}
			out = append(out, add...)
		}
	}
	if !changed {
		return p
	}
	return out
}

func (s *scanner) beginReplyLine() {
	s.wcode = [4]byte{}
	s.wswallow, s.winject = false, false
	if !s.greeted {
		return
	}
	s.dropStale()
	if len(s.marks) > 0 && s.marks[0].idx == s.replied {
		m := s.marks[0]
		s.wswallow = m.swallow
		s.winject = !m.swallow && !s.wcont && s.advertise
	}
}

// endReplyLine handles the end of a reply line and returns text to add
// after it.
func (s *scanner) endReplyLine() (add string) {
	code := -1
	if c := s.wcode; '0' <= c[0] && c[0] <= '9' && '0' <= c[1] && c[1] <= '9' && '0' <= c[2] && c[2] <= '9' {
		code = int(c[0]-'0')*100 + int(c[1]-'0')*10 + int(c[2]-'0')
	}
	final := s.wlen <= 3 || s.wcode[3] != '-'
	if s.winject && !final && code == 250 {
		add = capStartTLS
	}
	s.wlen = 0
	s.wcont = !final
	if final {
		s.finalReply(code)
	}
	return add
}

// finalReply accounts for the last line of a reply.
func (s *scanner) finalReply(code int) {
	if !s.greeted {
		s.greeted = true
		return
	}
	idx := s.replied
	switch {
	case s.mode == modeAwait && s.awaitIdx == idx:
		switch {
		case s.await == kindData && code == 354:
			s.mode, s.dataState = modeData, stateBeginLine
			s.dataSeq++
			s.capturing = s.capture && s.canCapture()
			s.resume()
			return
		case s.await == kindAuth && code == 334:
			s.mode = modeSASL
			s.resume()
			return
		case s.await == kindStartTLS && code == 220:
			// go-smtp itself switches to TLS beneath us: ciphertext from
			// here on. See the package documentation.
			s.replied++
			s.blind()
			return
		}
		s.replied++
		s.mode = modeCommand
		s.dropStale()
		s.resume()
		return
	case code == 334 || code == 354:
		return // intermediate replies, only ever written as above
	case s.mode == modeSASL && s.awaitIdx == idx:
		// Not expected: go-smtp ended AUTH without reading a response.
		s.mode = modeCommand
		s.line, s.lineLen = s.line[:0], 0
	}
	s.replied++
	s.dropStale()
}

// dropStale forgets what belongs to commands already answered.
func (s *scanner) dropStale() {
	for len(s.rcpts) > 0 && s.rcpts[0].idx < s.replied {
		s.rcpts = s.rcpts[1:]
	}
	for len(s.marks) > 0 && s.marks[0].idx < s.replied {
		s.marks = s.marks[1:]
	}
}

// nextRcpt returns the raw path of the RCPT command go-smtp is handling,
// if it was recorded and go-smtp made processed of it.
func (s *scanner) nextRcpt(processed string) (string, bool) {
	if s.mode == modeBlind {
		return "", false
	}
	s.dropStale()
	if len(s.rcpts) == 0 || s.rcpts[0].idx != s.replied {
		return "", false
	}
	r := s.rcpts[0]
	s.rcpts = s.rcpts[1:]
	if r.processed != processed {
		return "", false
	}
	return r.raw, true
}

// readyForTLS reports whether go-smtp has answered every command before an
// intercepted STARTTLS, so that the handshake may begin.
func (s *scanner) readyForTLS() bool {
	return s.mode == modeCommand && s.replied == s.cmds && s.lineLen == 0 && !s.wcont && s.wlen == 0
}

// startedTLS records that the Conn switched to TLS after an intercepted
// STARTTLS, and that it hands go-smtp a RSET of its own (whose reply is
// dropped) so that go-smtp forgets the plaintext transaction (RFC 3207
// §4.2).
func (s *scanner) startedTLS() {
	s.advertise = false
	s.line, s.lineLen = s.line[:0], 0
	s.addMark(mark{idx: s.cmds, swallow: true})
	s.cmds++
}
