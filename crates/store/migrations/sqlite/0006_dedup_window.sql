-- The dedup index becomes a window: ids older than `ingest.dedup_window_days` are forgotten,
-- which needs an index on received_at. WITHOUT ROWID keeps one B-tree per claimed id instead of
-- a rowid table plus a separate index on the text key.
CREATE TABLE messages_seen_window (
    message_id TEXT PRIMARY KEY,
    received_at BIGINT NOT NULL
) WITHOUT ROWID;
INSERT INTO messages_seen_window (message_id, received_at)
    SELECT message_id, received_at FROM messages_seen;
DROP TABLE messages_seen;
ALTER TABLE messages_seen_window RENAME TO messages_seen;
CREATE INDEX messages_seen_received ON messages_seen (received_at);
