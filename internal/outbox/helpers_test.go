package outbox_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/outbox"
	"github.com/sekisho/sekisho/internal/store"
	"github.com/sekisho/sekisho/internal/store/sqlite"
	"github.com/sekisho/sekisho/internal/testenv"
	"github.com/sekisho/sekisho/internal/upstream"
)

func newClock() *testenv.Clock { return testenv.NewClock(time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)) }

// openStore opens (or reopens) the SQLite store at path; it is closed with the test unless
// the caller closes it first.
func openStore(t *testing.T, path string) *sqlite.DB {
	t.Helper()
	st, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func dbPath(t *testing.T) string { return filepath.Join(t.TempDir(), "sekisho.db") }

// newPool returns a real upstream pool to addr, one connection per message, so that every
// attempt shows in the server's connection count.
func newPool(t *testing.T, addr string) *upstream.Pool {
	t.Helper()
	p, err := upstream.New(upstream.Options{
		Servers:  []string{addr},
		TLS:      upstream.TLSNone,
		HeloName: "sekisho.test",
		MaxIdle:  -1,
		Logger:   testenv.Logger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// run starts s.Run and returns a function that stops it and waits for it to return.
func run(t *testing.T, s *outbox.Sender) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return after cancel")
		}
	}
	t.Cleanup(stop)
	return stop
}

// queued returns everything in the outbox, due or not.
func queued(t *testing.T, st store.Store) []store.OutMsg {
	t.Helper()
	ms, err := st.OutboxDue(context.WithoutCancel(t.Context()), time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), 1000)
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

// gate stands between the pool and a server and can be switched off, like a relay that
// goes down and comes back on the same address.
type gate struct {
	addr   string
	target string
	up     atomic.Bool
	tries  atomic.Int64 // connections accepted, up or down

	l     net.Listener
	mu    sync.Mutex
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

func newGate(t *testing.T, target string, up bool) *gate {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &gate{addr: l.Addr().String(), target: target, l: l, conns: make(map[net.Conn]bool)}
	g.up.Store(up)
	g.wg.Go(g.accept)
	t.Cleanup(func() {
		l.Close()
		g.mu.Lock()
		for c := range g.conns {
			c.Close()
		}
		g.mu.Unlock()
		g.wg.Wait()
	})
	return g
}

func (g *gate) accept() {
	for {
		c, err := g.l.Accept()
		if err != nil {
			return
		}
		g.tries.Add(1)
		if !g.up.Load() {
			c.Close()
			continue
		}
		g.wg.Go(func() { g.pipe(c) })
	}
}

func (g *gate) track(c net.Conn, on bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if on {
		g.conns[c] = true
	} else {
		delete(g.conns, c)
	}
}

func (g *gate) pipe(c net.Conn) {
	g.track(c, true)
	defer g.track(c, false)
	defer c.Close()
	d, err := net.Dial("tcp", g.target)
	if err != nil {
		return
	}
	g.track(d, true)
	defer g.track(d, false)
	defer d.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(d, c)
		d.Close()
	}()
	io.Copy(c, d)
	c.Close()
	<-done
}

// swallower is an SMTP server that takes a whole message and hangs up instead of replying
// to the final ".": the sender cannot know whether it was delivered.
type swallower struct {
	addr     string
	messages atomic.Int64
}

func newSwallower(t *testing.T) *swallower {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &swallower{addr: l.Addr().String()}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { s.serve(c) })
		}
	})
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return s
}

func (s *swallower) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	io.WriteString(c, "220 swallower.test ESMTP\r\n")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		switch cmd := strings.ToUpper(strings.TrimSpace(line)); {
		case strings.HasPrefix(cmd, "EHLO"), strings.HasPrefix(cmd, "HELO"):
			io.WriteString(c, "250 swallower.test\r\n")
		case strings.HasPrefix(cmd, "DATA"):
			io.WriteString(c, "354 go ahead\r\n")
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if line == ".\r\n" {
					s.messages.Add(1)
					return // no reply: hang up
				}
			}
		case strings.HasPrefix(cmd, "QUIT"):
			io.WriteString(c, "221 bye\r\n")
			return
		default:
			io.WriteString(c, "250 ok\r\n")
		}
	}
}
