-- Ingestion: richer events, message-id deduplication, envelope-encrypted contact data,
-- quarantine, the tracking plan and its live counts, anonymous-to-known links.
ALTER TABLE events ADD COLUMN message_id TEXT;
ALTER TABLE events ADD COLUMN name TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN category TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN purpose TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN properties TEXT NOT NULL DEFAULT '{}';
ALTER TABLE events ADD COLUMN received_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN anonymous BIGINT NOT NULL DEFAULT 0;
CREATE INDEX events_category_at ON events (category, at);
CREATE TABLE messages_seen (
    message_id TEXT PRIMARY KEY,
    received_at BIGINT NOT NULL
);
CREATE TABLE subject_data_keys (
    subject_key TEXT PRIMARY KEY,
    wrapped TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE contact_fields (
    subject_key TEXT NOT NULL,
    field TEXT NOT NULL,
    sealed TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (subject_key, field)
);
CREATE TABLE quarantined_events (
    message_id TEXT PRIMARY KEY,
    subject_key TEXT NOT NULL,
    inventory_key TEXT NOT NULL,
    sealed_payload TEXT NOT NULL,
    received_at BIGINT NOT NULL
);
CREATE TABLE inventory (
    id BIGINT PRIMARY KEY,
    body TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE inventory_counts (
    event_key TEXT NOT NULL,
    counter TEXT NOT NULL,
    value BIGINT NOT NULL,
    PRIMARY KEY (event_key, counter)
);
CREATE TABLE identity_links (
    anonymous_key TEXT NOT NULL,
    subject_key TEXT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (anonymous_key, subject_key)
);
