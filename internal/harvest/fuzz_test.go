package harvest

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/testenv"
)

// FuzzSeed sends any body as a text/html page through Seed: the answer is the page with
// the link spliced in once, before a </body> or at the end, or the page untouched; its
// Content-Length is right, and its gzip form is the same bytes.
func FuzzSeed(f *testing.F) {
	for _, s := range []string{
		page, "", "<", ">", "</body>", "</BODY", "<body></body></body>", "<script></body>",
		"<script>x</script></body>", "<textarea></body></textarea></body>", "<a href=\"x", "\xff\xfe<\x00",
		"<style>a{}</style><p>x", "</body >", "</body/>", "</bodyx>", "<!-- </body> -->",
	} {
		f.Add([]byte(s), false)
	}
	st := openStore(f)
	n := newNode(f, st, testenv.NewClock(time.Now()), false)
	addr, err := n.p.Address(f.Context(), mustAddr("192.0.2.1"))
	if err != nil {
		f.Fatal(err)
	}
	link := []byte(Link(addr))
	f.Fuzz(func(t *testing.T, in []byte, gz bool) {
		h := Seed(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Header().Set("ETag", `"v1"`)
			w.Write(in)
		}), n.p)
		r := httptest.NewRequest(http.MethodGet, "/page.html", nil)
		r.RemoteAddr = "192.0.2.1:1234"
		if gz {
			r.Header.Set("Accept-Encoding", "gzip")
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		res := w.Result()
		out, _ := io.ReadAll(res.Body)
		if res.StatusCode != 200 {
			t.Fatalf("status %d", res.StatusCode)
		}
		if cl := res.Header.Get("Content-Length"); cl != "" && cl != strconv.Itoa(len(out)) {
			t.Fatalf("Content-Length %s for %d bytes", cl, len(out))
		}
		if res.Header.Get("Content-Encoding") == "gzip" {
			out = gunzip(t, out)
		}
		if bytes.Equal(out, in) {
			if _, ok := place(in); ok && asciiCompatible("text/html; charset=utf-8", in) {
				t.Fatalf("a page with a place for the link was sent unseeded: %q", in)
			}
			return
		}
		if len(out) != len(in)+len(link) {
			t.Fatalf("out is %d bytes, want %d (in) + %d (link)", len(out), len(in), len(link))
		}
		i := bytes.Index(out, link)
		for i >= 0 && !(bytes.Equal(out[:i], in[:i]) && bytes.Equal(out[i+len(link):], in[i:])) {
			j := bytes.Index(out[i+1:], link)
			if j < 0 {
				i = -1
				break
			}
			i += 1 + j
		}
		if i < 0 {
			t.Fatalf("out is not in with the link spliced in:\nin  %q\nout %q", in, out)
		}
		if i != len(in) && !(len(in) >= i+6 && bytes.EqualFold(in[i:i+6], []byte("</body"))) {
			t.Fatalf("link at %d, neither the end nor a </body>: %q", i, in)
		}
		if res.Header.Get("ETag") == `"v1"` {
			t.Fatal("a seeded page kept the unseeded ETag")
		}
	})
}
