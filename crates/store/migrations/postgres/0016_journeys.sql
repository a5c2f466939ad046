-- Journeys (docs/JOURNEYS.md): definitions, each subject's position in each journey, the
-- messages they produced (queued, delivered, failed, deferred or suppressed, each with its
-- reasons), the time zone a person's calendar days and quiet hours are counted in, and
-- double opt-in confirmations for email. Webhooks now say what they receive: consent and
-- subject changes (`changes`, as before) or journey messages (`messages`).
ALTER TABLE webhooks ADD COLUMN kind TEXT NOT NULL DEFAULT 'changes';
CREATE TABLE journeys (
    id TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    trigger_event TEXT NOT NULL,
    active BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
-- `step` is NULL until the entry conditions were checked; `arrived_at` is when the subject
-- reached `step`, so a message is keyed by (journey, subject, step, arrived_at) and a rerun
-- after a crash finds the one it already wrote.
CREATE TABLE journey_positions (
    journey_id TEXT NOT NULL,
    subject_key TEXT NOT NULL,
    step TEXT,
    arrived_at BIGINT NOT NULL,
    wake_at BIGINT NOT NULL,
    status TEXT NOT NULL,
    sealed_external_id TEXT,
    entered_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (journey_id, subject_key)
);
CREATE INDEX journey_positions_due ON journey_positions (status, wake_at);
CREATE TABLE journey_messages (
    id TEXT PRIMARY KEY,
    journey_id TEXT NOT NULL,
    subject_key TEXT NOT NULL,
    step TEXT NOT NULL,
    arrived_at BIGINT NOT NULL,
    channel TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    reasons TEXT NOT NULL,
    uses TEXT NOT NULL,
    local_day BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (journey_id, subject_key, step, arrived_at)
);
CREATE INDEX journey_messages_subject ON journey_messages (subject_key, local_day);
CREATE INDEX journey_messages_journey ON journey_messages (journey_id, created_at);
CREATE TABLE subject_time_zones (
    subject_key TEXT PRIMARY KEY,
    time_zone TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE email_confirmations (
    token_hash TEXT PRIMARY KEY,
    subject_key TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    confirmed_at BIGINT
);
-- Advertising audiences: who each segment's last export sent (hashed contacts only), so the
-- next export can send the removals. Webhooks of kind `audiences` receive `audience.sync`.
CREATE TABLE audience_members (
    segment_id TEXT NOT NULL,
    subject_key TEXT NOT NULL,
    email_sha256 TEXT,
    phone_sha256 TEXT,
    synced_at BIGINT NOT NULL,
    PRIMARY KEY (segment_id, subject_key)
);
