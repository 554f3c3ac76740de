package upstream

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/sekisho/sekisho/internal/testenv"
)

func TestRoundRobin(t *testing.T) {
	a := newTestServer(t, "tcp4", nil, nil)
	b := newTestServer(t, "tcp4", nil, nil)
	p := newPool(t, Options{Servers: []string{a.Addr, b.Addr}}) // round_robin by default
	var got []string
	for range 4 {
		res, err := p.Send(t.Context(), testEnvelope(), []byte(testBody))
		if err != nil {
			t.Fatalf("Send: %v", err)
		}
		got = append(got, res.Server)
	}
	if want := []string{a.Addr, b.Addr, a.Addr, b.Addr}; !reflect.DeepEqual(got, want) {
		t.Errorf("servers %v, want %v", got, want)
	}
	if len(a.messages()) != 2 || len(b.messages()) != 2 {
		t.Errorf("messages: %d and %d, want 2 and 2", len(a.messages()), len(b.messages()))
	}
}

func TestOrdered(t *testing.T) {
	a := newTestServer(t, "tcp4", nil, nil)
	b := newTestServer(t, "tcp4", nil, nil)
	p := newPool(t, Options{Servers: []string{a.Addr, b.Addr}, Balance: BalanceOrdered})
	for range 3 {
		if _, err := p.Send(t.Context(), testEnvelope(), []byte(testBody)); err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	if len(a.messages()) != 3 || b.connCount() != 0 {
		t.Errorf("first server got %d messages, second %d connections; want 3 and 0", len(a.messages()), b.connCount())
	}
}

func TestLeastConn(t *testing.T) {
	started := make(chan struct{}, 1)
	release := make(chan struct{})
	var once sync.Once
	a := newTestServer(t, "tcp4", nil, func(ts *testServer, _ *smtp.Server) {
		ts.data = func(*smtp.Conn, []byte) error {
			once.Do(func() {
				started <- struct{}{}
				<-release
			})
			return nil
		}
	})
	b := newTestServer(t, "tcp4", nil, nil)
	p := newPool(t, Options{Servers: []string{a.Addr, b.Addr}, Balance: BalanceLeastConn})

	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(release)
	wg.Go(func() {
		if _, err := p.Send(context.Background(), testEnvelope(), []byte(testBody)); err != nil {
			t.Errorf("slow Send: %v", err)
		}
	})
	<-started // a is busy with one message
	// Round robin would give a the second of these; least_conn gives
	// both to the idle b.
	for range 2 {
		res, err := p.Send(t.Context(), testEnvelope(), []byte(testBody))
		if err != nil {
			t.Fatalf("Send: %v", err)
		}
		if res.Server != b.Addr {
			t.Errorf("message went to %s, want the idle %s", res.Server, b.Addr)
		}
	}
	if h := p.Health(); h[0].InFlight != 1 || h[1].InFlight != 0 {
		t.Errorf("in flight: %d and %d, want 1 and 0", h[0].InFlight, h[1].InFlight)
	}
}

func TestFailoverClosedPort(t *testing.T) {
	dead := closedAddr(t)
	b := newTestServer(t, "tcp4", nil, nil)
	p := newPool(t, Options{Servers: []string{dead, b.Addr}, Balance: BalanceOrdered, RetryAfter: time.Hour})

	res, err := p.Send(t.Context(), testEnvelope(), []byte(testBody))
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if res.Server != b.Addr || len(b.messages()) != 1 {
		t.Fatalf("message went to %s, want %s", res.Server, b.Addr)
	}
	h := p.Health()
	if h[0].Up || h[0].Failures != 1 || !strings.Contains(h[0].LastError, "refused") {
		t.Errorf("dead server health %+v, want down after 1 refused connection", h[0])
	}
	if !h[1].Up || h[1].Failures != 0 {
		t.Errorf("live server health %+v", h[1])
	}

	// While penalised the dead server is not tried first.
	if _, err := p.Send(t.Context(), testEnvelope(), []byte(testBody)); err != nil {
		t.Fatalf("second Send: %v", err)
	}
	if h := p.Health(); h[0].Failures != 1 {
		t.Errorf("dead server tried again during its penalty: %+v", h[0])
	}
}

func TestAllDown(t *testing.T) {
	a, b := closedAddr(t), closedAddr(t)
	p := newPool(t, Options{Servers: []string{a, b}})
	_, err := p.Send(t.Context(), testEnvelope(), []byte(testBody))
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	if !strings.Contains(err.Error(), a) || !strings.Contains(err.Error(), b) {
		t.Errorf("err = %v, want both servers named", err)
	}
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		t.Errorf("err = %v unwraps to an SMTP reply a caller might relay", err)
	}
	for _, h := range p.Health() {
		if h.Up || h.Failures != 1 {
			t.Errorf("health %+v, want down after one failure", h)
		}
	}
}

// A penalised server is still tried when every server is penalised: it may
// have come back.
func TestPenalisedServersStillTried(t *testing.T) {
	dead := closedAddr(t)
	rs := newRawServer(t, "PIPELINING")
	rs.setGreeting("554 5.3.2 not now")
	p := newPool(t, Options{Servers: []string{dead, rs.Addr}, Balance: BalanceOrdered, RetryAfter: time.Hour})

	_, err := p.Send(t.Context(), testEnvelope(), []byte(testBody))
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "554") {
		t.Fatalf("err = %v, want ErrUnavailable naming the 554 greeting", err)
	}
	rs.setGreeting("220 raw.test back again")
	res, err := p.Send(t.Context(), testEnvelope(), []byte(testBody))
	if err != nil {
		t.Fatalf("Send after recovery: %v", err)
	}
	if res.Server != rs.Addr || len(rs.messages()) != 1 {
		t.Errorf("message went to %s; raw server has %d", res.Server, len(rs.messages()))
	}
	h := p.Health()
	if h[0].Up || h[0].Failures != 2 {
		t.Errorf("dead server %+v, want down, 2 failures", h[0])
	}
	if !h[1].Up || h[1].Failures != 1 {
		t.Errorf("recovered server %+v, want up, 1 failure", h[1])
	}
}

func TestReuse(t *testing.T) {
	ts := newTestServer(t, "tcp4", nil, nil)
	p := newPool(t, Options{Servers: []string{ts.Addr}})
	for i := range 10 {
		if _, err := p.Send(t.Context(), testEnvelope(), []byte(testBody)); err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
	}
	if n := ts.connCount(); n != 1 {
		t.Errorf("%d connections for 10 messages, want 1", n)
	}
	if n := len(ts.messages()); n != 10 {
		t.Errorf("%d messages, want 10", n)
	}
	if h := p.Health()[0]; h.Idle != 1 {
		t.Errorf("%d idle connections, want 1", h.Idle)
	}
}

func TestReuseAfterServerClosedIdle(t *testing.T) {
	ts := newTestServer(t, "tcp4", nil, nil)
	p := newPool(t, Options{Servers: []string{ts.Addr}})
	if _, err := p.Send(t.Context(), testEnvelope(), []byte(testBody)); err != nil {
		t.Fatalf("Send: %v", err)
	}
	ts.dropAll()
	testenv.WaitFor(t, "the server to drop its connection", func() bool { return ts.activeCount() == 0 })

	if _, err := p.Send(t.Context(), testEnvelope(), []byte(testBody)); err != nil {
		t.Fatalf("Send after the server closed the idle connection: %v", err)
	}
	if n := ts.connCount(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
	if h := p.Health()[0]; !h.Up || h.Failures != 0 {
		t.Errorf("a closed idle connection is no server failure: %+v", h)
	}
}

func TestIdleTimeout(t *testing.T) {
	ts := newTestServer(t, "tcp4", nil, nil)
	p := newPool(t, Options{Servers: []string{ts.Addr}, IdleTimeout: 50 * time.Millisecond})
	if _, err := p.Send(t.Context(), testEnvelope(), []byte(testBody)); err != nil {
		t.Fatalf("Send: %v", err)
	}
	testenv.WaitFor(t, "the idle connection to be closed", func() bool { return ts.activeCount() == 0 })
	if h := p.Health()[0]; h.Idle != 0 {
		t.Errorf("%d idle connections, want 0", h.Idle)
	}
	if _, err := p.Send(t.Context(), testEnvelope(), []byte(testBody)); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if n := ts.connCount(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

func TestNoReuseAfter421(t *testing.T) {
	rs := newRawServer(t, "PIPELINING")
	rs.set(".", "421 4.3.2 shutting down")
	p := newPool(t, Options{Servers: []string{rs.Addr}})
	_, err := p.Send(t.Context(), testEnvelope(), []byte(testBody))
	wantSMTPError(t, err, 421, smtp.EnhancedCode{4, 3, 2})
	if h := p.Health()[0]; h.Idle != 0 {
		t.Errorf("connection kept after 421: %+v", h)
	}
	rs.set(".", "")
	if _, err := p.Send(t.Context(), testEnvelope(), []byte(testBody)); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if n := rs.connCount(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

func TestMaxIdle(t *testing.T) {
	ts := newTestServer(t, "tcp4", nil, nil)
	p := newPool(t, Options{Servers: []string{ts.Addr}, MaxIdle: 2})
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, err := p.Send(t.Context(), testEnvelope(), []byte(testBody)); err != nil {
				t.Errorf("Send: %v", err)
			}
		})
	}
	wg.Wait()
	if n := len(ts.messages()); n != 20 {
		t.Errorf("%d messages, want 20", n)
	}
	if h := p.Health()[0]; h.Idle > 2 || h.InFlight != 0 {
		t.Errorf("health %+v, want at most 2 idle and none in flight", h)
	}
	testenv.WaitFor(t, "surplus connections to close", func() bool { return ts.activeCount() <= 2 })
}

func TestNoIdle(t *testing.T) {
	ts := newTestServer(t, "tcp4", nil, nil)
	p := newPool(t, Options{Servers: []string{ts.Addr}, MaxIdle: -1})
	for range 3 {
		if _, err := p.Send(t.Context(), testEnvelope(), []byte(testBody)); err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	if n := ts.connCount(); n != 3 {
		t.Errorf("%d connections, want one per message", n)
	}
}

func TestMixedFamilies(t *testing.T) {
	v6 := newTestServer(t, "tcp6", nil, nil)
	v4 := newTestServer(t, "tcp4", nil, nil)
	p := newPool(t, Options{Servers: []string{v6.Addr, v4.Addr}})
	for range 2 {
		if _, err := p.Send(t.Context(), testEnvelope(), []byte(testBody)); err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	if len(v6.messages()) != 1 || len(v4.messages()) != 1 {
		t.Errorf("IPv6 server %d messages, IPv4 %d; want 1 each", len(v6.messages()), len(v4.messages()))
	}
}

func TestHostName(t *testing.T) {
	ts := newTestServer(t, "tcp4", nil, nil)
	_, port, _ := strings.Cut(ts.Addr, ":")
	p := newPool(t, Options{Servers: []string{"localhost:" + port}})
	if _, err := p.Send(t.Context(), testEnvelope(), []byte(testBody)); err != nil {
		t.Fatalf("Send: %v", err)
	}
}

func TestClose(t *testing.T) {
	ts := newTestServer(t, "tcp4", nil, nil)
	p := newPool(t, Options{Servers: []string{ts.Addr}})
	if _, err := p.Send(t.Context(), testEnvelope(), []byte(testBody)); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	testenv.WaitFor(t, "the idle connection to close", func() bool { return ts.activeCount() == 0 })
	if _, err := p.Send(t.Context(), testEnvelope(), []byte(testBody)); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Send after Close: %v, want ErrUnavailable", err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
