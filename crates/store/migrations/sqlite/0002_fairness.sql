-- Fairness audit runs over the decision log, and the bias incident log.
CREATE TABLE audit_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    decisions BIGINT NOT NULL,
    findings BIGINT NOT NULL,
    report TEXT NOT NULL
);
CREATE TABLE bias_incidents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    finding_key TEXT NOT NULL,
    metric TEXT NOT NULL,
    severity TEXT NOT NULL,
    groups_affected TEXT NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    magnitude DOUBLE PRECISION NOT NULL,
    summary TEXT NOT NULL,
    recommended_action TEXT NOT NULL,
    finding TEXT NOT NULL,
    status TEXT NOT NULL,
    action_taken TEXT,
    resolution TEXT,
    opened_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    last_run_id BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX bias_incidents_key ON bias_incidents (finding_key, status);
CREATE INDEX decisions_at ON decisions (at);
