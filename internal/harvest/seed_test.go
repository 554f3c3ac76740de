package harvest

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/static"
	"github.com/sekisho/sekisho/internal/store"
	"github.com/sekisho/sekisho/internal/testenv"
)

// page is an HTML page of about 3 KiB (over static.MinGzipBytes).
var page = "<!doctype html>\n<html><head><title>t</title></head>\n<body>\n<h1>Hello</h1>\n" +
	strings.Repeat("<p>The quick brown fox jumps over the lazy dog.</p>\n", 60) + "</body>\n</html>\n"

// seededSite serves a directory through the real static handler wrapped by Seed.
type seededSite struct {
	t       testing.TB
	h       http.Handler // Seed(static)
	plain   http.Handler // static alone
	store   store.Store
	planter *Planter
	root    string
}

func newSeededSite(t testing.TB, files map[string]string) *seededSite {
	t.Helper()
	root := t.TempDir()
	for name, body := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := static.New(static.Options{Root: root}, static.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st := openStore(t)
	n := newNode(t, st, testenv.NewClock(time.Now()), true)
	return &seededSite{t: t, h: Seed(f, n.p), plain: f, store: st, planter: n.p, root: root}
}

// get sends a request as client ip with the given header lines ("Name: value").
func (s *seededSite) do(h http.Handler, method, target, ip string, hdr ...string) *http.Response {
	s.t.Helper()
	r := httptest.NewRequest(method, "http://www.example.jp"+target, nil)
	r.RemoteAddr = ip + ":40000"
	for _, line := range hdr {
		k, v, _ := strings.Cut(line, ":")
		r.Header.Add(k, strings.TrimSpace(v))
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	res := w.Result()
	s.t.Cleanup(func() { res.Body.Close() })
	return res
}

func (s *seededSite) get(target, ip string, hdr ...string) (*http.Response, []byte) {
	s.t.Helper()
	res := s.do(s.h, http.MethodGet, target, ip, hdr...)
	b, err := io.ReadAll(res.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	return res, b
}

// address is the address a client gets.
func (s *seededSite) address(ip string) string {
	s.t.Helper()
	a, err := s.planter.Address(s.t.Context(), netip.MustParseAddr(ip))
	if err != nil {
		s.t.Fatal(err)
	}
	return a
}

// checkLength fails unless Content-Length is the length of the body received.
func checkLength(t *testing.T, res *http.Response, body []byte) {
	t.Helper()
	if cl := res.Header.Get("Content-Length"); cl != strconv.Itoa(len(body)) {
		t.Errorf("Content-Length %q for a body of %d bytes", cl, len(body))
	}
}

func gunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("gzip body: %v", err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gzip body: %v", err)
	}
	return out
}

// A page is seeded just before </body>, with headers that fit the body sent.
func TestSeedStaticPage(t *testing.T) {
	s := newSeededSite(t, map[string]string{"index.html": page})
	plainRes := s.do(s.plain, http.MethodGet, "/", "127.0.0.7")
	origTag := plainRes.Header.Get("ETag")
	res, body := s.get("/", "127.0.0.7")
	addr := s.address("127.0.0.7")
	want := strings.Replace(page, "</body>", Link(addr)+"</body>", 1)
	if res.StatusCode != 200 || string(body) != want {
		t.Fatalf("GET / = %d\n%s\nwant the page with %s before </body>", res.StatusCode, body, Link(addr))
	}
	checkLength(t, res, body)
	if tag := res.Header.Get("ETag"); tag != SeededETag(origTag, addr) || tag == origTag || !strings.HasPrefix(tag, strings.TrimSuffix(origTag, `"`)+"-") {
		t.Errorf("ETag %q, want %q (from the file's %q)", tag, SeededETag(origTag, addr), origTag)
	}
	if res.Header.Get("Cache-Control") != "private" || !strings.Contains(res.Header.Get("Vary"), "Accept-Encoding") {
		t.Errorf("Cache-Control %q, Vary %q", res.Header.Get("Cache-Control"), res.Header.Get("Vary"))
	}
	if res.Header.Get("Last-Modified") != plainRes.Header.Get("Last-Modified") {
		t.Errorf("Last-Modified %q, want the file's %q", res.Header.Get("Last-Modified"), plainRes.Header.Get("Last-Modified"))
	}
	// /index.html and / are the same page for the same visitor.
	if _, b2 := s.get("/index.html", "127.0.0.7"); !bytes.Equal(b2, body) {
		t.Error("/index.html differs from /")
	}
	// Another visitor gets another address, and another ETag.
	res8, body8 := s.get("/", "127.0.0.8")
	if addr8 := s.address("127.0.0.8"); addr8 == addr || !bytes.Contains(body8, []byte(Link(addr8))) {
		t.Errorf("127.0.0.8 got %q (127.0.0.7: %q)", addr8, addr)
	}
	if res8.Header.Get("ETag") == res.Header.Get("ETag") {
		t.Error("two visitors got the same ETag for different bodies")
	}
}

// ETag, 304, Range and gzip on a seeded page behave as HTTP requires (RFC 9110 §8.8.3,
// §13, §14): never a mix of seeded and unseeded bytes.
func TestSeedConditionalRangeGzip(t *testing.T) {
	s := newSeededSite(t, map[string]string{"index.html": page})
	const ip = "127.0.0.7"
	res, full := s.get("/", ip)
	tag := res.Header.Get("ETag")
	origTag := s.do(s.plain, http.MethodGet, "/", ip).Header.Get("ETag")

	t.Run("304 for the seeded ETag", func(t *testing.T) {
		r, b := s.get("/", ip, "If-None-Match: "+tag)
		if r.StatusCode != http.StatusNotModified || len(b) != 0 || r.Header.Get("ETag") != tag {
			t.Errorf("status %d, %d bytes, ETag %q; want 304, empty, %q", r.StatusCode, len(b), r.Header.Get("ETag"), tag)
		}
	})
	t.Run("200 seeded for the unseeded ETag", func(t *testing.T) {
		r, b := s.get("/", ip, "If-None-Match: "+origTag)
		if r.StatusCode != 200 || !bytes.Equal(b, full) {
			t.Errorf("status %d, body equal %v; want 200 with the seeded page", r.StatusCode, bytes.Equal(b, full))
		}
	})
	t.Run("If-Modified-Since alone", func(t *testing.T) {
		r, _ := s.get("/", ip, "If-Modified-Since: "+res.Header.Get("Last-Modified"))
		if r.StatusCode != http.StatusNotModified {
			t.Errorf("status %d, want 304", r.StatusCode)
		}
	})
	t.Run("If-Match", func(t *testing.T) {
		if r, _ := s.get("/", ip, "If-Match: "+origTag); r.StatusCode != http.StatusPreconditionFailed {
			t.Errorf("If-Match with the unseeded tag: %d, want 412", r.StatusCode)
		}
		if r, b := s.get("/", ip, "If-Match: "+tag); r.StatusCode != 200 || !bytes.Equal(b, full) {
			t.Errorf("If-Match with the seeded tag: %d", r.StatusCode)
		}
	})
	t.Run("range of the seeded body", func(t *testing.T) {
		n := len(full)
		r, b := s.get("/", ip, fmt.Sprintf("Range: bytes=%d-", n-200), "Accept-Encoding: gzip")
		if r.StatusCode != http.StatusPartialContent || !bytes.Equal(b, full[n-200:]) {
			t.Fatalf("status %d, body %q; want 206 with the last 200 bytes of the seeded page", r.StatusCode, b)
		}
		if cr := r.Header.Get("Content-Range"); cr != fmt.Sprintf("bytes %d-%d/%d", n-200, n-1, n) {
			t.Errorf("Content-Range %q, want the seeded length %d", cr, n)
		}
		if r.Header.Get("Content-Encoding") != "" {
			t.Error("a range response is encoded")
		}
		checkLength(t, r, b)
	})
	t.Run("If-Range with the unseeded ETag gets the whole seeded page", func(t *testing.T) {
		r, b := s.get("/", ip, "Range: bytes=0-9", "If-Range: "+origTag)
		if r.StatusCode != 200 || !bytes.Equal(b, full) {
			t.Errorf("status %d, %d bytes; want 200 with the seeded page", r.StatusCode, len(b))
		}
		r, b = s.get("/", ip, "Range: bytes=0-9", "If-Range: "+tag)
		if r.StatusCode != http.StatusPartialContent || !bytes.Equal(b, full[:10]) {
			t.Errorf("If-Range with the seeded tag: status %d, %q", r.StatusCode, b)
		}
	})
	t.Run("gzip of the seeded body", func(t *testing.T) {
		r, b := s.get("/", ip, "Accept-Encoding: br;q=1, gzip;q=0.5")
		if r.Header.Get("Content-Encoding") != "gzip" {
			t.Fatalf("Content-Encoding %q, want gzip", r.Header.Get("Content-Encoding"))
		}
		checkLength(t, r, b)
		if got := gunzip(t, b); !bytes.Equal(got, full) {
			t.Errorf("gunzipped body differs from the seeded page")
		}
		gzTag := r.Header.Get("ETag")
		if gzTag == tag || gzTag == "" {
			t.Errorf("gzip ETag %q, want one apart from the identity's %q", gzTag, tag)
		}
		r2, b2 := s.get("/", ip, "Accept-Encoding: gzip", "If-None-Match: "+gzTag)
		if r2.StatusCode != http.StatusNotModified || len(b2) != 0 || r2.Header.Get("ETag") != gzTag {
			t.Errorf("If-None-Match with the gzip tag: %d, %d bytes, ETag %q", r2.StatusCode, len(b2), r2.Header.Get("ETag"))
		}
		r3, _ := s.get("/", ip, "Accept-Encoding: gzip", "If-None-Match: "+tag)
		if r3.StatusCode != 200 {
			t.Errorf("If-None-Match with the identity tag, gzip accepted: %d, want 200", r3.StatusCode)
		}
	})
	t.Run("HEAD has the headers of GET", func(t *testing.T) {
		r := s.do(s.h, http.MethodHead, "/", ip)
		b, _ := io.ReadAll(r.Body)
		if r.StatusCode != 200 || len(b) != 0 || r.Header.Get("ETag") != tag || r.Header.Get("Content-Length") != strconv.Itoa(len(full)) {
			t.Errorf("HEAD: %d, %d bytes, ETag %q, Content-Length %q; want GET's %q, %d",
				r.StatusCode, len(b), r.Header.Get("ETag"), r.Header.Get("Content-Length"), tag, len(full))
		}
	})
}

// A HEAD alone plants nothing: the address is not shown.
func TestSeedHeadPlantsNothing(t *testing.T) {
	s := newSeededSite(t, map[string]string{"index.html": page})
	s.do(s.h, http.MethodHead, "/", "127.0.0.9")
	addr := s.address("127.0.0.9")
	time.Sleep(50 * time.Millisecond)
	if _, err := s.store.GetTrap(t.Context(), addr); err == nil {
		t.Error("a HEAD planted a trap")
	}
	s.get("/", "127.0.0.9")
	waitTrap(t, s.store, addr)
}

// What is not a 200 HTML page of bounded size passes as the handler made it.
func TestSeedPassesOthers(t *testing.T) {
	big := "<html><body>" + strings.Repeat("x", MaxSeedBytes) + "</body></html>"
	css := strings.Repeat("body { color: black; }\n", 100)
	s := newSeededSite(t, map[string]string{
		"index.html": page, "style.css": css, "big.html": big, "doc.txt": "plain text",
		"noext": "<html><body>octet</body></html>", "sub/index.html": page,
	})
	const ip = "127.0.0.7"
	for _, tc := range []struct {
		name, target string
		hdr          []string
	}{
		{"css with gzip", "/style.css", []string{"Accept-Encoding: gzip"}},
		{"css range", "/style.css", []string{"Range: bytes=0-3"}},
		{"text", "/doc.txt", nil},
		{"not found", "/missing.html", nil},
		{"directory redirect", "/sub", nil},
		{"html over the limit", "/big.html", []string{"Accept-Encoding: gzip"}},
		{"file without extension, not html", "/noext", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := s.do(s.plain, http.MethodGet, tc.target, ip, tc.hdr...)
			wantBody, _ := io.ReadAll(want.Body)
			got, body := s.get(tc.target, ip, tc.hdr...)
			if got.StatusCode != want.StatusCode || !bytes.Equal(body, wantBody) {
				t.Errorf("status %d (%d bytes), want %d (%d bytes) as without Seed", got.StatusCode, len(body), want.StatusCode, len(wantBody))
			}
			for _, h := range []string{"ETag", "Content-Length", "Content-Encoding", "Content-Type", "Location"} {
				if got.Header.Get(h) != want.Header.Get(h) {
					t.Errorf("%s %q, want %q", h, got.Header.Get(h), want.Header.Get(h))
				}
			}
		})
	}
	// A POST, and a path under a skip prefix, reach the handler untouched.
	var seen []string
	app := Seed(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.Method+" "+r.URL.Path+" "+r.Header.Get("Accept-Encoding"))
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "<html><body>app</body></html>")
	}), s.planter, "/api/")
	for _, m := range []string{http.MethodPost, http.MethodGet} {
		r := httptest.NewRequest(m, "/api/v1/lists", nil)
		r.Header.Set("Accept-Encoding", "gzip")
		w := httptest.NewRecorder()
		app.ServeHTTP(w, r)
		if w.Body.String() != "<html><body>app</body></html>" {
			t.Errorf("%s /api/v1/lists = %q, want it untouched", m, w.Body.String())
		}
	}
	if strings.Join(seen, "|") != "POST /api/v1/lists gzip|GET /api/v1/lists gzip" {
		t.Errorf("handler saw %q", seen)
	}
}

// An app page (no ETag, no Content-Length, written in pieces) is seeded too; one without
// </body> gets the link at the end; a broken one is sent unseeded.
func TestSeedAppPages(t *testing.T) {
	s := newSeededSite(t, nil)
	const ip = "127.0.0.7"
	addr := s.address(ip)
	for _, tc := range []struct {
		name, page, want string
		status           int
		ctype            string
	}{
		{"pieces", "<html><body><p>a</p></BODY ></html>", "<html><body><p>a</p>" + Link(addr) + "</BODY ></html>", 200, "text/html; charset=utf-8"},
		{"no body end", "<p>fragment</p>", "<p>fragment</p>" + Link(addr), 200, "text/html"},
		{"end inside a tag", "<p>fragment</p><a href=\"x", "<p>fragment</p><a href=\"x", 200, "text/html"},
		{"end in a script", "<body><script>document.write('</body>')", "<body><script>document.write('</body>')", 200, "text/html"},
		{"closed script", "<body><script>x('</body>')</script></body>", "<body><script>x('</body>')</script>" + Link(addr) + "</body>", 200, "text/html"},
		{"utf-16", "<\x00b\x00>\x00", "<\x00b\x00>\x00", 200, "text/html; charset=UTF-16LE"},
		{"error page", "<html><body>gone</body></html>", "<html><body>gone</body></html>", 410, "text/html"},
		{"sniffed html", "<html><body>sniffed</body></html>", "<html><body>sniffed" + Link(addr) + "</body></html>", 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := Seed(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.ctype != "" {
					w.Header().Set("Content-Type", tc.ctype)
				}
				if tc.status != 200 {
					w.WriteHeader(tc.status)
				}
				for i := 0; i < len(tc.page); i += 7 {
					io.WriteString(w, tc.page[i:min(i+7, len(tc.page))])
				}
			}), s.planter)
			res := s.do(h, http.MethodGet, "/c/page", ip)
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != tc.status || string(body) != tc.want {
				t.Errorf("got %d %q\nwant %d %q", res.StatusCode, body, tc.status, tc.want)
			}
			if res.Header.Get("ETag") != "" {
				t.Errorf("ETag %q made up for a page that had none", res.Header.Get("ETag"))
			}
			if cl := res.Header.Get("Content-Length"); cl != "" {
				checkLength(t, res, body)
			}
		})
	}
}
