-- Rule segments defined by administrators over profile attributes. `rule` is the validated rule
-- as JSON; creating and deleting one is audited in the same transaction.
CREATE TABLE segments (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    rule TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
