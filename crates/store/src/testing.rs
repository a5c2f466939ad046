//! Throwaway databases for tests, on both backends.
//!
//! Every `TestDb` is unique: a fresh SQLite file in its own temporary directory, or a fresh
//! PostgreSQL database named `candor_test_<pid>_<n>_<nanos>`, dropped when the value is dropped,
//! so parallel test runs never see each other's data.
//!
//! PostgreSQL is reached at `CANDOR_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`). Tests fail, not skip, when it is unreachable:
//! the suite promises both stores.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

// Database names here are generated from digits only, never from input.
use sqlx::{AssertSqlSafe, Connection, Executor};

use crate::{Backend, Result, Store};

static COUNTER: AtomicU64 = AtomicU64::new(0);

pub fn admin_postgres_url() -> String {
    std::env::var("CANDOR_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

fn unique_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        nanos
    )
}

fn valid_name(name: &str) -> Result<()> {
    // Names go into DDL unquoted: allow only what a generated name can contain.
    if name.is_empty()
        || name.len() > 60
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(crate::StoreError::UnsupportedUrl(format!(
            "database name `{name}` must be lowercase letters, digits and `_`"
        )));
    }
    Ok(())
}

/// Creates a throwaway PostgreSQL database `name` through the server at `admin_url`, and
/// returns its URL. For tests and benchmarks.
pub async fn create_postgres_database(admin_url: &str, name: &str) -> Result<String> {
    valid_name(name)?;
    let mut conn = sqlx::PgConnection::connect(admin_url).await?;
    conn.execute(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await?;
    conn.close().await.ok();
    let base = admin_url.rsplit_once('/').map_or(admin_url, |(b, _)| b);
    Ok(format!("{base}/{name}"))
}

/// Drops a database made by [`create_postgres_database`], disconnecting its users.
pub async fn drop_postgres_database(admin_url: &str, name: &str) -> Result<()> {
    valid_name(name)?;
    let mut conn = sqlx::PgConnection::connect(admin_url).await?;
    conn.execute(AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .await?;
    conn.close().await.ok();
    Ok(())
}

/// A directory under the system temp dir, unique per process and call, removed on drop: the
/// one temporary-directory helper of every crate's tests and of the benchmarks.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("candor-{label}-{}", unique_suffix()));
        std::fs::create_dir_all(&dir).expect("creating a temporary directory");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A database that exists for the lifetime of this value.
pub struct TestDb {
    pub url: String,
    backend: Backend,
    dir: Option<TempDir>,
    pg_name: Option<String>,
}

impl TestDb {
    pub async fn new(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => {
                let dir = TempDir::new("test");
                let url = format!(
                    "sqlite://{}?mode=rwc",
                    dir.path().join("candor.db").display()
                );
                TestDb {
                    url,
                    backend,
                    dir: Some(dir),
                    pg_name: None,
                }
            }
            Backend::Postgres => {
                let name = format!("candor_test_{}", unique_suffix());
                let admin = admin_postgres_url();
                let url = create_postgres_database(&admin, &name)
                    .await
                    .unwrap_or_else(|e| panic!("PostgreSQL is required for tests at {admin}: {e}"));
                TestDb {
                    url,
                    backend,
                    dir: None,
                    pg_name: Some(name),
                }
            }
        }
    }

    pub async fn store(&self) -> Result<Store> {
        Store::connect(&self.url).await
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The SQLite database file, for tests that inspect or tamper with it.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.path().join("candor.db"))
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(name) = self.pg_name.take() {
            // Drop may run inside a runtime; a plain thread with its own runtime avoids nesting.
            let admin = admin_postgres_url();
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .ok()?;
                rt.block_on(drop_postgres_database(&admin, &name)).ok()
            })
            .join();
        }
    }
}

/// Runs the same async test body against SQLite and PostgreSQL:
/// `both_stores!(name, |db: TestDb| async move { ... });` makes `name::sqlite` and
/// `name::postgres`.
#[macro_export]
macro_rules! both_stores {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let db = $crate::testing::TestDb::new($crate::Backend::Sqlite).await;
                ($body)(db).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let db = $crate::testing::TestDb::new($crate::Backend::Postgres).await;
                ($body)(db).await;
            }
        }
    };
}

impl Store {
    /// Subject-index entries naming `subject` (on SQLite, those the writer has added so far; on
    /// PostgreSQL, the subject's events), so tests can check that none outlive their events.
    pub async fn subject_index_entries(&self, subject: &str) -> Result<i64> {
        use sqlx::Row;
        Ok(
            sqlx::query("SELECT COUNT(*) AS n FROM event_subjects WHERE subject_key = $1")
                .bind(subject)
                .fetch_one(&self.pool)
                .await?
                .try_get("n")?,
        )
    }
}

/// Runs raw SQL on the database at `url` (either backend) over its own connection, as someone
/// with write access to the database files could: for tests that tamper with stored rows and
/// check that Candor notices.
pub async fn execute_raw(url: &str, sql: &str) -> Result<()> {
    use sqlx::Connection;
    match Backend::from_url(url)? {
        Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(url).await?;
            sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
                .execute(&mut c)
                .await?;
            c.close().await?;
        }
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(url).await?;
            sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
                .execute(&mut c)
                .await?;
            c.close().await?;
        }
    }
    Ok(())
}
