//! Candor's application layer: the use cases the HTTP API and the CLI share.
//!
//! Invariants:
//! - Handlers and commands call these functions; none of them talks to the store directly for
//!   anything that changes state, so every change is validated, audited and propagated here.
//! - Every read of consent goes through [`App::consent_status`] (the in-memory cache backed by the
//!   append-only log). A local change is applied to the cache before its call returns, so the
//!   next request on this node sees it; other nodes learn of it through the store's change feed.
//! - No external id, secret or contact value is logged; logs carry subject keys at most.
#![forbid(unsafe_code)]

mod audit;
mod cache;
mod clock;
pub mod config;
mod consent;
pub mod demo;
mod error;
pub mod fairness;
mod history;
pub mod ingest;
mod inventory;
mod keyring;
mod keys;
pub mod profiles;
mod purposes;
pub mod recommend;
pub mod retention;
mod runtime;
mod webhooks;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use candor_domain::{Pseudonymizer, Purpose, PurposeId};
use candor_store::Store;

pub use audit::AuditVerification;
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{Config, ConfigError};
pub use consent::{ConsentOutcome, ConsentRequest, ImportedDecision, PurposeConsent};
pub use error::AppError;
pub use inventory::InventoryView;
pub use keys::{CreatedKey, KeyInfo};
pub use runtime::Background;
pub use webhooks::CreatedWebhook;

pub type Result<T, E = AppError> = std::result::Result<T, E>;

/// Unwrapped subject data keys kept in memory (about 100 bytes each).
const DATA_KEYS_IN_MEMORY: usize = 200_000;

/// The running application: configuration, store, caches. Shared behind an `Arc`.
pub struct App {
    pub config: Config,
    pub store: Store,
    pseudonymizer: Pseudonymizer,
    clock: Arc<dyn Clock>,
    purposes: RwLock<Arc<BTreeMap<PurposeId, Purpose>>>,
    keys: RwLock<Arc<HashMap<String, KeyInfo>>>,
    consents: cache::ConsentCache,
    histories: history::HistoryCache,
    /// Tells this node's own change announcements apart from other nodes' (random per start).
    node_id: u64,
    http: reqwest::Client,
    inventory: RwLock<Arc<candor_domain::inventory::Inventory>>,
    master_key: candor_domain::envelope::SecretKey,
    data_keys: keyring::KeyRing,
    serving: RwLock<Arc<recommend::Serving>>,
    prefs: RwLock<HashMap<String, Arc<candor_domain::preferences::Preferences>>>,
    /// Tracking-plan counters not yet flushed to the store (flushed every second).
    pending_counts: std::sync::Mutex<std::collections::BTreeMap<(String, String), i64>>,
    decisions_tx:
        std::sync::Mutex<Option<tokio::sync::mpsc::Sender<Vec<candor_store::DecisionRow>>>>,
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
            consents: cache::ConsentCache::new(config.consent.cache_entries),
            histories: history::HistoryCache::new(
                config.recommend.history_cache_events,
                config.recommend.history_limit as usize,
                history_ttl,
            ),
            node_id: rand::random(),
            config,
            store,
            pseudonymizer,
            clock,
            purposes: RwLock::default(),
            keys: RwLock::default(),
            http,
            inventory: RwLock::default(),
            master_key,
            data_keys: keyring::KeyRing::new(DATA_KEYS_IN_MEMORY),
            serving: RwLock::new(Arc::new(recommend::Serving::empty())),
            prefs: RwLock::default(),
            decisions_tx: std::sync::Mutex::default(),
            pending_counts: std::sync::Mutex::default(),
        };
        app.reload_purposes().await?;
        app.reload_keys().await?;
        app.install_configured_inventory().await?;
        app.reload_inventory().await?;
        app.reload_serving().await?;
        Ok(Arc::new(app))
    }

    pub fn now(&self) -> candor_domain::Micros {
        self.clock.now()
    }

    /// Pseudonymizes an external id into the key under which the subject's data is stored.
    pub fn subject_key(&self, external_id: &str) -> Result<candor_domain::SubjectKey> {
        let id = candor_domain::ExternalId::parse(external_id)?;
        Ok(self.pseudonymizer.subject_key(&id))
    }

    /// Readiness: the store answers.
    pub async fn ready(&self) -> Result<()> {
        Ok(self.store.ping().await?)
    }
}
