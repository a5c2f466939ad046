//! Configuration: a TOML file, then `CANDOR_*` environment overrides, then validation.
//!
//! Invariant: a `Config` that exists has passed `validate`; secrets never appear in its
//! `Debug` output or in `redacted()`.
//!
//! Environment mapping: `CANDOR_` + the key path in upper case, with `__` between table and key:
//! `CANDOR_DATABASE_URL` sets `database_url`, `CANDOR_SERVER__BIND` sets `server.bind`. Values are
//! read as TOML literals when they parse as one (numbers, booleans), else as strings.

/// The model family serving level `full` (`recommend.model`).
pub use candor_recommend::select::ModelChoice;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Environment variables that start with `CANDOR_` but are not configuration keys.
const NOT_CONFIG: &[&str] = &["CANDOR_CONFIG", "CANDOR_SHARED_DATA"];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("environment variable {var}: {message}")]
    Env { var: String, message: String },
    #[error("invalid configuration `{key}`: {message}")]
    Invalid { key: &'static str, message: String },
    #[error("cannot prepare {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A secret string: usable, but never printed.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}
impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the embedded database and generated key files live.
    pub data_dir: PathBuf,
    /// `sqlite://PATH` or `postgres://...`; empty means the embedded SQLite file in `data_dir`.
    pub database_url: String,
    pub server: ServerConfig,
    pub privacy: PrivacyConfig,
    pub consent: ConsentConfig,
    pub webhooks: WebhookConfig,
    pub fairness: FairnessConfig,
    pub ingest: IngestConfig,
    pub recommend: RecommendConfig,
    pub rights: RightsConfig,
    /// The preference center: signed links and page limits.
    pub pages: PagesConfig,
    pub catalog: CatalogConfig,
    /// Browser tracking: which web origins may send events from a page.
    pub browser: BrowserConfig,
    pub analytics: AnalyticsConfig,
    /// The human review queue: which actions wait for a reviewer.
    pub review: ReviewConfig,
    /// Anomaly alerts on feedback rates.
    pub alerts: AlertsConfig,
    /// Journeys: lifecycle messages and the boundaries they meet at send time.
    pub journeys: JourneysConfig,
    /// Advertising audiences exported from segments.
    pub audiences: AudiencesConfig,
    /// Retention rules per data category.
    pub retention: Vec<RetentionRule>,
    /// A tracking plan to install at start-up (the admin API can replace it later).
    pub inventory: Option<candor_domain::inventory::Inventory>,
    pub log: LogConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Hours after which data of visitors never identified (anonymousId only) is deleted.
    pub anonymous_retention_hours: u32,
    /// Seconds between retention passes on this node; 0 turns the background pass off.
    pub retention_interval_secs: u64,
    /// Days a `messageId` is remembered for deduplication; a message re-sent later than this is
    /// stored again. Retention passes forget older ids, so the dedup index stays bounded.
    pub dedup_window_days: u32,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            anonymous_retention_hours: 24,
            retention_interval_secs: 3600,
            dedup_window_days: 7,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecommendConfig {
    /// The purpose whose consent personalization needs.
    pub purpose: String,
    /// Surfaces clients may ask for (a homepage slot, a product page, an email...).
    pub surfaces: Vec<String>,
    pub default_k: usize,
    pub max_k: usize,
    /// Behavioral events of a subject read per request (newest first).
    pub history_limit: i64,
    /// Serving keeps subjects' newest `history_limit` events in memory, at most this many events
    /// in all (each subject counts 4 more for bookkeeping; about 16 bytes per event); 0 reads
    /// every history from the store.
    pub history_cache_events: usize,
    /// PostgreSQL only: a subject's history in memory is reloaded after this many milliseconds.
    /// Other nodes announce the subjects their ingestion and retention changed right after they
    /// commit; this bounds how long a change goes unseen when such an announcement is lost (a
    /// node stopped between its commit and its announcement). The embedded store has one node.
    pub history_cache_ttl_ms: u64,
    /// MMR trade-off: 1 = relevance only, 0 = diversity only.
    pub mmr_lambda: f32,
    /// At most this many items of one category per response.
    pub category_cap: usize,
    /// Reserve one slot for a category not otherwise shown.
    pub exploration_slot: bool,
    /// Personalized answers whose best confidence is below this fall back to non-personal ones.
    pub low_confidence: f32,
    /// Seconds between scheduled trainings on this node; 0 = only `candor train`/the API.
    pub train_interval_secs: u64,
    /// The model family serving level `full`: `auto` (the best of item-kNN, ALS and their
    /// blends on a validation slice of the training data), or `item-knn`, `als`, `blend`.
    pub model: ModelChoice,
    /// Fairness of exposure at serving time.
    pub exposure: ExposureConfig,
}

/// Item groups and the minimum share of every answer each must get (the exposure re-ranker
/// reserves the slots when the candidate pool has such items).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExposureConfig {
    /// The catalog attribute that names an item's group: `brand`, `category`, or a key of the
    /// item's free `attributes` (e.g. `seller_size`, `provenance`). Empty: no groups.
    pub group_attribute: String,
    /// Group value -> minimum share of each answer's items, in (0, 1]; the shares sum to at
    /// most 1. Items of other values are unconstrained.
    pub min_share: std::collections::BTreeMap<String, f64>,
}

impl ExposureConfig {
    /// The group value of an item under `group_attribute`, if it has one.
    pub fn group_of<'a>(
        &self,
        brand: Option<&'a str>,
        category: &'a str,
        attributes: &'a str,
    ) -> Option<String> {
        match self.group_attribute.as_str() {
            "" => None,
            "brand" => brand.map(str::to_owned),
            "category" => Some(category.to_owned()),
            key => match serde_json::from_str::<serde_json::Value>(attributes)
                .ok()?
                .get(key)?
            {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Null => None,
                other => Some(other.to_string()),
            },
        }
    }
}

impl Default for RecommendConfig {
    fn default() -> Self {
        RecommendConfig {
            purpose: "personalization".into(),
            surfaces: vec![
                "home".into(),
                "product".into(),
                "cart".into(),
                "email".into(),
            ],
            default_k: 10,
            max_k: 50,
            history_limit: 200,
            history_cache_events: 16_000_000,
            history_cache_ttl_ms: 30_000,
            mmr_lambda: 0.7,
            category_cap: 3,
            exploration_slot: true,
            low_confidence: 0.0,
            train_interval_secs: 0,
            model: ModelChoice::Auto,
            exposure: ExposureConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CatalogConfig {
    /// Deepest category path an item may have (`Home > Kitchen > Knives` is 3).
    pub max_category_depth: usize,
    /// Currency of items that name none (ISO 4217).
    pub default_currency: String,
    /// Sensitive categories: items under one of their paths, or flagged with their kind, are
    /// never recommended unless the person opted into that category.
    pub sensitive: Vec<SensitiveCategory>,
}

/// One kind of sensitive category and the category paths that belong to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SensitiveCategory {
    /// A short name such as `health`; items may be flagged with it.
    pub kind: String,
    /// Category path prefixes (`Health > Pharmacy`), compared segment by segment, ignoring case.
    #[serde(default)]
    pub paths: Vec<String>,
}

impl Default for CatalogConfig {
    fn default() -> Self {
        let kind = |k: &str| SensitiveCategory {
            kind: k.into(),
            paths: Vec::new(),
        };
        CatalogConfig {
            max_category_depth: 6,
            default_currency: "EUR".into(),
            sensitive: [
                "health",
                "sexual_orientation",
                "religion",
                "politics",
                "financial_hardship",
                "pregnancy_and_baby",
            ]
            .into_iter()
            .map(kind)
            .collect(),
        }
    }
}

/// Private analytics: whose consent a query reads under, and each analyst key's budget.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnalyticsConfig {
    /// The aggregate-use purpose whose permit every query reads with.
    pub purpose: String,
    /// ε each analyst key may spend per calendar month (UTC).
    pub budget_epsilon: f64,
    /// δ each analyst key may spend per month (Gaussian and partition selection).
    pub budget_delta: f64,
    /// Whether each data set (events, decisions) has its own budget; otherwise one budget
    /// covers both.
    pub budget_per_dataset: bool,
    /// Small-cell threshold on noisy counts (the CMS rule: 11).
    pub min_cell: f64,
}

impl Default for AnalyticsConfig {
    fn default() -> Self {
        AnalyticsConfig {
            purpose: "analytics".into(),
            budget_epsilon: 2.0,
            budget_delta: 1e-5,
            budget_per_dataset: false,
            min_cell: candor_analytics::DEFAULT_K,
        }
    }
}

/// Anomaly alerts: how often the rules (set through `PUT /v1/admin/alerts/rules`) are evaluated.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// Seconds between evaluations, once per cluster; 0 = only `POST /v1/admin/alerts/evaluate`.
    pub evaluate_secs: u64,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig { evaluate_secs: 300 }
    }
}

/// What each kind of held action does: `apply` (at once, recorded), `review` (waits for a
/// reviewer; the default of every kind) or `block`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReviewConfig {
    /// Serving a newly trained or re-activated model version.
    pub model_activation: candor_domain::review::RuleMode,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BrowserConfig {
    /// Origins (`https://shop.example`) whose pages may call the ingestion routes; every other
    /// origin gets no CORS headers, so a browser will not send its events.
    pub allowed_origins: Vec<String>,
    /// How browsers reach this API (`https://candor.shop.example`), named in the settings
    /// document analytics.js loads; default: the Host the request came to.
    pub public_url: Option<String>,
}

/// Delete or anonymize data of one category after a number of days.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionRule {
    pub category: String,
    pub delete_after_days: Option<u32>,
    pub anonymize_after_days: Option<u32>,
}

/// The preference center people reach through signed links.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PagesConfig {
    /// The address people reach this server at, e.g. `https://privacy.example.com`; links are
    /// made under it. Empty: `http://` and `server.bind`.
    pub public_url: String,
    /// The link key's id. Raising it revokes every preference-center link issued before.
    pub link_key_id: u32,
    /// How long a link is valid when the issuer gives no time, in hours.
    pub link_ttl_hours: u32,
    /// Largest accepted page form, in bytes (a larger one gets a 413 page).
    pub max_form_bytes: usize,
}

impl Default for PagesConfig {
    fn default() -> Self {
        PagesConfig {
            public_url: String::new(),
            link_key_id: 1,
            link_ttl_hours: 7 * 24,
            max_form_bytes: 16 * 1024,
        }
    }
}

/// Subject rights: the law requests are counted under by default, and what erasure keeps.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RightsConfig {
    /// `gdpr` or `ccpa`: the calendar of requests that do not name their jurisdiction.
    pub jurisdiction: String,
    /// Keep an erased subject's pseudonymous consent records as proof of consent.
    pub keep_consent_log: bool,
    /// Keep events stored under purposes whose legal basis is a legal obligation.
    pub keep_legal_obligation_events: bool,
    /// Seconds between checks for overdue requests (once per cluster); 0 turns them off.
    pub overdue_check_secs: u64,
}

impl Default for RightsConfig {
    fn default() -> Self {
        RightsConfig {
            jurisdiction: "gdpr".into(),
            keep_consent_log: true,
            keep_legal_obligation_events: true,
            overdue_check_secs: 3600,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FairnessConfig {
    /// Seconds between scheduled audits of the decision log on this node; 0 turns them off.
    pub audit_interval_secs: u64,
    /// Protected attributes to slice by (their intersection is audited too).
    pub attributes: Vec<String>,
    /// How far back scheduled audits look.
    pub lookback_days: u32,
}

impl Default for FairnessConfig {
    fn default() -> Self {
        FairnessConfig {
            audit_interval_secs: 0,
            attributes: vec!["sex".into(), "age_band".into()],
            lookback_days: 90,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub bind: String,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    pub request_timeout_secs: u64,
    /// How long in-flight requests may finish after a shutdown signal.
    pub shutdown_grace_secs: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrivacyConfig {
    /// Key for pseudonymizing external ids (at least 32 characters). Required with PostgreSQL so
    /// every node derives the same subject keys; generated into `data_dir` for SQLite.
    pub pseudonymization_key: Option<Secret>,
    pub pseudonymization_key_file: Option<PathBuf>,
    /// Master key (64 hex characters) that wraps every subject's data key. Required with
    /// PostgreSQL; generated into `data_dir` for SQLite.
    pub master_key: Option<Secret>,
    pub master_key_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsentConfig {
    /// Subjects whose consent state is kept in memory.
    pub cache_entries: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    pub enabled: bool,
    pub poll_interval_ms: u64,
    pub timeout_ms: u64,
    pub max_attempts: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JourneysConfig {
    /// Run the journey job on this node (it runs on one node of the cluster at a time).
    pub enabled: bool,
    /// How often due positions are advanced.
    pub tick_ms: u64,
    /// The consent purpose each channel's messages need; a channel without one cannot be used.
    pub channel_purposes: std::collections::BTreeMap<String, String>,
    /// Messages per person per local calendar day on one channel (0 = no cap).
    pub cap_per_channel: u32,
    /// Messages per person per local calendar day over every channel (0 = no cap).
    pub cap_all_channels: u32,
    /// Local time (`HH:MM`) quiet hours start; empty turns quiet hours off.
    pub quiet_hours_start: String,
    /// Local time (`HH:MM`) quiet hours end.
    pub quiet_hours_end: String,
    /// Days before and after a quiet period a themed message of its name stays away.
    pub sensitive_date_window_days: u32,
    /// The IANA time zone of people who set none.
    pub default_time_zone: String,
    /// A TOML or JSON file of journeys (`[[journey]]` / `{"journeys": [...]}`) installed at
    /// start-up.
    pub file: Option<PathBuf>,
    /// How long a double opt-in token confirms.
    pub confirmation_ttl_hours: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AudiencesConfig {
    /// The sale/sharing purpose a person must have granted to be in an exported audience.
    pub purpose: String,
}

impl Default for AudiencesConfig {
    fn default() -> Self {
        AudiencesConfig {
            purpose: "ads_sharing".into(),
        }
    }
}

impl Default for JourneysConfig {
    fn default() -> Self {
        JourneysConfig {
            enabled: true,
            tick_ms: 1000,
            channel_purposes: [
                ("email", "email_marketing"),
                ("sms", "sms_marketing"),
                ("push", "push_notifications"),
            ]
            .into_iter()
            .map(|(c, p)| (c.to_owned(), p.to_owned()))
            .collect(),
            cap_per_channel: 1,
            cap_all_channels: 2,
            quiet_hours_start: "21:00".into(),
            quiet_hours_end: "08:00".into(),
            sensitive_date_window_days: 3,
            default_time_zone: "UTC".into(),
            file: None,
            confirmation_ttl_hours: 72,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Pretty,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A tracing filter, e.g. `info` or `candor=debug,sqlx=warn`.
    pub level: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("candor-data"),
            database_url: String::new(),
            server: ServerConfig::default(),
            privacy: PrivacyConfig::default(),
            consent: ConsentConfig::default(),
            webhooks: WebhookConfig::default(),
            fairness: FairnessConfig::default(),
            ingest: IngestConfig::default(),
            recommend: RecommendConfig::default(),
            rights: RightsConfig::default(),
            pages: PagesConfig::default(),
            catalog: CatalogConfig::default(),
            browser: BrowserConfig::default(),
            analytics: AnalyticsConfig::default(),
            review: ReviewConfig::default(),
            alerts: AlertsConfig::default(),
            journeys: JourneysConfig::default(),
            audiences: AudiencesConfig::default(),
            retention: vec![
                RetentionRule {
                    category: "browsing".into(),
                    delete_after_days: Some(90),
                    anonymize_after_days: None,
                },
                RetentionRule {
                    category: "purchase".into(),
                    delete_after_days: None,
                    anonymize_after_days: Some(183),
                },
            ],
            inventory: None,
            log: LogConfig::default(),
        }
    }
}
impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: "127.0.0.1:8080".into(),
            max_body_bytes: 1024 * 1024,
            request_timeout_secs: 30,
            shutdown_grace_secs: 10,
        }
    }
}
impl Default for ConsentConfig {
    fn default() -> Self {
        ConsentConfig {
            cache_entries: 1_000_000,
        }
    }
}
impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            enabled: true,
            poll_interval_ms: 250,
            timeout_ms: 5000,
            max_attempts: candor_domain::webhook::MAX_ATTEMPTS,
        }
    }
}
impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Pretty,
            level: "info".into(),
        }
    }
}

impl Config {
    /// Loads `path` (if given) and applies the process environment.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        Self::load_with_env(path, std::env::vars())
    }

    /// Loads with an explicit environment, for tests.
    pub fn load_with_env(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut table = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.to_owned(),
                    source,
                })?;
                text.parse::<toml::Table>()
                    .map_err(|e| ConfigError::Parse {
                        path: p.to_owned(),
                        message: e.to_string(),
                    })?
            }
            None => toml::Table::new(),
        };
        let mut vars: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| {
                k.starts_with("CANDOR_")
                    && !NOT_CONFIG.contains(&k.as_str())
                    && !k.starts_with("CANDOR_TEST_")
            })
            .collect();
        vars.sort();
        for (var, raw) in vars {
            apply_env(&mut table, &var, &raw)?;
        }
        let config: Config =
            toml::Value::Table(table)
                .try_into()
                .map_err(|e: toml::de::Error| match path {
                    Some(p) => ConfigError::Parse {
                        path: p.to_owned(),
                        message: e.to_string(),
                    },
                    None => ConfigError::Env {
                        var: "CANDOR_*".into(),
                        message: e.to_string(),
                    },
                })?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, message: String| Err(ConfigError::Invalid { key, message });
        let exposure = &self.recommend.exposure;
        if let Some((group, share)) = exposure
            .min_share
            .iter()
            .find(|(_, s)| !(**s > 0.0 && **s <= 1.0))
        {
            return invalid(
                "recommend.exposure.min_share",
                format!("the share of `{group}` is {share}; a share is in (0, 1]"),
            );
        }
        let total: f64 = exposure.min_share.values().sum();
        if total > 1.0 + 1e-9 {
            return invalid(
                "recommend.exposure.min_share",
                format!(
                    "the shares sum to {total}, more than a whole answer; they cannot all be met"
                ),
            );
        }
        if exposure.group_attribute.is_empty() != exposure.min_share.is_empty() {
            return invalid(
                "recommend.exposure.group_attribute",
                "set both group_attribute and min_share, or neither".into(),
            );
        }
        if self.server.bind.parse::<SocketAddr>().is_err() {
            return invalid(
                "server.bind",
                format!(
                    "`{}` is not an address like 127.0.0.1:8080",
                    self.server.bind
                ),
            );
        }
        if !(1024..=64 * 1024 * 1024).contains(&self.server.max_body_bytes) {
            return invalid(
                "server.max_body_bytes",
                "must be between 1024 and 67108864".into(),
            );
        }
        if let Err(e) = candor_domain::Jurisdiction::parse(&self.rights.jurisdiction) {
            return invalid("rights.jurisdiction", e.to_string());
        }
        if !self.database_url.is_empty() {
            candor_store::Backend::from_url(&self.database_url).map_err(|e| {
                ConfigError::Invalid {
                    key: "database_url",
                    message: e.to_string(),
                }
            })?;
        }
        if let Some(k) = &self.privacy.pseudonymization_key
            && k.expose().len() < 32
        {
            return invalid(
                "privacy.pseudonymization_key",
                "must be at least 32 characters".into(),
            );
        }
        if !(1..=20).contains(&self.catalog.max_category_depth) {
            return invalid(
                "catalog.max_category_depth",
                "must be between 1 and 20".into(),
            );
        }
        if !crate::personalization::catalog::is_currency(&self.catalog.default_currency) {
            return invalid(
                "catalog.default_currency",
                format!(
                    "`{}` is not an ISO 4217 currency code",
                    self.catalog.default_currency
                ),
            );
        }
        let mut kinds = std::collections::BTreeSet::new();
        for s in &self.catalog.sensitive {
            let ok = !s.kind.is_empty()
                && s.kind.len() <= 64
                && s.kind
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !ok || !kinds.insert(s.kind.as_str()) {
                return invalid(
                    "catalog.sensitive",
                    format!(
                        "kind `{}` must be unique, 1-64 characters of a-z, 0-9 and _",
                        s.kind
                    ),
                );
            }
        }
        for o in &self.browser.allowed_origins {
            let ok = (o.starts_with("https://") || o.starts_with("http://"))
                && !o.ends_with('/')
                && o.split("://")
                    .nth(1)
                    .is_some_and(|h| !h.is_empty() && !h.contains('/'));
            if !ok {
                return invalid(
                    "browser.allowed_origins",
                    format!(
                        "`{o}` is not an origin like https://shop.example (scheme, host, optional port, no path)"
                    ),
                );
            }
        }
        if let Some(u) = &self.browser.public_url {
            let ok = (u.starts_with("https://") || u.starts_with("http://"))
                && u.split("://")
                    .nth(1)
                    .is_some_and(|h| !h.is_empty() && !h.contains('/'));
            if !ok {
                return invalid(
                    "browser.public_url",
                    format!("`{u}` is not a URL like https://candor.shop.example (no path)"),
                );
            }
        }
        let a = &self.analytics;
        if !(a.budget_epsilon.is_finite() && a.budget_epsilon > 0.0) {
            return invalid(
                "analytics.budget_epsilon",
                "must be a positive number".into(),
            );
        }
        if !(a.budget_delta.is_finite() && (0.0..1.0).contains(&a.budget_delta)) {
            return invalid("analytics.budget_delta", "must be in [0, 1)".into());
        }
        if !(a.min_cell.is_finite() && a.min_cell >= 0.0) {
            return invalid("analytics.min_cell", "must be a non-negative number".into());
        }
        if self.consent.cache_entries < 1000 {
            return invalid("consent.cache_entries", "must be at least 1000".into());
        }
        if self.webhooks.max_attempts == 0
            || self.webhooks.poll_interval_ms == 0
            || self.webhooks.timeout_ms == 0
        {
            return invalid(
                "webhooks",
                "max_attempts, poll_interval_ms and timeout_ms must be positive".into(),
            );
        }
        let j = &self.journeys;
        if j.tick_ms == 0 || j.confirmation_ttl_hours == 0 {
            return invalid(
                "journeys",
                "tick_ms and confirmation_ttl_hours must be positive".into(),
            );
        }
        if let Some(c) = j
            .channel_purposes
            .keys()
            .find(|c| !candor_domain::journey::CHANNELS.contains(&c.as_str()))
        {
            return invalid(
                "journeys.channel_purposes",
                format!("`{c}` is not a channel (email, sms, push)"),
            );
        }
        if !j.quiet_hours_start.is_empty()
            && [&j.quiet_hours_start, &j.quiet_hours_end]
                .iter()
                .any(|t| candor_domain::journey::QuietHours::minute_of(t).is_none())
        {
            return invalid(
                "journeys.quiet_hours_start",
                "quiet_hours_start and quiet_hours_end must be HH:MM".into(),
            );
        }
        if jiff::tz::TimeZone::get(&j.default_time_zone).is_err() {
            return invalid(
                "journeys.default_time_zone",
                format!("`{}` is not an IANA time zone", j.default_time_zone),
            );
        }
        if let Some(k) = &self.privacy.master_key {
            candor_domain::envelope::SecretKey::from_hex(k.expose()).map_err(|e| {
                ConfigError::Invalid {
                    key: "privacy.master_key",
                    message: e.to_string(),
                }
            })?;
        }
        for (i, r) in self.retention.iter().enumerate() {
            candor_domain::DataCategory::parse(&r.category).map_err(|e| ConfigError::Invalid {
                key: "retention",
                message: format!("rule {i}: {e}"),
            })?;
            match (r.delete_after_days, r.anonymize_after_days) {
                (None, None) | (Some(0), _) | (_, Some(0)) => {
                    return invalid(
                        "retention",
                        format!(
                            "rule {i} ({}) needs a positive delete_after_days or anonymize_after_days",
                            r.category
                        ),
                    );
                }
                _ => {}
            }
        }
        let r = &self.recommend;
        if r.surfaces.is_empty()
            || r.default_k == 0
            || r.max_k == 0
            || r.default_k > r.max_k
            || r.max_k > 200
            || !(0.0..=1.0).contains(&r.mmr_lambda)
            || r.history_limit <= 0
            || r.history_limit > 10_000
        {
            return invalid("recommend", "needs surfaces, 0 < default_k <= max_k <= 200, 0 <= mmr_lambda <= 1, 0 < history_limit <= 10000".into());
        }
        if r.history_cache_events != 0 && r.history_cache_events < 64 * r.history_limit as usize {
            return invalid(
                "recommend.history_cache_events",
                "must be 0 (off) or at least 64 x history_limit".into(),
            );
        }
        candor_domain::PurposeId::parse(&r.purpose).map_err(|e| ConfigError::Invalid {
            key: "recommend.purpose",
            message: e.to_string(),
        })?;
        if self.ingest.anonymous_retention_hours == 0 {
            return invalid(
                "ingest.anonymous_retention_hours",
                "must be positive".into(),
            );
        }
        if self.fairness.attributes.is_empty()
            || self.fairness.attributes.len() > 4
            || self.fairness.lookback_days == 0
        {
            return invalid(
                "fairness",
                "attributes must name 1-4 protected attributes and lookback_days must be positive"
                    .into(),
            );
        }
        Ok(())
    }

    pub fn bind_addr(&self) -> SocketAddr {
        self.server.bind.parse().expect("validated")
    }

    /// The effective database URL: the configured one, or the embedded file under `data_dir`.
    pub fn database_url(&self) -> Result<String, ConfigError> {
        if !self.database_url.is_empty() {
            return Ok(self.database_url.clone());
        }
        std::fs::create_dir_all(&self.data_dir).map_err(|source| ConfigError::Io {
            path: self.data_dir.clone(),
            source,
        })?;
        Ok(format!(
            "sqlite://{}?mode=rwc",
            self.data_dir.join("candor.db").display()
        ))
    }

    fn is_postgres(&self) -> bool {
        self.database_url.starts_with("postgres")
    }

    /// The pseudonymization key: configured, read from a file, or (embedded store only)
    /// generated once into `data_dir/pseudonymization.key` with owner-only permissions.
    pub fn pseudonymization_secret(&self) -> Result<Vec<u8>, ConfigError> {
        let text = self.secret(
            "privacy.pseudonymization_key",
            self.privacy.pseudonymization_key.as_ref(),
            self.privacy.pseudonymization_key_file.as_ref(),
            "pseudonymization.key",
            "so that every node derives the same subject keys",
        )?;
        if text.len() < 32 {
            return Err(ConfigError::Invalid {
                key: "privacy.pseudonymization_key",
                message: "must be at least 32 characters".into(),
            });
        }
        Ok(text.into_bytes())
    }

    /// The master key that wraps subjects' data keys, found the same way.
    pub fn master_key(&self) -> Result<candor_domain::envelope::SecretKey, ConfigError> {
        let text = self.secret(
            "privacy.master_key",
            self.privacy.master_key.as_ref(),
            self.privacy.master_key_file.as_ref(),
            "master.key",
            "so that every node can open what the others encrypted",
        )?;
        candor_domain::envelope::SecretKey::from_hex(&text).map_err(|e| ConfigError::Invalid {
            key: "privacy.master_key",
            message: e.to_string(),
        })
    }

    fn secret(
        &self,
        key: &'static str,
        value: Option<&Secret>,
        file: Option<&PathBuf>,
        generated_name: &str,
        why_shared: &str,
    ) -> Result<String, ConfigError> {
        if let Some(k) = value {
            return Ok(k.expose().to_owned());
        }
        let generated = self.data_dir.join(generated_name);
        let path = match file {
            Some(p) => p.clone(),
            None if self.is_postgres() => {
                return Err(ConfigError::Invalid {
                    key,
                    message: format!("required with PostgreSQL, {why_shared}"),
                });
            }
            None => generated.clone(),
        };
        match std::fs::read_to_string(&path) {
            Ok(s) => Ok(s.trim().to_owned()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && path == generated => {
                let text = hex::encode(rand::random::<[u8; 32]>());
                std::fs::create_dir_all(&self.data_dir).map_err(|source| ConfigError::Io {
                    path: self.data_dir.clone(),
                    source,
                })?;
                write_private(&path, &text).map_err(|source| ConfigError::Io {
                    path: path.clone(),
                    source,
                })?;
                Ok(text)
            }
            Err(source) => Err(ConfigError::Io { path, source }),
        }
    }

    /// The effective configuration as TOML with every secret masked, for `candor config check`.
    pub fn redacted(&self) -> String {
        let mut shown = self.clone();
        if shown.privacy.pseudonymization_key.is_some() {
            shown.privacy.pseudonymization_key = Some(Secret("***".into()));
        }
        if shown.privacy.master_key.is_some() {
            shown.privacy.master_key = Some(Secret("***".into()));
        }
        shown.database_url = candor_store::redact_url(&shown.database_url);
        toml::to_string_pretty(&shown).unwrap_or_else(|e| format!("# cannot render: {e}"))
    }
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)?.write_all(text.as_bytes())
}

fn apply_env(table: &mut toml::Table, var: &str, raw: &str) -> Result<(), ConfigError> {
    let path: Vec<String> = var["CANDOR_".len()..]
        .split("__")
        .map(str::to_lowercase)
        .collect();
    if path.iter().any(String::is_empty) {
        return Err(ConfigError::Env {
            var: var.into(),
            message: "malformed name".into(),
        });
    }
    let value = format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()));
    let (last, tables) = path.split_last().expect("non-empty");
    let mut cur = table;
    for key in tables {
        let entry = cur
            .entry(key.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        cur = entry.as_table_mut().ok_or_else(|| ConfigError::Env {
            var: var.into(),
            message: format!("`{key}` is not a table"),
        })?;
    }
    cur.insert(last.clone(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn file_then_env_then_validation() {
        let dir = crate::testing::TempDir::new("config");
        let file = dir.path().join("candor.toml");
        std::fs::write(
            &file,
            "data_dir = \"/tmp/x\"\n[server]\nbind = \"127.0.0.1:9000\"\n",
        )
        .unwrap();
        let c = Config::load_with_env(
            Some(&file),
            env(&[
                ("CANDOR_SERVER__MAX_BODY_BYTES", "2048"),
                ("CANDOR_CONFIG", "ignored"),
                ("PATH", "/bin"),
            ]),
        )
        .unwrap();
        assert_eq!(c.server.bind, "127.0.0.1:9000");
        assert_eq!(c.server.max_body_bytes, 2048);
        assert_eq!(c.data_dir, PathBuf::from("/tmp/x"));

        std::fs::write(&file, "[server]\nbind = 8080\n").unwrap();
        let e = Config::load_with_env(Some(&file), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("candor.toml") && e.contains("bind"), "{e}");
        std::fs::write(&file, "[server\n").unwrap();
        assert!(matches!(
            Config::load_with_env(Some(&file), env(&[])),
            Err(ConfigError::Parse { .. })
        ));
        assert!(
            Config::load_with_env(None, env(&[("CANDOR_SERVER__BIND", "nowhere")]))
                .unwrap_err()
                .to_string()
                .contains("server.bind")
        );
        assert!(
            Config::load_with_env(None, env(&[("CANDOR_TYPO", "1")]))
                .unwrap_err()
                .to_string()
                .contains("typo")
        );
    }

    #[test]
    fn exposure_floors_that_cannot_be_met_are_refused() {
        let dir = crate::testing::TempDir::new("config-exposure");
        let file = dir.path().join("candor.toml");
        let load = |text: &str| {
            std::fs::write(&file, text).unwrap();
            Config::load_with_env(Some(&file), env(&[]))
        };
        let ok = load(
            "[recommend.exposure]\ngroup_attribute = \"seller_size\"\nmin_share = { small = 0.3, medium = 0.2 }\n",
        )
        .unwrap();
        assert_eq!(ok.recommend.exposure.min_share["small"], 0.3);
        let e = load(
            "[recommend.exposure]\ngroup_attribute = \"brand\"\nmin_share = { a = 0.6, b = 0.5 }\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("recommend.exposure.min_share") && e.contains("sum"),
            "{e}"
        );
        let e = load("[recommend.exposure]\ngroup_attribute = \"brand\"\nmin_share = { a = 0 }\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("share of `a`"), "{e}");
        let e = load("[recommend.exposure]\nmin_share = { a = 0.2 }\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("recommend.exposure.group_attribute"), "{e}");
    }

    #[test]
    fn secrets_are_masked_and_required_for_postgres() {
        let c = Config::load_with_env(
            None,
            env(&[
                (
                    "CANDOR_PRIVACY__PSEUDONYMIZATION_KEY",
                    "k".repeat(40).as_str(),
                ),
                ("CANDOR_DATABASE_URL", "postgres://u:pw@h/db"),
            ]),
        )
        .unwrap();
        let shown = c.redacted();
        assert!(!shown.contains("kkkk") && !shown.contains("pw@"), "{shown}");
        assert!(!format!("{c:?}").contains("kkkk"));
        let no_key =
            Config::load_with_env(None, env(&[("CANDOR_DATABASE_URL", "postgres://h/db")]))
                .unwrap();
        assert!(
            no_key
                .pseudonymization_secret()
                .unwrap_err()
                .to_string()
                .contains("PostgreSQL")
        );
    }
}
