//! Group commit for the ingest path: concurrent requests' writes share one transaction.
//!
//! A caller queues its job, then waits to become a leader (one at a time on SQLite, a few on
//! PostgreSQL). A leader takes every job queued so far and writes them in one transaction; the
//! callers that queued behind it find their answer ready when their turn comes. Under load a
//! transaction therefore carries many requests, so the per-statement and per-commit costs are
//! paid once per group instead of once per request, and SQLite's single write lock is taken by
//! one writer instead of being fought over.
//!
//! Invariants:
//! - Each job stays all-or-nothing. A group that fails for a reason other than a lost race is
//!   written again job by job, so one bad job never fails the others queued with it.
//! - A group is written by a spawned task that owns the leader's permit: a caller that goes away
//!   (a client hung up) cannot abandon a half-written group or let a second leader start
//!   beside it.
//! - Every job is answered exactly once.

use std::sync::{Arc, Mutex};

use candor_domain::Micros;
use sqlx::{AnyConnection, Connection};
use tokio::sync::{Semaphore, oneshot};

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
}

impl Job {
    fn size(&self) -> usize {
        match self {
            Job::Ingest(b) => b.messages.len().max(1),
            Job::DataKeys(k, _) => k.len().max(1),
        }
    }
}

/// What a job wrote.
pub(crate) enum Done {
    Ingest(IngestResult),
    DataKeys(Vec<String>),
}

struct Queued {
    job: Job,
    reply: oneshot::Sender<Result<Done>>,
}

pub(crate) struct GroupCommit {
    queue: Mutex<Vec<Queued>>,
    leaders: Arc<Semaphore>,
    /// SQLite: the one connection groups are written on. A connection's page cache is dropped
    /// whenever another connection has written, so a writer that kept changing connections
    /// would read the indexes it updates from disk on every group.
    dedicated: tokio::sync::Mutex<Option<AnyConnection>>,
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit").finish_non_exhaustive()
    }
}

impl GroupCommit {
    pub(crate) fn new(backend: Backend) -> Self {
        // SQLite has one writer at a time whatever we do; PostgreSQL gains from a few groups in
        // flight while others wait on the network.
        let leaders = match backend {
            Backend::Sqlite => 1,
            Backend::Postgres => 4,
        };
        GroupCommit {
            queue: Mutex::default(),
            leaders: Arc::new(Semaphore::new(leaders)),
            dedicated: tokio::sync::Mutex::default(),
        }
    }

    pub(crate) async fn submit(&self, store: &Store, job: Job) -> Result<Done> {
        let (reply, mut answer) = oneshot::channel();
        self.queue
            .lock()
            .expect("write queue lock")
            .push(Queued { job, reply });
        loop {
            let permit = self
                .leaders
                .clone()
                .acquire_owned()
                .await
                .expect("the leader semaphore is never closed");
            if let Ok(done) = answer.try_recv() {
                // A leader before us wrote our job.
                return done;
            }
            let group = self.take_group();
            if group.is_empty() {
                // Another leader (PostgreSQL) has our job in flight.
                break;
            }
            let store = store.clone();
            let writing = tokio::spawn(async move {
                store.write_group(group).await;
                drop(permit);
            });
            // The task answers every job itself; awaiting it only keeps this leader's turn. Our
            // own job may have been beyond the group's cut, hence the loop.
            let _ = writing.await;
        }
        answer.await.unwrap_or_else(|_| {
            Err(StoreError::Corrupt(
                "the group writer stopped before answering".into(),
            ))
        })
    }

    fn take_group(&self) -> Vec<Queued> {
        let mut queue = self.queue.lock().expect("write queue lock");
        let mut size = 0;
        let cut = queue
            .iter()
            .position(|q| {
                size += q.job.size();
                size > MAX_GROUP_MESSAGES
            })
            .map_or(queue.len(), |i| i.max(1));
        let rest = queue.split_off(cut);
        std::mem::replace(&mut *queue, rest)
    }
}

impl Store {
    pub(crate) async fn submit(&self, job: Job) -> Result<Done> {
        self.writes.submit(self, job).await
    }

    /// Writes a group in one transaction, or job by job if the group as a whole fails; answers
    /// every job.
    async fn write_group(&self, group: Vec<Queued>) {
        let (jobs, replies): (Vec<Job>, Vec<_>) =
            group.into_iter().map(|q| (q.job, q.reply)).unzip();
        match self.with_retry(&jobs).await {
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
                        self.with_retry(&one)
                            .await
                            .map(|mut d| d.pop().expect("one job, one answer")),
                    );
                }
            }
        }
    }

    async fn write_jobs(&self, jobs: &[Job]) -> Result<Vec<Done>> {
        match self.backend {
            Backend::Postgres => self.write_jobs_in(self.pool.begin().await?, jobs).await,
            Backend::Sqlite => {
                let mut dedicated = self.writes.dedicated.lock().await;
                let conn = match dedicated.take() {
                    Some(c) => dedicated.insert(c),
                    None => {
                        let mut c = self.pool.acquire().await?.detach();
                        // Checkpoint less often than every 4 MiB of WAL: a group rewrites many
                        // of the same index pages, and each checkpoint copies a page once
                        // however often it changed since the last one.
                        sqlx::query("PRAGMA wal_autocheckpoint = 16384")
                            .execute(&mut c)
                            .await?;
                        dedicated.insert(c)
                    }
                };
                // IMMEDIATE takes the write lock up front, so a busy database is waited for
                // (busy_timeout) instead of failing the group halfway.
                let result = async {
                    let tx = conn.begin_with("BEGIN IMMEDIATE").await?;
                    self.write_jobs_in(tx, jobs).await
                }
                .await;
                if matches!(&result, Err(StoreError::Database(e)) if !matches!(e, sqlx::Error::Database(_)))
                {
                    // Not an answer from SQLite (I/O, a dead worker): start afresh next time.
                    *dedicated = None;
                }
                result
            }
        }
    }

    async fn with_retry(&self, jobs: &[Job]) -> Result<Vec<Done>> {
        let mut attempt = 0;
        loop {
            match self.write_jobs(jobs).await {
                Err(e) if attempt + 1 < MAX_ATTEMPTS && is_transient(&e) => {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(2 << attempt)).await;
                }
                other => return other,
            }
        }
    }
}

/// Whether a failed transaction may simply be run again.
fn is_transient(e: &StoreError) -> bool {
    match e {
        StoreError::Database(sqlx::Error::Database(db)) => {
            matches!(
                db.code().as_deref(),
                Some("40P01" | "40001" | "5" | "517" | "6")
            ) || db.message().contains("database is locked")
        }
        _ => false,
    }
}
