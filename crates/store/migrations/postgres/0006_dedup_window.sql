-- The dedup index becomes a window: ids older than `ingest.dedup_window_days` are forgotten.
CREATE INDEX messages_seen_received ON messages_seen (received_at);
