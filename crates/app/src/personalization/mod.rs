//! The personalization room: serving recommendations, training models, subjects' histories in
//! memory, their preferences, and profiles and segments.
//!
//! Invariants:
//! - Behavioural data is read only with a consent [`Permit`](candor_domain::Permit) for the
//!   purpose it serves: a history at serving time, training pages, profile inputs. The permit
//!   carries the categories its purpose may use, and the store applies them.
//! - A request reads a subject's behaviour only if the recommendation purpose allows it now and
//!   their level is `full`; declared interests only at `basic` or above; otherwise the answer is
//!   non-personal. Quiet periods force non-personal answers. Every answer states the level and
//!   every filter applied, and is logged as a decision (off the request path, flushed at
//!   shutdown).
//! - The active engine is swapped atomically; a model that does not load or does not fit the
//!   catalog is refused and the previous engine keeps serving.
//! - `history.rs` holds each subject's newest item events (inputs, never answers), bounded; its
//!   module doc states how it stays true.

pub mod catalog;
mod history;
pub mod preferences;
pub mod profiles;
pub mod recommend;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use candor_domain::preferences::Preferences;
use candor_store::DecisionRow;
use tokio::sync::mpsc;

use crate::config::Config;

/// What answers send the decision-log writer.
pub(crate) enum DecisionLog {
    Rows(Vec<DecisionRow>),
    /// Answered once every row queued before it is written (feedback on a fresh answer).
    Flushed(tokio::sync::oneshot::Sender<()>),
}

/// What the personalization room keeps in memory.
pub(crate) struct PersonalizationRoom {
    serving: RwLock<Arc<recommend::Serving>>,
    histories: history::HistoryCache,
    prefs: RwLock<HashMap<String, Arc<Preferences>>>,
    /// Where answers queue their decision rows; `None` before the writer starts and after it
    /// stopped (then rows are written directly).
    decisions_tx: Mutex<Option<mpsc::Sender<DecisionLog>>>,
    /// A bulk catalog write committed and serving has not reloaded since (see
    /// `catalog::Refresh::Soon`).
    catalog_stale: std::sync::atomic::AtomicBool,
}

impl PersonalizationRoom {
    /// `history_ttl`: how long a history in memory may go unchecked (PostgreSQL, where another
    /// node's announcement can be lost).
    pub(crate) fn new(config: &Config, history_ttl: Option<Duration>) -> Self {
        PersonalizationRoom {
            serving: RwLock::new(Arc::new(recommend::Serving::empty())),
            histories: history::HistoryCache::new(
                config.recommend.history_cache_events,
                config.recommend.history_limit as usize,
                history_ttl,
            ),
            prefs: RwLock::default(),
            decisions_tx: Mutex::default(),
            catalog_stale: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::App;
use crate::scheduler::{Job, Reach};

/// Most decision rows written in one insert.
const DECISION_BATCH: usize = 2000;

impl App {
    /// Scheduled training, on one node of the cluster at a time.
    pub(crate) fn training_job(&self) -> Option<Job> {
        let secs = self.config.recommend.train_interval_secs;
        (secs > 0).then(|| {
            Job::new(
                "training",
                Duration::from_secs(secs),
                Reach::OncePerCluster,
                |app| async move {
                    let r = app.train("scheduler", &|_| {}).await?;
                    Ok(format!(
                        "scheduled training: version {}, {} interactions",
                        r.version, r.interactions
                    ))
                },
            )
        })
    }

    /// Reloads serving once a second while bulk catalog writes left it stale, so a feed of a
    /// million items costs a few reloads, not one per batch.
    pub(crate) fn catalog_refresh_job(&self) -> Job {
        Job::new(
            "catalog-refresh",
            Duration::from_secs(1),
            Reach::EveryNode,
            |app| async move {
                Ok(if app.refresh_serving_if_stale().await? {
                    "serving reloaded after bulk catalog writes".to_owned()
                } else {
                    String::new()
                })
            },
        )
    }

    /// The decision-log writer: answers queue their rows, and this service writes them in
    /// batches off the request path. At shutdown later answers log directly, and what is
    /// queued is written before the service ends.
    pub(crate) fn start_decision_log(
        self: &Arc<Self>,
        mut stop: watch::Receiver<bool>,
    ) -> JoinHandle<()> {
        let (tx, mut rx) = mpsc::channel::<DecisionLog>(4096);
        *self
            .personalization
            .decisions_tx
            .lock()
            .expect("decision log lock") = Some(tx);
        let app = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    message = rx.recv() => match message {
                        Some(m) => app.write_decisions(m, &mut rx).await,
                        None => break,
                    },
                    _ = stop.changed() => {
                        *app.personalization.decisions_tx.lock().expect("decision log lock") = None;
                        rx.close();
                        while let Some(m) = rx.recv().await {
                            app.write_decisions(m, &mut rx).await;
                        }
                        break;
                    }
                }
            }
        })
    }

    /// Writes one queued batch plus whatever else is waiting, as one insert, then answers the
    /// flush requests that were queued among them (each after the rows queued before it).
    async fn write_decisions(&self, first: DecisionLog, rx: &mut mpsc::Receiver<DecisionLog>) {
        let mut rows = Vec::new();
        let mut flushed = Vec::new();
        let mut next = Some(first);
        while let Some(m) = next.take() {
            match m {
                DecisionLog::Rows(more) => rows.extend(more),
                DecisionLog::Flushed(done) => flushed.push(done),
            }
            if rows.len() < DECISION_BATCH {
                next = rx.try_recv().ok();
            }
        }
        if !rows.is_empty()
            && let Err(e) = self.store.insert_decisions(&rows).await
        {
            tracing::error!(error = %e, rows = rows.len(), "decision log write failed");
        }
        for done in flushed {
            let _ = done.send(());
        }
    }

    /// Waits until every decision row queued so far is written.
    pub(crate) async fn flush_decisions(&self) {
        let tx = self
            .personalization
            .decisions_tx
            .lock()
            .expect("decision log lock")
            .clone();
        if let Some(tx) = tx {
            let (done, wait) = tokio::sync::oneshot::channel();
            if tx.send(DecisionLog::Flushed(done)).await.is_ok() {
                let _ = wait.await;
            }
        }
    }

    /// Forgets every cached preference (another node's changes may have been missed).
    pub(crate) fn clear_preferences(&self) {
        self.personalization
            .prefs
            .write()
            .expect("prefs lock")
            .clear();
    }
}
