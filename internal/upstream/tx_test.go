package upstream

import (
	"errors"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/sekisho/sekisho/internal/testenv"
)

func TestTxVerifiesRecipientsThenSends(t *testing.T) {
	ts := newTestServer(t, "tcp4", nil, func(ts *testServer, _ *smtp.Server) {
		ts.rcptErr = func(to string) error {
			if strings.HasPrefix(to, "nobody@") {
				return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "unknown user"}
			}
			return nil
		}
	})
	p := newPool(t, Options{Servers: []string{ts.Addr}})
	ctx := t.Context()
	tx, err := p.Begin(ctx, Envelope{From: "s@x.test"}, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Rcpt(ctx, "a@example.jp"); err != nil {
		t.Fatal(err)
	}
	var se *smtp.SMTPError
	if err := tx.Rcpt(ctx, "nobody@example.jp"); !errors.As(err, &se) || se.Code != 550 {
		t.Fatalf("Rcpt(nobody) = %v, want the upstream's 550", err)
	}
	if err := tx.Rcpt(ctx, "b@example.jp"); err != nil {
		t.Fatal(err)
	}
	if tx.Server() != ts.Addr {
		t.Errorf("Server() = %q", tx.Server())
	}
	if err := tx.Data(ctx, []string{"a@example.jp", "b@example.jp"}, []byte("Subject: x\r\n\r\nhi\r\n")); err != nil {
		t.Fatal(err)
	}
	tx.Close()
	msgs := ts.messages()
	if len(msgs) != 1 || len(msgs[0].To) != 2 || msgs[0].From != "s@x.test" {
		t.Fatalf("messages = %+v", msgs)
	}
	if ts.connCount() != 1 {
		t.Errorf("connections = %d, want 1", ts.connCount())
	}
}

// When only some of the verified recipients pass (the others are held), the message goes to
// those alone, and the connection is reused.
func TestTxSubset(t *testing.T) {
	ts := newTestServer(t, "tcp4", nil, nil)
	p := newPool(t, Options{Servers: []string{ts.Addr}})
	ctx := t.Context()
	tx, err := p.Begin(ctx, Envelope{From: "s@x.test"}, 100, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{"a@example.jp", "held@example.jp"} {
		if err := tx.Rcpt(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Data(ctx, []string{"a@example.jp"}, []byte("x\r\n")); err != nil {
		t.Fatal(err)
	}
	tx.Close()
	msgs := ts.messages()
	if len(msgs) != 1 || len(msgs[0].To) != 1 || msgs[0].To[0] != "a@example.jp" {
		t.Fatalf("messages = %+v, want one to a@example.jp only", msgs)
	}
	if ts.connCount() != 1 {
		t.Errorf("connections = %d, want 1 (reused)", ts.connCount())
	}
}

// An aborted transaction (no recipient passes) leaves nothing upstream and the connection
// usable by the next one.
func TestTxCloseWithoutData(t *testing.T) {
	ts := newTestServer(t, "tcp4", nil, nil)
	p := newPool(t, Options{Servers: []string{ts.Addr}})
	ctx := t.Context()
	for range 3 {
		tx, err := p.Begin(ctx, Envelope{From: "s@x.test"}, 0, "")
		if err != nil {
			t.Fatal(err)
		}
		if err := tx.Rcpt(ctx, "a@example.jp"); err != nil {
			t.Fatal(err)
		}
		tx.Close()
	}
	if _, err := p.Send(ctx, Envelope{From: "s@x.test", To: []string{"b@example.jp"}}, []byte("x\r\n")); err != nil {
		t.Fatal(err)
	}
	if n := len(ts.messages()); n != 1 || ts.connCount() != 1 {
		t.Fatalf("messages %d connections %d, want 1 and 1", n, ts.connCount())
	}
}

func TestTxBeginFailsOver(t *testing.T) {
	ts := newTestServer(t, "tcp4", nil, nil)
	p := newPool(t, Options{Servers: []string{closedAddr(t), ts.Addr}, Balance: BalanceOrdered})
	tx, err := p.Begin(t.Context(), Envelope{From: "s@x.test"}, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	if tx.Server() != ts.Addr {
		t.Fatalf("transaction on %s, want the live server %s", tx.Server(), ts.Addr)
	}
	p2 := newPool(t, Options{Servers: []string{closedAddr(t)}})
	if _, err := p2.Begin(t.Context(), Envelope{From: "s@x.test"}, 0, ""); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Begin with every server down = %v, want ErrUnavailable", err)
	}
}

// A connection lost between RCPT and DATA: the message still goes, through another server.
func TestTxDataFailsOverBeforeHandOver(t *testing.T) {
	a := newTestServer(t, "tcp4", nil, nil)
	b := newTestServer(t, "tcp4", nil, nil)
	p := newPool(t, Options{Servers: []string{a.Addr, b.Addr}, Balance: BalanceOrdered})
	ctx := t.Context()
	tx, err := p.Begin(ctx, Envelope{From: "s@x.test"}, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Rcpt(ctx, "a@example.jp"); err != nil {
		t.Fatal(err)
	}
	a.dropAll()
	if err := tx.Data(ctx, []string{"a@example.jp"}, []byte("x\r\n")); err != nil {
		t.Fatal(err)
	}
	tx.Close()
	if na, nb := len(a.messages()), len(b.messages()); na+nb != 1 {
		t.Fatalf("delivered %d+%d times, want exactly once", na, nb)
	}
}

// A reused connection the server closed while it was idle is replaced without a failure:
// the RSET pipelined with MAIL finds it dead, and a fresh connection carries the transaction.
func TestTxReusedConnectionClosedWhileIdle(t *testing.T) {
	ts := newTestServer(t, "tcp4", nil, nil)
	p := newPool(t, Options{Servers: []string{ts.Addr}})
	ctx := t.Context()
	send := func() {
		t.Helper()
		tx, err := p.Begin(ctx, Envelope{From: "s@x.test"}, 0, "")
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Close()
		if err := tx.Rcpt(ctx, "a@example.jp"); err != nil {
			t.Fatal(err)
		}
		if err := tx.Data(ctx, []string{"a@example.jp"}, []byte("x\r\n")); err != nil {
			t.Fatal(err)
		}
	}
	send()
	send()
	if ts.connCount() != 1 {
		t.Fatalf("connections = %d, want 1 (reused)", ts.connCount())
	}
	ts.dropAll()
	testenv.WaitFor(t, "server to drop its sessions", func() bool { return ts.activeCount() == 0 })
	send()
	if n := len(ts.messages()); n != 3 {
		t.Fatalf("messages = %d, want 3", n)
	}
	for _, h := range p.Health() {
		if !h.Up || h.Failures != 0 {
			t.Fatalf("health after a stale idle connection = %+v, want up with no failure", h)
		}
	}
}

// The first recipient goes with MAIL in one write; its reply, refusal or not, is what the
// Rcpt call for it returns, and it is not sent twice.
func TestTxFirstRecipientPipelined(t *testing.T) {
	ts := newTestServer(t, "tcp4", nil, func(ts *testServer, _ *smtp.Server) {
		ts.rcptErr = func(to string) error {
			if strings.HasPrefix(to, "nobody@") {
				return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "unknown user"}
			}
			return nil
		}
	})
	p := newPool(t, Options{Servers: []string{ts.Addr}})
	ctx := t.Context()
	for _, c := range []struct{ first, then string }{{"nobody@example.jp", "a@example.jp"}, {"a@example.jp", "b@example.jp"}} {
		tx, err := p.Begin(ctx, Envelope{From: "s@x.test"}, 0, c.first)
		if err != nil {
			t.Fatal(err)
		}
		var se *smtp.SMTPError
		err = tx.Rcpt(ctx, c.first)
		if strings.HasPrefix(c.first, "nobody@") != (errors.As(err, &se) && se.Code == 550) {
			t.Fatalf("Rcpt(%s) after Begin = %v", c.first, err)
		}
		if err := tx.Rcpt(ctx, c.then); err != nil {
			t.Fatal(err)
		}
		rcpts := []string{c.then}
		if err == nil {
			rcpts = []string{c.first, c.then}
		}
		if err := tx.Data(ctx, rcpts, []byte("Subject: x\r\n\r\nhi\r\n")); err != nil {
			t.Fatal(err)
		}
		tx.Close()
	}
	msgs := ts.messages()
	if len(msgs) != 2 || strings.Join(msgs[0].To, ",") != "a@example.jp" || strings.Join(msgs[1].To, ",") != "a@example.jp,b@example.jp" {
		t.Fatalf("messages = %+v; want one to a, one to a and b, each recipient given once", msgs)
	}
	if ts.connCount() != 1 {
		t.Errorf("connections = %d, want 1", ts.connCount())
	}
}
