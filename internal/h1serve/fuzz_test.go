package h1serve

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// fuzzHandler answers what it got (method, target, host, header fields sorted, body
// length), with a fixed Date. Words in the path choose how: 103 (an interim response
// first), cl (a Content-Length), short and over (one too long, one too short), close
// (Connection: close), 204, 304, trailer, flush (two writes, the head flushed between),
// big (a body over 2 KiB), html (a body to sniff as such), ct (a Content-Type), identity
// (Transfer-Encoding: identity), late (fields set after the body).
var fuzzHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	n, err := io.Copy(io.Discard, r.Body)
	var b strings.Builder
	fmt.Fprintf(&b, "%s %q %s host=%q close=%v cl=%d te=%q\n", r.Method, r.RequestURI, r.Proto, r.Host, r.Close, r.ContentLength, r.TransferEncoding)
	writeFieldsSorted(&b, r.Header, "%s: %q\n")
	fmt.Fprintf(&b, "body=%d err=%v\n", n, err)
	path := r.URL.Path
	if strings.Contains(path, "html") {
		b.WriteString("<html>")
	}
	if strings.Contains(path, "big") {
		b.WriteString(strings.Repeat("0123456789abcdef", 160))
	}
	body := b.String()

	h := w.Header()
	h.Set("Date", "Mon, 02 Jan 2006 15:04:05 GMT")
	if strings.Contains(path, "103") {
		h.Set("Link", "</a.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
	}
	if strings.Contains(path, "ct") {
		h.Set("Content-Type", "text/x-echo")
	}
	if strings.Contains(path, "close") {
		h.Set("Connection", "close")
	}
	switch {
	case strings.Contains(path, "cl"):
		h.Set("Content-Length", fmt.Sprint(len(body)))
	case strings.Contains(path, "short"):
		h.Set("Content-Length", fmt.Sprint(len(body)+10))
	case strings.Contains(path, "over"):
		h.Set("Content-Length", "10")
	}
	if strings.Contains(path, "identity") {
		h.Set("Transfer-Encoding", "identity")
	}
	if strings.Contains(path, "trailer") {
		h.Set("Trailer", "X-Length")
	}
	switch {
	case strings.Contains(path, "204"):
		w.WriteHeader(http.StatusNoContent)
	case strings.Contains(path, "304"):
		w.WriteHeader(http.StatusNotModified)
	}
	// Write, not io.WriteString: net/http's chunks are cut where its 2 KiB buffer fills when
	// given a string, while here a chunk is a write, which is as valid.
	if strings.Contains(path, "flush") {
		half := len(body) / 2
		w.Write([]byte(body[:half]))
		w.(http.Flusher).Flush()
		w.Write([]byte(body[half:]))
	} else {
		w.Write([]byte(body))
	}
	if strings.Contains(path, "trailer") {
		h.Set("X-Length", fmt.Sprint(len(body)))
	}
	if strings.Contains(path, "late") {
		h.Set("X-Late", "1")
		h.Set("Content-Length", "1")
	}
})

// fuzzSeeds are the request shapes of the tests, alone and in sequence.
func fuzzSeeds() []string {
	get := func(path string) string { return "GET " + path + " HTTP/1.1\r\nHost: example.test\r\n\r\n" }
	head := func(path string) string { return "HEAD " + path + " HTTP/1.1\r\nHost: example.test\r\n\r\n" }
	post := "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world"
	seeds := []string{
		get("/"),
		get("/a") + get("/b") + head("/c") + get("/d"),
		get("/1") + post + get("/3"),
		get("/close") + get("/after"),
		"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" + get("/after"),
		"GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\n\r\n",
		"GET /q?a=1&b=%20 HTTP/1.1\r\nHost: x:80\r\nAccept: */*\r\nX-A: 1\r\nX-A: 2\r\nCookie: a=b\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n" + get("/"),
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nshort",
		"GET / HTTP/1.0\r\nHost: x\r\n\r\n",
		"GET / HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n" + get("/"),
		"GET / HTTP/1.2\r\nHost: x\r\n\r\n",
		"GET / HTTP/2.0\r\nHost: x\r\n\r\n",
		"GET http://example.test/abs HTTP/1.1\r\nHost: x\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
		"GET / HTTP/1.1\r\nHost: x\r\nExpect: something\r\n\r\n",
		"GET /lf HTTP/1.1\nHost: x\n\n" + get("/"),
		"GET /lf HTTP/1.1\r\nHost: x\nX: y\r\n\r\n",
		"\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nX-Long: " + strings.Repeat("a", 2000) + "\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\n",
		"GET / HT",
		"GET / HTTP/1.1\r\nHost: x\r\nBad Name: x\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nX: a\x01b\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
		"GET / HTTP/1.1\r\nX: y\r\n\r\n",
		"GET / HTTP/1.1\r\nHost:\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
		"GET /\r\nHost: x\r\n\r\n",
		"G(T / HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\n\r\r\n",
	}
	for _, p := range []string{"/103", "/cl", "/204", "/304", "/trailer", "/flush", "/big", "/ct", "/big-flush-trailer", "/103-cl-close",
		"/short", "/over", "/html", "/identity", "/late", "/big-late", "/html-flush-identity"} {
		seeds = append(seeds, get(p)+head(p)+get("/next"))
	}
	return seeds
}

// For any bytes a client sends, an h1serve Server answers what a net/http Server does.
func FuzzServeVsNetHTTP(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add([]byte(s))
	}
	fast, ref := startPair(f, fuzzHandler, 1<<10)
	f.Fuzz(func(t *testing.T, in []byte) {
		sameAnswer(t, fast, ref, in, 5*time.Second)
	})
}
