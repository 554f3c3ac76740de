-- Times are Unix milliseconds; 0 means "never" / "not set".
CREATE TABLE entries (
  id          INTEGER PRIMARY KEY,
  list        TEXT    NOT NULL,
  key         TEXT    NOT NULL,
  kind        TEXT    NOT NULL DEFAULT '',
  owner       TEXT    NOT NULL DEFAULT '',
  target      TEXT    NOT NULL DEFAULT '',
  note        TEXT    NOT NULL DEFAULT '',
  source      TEXT    NOT NULL DEFAULT '',
  disabled    INTEGER NOT NULL DEFAULT 0,
  created     INTEGER NOT NULL,
  updated     INTEGER NOT NULL,
  expires     INTEGER NOT NULL DEFAULT 0,
  hits        INTEGER NOT NULL DEFAULT 0,
  last_hit    INTEGER NOT NULL DEFAULT 0,
  last_sender TEXT    NOT NULL DEFAULT '',
  UNIQUE (list, key, kind, owner)
);
CREATE INDEX entries_expires ON entries (expires) WHERE expires > 0;
CREATE INDEX entries_owner ON entries (list, owner);

CREATE TABLE changes (
  seq   INTEGER PRIMARY KEY AUTOINCREMENT,
  at    INTEGER NOT NULL,
  op    TEXT    NOT NULL,
  entry TEXT    NOT NULL
);

CREATE TABLE users (
  address       TEXT PRIMARY KEY,
  password_hash TEXT    NOT NULL,
  admin         INTEGER NOT NULL DEFAULT 0,
  created       INTEGER NOT NULL
);

CREATE TABLE held_messages (
  id        TEXT PRIMARY KEY,
  received  INTEGER NOT NULL,
  expires   INTEGER NOT NULL,
  client_ip TEXT    NOT NULL,
  helo      TEXT    NOT NULL,
  mail_from TEXT    NOT NULL,
  subject   TEXT    NOT NULL,
  size      INTEGER NOT NULL,
  data      BLOB    NOT NULL
);
CREATE INDEX held_messages_from ON held_messages (mail_from);
CREATE INDEX held_messages_expires ON held_messages (expires);

CREATE TABLE held_rcpts (
  message_id TEXT NOT NULL REFERENCES held_messages (id) ON DELETE CASCADE,
  rcpt       TEXT NOT NULL,
  owner      TEXT NOT NULL,
  reason     TEXT NOT NULL,
  PRIMARY KEY (message_id, rcpt)
);
CREATE INDEX held_rcpts_owner ON held_rcpts (owner);

CREATE TABLE outbox (
  id         INTEGER PRIMARY KEY,
  kind       TEXT    NOT NULL,
  mail_from  TEXT    NOT NULL,
  rcpts      TEXT    NOT NULL,
  data       BLOB    NOT NULL,
  created    INTEGER NOT NULL,
  next_try   INTEGER NOT NULL,
  attempts   INTEGER NOT NULL DEFAULT 0,
  last_error TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX outbox_next_try ON outbox (next_try);
