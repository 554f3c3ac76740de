package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/cluster"
	"github.com/sekisho/sekisho/internal/testenv"
)

// backends runs f on SQLite and on PostgreSQL; open returns a new handle on the same
// database each time it is called (a node).
func backends(t *testing.T, f func(t *testing.T, open func() cluster.Registry)) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		d := openSQLite(t)
		f(t, func() cluster.Registry { return d })
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		dsn, _ := testenv.PostgresSchema(t)
		f(t, func() cluster.Registry { return openPG(t, dsn) })
	})
}

func TestRegistry(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, open func() cluster.Registry) {
		ctx := context.Background()
		a, b := open(), open()
		t0 := time.UnixMilli(time.Now().UnixMilli()).UTC()
		n1 := cluster.Node{ID: "node-b", Version: "1.0", Started: t0.Add(-time.Hour), Heartbeat: t0.Add(-2 * time.Hour),
			Counters: map[string]int64{"smtp_transactions": 7, "list_decoy": 2}}
		n2 := cluster.Node{ID: "node-a", Version: "1.1", Started: t0, Heartbeat: t0}
		if err := a.Heartbeat(ctx, n1); err != nil {
			t.Fatal(err)
		}
		if err := b.Heartbeat(ctx, n2); err != nil {
			t.Fatal(err)
		}
		got, err := a.Nodes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].ID != "node-a" || got[1].ID != "node-b" {
			t.Fatalf("Nodes = %+v, want node-a, node-b", got)
		}
		if g := got[1]; g.Version != "1.0" || !g.Started.Equal(n1.Started) || !g.Heartbeat.Equal(n1.Heartbeat) ||
			!maps.Equal(g.Counters, n1.Counters) {
			t.Errorf("node-b = %+v, want %+v", g, n1)
		}
		if len(got[0].Counters) != 0 {
			t.Errorf("node-a counters = %v, want none", got[0].Counters)
		}

		// A later heartbeat replaces everything (a restarted node: new version and start).
		n1.Version, n1.Started, n1.Heartbeat, n1.Counters = "1.2", t0, t0, map[string]int64{"smtp_transactions": 9}
		if err := b.Heartbeat(ctx, n1); err != nil {
			t.Fatal(err)
		}
		got, _ = a.Nodes(ctx)
		if g := got[1]; g.Version != "1.2" || !g.Started.Equal(t0) || !g.Heartbeat.Equal(t0) || g.Counters["smtp_transactions"] != 9 || len(g.Counters) != 1 {
			t.Errorf("node-b after its second heartbeat = %+v", g)
		}

		// Only the silent one goes.
		stale := cluster.Node{ID: "node-c", Version: "1.0", Started: t0.Add(-3 * time.Hour), Heartbeat: t0.Add(-90 * time.Minute)}
		if err := a.Heartbeat(ctx, stale); err != nil {
			t.Fatal(err)
		}
		if n, err := b.DropNodes(ctx, t0.Add(-cluster.NodeTTL)); err != nil || n != 1 {
			t.Fatalf("DropNodes = %d, %v; want 1", n, err)
		}
		got, _ = a.Nodes(ctx)
		if len(got) != 2 || got[0].ID != "node-a" || got[1].ID != "node-b" {
			t.Fatalf("Nodes after DropNodes = %+v", got)
		}
		if n, err := b.DropNodes(ctx, t0.Add(-cluster.NodeTTL)); err != nil || n != 0 {
			t.Fatalf("second DropNodes = %d, %v; want 0", n, err)
		}
	})
}

// Beat registers the node at once and renews it with fresh counters.
func TestBeat(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, open func() cluster.Registry) {
		reg := open()
		ctx, cancel := context.WithCancel(context.Background())
		var calls atomic.Int64
		var wg sync.WaitGroup
		started := time.Now().Add(-time.Minute)
		wg.Go(func() {
			cluster.Beat(ctx, reg, cluster.Node{ID: "n1", Version: "v9", Started: started}, 20*time.Millisecond,
				func() map[string]int64 { return map[string]int64{"beats": calls.Add(1)} }, testenv.Logger(t))
		})
		defer wg.Wait()
		defer cancel()
		var first cluster.Node
		if !testenv.Eventually(5*time.Second, func() bool {
			ns, err := reg.Nodes(ctx)
			if err != nil || len(ns) != 1 {
				return false
			}
			first = ns[0]
			return true
		}) {
			t.Fatal("no node entry within 5s")
		}
		if first.ID != "n1" || first.Version != "v9" || first.Started.UnixMilli() != started.UnixMilli() {
			t.Errorf("entry = %+v", first)
		}
		if !testenv.Eventually(5*time.Second, func() bool {
			ns, err := reg.Nodes(ctx)
			return err == nil && len(ns) == 1 && ns[0].Heartbeat.After(first.Heartbeat) && ns[0].Counters["beats"] > first.Counters["beats"]
		}) {
			t.Fatal("heartbeat and counters not renewed within 5s")
		}
	})
}

// DropSilent, run with RunOnce, removes the nodes silent past its limit.
func TestDropSilent(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, open func() cluster.Registry) {
		reg := open()
		ctx := context.Background()
		now := time.Now()
		for id, ago := range map[string]time.Duration{"fresh": 0, "quiet": 30 * time.Minute, "gone": 61 * time.Minute} {
			if err := reg.Heartbeat(ctx, cluster.Node{ID: id, Started: now.Add(-2 * time.Hour), Heartbeat: now.Add(-ago)}); err != nil {
				t.Fatal(err)
			}
		}
		if err := cluster.DropSilent(reg, 0, testenv.Logger(t))(ctx); err != nil {
			t.Fatal(err)
		}
		ns, _ := reg.Nodes(ctx)
		if len(ns) != 2 || ns[0].ID != "fresh" || ns[1].ID != "quiet" {
			t.Fatalf("after DropSilent: %+v, want fresh and quiet", ns)
		}
	})
}

func TestTryLockSQLite(t *testing.T) {
	t.Parallel()
	d := openSQLite(t)
	ctx := context.Background()
	rel1, ok, err := d.TryLock(ctx, "expire")
	if err != nil || !ok {
		t.Fatalf("TryLock = %v, %v", ok, err)
	}
	rel2, ok, err := d.TryLock(ctx, "expire")
	if err != nil || !ok {
		t.Fatalf("second TryLock = %v, %v; SQLite serves one node, always granted", ok, err)
	}
	rel1()
	rel2()
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, ok, err := d.TryLock(cctx, "expire"); ok || !errors.Is(err, context.Canceled) {
		t.Fatalf("TryLock with a cancelled context = %v, %v", ok, err)
	}
}

// withApp returns dsn with another application_name, so that a test can find one node's
// connections in pg_stat_activity.
func withApp(t *testing.T, dsn, app string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("application_name", app)
	u.RawQuery = q.Encode()
	return u.String()
}

func TestTryLockPostgres(t *testing.T) {
	t.Parallel()
	dsn, name := testenv.PostgresSchema(t)
	a, b := openPG(t, withApp(t, dsn, name+"_a")), openPG(t, withApp(t, dsn, name+"_b"))
	ctx := context.Background()
	mustLock := func(who string, d cluster.Registry, lock string, want bool) func() {
		t.Helper()
		rel, ok, err := d.TryLock(ctx, lock)
		if err != nil || ok != want {
			t.Fatalf("%s TryLock(%s) = %v, %v; want %v", who, lock, ok, err, want)
		}
		return rel
	}

	relA := mustLock("A", a, "expire", true)
	mustLock("B", b, "expire", false)
	relB := mustLock("B", b, "outbox", true) // names are separate locks
	mustLock("A", a, "outbox", false)

	// Re-entrant on one handle: two holds, two releases.
	relA2 := mustLock("A again", a, "expire", true)
	relA()
	relA() // a release runs once
	mustLock("B", b, "expire", false)
	relA2()
	relB2 := mustLock("B after A released", b, "expire", true)
	mustLock("A", a, "expire", false)
	relB2()
	relB()

	// Closing a store frees its locks.
	c := openPG(t, withApp(t, dsn, name+"_c"))
	mustLock("C", c, "expire", true)
	c.Close()
	if !testenv.Eventually(5*time.Second, func() bool { // the server ends C's session a moment later
		rel, ok, err := b.TryLock(ctx, "expire")
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			rel()
		}
		return ok
	}) {
		t.Fatal("B did not get the lock within 5s of C closing its store")
	}

	// The same name in another schema (another installation) is another lock.
	other, _ := testenv.PostgresSchema(t)
	relA4 := mustLock("A", a, "expire", true)
	mustLock("other schema", openPG(t, other), "expire", true)

	// A lost lock session (database restart, network cut): the database frees the lock, B
	// takes it, and A learns at its next TryLock that it no longer holds it.
	admin := testenv.PostgresAdmin(t)
	if n := terminateLockSession(t, admin, name+"_a"); n != 1 {
		t.Fatalf("terminated %d lock sessions of A, want 1", n)
	}
	var relB3 func()
	if !testenv.Eventually(5*time.Second, func() bool {
		rel, ok, err := b.TryLock(ctx, "expire")
		if err != nil {
			t.Fatal(err)
		}
		relB3 = rel
		return ok
	}) {
		t.Fatal("B did not get the lock of A's terminated session within 5s")
	}
	mustLock("A after losing its session", a, "expire", false)
	relB3()
	// A holds it again on its new session; a release from the lost session leaves that alone.
	relA5 := mustLock("A on its new session", a, "expire", true)
	relA4()
	mustLock("B", b, "expire", false)
	relA5()
	mustLock("B after A released", b, "expire", true)
}

// Three nodes run the same job: only one runs it at each tick, never two at once; when that
// node stops another takes over, and when its lock session is killed the job goes on.
func TestRunOncePostgres(t *testing.T) {
	t.Parallel()
	dsn, name := testenv.PostgresSchema(t)
	const n, every = 3, 20 * time.Millisecond
	var (
		mu      sync.Mutex
		runs    [n]int
		running atomic.Int32
		overlap atomic.Int32
	)
	total := func() (sum int, by [n]int) {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range runs {
			sum += r
		}
		return sum, runs
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	stops := make([]context.CancelFunc, n)
	for i := range n {
		reg := openPG(t, withApp(t, dsn, fmt.Sprintf("%s_%d", name, i)))
		ctx, cancel := context.WithCancel(context.Background())
		stops[i] = cancel
		defer cancel()
		wg.Go(func() {
			cluster.RunOnce(ctx, reg, "expire", every, func(context.Context) error {
				if running.Add(1) > 1 {
					overlap.Add(1)
				}
				time.Sleep(2 * time.Millisecond)
				running.Add(-1)
				mu.Lock()
				runs[i]++
				mu.Unlock()
				return nil
			}, testenv.Logger(t).With("node", i))
		})
	}
	leader := func() int {
		t.Helper()
		_, by := total()
		l := -1
		for i, r := range by {
			if r > 0 {
				if l >= 0 {
					t.Fatalf("more than one node ran the job: %v", by)
				}
				l = i
			}
		}
		return l
	}

	reset := func() {
		mu.Lock()
		runs = [n]int{}
		mu.Unlock()
	}
	window := 500 * time.Millisecond
	time.Sleep(5 * every) // every node is running
	reset()
	time.Sleep(window)
	sum, by := total()
	first := leader()
	ticks := int(window / every)
	t.Logf("in %v (%d ticks of each node): runs by node %v", window, ticks, by)
	if first < 0 || sum < ticks/4 || sum > ticks+2 {
		t.Fatalf("runs by node %v in %d ticks: want one node running about once per tick", by, ticks)
	}

	// The leader stops: another node takes over within a few ticks.
	stops[first]()
	before, _ := total()
	if !testenv.Eventually(5*time.Second, func() bool { s, _ := total(); return s > before+5 }) {
		t.Fatalf("no node took over after node %d stopped", first)
	}
	reset()
	time.Sleep(10 * every)
	second := leader()
	if second == first || second < 0 {
		t.Fatalf("after node %d stopped, leader %d", first, second)
	}

	// Its lock session is killed: the job goes on (on this node or another) at one run per
	// tick, after at most a tick or two where both may run.
	terminateLockSession(t, testenv.PostgresAdmin(t), fmt.Sprintf("%s_%d", name, second))
	time.Sleep(10 * every) // settle
	reset()
	time.Sleep(window)
	sum, by = total()
	third := leader()
	t.Logf("after node %d's lock session was killed: runs by node %v", second, by)
	if third < 0 || sum < ticks/4 || sum > ticks+2 {
		t.Fatalf("runs by node %v after the lock session was killed", by)
	}
	if o := overlap.Load(); o > 0 {
		t.Errorf("the job ran on two nodes at once %d times", o)
	}
}

// On SQLite (one node) RunOnce simply runs the job at every tick.
func TestRunOnceSQLite(t *testing.T) {
	t.Parallel()
	reg := openSQLite(t)
	ctx, cancel := context.WithCancel(context.Background())
	var runs atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		cluster.RunOnce(ctx, reg, "expire", 10*time.Millisecond, func(context.Context) error {
			if runs.Add(1) == 3 {
				return errors.New("a failing run is logged, and the job goes on")
			}
			return nil
		}, testenv.Logger(t))
	}()
	if !testenv.Eventually(5*time.Second, func() bool { return runs.Load() >= 10 }) {
		t.Fatalf("%d runs within 5s", runs.Load())
	}
	cancel()
	<-done
}
