package digest_test

import (
	"bytes"
	"io"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/digest"
	"github.com/sekisho/sekisho/internal/store"
	"github.com/sekisho/sekisho/internal/store/sqlite"
	"github.com/sekisho/sekisho/internal/testenv"
)

func TestTokenRoundTripAndTamper(t *testing.T) {
	k := digest.Tokens{Key: []byte("0123456789abcdef0123456789abcdef")}
	tok := k.Make("msg-1", "taro@example.jp")
	id, rcpt, err := k.Parse(tok)
	if err != nil || id != "msg-1" || rcpt != "taro@example.jp" {
		t.Fatalf("Parse(Make) = %q %q %v", id, rcpt, err)
	}
	other := digest.Tokens{Key: []byte("another key, another installation")}
	// Another recipient's link with this one's signature, another key, a flipped byte, junk.
	forged := k.Make("msg-1", "jiro@example.jp")
	sig := tok[strings.LastIndexByte(tok, '.'):]
	bad := []string{
		forged[:strings.LastIndexByte(forged, '.')] + sig,
		other.Make("msg-1", "taro@example.jp"),
		tok[:len(tok)-2] + "AA",
		"", "..", "a.b.c", tok + ".x", strings.Repeat("A", digest.MaxTokenLen+1),
	}
	for _, b := range bad {
		if _, _, err := k.Parse(b); err == nil {
			t.Errorf("Parse(%q) accepted", b)
		}
	}
}

func TestCompose(t *testing.T) {
	now := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	msg, err := digest.Compose(digest.Digest{
		From: "postmaster@example.jp", To: "taro@example.jp", Now: now, Hostname: "mx.example.jp",
		Items: []digest.Item{
			{From: "shop@store.test", Subject: "=?UTF-8?B?44GU5rOo5paH?= receipt", Received: now.Add(-time.Hour), Size: 1234, Reason: "unknown-sender", URL: "https://mx.example.jp/d/AAA.BBB.CCC"},
			{From: "", Subject: "bounce\r\nBcc: x@y", Received: now, Size: 99, Reason: "null-sender", URL: "https://mx.example.jp/d/DDD.EEE.FFF"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	m, err := mail.ReadMessage(bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		"From": "postmaster@example.jp", "To": "taro@example.jp", "Auto-Submitted": "auto-generated",
		"Content-Type": "text/plain; charset=UTF-8", "Content-Transfer-Encoding": "quoted-printable", "MIME-Version": "1.0",
	} {
		if got := m.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if !strings.HasPrefix(m.Header.Get("Message-ID"), "<") || m.Header.Get("Date") == "" {
		t.Errorf("Message-ID %q, Date %q", m.Header.Get("Message-ID"), m.Header.Get("Date"))
	}
	subj, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	if err != nil || !strings.Contains(subj, "保留中のメール 2 通") || !strings.Contains(subj, "Held mail: 2 message(s)") {
		t.Errorf("Subject = %q (%v)", subj, err)
	}
	for _, line := range bytes.Split(msg, []byte("\r\n")) {
		if len(line) > 78 {
			t.Errorf("line of %d bytes: %q", len(line), line)
		}
	}
	if bytes.Contains(bytes.ReplaceAll(msg, []byte("\r\n"), nil), []byte("\n")) {
		t.Error("a bare LF in the mail")
	}
	body, err := io.ReadAll(quotedprintable.NewReader(m.Body))
	if err != nil {
		t.Fatal(err)
	}
	text := string(body)
	for _, want := range []string{
		"差出人: shop@store.test", "件名: ご注文 receipt", "サイズ: 1234 バイト", "理由: unknown-sender",
		"From: shop@store.test", "Subject: ご注文 receipt", "Size: 1234 bytes", "Held because: unknown-sender",
		"From: <>", "Subject: bounce  Bcc: x@y", "https://mx.example.jp/d/AAA.BBB.CCC", "https://mx.example.jp/d/DDD.EEE.FFF",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("body lacks %q:\n%s", want, text)
		}
	}
	if strings.Index(text, "差出人") > strings.Index(text, "From: shop") {
		t.Error("a .jp user gets English first")
	}
}

// The job queues one digest per user with held mail once digest_time has come, never a
// second one on the same day (also from a second job, as on another node), and again on
// the next day; the links name each message and recipient.
func TestJobOncePerDay(t *testing.T) {
	ctx := t.Context()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	hold := func(from string, rcpts ...string) string {
		h := &store.Held{From: from, Subject: "s from " + from, Received: time.Now(), Expires: time.Now().Add(time.Hour), Size: 10}
		for _, r := range rcpts {
			h.Rcpts = append(h.Rcpts, store.HeldRcpt{Rcpt: r, Owner: r, Reason: "unknown-sender"})
		}
		if err := db.Hold(ctx, h, []byte("Subject: x\r\n\r\ny\r\n")); err != nil {
			t.Fatal(err)
		}
		return h.ID
	}
	id1 := hold("a@sender.test", "taro@example.jp", "hanako@example.jp")
	hold("b@sender.test", "taro@example.jp")

	loc := time.FixedZone("JST", 9*3600)
	now := time.Date(2026, 11, 22, 7, 59, 0, 0, loc)
	tokens := digest.Tokens{Key: []byte("k")}
	newJob := func() *digest.Job {
		return &digest.Job{Store: db, Ledger: db, Tokens: tokens, From: "postmaster@example.jp", BaseURL: "https://mx.example.jp",
			At: "08:00", Location: loc, Now: func() time.Time { return now }, Log: testenv.Logger(t)}
	}
	j := newJob()
	digests := func() []store.OutMsg {
		t.Helper()
		due, err := db.OutboxDue(ctx, time.Now().Add(time.Hour), 100) // the store stamps the real time
		if err != nil {
			t.Fatal(err)
		}
		return due
	}
	if err := j.Tick(ctx); err != nil || len(digests()) != 0 {
		t.Fatalf("before digest_time: %v, %d queued", err, len(digests()))
	}
	now = now.Add(time.Minute)
	if err := j.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	got := digests()
	if len(got) != 2 {
		t.Fatalf("%d digests queued, want 2 (taro, hanako)", len(got))
	}
	link := regexp.MustCompile(`https://mx\.example\.jp/d/[A-Za-z0-9_=.-]+`)
	for _, m := range got {
		if m.Kind != digest.KindDigest || len(m.To) != 1 {
			t.Fatalf("outbox message %+v", m)
		}
		body, _ := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(m.Data[bytes.Index(m.Data, []byte("\r\n\r\n")):])))
		links := link.FindAllString(string(body), -1)
		want := map[string]int{"taro@example.jp": 4, "hanako@example.jp": 2}[m.To[0]] // each link twice: ja and en
		if len(links) != want {
			t.Errorf("digest to %s has %d links, want %d", m.To[0], len(links), want)
		}
		id, rcpt, err := tokens.Parse(strings.TrimPrefix(links[0], "https://mx.example.jp/d/"))
		if err != nil || rcpt != m.To[0] {
			t.Errorf("link %s: %q %q %v", links[0], id, rcpt, err)
		}
		if m.To[0] == "hanako@example.jp" && id != id1 {
			t.Errorf("hanako's link names %q, want %q", id, id1)
		}
	}
	now = now.Add(3 * time.Hour)
	if err := j.Tick(ctx); err != nil || len(digests()) != 2 {
		t.Fatalf("later the same day: %v, %d queued, want still 2", err, len(digests()))
	}
	if err := newJob().Tick(ctx); err != nil || len(digests()) != 2 {
		t.Fatalf("a second node the same day: %v, %d queued, want still 2", err, len(digests()))
	}
	now = now.Add(24 * time.Hour)
	if err := j.Tick(ctx); err != nil || len(digests()) != 4 {
		t.Fatalf("next day: %v, %d queued, want 4", err, len(digests()))
	}
}
