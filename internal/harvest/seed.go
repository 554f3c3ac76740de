package harvest

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/netip"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sekisho/sekisho/internal/static"
	"github.com/sekisho/sekisho/internal/webui"
)

// MaxSeedBytes bounds the HTML page held in memory to be seeded; a larger one is sent as
// it comes, unseeded.
const MaxSeedBytes = 2 << 20

// stripped are the request headers the wrapped handler does not see on a page that may be
// seeded: the validators, ranges and content codings of the seeded page differ from those
// of the page the handler serves, so Seed answers them itself (RFC 9110 §13, §14, §8.4).
var stripped = [...]string{
	"Accept-Encoding", "Range", "If-Range",
	"If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since",
}

// Seed wraps the handler of the built-in app or of a static route: each text/html 200 page
// it serves to a GET gets the visitor's hidden trap link (see Link, Insert), with headers
// that fit the page sent. Conditional requests, ranges and gzip are answered on the seeded
// page: its ETag is the handler's with a tag of the address, and a 304, a 206 or a gzip
// body is always of the seeded bytes. A HEAD gets the headers a GET would, without planting.
//
// Only requests whose path may name a page are touched: the last segment has no extension,
// or .html or .htm; paths under a skip prefix (an API, metrics) pass as they are, and so do
// other responses (not HTML, not 200, encoded by the handler, larger than MaxSeedBytes).
func Seed(next http.Handler, p *Planter, skip ...string) http.Handler {
	s := &seeder{next: next, p: p, skip: skip}
	s.gzips.New = func() any { return gzip.NewWriter(io.Discard) }
	s.bufs.New = func() any { return new(bytes.Buffer) }
	return s
}

type seeder struct {
	next  http.Handler
	p     *Planter
	skip  []string
	gzips sync.Pool // *gzip.Writer
	bufs  sync.Pool // *bytes.Buffer
}

func (s *seeder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ip := webui.ClientIP(r)
	if !s.pageRequest(r) || !ip.IsValid() {
		s.next.ServeHTTP(w, r)
		return
	}
	inner := new(http.Request)
	*inner = *r
	inner.Method = http.MethodGet // a HEAD is answered from the page a GET would get
	inner.Header = r.Header.Clone()
	for _, h := range stripped {
		inner.Header.Del(h)
	}
	buf := s.bufs.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= 256<<10 { // keep the pool small: one big page must not stay
			s.bufs.Put(buf)
		}
	}()
	c := &capture{w: w, hdr: http.Header{}, buf: buf, head: r.Method == http.MethodHead}
	s.next.ServeHTTP(c, inner)
	switch c.mode {
	case buffering:
		s.serveSeeded(w, r, ip, c.hdr, buf)
	case dropped:
		s.next.ServeHTTP(w, r)
	}
}

// pageRequest reports a GET or HEAD whose path may name an HTML page.
func (s *seeder) pageRequest(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	p := r.URL.Path
	for _, pre := range s.skip {
		if strings.HasPrefix(p, pre) {
			return false
		}
	}
	switch strings.ToLower(path.Ext(p[strings.LastIndexByte(p, '/')+1:])) {
	case "", ".html", ".htm":
		return true
	}
	return false
}

// serveSeeded sends the page with the visitor's link and the handler's headers, fitted to
// the seeded page. A page that cannot be seeded is served again by the handler, untouched.
func (s *seeder) serveSeeded(w http.ResponseWriter, r *http.Request, ip netip.Addr, inner http.Header, buf *bytes.Buffer) {
	page := buf.Bytes()
	at, ok := place(page)
	ok = ok && asciiCompatible(inner.Get("Content-Type"), page)
	var addr string
	if ok {
		var err error
		if addr, err = s.address(r, ip); err != nil {
			s.p.log.Warn("harvest: page sent unseeded", "client", ip.String(), "err", err)
			ok = false
		}
	}
	if !ok {
		s.next.ServeHTTP(w, r)
		return
	}
	// The link goes into the buffer itself: one contiguous body, written at once.
	link := Link(addr)
	buf.WriteString(link)
	seeded := buf.Bytes()
	copy(seeded[at+len(link):], seeded[at:len(page)])
	copy(seeded[at:], link)
	body := seeded
	hdr := w.Header()
	maps.Copy(hdr, inner)
	hdr.Del("Content-Length")
	tag := hdr.Get("ETag")
	if tag != "" {
		tag = SeededETag(tag, addr)
		hdr.Set("ETag", tag)
	}
	addVary(hdr, "Accept-Encoding")
	if hdr.Get("Cache-Control") == "" { // the page is this visitor's: no shared cache may keep it
		hdr.Set("Cache-Control", "private")
	}
	mod, _ := http.ParseTime(hdr.Get("Last-Modified"))
	if r.Header.Get("Range") == "" && static.Accepts(r.Header.Get("Accept-Encoding"), "gzip") && len(body) >= static.MinGzipBytes {
		if tag != "" {
			tag = strings.TrimSuffix(tag, `"`) + `-gz"`
			hdr.Set("ETag", tag)
		}
		var gz []byte
		if !noneMatch(r.Header.Get("If-None-Match"), tag) { // no need to compress for a 304
			gz = s.gzip(body)
		}
		hdr.Set("Content-Encoding", "gzip")
		hdr.Set("Content-Length", strconv.Itoa(len(gz)))
		body = gz
	}
	send(w, r, mod, body)
}

// send answers with body: http.ServeContent for a request with validators or a range,
// else what it would send, written directly (its copy through the connection's ReadFrom
// costs a 32 KiB buffer per response).
func send(w http.ResponseWriter, r *http.Request, mod time.Time, body []byte) {
	if conditional(r) {
		http.ServeContent(w, r, "", mod, bytes.NewReader(body))
		return
	}
	hdr := w.Header() // Last-Modified is the handler's
	hdr.Set("Accept-Ranges", "bytes")
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(body) // an error is the client gone
	}
}

// conditional reports a request that http.ServeContent must answer: with validators to
// check or a range to cut.
func conditional(r *http.Request) bool {
	for _, h := range stripped[1:] { // all but Accept-Encoding
		if r.Header.Get(h) != "" {
			return true
		}
	}
	return false
}

// address is the visitor's trap address; a GET plants it.
func (s *seeder) address(r *http.Request, ip netip.Addr) (string, error) {
	if r.Method == http.MethodHead {
		return s.p.Address(r.Context(), ip)
	}
	return s.p.plant(r.Context(), ip, func() Visit {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		return Visit{IP: ip, UserAgent: r.UserAgent(), URL: scheme + "://" + r.Host + r.URL.RequestURI()}
	})
}

func (s *seeder) gzip(body []byte) []byte {
	var out bytes.Buffer
	out.Grow(len(body)/3 + 64)
	zw := s.gzips.Get().(*gzip.Writer)
	defer s.gzips.Put(zw)
	zw.Reset(&out)
	zw.Write(body) // writes to a bytes.Buffer do not fail
	zw.Close()
	return out.Bytes()
}

// SeededETag is the entity tag of a page seeded with addr: the handler's tag with a short
// hash of the address, weak if it was weak. The link is fixed text around the address, so
// the tag changes exactly when the page or the address does.
func SeededETag(tag, addr string) string {
	sum := sha256.Sum256([]byte(addr))
	suffix := "-" + hex.EncodeToString(sum[:4])
	if strings.HasSuffix(tag, `"`) && len(tag) >= 2 {
		return tag[:len(tag)-1] + suffix + `"`
	}
	return `"` + strings.Trim(tag, `"`) + suffix + `"`
}

// noneMatch reports whether an If-None-Match value names tag (weak comparison, RFC 9110
// §13.1.2), so that the answer will be 304.
func noneMatch(header, tag string) bool {
	if header == "" || tag == "" {
		return false
	}
	if strings.TrimSpace(header) == "*" {
		return true
	}
	want := strings.TrimPrefix(tag, "W/")
	for t := range strings.SplitSeq(header, ",") {
		if strings.TrimPrefix(strings.TrimSpace(t), "W/") == want {
			return true
		}
	}
	return false
}

// asciiCompatible reports whether the link's ASCII bytes can go into the page as they are:
// not for UTF-16 or UTF-32 pages (by charset or byte order mark).
func asciiCompatible(ctype string, page []byte) bool {
	if bytes.HasPrefix(page, []byte{0xfe, 0xff}) || bytes.HasPrefix(page, []byte{0xff, 0xfe}) {
		return false
	}
	if !strings.Contains(ctype, "16") && !strings.Contains(ctype, "32") {
		return true // the common case, without parsing
	}
	_, params, _ := mime.ParseMediaType(ctype)
	cs := strings.ToLower(params["charset"])
	return !strings.HasPrefix(cs, "utf-16") && !strings.HasPrefix(cs, "utf-32")
}

// isHTML reports a text/html Content-Type.
func isHTML(ctype string) bool {
	mt, _, _ := strings.Cut(ctype, ";")
	return strings.EqualFold(strings.TrimSpace(mt), "text/html")
}

func addVary(h http.Header, field string) {
	for _, v := range h.Values("Vary") {
		for f := range strings.SplitSeq(v, ",") {
			if f = strings.TrimSpace(f); f == "*" || strings.EqualFold(f, field) {
				return
			}
		}
	}
	h.Add("Vary", field)
}

// The capture's modes: what it does with the wrapped handler's response.
const (
	undecided = iota
	buffering // a 200 page to seed: kept in memory
	passing   // not a 200: sent on as it comes
	dropped   // a 200 not to seed: thrown away, the handler serves the request itself again
)

// capture is the ResponseWriter of the wrapped handler, which got the request without
// validators, ranges or content codings. At the first WriteHeader (or Write) it decides: a
// 200 text/html response without a content coding, up to MaxSeedBytes, is buffered; any
// other 200 is dropped, so that the handler answers the request as it came (what it
// stripped matters for a 200); a response of any other status is passed on untouched.
type capture struct {
	w      http.ResponseWriter
	hdr    http.Header // the handler's, copied to w's when passed
	buf    *bytes.Buffer
	head   bool // the client asked HEAD: the handler answers a GET, the body is dropped
	mode   int
	status int
}

func (c *capture) Header() http.Header { return c.hdr }

func (c *capture) WriteHeader(code int) {
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		maps.Copy(c.w.Header(), c.hdr)
		c.w.WriteHeader(code) // informational: on its way at once
		return
	}
	if c.mode != undecided {
		return
	}
	c.status = code
	switch {
	case code != http.StatusOK:
		c.mode = passing
		maps.Copy(c.w.Header(), c.hdr)
		c.w.WriteHeader(code)
	case isHTML(c.hdr.Get("Content-Type")) && c.hdr.Get("Content-Encoding") == "" && !tooLong(c.hdr.Get("Content-Length")):
		c.mode = buffering
	default:
		c.mode = dropped
	}
}

func tooLong(cl string) bool {
	n, err := strconv.ParseInt(cl, 10, 64)
	return err == nil && n > MaxSeedBytes
}

func (c *capture) Write(b []byte) (int, error) {
	if c.mode == undecided {
		if c.hdr.Get("Content-Type") == "" { // as net/http would sniff it
			c.hdr.Set("Content-Type", http.DetectContentType(b))
		}
		c.WriteHeader(http.StatusOK)
	}
	switch c.mode {
	case passing:
		if c.head {
			return len(b), nil
		}
		return c.w.Write(b)
	case buffering:
		if c.buf.Len()+len(b) <= MaxSeedBytes {
			return c.buf.Write(b)
		}
		c.mode = dropped
		c.buf.Reset()
	}
	return len(b), nil
}

// ReadFrom reads a page straight into the buffer (static files come this way, through
// http.ServeContent's io.CopyN), without io.Copy's intermediate buffer.
func (c *capture) ReadFrom(r io.Reader) (int64, error) {
	if c.mode == undecided || c.mode == passing {
		return io.Copy(writerOnly{c}, r)
	}
	var n int64
	if c.mode == buffering {
		m, err := c.buf.ReadFrom(io.LimitReader(r, int64(MaxSeedBytes-c.buf.Len()+1)))
		n += m
		if err != nil || c.buf.Len() <= MaxSeedBytes {
			return n, err
		}
		c.mode = dropped
		c.buf.Reset()
	}
	m, err := io.Copy(io.Discard, r)
	return n + m, err
}

// writerOnly hides capture's ReadFrom from io.Copy.
type writerOnly struct{ io.Writer }

// Flush flushes a passed response; a buffered page is sent whole at the end.
func (c *capture) Flush() {
	if c.mode == passing {
		http.NewResponseController(c.w).Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection (deadlines).
func (c *capture) Unwrap() http.ResponseWriter { return c.w }
