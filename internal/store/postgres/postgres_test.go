package postgres

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/lists"
	"github.com/sekisho/sekisho/internal/store"
	"github.com/sekisho/sekisho/internal/store/storetest"
	"github.com/sekisho/sekisho/internal/testenv"
)

func open(tb testing.TB, dsn string) *DB {
	tb.Helper()
	d, err := OpenWith(context.Background(), dsn, Options{Logger: testenv.Logger(tb)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { d.Close() })
	return d
}

func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) store.Store {
		dsn, _ := testenv.PostgresSchema(t)
		return open(t, dsn)
	})
}

// startListen runs d.Listen until the test ends and waits for its first wake (connected).
func startListen(t *testing.T, d *DB) <-chan struct{} {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	wake := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() { done <- d.Listen(ctx, wake) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Listen = %v", err)
		}
	})
	select {
	case <-wake:
	case <-time.After(10 * time.Second):
		t.Fatal("Listen did not connect within 10s")
	}
	return wake
}

// Two nodes (two pools) write at once while a follower reads the log in a tight loop: the
// follower must see every sequence number in order, never one before a lower one, and end
// with exactly the table.
func TestConcurrentWritersFollowerMissesNothing(t *testing.T) {
	t.Parallel()
	dsn, _ := testenv.PostgresSchema(t)
	nodes := []*DB{open(t, dsn), open(t, dsn)}
	follower := open(t, dsn)
	ctx := context.Background()

	const perNode, ops = 6, 120
	stop := make(chan struct{})
	followed := make(chan map[string]store.Entry)
	var polls, changes atomic.Int64
	go func() {
		state := map[string]store.Entry{}
		var since int64
		for {
			// Done after an empty read begun once every writer had returned.
			stopped := false
			select {
			case <-stop:
				stopped = true
			default:
			}
			ch, err := follower.Changes(ctx, since, 1000)
			polls.Add(1)
			if err != nil {
				t.Errorf("Changes(%d) = %v", since, err)
				followed <- state
				return
			}
			if stopped && len(ch) == 0 {
				followed <- state
				return
			}
			for _, c := range ch {
				if c.Seq != since+1 {
					t.Errorf("follower at %d read seq %d next: a change was skipped", since, c.Seq)
				}
				id := entryID(c.Entry)
				switch c.Op {
				case store.OpPut:
					state[id] = c.Entry
				case store.OpDel:
					delete(state, id)
				}
				since = c.Seq
			}
			changes.Add(int64(len(ch)))
		}
	}()

	var wg sync.WaitGroup
	for n, node := range nodes {
		for w := range perNode {
			wg.Go(func() {
				r := rand.New(rand.NewPCG(uint64(n), uint64(w)))
				for i := range ops {
					key := fmt.Sprintf("k%02d@x.test", r.IntN(30)) // shared keys: writers collide
					list := []store.List{store.Decoy, store.Black, store.White}[r.IntN(3)]
					var err error
					switch p := r.IntN(10); {
					case p < 6:
						e := store.Entry{List: list, Key: key, Note: fmt.Sprintf("node %d writer %d op %d", n, w, i)}
						if p == 0 {
							e.Expires = time.Now().Add(-time.Second) // for Expire to find
						}
						err = node.Put(ctx, e)
					case p < 9:
						err = node.Delete(ctx, list, key, "", "")
						if errors.Is(err, store.ErrNotFound) {
							err = nil
						}
					default:
						_, err = node.Expire(ctx, time.Now())
					}
					if err != nil {
						t.Errorf("node %d writer %d: %v", n, w, err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	close(stop)
	state := <-followed

	table := map[string]store.Entry{}
	for _, l := range store.Lists {
		es, err := follower.Entries(ctx, l, store.Query{})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			table[entryID(e)] = e
		}
	}
	if !reflect.DeepEqual(state, table) {
		t.Errorf("follower holds %d entries, table %d; they differ", len(state), len(table))
		shown := 0
		for id, e := range table {
			if !reflect.DeepEqual(state[id], e) && shown < 5 {
				t.Logf("table %s = %+v, follower %+v", id, e, state[id])
				shown++
			}
		}
	}
	t.Logf("%d changes by %d writers on 2 nodes, read in %d polls; %d entries at the end",
		changes.Load(), 2*perNode, polls.Load(), len(table))
}

func entryID(e store.Entry) string {
	return fmt.Sprintf("%s %q %q %q", e.List, e.Key, e.Kind, e.Owner)
}

// A Put on one node reaches the lists of another, woken by Listen, within 100 ms; the
// follower's own polling interval is an hour, so only the notification can do it.
func TestListenWakesFollower(t *testing.T) {
	dsn, _ := testenv.PostgresSchema(t)
	a, b := open(t, dsn), open(t, dsn)
	wake := startListen(t, a)
	ctx, cancel := context.WithCancel(context.Background())
	l := lists.New()
	if err := l.Reload(ctx, a); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { l.Follow(ctx, a, time.Hour, wake, testenv.Logger(t)) })
	defer wg.Wait()
	defer cancel()

	var delays []time.Duration
	for i := range 50 {
		key := fmt.Sprintf("decoy%d@x.test", i)
		start := time.Now()
		if err := b.Put(ctx, store.Entry{List: store.Decoy, Key: key}); err != nil {
			t.Fatal(err)
		}
		for !l.Decoy(key) {
			if time.Since(start) > time.Second {
				t.Fatalf("change %d not seen after 1s", i)
			}
			time.Sleep(200 * time.Microsecond)
		}
		delays = append(delays, time.Since(start))
	}
	slices.Sort(delays)
	p50, p99, worst := delays[len(delays)/2], delays[len(delays)*99/100], delays[len(delays)-1]
	t.Logf("Put on node B to lists on node A, over %d changes: p50 %v, p99 %v, max %v", len(delays), p50, p99, worst)
	if worst > 100*time.Millisecond {
		t.Errorf("slowest propagation %v, want within 100ms", worst)
	}
}

// Listen survives the loss of its connection: it reconnects and wakes again.
func TestListenReconnects(t *testing.T) {
	dsn, name := testenv.PostgresSchema(t)
	a, b := open(t, dsn), open(t, dsn)
	wake := startListen(t, a)
	ctx := context.Background()
	admin := testenv.PostgresAdmin(t)
	defer admin.Close(ctx)

	listener := func() int {
		var pid int
		err := admin.QueryRow(ctx, `SELECT pid FROM pg_stat_activity WHERE application_name = $1`, name+"-listen").Scan(&pid)
		if err != nil {
			t.Fatalf("listening connection %s-listen: %v", name, err)
		}
		return pid
	}
	waitWake := func(what string) {
		t.Helper()
		select {
		case <-wake:
		case <-time.After(5 * time.Second):
			t.Fatalf("no wake within 5s %s", what)
		}
	}

	old := listener()
	if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend($1)`, old); err != nil {
		t.Fatal(err)
	}
	waitWake("after the listening connection was terminated (reconnection)")
	if now := listener(); now == old {
		t.Fatalf("listening backend still %d after termination", now)
	}
	// Nothing else pending: the next wake must come from the Put.
	select {
	case <-wake:
		t.Fatal("spurious wake after reconnection")
	case <-time.After(50 * time.Millisecond):
	}
	if err := b.Put(ctx, store.Entry{List: store.Black, Key: "192.0.2.1", Source: "decoy"}); err != nil {
		t.Fatal(err)
	}
	waitWake("after a Put on the other node")
}

// Notifications of another schema in the same database do not wake this store's followers.
func TestListenIgnoresOtherSchemas(t *testing.T) {
	dsn, _ := testenv.PostgresSchema(t)
	other, _ := testenv.PostgresSchema(t)
	a, b := open(t, dsn), open(t, other)
	wake := startListen(t, a)
	ctx := context.Background()
	if err := b.Put(ctx, store.Entry{List: store.Decoy, Key: "d@x.test"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-wake:
		t.Fatal("woken by a change in another schema")
	case <-time.After(200 * time.Millisecond):
	}
	if err := a.Put(ctx, store.Entry{List: store.Decoy, Key: "d@x.test"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-wake:
	case <-time.After(5 * time.Second):
		t.Fatal("no wake for a change in the own schema")
	}
}

// A listening connection idle past ListenKeepAlive is pinged, and keeps delivering.
func TestListenKeepAlive(t *testing.T) {
	t.Parallel()
	dsn, _ := testenv.PostgresSchema(t)
	a, err := OpenWith(context.Background(), dsn, Options{Logger: testenv.Logger(t), ListenKeepAlive: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b := open(t, dsn)
	wake := startListen(t, a)
	time.Sleep(200 * time.Millisecond) // several keep-alive rounds
	select {
	case <-wake:
		t.Fatal("keep-alive woke the follower")
	default:
	}
	if err := b.Put(context.Background(), store.Entry{List: store.Decoy, Key: "d@x.test"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-wake:
	case <-time.After(5 * time.Second):
		t.Fatal("no wake after keep-alive rounds")
	}
}

// Three nodes starting at once on an empty schema: one migrates, the others wait and find
// the work done.
func TestMigrateConcurrently(t *testing.T) {
	t.Parallel()
	dsn, _ := testenv.PostgresSchema(t)
	var wg sync.WaitGroup
	dbs := make([]*DB, 3)
	errs := make([]error, 3)
	for i := range dbs {
		wg.Go(func() { dbs[i], errs[i] = Open(context.Background(), dsn) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Open %d: %v", i, err)
		}
		defer dbs[i].Close()
	}
	ctx := context.Background()
	var n int
	if err := dbs[0].pool.QueryRow(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	names, _ := migrations.ReadDir("migrations")
	if n != len(names) {
		t.Errorf("schema_migrations has %d rows, want %d", n, len(names))
	}
	if err := dbs[1].Put(ctx, store.Entry{List: store.Decoy, Key: "d@x.test"}); err != nil {
		t.Fatal(err)
	}
	if entries, seq, err := dbs[2].Snapshot(ctx); err != nil || len(entries) != 1 || seq != 1 {
		t.Fatalf("Snapshot = %+v at %d, %v", entries, seq, err)
	}
}

func TestOpenWithoutSchema(t *testing.T) {
	t.Parallel()
	dsn, name := testenv.PostgresSchema(t)
	u, _ := url.Parse(dsn)
	q := u.Query()
	q.Set("search_path", name+"_missing")
	u.RawQuery = q.Encode()
	if d, err := Open(context.Background(), u.String()); err == nil {
		d.Close()
		t.Fatal("Open with a search_path naming no schema succeeded")
	} else {
		t.Log(err)
	}
}

// A follower ahead of the database (restored from a backup, or a standby promoted before it
// had everything) is told to reload.
func TestChangesAheadOfLog(t *testing.T) {
	t.Parallel()
	dsn, _ := testenv.PostgresSchema(t)
	d := open(t, dsn)
	ctx := context.Background()
	if err := d.Put(ctx, store.Entry{List: store.Decoy, Key: "d@x.test"}); err != nil {
		t.Fatal(err)
	}
	if ch, err := d.Changes(ctx, 1, 0); err != nil || len(ch) != 0 {
		t.Fatalf("Changes(head) = %+v, %v; want none", ch, err)
	}
	if _, err := d.Changes(ctx, 5, 0); !errors.Is(err, store.ErrLogPruned) {
		t.Fatalf("Changes(beyond head) = %v, want ErrLogPruned", err)
	}
}

// Rolled-back and no-op statements leave no gap in the numbers; pruned ones are reported.
func TestChangeNumbersHaveNoGaps(t *testing.T) {
	t.Parallel()
	dsn, _ := testenv.PostgresSchema(t)
	d := open(t, dsn)
	ctx := context.Background()
	put := func(k string) {
		t.Helper()
		if err := d.Put(ctx, store.Entry{List: store.Decoy, Key: k}); err != nil {
			t.Fatal(err)
		}
	}
	put("a@x.test")
	if err := d.Delete(ctx, store.Decoy, "nobody@x.test", "", ""); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Delete of nothing = %v", err)
	}
	if n, err := d.Expire(ctx, time.Now()); err != nil || n != 0 {
		t.Fatalf("Expire of nothing = %d, %v", n, err)
	}
	// A statement that fails after taking its number: the log refuses the record.
	if _, err := d.pool.Exec(ctx, `CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS
		$$ BEGIN RAISE EXCEPTION 'refused'; END $$;
		CREATE TRIGGER refuse BEFORE INSERT ON changes FOR EACH ROW WHEN (NEW.key = 'refused@x.test') EXECUTE FUNCTION refuse()`); err != nil {
		t.Fatal(err)
	}
	if err := d.Put(ctx, store.Entry{List: store.Decoy, Key: "refused@x.test"}); err == nil {
		t.Fatal("Put with its change refused succeeded")
	}
	if got, _ := d.Entries(ctx, store.Decoy, store.Query{Q: "refused"}); len(got) != 0 {
		t.Fatalf("entry stored without its change: %+v", got)
	}
	put("b@x.test")
	ch, err := d.Changes(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(ch) != 2 || ch[0].Seq != 1 || ch[1].Seq != 2 {
		t.Fatalf("changes = %+v, want seq 1 and 2", ch)
	}
	if _, err := d.pool.Exec(ctx, `DELETE FROM changes WHERE seq = 1`); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Changes(ctx, 0, 0); !errors.Is(err, store.ErrLogPruned) {
		t.Fatalf("Changes over a pruned record = %v, want ErrLogPruned", err)
	}
}

// Entries sort bytewise and search case-insensitively in ASCII, as on SQLite.
func TestEntriesOrderAndSearch(t *testing.T) {
	t.Parallel()
	dsn, _ := testenv.PostgresSchema(t)
	d := open(t, dsn)
	ctx := context.Background()
	for _, k := range []string{"b@x.test", "B@x.test", "_a@x.test", "a%b@x.test", "a@x.test"} {
		if err := d.Put(ctx, store.Entry{List: store.Decoy, Key: k, Note: "Trap " + k}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := d.Entries(ctx, store.Decoy, store.Query{})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, e := range got {
		keys = append(keys, e.Key)
	}
	want := []string{"B@x.test", "_a@x.test", "a%b@x.test", "a@x.test", "b@x.test"}
	if !slices.Equal(keys, want) {
		t.Errorf("order = %q, want %q", keys, want)
	}
	for q, n := range map[string]int{"%": 1, "_": 1, "trap": 5, "b@": 3, "nothing": 0} {
		got, err := d.Entries(ctx, store.Decoy, store.Query{Q: q})
		if err != nil || len(got) != n {
			t.Errorf("search %q = %d entries, %v; want %d", q, len(got), err, n)
		}
	}
	page, err := d.Entries(ctx, store.Decoy, store.Query{Limit: 2, Offset: 1})
	if err != nil || len(page) != 2 || page[0].Key != "_a@x.test" {
		t.Errorf("page = %+v, %v", page, err)
	}
}

// Nodes removing different recipients of one held message at once do not leave it with none.
func TestHeldRemoveRace(t *testing.T) {
	t.Parallel()
	dsn, _ := testenv.PostgresSchema(t)
	a, b := open(t, dsn), open(t, dsn)
	ctx := context.Background()
	for range 20 {
		h := store.Held{Expires: time.Now().Add(time.Hour), From: "s@x.test",
			Rcpts: []store.HeldRcpt{{Rcpt: "a@example.jp"}, {Rcpt: "b@example.jp"}}}
		if err := a.Hold(ctx, &h, []byte("x")); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		wg.Go(func() {
			if err := a.HeldRemove(ctx, h.ID, []string{"a@example.jp"}); err != nil {
				t.Error(err)
			}
		})
		wg.Go(func() {
			if err := b.HeldRemove(ctx, h.ID, []string{"b@example.jp"}); err != nil {
				t.Error(err)
			}
		})
		wg.Wait()
		if _, _, err := a.HeldGet(ctx, h.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("message with both recipients removed: HeldGet = %v, want ErrNotFound", err)
		}
	}
}

// A listening connection that goes silent without closing (a network that drops everything)
// is found out by the keep-alive ping and replaced.
func TestListenDetectsSilentConnection(t *testing.T) {
	t.Parallel()
	dsn, _ := testenv.PostgresSchema(t)
	p := newFreezer(t, dsn)
	a, err := OpenWith(context.Background(), p.dsn, Options{Logger: testenv.Logger(t), ListenKeepAlive: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b := open(t, dsn)
	wake := startListen(t, a)
	p.freeze()
	start := time.Now()
	select {
	case <-wake:
		t.Logf("reconnected %v after the connection went silent", time.Since(start).Round(time.Millisecond))
	case <-time.After(20 * time.Second):
		t.Fatal("silent connection not replaced within 20s")
	}
	if err := b.Put(context.Background(), store.Entry{List: store.Decoy, Key: "d@x.test"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-wake:
	case <-time.After(5 * time.Second):
		t.Fatal("no wake after reconnection")
	}
}

// freezer is a TCP proxy to the test database whose connections can be made to go silent.
type freezer struct {
	dsn    string
	mu     sync.Mutex
	frozen []*atomic.Bool // one per connection so far
}

func newFreezer(t *testing.T, dsn string) *freezer {
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	target := u.Host
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u.Host = l.Addr().String()
	f := &freezer{dsn: u.String()}
	var conns sync.WaitGroup
	var open []net.Conn
	t.Cleanup(func() {
		l.Close()
		f.mu.Lock()
		for _, c := range open {
			c.Close()
		}
		f.mu.Unlock()
		conns.Wait()
	})
	conns.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			frozen := new(atomic.Bool)
			f.mu.Lock()
			f.frozen = append(f.frozen, frozen)
			open = append(open, c, up)
			f.mu.Unlock()
			pipe := func(dst, src net.Conn) {
				buf := make([]byte, 32<<10)
				for {
					n, err := src.Read(buf)
					if err != nil {
						dst.Close()
						return
					}
					if !frozen.Load() {
						dst.Write(buf[:n])
					}
				}
			}
			conns.Go(func() { pipe(up, c) })
			conns.Go(func() { pipe(c, up) })
		}
	})
	return f
}

// freeze silences every connection made so far: what is sent is dropped, nothing is closed.
func (f *freezer) freeze() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, fr := range f.frozen {
		fr.Store(true)
	}
}
