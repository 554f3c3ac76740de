-- The sender authentication of a held message (Authentication-Results style), for the
-- digest and the held-mail pages.
ALTER TABLE held_messages ADD COLUMN auth TEXT NOT NULL DEFAULT '';
