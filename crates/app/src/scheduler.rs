//! One scheduler for every background job of a node.
//!
//! Rooms register their jobs in [`App::jobs`]: a name, an interval, and whether the job must run
//! on one node of the cluster at a time. Such a job takes the store's cluster lock (a PostgreSQL
//! advisory lock; always granted on the embedded store) for each run, and a node that finds it
//! held skips that run. Besides interval jobs, a node runs two services for as long as it lives:
//! the change listener (other nodes' changes, `changes.rs`) and the decision-log writer.
//!
//! Invariants: every job waits its interval before its first run, so a node that starts does not
//! stampede; a failed run is logged and the job runs again at its next tick; [`Background::shutdown`]
//! stops every job between runs (never in the middle of one), runs the jobs marked
//! `at_shutdown` once more (counters are flushed, queued decisions written), then returns.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::{App, Result};

type Run =
    Arc<dyn Fn(Arc<App>) -> Pin<Box<dyn Future<Output = Result<String>> + Send>> + Send + Sync>;

/// Where a job may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reach {
    /// On every node: it works on the node's own memory or claims its rows.
    EveryNode,
    /// On one node at a time, under the cluster lock named after the job.
    OncePerCluster,
}

/// A background job: `run` returns a one-line summary for the log.
pub(crate) struct Job {
    pub name: &'static str,
    pub every: Duration,
    pub reach: Reach,
    /// Also run once when the node stops (flushes).
    pub at_shutdown: bool,
    run: Run,
}

impl Job {
    pub(crate) fn new<F, Fut>(name: &'static str, every: Duration, reach: Reach, run: F) -> Job
    where
        F: Fn(Arc<App>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<String>> + Send + 'static,
    {
        Job {
            name,
            every,
            reach,
            at_shutdown: false,
            run: Arc::new(move |app| Box::pin(run(app))),
        }
    }

    pub(crate) fn at_shutdown(mut self) -> Job {
        self.at_shutdown = true;
        self
    }
}

/// Handles to the background work; `shutdown` stops it and waits.
pub struct Background {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Background {
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// One run of a job, under the cluster lock when it needs one.
async fn run_once(app: &Arc<App>, job: &Job) {
    let lock = match job.reach {
        Reach::EveryNode => None,
        Reach::OncePerCluster => match app.store.try_cluster_lock(job.name).await {
            Ok(Some(lock)) => Some(lock),
            Ok(None) => {
                tracing::debug!(job = job.name, "another node runs this job now; skipped");
                return;
            }
            Err(e) => {
                tracing::warn!(job = job.name, error = %e, "cluster lock unavailable; skipped");
                return;
            }
        },
    };
    match (job.run)(app.clone()).await {
        Ok(summary) if summary.is_empty() => {}
        Ok(summary) => tracing::info!(job = job.name, "{summary}"),
        Err(e) => tracing::warn!(job = job.name, error = %e, "background job failed"),
    }
    if let Some(lock) = lock
        && let Err(e) = lock.release().await
    {
        tracing::warn!(job = job.name, error = %e, "releasing the cluster lock failed");
    }
}

impl App {
    /// Every interval job of this node, as its configuration enables them.
    fn jobs(&self) -> Vec<Job> {
        let mut jobs = vec![self.inventory_counter_job(), self.catalog_refresh_job()];
        jobs.extend(self.webhook_job());
        jobs.extend(self.journey_job());
        jobs.extend(self.retention_job());
        jobs.extend(self.training_job());
        jobs.extend(self.fairness_job());
        jobs.extend(self.overdue_requests_job());
        jobs.push(self.kpi_gauges_job());
        jobs.extend(self.alerts_job());
        jobs
    }

    /// Starts the change listener, the decision-log writer and every job.
    pub async fn start_background(self: &Arc<Self>) -> Result<Background> {
        let (stop, stopped) = watch::channel(false);
        let mut tasks = vec![
            self.listen_to_changes(stopped.clone()).await?,
            self.start_decision_log(stopped.clone()),
        ];
        for job in self.jobs() {
            let app = self.clone();
            let mut stop_rx = stopped.clone();
            tasks.push(tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = stop_rx.changed() => break,
                        _ = tokio::time::sleep(job.every) => run_once(&app, &job).await,
                    }
                }
                if job.at_shutdown {
                    run_once(&app, &job).await;
                }
            }));
        }
        Ok(Background { stop, tasks })
    }
}
