//! Group commit for the ingest path: concurrent requests' writes share one transaction.
//!
//! A caller queues its job and awaits its answer. On SQLite one writer thread
//! (`sqlite_writer`) takes everything queued so far and writes it in one transaction, then the
//! next group, back to back. On PostgreSQL a caller waits to become one of a few leaders, and a
//! leader writes every job queued so far; the callers that queued behind it find their answer
//! ready when their turn comes. Under load a transaction therefore carries many requests, so
//! the per-statement and per-commit costs are paid once per group instead of once per request,
//! and SQLite's single write lock is taken by one writer instead of being fought over.
//!
//! Invariants:
//! - Each job stays all-or-nothing. A group that fails for a reason other than a lost race is
//!   written again job by job, so one bad job never fails the others queued with it.
//! - A group is written by a thread or spawned task that owns it: a caller that goes away (a
//!   client hung up) cannot abandon a half-written group or let a second leader start beside
//!   it.
//! - Every job is answered exactly once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use tokio::sync::{Semaphore, oneshot};

use candor_domain::Micros;

use crate::ingest::IngestBatch;
use crate::{Backend, IngestResult, Result, Store, StoreError};

/// Most messages one group carries; keeps a transaction's duration (and a failed group's
/// re-write) bounded.
const MAX_GROUP_MESSAGES: usize = 5_000;
/// How often a transaction that lost a deadlock or found the database busy is run again.
const MAX_ATTEMPTS: u32 = 6;

/// A write that may share a transaction with others.
pub(crate) enum Job {
    Ingest(Arc<IngestBatch>),
    /// (subject, wrapped candidate key) pairs; see `Store::data_keys`.
    DataKeys(Vec<(String, String)>, Micros),
    /// SQLite: bring the subject index up to date (`Store::index_events`).
    IndexEvents,
}

impl Job {
    fn size(&self) -> usize {
        match self {
            Job::Ingest(b) => b.messages.len().max(1),
            Job::DataKeys(k, _) => k.len().max(1),
            Job::IndexEvents => 1,
        }
    }
}

/// What a job wrote.
pub(crate) enum Done {
    Ingest(IngestResult),
    /// `None` for a suppressed subject.
    DataKeys(Vec<Option<String>>),
    Indexed,
}

pub(crate) struct Queued {
    pub(crate) job: Job,
    pub(crate) reply: oneshot::Sender<Result<Done>>,
}

/// Jobs waiting for a writer.
pub(crate) struct Queue {
    jobs: Mutex<(Vec<Queued>, bool)>,
    /// Wakes the writer thread: a job was queued (or the queue closed).
    ready: Condvar,
    /// Wakes the checkpointer when the queue closes. Apart from `ready` because `push` wakes
    /// one waiter only: sharing one condvar, a push could wake the checkpointer, which goes
    /// back to sleep, while the idle writer slept out its whole idle timeout (200 ms) with a
    /// job waiting: every request that found the writer idle took 200 ms.
    closing: Condvar,
    /// SQLite: events stored (by anyone) since the subject index last caught up; nonzero means
    /// a whole-store reader must ask the writer to index first. Raised before a write is
    /// acknowledged, cleared before an index run starts.
    pub(crate) unindexed: AtomicU64,
    /// SQLite: the ingested events the subject index does not cover yet, by subject.
    pub(crate) tail: Mutex<Tail>,
    /// SQLite: bumped whenever a run over the whole table commits.
    index_generation: AtomicU64,
}

/// An index run the writer adds from its own memory, a slice at a time between groups
/// (`sqlite_writer::MemoryRun`'s methods), so no single stall is long.
pub(crate) struct MemoryRun {
    /// The index's high-water mark when the run started; the run covers `through + 1 ..= last`.
    pub(crate) through: i64,
    pub(crate) last: i64,
    /// Sorted by subject, so consecutive entries land on the same index pages.
    pub(crate) entries: Vec<SubjectEntries>,
    /// How many subjects' entries are added so far.
    pub(crate) next: usize,
    /// Pending events the run took over, returned to the count if it fails.
    pub(crate) pending: u64,
    generation: u64,
}

/// Events the subject index does not cover yet, by subject, as (id, time): point reads add
/// their ids to what the index finds. Filled after a group commits and before it is
/// acknowledged; emptied up to an index run's last id after that run commits. A reader that
/// copied ids just before a run committed finds them twice, which a query on `id IN (..)` does
/// not mind; it never finds an acknowledged event nowhere.
#[derive(Default)]
pub(crate) struct Tail {
    by_subject: std::collections::HashMap<String, Vec<(i64, Micros)>, foldhash::fast::RandomState>,
    /// Every id held, as ascending runs of consecutive ids (one writer assigns them in order,
    /// so this is nearly always one run): a million held events cost a few bytes here, not 8 MB.
    ids: Vec<(i64, i64)>,
}

impl Tail {
    /// How many held ids are above `id`.
    fn count_above(&self, id: i64) -> usize {
        self.ids
            .iter()
            .map(|(first, last)| (last - first.max(&(id + 1)) + 1).max(0) as usize)
            .sum()
    }

    fn add(&mut self, events: &[(&str, i64, Micros)]) {
        for (_, id, _) in events {
            match self.ids.last_mut() {
                Some((_, last)) if *last + 1 == *id => *last = *id,
                _ => self.ids.push((*id, *id)),
            }
        }
        for (subject, id, at) in events {
            match self.by_subject.get_mut(*subject) {
                Some(held) => held.push((*id, *at)),
                None => {
                    self.by_subject
                        .insert((*subject).to_owned(), vec![(*id, *at)]);
                }
            }
        }
    }

    /// The entries an index run can add from memory alone: everything held, sorted by subject,
    /// with the last id, provided the held ids are exactly `through + 1 ..= last` (no other
    /// process and no bulk load wrote events in between, which only a pass over the table
    /// would find). `None` when they are not, or when nothing is held.
    pub(crate) fn run_after(&self, through: i64) -> Option<(i64, Vec<SubjectEntries>)> {
        let [(first, last)] = self.ids[..] else {
            return None;
        };
        if first != through + 1 {
            return None;
        }
        let mut entries: Vec<SubjectEntries> = self
            .by_subject
            .iter()
            .map(|(s, held)| (s.clone(), held.clone()))
            .collect();
        entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Some((last, entries))
    }

    /// Drops what an index run covered: every id up to `last`.
    fn drop_through(&mut self, last: i64) {
        self.ids.retain_mut(|(first, end)| {
            *first = (*first).max(last + 1);
            *first <= *end
        });
        self.by_subject.retain(|_, held| {
            held.retain(|(id, _)| *id > last);
            !held.is_empty()
        });
    }

    pub(crate) fn clear(&mut self) {
        *self = Tail::default();
    }
}

/// One subject's unindexed events, (id, time).
pub(crate) type SubjectEntries = (String, Vec<(i64, Micros)>);

/// What the writer thread finds when it looks at the queue.
pub(crate) enum Next {
    Group(Vec<Queued>),
    /// Nothing arrived for a while.
    Idle,
    Closed,
}

impl Queue {
    fn push(&self, q: Queued) {
        self.jobs.lock().expect("write queue lock").0.push(q);
        self.ready.notify_one();
    }

    /// Takes the next group: everything queued, up to `MAX_GROUP_MESSAGES` (at least one job).
    fn take_group(jobs: &mut Vec<Queued>) -> Vec<Queued> {
        let mut size = 0;
        let cut = jobs
            .iter()
            .position(|q| {
                size += q.job.size();
                size > MAX_GROUP_MESSAGES
            })
            .map_or(jobs.len(), |i| i.max(1));
        let rest = jobs.split_off(cut);
        std::mem::replace(jobs, rest)
    }

    fn try_group(&self) -> Vec<Queued> {
        Self::take_group(&mut self.jobs.lock().expect("write queue lock").0)
    }

    /// Waits up to `idle` for a group to be queued.
    pub(crate) fn next(&self, idle: std::time::Duration) -> Next {
        let mut guard = self.jobs.lock().expect("write queue lock");
        let mut waited = false;
        loop {
            let (jobs, closed) = &mut *guard;
            if !jobs.is_empty() {
                return Next::Group(Self::take_group(jobs));
            }
            if *closed {
                return Next::Closed;
            }
            if waited {
                return Next::Idle;
            }
            guard = self
                .ready
                .wait_timeout(guard, idle)
                .expect("write queue lock")
                .0;
            waited = true;
        }
    }

    /// An index run is starting: what it covers stops counting as pending. Returns what did,
    /// for `index_failed`.
    pub(crate) fn index_starting(&self) -> u64 {
        self.unindexed.swap(0, Ordering::SeqCst)
    }

    /// An index run over the whole table committed: the tail is dropped, and any run from
    /// memory still in progress is moot.
    pub(crate) fn index_committed(&self) {
        self.tail.lock().expect("tail lock").clear();
        self.index_generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Starts a run from memory (`Tail::run_after`) over the ids above `through`; its
    /// events stop counting as pending (they are returned through `index_failed`).
    pub(crate) fn index_run_from_memory(&self, through: i64) -> Option<MemoryRun> {
        let (last, entries) = self.tail.lock().expect("tail lock").run_after(through)?;
        let covered = (last - through) as u64;
        let pending = self
            .unindexed
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                Some(n.saturating_sub(covered))
            })
            .expect("the closure always returns Some")
            .min(covered);
        Some(MemoryRun {
            through,
            last,
            entries,
            next: 0,
            pending,
            generation: self.index_generation.load(Ordering::SeqCst),
        })
    }

    /// Whether a whole-table run committed since `run` started.
    pub(crate) fn superseded(&self, run: &MemoryRun) -> bool {
        self.index_generation.load(Ordering::SeqCst) != run.generation
    }

    /// A run from memory committed: the tail drops what it covered.
    pub(crate) fn index_committed_through(&self, last: i64) {
        self.tail.lock().expect("tail lock").drop_through(last);
    }

    /// An index run failed: its entries are pending again.
    pub(crate) fn index_failed(&self, pending: u64) {
        self.unindexed.fetch_add(pending.max(1), Ordering::SeqCst);
    }

    /// A group committed without indexing: its events join the tail, before it is acknowledged.
    fn events_committed(&self, events: &[(&str, i64, Micros)]) {
        self.tail.lock().expect("tail lock").add(events);
        self.unindexed
            .fetch_add(events.len() as u64, Ordering::SeqCst);
    }

    /// Waits up to `timeout` for the queue to close; true once it has.
    pub(crate) fn wait_closed(&self, timeout: std::time::Duration) -> bool {
        let guard = self.jobs.lock().expect("write queue lock");
        if guard.1 {
            return true;
        }
        let (guard, _) = self
            .closing
            .wait_timeout_while(guard, timeout, |(_, closed)| !*closed)
            .expect("write queue lock");
        guard.1
    }

    fn close(&self) {
        self.jobs.lock().expect("write queue lock").1 = true;
        self.ready.notify_all();
        self.closing.notify_all();
    }
}

enum Writers {
    /// SQLite: the writer thread, started on first use.
    Thread(Mutex<Option<std::thread::JoinHandle<()>>>),
    /// PostgreSQL: a few groups in flight while others wait on the network.
    Leaders(Arc<Semaphore>),
}

pub(crate) struct GroupCommit {
    queue: Arc<Queue>,
    writers: Writers,
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit").finish_non_exhaustive()
    }
}

impl Drop for GroupCommit {
    fn drop(&mut self) {
        // The writer thread drains what is queued, then ends.
        self.queue.close();
    }
}

impl GroupCommit {
    pub(crate) fn new(backend: Backend) -> Self {
        GroupCommit {
            queue: Arc::new(Queue {
                jobs: Mutex::default(),
                tail: Mutex::default(),
                index_generation: AtomicU64::new(0),
                ready: Condvar::new(),
                closing: Condvar::new(),
                // A node that stopped between a write and an index run left entries to add.
                unindexed: AtomicU64::new(u64::from(backend == Backend::Sqlite)),
            }),
            writers: match backend {
                Backend::Sqlite => Writers::Thread(Mutex::default()),
                Backend::Postgres => Writers::Leaders(Arc::new(Semaphore::new(4))),
            },
        }
    }

    pub(crate) async fn submit(&self, store: &Store, job: Job) -> Result<Done> {
        let (reply, mut answer) = oneshot::channel();
        match &self.writers {
            Writers::Thread(thread) => {
                self.ensure_thread(thread, store)?;
                self.queue.push(Queued { job, reply });
            }
            Writers::Leaders(leaders) => {
                self.queue.push(Queued { job, reply });
                loop {
                    let permit = leaders
                        .clone()
                        .acquire_owned()
                        .await
                        .expect("the leader semaphore is never closed");
                    if let Ok(done) = answer.try_recv() {
                        // A leader before us wrote our job.
                        return done;
                    }
                    let group = self.queue.try_group();
                    if group.is_empty() {
                        // Another leader has our job in flight.
                        break;
                    }
                    let store = store.clone();
                    let writing = tokio::spawn(async move {
                        write_group(group, &mut Sink::Postgres(&store)).await;
                        drop(permit);
                    });
                    // The task answers every job itself; awaiting it only keeps this leader's
                    // turn. Our own job may have been beyond the group's cut, hence the loop.
                    let _ = writing.await;
                }
            }
        }
        answer.await.unwrap_or_else(|_| {
            Err(StoreError::Corrupt(
                "the group writer stopped before answering".into(),
            ))
        })
    }

    /// Notes events stored outside the writer (bulk loads), before they are acknowledged.
    pub(crate) fn note_unindexed(&self, events: usize) {
        self.queue
            .unindexed
            .fetch_add(events as u64, Ordering::SeqCst);
    }

    pub(crate) fn has_unindexed(&self) -> bool {
        self.queue.unindexed.load(Ordering::SeqCst) > 0
    }

    /// How many events above `id` this process's writer holds in its tail.
    pub(crate) fn tail_above(&self, id: i64) -> usize {
        self.queue.tail.lock().expect("tail lock").count_above(id)
    }

    /// Ids of `subject`'s events that the subject index does not cover yet.
    /// SQLite: forgets erased subjects' unindexed events, so no later index run adds entries
    /// for events that no longer exist. (Their ids stay counted in the runs of held ids; a run
    /// that finds fewer events than ids drops what is stale, as after retention.)
    pub(crate) fn forget_unindexed(&self, subjects: &[&str]) {
        let mut tail = self.queue.tail.lock().expect("tail lock");
        for s in subjects {
            tail.by_subject.remove(*s);
        }
    }

    /// SQLite: the highest event id the tail holds, if any. Ids above it (and above the
    /// index's mark) belong to groups committed but not yet handed to the tail.
    pub(crate) fn highest_unindexed_id(&self) -> Option<i64> {
        let tail = self.queue.tail.lock().expect("tail lock");
        tail.ids.last().map(|(_, last)| *last)
    }

    pub(crate) fn unindexed_ids(&self, subject: &str) -> Vec<i64> {
        self.queue
            .tail
            .lock()
            .expect("tail lock")
            .by_subject
            .get(subject)
            .map(|held| held.iter().map(|(id, _)| *id).collect())
            .unwrap_or_default()
    }

    fn ensure_thread(
        &self,
        thread: &Mutex<Option<std::thread::JoinHandle<()>>>,
        store: &Store,
    ) -> Result<()> {
        let mut thread = thread.lock().expect("writer thread lock");
        if thread.as_ref().is_some_and(|t| !t.is_finished()) {
            return Ok(());
        }
        let path = store.sqlite_path()?;
        *thread = Some(
            crate::sqlite_writer::spawn(
                self.queue.clone(),
                path,
                tokio::runtime::Handle::current(),
            )
            .map_err(|e| StoreError::Corrupt(format!("cannot start the ingest writer: {e}")))?,
        );
        Ok(())
    }
}

/// Where a group is written.
pub(crate) enum Sink<'a> {
    Sqlite {
        conn: &'a mut rusqlite::Connection,
        queue: &'a Queue,
        /// Set when the connection failed in a way that needs a new one.
        broken: bool,
    },
    Postgres(&'a Store),
}

impl Sink<'_> {
    async fn write(&mut self, jobs: &[Job]) -> Result<Vec<Done>> {
        match self {
            Sink::Sqlite {
                conn,
                queue,
                broken,
            } => {
                // A link indexes too, but a group with one cannot tell in advance: it then
                // leaves the counter raised, which only costs a reader an empty index run.
                let indexing = jobs.iter().any(|j| matches!(j, Job::IndexEvents));
                let pending = if indexing { queue.index_starting() } else { 0 };
                match crate::sqlite_writer::write_jobs(conn, jobs) {
                    Ok((done, written)) => {
                        // Before the answers go out: acknowledged means findable.
                        if written.indexed {
                            queue.index_committed();
                        } else {
                            queue.events_committed(&written.events);
                        }
                        Ok(done)
                    }
                    Err(e) => {
                        if indexing {
                            queue.index_failed(pending);
                        }
                        if let StoreError::Sqlite(e) = &e {
                            *broken |= crate::sqlite_writer::is_broken(e);
                        }
                        Err(e)
                    }
                }
            }
            Sink::Postgres(store) => store.write_jobs_in(store.pool.begin().await?, jobs).await,
        }
    }

    async fn write_with_retry(&mut self, jobs: &[Job]) -> Result<Vec<Done>> {
        let mut attempt = 0;
        loop {
            match self.write(jobs).await {
                Err(e) if attempt + 1 < MAX_ATTEMPTS && is_transient(&e) => {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(2 << attempt)).await;
                }
                other => return other,
            }
        }
    }
}

/// Writes a group in one transaction, or job by job if the group as a whole fails; answers
/// every job.
pub(crate) async fn write_group(group: Vec<Queued>, sink: &mut Sink<'_>) {
    let (jobs, replies): (Vec<Job>, Vec<_>) = group.into_iter().map(|q| (q.job, q.reply)).unzip();
    match sink.write_with_retry(&jobs).await {
        Ok(done) => {
            for (reply, d) in replies.into_iter().zip(done) {
                let _ = reply.send(Ok(d));
            }
        }
        Err(e) if jobs.len() == 1 => {
            let _ = replies.into_iter().next().expect("one").send(Err(e));
        }
        Err(_) => {
            for (job, reply) in jobs.into_iter().zip(replies) {
                let one = [job];
                let _ = reply.send(
                    sink.write_with_retry(&one)
                        .await
                        .map(|mut d| d.pop().expect("one job, one answer")),
                );
            }
        }
    }
}

impl Store {
    pub(crate) async fn submit(&self, job: Job) -> Result<Done> {
        self.writes.submit(self, job).await
    }

    /// A per-subject read of `events e`: `sql` gets the condition selecting the events of
    /// subject `$1` (the ids the subject index holds, plus on SQLite those the writer has not
    /// indexed yet, bound as one JSON array in `$3`) and may use `$2`, bound to `limit`.
    pub(crate) async fn subject_rows(
        &self,
        subject: &str,
        limit: i64,
        sql: impl FnOnce(&str) -> String,
    ) -> Result<Vec<sqlx::any::AnyRow>> {
        let tail = match self.backend {
            Backend::Sqlite => {
                self.index_foreign_events().await?;
                self.writes.unindexed_ids(subject)
            }
            Backend::Postgres => Vec::new(),
        };
        let mut of_subject =
            String::from("e.id IN (SELECT event_id FROM event_subjects WHERE subject_key = $1");
        // The unindexed ids go in as one JSON array: a subject just loaded can have thousands,
        // and a statement with one parameter per id took a second to prepare at 10,000.
        if !tail.is_empty() {
            of_subject.push_str(" UNION ALL SELECT value FROM json_each($3)");
        }
        // The index may hold stale entries (an event since moved to another subject).
        of_subject.push_str(") AND e.subject_key = $1");
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql(&of_subject)))
            .bind(subject)
            .bind(limit);
        if !tail.is_empty() {
            q = q.bind(serde_json::to_string(&tail).expect("ids serialize"));
        }
        Ok(q.fetch_all(&self.pool).await?)
    }

    /// SQLite: another process on the same file (an import, a second node for a while) keeps
    /// its unindexed events in its own memory. Ids are assigned in order, so if more ids lie
    /// above the index's high-water mark than this process's tail holds, some are someone
    /// else's: index them before reading.
    async fn index_foreign_events(&self) -> Result<()> {
        let row = sqlx::query(
            "SELECT (SELECT COALESCE(MAX(id), 0) FROM events) AS last, \
             (SELECT event_id FROM event_subjects_through WHERE id = 1) AS through",
        )
        .fetch_one(&self.pool)
        .await?;
        let (last, through): (i64, i64) = (
            sqlx::Row::try_get(&row, "last")?,
            sqlx::Row::try_get(&row, "through")?,
        );
        if last - through > self.writes.tail_above(through) as i64 {
            self.submit(Job::IndexEvents).await?;
        }
        Ok(())
    }

    /// Makes every stored event findable through the subject index alone: on SQLite, asks the
    /// writer to add the entries it has deferred (a no-op when there are none); on PostgreSQL
    /// the index is always current. Reads over all subjects (training) call this first; point
    /// reads use `subject_rows` instead and never wait.
    pub async fn index_events(&self) -> Result<()> {
        if self.backend == Backend::Sqlite && self.writes.has_unindexed() {
            self.submit(Job::IndexEvents).await?;
        }
        Ok(())
    }
}

/// Whether a failed transaction may simply be run again.
fn is_transient(e: &StoreError) -> bool {
    match e {
        StoreError::Database(sqlx::Error::Database(db)) => {
            matches!(db.code().as_deref(), Some("40P01" | "40001"))
        }
        StoreError::Sqlite(e) => crate::sqlite_writer::is_transient(e),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::Tail;

    #[test]
    fn the_tail_counts_runs_and_drops_what_an_index_run_covered() {
        let mut tail = Tail::default();
        tail.add(&[("b", 11, 5), ("a", 12, 6), ("b", 13, 7)]);
        tail.add(&[("a", 14, 8)]);
        assert_eq!(tail.ids, [(11, 14)], "consecutive ids stay one run");
        assert_eq!(tail.count_above(0), 4);
        assert_eq!(tail.count_above(12), 2);
        assert_eq!(tail.count_above(14), 0);

        // A run from memory needs exactly the ids above the mark.
        assert!(tail.run_after(9).is_none());
        let (last, entries) = tail.run_after(10).expect("ids 11..=14 are all held");
        assert_eq!(last, 14);
        assert_eq!(
            entries,
            [
                ("a".to_owned(), vec![(12, 6), (14, 8)]),
                ("b".to_owned(), vec![(11, 5), (13, 7)])
            ]
        );

        // Another process wrote id 15: a gap, so only a pass over the table will do.
        tail.add(&[("c", 16, 9)]);
        assert_eq!(tail.ids, [(11, 14), (16, 16)]);
        assert_eq!(tail.count_above(13), 2);
        assert!(tail.run_after(10).is_none());

        tail.drop_through(12);
        assert_eq!(tail.ids, [(13, 14), (16, 16)]);
        assert_eq!(tail.by_subject["a"], [(14, 8)]);
        assert_eq!(tail.by_subject["b"], [(13, 7)]);
        tail.drop_through(16);
        assert!(tail.ids.is_empty() && tail.by_subject.is_empty());
        assert!(tail.run_after(16).is_none());
    }
}
