package demo

import (
	"context"
	"html/template"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/sekisho/sekisho/internal/mailtext"
)

// Page is the web page that lists what the mailbox received, challenge and digest mails
// included. Links are made only of URLs under BaseURL (sekisho's own pages); every other
// text is shown as text.
type Page struct {
	Mailbox *Mailbox
	BaseURL string // e.g. https://localhost:8443
	// Digest, when set, is what the page's "send the digest now" button runs.
	Digest func(ctx context.Context) (int, error)
	Log    *slog.Logger
}

// ServeHTTP serves GET / (the list) and POST /digest.
func (p *Page) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Header().Set("Cache-Control", "no-store")
	switch {
	case r.URL.Path == "/" && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		p.list(w, r, "")
	case r.URL.Path == "/digest" && r.Method == http.MethodPost && p.Digest != nil:
		// A form of this page only: the browser says where the POST comes from.
		if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		n, err := p.Digest(r.Context())
		note := "digest: " + strconv.Itoa(n) + " mail(s) queued; they appear here within a few seconds."
		if err != nil {
			p.Log.Warn("demo: digest", "err", err)
			note = "digest failed: " + err.Error()
		}
		p.list(w, r, note)
	default:
		http.NotFound(w, r)
	}
}

// shown is a message as the page shows it.
type shown struct {
	From, To, Subject, Received string
	Text                        []segment
}

// segment is a piece of text, or a link when URL is set.
type segment struct{ Text, URL string }

var urlPattern = regexp.MustCompile(`https?://[^\s<>"']+`)

func (p *Page) list(w http.ResponseWriter, r *http.Request, note string) {
	var msgs []shown
	for _, m := range p.Mailbox.Messages() {
		msgs = append(msgs, p.show(m))
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	err := pageTemplate.Execute(w, struct {
		Messages []shown
		Note     string
		Digest   bool
	}{msgs, note, p.Digest != nil})
	if err != nil {
		p.Log.Warn("demo: mailbox page", "err", err)
	}
}

func (p *Page) show(m Message) shown {
	s := shown{From: m.From, To: strings.Join(m.To, ", "), Received: m.Received.Format("2006-01-02 15:04:05")}
	if s.From == "" {
		s.From = "<>"
	}
	msg := mailtext.Show(m.Data)
	for _, h := range msg.Headers {
		if strings.EqualFold(h.Name, "Subject") {
			s.Subject = h.Value
			break
		}
	}
	s.Text = p.linkify(msg.Text)
	return s
}

// linkify splits text into plain text and links to URLs under BaseURL.
func (p *Page) linkify(text string) []segment {
	var out []segment
	last := 0
	for _, loc := range urlPattern.FindAllStringIndex(text, -1) {
		u := text[loc[0]:loc[1]]
		if p.BaseURL == "" || !strings.HasPrefix(u, p.BaseURL+"/") {
			continue
		}
		out = append(out, segment{Text: text[last:loc[0]]}, segment{Text: u, URL: u})
		last = loc[1]
	}
	return append(out, segment{Text: text[last:]})
}

var pageTemplate = template.Must(template.New("mailbox").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>sekisho demo mailbox</title>
<style>
body { font-family: system-ui, "Noto Sans CJK JP", sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
article { border: 1px solid #ccc; border-radius: .4rem; padding: .5rem 1rem; margin: 1rem 0; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 0 1rem; margin: 0; }
dt { font-weight: bold; }
dd { margin: 0; overflow-wrap: anywhere; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; background: #f6f6f6; padding: .5rem; }
.note { background: #eef6ee; padding: .5rem 1rem; }
</style>
</head>
<body>
<h1>sekisho demo mailbox</h1>
<p>What the upstream mail server received: mail that passed, released mail, challenges and digests. Newest first; reload to update.</p>
{{if .Note}}<p class="note">{{.Note}}</p>{{end}}
{{if .Digest}}<form method="post" action="/digest"><button type="submit">Send the digest now</button></form>{{end}}
{{range .Messages}}<article>
<dl><dt>From</dt><dd>{{.From}}</dd><dt>To</dt><dd>{{.To}}</dd><dt>Subject</dt><dd>{{.Subject}}</dd><dt>Received</dt><dd>{{.Received}}</dd></dl>
<pre>{{range .Text}}{{if .URL}}<a href="{{.URL}}">{{.Text}}</a>{{else}}{{.Text}}{{end}}{{end}}</pre>
</article>
{{else}}<p>Nothing yet.</p>{{end}}
</body>
</html>
`))
