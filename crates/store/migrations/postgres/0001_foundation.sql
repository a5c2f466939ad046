-- Foundation schema (PostgreSQL). Times are BIGINT microseconds since the Unix epoch (UTC);
-- booleans are BIGINT 0/1 so the same queries decode identically on both backends.
CREATE TABLE purposes (
    id TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE purpose_history (
    seq BIGSERIAL PRIMARY KEY,
    purpose_id TEXT NOT NULL REFERENCES purposes(id),
    version BIGINT NOT NULL,
    material BIGINT NOT NULL,
    body TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE TABLE consent_records (
    seq BIGSERIAL PRIMARY KEY,
    subject_key TEXT NOT NULL,
    purpose_id TEXT NOT NULL REFERENCES purposes(id),
    decision TEXT NOT NULL,
    at BIGINT NOT NULL,
    source TEXT NOT NULL,
    policy_version BIGINT NOT NULL,
    ip_hash TEXT,
    user_agent TEXT,
    double_opt_in_token TEXT
);
CREATE INDEX consent_records_subject ON consent_records (subject_key, seq);
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    scope TEXT NOT NULL,
    secret_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE TABLE audit_log (
    seq BIGINT PRIMARY KEY,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    details TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE TABLE audit_head (
    id BIGINT PRIMARY KEY,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
CREATE TABLE webhooks (
    id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    active BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE webhook_deliveries (
    id BIGSERIAL PRIMARY KEY,
    webhook_id TEXT NOT NULL REFERENCES webhooks(id),
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    last_status_code BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
-- Shop data loaded by the demo (and later by ingestion). Protected attributes live in their own
-- table, apart from behavioral data, for fairness audits only.
CREATE TABLE catalog_categories (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    sensitive_kind TEXT
);
CREATE TABLE items (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    category_id TEXT NOT NULL REFERENCES catalog_categories(id),
    price_cents BIGINT NOT NULL
);
CREATE TABLE events (
    id BIGSERIAL PRIMARY KEY,
    subject_key TEXT NOT NULL,
    kind TEXT NOT NULL,
    item_id TEXT NOT NULL,
    quantity BIGINT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX events_subject ON events (subject_key, at);
CREATE TABLE declared_interests (
    subject_key TEXT NOT NULL,
    category_id TEXT NOT NULL,
    PRIMARY KEY (subject_key, category_id)
);
CREATE TABLE protected_attributes (
    subject_key TEXT NOT NULL,
    attribute TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (subject_key, attribute)
);
CREATE TABLE decisions (
    id BIGSERIAL PRIMARY KEY,
    subject_key TEXT NOT NULL,
    surface TEXT NOT NULL,
    item_id TEXT NOT NULL,
    selected BIGINT NOT NULL,
    outcome BIGINT,
    score DOUBLE PRECISION,
    model_version TEXT NOT NULL,
    at BIGINT NOT NULL
);
