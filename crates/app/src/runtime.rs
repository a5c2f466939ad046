//! Background work of a running node: applying other nodes' changes, delivering webhooks.

use std::sync::Arc;
use std::time::Duration;

use candor_domain::SubjectKey;
use candor_store::Change;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::{App, Result};

/// Handles to the background tasks; `shutdown` stops them and waits.
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

impl App {
    /// Starts the change listener and, if enabled, the webhook deliverer.
    pub async fn start_background(self: &Arc<Self>) -> Result<Background> {
        let (stop, stopped) = watch::channel(false);
        let mut tasks = Vec::new();
        let mut changes = self.store.listen_changes().await?;
        let app = self.clone();
        let mut stop_rx = stopped.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop_rx.changed() => break,
                    change = changes.recv() => match change {
                        Some(c) => app.apply_change(c).await,
                        None => break,
                    },
                }
            }
        }));
        if self.config.webhooks.enabled {
            let app = self.clone();
            let mut stop_rx = stopped.clone();
            let every = Duration::from_millis(self.config.webhooks.poll_interval_ms);
            tasks.push(tokio::spawn(async move {
                loop {
                    if let Err(e) = app.deliver_due_webhooks().await {
                        tracing::warn!(error = %e, "webhook delivery pass failed");
                    }
                    tokio::select! {
                        _ = stop_rx.changed() => break,
                        _ = tokio::time::sleep(every) => {}
                    }
                }
            }));
        }
        {
            // Decisions are logged off the request path, in batches.
            let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<candor_store::DecisionRow>>(4096);
            *self.decisions_tx.lock().expect("decision log lock") = Some(tx);
            let app = self.clone();
            let mut stop_rx = stopped.clone();
            tasks.push(tokio::spawn(async move {
                loop {
                    tokio::select! {
                        batch = rx.recv() => match batch {
                            Some(rows) => app.write_decisions(rows, &mut rx).await,
                            None => break,
                        },
                        _ = stop_rx.changed() => {
                            // Later responses log directly; what is queued is written before exit.
                            *app.decisions_tx.lock().expect("decision log lock") = None;
                            rx.close();
                            while let Some(rows) = rx.recv().await {
                                app.write_decisions(rows, &mut rx).await;
                            }
                            break;
                        }
                    }
                }
            }));
        }
        {
            let app = self.clone();
            let mut stop_rx = stopped.clone();
            tasks.push(tokio::spawn(async move {
                loop {
                    let stop = tokio::select! {
                        _ = stop_rx.changed() => true,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => false,
                    };
                    if let Err(e) = app.flush_inventory_counts().await {
                        tracing::warn!(error = %e, "flushing tracking-plan counters failed; kept for the next flush");
                    }
                    if stop {
                        break;
                    }
                }
            }));
        }
        if self.config.recommend.train_interval_secs > 0 {
            let app = self.clone();
            let mut stop_rx = stopped.clone();
            let every = Duration::from_secs(self.config.recommend.train_interval_secs);
            tasks.push(tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = stop_rx.changed() => break,
                        _ = tokio::time::sleep(every) => {}
                    }
                    match app.train("scheduler", &|_| {}).await {
                        Ok(r) => tracing::info!(version = %r.version, interactions = r.interactions, "scheduled training"),
                        Err(e) => tracing::warn!(error = %e, "scheduled training failed"),
                    }
                }
            }));
        }
        if self.config.ingest.retention_interval_secs > 0 {
            let app = self.clone();
            let mut stop_rx = stopped.clone();
            let every = Duration::from_secs(self.config.ingest.retention_interval_secs);
            tasks.push(tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = stop_rx.changed() => break,
                        _ = tokio::time::sleep(every) => {}
                    }
                    match app.run_retention("scheduler").await {
                        Ok(r) => tracing::info!(
                            anonymous_sessions_deleted = r.anonymous_sessions_deleted,
                            "retention pass"
                        ),
                        Err(e) => tracing::warn!(error = %e, "retention pass failed"),
                    }
                }
            }));
        }
        if self.config.fairness.audit_interval_secs > 0 {
            let app = self.clone();
            let mut stop_rx = stopped.clone();
            let every = Duration::from_secs(self.config.fairness.audit_interval_secs);
            tasks.push(tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = stop_rx.changed() => break,
                        _ = tokio::time::sleep(every) => {}
                    }
                    match app
                        .run_fairness_audit("scheduler", &app.default_audit_request())
                        .await
                    {
                        Ok(run) => tracing::info!(
                            run = run.run_id,
                            decisions = run.decisions,
                            findings = run.findings.len(),
                            "scheduled fairness audit"
                        ),
                        Err(e) => tracing::warn!(error = %e, "scheduled fairness audit failed"),
                    }
                }
            }));
        }
        Ok(Background { stop, tasks })
    }

    /// Writes one queued batch plus whatever else is waiting, as one insert.
    async fn write_decisions(
        &self,
        mut rows: Vec<candor_store::DecisionRow>,
        rx: &mut tokio::sync::mpsc::Receiver<Vec<candor_store::DecisionRow>>,
    ) {
        while rows.len() < 2000 {
            match rx.try_recv() {
                Ok(more) => rows.extend(more),
                Err(_) => break,
            }
        }
        if let Err(e) = self.store.insert_decisions(&rows).await {
            tracing::error!(error = %e, rows = rows.len(), "decision log write failed");
        }
    }

    async fn apply_change(&self, change: Change) {
        let result = match change {
            Change::Consent(key) => {
                if let Ok(k) = SubjectKey::parse(&key) {
                    self.invalidate_subject(&k);
                }
                Ok(())
            }
            Change::Purposes => self.reload_purposes().await,
            Change::Keys => self.reload_keys().await,
            Change::Inventory => self.reload_inventory().await,
            Change::Model => self.reload_serving().await,
            Change::Preferences(key) => {
                self.invalidate_preferences(&key);
                Ok(())
            }
            Change::Histories { origin, subjects } => {
                self.histories_changed_elsewhere(origin, &subjects);
                Ok(())
            }
            Change::Retention {
                origin,
                category,
                cutoff,
            } => {
                if origin != self.node_id {
                    self.history_retention(&category, cutoff);
                }
                Ok(())
            }
            Change::Resync => {
                self.clear_consent_cache();
                self.prefs.write().expect("prefs lock").clear();
                let p = self.reload_purposes().await;
                p.and(self.reload_keys().await)
                    .and(self.reload_inventory().await)
                    .and(self.reload_serving().await)
            }
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "applying a change from another node failed; clearing caches");
            self.clear_consent_cache();
        }
    }
}
