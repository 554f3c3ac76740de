package server

import (
	"context"
	"sync"
	"time"

	"github.com/sekisho/sekisho/internal/cluster"
)

// DropNodesEvery is how often the cluster looks for nodes silent past cluster.NodeTTL.
const DropNodesEvery = 10 * time.Minute

// SetVersion sets the version this node reports in the node registry (main's build version).
// Call it before Run.
func (s *Server) SetVersion(v string) { s.version = v }

// startCluster registers this node (store.node_id) with a heartbeat and runs the dropping of
// silent nodes once per cluster, until ctx ends; wg waits for both. A store that keeps no
// registry (none of sekisho's) starts nothing.
func (s *Server) startCluster(ctx context.Context, wg *sync.WaitGroup) {
	reg, ok := s.store.(cluster.Registry)
	if !ok {
		return
	}
	log := s.log.With("component", "cluster")
	version := s.version
	if version == "" {
		version = "unknown"
	}
	node := cluster.Node{ID: s.cfg.Store.NodeID, Version: version, Started: time.Now()}
	log.Info("node registered", "node", node.ID, "version", version)
	wg.Go(func() { cluster.Beat(ctx, reg, node, cluster.HeartbeatEvery, s.nodeCounters, log) })
	wg.Go(func() {
		cluster.RunOnce(ctx, reg, "drop-nodes", DropNodesEvery, cluster.DropSilent(reg, cluster.NodeTTL, log), log)
	})
}

// nodeCounters are the counters this node reports with each heartbeat: the size of each list
// in its memory and the change it has applied last (nodes that lag show a lower lists_seq).
func (s *Server) nodeCounters() map[string]int64 {
	c := map[string]int64{"lists_seq": s.lists.Seq()}
	for l, n := range s.lists.Sizes() {
		c["list_"+string(l)] = int64(n)
	}
	return c
}
