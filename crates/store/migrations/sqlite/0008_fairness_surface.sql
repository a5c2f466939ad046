-- Fairness runs audit one decision surface each, over a window; incidents belong to a surface.
-- Rows from before this migration have surface '' (they covered whatever the log held).
ALTER TABLE audit_runs ADD COLUMN surface TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_runs ADD COLUMN since BIGINT NOT NULL DEFAULT 0;
ALTER TABLE bias_incidents ADD COLUMN surface TEXT NOT NULL DEFAULT '';
CREATE INDEX audit_runs_surface ON audit_runs (surface, id);
