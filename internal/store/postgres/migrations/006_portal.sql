-- The portal's pages list one owner's entries by key, and one owner's held messages, a page
-- at a time. With the owner and the key in one index the alias page reads just the rows it
-- shows, already in order; with the message id beside the owner the held-mail page finds a
-- user's messages from the index alone. Each replaces the narrower index it extends.
DROP INDEX entries_owner;
CREATE INDEX entries_owner_key ON entries (list, owner, key, kind);
DROP INDEX held_rcpts_owner;
CREATE INDEX held_rcpts_owner_message ON held_rcpts (owner, message_id);
