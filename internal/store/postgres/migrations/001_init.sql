-- The schema of the SQLite store (internal/store/sqlite/migrations), in PostgreSQL types.
-- Times are Unix milliseconds; 0 means "never" / "not set". Keys and addresses sort bytewise
-- (COLLATE "C"), as under SQLite's BINARY collation, whatever the database's locale.
CREATE TABLE entries (
  list        TEXT    NOT NULL,
  key         TEXT    COLLATE "C" NOT NULL,
  kind        TEXT    COLLATE "C" NOT NULL DEFAULT '',
  owner       TEXT    COLLATE "C" NOT NULL DEFAULT '',
  target      TEXT    NOT NULL DEFAULT '',
  note        TEXT    NOT NULL DEFAULT '',
  source      TEXT    NOT NULL DEFAULT '',
  disabled    BOOLEAN NOT NULL DEFAULT false,
  created     BIGINT  NOT NULL,
  updated     BIGINT  NOT NULL,
  expires     BIGINT  NOT NULL DEFAULT 0,
  hits        BIGINT  NOT NULL DEFAULT 0,
  last_hit    BIGINT  NOT NULL DEFAULT 0,
  last_sender TEXT    NOT NULL DEFAULT '',
  PRIMARY KEY (list, key, kind, owner)
);
CREATE INDEX entries_expires ON entries (expires) WHERE expires > 0;
CREATE INDEX entries_owner ON entries (list, owner);

-- The last sequence number handed out. Every statement that appends to the change log
-- increments it; its row lock, held to commit, makes sequence order commit order and leaves
-- no gaps (see the package documentation).
CREATE TABLE change_seq (
  one BOOLEAN PRIMARY KEY DEFAULT true CHECK (one),
  seq BIGINT  NOT NULL
);
INSERT INTO change_seq (seq) VALUES (0);

-- The change log: the entry as it was after a put, or before a delete.
CREATE TABLE changes (
  seq         BIGINT  PRIMARY KEY,
  at          BIGINT  NOT NULL,
  op          TEXT    NOT NULL,
  list        TEXT    NOT NULL,
  key         TEXT    COLLATE "C" NOT NULL,
  kind        TEXT    COLLATE "C" NOT NULL,
  owner       TEXT    COLLATE "C" NOT NULL,
  target      TEXT    NOT NULL,
  note        TEXT    NOT NULL,
  source      TEXT    NOT NULL,
  disabled    BOOLEAN NOT NULL,
  created     BIGINT  NOT NULL,
  updated     BIGINT  NOT NULL,
  expires     BIGINT  NOT NULL,
  hits        BIGINT  NOT NULL,
  last_hit    BIGINT  NOT NULL,
  last_sender TEXT    NOT NULL
);

CREATE TABLE users (
  address       TEXT    COLLATE "C" PRIMARY KEY,
  password_hash TEXT    NOT NULL,
  admin         BOOLEAN NOT NULL DEFAULT false,
  created       BIGINT  NOT NULL
);

CREATE TABLE held_messages (
  id        TEXT   COLLATE "C" PRIMARY KEY,
  received  BIGINT NOT NULL,
  expires   BIGINT NOT NULL,
  client_ip TEXT   NOT NULL,
  helo      TEXT   NOT NULL,
  mail_from TEXT   NOT NULL,
  subject   TEXT   NOT NULL,
  size      BIGINT NOT NULL,
  data      BYTEA  NOT NULL
);
CREATE INDEX held_messages_from ON held_messages (mail_from);
CREATE INDEX held_messages_expires ON held_messages (expires);

CREATE TABLE held_rcpts (
  message_id TEXT COLLATE "C" NOT NULL REFERENCES held_messages (id) ON DELETE CASCADE,
  rcpt       TEXT COLLATE "C" NOT NULL,
  owner      TEXT NOT NULL,
  reason     TEXT NOT NULL,
  PRIMARY KEY (message_id, rcpt)
);
CREATE INDEX held_rcpts_owner ON held_rcpts (owner);

CREATE TABLE outbox (
  id         BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  kind       TEXT    NOT NULL,
  mail_from  TEXT    NOT NULL,
  rcpts      TEXT[]  NOT NULL,
  data       BYTEA   NOT NULL,
  created    BIGINT  NOT NULL,
  next_try   BIGINT  NOT NULL,
  attempts   INTEGER NOT NULL DEFAULT 0,
  last_error TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX outbox_next_try ON outbox (next_try);
