-- The node registry (package cluster): every node renews its entry every 10 s.
-- Times are Unix milliseconds; counters is a JSON object of the node's counters.
CREATE TABLE nodes (
  node_id   TEXT   COLLATE "C" PRIMARY KEY,
  version   TEXT   NOT NULL,
  started   BIGINT NOT NULL,
  heartbeat BIGINT NOT NULL,
  counters  TEXT   NOT NULL DEFAULT '{}'
);
CREATE INDEX nodes_heartbeat ON nodes (heartbeat);
