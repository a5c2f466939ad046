-- Anomaly alerts on feedback rates, and the scale-back they hold in place until a person
-- clears them.
CREATE TABLE alert_rules (
    position BIGINT PRIMARY KEY,
    body TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE alerts (
    id TEXT PRIMARY KEY,
    metric TEXT NOT NULL,
    dimension TEXT NOT NULL,
    state TEXT NOT NULL,
    cap TEXT,
    fired_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    observed DOUBLE PRECISION NOT NULL,
    expected DOUBLE PRECISION NOT NULL,
    sample BIGINT NOT NULL,
    step_day BIGINT NOT NULL,
    step_answers BIGINT NOT NULL,
    step_events BIGINT NOT NULL,
    cleared_by TEXT,
    cleared_at BIGINT,
    reason TEXT
);
CREATE INDEX alerts_state ON alerts (state, fired_at);
