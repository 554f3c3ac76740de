package h1serve

import (
	"errors"
	"io"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"

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
	sent       http.Header // the header as at WriteHeader, which the head is written from
	status     int         // 0 until WriteHeader
	wroteHead  bool
	closeAfter bool
	chunked    bool
	noBody     bool  // HEAD, or a status without a body
	length     int64 // declared Content-Length; -1: none
	written    int64 // body bytes written
	pending    []byte
	trailers   []string // declared with the Trailer header
}

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
		writeStatusLine(bw, w.req.ProtoMinor == 1, code)
		w.header.WriteSubset(bw, excludedInterim)
		bw.WriteString("\r\n")
		bw.Flush()
		return
	}
	w.status = code
	// As with net/http, changes to the header after WriteHeader do not reach the head
	// (trailers aside), and the Content-Length is the one set then: writes beyond it fail,
	// whether or not the head is out.
	w.sent = w.c.snapshot(w.header)
	w.length = contentLength(w.sent)
}

// Write implements http.ResponseWriter.
func (w *response) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if !w.wroteHead {
		if !bodyAllowed(w.status) {
			return 0, http.ErrBodyNotAllowed
		}
		if w.length >= 0 && int64(len(w.pending)+len(p)) > w.length {
			return 0, http.ErrContentLength
		}
		if len(w.pending)+len(p) <= bufferBeforeHead {
			w.pending = append(w.pending, p...)
			return len(p), nil
		}
		if err := w.writeHead(p, false); err != nil {
			return 0, err
		}
	}
	if w.noBody {
		if w.req.Method == http.MethodHead && bodyAllowed(w.status) {
			return len(p), nil
		}
		return 0, http.ErrBodyNotAllowed
	}
	if w.length >= 0 && w.written+int64(len(p)) > w.length {
		return 0, http.ErrContentLength
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

// sniffLen is how much of a body net/http's DetectContentType looks at.
const sniffLen = 512

// ReadFrom lets io.Copy from a file use sendfile(2), as with net/http: the start of the body
// goes through Write (for the Content-Type sniffing and the framing), then the rest straight
// to the connection when the body has a Content-Length; chunked and bodiless responses copy
// through Write.
func (w *response) ReadFrom(src io.Reader) (int64, error) {
	n, err := io.CopyN(writerOnly{w}, src, sniffLen)
	if err == io.EOF {
		return n, nil
	}
	if err != nil {
		return n, err
	}
	if err := w.startBody(); err != nil {
		return n, err
	}
	rf, ok := w.c.nc.(io.ReaderFrom)
	if w.chunked || w.noBody || w.length < 0 || !ok {
		m, err := io.Copy(writerOnly{w}, src)
		return n + m, err
	}
	if err := w.c.bw.Flush(); err != nil {
		return n, err
	}
	left := w.length - w.written
	m, err := rf.ReadFrom(io.LimitReader(src, left))
	w.written += m
	n += m
	if err != nil {
		w.c.bw.err = err
		return n, err
	}
	if m == left {
		// More than the Content-Length is an error, as Write says.
		var one [1]byte
		if k, _ := io.ReadFull(src, one[:]); k > 0 {
			return n, http.ErrContentLength
		}
	}
	return n, nil
}

// writerOnly hides a writer's ReadFrom, so that io.Copy into it does not call it again.
type writerOnly struct{ io.Writer }

// Flush implements http.Flusher.
func (w *response) Flush() {
	if w.startBody() == nil {
		w.c.bw.Flush()
	}
}

// startBody writes the head, with a 200 status if the handler set none, unless it is out.
func (w *response) startBody() error {
	if w.wroteHead {
		return nil
	}
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	return w.writeHead(nil, false)
}

// finish ends the response after the handler returned.
func (w *response) finish() error {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if !w.wroteHead {
		if err := w.writeHead(nil, true); err != nil {
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

// writeHead writes the status line and header fields, then any body held back. p is the
// write that did not fit with it, if any: the Content-Type is sniffed from their start.
// done: the handler has returned, so what it wrote is the whole body. It follows net/http's
// chunkWriter.writeHeader: the handler's fields sorted by name (less those its framing
// overrides), then those it adds, in the same order, and leaves the handler's map alone.
func (w *response) writeHead(p []byte, done bool) error {
	w.wroteHead = true
	h := w.sent
	code := w.status
	isHead := w.req.Method == http.MethodHead
	var (
		exclude                                         int    // fields of h not written: exLength...
		date, length, contentType, connection, encoding string // fields added
	)

	hasTrailers := hasPrefixedTrailer(h)
	w.trailers = w.trailers[:0]
	for _, v := range h["Trailer"] {
		hasTrailers = true
		for t := range strings.SplitSeq(v, ",") {
			// Fields that may not be trailers (RFC 9110 §6.5.1) stay in the head, as net/http.
			if t = textproto.TrimString(t); t != "" && httpguts.ValidTrailerHeader(t) {
				w.trailers = append(w.trailers, http.CanonicalHeaderKey(t))
			}
		}
	}
	te := first(h, "Transfer-Encoding")
	hasTE := te != ""
	_, haveLength := h["Content-Length"]
	w.length = contentLength(h)
	if done && !hasTrailers && !hasTE && bodyAllowed(code) && !haveLength && (!isHead || len(w.pending) > 0) {
		w.length = int64(len(w.pending))
		length = strconv.Itoa(len(w.pending))
	}
	hasCL := w.length >= 0
	// As net/http with keep-alives off, a response during Shutdown says the connection ends.
	keepAlive := !w.c.srv.shutdown.Load()
	http11 := w.req.ProtoMinor == 1
	if wants10KeepAlive(w.req) && (isHead || hasCL || !bodyAllowed(code)) {
		// An HTTP/1.0 client that asked to keep the connection, and a body whose end it
		// can tell: say it is kept (net/http does, also when it closes after all).
		if _, ok := h["Connection"]; !ok {
			connection = "keep-alive"
		}
	} else if !http11 || w.req.Close {
		w.closeAfter = true
	}
	if first(h, "Connection") == "close" || !keepAlive {
		w.closeAfter = true
	}
	if bodyAllowed(code) {
		_, haveType := h["Content-Type"]
		if !haveType && h.Get("Content-Encoding") == "" && !hasTE && len(w.pending)+len(p) > 0 {
			contentType = http.DetectContentType(sniffed(w.pending, p))
		}
	} else {
		exclude |= exLength | exEncoding
		if code == http.StatusNotModified {
			exclude |= exType
		}
	}
	if _, ok := h["Date"]; !ok {
		date = w.c.srv.date()
	}
	if hasCL && hasTE && te != "identity" {
		exclude |= exLength
		hasCL = false
	}
	switch {
	case isHead || !bodyAllowed(code):
		w.noBody = true
		exclude |= exEncoding
	case hasCL:
		exclude |= exEncoding
	case te == "identity" || !http11:
		// The body ends when the connection does (HTTP/1.0 has no chunks).
		w.closeAfter = true
		exclude |= exEncoding
	default:
		w.chunked = true
		encoding = "chunked"
		if te == "chunked" {
			exclude |= exEncoding
		}
	}
	if w.chunked || !hasCL {
		exclude |= exLength // a Content-Length net/http could not parse goes too
	}
	if w.closeAfter && (!keepAlive || !hasToken(first(h, "Connection"), "close")) {
		exclude |= exConnection
		if http11 {
			connection = "close"
		}
	}

	bw := w.c.bw
	writeStatusLine(bw, http11, code)
	h.WriteSubset(bw, excluded[exclude])
	for _, f := range [...]struct{ name, value string }{
		{"Date", date}, {"Content-Length", length}, {"Content-Type", contentType},
		{"Connection", connection}, {"Transfer-Encoding", encoding},
	} {
		if f.value != "" {
			bw.WriteString(f.name)
			bw.WriteString(": ")
			bw.WriteString(f.value)
			bw.WriteString("\r\n")
		}
	}
	bw.WriteString("\r\n")
	if len(w.pending) > 0 {
		p := w.pending
		w.pending = nil
		if w.noBody && !(isHead && bodyAllowed(code)) {
			return http.ErrBodyNotAllowed
		}
		if _, err := w.Write(p); err != nil {
			return err
		}
	}
	return nil
}

// contentLength returns the value of the Content-Length field of h; -1 when there is none
// or net/http could not parse it.
func contentLength(h http.Header) int64 {
	if cl := first(h, "Content-Length"); cl != "" {
		if n, err := strconv.ParseInt(cl, 10, 64); err == nil && n >= 0 {
			return n
		}
	}
	return -1
}

// sniffed returns the start of the body made of held and then p, as much as
// http.DetectContentType reads (which net/http gives it too).
func sniffed(held, p []byte) []byte {
	const sniffLen = 512
	switch {
	case len(held) >= sniffLen || len(p) == 0:
		return held
	case len(held) == 0:
		return p
	}
	return append(held[:len(held):len(held)], p[:min(len(p), sniffLen-len(held))]...)
}

// Fields of the handler's header that writeHead leaves out, as net/http's delHeader.
const (
	exLength     = 1 << iota // Content-Length
	exEncoding               // Transfer-Encoding
	exConnection             // Connection
	exType                   // Content-Type
)

// excluded[m] is the set of fields in m, for http.Header.WriteSubset.
var excluded = func() (sets [1 << 4]map[string]bool) {
	names := [...]string{"Content-Length", "Transfer-Encoding", "Connection", "Content-Type"}
	for m := range sets {
		sets[m] = map[string]bool{}
		for i, name := range names {
			if m&(1<<i) != 0 {
				sets[m][name] = true
			}
		}
	}
	return sets
}()

// excludedInterim are the fields an interim (1xx) response leaves out, as net/http.
var excludedInterim = excluded[exLength|exEncoding]

// first returns the first value of the field key, which must be canonical, as net/http's
// Header.get.
func first(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
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

// wants10KeepAlive reports an HTTP/1.0 request that asks to keep the connection.
func wants10KeepAlive(r *http.Request) bool {
	return r.ProtoMinor == 0 && hasToken(r.Header.Get("Connection"), "keep-alive")
}

// bodyAllowed reports whether a response with this status may have a body (RFC 9110 §6.4.1).
func bodyAllowed(code int) bool {
	return !(code >= 100 && code <= 199 || code == http.StatusNoContent || code == http.StatusNotModified)
}

// writeStatusLine writes the status line in the request's version, as net/http does.
func writeStatusLine(bw stringWriter, http11 bool, code int) {
	if http11 {
		bw.WriteString("HTTP/1.1 ")
	} else {
		bw.WriteString("HTTP/1.0 ")
	}
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

// hasToken reports whether the comma-separated list v holds token, case-insensitively.
func hasToken(v, token string) bool {
	for t := range strings.SplitSeq(v, ",") {
		if strings.EqualFold(strings.TrimSpace(t), token) {
			return true
		}
	}
	return false
}
