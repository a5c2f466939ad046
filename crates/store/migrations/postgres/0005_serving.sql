-- Serving: people's preferences, the model registry, decision positions.
CREATE TABLE subject_preferences (
    subject_key TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE model_versions (
    version TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    subjects BIGINT NOT NULL,
    interactions BIGINT NOT NULL,
    items BIGINT NOT NULL,
    counts TEXT NOT NULL,
    calibration TEXT NOT NULL DEFAULT '',
    body TEXT NOT NULL,
    active BIGINT NOT NULL
);
ALTER TABLE decisions ADD COLUMN position BIGINT;
