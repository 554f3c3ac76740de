-- Digest mails queued (package digest): one row per user and day, written in the same
-- transaction as the outbox message, so a digest is neither sent twice nor lost.
-- day is the local date (YYYY-MM-DD); created is Unix milliseconds.
CREATE TABLE digests (
  day     TEXT    NOT NULL,
  owner   TEXT    NOT NULL,
  created INTEGER NOT NULL,
  PRIMARY KEY (day, owner)
);
CREATE INDEX digests_created ON digests (created);
