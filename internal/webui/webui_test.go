package webui

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

func TestPickLang(t *testing.T) {
	for _, c := range []struct {
		url, accept, cookie string
		want                Lang
	}{
		{"/", "", "", En},
		{"/", "ja,en;q=0.8", "", Ja},
		{"/", "en-US,ja;q=0.9", "", En},
		{"/", "fr, ja-JP;q=0.5", "", Ja},
		{"/", "ja", "en", En},
		{"/?lang=ja", "en", "en", Ja},
		{"/?lang=xx", "ja", "", Ja},
	} {
		r := httptest.NewRequest("GET", c.url, nil)
		r.Header.Set("Accept-Language", c.accept)
		if c.cookie != "" {
			r.AddCookie(&http.Cookie{Name: LangCookie, Value: c.cookie})
		}
		if got := PickLang(r); got != c.want {
			t.Errorf("PickLang(%s, %q, cookie %q) = %s, want %s", c.url, c.accept, c.cookie, got, c.want)
		}
	}
}

func TestRender(t *testing.T) {
	fsys := fstest.MapFS{"p/hello.html": {Data: []byte(`{{define "title"}}{{.T.hi}}{{end}}{{define "content"}}<p>{{.T.hi}} {{.Data}}</p>{{end}}`)}}
	pages, err := ParsePages(fsys, "p/*.html", Catalog{Ja: {"hi": "こんにちは"}, En: {"hi": "hello"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "/x?lang=ja", nil)
	pages.Render(w, r, 200, "hello.html", Page{Data: "<script>"})
	body := w.Body.String()
	if !strings.Contains(body, "<p>こんにちは &lt;script&gt;</p>") || !strings.Contains(body, `<html lang="ja">`) {
		t.Fatalf("page: %s", body)
	}
	if w.Header().Get("Content-Security-Policy") == "" || w.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("headers: %v", w.Header())
	}
	if !strings.Contains(w.Header().Get("Set-Cookie"), "lang=ja") {
		t.Fatalf("a ?lang= choice is not remembered: %v", w.Header())
	}
	w = httptest.NewRecorder()
	pages.Render(w, r, 200, "missing.html", Page{})
	if w.Code != 500 {
		t.Fatalf("unknown page: %d", w.Code)
	}
}

// A "_" file is a partial: every page may call what it defines, and it is no page itself.
func TestPartials(t *testing.T) {
	fsys := fstest.MapFS{
		"p/_nav.html": {Data: []byte(`{{define "nav"}}<nav>{{.T.hi}}</nav>{{end}}`)},
		"p/a.html":    {Data: []byte(`{{define "title"}}a{{end}}{{define "content"}}{{template "nav" .}}A{{end}}`)},
		"p/b.html":    {Data: []byte(`{{define "title"}}b{{end}}{{define "content"}}{{template "nav" .}}B{{end}}`)},
	}
	pages, err := ParsePages(fsys, "p/*.html", Catalog{En: {"hi": "menu"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"a.html": "<nav>menu</nav>A", "b.html": "<nav>menu</nav>B"} {
		w := httptest.NewRecorder()
		pages.Render(w, httptest.NewRequest("GET", "/", nil), 200, name, Page{})
		if !strings.Contains(w.Body.String(), want) {
			t.Errorf("%s: %s", name, w.Body.String())
		}
	}
	w := httptest.NewRecorder()
	pages.Render(w, httptest.NewRequest("GET", "/", nil), 200, "_nav.html", Page{})
	if w.Code != 500 {
		t.Errorf("a partial rendered as a page: %d", w.Code)
	}
}
