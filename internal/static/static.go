// Package static serves the files of one directory: the [[web.route]] entries with a root
// (SPEC §5).
//
// What may be served is decided before the file system is asked: only GET and HEAD; the
// request path (percent-decoded once by net/http) is split into segments, and a path with an
// empty, "." or ".." segment, a segment starting with "." (dotfiles and dot-directories such
// as .git), a backslash, a NUL byte, or an encoded slash (%2F) or backslash (%5C) is not
// found. Files are opened through os.Root, so neither ".." nor a symbolic link can lead
// outside the directory. A directory is served as its index.html, never as a listing.
//
// Responses carry a strong ETag (size and modification time) and Last-Modified, and
// http.ServeContent answers If-None-Match, If-Modified-Since and Range (RFC 9110 §13, §14).
// Text (text/*, JavaScript, JSON, SVG, XML) is sent compressed to clients that accept it:
// a precompressed sibling (name.br, then name.gz) when there is one, else gzip made on the
// fly for files between MinGzipBytes and MaxGzipBytes. A Range request is always answered
// from the file itself, uncompressed.
package static

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Compression bounds for gzip made on the fly.
const (
	MinGzipBytes = 1 << 10
	MaxGzipBytes = 8 << 20
)

// Options configure a Handler.
type Options struct {
	Root string // the directory served
	// StripPrefix is removed from the request path before it names a file: with
	// StripPrefix "/docs/" and Root "/srv/docs", /docs/a.html is /srv/docs/a.html.
	StripPrefix string
}

// Deps are the parts a Handler works with.
type Deps struct {
	Logger *slog.Logger // nil: discard
}

// Handler serves the files under one directory.
type Handler struct {
	opts  Options
	root  *os.Root
	log   *slog.Logger
	gzips sync.Pool // *gzip.Writer
}

// New opens the directory; Close releases it.
func New(opts Options, deps Deps) (*Handler, error) {
	root, err := os.OpenRoot(opts.Root)
	if err != nil {
		return nil, fmt.Errorf("static root: %w", err)
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{opts: opts, root: root, log: deps.Logger}
	h.gzips.New = func() any { return gzip.NewWriter(io.Discard) }
	return h, nil
}

// Close releases the directory.
func (h *Handler) Close() error { return h.root.Close() }

// ServeHTTP serves one file.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	name, ok := h.fileName(r)
	if !ok {
		h.log.Debug("static path refused", "client", r.RemoteAddr, "path", r.URL.EscapedPath())
		http.NotFound(w, r)
		return
	}
	f, fi, err := h.open(name)
	if err == nil && fi.IsDir() {
		f.Close()
		if !strings.HasSuffix(r.URL.Path, "/") {
			// Relative links in the index resolve against the directory (as http.FileServer).
			target := r.URL.EscapedPath() + "/"
			if r.URL.RawQuery != "" {
				target += "?" + r.URL.RawQuery
			}
			if _, err := h.root.Stat(path.Join(name, "index.html")); err != nil {
				http.NotFound(w, r)
				return
			}
			http.Redirect(w, r, target, http.StatusMovedPermanently)
			return
		}
		name = path.Join(name, "index.html")
		f, fi, err = h.open(name)
	}
	if err != nil || !fi.Mode().IsRegular() {
		if err == nil {
			f.Close()
		} else if !errors.Is(err, fs.ErrNotExist) {
			h.log.Debug("static open", "path", name, "err", err)
		}
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	h.serveFile(w, r, name, f, fi)
}

// fileName turns the request path into a name inside the root, or refuses it.
func (h *Handler) fileName(r *http.Request) (string, bool) {
	raw := r.URL.RawPath
	if raw == "" {
		raw = r.URL.Path
	}
	if lower := strings.ToLower(raw); strings.Contains(lower, "%2f") || strings.Contains(lower, "%5c") || strings.Contains(lower, "%00") {
		return "", false
	}
	p := r.URL.Path
	if !strings.HasPrefix(p, "/") {
		return "", false
	}
	if pre := h.opts.StripPrefix; pre != "" {
		switch {
		case strings.HasPrefix(p, pre):
			p = p[len(pre):]
		case p+"/" == pre:
			p = ""
		default:
			return "", false
		}
	}
	p = strings.TrimPrefix(p, "/")
	if p == "" {
		return ".", true
	}
	p = strings.TrimSuffix(p, "/")
	segs := strings.Split(p, "/")
	for _, s := range segs {
		if s == "" || s[0] == '.' || strings.ContainsAny(s, "\\\x00") {
			return "", false
		}
	}
	return p, true
}

func (h *Handler) open(name string) (*os.File, fs.FileInfo, error) {
	f, err := h.root.Open(name)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}

// serveFile answers with the file or one of its compressed forms.
func (h *Handler) serveFile(w http.ResponseWriter, r *http.Request, name string, f *os.File, fi fs.FileInfo) {
	hdr := w.Header()
	ctype := mime.TypeByExtension(path.Ext(name))
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	hdr.Set("Content-Type", ctype)
	hdr.Set("X-Content-Type-Options", "nosniff")
	tag := etag(fi)
	text := compressible(ctype)
	if text {
		hdr.Add("Vary", "Accept-Encoding")
	}
	// Ranges count bytes of the representation sent: only the file itself is offered.
	if text && r.Header.Get("Range") == "" {
		ae := r.Header.Get("Accept-Encoding")
		for _, enc := range [...]struct{ name, ext string }{{"br", ".br"}, {"gzip", ".gz"}} {
			if !Accepts(ae, enc.name) {
				continue
			}
			if cf, cfi, err := h.open(name + enc.ext); err == nil {
				defer cf.Close()
				if cfi.Mode().IsRegular() {
					h.serveEncoded(w, r, enc.name, etag(cfi), cfi.ModTime(), cfi.Size(), cf)
					return
				}
			}
		}
		if Accepts(ae, "gzip") && fi.Size() >= MinGzipBytes && fi.Size() <= MaxGzipBytes {
			buf, err := h.gzip(f)
			if err == nil {
				h.serveEncoded(w, r, "gzip", strings.TrimSuffix(tag, `"`)+`-gz"`, fi.ModTime(), int64(buf.Len()), bytes.NewReader(buf.Bytes()))
				return
			}
			h.log.Warn("static gzip", "path", name, "err", err)
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				http.Error(w, "Internal Server Error", http.StatusInternalServerError)
				return
			}
		}
	}
	hdr.Set("ETag", tag)
	http.ServeContent(w, r, name, fi.ModTime(), f)
}

// serveEncoded sends a compressed form. ServeContent leaves Content-Length to the caller
// when Content-Encoding is set; a 304 removes it again.
func (h *Handler) serveEncoded(w http.ResponseWriter, r *http.Request, enc, tag string, mod time.Time, size int64, body io.ReadSeeker) {
	hdr := w.Header()
	hdr.Set("Content-Encoding", enc)
	hdr.Set("ETag", tag)
	hdr.Set("Content-Length", strconv.FormatInt(size, 10))
	http.ServeContent(w, r, "", mod, body)
}

func (h *Handler) gzip(f io.Reader) (*bytes.Buffer, error) {
	var buf bytes.Buffer
	zw := h.gzips.Get().(*gzip.Writer)
	defer h.gzips.Put(zw)
	zw.Reset(&buf)
	if _, err := io.Copy(zw, f); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return &buf, nil
}

// etag is a strong validator from the file's size and modification time.
func etag(fi fs.FileInfo) string {
	return `"` + strconv.FormatInt(fi.Size(), 36) + "-" + strconv.FormatInt(fi.ModTime().UnixNano(), 36) + `"`
}

// compressible reports the media types worth compressing.
func compressible(ctype string) bool {
	mt, _, _ := strings.Cut(ctype, ";")
	mt = strings.TrimSpace(strings.ToLower(mt))
	switch {
	case strings.HasPrefix(mt, "text/"):
		return true
	case mt == "application/javascript", mt == "application/json", mt == "application/xml",
		mt == "image/svg+xml", mt == "application/manifest+json", strings.HasSuffix(mt, "+json"), strings.HasSuffix(mt, "+xml"):
		return true
	}
	return false
}

// Accepts reports whether an Accept-Encoding value allows coding (RFC 9110 §12.5.3): named
// or matched by "*", with a q-value above zero.
func Accepts(header, coding string) bool {
	star := false
	for item := range strings.SplitSeq(header, ",") {
		name, params, _ := strings.Cut(item, ";")
		name = strings.TrimSpace(name)
		ok := qNonZero(params)
		switch {
		case strings.EqualFold(name, coding):
			return ok
		case name == "*":
			star = ok
		}
	}
	return star
}

func qNonZero(params string) bool {
	for p := range strings.SplitSeq(params, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(strings.TrimSpace(k), "q") {
			q, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return err == nil && q > 0
		}
	}
	return true
}

var _ http.Handler = (*Handler)(nil)
