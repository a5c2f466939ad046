//! Candor's application layer: the use cases the HTTP API, the web pages and the CLI share,
//! arranged in rooms, one per capability.
//!
//! `App` is the composition root: it opens the store, builds each room's state, and hands out
//! nothing but use cases. Each room (a folder) owns its in-memory state: its fields are private
//! to the room, so another room reaches them only through the room's functions.
//!
//! | room | owns |
//! |---|---|
//! | [`consent`] | purposes, consent records, the consent cache, [`Permit`]s |
//! | [`access`] | API keys and scopes, signed preference-center links |
//! | [`ingest`] | the ingest gate, the tracking plan and its counters, data keys, retention |
//! | [`personalization`] | serving, training, histories in memory, preferences, profiles, segments |
//! | [`governance`] | fairness runs, incidents, audit-log verification, the human review queue |
//! | [`journeys`] | journey definitions, positions, the journey job and send-time boundaries |
//! | [`delivery`] | webhooks, the message outbox's delivery, double opt-in for email |
//! | [`audiences`] | consented advertising audiences exported from segments, their removal deltas |
//! | [`rights`] | export, erasure with signed receipts, rectification, restriction, requests |
//! | [`feedback`] | feedback on answers, survey answers, KPIs from incremental counts, anomaly alerts and their scale-backs |
//! | [`analytics`] | differentially private queries, the budget ledger, the transparency report |
//!
//! Invariants:
//! - Handlers and commands call these functions; nothing outside this crate reaches the store,
//!   so every change is validated, audited and propagated here.
//! - Behavioural data is read only with a [`Permit`] from the consent room.
//! - Background work runs as jobs of one [`scheduler`](Background), stopped cleanly on shutdown.
//! - No external id, secret or contact value is logged; logs carry subject keys at most.
//!
//! [`Permit`]: candor_domain::Permit
#![forbid(unsafe_code)]

pub mod access;
pub mod analytics;
pub mod audiences;
mod changes;
mod clock;
pub mod config;
pub mod consent;
pub mod delivery;
pub mod demo;
mod error;
pub mod feedback;
pub mod governance;
pub mod ingest;
pub mod journeys;
pub mod personalization;
pub mod rights;
mod scheduler;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

use std::sync::Arc;

use candor_domain::Pseudonymizer;
use candor_store::Store;

pub use access::{CreatedKey, KeyInfo};
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{Config, ConfigError};
pub use consent::{
    ConsentImportReport, ConsentImportRow, ConsentOutcome, ConsentRequest, ImportedDecision,
    PurposeConsent,
};
pub use delivery::CreatedWebhook;
pub use error::{AppError, RowError};
pub use governance::audit_log::AuditVerification;
pub use ingest::InventoryView;
pub use journeys::{JourneyInfo, JourneyRun};
pub use scheduler::Background;

pub type Result<T, E = AppError> = std::result::Result<T, E>;

/// A fresh id with a kind prefix (`era_3f2a...`, `evt_...`, `rev_...`): 96 random bits.
pub(crate) fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", hex::encode(rand::random::<[u8; 12]>()))
}

/// The running application. Shared behind an `Arc`.
pub struct App {
    config: Config,
    store: Store,
    pseudonymizer: Pseudonymizer,
    clock: Arc<dyn Clock>,
    /// Tells this node's own change announcements apart from other nodes' (random per start).
    node_id: u64,
    consent: consent::ConsentRoom,
    access: access::AccessRoom,
    ingest: ingest::IngestRoom,
    personalization: personalization::PersonalizationRoom,
    delivery: delivery::DeliveryRoom,
    journeys: journeys::JourneysRoom,
    rights: rights::RightsRoom,
    feedback: feedback::FeedbackRoom,
}

impl App {
    /// Opens the store named by the configuration and warms the caches.
    pub async fn open(config: Config) -> Result<Arc<App>> {
        Self::open_with_clock(config, Arc::new(SystemClock)).await
    }

    pub async fn open_with_clock(config: Config, clock: Arc<dyn Clock>) -> Result<Arc<App>> {
        let url = config.database_url()?;
        let secret = config.pseudonymization_secret()?;
        let pseudonymizer = Pseudonymizer::new(&secret)?;
        let master_key = config.master_key()?;
        let store = Store::connect(&url).await?;
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_millis(config.webhooks.timeout_ms))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| AppError::Internal(format!("http client: {e}")))?;
        // On PostgreSQL another node's announcement can be lost: histories expire (history.rs).
        let history_ttl = (store.backend() == candor_store::Backend::Postgres)
            .then(|| std::time::Duration::from_millis(config.recommend.history_cache_ttl_ms));
        let app = App {
            consent: consent::ConsentRoom::new(config.consent.cache_entries),
            access: access::AccessRoom::new(&master_key, config.pages.link_key_id),
            rights: rights::RightsRoom::new(&master_key),
            feedback: feedback::FeedbackRoom::default(),
            ingest: ingest::IngestRoom::new(master_key),
            personalization: personalization::PersonalizationRoom::new(&config, history_ttl),
            delivery: delivery::DeliveryRoom::new(http),
            journeys: journeys::JourneysRoom::new(),
            node_id: rand::random(),
            config,
            store,
            pseudonymizer,
            clock,
        };
        app.reload_purposes().await?;
        app.reload_keys().await?;
        app.reload_webhooks().await?;
        app.install_configured_inventory().await?;
        app.reload_inventory().await?;
        app.reload_serving().await?;
        app.reload_alerts().await?;
        app.install_configured_journeys().await?;
        app.reload_journeys().await?;
        app.check_exposure_groups()?;
        Ok(Arc::new(app))
    }

    /// The validated configuration this node runs with (read-only).
    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn now(&self) -> candor_domain::Micros {
        self.clock.now()
    }

    /// Pseudonymizes an external id into the key under which the subject's data is stored.
    pub fn subject_key(&self, external_id: &str) -> Result<candor_domain::SubjectKey> {
        let id = candor_domain::ExternalId::parse(external_id)?;
        Ok(self.pseudonymizer.subject_key(&id))
    }

    /// Which store this node runs on: `sqlite` or `postgres`.
    pub fn store_backend(&self) -> &'static str {
        self.store.backend().name()
    }

    /// Readiness: the store answers.
    pub async fn ready(&self) -> Result<()> {
        Ok(self.store.ping().await?)
    }

    /// Closes the store: waits for queued writes, then closes every connection. Call after
    /// the background jobs have stopped.
    pub async fn close(&self) {
        self.store.close().await;
    }
}
