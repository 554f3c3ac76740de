package server

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/cluster"
	"github.com/sekisho/sekisho/internal/store"
	"github.com/sekisho/sekisho/internal/testenv"
)

// startCluster registers the node under store.node_id with its version and counters.
func TestStartClusterRegistersNode(t *testing.T) {
	up := testenv.NewUpstream(t, "tcp4")
	cfg := parse(t, baseConfig(t.TempDir(), "127.0.0.1:0", up.Addr)+"[store]\nnode_id = \"node-7\"\n")
	srv, err := New(t.Context(), cfg, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.close()
	srv.SetVersion("1.2.3")
	if err := srv.Store().Put(t.Context(), store.Entry{List: store.Decoy, Key: "trap@example.jp"}); err != nil {
		t.Fatal(err)
	}
	if err := srv.Lists().CatchUp(t.Context(), srv.Store()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	srv.startCluster(ctx, &wg)
	defer wg.Wait()
	defer cancel()

	reg := srv.Store().(cluster.Registry)
	deadline := time.Now().Add(5 * time.Second)
	for {
		nodes, err := reg.Nodes(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if len(nodes) == 1 {
			n := nodes[0]
			if n.ID != "node-7" || n.Version != "1.2.3" || n.Counters["list_decoy"] != 1 || n.Counters["lists_seq"] != 1 ||
				time.Since(n.Heartbeat) > time.Minute || n.Started.After(n.Heartbeat) {
				t.Fatalf("node entry = %+v", n)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no node entry within 5s: %+v", nodes)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
