-- Private analytics: the privacy-budget ledger (its own hash chain, shaped like the audit log,
-- with the spend projected into columns for summing) and stored transparency reports.
CREATE TABLE budget_ledger (
    seq BIGINT PRIMARY KEY,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    details TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    analyst TEXT NOT NULL,
    period TEXT NOT NULL,
    dataset TEXT NOT NULL,
    epsilon DOUBLE PRECISION NOT NULL,
    delta DOUBLE PRECISION NOT NULL
);
CREATE INDEX budget_ledger_account ON budget_ledger (analyst, period, dataset);
CREATE TABLE budget_ledger_head (
    id BIGINT PRIMARY KEY,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO budget_ledger_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
CREATE TABLE transparency_reports (
    id TEXT PRIMARY KEY,
    period TEXT NOT NULL,
    generated_at BIGINT NOT NULL,
    body TEXT NOT NULL,
    signature TEXT NOT NULL
);
CREATE INDEX transparency_reports_period ON transparency_reports (period, generated_at);
