//! Other nodes' changes, heard through the store's change feed (PostgreSQL `LISTEN/NOTIFY`),
//! handed to the room that owns what changed.
//!
//! Invariant: a change that cannot be applied, or a feed that reports it may have missed some
//! (`Change::Resync`), clears the caches it could have made stale, so a node never serves from
//! memory it cannot vouch for.

use std::sync::Arc;

use candor_domain::SubjectKey;
use candor_store::Change;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::{App, Result};

impl App {
    /// Subscribes to the change feed and applies what it hears until `stop`.
    pub(crate) async fn listen_to_changes(
        self: &Arc<Self>,
        mut stop: watch::Receiver<bool>,
    ) -> Result<JoinHandle<()>> {
        let mut changes = self.store.listen_changes().await?;
        let app = self.clone();
        Ok(tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.changed() => break,
                    change = changes.recv() => match change {
                        Some(c) => app.apply_change(c).await,
                        None => break,
                    },
                }
            }
        }))
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
            Change::Webhooks => self.reload_webhooks().await,
            Change::Journeys => self.reload_journeys().await,
            Change::Inventory => self.reload_inventory().await,
            Change::Model => self.reload_serving().await,
            Change::Alerts => self.reload_alerts().await,
            Change::Preferences(key) => {
                self.invalidate_preferences(&key);
                Ok(())
            }
            Change::Erased(key) => {
                if let Ok(k) = SubjectKey::parse(&key) {
                    self.forget_subject(&k);
                }
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
                self.clear_preferences();
                let p = self.reload_purposes().await;
                p.and(self.reload_keys().await)
                    .and(self.reload_webhooks().await)
                    .and(self.reload_inventory().await)
                    .and(self.reload_serving().await)
                    .and(self.reload_alerts().await)
            }
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "applying a change from another node failed; clearing caches");
            self.clear_consent_cache();
        }
    }
}
