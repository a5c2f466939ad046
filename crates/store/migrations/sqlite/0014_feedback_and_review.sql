-- Feedback on answers, survey answers, incremental KPI counts, and the human review queue.

-- Every logged answer names itself, so feedback can refer back to it.
ALTER TABLE decisions ADD COLUMN answer_id TEXT;
CREATE INDEX decisions_answer ON decisions (answer_id);

-- What a person said about an answer. Complaint text is sealed with the subject's data key,
-- so erasure's key shredding makes it unreadable even in old backups.
CREATE TABLE feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    subject_key TEXT NOT NULL,
    answer_id TEXT NOT NULL,
    item_id TEXT,
    kind TEXT NOT NULL,
    text_sealed TEXT,
    surface TEXT NOT NULL,
    model_version TEXT NOT NULL,
    applied TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX feedback_subject ON feedback (subject_key);

CREATE TABLE survey_answers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    subject_key TEXT NOT NULL,
    survey TEXT NOT NULL,
    score BIGINT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX survey_answers_subject ON survey_answers (subject_key);

-- Read models for KPIs: counts per metric, dimension and UTC day, added to in the same
-- transaction as the rows they count, so a KPI read never rescans events.
CREATE TABLE kpi_counts (
    metric TEXT NOT NULL,
    dimension TEXT NOT NULL,
    day BIGINT NOT NULL,
    value BIGINT NOT NULL,
    PRIMARY KEY (metric, dimension, day)
);

CREATE TABLE reviews (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    target TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    requested_at BIGINT NOT NULL,
    card TEXT NOT NULL,
    state TEXT NOT NULL,
    decided_by TEXT,
    decided_at BIGINT,
    reason TEXT
);
CREATE INDEX reviews_state ON reviews (state, requested_at);
CREATE INDEX reviews_target ON reviews (kind, target);

-- The person a key belongs to (an email or staff id), so "not your own request" holds for a
-- person who holds both an admin and a reviewer key. Empty: the key is its own identity.
ALTER TABLE api_keys ADD COLUMN holder TEXT;
