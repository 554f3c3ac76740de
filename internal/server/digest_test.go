package server

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/store"
	"github.com/sekisho/sekisho/internal/testenv"
)

// With digest_time passed, a starting server queues the day's digest for each user with held
// mail (the job runs once per cluster at start and then every minute) and the outbox
// delivers it upstream; a restart the same day sends none again.
func TestDigestJobOnceADay(t *testing.T) {
	up := testenv.NewUpstream(t, "tcp4")
	dir := t.TempDir()
	text := baseConfig(dir, "127.0.0.1:0", up.Addr) + "[antispam]\ndigest_time = \"00:00\"\n"
	start := func() (stop func()) {
		srv, err := New(t.Context(), parse(t, text), testenv.Logger(t))
		if err != nil {
			t.Fatal(err)
		}
		if held, _ := srv.Store().HeldList(t.Context(), store.HeldQuery{}); len(held) == 0 {
			h := store.Held{From: "shop@store.test", Subject: "your receipt", Received: time.Now(), Expires: time.Now().Add(time.Hour), Size: 30,
				Rcpts: []store.HeldRcpt{{Rcpt: "taro@example.jp", Owner: "taro@example.jp", Reason: "unknown-sender"}}}
			if err := srv.Store().Hold(t.Context(), &h, []byte("Subject: your receipt\r\n\r\nthanks\r\n")); err != nil {
				t.Fatal(err)
			}
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { srv.Run(ctx, time.Second); close(done) }()
		return func() { cancel(); <-done }
	}
	stop := start()
	m := up.Wait(t, 1)[0]
	stop()
	if m.From != "" || len(m.To) != 1 || m.To[0] != "taro@example.jp" || !strings.Contains(string(m.Data), "Auto-Submitted: auto-generated") ||
		!strings.Contains(mailText(t, m.Data), "your receipt") {
		t.Fatalf("digest %q -> %v:\n%s", m.From, m.To, m.Data)
	}
	stop = start()
	time.Sleep(1500 * time.Millisecond) // the job's first tick and an outbox poll
	stop()
	if n := len(up.Messages()); n != 1 {
		t.Fatalf("after a restart the same day the upstream has %d messages, want still 1", n)
	}
}
