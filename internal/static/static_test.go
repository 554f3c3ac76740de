package static

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sekisho/sekisho/internal/testenv"
)

const secret = "TOP-SECRET-OUTSIDE-ROOT"

// site builds a directory to serve, with a secret file next to it, and serves it.
func site(t *testing.T, prefix string) (root string, srv *httptest.Server) {
	t.Helper()
	dir := t.TempDir()
	root = filepath.Join(dir, "site")
	outside := filepath.Join(dir, "outside")
	text := strings.Repeat("the quick brown fox jumps over the lazy dog\n", 100) // 4400 bytes
	files := map[string]string{
		"outside/secret.txt":   secret,
		"site/index.html":      "<h1>home</h1>",
		"site/big.txt":         text,
		"site/small.txt":       "tiny",
		"site/img.bin":         strings.Repeat("\x00\x01\x02\x03", 1024),
		"site/app.js":          strings.Repeat("console.log('x');\n", 100),
		"site/app.js.gz":       "precompressed-gzip",
		"site/app.js.br":       "precompressed-br",
		"site/.secret":         secret,
		"site/.git/config":     secret,
		"site/sub/file.txt":    "in sub",
		"site/docs/index.html": "<h1>docs</h1>",
		"site/..dots.txt":      secret,
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{
		"site/escape":      "../outside/secret.txt",
		"site/escape-abs":  filepath.Join(outside, "secret.txt"),
		"site/escape-dir":  "../outside",
		"site/inside-link": "small.txt",
	} {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	h, err := New(Options{Root: root, StripPrefix: prefix}, Deps{Logger: testenv.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	srv = httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return root, srv
}

// curl sends one request exactly as written (--path-as-is) and returns status and body.
func curl(t *testing.T, args ...string) (int, string) {
	t.Helper()
	path, err := exec.LookPath("curl")
	if err != nil {
		t.Fatalf("curl is needed for this test: %v", err)
	}
	args = append([]string{"-sS", "--path-as-is", "--max-time", "10", "-w", "\n%{http_code}"}, args...)
	out, err := exec.CommandContext(t.Context(), path, args...).Output()
	if err != nil {
		t.Fatalf("curl %v: %v", args, err)
	}
	s := string(out)
	i := strings.LastIndexByte(s, '\n')
	code, _ := strconv.Atoi(s[i+1:])
	return code, s[:i]
}

// Nothing outside the root, no dotfile and no listing is ever served.
func TestRefused(t *testing.T) {
	_, srv := site(t, "")
	for _, p := range []string{
		"/../outside/secret.txt",
		"/%2e%2e/outside/secret.txt",
		"/%2E%2E/%2E%2E/outside/secret.txt",
		"/..%2foutside%2fsecret.txt",
		"/..%2Foutside/secret.txt",
		"/sub/..%2f..%2foutside%2fsecret.txt",
		"/..%5coutside%5csecret.txt",
		"/sub/../../outside/secret.txt",
		"/./index.html",
		"//etc/passwd",
		"/escape",
		"/escape-abs",
		"/escape-dir/secret.txt",
		"/.secret",
		"/%2esecret",
		"/.git/config",
		"/sub/",
		"/sub",
		"/nothing-here",
		"/small.txt%00.html",
		"/..dots.txt",
	} {
		t.Run(p, func(t *testing.T) {
			code, body := curl(t, srv.URL+p)
			if code != 404 && code != 400 {
				t.Errorf("status %d, want 404 or 400", code)
			}
			if strings.Contains(body, secret) || strings.Contains(body, "root:") {
				t.Errorf("served a file it must not: %q", body)
			}
		})
	}
	if code, body := curl(t, "-X", "POST", srv.URL+"/small.txt"); code != 405 {
		t.Errorf("POST: %d %q, want 405", code, body)
	}
}

func TestServed(t *testing.T) {
	_, srv := site(t, "")
	tests := []struct {
		path, want string
	}{
		{"/", "<h1>home</h1>"},
		{"/index.html", "<h1>home</h1>"},
		{"/docs/", "<h1>docs</h1>"},
		{"/sub/file.txt", "in sub"},
		{"/inside-link", "tiny"}, // a symbolic link that stays inside the root
	}
	for _, tc := range tests {
		if code, body := curl(t, srv.URL+tc.path); code != 200 || body != tc.want {
			t.Errorf("%s: %d %q, want 200 %q", tc.path, code, body, tc.want)
		}
	}
	if resp, _ := get(t, srv.URL+"/docs?x=1", nil); resp.StatusCode != 301 || resp.Header.Get("Location") != "/docs/?x=1" {
		t.Errorf("/docs: %s to %q, want 301 to /docs/?x=1", resp.Status, resp.Header.Get("Location"))
	}
}

func get(t *testing.T, url string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	// DisableCompression: see the bytes on the wire, not what Go's client would unpack.
	resp, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func TestConditional(t *testing.T) {
	_, srv := site(t, "")
	resp, _ := get(t, srv.URL+"/img.bin", nil)
	tag, lm := resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
	if resp.StatusCode != 200 || !strings.HasPrefix(tag, `"`) || lm == "" {
		t.Fatalf("first GET: %s ETag %q Last-Modified %q", resp.Status, tag, lm)
	}
	for _, hdr := range []map[string]string{{"If-None-Match": tag}, {"If-Modified-Since": lm}} {
		resp, body := get(t, srv.URL+"/img.bin", hdr)
		if resp.StatusCode != 304 || len(body) != 0 {
			t.Errorf("%v: %s with %d bytes, want 304", hdr, resp.Status, len(body))
		}
	}
	if resp, _ := get(t, srv.URL+"/img.bin", map[string]string{"If-None-Match": `"other"`}); resp.StatusCode != 200 {
		t.Errorf("other ETag: %s, want 200", resp.Status)
	}
}

func TestRange(t *testing.T) {
	root, srv := site(t, "")
	want, _ := os.ReadFile(filepath.Join(root, "img.bin"))
	resp, body := get(t, srv.URL+"/img.bin", map[string]string{"Range": "bytes=10-19"})
	if resp.StatusCode != 206 || resp.Header.Get("Content-Range") != "bytes 10-19/4096" || !bytes.Equal(body, want[10:20]) {
		t.Errorf("range: %s %q %q", resp.Status, resp.Header.Get("Content-Range"), body)
	}
	// A text file a client would get gzipped is sent as itself for a range.
	text, _ := os.ReadFile(filepath.Join(root, "big.txt"))
	resp, body = get(t, srv.URL+"/big.txt", map[string]string{"Range": "bytes=100-199", "Accept-Encoding": "gzip, br"})
	if resp.StatusCode != 206 || resp.Header.Get("Content-Encoding") != "" || !bytes.Equal(body, text[100:200]) ||
		resp.Header.Get("Content-Range") != "bytes 100-199/"+strconv.Itoa(len(text)) {
		t.Errorf("range of text: %s encoding %q range %q body %q", resp.Status, resp.Header.Get("Content-Encoding"), resp.Header.Get("Content-Range"), body)
	}
}

func TestCompression(t *testing.T) {
	root, srv := site(t, "")
	text, _ := os.ReadFile(filepath.Join(root, "big.txt"))
	resp, body := get(t, srv.URL+"/big.txt", map[string]string{"Accept-Encoding": "gzip"})
	if resp.Header.Get("Content-Encoding") != "gzip" || resp.Header.Get("Vary") != "Accept-Encoding" {
		t.Fatalf("gzip: %s encoding %q vary %q", resp.Status, resp.Header.Get("Content-Encoding"), resp.Header.Get("Vary"))
	}
	if cl := resp.Header.Get("Content-Length"); cl != strconv.Itoa(len(body)) || len(body) >= len(text) {
		t.Errorf("Content-Length %q, body %d bytes (file %d)", cl, len(body), len(text))
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if plain, _ := io.ReadAll(zr); !bytes.Equal(plain, text) {
		t.Error("gzip body does not unpack to the file")
	}
	gzTag := resp.Header.Get("ETag")
	if resp, _ := get(t, srv.URL+"/big.txt", nil); resp.Header.Get("ETag") == gzTag || resp.Header.Get("Content-Encoding") != "" {
		t.Errorf("identity and gzip share ETag %q or identity is encoded", gzTag)
	}
	if resp, body := get(t, srv.URL+"/big.txt", map[string]string{"Accept-Encoding": "gzip", "If-None-Match": gzTag}); resp.StatusCode != 304 || len(body) != 0 {
		t.Errorf("gzip If-None-Match: %s", resp.Status)
	}

	tests := []struct {
		name, path, accept, wantEnc, wantBody string
	}{
		{"precompressed br first", "/app.js", "gzip, br", "br", "precompressed-br"},
		{"precompressed gzip", "/app.js", "gzip", "gzip", "precompressed-gzip"},
		{"br refused by q=0", "/app.js", "br;q=0, gzip", "gzip", "precompressed-gzip"},
		{"no compression accepted", "/small.txt", "identity", "", "tiny"},
		{"too small to gzip", "/small.txt", "gzip", "", "tiny"},
		{"binary not gzipped", "/img.bin", "gzip", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := get(t, srv.URL+tc.path, map[string]string{"Accept-Encoding": tc.accept})
			if got := resp.Header.Get("Content-Encoding"); got != tc.wantEnc {
				t.Errorf("Content-Encoding %q, want %q", got, tc.wantEnc)
			}
			if tc.wantBody != "" && string(body) != tc.wantBody {
				t.Errorf("body %q, want %q", body, tc.wantBody)
			}
			if cl := resp.Header.Get("Content-Length"); cl != strconv.Itoa(len(body)) {
				t.Errorf("Content-Length %q for %d bytes", cl, len(body))
			}
		})
	}

	// curl as a real client: it asks for gzip and unpacks it.
	code, got := curl(t, "--compressed", srv.URL+"/big.txt")
	if code != 200 || got != string(text) {
		t.Errorf("curl --compressed: %d, %d bytes", code, len(got))
	}
}

func TestStripPrefix(t *testing.T) {
	_, srv := site(t, "/static/")
	for path, want := range map[string]int{"/static/small.txt": 200, "/static/": 200, "/static": 200, "/small.txt": 404, "/staticsmall.txt": 404} {
		code, _ := curl(t, "-o", "/dev/null", srv.URL+path)
		if path == "/static" && code == 301 {
			continue
		}
		if code != want {
			t.Errorf("%s: %d, want %d", path, code, want)
		}
	}
}

func TestAccepts(t *testing.T) {
	tests := []struct {
		header, coding string
		want           bool
	}{
		{"gzip, deflate, br", "br", true},
		{"gzip;q=0.5", "gzip", true},
		{"gzip;q=0", "gzip", false},
		{"GZIP", "gzip", true},
		{"*", "br", true},
		{"*;q=0, gzip", "br", false},
		{"", "gzip", false},
		{"identity", "gzip", false},
	}
	for _, tc := range tests {
		if got := Accepts(tc.header, tc.coding); got != tc.want {
			t.Errorf("Accepts(%q, %q) = %v, want %v", tc.header, tc.coding, got, tc.want)
		}
	}
}
