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
		port := portOf(node.addr())
		load.Go(func() { sendLoop(stop, node.addr(), "pgr-white-"+port+"-", &white, func(int) string { return friend }) })
		load.Go(func() {
			sendLoop(stop, node.addr(), "pgr-held-"+port+"-", &held, func(i int) string { return fmt.Sprintf("pgr%d-%s@elsewhere.test", i, port) })
		})
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
	if !testenv.Eventually(15*time.Second, func() bool {
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
	var atSink map[string]bool
	// Wait for whitelisted mail still in flight between sekisho and the sink.
	testenv.Eventually(10*time.Second, func() bool {
		atSink = sk.markers(t, "pgr-")
		return len(atSink) >= len(white.ok)
	})
	for mk := range atSink {
		if !strings.HasPrefix(mk, "pgr-white-") {
			t.Errorf("message %s reached the sink: it should have been held", mk)
		}
	}
	checkLoad(t, "across the restart", &white, &held, atSink, b.queuedMarkers("pgr-"))

	for _, n := range []*sekisho{a, b} {
		t.Logf("node %s: %d times \"store listen connected\", %d \"store listen connection lost\", %d \"lists follow failed\"",
			n.addr(), len(n.logged("store listen connected")), len(n.logged("store listen connection lost")), len(n.logged("lists follow failed")))
		if len(n.logged("store listen connected")) < 2 {
			t.Errorf("node %s did not log a reconnection of its listening connection", n.addr())
		}
	}
}
