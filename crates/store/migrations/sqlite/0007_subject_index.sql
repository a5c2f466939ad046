-- Per-subject lookups go through `event_subjects`, an index kept by the ingest writer instead
-- of by SQLite on every insert. Ingest arrives in random subject order, so an ordinary index
-- on (subject_key, at) dirtied about one page per event; the writer instead adds the entries
-- of everything newer than `event_subjects_through` in large sorted runs, where one page
-- takes many entries. Readers ask the writer to catch up first (`Store::index_events`), so
-- a read never misses a stored event.
CREATE TABLE event_subjects (
    subject_key TEXT NOT NULL,
    at BIGINT NOT NULL,
    event_id BIGINT NOT NULL,
    PRIMARY KEY (subject_key, at, event_id)
) WITHOUT ROWID;
INSERT INTO event_subjects (subject_key, at, event_id)
    SELECT subject_key, at, id FROM events WHERE subject_key <> 'anonymized'
    ORDER BY subject_key, at, id;
CREATE TABLE event_subjects_through (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    event_id BIGINT NOT NULL
);
INSERT INTO event_subjects_through (id, event_id)
    VALUES (1, COALESCE((SELECT MAX(id) FROM events), 0));
DROP INDEX events_subject;
