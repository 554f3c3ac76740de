-- Installation-wide secrets (e.g. the key that signs confirmation page views), the same for
-- every process that shares the database.
CREATE TABLE secrets (
  name  TEXT PRIMARY KEY,
  value BLOB NOT NULL
);
