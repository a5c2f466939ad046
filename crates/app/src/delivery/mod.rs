//! The delivery room: telling downstream systems about changes and sending journey messages:
//! consent-change webhooks, message webhooks (the outbox journeys write to), and double opt-in
//! for email.
//!
//! Invariants: a delivery is written to the outbox in the same transaction as the change it
//! announces, signed (`Candor-Signature`), retried with exponential backoff and jitter up to
//! `webhooks.max_attempts`, and every attempt is logged.

mod optin;
mod webhooks;

pub use optin::PendingConfirmation;

pub use webhooks::CreatedWebhook;

/// What the delivery room keeps: one HTTP client, reused across deliveries, and whether any
/// active webhook takes external ids (so a consent write seals one only when someone will
/// receive it).
pub(crate) struct DeliveryRoom {
    http: reqwest::Client,
    wants_external_ids: std::sync::atomic::AtomicBool,
}

impl DeliveryRoom {
    pub(crate) fn new(http: reqwest::Client) -> Self {
        DeliveryRoom {
            http,
            wants_external_ids: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

impl crate::App {
    /// Delivers due webhooks, on one node of the cluster at a time: due deliveries are read, not
    /// claimed, so two nodes delivering at once would send each twice.
    pub(crate) fn webhook_job(&self) -> Option<crate::scheduler::Job> {
        let w = &self.config.webhooks;
        w.enabled.then(|| {
            crate::scheduler::Job::new(
                "webhooks",
                std::time::Duration::from_millis(w.poll_interval_ms),
                crate::scheduler::Reach::OncePerCluster,
                |app| async move {
                    app.deliver_due_webhooks().await?;
                    Ok(String::new())
                },
            )
        })
    }
}
