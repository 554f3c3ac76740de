package outbox_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/sekisho/sekisho/internal/challenge"
	"github.com/sekisho/sekisho/internal/outbox"
	"github.com/sekisho/sekisho/internal/store"
	"github.com/sekisho/sekisho/internal/store/sqlite"
	"github.com/sekisho/sekisho/internal/testenv"
)

// challengeMail composes a real challenge mail to sender.
func challengeMail(t *testing.T, sender string, now time.Time) []byte {
	t.Helper()
	token, _ := challenge.NewToken()
	data, err := challenge.Compose(challenge.Challenge{
		From:       "postmaster@example.jp",
		To:         sender,
		Recipients: []string{"hanako@example.jp"},
		URL:        "https://mx.example.jp/c/" + token,
		Hostname:   "mx.example.jp",
		Now:        now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// setup is a Sender on a fresh SQLite store, to a real upstream server behind a gate.
type setup struct {
	clk  *testenv.Clock
	path string
	st   *sqlite.DB
	up   *testenv.Upstream
	gate *gate
	s    *outbox.Sender
}

func newSetup(t *testing.T, up bool) *setup {
	t.Helper()
	x := &setup{clk: newClock(), path: dbPath(t), up: testenv.NewUpstream(t, "tcp4")}
	x.st = openStore(t, x.path)
	x.gate = newGate(t, x.up.Addr, up)
	x.s = x.sender(t, x.st)
	return x
}

func (x *setup) sender(t *testing.T, st store.Store) *outbox.Sender {
	return &outbox.Sender{
		Store:    st,
		Upstream: newPool(t, x.gate.addr),
		Log:      testenv.Logger(t),
		Now:      x.clk.Now,
		Poll:     10 * time.Millisecond,
	}
}

func (x *setup) enqueue(t *testing.T, to ...string) []byte {
	t.Helper()
	data := challengeMail(t, to[0], x.clk.Now())
	if err := x.s.Enqueue(t.Context(), outbox.KindChallenge, "", to, data); err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	return data
}

// attempts waits until the only queued message has failed n times and returns it.
func (x *setup) attempts(t *testing.T, n int) store.OutMsg {
	t.Helper()
	var m store.OutMsg
	testenv.WaitFor(t, "a failed attempt to be recorded", func() bool {
		q := queued(t, x.st)
		if len(q) != 1 {
			return false
		}
		m = q[0]
		return m.Attempts >= n
	})
	if m.Attempts != n {
		t.Fatalf("attempts %d, want %d", m.Attempts, n)
	}
	return m
}

func TestDeliveredOnce(t *testing.T) {
	x := newSetup(t, true)
	run(t, x.s)
	data := x.enqueue(t, "taro@example.co.jp")
	msgs := x.up.Wait(t, 1)
	if m := msgs[0]; m.From != "" || !slices.Equal(m.To, []string{"taro@example.co.jp"}) || !bytes.Equal(m.Data, data) {
		t.Errorf("upstream got from %q to %q (data equal: %v); want <> to taro@example.co.jp, the queued bytes",
			m.From, m.To, bytes.Equal(m.Data, data))
	}
	testenv.WaitFor(t, "the outbox to empty", func() bool { return len(queued(t, x.st)) == 0 })

	// A second message passes through the same loop: had the first been sent again, it
	// would have arrived before it.
	x.enqueue(t, "jiro@example.com")
	msgs = x.up.Wait(t, 2)
	if len(msgs) != 2 || msgs[1].To[0] != "jiro@example.com" {
		t.Errorf("upstream got %d messages, the second to %v; want 2, the second to jiro", len(msgs), msgs[len(msgs)-1].To)
	}
	if n := x.up.Conns(); n != 2 {
		t.Errorf("%d upstream sessions for 2 messages", n)
	}
}

func TestEnqueueWakesRun(t *testing.T) {
	x := newSetup(t, true)
	x.s.Poll = time.Hour // only Enqueue's wake-up can make it look again
	run(t, x.s)
	x.enqueue(t, "taro@example.co.jp")
	x.up.Wait(t, 1) // sent by Run's first look or the wake-up; either way Run now waits
	x.enqueue(t, "jiro@example.com")
	x.up.Wait(t, 2)
}

func TestRetryWhileDown(t *testing.T) {
	x := newSetup(t, false)
	run(t, x.s)
	x.enqueue(t, "taro@example.co.jp")

	// Default backoff: 1m, 2m, 4m ...
	start := x.clk.Now()
	m := x.attempts(t, 1)
	if want := start.Add(time.Minute); !m.NextTry.Equal(want) {
		t.Errorf("after the 1st failure next try %v, want %v", m.NextTry, want)
	}
	if m.LastError == "" {
		t.Error("no last error recorded")
	}
	tries := x.gate.tries.Load()
	x.clk.Advance(59 * time.Second) // not yet due
	// The next try comes only when due: a message queued now is sent at once, and the
	// waiting one is not tried with it.
	x.gate.up.Store(true)
	x.enqueue(t, "saburo@example.com")
	x.up.Wait(t, 1)
	x.gate.up.Store(false)
	testenv.WaitFor(t, "the second message to leave the outbox", func() bool { return len(queued(t, x.st)) == 1 })
	if n := x.gate.tries.Load(); n != tries+1 {
		t.Errorf("%d connection attempts for one message", n-tries)
	}
	if q := queued(t, x.st); q[0].Attempts != 1 || q[0].To[0] != "taro@example.co.jp" {
		t.Fatalf("queued to %v, tried %d times; want the first message, tried once", q[0].To, q[0].Attempts)
	}
	x.clk.Advance(time.Second)
	m = x.attempts(t, 2)
	if want := x.clk.Now().Add(2 * time.Minute); !m.NextTry.Equal(want) {
		t.Errorf("after the 2nd failure next try %v, want %v", m.NextTry, want)
	}
	x.clk.Advance(2 * time.Minute)
	m = x.attempts(t, 3)
	if want := x.clk.Now().Add(4 * time.Minute); !m.NextTry.Equal(want) {
		t.Errorf("after the 3rd failure next try %v, want %v", m.NextTry, want)
	}
	if n := len(x.up.Messages()); n != 1 {
		t.Fatalf("%d delivered, want only the one sent while the relay was briefly up", n)
	}

	// The relay comes back.
	x.gate.up.Store(true)
	x.clk.Advance(4 * time.Minute)
	x.up.Wait(t, 2)
	testenv.WaitFor(t, "the outbox to empty", func() bool { return len(queued(t, x.st)) == 0 })
	x.enqueue(t, "jiro@example.com")
	if msgs := x.up.Wait(t, 3); len(msgs) != 3 {
		t.Errorf("%d messages delivered, want 3 (each once)", len(msgs))
	}
}

func TestTemporaryRefusal(t *testing.T) {
	x := newSetup(t, true)
	var asked []int
	x.s.Backoff = func(attempt int) time.Duration {
		asked = append(asked, attempt)
		return 10 * time.Minute
	}
	x.up.FailData(&smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"})
	run(t, x.s)
	x.enqueue(t, "taro@example.co.jp")
	m := x.attempts(t, 1)
	if want := x.clk.Now().Add(10 * time.Minute); !m.NextTry.Equal(want) {
		t.Errorf("next try %v, want %v", m.NextTry, want)
	}
	x.up.FailData(nil)
	x.clk.Advance(10 * time.Minute)
	x.up.Wait(t, 1)
	testenv.WaitFor(t, "the outbox to empty", func() bool { return len(queued(t, x.st)) == 0 })
	if !slices.Equal(asked, []int{1}) {
		t.Errorf("Backoff asked for attempts %v, want [1]", asked)
	}
}

func TestPermanentRefusal(t *testing.T) {
	x := newSetup(t, true)
	x.up.FailData(&smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "no"})
	run(t, x.s)
	x.enqueue(t, "taro@example.co.jp")
	testenv.WaitFor(t, "the refused message to leave the outbox", func() bool { return len(queued(t, x.st)) == 0 })
	x.up.FailData(nil)
	x.clk.Advance(24 * time.Hour)
	x.enqueue(t, "jiro@example.com")
	msgs := x.up.Wait(t, 1)
	if len(msgs) != 1 || msgs[0].To[0] != "jiro@example.com" {
		t.Errorf("delivered %v, want only the second message", msgs)
	}
	if n := x.up.Conns(); n != 2 {
		t.Errorf("%d upstream sessions, want 2: the refused message is not tried again", n)
	}
}

func TestSomeRecipientsRefused(t *testing.T) {
	x := newSetup(t, true)
	x.s.Backoff = func(int) time.Duration { return 5 * time.Minute }
	x.up.RejectRcpt("later@example.org", &smtp.SMTPError{Code: 450, EnhancedCode: smtp.EnhancedCode{4, 2, 1}, Message: "busy"})
	x.up.RejectRcpt("never@example.org", &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"})
	run(t, x.s)
	data := x.enqueue(t, "now@example.org", "later@example.org", "never@example.org")

	msgs := x.up.Wait(t, 1)
	if !slices.Equal(msgs[0].To, []string{"now@example.org"}) {
		t.Errorf("first delivery to %v, want [now@example.org]", msgs[0].To)
	}
	var q []store.OutMsg
	testenv.WaitFor(t, "the rest to be queued", func() bool {
		q = queued(t, x.st)
		return len(q) == 1 && slices.Equal(q[0].To, []string{"later@example.org"})
	})
	if want := x.clk.Now().Add(5 * time.Minute); !q[0].NextTry.Equal(want) || !bytes.Equal(q[0].Data, data) || q[0].From != "" {
		t.Errorf("rest queued from %q due at %v (same data: %v), want the same message from <> due at %v",
			q[0].From, q[0].NextTry, bytes.Equal(q[0].Data, data), want)
	}

	x.up.RejectRcpt("later@example.org", nil)
	x.clk.Advance(5 * time.Minute)
	msgs = x.up.Wait(t, 2)
	if !slices.Equal(msgs[1].To, []string{"later@example.org"}) {
		t.Errorf("second delivery to %v, want [later@example.org]", msgs[1].To)
	}
	testenv.WaitFor(t, "the outbox to empty", func() bool { return len(queued(t, x.st)) == 0 })
}

func TestUnconfirmedNotSentAgain(t *testing.T) {
	clk := newClock()
	st := openStore(t, dbPath(t))
	sw := newSwallower(t)
	s := &outbox.Sender{Store: st, Upstream: newPool(t, sw.addr), Log: testenv.Logger(t), Now: clk.Now, Poll: 10 * time.Millisecond}
	run(t, s)
	if err := s.Enqueue(t.Context(), outbox.KindChallenge, "", []string{"taro@example.co.jp"}, challengeMail(t, "taro@example.co.jp", clk.Now())); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, "the message to leave the outbox", func() bool { return len(queued(t, st)) == 0 })
	clk.Advance(24 * time.Hour)
	if err := s.Enqueue(t.Context(), outbox.KindChallenge, "", []string{"jiro@example.com"}, challengeMail(t, "jiro@example.com", clk.Now())); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, "the second message to leave the outbox", func() bool { return len(queued(t, st)) == 0 })
	if n := sw.messages.Load(); n != 2 {
		t.Errorf("the server took %d messages, want 2: one try each", n)
	}
}

func TestRestartPicksUpPending(t *testing.T) {
	x := newSetup(t, false)

	// Queued with no Run at all: committed when Enqueue returns.
	first := x.enqueue(t, "taro@example.co.jp")
	// Queued and tried once while the relay was down.
	stop := run(t, x.s)
	second := x.enqueue(t, "jiro@example.com")
	testenv.WaitFor(t, "both to fail once", func() bool {
		q := queued(t, x.st)
		return len(q) == 2 && q[0].Attempts == 1 && q[1].Attempts == 1
	})
	stop()
	if err := x.st.Close(); err != nil {
		t.Fatal(err)
	}

	// A new process: a new store handle, a new Sender, the relay back up.
	x.gate.up.Store(true)
	x.clk.Advance(time.Hour)
	st := openStore(t, x.path)
	s := x.sender(t, st)
	run(t, s)
	msgs := x.up.Wait(t, 2)
	got := [][]byte{msgs[0].Data, msgs[1].Data}
	if !slices.ContainsFunc(got, func(b []byte) bool { return bytes.Equal(b, first) }) ||
		!slices.ContainsFunc(got, func(b []byte) bool { return bytes.Equal(b, second) }) {
		t.Error("after the restart the upstream did not get both messages")
	}
	testenv.WaitFor(t, "the outbox to empty", func() bool { return len(queued(t, st)) == 0 })
	if err := s.Enqueue(t.Context(), outbox.KindChallenge, "", []string{"saburo@example.com"}, challengeMail(t, "saburo@example.com", x.clk.Now())); err != nil {
		t.Fatal(err)
	}
	if msgs := x.up.Wait(t, 3); len(msgs) != 3 {
		t.Errorf("%d messages delivered, want 3 (each once)", len(msgs))
	}
}

func TestMaxAge(t *testing.T) {
	x := newSetup(t, false)
	x.s.MaxAge = time.Hour
	run(t, x.s)
	x.enqueue(t, "taro@example.co.jp")
	x.attempts(t, 1)
	x.clk.Advance(time.Hour)
	testenv.WaitFor(t, "the message to be given up", func() bool { return len(queued(t, x.st)) == 0 })
	if n := len(x.up.Messages()); n != 0 {
		t.Errorf("%d delivered", n)
	}
}

func TestRunOnce(t *testing.T) {
	x := newSetup(t, true)
	stop := run(t, x.s)
	x.enqueue(t, "taro@example.co.jp")
	x.up.Wait(t, 1) // Run is running
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := x.s.Run(ctx); !errors.Is(err, outbox.ErrRunning) {
		t.Errorf("second Run: %v, want ErrRunning", err)
	}
	stop()
	// Stopped, it may run again.
	run(t, x.s)
	x.enqueue(t, "jiro@example.com")
	x.up.Wait(t, 2)
}

// flakyStore fails OutboxDone until told not to, like a database that is briefly gone
// after the upstream took a message.
type flakyStore struct {
	store.Store
	fail  atomic.Bool
	calls atomic.Int64
}

func (f *flakyStore) OutboxDone(ctx context.Context, id int64) error {
	f.calls.Add(1)
	if f.fail.Load() {
		return errors.New("database is locked")
	}
	return f.Store.OutboxDone(ctx, id)
}

func TestOutcomeNotRecordedIsNotResent(t *testing.T) {
	x := newSetup(t, true)
	fs := &flakyStore{Store: x.st}
	fs.fail.Store(true)
	x.s.Store = fs
	run(t, x.s)
	x.enqueue(t, "taro@example.co.jp")
	x.up.Wait(t, 1)
	// The message stays in the store, due, while Run keeps trying to mark it done.
	testenv.WaitFor(t, "several tries to mark it done", func() bool { return fs.calls.Load() >= 5 })
	if q := queued(t, x.st); len(q) != 1 {
		t.Fatalf("%d queued, want the delivered message still there", len(q))
	}
	if n := len(x.up.Messages()); n != 1 {
		t.Fatalf("delivered %d times while the store failed", n)
	}
	fs.fail.Store(false)
	testenv.WaitFor(t, "the outbox to empty", func() bool { return len(queued(t, x.st)) == 0 })
	if n := x.up.Conns(); n != 1 {
		t.Errorf("%d upstream sessions, want 1", n)
	}
}

func TestEnqueueRefuses(t *testing.T) {
	x := newSetup(t, true)
	good := []byte("Subject: x\r\n\r\nbody\r\n")
	for _, tc := range []struct {
		name, kind, from string
		to               []string
		data             []byte
	}{
		{"no kind", "", "", []string{"a@example.com"}, good},
		{"no recipients", "challenge", "", nil, good},
		{"empty recipient", "challenge", "", []string{""}, good},
		{"recipient with CRLF", "challenge", "", []string{"a@example.com>\r\nRCPT TO:<b@example.com"}, good},
		{"sender with NUL", "challenge", "a\x00@example.com", []string{"a@example.com"}, good},
		{"empty message", "challenge", "", []string{"a@example.com"}, nil},
		{"bare LF", "challenge", "", []string{"a@example.com"}, []byte("Subject: x\n\nbody\r\n")},
		{"bare CR", "challenge", "", []string{"a@example.com"}, []byte("Subject: x\r\n\r\nbo\rdy\r\n")},
		{"smuggling", "challenge", "", []string{"a@example.com"}, []byte("Subject: x\r\n\r\nbody\n.\nMAIL FROM:<x>\r\n")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := x.s.Enqueue(t.Context(), tc.kind, tc.from, tc.to, tc.data); err == nil {
				t.Error("Enqueue succeeded")
			}
		})
	}
	if q := queued(t, x.st); len(q) != 0 {
		t.Errorf("%d queued", len(q))
	}
}

func TestBackoff(t *testing.T) {
	for _, tc := range []struct {
		attempt int
		want    time.Duration
	}{
		{0, time.Minute}, {1, time.Minute}, {2, 2 * time.Minute}, {3, 4 * time.Minute},
		{4, 8 * time.Minute}, {5, 16 * time.Minute}, {6, 32 * time.Minute}, {7, time.Hour},
		{8, time.Hour}, {64, time.Hour}, {1 << 30, time.Hour},
	} {
		if got := outbox.Backoff(tc.attempt); got != tc.want {
			t.Errorf("Backoff(%d) = %v, want %v", tc.attempt, got, tc.want)
		}
	}
}
