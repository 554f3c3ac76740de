-- Exact lookups by target (a sender's AUDIR tokens on the hold path).
CREATE INDEX entries_target ON entries (list, target);
