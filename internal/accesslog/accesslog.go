// Package accesslog records what an access log line and the metrics tell of one HTTP
// exchange: the status and size of the response, and the size of the request body. The
// forward proxy and the web server's routes wrap their exchanges in it.
package accesslog

import (
	"io"
	"net/http"
	"sync/atomic"
)

// Writer is an http.ResponseWriter that records the status and body size of the response.
type Writer struct {
	http.ResponseWriter
	Status int   // the final status (interim 1xx answers are not recorded); 0 before one
	Bytes  int64 // body bytes written
}

// WriteHeader implements http.ResponseWriter.
func (w *Writer) WriteHeader(code int) {
	if w.Status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.Status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write implements http.ResponseWriter.
func (w *Writer) Write(b []byte) (int, error) {
	if w.Status == 0 {
		w.Status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.Bytes += int64(n)
	return n, err
}

// ReadFrom keeps the connection's own ReadFrom (sendfile for files) in use.
func (w *Writer) ReadFrom(r io.Reader) (int64, error) {
	if w.Status == 0 {
		w.Status = http.StatusOK
	}
	n, err := io.Copy(w.ResponseWriter, r)
	w.Bytes += n
	return n, err
}

// Unwrap lets http.ResponseController reach Flush and Hijack (CONNECT, WebSocket upgrades).
func (w *Writer) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Body counts the request body bytes read into N. N is atomic: a reverse proxy reads the
// body in its Transport's goroutine.
type Body struct {
	io.ReadCloser
	N *atomic.Int64
}

func (b *Body) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.N.Add(int64(n))
	return n, err
}
