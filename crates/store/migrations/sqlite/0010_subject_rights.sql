-- Subject rights: requests with legal deadlines, signed erasure receipts, the suppression list.

-- Subjects whose later events are dropped at ingestion (erased with suppress=true). Only the
-- pseudonymous key is kept, never the external id.
CREATE TABLE suppressed_subjects (
    subject_key TEXT PRIMARY KEY,
    at BIGINT NOT NULL,
    request_id TEXT NOT NULL
);

-- One signed receipt per erasure (JSON body as handed out).
CREATE TABLE erasure_receipts (
    request_id TEXT PRIMARY KEY,
    subject_key TEXT NOT NULL,
    at BIGINT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX erasure_receipts_subject ON erasure_receipts (subject_key, at);

-- Rights requests and their clocks. due_at is recomputed on every change; while the clock is
-- paused (paused_since set) the request is never overdue.
CREATE TABLE rights_requests (
    id TEXT PRIMARY KEY,
    subject_key TEXT NOT NULL,
    kind TEXT NOT NULL,
    jurisdiction TEXT NOT NULL,
    status TEXT NOT NULL,
    channel TEXT NOT NULL,
    verification_method TEXT,
    details TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    extended BIGINT NOT NULL,
    paused_for BIGINT NOT NULL,
    paused_since BIGINT,
    due_at BIGINT NOT NULL,
    completed_at BIGINT,
    reason TEXT,
    overdue_notified BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX rights_requests_status ON rights_requests (status, due_at);
CREATE INDEX rights_requests_subject ON rights_requests (subject_key, received_at);

-- Which subject a delivery is about, so erasure can cancel queued ones and export list them.
ALTER TABLE webhook_deliveries ADD COLUMN subject_key TEXT;
UPDATE webhook_deliveries SET subject_key = json_extract(payload, '$.subject_key');
CREATE INDEX webhook_deliveries_subject ON webhook_deliveries (subject_key);

-- Per-subject reads of the decision log (export, erasure's unlinking).
CREATE INDEX decisions_subject ON decisions (subject_key);

-- Erasure finds a subject's quarantined messages and session links without a scan.
CREATE INDEX quarantined_events_subject ON quarantined_events (subject_key);
CREATE INDEX identity_links_subject ON identity_links (subject_key);
