-- The web module: sessions, API tokens, decision counts for the admin charts, harvest traps
-- and the sender domains each alias received mail from. Times are Unix milliseconds.
CREATE TABLE sessions (
  id      TEXT COLLATE "C" PRIMARY KEY,
  "user"  TEXT   NOT NULL,
  csrf    TEXT   NOT NULL,
  created BIGINT NOT NULL,
  expires BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions ("user");
CREATE INDEX sessions_expires ON sessions (expires);

CREATE TABLE tokens (
  name      TEXT COLLATE "C" PRIMARY KEY,
  hash      TEXT COLLATE "C" NOT NULL UNIQUE,
  owner     TEXT   NOT NULL DEFAULT '',
  created   BIGINT NOT NULL,
  last_used BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE stats (
  bucket BIGINT NOT NULL,
  name   TEXT COLLATE "C" NOT NULL,
  count  BIGINT NOT NULL,
  PRIMARY KEY (bucket, name)
);

CREATE TABLE traps (
  address    TEXT COLLATE "C" PRIMARY KEY,
  ip         TEXT   NOT NULL,
  user_agent TEXT   NOT NULL,
  url        TEXT   NOT NULL,
  planted    BIGINT NOT NULL
);
CREATE INDEX traps_planted ON traps (planted);

CREATE TABLE trap_hits (
  id      BIGSERIAL PRIMARY KEY,
  address TEXT COLLATE "C" NOT NULL REFERENCES traps (address) ON DELETE CASCADE,
  ip      TEXT   NOT NULL,
  sender  TEXT   NOT NULL,
  at      BIGINT NOT NULL
);
CREATE INDEX trap_hits_at ON trap_hits (at);
CREATE INDEX trap_hits_address ON trap_hits (address);

CREATE TABLE alias_senders (
  alias  TEXT COLLATE "C" NOT NULL,
  domain TEXT COLLATE "C" NOT NULL,
  hits   BIGINT NOT NULL,
  first  BIGINT NOT NULL,
  last   BIGINT NOT NULL,
  PRIMARY KEY (alias, domain)
);
