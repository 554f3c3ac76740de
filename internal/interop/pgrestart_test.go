package interop

import (
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/testenv"
)

// TestClusterPostgresRestart: two nodes on a throwaway PostgreSQL cluster of their own
// (initdb, started by the test) take a steady stream of mail, whitelisted and to hold, on
// both nodes, while PostgreSQL is really restarted (pg_ctl restart -m fast: every connection
// of both nodes is closed by the server). Afterwards every message answered 250 is at the
// sink or in the held queue; mail to hold was answered 250 or 451 4.3.0 (nothing accepted
// that could not be stored), whitelisted mail always 250; the nodes reconnect (their listening
// connections too), and list changes made after the restart on node A reach node B, and
// the other way round.
func TestClusterPostgresRestart(t *testing.T) {
	sk := startSink(t, "127.0.0.1")
	pg := testenv.StartPostgres(t, testenv.PostgresOptions{})
	dsn := pg.DSN("", url.Values{"pool_max_conns": {"4"}, "connect_timeout": {"5"}})
	a := startNode(t, "node-a", dsn, sk.addr)
	b := startNode(t, "node-b", dsn, sk.addr)
	a.mustCLI("list", "add", "white", friend)
	a.mustCLI("list", "add", "decoy", "trap@example.jp")
	a.syncLists()
	b.syncLists()

	// Load on both nodes from before the restart until after it: a whitelisted sender
	// (passes) and strangers (held, one message each).
	var white, held loadResult
	stop := make(chan struct{})
	var load sync.WaitGroup
	for _, node := range []*sekisho{a, b} {
		for _, k := range []struct {
			name string
			res  *loadResult
			from func(i int) string
		}{
			{"white", &white, func(int) string { return friend }},
			{"held", &held, func(i int) string { return fmt.Sprintf("pgr%d-%s@elsewhere.test", i, portOf(node.addr())) }},
		} {
			load.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					marker := fmt.Sprintf("pgr-%s-%s-%d.", k.name, portOf(node.addr()), i)
					k.res.add(marker, sendLoad(node.addr(), k.from(i), marker))
					time.Sleep(5 * time.Millisecond)
				}
			})
		}
	}
	stopLoad := sync.OnceFunc(func() { close(stop); load.Wait() })
	defer stopLoad()
	answered := func() int {
		white.mu.Lock()
		held.mu.Lock()
		defer white.mu.Unlock()
		defer held.mu.Unlock()
		return len(white.ok) + len(held.ok)
	}
	time.Sleep(time.Second)

	okBefore := answered()
	start := time.Now()
	pg.Restart("fast")
	restarted := time.Now()
	t.Logf("pg_ctl restart -m fast took %v under load (%d messages answered 250 before it)",
		restarted.Sub(start).Round(time.Millisecond), okBefore)

	// Mail to hold is accepted again once the pools have reconnected.
	const stranger = "stranger@elsewhere.test"
	var tries []string
	if !waitFor(15*time.Second, func() bool {
		err := sendLoad(b.addr(), stranger, "after-restart-held.")
		if err != nil {
			tries = append(tries, err.Error())
		}
		return err == nil
	}) {
		t.Fatalf("mail to hold still refused 15 s after the restart: %v", tries)
	}
	t.Logf("mail to hold on B answered 250 again %v after the restart (refused before: %v)",
		time.Since(restarted).Round(time.Millisecond), tries)

	// Changes made after the restart on one node reach the other: a decoy hit on A (written
	// by the running node A) refuses the client on B; an address blacklisted with A's
	// configuration is refused by B; a decoy hit on B refuses the client on A.
	hit := decoyHit(t, "127.0.0.60", a, "trap@example.jp")
	refused := waitRefused(t, "127.0.0.60", b, 15*time.Second)
	t.Logf("decoy hit on A after the restart: B refuses the client %v later", refused.Sub(hit).Round(time.Microsecond))
	a.mustCLI("list", "add", "black", "127.0.0.61", "-note", "after the restart")
	waitRefused(t, "127.0.0.61", b, 5*time.Second)
	hit = decoyHit(t, "127.0.0.62", b, "trap@example.jp")
	refused = waitRefused(t, "127.0.0.62", a, 5*time.Second)
	t.Logf("decoy hit on B after the restart: A refuses the client %v later", refused.Sub(hit).Round(time.Microsecond))

	// Let the load run on a little, then account for every message.
	time.Sleep(500 * time.Millisecond)
	stopLoad()
	if n := answered(); n <= okBefore+10 {
		t.Errorf("only %d messages answered 250 after the restart began (%d before): the load did not go on", n-okBefore, okBefore)
	}
	t.Logf("load on A and B: whitelisted %d answered 250, other replies %v; to hold %d answered 250, other replies %v",
		len(white.ok), white.refused, len(held.ok), held.refused)
	if len(white.refused) > 0 {
		t.Errorf("whitelisted mail refused across the restart: %v (it must pass from memory)", white.refused)
	}
	for reply := range held.refused {
		if reply != "451 4.3.0" {
			t.Errorf("mail to hold answered %q, want 250 or 451 4.3.0", reply)
		}
	}

	atSink := map[string]bool{}
	// Wait for whitelisted mail still in flight between sekisho and the sink.
	waitFor(10*time.Second, func() bool {
		clear(atSink)
		for _, m := range sk.messages(t) {
			if i := strings.Index(m, "marker pgr-"); i >= 0 {
				atSink[strings.Fields(m[i+len("marker "):])[0]] = true
			}
		}
		return len(atSink) >= len(white.ok)
	})
	for _, mk := range white.ok {
		if !atSink[mk] {
			t.Errorf("whitelisted message %s answered 250 is not at the sink", mk)
		}
	}
	for mk := range atSink {
		if !strings.HasPrefix(mk, "pgr-white-") {
			t.Errorf("message %s reached the sink: it should have been held", mk)
		}
	}
	queued := map[string]bool{}
	for _, line := range strings.Split(b.mustCLI("queue", "list"), "\n") {
		if i := strings.Index(line, "interop pgr-"); i >= 0 {
			queued[strings.Fields(line[i+len("interop "):])[0]] = true
		}
	}
	for _, mk := range held.ok {
		if !queued[mk] {
			t.Errorf("message %s answered 250 is not in the queue", mk)
		}
	}
	// As in TestClusterDatabaseOutage: a commit whose reply was lost in the restart is held
	// although its client was told 451 (and retries): a duplicate, never a loss.
	if extra := len(queued) - len(held.ok); extra < 0 || extra > held.refused["451 4.3.0"] {
		t.Errorf("the queue holds %d load messages, %d were answered 250 and %d refused 451", len(queued), len(held.ok), held.refused["451 4.3.0"])
	}

	for _, n := range []*sekisho{a, b} {
		t.Logf("node %s: %d times \"store listen connected\", %d \"store listen connection lost\", %d \"lists follow failed\"",
			n.addr(), len(n.logged("store listen connected")), len(n.logged("store listen connection lost")), len(n.logged("lists follow failed")))
		if len(n.logged("store listen connected")) < 2 {
			t.Errorf("node %s did not log a reconnection of its listening connection", n.addr())
		}
	}
}
