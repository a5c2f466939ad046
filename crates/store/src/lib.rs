//! Candor's storage adapter: one `Store` over SQLite (embedded default) or PostgreSQL.
//!
//! Invariants:
//! - Only this crate knows SQL, sqlx and rusqlite. Every query is written once with `$n`
//!   placeholders and portable types (TEXT, BIGINT, DOUBLE PRECISION), and runs unchanged on both
//!   backends; only the generated multi-row statements (`ingest::placeholders`) pick each
//!   backend's placeholder. The SQLite ingest writer (`sqlite_writer`) runs the same statement
//!   texts on its own rusqlite connection.
//! - Ingest writes go through one group-commit queue (`writer`), so concurrent requests share
//!   transactions and SQLite's write lock is never fought over by ingest.
//! - Events are read by subject only through `event_subjects`: point reads with
//!   `Store::subject_rows` (the index plus the SQLite writer's unindexed tail), reads over
//!   every subject after `Store::index_events`. A plain `WHERE subject_key = ..` on `events`
//!   would scan the table on SQLite, which has no per-subject index on it.
//! - Every audited change goes through `Store::audited` (or `Store::audited_many` for several
//!   entries): the change, its audit entries and its change notices (`pg_notify`) run in one
//!   transaction the helper opens and commits, so a change without its entry (or an entry
//!   without its change) can never be committed. This is structural: the functions that write
//!   the audit log are private to `audit`, so no other code can append an entry, let alone one
//!   outside its change's transaction.
//! - Consent records are only ever inserted, never updated or deleted.
#![forbid(unsafe_code)]

mod alerts;
mod analytics;
mod audiences;
mod audit;
mod catalog;
mod changes;
mod cluster;
mod consents;
mod fairness;
mod feedback;
mod ingest;
mod journeys;
mod keys;
mod profiles;
mod purposes;
mod reviews;
mod rights;
mod serving;
mod sqlite_writer;
#[cfg(feature = "testing")]
pub mod testing;
mod webhooks;
mod writer;

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor, Row};

pub use alerts::AlertRow;
pub use analytics::{AnalyticsPage, AnalyticsRow, Dataset, StoredReport};
pub use audiences::AudienceMember;
pub use catalog::{CatalogCategory, DecisionRow, EventRow, Item, ServingItem};
pub use changes::Change;
pub use cluster::ClusterLock;
pub use consents::ConsentImport;
pub use fairness::{FairnessDecision, FairnessRunRow, Incident, IncidentInput};
pub use feedback::{AnswerRow, FeedbackRow, KpiCount, SurveyRow, day_of};
pub use ingest::{
    IngestBatch, IngestResult, NewEvent, PreparedMessage, RetentionAction, RetentionCounts,
    RetentionPass, RetentionStep,
};
pub use journeys::{JourneyMessage, JourneyRow, Position, PositionMove};
pub use keys::ApiKeyRow;
pub use profiles::SegmentRow;
pub use reviews::{ReviewDecision, ReviewRow};
pub use rights::{ErasedCounts, Erasure, RightsRequestRow, StoredEvent, SubjectHoldings};
pub use serving::{ItemEvent, ModelVersion, PreferencesUpdate, TrainingPage};
pub use webhooks::{Delivery, DeliveryOutcome, OutboxEvent, Webhook};

/// Notification channel on PostgreSQL that tells other nodes what changed.
pub const CHANGE_CHANNEL: &str = "candor_changes";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{what} `{id}` already exists")]
    Conflict { what: &'static str, id: String },
    #[error("{what} `{id}` not found")]
    NotFound { what: &'static str, id: String },
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("the database is busy: {0}")]
    Busy(String),
    #[error(
        "over budget: {spent_epsilon} of {limit_epsilon} epsilon spent (delta {spent_delta} of {limit_delta}); this query costs {cost_epsilon}"
    )]
    OverBudget {
        spent_epsilon: f64,
        spent_delta: f64,
        cost_epsilon: f64,
        limit_epsilon: f64,
        limit_delta: f64,
    },
    #[error("unsupported database url `{0}`: use sqlite://PATH or postgres://...")]
    UnsupportedUrl(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn from_url(url: &str) -> Result<Self> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(StoreError::UnsupportedUrl(redact_url(url)))
        }
    }
    /// The backend a connection (or transaction) talks to.
    pub(crate) fn of(conn: &sqlx::AnyConnection) -> Self {
        if conn.backend_name() == "SQLite" {
            Backend::Sqlite
        } else {
            Backend::Postgres
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// Hides a password in a connection URL before it is shown anywhere.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// A handle to the database, cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    url: String,
    writes: std::sync::Arc<writer::GroupCommit>,
}

impl Store {
    /// Connects and brings the schema up to date.
    pub async fn connect(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url)?;
        let options = AnyConnectOptions::from_str(url)?;
        let pool = match backend {
            Backend::Sqlite => {
                AnyPoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(Duration::from_secs(10))
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            // WAL lets readers run beside the writer; NORMAL sync is durable
                            // across application crashes, which is what an embedded store needs.
                            // A 32 MiB page cache (default 2 MiB) and memory-mapped reads keep the
                            // randomly keyed indexes (subjects, message ids) off the disk path.
                            // secure_delete zeroes what a delete frees, so an erased subject's
                            // bytes do not linger in free pages or freed cells of the file.
                            conn.execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000; PRAGMA cache_size = -32768; PRAGMA temp_store = MEMORY; PRAGMA secure_delete = ON;")
                                .await?;
                            Ok(())
                        })
                    })
                    .connect_with(options)
                    .await?
            }
            Backend::Postgres => {
                AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options)
                    .await?
            }
        };
        let store = Store {
            pool,
            backend,
            url: url.to_owned(),
            writes: std::sync::Arc::new(writer::GroupCommit::new(backend)),
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<()> {
        match self.backend {
            Backend::Sqlite => {
                sqlx::migrate!("./migrations/sqlite")
                    .run(&self.pool)
                    .await?
            }
            Backend::Postgres => {
                sqlx::migrate!("./migrations/postgres")
                    .run(&self.pool)
                    .await?
            }
        }
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The database file of an SQLite store.
    fn sqlite_path(&self) -> Result<std::path::PathBuf> {
        let options = sqlx::sqlite::SqliteConnectOptions::from_str(&self.url)?;
        Ok(options.get_filename().to_owned())
    }

    /// The connection URL (for the change listener); contains credentials, never log it raw.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Readiness: can a query round-trip to the database right now?
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Flushes the SQLite write-ahead log into the main file (no-op on PostgreSQL).
    pub async fn checkpoint(&self) -> Result<()> {
        if self.backend == Backend::Sqlite {
            // A reader in the middle of a transaction (a background job's query) makes the
            // checkpoint report busy and leave the log in place, old page versions (an erased
            // subject's rows) included: retry until the log is really truncated.
            for attempt in 0..200 {
                let row = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                    .fetch_one(&self.pool)
                    .await?;
                let busy: i64 = row.try_get(0)?;
                if busy == 0 {
                    return Ok(());
                }
                if attempt == 199 {
                    return Err(StoreError::Busy(
                        "the write-ahead log could not be truncated: readers kept it busy for 10 s"
                            .into(),
                    ));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

pub(crate) fn bool_to_db(b: bool) -> i64 {
    i64::from(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_classified_and_redacted() {
        assert_eq!(
            Backend::from_url("sqlite:///tmp/x.db").unwrap(),
            Backend::Sqlite
        );
        assert_eq!(
            Backend::from_url("postgres://u@h/db").unwrap(),
            Backend::Postgres
        );
        assert!(Backend::from_url("mysql://x").is_err());
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
    }
}
