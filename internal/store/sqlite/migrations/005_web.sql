-- The web module: sessions, API tokens, decision counts for the admin charts, harvest traps
-- and the sender domains each alias received mail from. Times are Unix milliseconds.
CREATE TABLE sessions (
  id      TEXT PRIMARY KEY,
  user    TEXT    NOT NULL,
  csrf    TEXT    NOT NULL,
  created INTEGER NOT NULL,
  expires INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions (user);
CREATE INDEX sessions_expires ON sessions (expires);

CREATE TABLE tokens (
  name      TEXT PRIMARY KEY,
  hash      TEXT    NOT NULL UNIQUE,
  owner     TEXT    NOT NULL DEFAULT '',
  created   INTEGER NOT NULL,
  last_used INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE stats (
  bucket INTEGER NOT NULL,
  name   TEXT    NOT NULL,
  count  INTEGER NOT NULL,
  PRIMARY KEY (bucket, name)
);

CREATE TABLE traps (
  address    TEXT PRIMARY KEY,
  ip         TEXT    NOT NULL,
  user_agent TEXT    NOT NULL,
  url        TEXT    NOT NULL,
  planted    INTEGER NOT NULL
);
CREATE INDEX traps_planted ON traps (planted);

CREATE TABLE trap_hits (
  id      INTEGER PRIMARY KEY,
  address TEXT    NOT NULL REFERENCES traps (address) ON DELETE CASCADE,
  ip      TEXT    NOT NULL,
  sender  TEXT    NOT NULL,
  at      INTEGER NOT NULL
);
CREATE INDEX trap_hits_at ON trap_hits (at);

CREATE TABLE alias_senders (
  alias  TEXT    NOT NULL,
  domain TEXT    NOT NULL,
  hits   INTEGER NOT NULL,
  first  INTEGER NOT NULL,
  last   INTEGER NOT NULL,
  PRIMARY KEY (alias, domain)
);
