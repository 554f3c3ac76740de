package h1serve

import (
	"errors"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
)

// bufferBeforeHead is how much body a handler may write before the head goes out: a handler
// that finishes within it gets a Content-Length, as with net/http.
const bufferBeforeHead = 2 << 10

// response is the http.ResponseWriter of one request. Its framing follows net/http's: the
// handler's Content-Length if it set one, else the length of what it wrote when it finished
// within bufferBeforeHead, else chunked. A HEAD response and 1xx, 204 and 304 carry no body.
type response struct {
	c          *conn
	req        *http.Request
	header     http.Header
	status     int // 0 until WriteHeader
	wroteHead  bool
	wantsClose bool // the client sent Connection: close
	closeAfter bool
	chunked    bool
	noBody     bool  // HEAD, or a status without a body
	length     int64 // declared Content-Length; -1: none
	written    int64 // body bytes written
	pending    []byte
	trailers   []string // declared with the Trailer header
}

var (
	errBodyNotAllowed = http.ErrBodyNotAllowed
	errTooLong        = http.ErrContentLength
)

// Header implements http.ResponseWriter.
func (w *response) Header() http.Header { return w.header }

// WriteHeader implements http.ResponseWriter. A 1xx status other than 101 is sent at once
// as an interim response.
func (w *response) WriteHeader(code int) {
	if w.status != 0 {
		return
	}
	if code < 100 || code > 999 {
		panic("h1serve: invalid WriteHeader code " + strconv.Itoa(code))
	}
	if code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
		bw := w.c.bw
		writeStatusLine(bw, code)
		writeFields(bw, w.header, nil)
		bw.WriteString("\r\n")
		bw.Flush()
		return
	}
	w.status = code
}

// Write implements http.ResponseWriter.
func (w *response) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if !w.wroteHead {
		if len(w.pending)+len(p) <= bufferBeforeHead {
			if !bodyAllowed(w.status) {
				return 0, errBodyNotAllowed
			}
			w.pending = append(w.pending, p...)
			return len(p), nil
		}
		if err := w.writeHead(false); err != nil {
			return 0, err
		}
	}
	if w.noBody {
		if w.req.Method == http.MethodHead && bodyAllowed(w.status) {
			return len(p), nil
		}
		return 0, errBodyNotAllowed
	}
	if w.length >= 0 && w.written+int64(len(p)) > w.length {
		return 0, errTooLong
	}
	w.written += int64(len(p))
	bw := w.c.bw
	if w.chunked {
		if len(p) == 0 {
			return 0, nil
		}
		bw.WriteString(strconv.FormatInt(int64(len(p)), 16))
		bw.WriteString("\r\n")
		if _, err := bw.Write(p); err != nil {
			return 0, err
		}
		bw.WriteString("\r\n")
		return len(p), nil
	}
	return bw.Write(p)
}

// Flush implements http.Flusher.
func (w *response) Flush() {
	if !w.wroteHead {
		if w.status == 0 {
			w.WriteHeader(http.StatusOK)
		}
		if w.writeHead(false) != nil {
			return
		}
	}
	w.c.bw.Flush()
}

// finish ends the response after the handler returned.
func (w *response) finish() error {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if !w.wroteHead {
		if err := w.writeHead(true); err != nil {
			return err
		}
	}
	bw := w.c.bw
	if w.chunked {
		bw.WriteString("0\r\n")
		if t := w.finalTrailers(); t != nil {
			t.Write(bw) // sorted, invalid names left out, as net/http
		}
		bw.WriteString("\r\n")
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if w.length >= 0 && w.written < w.length && !w.noBody {
		return errors.New("h1serve: handler wrote less than its Content-Length")
	}
	return nil
}

// writeHead writes the status line and header fields, then any body held back. done: the
// handler has returned, so what it wrote is the whole body.
func (w *response) writeHead(done bool) error {
	w.wroteHead = true
	h := w.header
	code := w.status
	isHead := w.req.Method == http.MethodHead
	w.length = -1
	delete(h, "Transfer-Encoding")
	w.trailers = w.trailers[:0]
	for _, v := range h["Trailer"] {
		for t := range strings.SplitSeq(v, ",") {
			// Fields that may not be trailers (RFC 9110 §6.5.1) stay in the head, as net/http.
			if t = textproto.TrimString(t); t != "" && httpguts.ValidTrailerHeader(t) {
				w.trailers = append(w.trailers, http.CanonicalHeaderKey(t))
			}
		}
	}
	hasTrailers := len(w.trailers) > 0 || hasPrefixedTrailer(h)
	if !bodyAllowed(code) {
		w.noBody = true
		delete(h, "Content-Length")
		if code == http.StatusNotModified {
			delete(h, "Content-Type")
		}
	} else {
		if cl := h.Get("Content-Length"); cl != "" {
			n, err := strconv.ParseInt(strings.TrimSpace(cl), 10, 64)
			if err != nil || n < 0 {
				delete(h, "Content-Length") // net/http ignores it too and frames the body itself
			} else {
				w.length = n
			}
		}
		if _, ok := h["Content-Type"]; !ok && h.Get("Content-Encoding") == "" && len(w.pending) > 0 {
			h.Set("Content-Type", http.DetectContentType(w.pending))
		}
		switch {
		case isHead:
			w.noBody = true
			if done && w.length < 0 && len(w.pending) > 0 {
				h.Set("Content-Length", strconv.Itoa(len(w.pending)))
			}
		case w.length >= 0:
		case done && !hasTrailers:
			w.length = int64(len(w.pending))
			h.Set("Content-Length", strconv.Itoa(len(w.pending)))
		default:
			w.chunked = true
			h.Del("Content-Length")
		}
	}
	if _, ok := h["Date"]; !ok {
		h["Date"] = []string{time.Now().UTC().Format(http.TimeFormat)}
	}
	if w.wantsClose || hasToken(h.Get("Connection"), "close") {
		w.closeAfter = true
		h["Connection"] = []string{"close"}
	}
	bw := w.c.bw
	writeStatusLine(bw, code)
	writeFields(bw, h, w.trailers)
	if w.chunked {
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	bw.WriteString("\r\n")
	if len(w.pending) > 0 {
		p := w.pending
		w.pending = nil
		if w.noBody && !(isHead && bodyAllowed(code)) {
			return errBodyNotAllowed
		}
		if _, err := w.Write(p); err != nil {
			return err
		}
	}
	return nil
}

// finalTrailers returns the trailer fields, as net/http: the declared ones and those set
// with http.TrailerPrefix.
func (w *response) finalTrailers() http.Header {
	var t http.Header
	for k, vv := range w.header {
		if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok {
			if t == nil {
				t = make(http.Header)
			}
			t[name] = vv
		}
	}
	for _, k := range w.trailers {
		if t == nil {
			t = make(http.Header)
		}
		for _, v := range w.header[k] {
			t.Add(k, v)
		}
	}
	return t
}

func hasPrefixedTrailer(h http.Header) bool {
	for k := range h {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			return true
		}
	}
	return false
}

// bodyAllowed reports whether a response with this status may have a body (RFC 9110 §6.4.1).
func bodyAllowed(code int) bool {
	return !(code >= 100 && code <= 199 || code == http.StatusNoContent || code == http.StatusNotModified)
}

func writeStatusLine(bw stringWriter, code int) {
	bw.WriteString("HTTP/1.1 ")
	bw.WriteString(strconv.Itoa(code))
	bw.WriteString(" ")
	text := http.StatusText(code)
	if text == "" {
		text = "status code " + strconv.Itoa(code)
	}
	bw.WriteString(text)
	bw.WriteString("\r\n")
}

type stringWriter interface{ WriteString(string) (int, error) }

// writeFields writes the header fields, leaving out the trailer keys (sent after the body)
// and, as net/http does, fields with an invalid name; CR and LF in values become spaces.
func writeFields(bw stringWriter, h http.Header, skip []string) {
	for k, vv := range h {
		if strings.HasPrefix(k, http.TrailerPrefix) || !httpguts.ValidHeaderFieldName(k) || contains(skip, k) {
			continue
		}
		for _, v := range vv {
			writeField(bw, k, v)
		}
	}
}

func writeField(bw stringWriter, k, v string) {
	bw.WriteString(k)
	bw.WriteString(": ")
	if strings.ContainsAny(v, "\r\n") {
		v = strings.NewReplacer("\r", " ", "\n", " ").Replace(v)
	}
	bw.WriteString(strings.TrimSpace(v))
	bw.WriteString("\r\n")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// hasToken reports whether the comma-separated list v holds token, case-insensitively.
func hasToken(v, token string) bool {
	for t := range strings.SplitSeq(v, ",") {
		if strings.EqualFold(strings.TrimSpace(t), token) {
			return true
		}
	}
	return false
}
