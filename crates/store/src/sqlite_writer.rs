//! The SQLite side of group commit: one OS thread owns one connection and writes every queued
//! group on it, back to back.
//!
//! Why a thread and not the pool: SQLite has one writer at a time whatever we do, and an async
//! driver sends each statement to a worker thread and back, so a group of thousands of rows
//! spent most of its time handing statements between threads (and waiting for a busy runtime
//! to poll the leader again) instead of writing. Here a whole group runs as plain function
//! calls over cached prepared statements. Keeping the same connection also keeps its page
//! cache: in WAL mode a connection drops its cache whenever another connection has written.
//!
//! Invariants:
//! - Only this thread writes ingest groups on SQLite, so ingest never fights itself for the
//!   write lock; other writers (consent changes, the decision log) wait on `busy_timeout`.
//! - Between groups the writer moves the subject index on (`advance_index`), in slices short
//!   enough that no group waits long behind one.
//! - The statements are the ones PostgreSQL runs (`ingest::EVENT` and the rest): events
//!   `EVENT_ROWS` to a statement, the other rows one each.
//! - Every job taken from the queue is answered, even when the connection cannot be opened.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use candor_domain::Micros;
use rusqlite::{Connection, OpenFlags, TransactionBehavior, params};

use crate::ingest::{
    self, CLAIM, CONTACT, DATA_KEY, ENTRY, EVENT, LINK, LINK_EVENTS, PROTECTED, QUARANTINE,
};
use crate::writer::{Done, Job, MemoryRun, Next, Queue, Sink};
use crate::{Backend, NewEvent, Result};

/// Event rows per INSERT statement.
const EVENT_ROWS: usize = 32;

/// Starts the writer thread for the database file at `path`, and its checkpointer. Both end
/// when the queue closes.
pub(crate) fn spawn(
    queue: Arc<Queue>,
    path: PathBuf,
    runtime: tokio::runtime::Handle,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    {
        let (queue, path) = (queue.clone(), path.clone());
        std::thread::Builder::new()
            .name("candor-sqlite-checkpointer".into())
            .spawn(move || checkpoint_until_closed(&queue, &path))?;
    }
    std::thread::Builder::new()
        .name("candor-sqlite-writer".into())
        .spawn(move || run(&queue, &path, &runtime))
}

/// How often the checkpointer copies the write-ahead log into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// Copies committed WAL frames into the database file beside the writer. A checkpoint run by
/// the writer itself (SQLite's default, at commit) stops ingest for as long as it takes to copy
/// and sync tens of megabytes; a PASSIVE checkpoint from another connection never blocks the
/// writer, and runs on the other core.
fn checkpoint_until_closed(queue: &Queue, path: &Path) {
    let mut conn: Option<Connection> = None;
    while !queue.wait_closed(CHECKPOINT_EVERY) {
        let c = match conn
            .take()
            .map_or_else(|| open(path, wait_for_checkpoint), Ok)
        {
            Ok(c) => conn.insert(c),
            Err(e) => {
                tracing::warn!(error = %e, "the checkpointer cannot open the database");
                continue;
            }
        };
        if let Err(e) = checkpoint(c) {
            tracing::warn!(error = %e, "WAL checkpoint failed; retrying");
            conn = None;
        }
    }
}

/// Past this much the log is restarted, not only copied: a log the writer never stops
/// appending to is never wholly copied, so SQLite would never start it over and it would grow
/// for as long as ingest runs.
const WAL_RESTART_BYTES: i64 = 64 << 20;

fn checkpoint(conn: &Connection) -> rusqlite::Result<()> {
    // (busy, frames in the log, frames copied)
    let frames: i64 = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1))?;
    let page_size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    if frames * page_size > WAL_RESTART_BYTES {
        // Waits (at most CHECKPOINT_WAIT) for the writer's current transaction and for
        // readers of older frames, copies what the passive pass left, and makes the next
        // transaction write the log from its start; the writer pauses only for that
        // remainder. If it cannot get that far in time it reports busy and tries again next
        // round. RESTART rather than TRUNCATE: the file keeps its blocks, so the writer
        // overwrites them instead of growing the file (and the filesystem allocating) again
        // after every restart; `journal_size_limit` trims it when ingest stops.
        conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(()))?;
    }
    Ok(())
}

/// Subject-index entries deferred before the writer starts a run to add them. A run dirties
/// about one index page per subject it touches, whatever its length, so longer runs write fewer
/// pages per event: at 50k subjects and 10M events, runs of 1M instead of 250k cut the writer's
/// CPU per event by a fifth and the checkpointer's by a tenth, for about 60 MB more memory in
/// the tail. Point reads meanwhile find the deferred events through the in-memory tail
/// (`writer::Tail`); only whole-store reads (training) wait for a run.
const INDEX_RUN: u64 = 1_000_000;
/// How long the queue stays empty before deferred entries are added anyway.
const INDEX_WHEN_IDLE: Duration = Duration::from_millis(200);
/// How long one slice of a run may hold up the groups queued behind it. A run of 250k entries
/// over 50k subjects took one to two seconds at 10M events (a run of 1M, a few); in one piece
/// that stalled every client for as long.
const INDEX_SLICE: Duration = Duration::from_millis(10);

fn run(queue: &Queue, path: &Path, runtime: &tokio::runtime::Handle) {
    let mut conn: Option<Connection> = None;
    let mut index_run: Option<MemoryRun> = None;
    loop {
        // A run in progress goes on at once when nothing is queued.
        let idle = if index_run.is_some() {
            Duration::ZERO
        } else {
            INDEX_WHEN_IDLE
        };
        let group = match queue.next(idle) {
            Next::Closed => return,
            Next::Idle => {
                if let Some(c) = conn.as_mut() {
                    advance_index(c, queue, &mut index_run, true);
                }
                continue;
            }
            Next::Group(group) => group,
        };
        let c = match conn.take().map_or_else(|| open(path, wait_for_lock), Ok) {
            Ok(c) => conn.insert(c),
            Err(e) => {
                let message = e.to_string();
                for q in group {
                    let _ = q.reply.send(Err(crate::StoreError::Corrupt(format!(
                        "the ingest writer cannot open the database: {message}"
                    ))));
                }
                continue;
            }
        };
        let mut sink = Sink::Sqlite {
            conn: c,
            queue,
            broken: false,
        };
        // The group runs on this thread; the runtime only provides the timer for retries.
        runtime.block_on(crate::writer::write_group(group, &mut sink));
        if let Sink::Sqlite { broken: true, .. } = sink {
            // Not an answer from SQLite about the data (I/O, a vanished file): start afresh.
            conn = None;
        } else {
            advance_index(c, queue, &mut index_run, false);
        }
    }
}

/// Moves the subject index on by one slice: starts a run once enough entries are deferred (or
/// the writer is idle), from memory when the tail holds every event above the index's mark,
/// else as one pass over the table.
fn advance_index(
    conn: &mut Connection,
    queue: &Queue,
    index_run: &mut Option<MemoryRun>,
    idle: bool,
) {
    if index_run.as_ref().is_some_and(|r| queue.superseded(r)) {
        *index_run = None;
    }
    if index_run.is_none() {
        let pending = queue.unindexed.load(Ordering::SeqCst);
        if pending == 0 || (!idle && pending < INDEX_RUN) {
            return;
        }
        let through = match index_mark(conn) {
            Ok(through) => through,
            Err(e) => {
                tracing::warn!(error = %e, "the subject index's mark cannot be read");
                return;
            }
        };
        match queue.index_run_from_memory(through) {
            Some(r) => *index_run = Some(r),
            None => return index_in_background(conn, queue),
        }
    }
    let run = index_run.as_mut().expect("started above");
    match run.add_slice(conn, INDEX_SLICE) {
        Ok(false) => {}
        Ok(true) => {
            queue.index_committed_through(run.last);
            *index_run = None;
        }
        Err(e) => {
            queue.index_failed(run.pending);
            *index_run = None;
            tracing::warn!(error = %e, "deferred subject-index entries could not be added yet");
        }
    }
}

/// Entries per statement of a run from memory.
const ENTRY_ROWS: usize = 32;

impl MemoryRun {
    /// Adds entries for up to `budget`, in one transaction; true once the run is complete
    /// (the last slice also moves the index's mark to the run's last id).
    fn add_slice(&mut self, conn: &mut Connection, budget: Duration) -> Result<bool> {
        let started = std::time::Instant::now();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut rows: Vec<(&str, i64, Micros)> = Vec::with_capacity(2 * ENTRY_ROWS);
        let mut next = self.next;
        for (subject, held) in &self.entries[self.next..] {
            rows.extend(held.iter().map(|(id, at)| (subject.as_str(), *id, *at)));
            if rows.len() >= ENTRY_ROWS {
                insert_entries(&tx, &rows)?;
                rows.clear();
            }
            next += 1;
            if next.is_multiple_of(64) && started.elapsed() >= budget {
                break;
            }
        }
        insert_entries(&tx, &rows)?;
        let complete = next == self.entries.len();
        if complete {
            self.finish(&tx)?;
        }
        tx.commit()?;
        self.next = next;
        Ok(complete)
    }

    /// Closes the run: if events it covers were deleted or anonymized meanwhile (retention,
    /// which removes the entries of what it retires, may have run before this run added
    /// them), drops the entries of those, then moves the mark.
    fn finish(&self, tx: &rusqlite::Transaction<'_>) -> Result<()> {
        let remaining: i64 = tx
            .prepare_cached(
                "SELECT COUNT(*) FROM events WHERE id > ?1 AND id <= ?2 \
                 AND subject_key <> 'anonymized'",
            )?
            .query_row(params![self.through, self.last], |r| r.get(0))?;
        if remaining != self.last - self.through {
            let mut drop_stale = tx.prepare_cached(
                "DELETE FROM event_subjects WHERE subject_key = ?1 AND at = ?2 AND event_id = ?3 \
                 AND NOT EXISTS (SELECT 1 FROM events WHERE id = ?3 AND subject_key = ?1)",
            )?;
            for (subject, held) in &self.entries {
                for (id, at) in held {
                    drop_stale.execute(params![subject, at, id])?;
                }
            }
        }
        tx.prepare_cached(
            "UPDATE event_subjects_through SET event_id = max(event_id, ?1) WHERE id = 1",
        )?
        .execute([self.last])?;
        Ok(())
    }
}

fn insert_entries(tx: &rusqlite::Transaction<'_>, rows: &[(&str, i64, Micros)]) -> Result<()> {
    for chunk in rows.chunks(ENTRY_ROWS) {
        let sql = ENTRY.sql(Backend::Sqlite, chunk.len());
        let values: Vec<&dyn rusqlite::ToSql> = chunk
            .iter()
            .flat_map(|(s, id, at)| [s as &dyn rusqlite::ToSql, at, id])
            .collect();
        tx.prepare_cached(&sql)?
            .execute(rusqlite::params_from_iter(values))?;
    }
    Ok(())
}

/// The subject index's high-water mark: every event up to it has its entry.
fn index_mark(conn: &Connection) -> rusqlite::Result<i64> {
    conn.prepare_cached("SELECT event_id FROM event_subjects_through WHERE id = 1")?
        .query_row([], |r| r.get(0))
}

/// An index run over the whole table, in one transaction, nobody waiting for it; a failure
/// leaves the entries deferred for the next one.
fn index_in_background(conn: &mut Connection, queue: &Queue) {
    let pending = queue.index_starting();
    let started = std::time::Instant::now();
    match index_events_now(conn) {
        Ok(added) => {
            queue.index_committed();
            tracing::debug!(
                added,
                micros = started.elapsed().as_micros() as u64,
                "subject index caught up"
            )
        }
        Err(e) => {
            queue.index_failed(pending);
            tracing::warn!(error = %e, "deferred subject-index entries could not be added yet");
        }
    }
}

fn open(path: &Path, busy: fn(i32) -> bool) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_handler(Some(busy))?;
    // As the pool's connections (journal mode is a property of the file, set by the pool),
    // but never checkpointing at commit: the checkpointer thread does that.
    conn.execute_batch(
        "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA cache_size = -32768; \
         PRAGMA temp_store = MEMORY; PRAGMA wal_autocheckpoint = 0; PRAGMA secure_delete = ON;",
    )?;
    // A restarted log keeps at most this much of its file.
    conn.pragma_update(None, "journal_size_limit", 2 * WAL_RESTART_BYTES)?;
    // Room for every row count of the multi-row inserts (events, index entries), and the rest.
    conn.set_prepared_statement_cache_capacity(EVENT_ROWS + ENTRY_ROWS + 32);
    Ok(conn)
}

/// How long the writer waits for the write lock (a checkpoint restarting the log, another
/// connection's short write) before giving up with `SQLITE_BUSY`.
const LOCK_WAIT: Duration = Duration::from_secs(10);
/// How long a checkpoint that restarts the log waits for readers. While it waits it keeps every
/// writer out, so it gives up soon (and tries again on its next round) rather than stop ingest
/// for as long as a long read (training, an export) lasts.
const CHECKPOINT_WAIT: Duration = Duration::from_millis(50);
/// The wait between tries for a lock.
const LOCK_RETRY: Duration = Duration::from_micros(250);

/// Busy handler of the writer's connection. SQLite's own (`busy_timeout`) sleeps 1, 2, 5, 10,
/// 15, 20, 25 ms and so on between tries, so a lock held for 3 ms cost the writer 8 and one
/// held for 40 ms cost it 78; profiles of sustained ingest found the writer asleep there 14% of
/// the time. The writer is the bottleneck, so it polls at a fine, fixed step instead.
fn wait_for_lock(tries: i32) -> bool {
    wait_up_to(LOCK_WAIT, tries)
}

fn wait_for_checkpoint(tries: i32) -> bool {
    wait_up_to(CHECKPOINT_WAIT, tries)
}

fn wait_up_to(limit: Duration, tries: i32) -> bool {
    if LOCK_RETRY * u32::try_from(tries).unwrap_or(u32::MAX) >= limit {
        return false;
    }
    std::thread::sleep(LOCK_RETRY);
    true
}

/// Whether an error means the connection itself is unusable.
pub(crate) fn is_broken(e: &rusqlite::Error) -> bool {
    use rusqlite::ErrorCode::*;
    matches!(
        e.sqlite_error_code(),
        Some(SystemIoFailure | CannotOpen | DatabaseCorrupt | NotADatabase | DiskFull)
    )
}

/// Whether a failed transaction may simply be run again.
pub(crate) fn is_transient(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// What a committed group stored, for the in-memory tail of unindexed events.
pub(crate) struct Written<'j> {
    /// (subject, event id, time) of every event stored.
    pub(crate) events: Vec<(&'j str, i64, Micros)>,
    /// The subject index was brought up to date in the same transaction.
    pub(crate) indexed: bool,
}

/// Writes jobs in one IMMEDIATE transaction (the write lock is taken up front, so a busy
/// database is waited for instead of failing the group halfway) and answers each, in order.
pub(crate) fn write_jobs<'j>(
    conn: &mut Connection,
    jobs: &'j [Job],
) -> Result<(Vec<Done>, Written<'j>)> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let sql = |insert: &ingest::Insert| insert.sql(Backend::Sqlite, 1);

    // Read under the write lock: an erasure that committed before this group sees nothing of
    // it written, and one that waits for this group removes what it wrote.
    let mut suppressed = HashSet::new();
    let any: i64 = tx
        .prepare_cached(ingest::ANY_SUPPRESSED)?
        .query_row([], |r| r.get(0))?;
    if any > 0 {
        let mut check =
            tx.prepare_cached("SELECT COUNT(*) FROM suppressed_subjects WHERE subject_key = ?")?;
        for subject in ingest::group_subjects(jobs) {
            if check.query_row([subject], |r| r.get::<_, i64>(0))? > 0 {
                suppressed.insert(subject);
            }
        }
    }

    let mut stored_keys = HashMap::new();
    {
        let mut insert = tx.prepare_cached(&sql(&DATA_KEY))?;
        let mut select =
            tx.prepare_cached("SELECT wrapped FROM subject_data_keys WHERE subject_key = ?")?;
        for (subject, wrapped, at) in ingest::offered_keys(jobs, &suppressed) {
            insert.execute(params![subject, wrapped, at])?;
            let stored: String = select.query_row([subject], |r| r.get(0))?;
            stored_keys.insert(subject, stored);
        }
    }

    let mut claimed = HashSet::new();
    {
        let mut claim = tx.prepare_cached(&sql(&CLAIM))?;
        for (id, at) in ingest::claims(jobs) {
            if claim.execute(params![id, at])? == 1 {
                claimed.insert(id);
            }
        }
    }
    let (fresh, results) = ingest::split_fresh(jobs, claimed, &suppressed);

    // (event, message id, received at, anonymous as stored)
    let events: Vec<(&NewEvent, &str, Micros, i64)> = fresh
        .iter()
        .filter_map(|(m, at)| {
            m.event.as_ref().map(|e| {
                let anonymous = crate::bool_to_db(e.anonymous);
                (e, m.message_id.as_str(), *at, anonymous)
            })
        })
        .collect();
    // Rows go in EVENT_ROWS at a time: one statement run per row cost more in statement
    // set-up and the AUTOINCREMENT bookkeeping than the row itself.
    let mut written = Written {
        events: Vec::with_capacity(events.len()),
        indexed: false,
    };
    for chunk in events.chunks(EVENT_ROWS) {
        let mut values: Vec<&dyn rusqlite::ToSql> = Vec::with_capacity(chunk.len() * 12);
        for (e, message_id, received_at, anonymous) in chunk {
            values.extend_from_slice(&[
                &e.subject_key,
                &e.kind,
                &e.item_id,
                &1i64,
                &e.at,
                message_id,
                &e.name,
                &e.category,
                &e.purpose,
                &e.properties,
                received_at,
                anonymous,
            ]);
        }
        tx.prepare_cached(&EVENT.sql(Backend::Sqlite, chunk.len()))?
            .execute(rusqlite::params_from_iter(values))?;
        // One writer, one statement: the rows got consecutive ids ending at the last one.
        let last = tx.last_insert_rowid();
        let first = last - chunk.len() as i64 + 1;
        written.events.extend(
            chunk
                .iter()
                .zip(first..)
                .map(|((e, ..), id)| (e.subject_key.as_str(), id, e.at)),
        );
    }
    {
        let mut contact = tx.prepare_cached(&sql(&CONTACT))?;
        for ((subject, field), (sealed, at)) in ingest::latest_contacts(&fresh) {
            contact.execute(params![subject, field, sealed, at])?;
        }
        let mut protected = tx.prepare_cached(&sql(&PROTECTED))?;
        for ((subject, attribute), value) in ingest::latest_protected(&fresh) {
            protected.execute(params![subject, attribute, value])?;
        }
    }
    let quarantine = sql(&QUARANTINE);
    for (m, at) in &fresh {
        if let Some((subject, key, sealed)) = &m.quarantine {
            tx.prepare_cached(&quarantine)?.execute(params![
                m.message_id,
                subject,
                key,
                sealed,
                at
            ])?;
        }
        if let Some((anon, known, purposes)) = &m.link {
            written.indexed |= link(&tx, anon, known, purposes, *at)?;
        }
    }
    if jobs.iter().any(|j| matches!(j, Job::IndexEvents)) {
        index_events(&tx)?;
        written.indexed = true;
    }
    tx.commit()?;
    Ok((ingest::answers(jobs, results, &stored_keys), written))
}

/// Links a session to a known subject; true if it brought the subject index up to date.
fn link(
    tx: &rusqlite::Transaction<'_>,
    anon: &str,
    known: &str,
    purposes: &[String],
    at: Micros,
) -> Result<bool> {
    tx.prepare_cached(&LINK.sql(Backend::Sqlite, 1))?
        .execute(params![anon, known, at])?;
    if purposes.is_empty() {
        return Ok(false);
    }
    // The session's events are found through the subject index, so it must cover them.
    index_events(tx)?;
    for p in purposes {
        tx.prepare_cached(LINK_EVENTS)?
            .execute(params![known, anon, p])?;
    }
    // The moved events' entries follow them to the known subject.
    tx.prepare_cached(
        "INSERT OR IGNORE INTO event_subjects (subject_key, at, event_id) \
         SELECT e.subject_key, e.at, e.id FROM event_subjects s JOIN events e ON e.id = s.event_id \
         WHERE s.subject_key = ?1 AND e.subject_key = ?2",
    )?
    .execute(params![anon, known])?;
    tx.prepare_cached(
        "DELETE FROM event_subjects WHERE subject_key = ?1 AND NOT EXISTS \
         (SELECT 1 FROM events e WHERE e.id = event_subjects.event_id AND e.subject_key = ?1)",
    )?
    .execute(params![anon])?;
    Ok(true)
}

/// Adds the subject-index entries of every event stored since the last run, in one sorted
/// pass, and returns how many were added.
pub(crate) fn index_events(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<usize> {
    let added = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO event_subjects (subject_key, at, event_id) \
             SELECT subject_key, at, id FROM events \
             WHERE id > (SELECT event_id FROM event_subjects_through WHERE id = 1) \
             AND subject_key <> 'anonymized' ORDER BY subject_key, at, id",
        )?
        .execute([])?;
    tx.prepare_cached(
        "UPDATE event_subjects_through \
         SET event_id = max(event_id, (SELECT COALESCE(MAX(id), 0) FROM events)) WHERE id = 1",
    )?
    .execute([])?;
    Ok(added)
}

/// Runs `index_events` in a transaction of its own.
pub(crate) fn index_events_now(conn: &mut Connection) -> Result<usize> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let added = index_events(&tx)?;
    tx.commit()?;
    Ok(added)
}
