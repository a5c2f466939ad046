-- SQLite keeps a separately maintained per-subject index, `event_subjects` (see its
-- migration). PostgreSQL keeps its ordinary index on events (subject_key, at); this view gives
-- the same name and columns, so per-subject queries are written once for both backends.
CREATE VIEW event_subjects AS SELECT subject_key, at, id AS event_id FROM events;
