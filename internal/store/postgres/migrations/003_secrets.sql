-- Installation-wide secrets (e.g. the key that signs confirmation page views), the same for
-- every node of the cluster.
CREATE TABLE secrets (
  name  TEXT COLLATE "C" PRIMARY KEY,
  value BYTEA NOT NULL
);
