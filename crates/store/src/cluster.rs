//! Work that must run on one node of a cluster at a time (retention, training, scheduled
//! audits).
//!
//! Invariant: on PostgreSQL a [`ClusterLock`] is a session advisory lock held on a connection
//! taken out of the pool for as long as the lock lives. A lock that is dropped without
//! [`ClusterLock::release`] (a panic, a cancelled task) closes its connection instead of
//! returning it to the pool, so the server frees the lock and no pooled connection can keep it.
//! An embedded SQLite store has exactly one node, so its lock is always granted.

use sqlx::Any;
use sqlx::pool::PoolConnection;

use crate::{Backend, Result, Store};

/// Held while a once-per-cluster job runs.
#[derive(Debug)]
pub struct ClusterLock {
    conn: Option<PoolConnection<Any>>,
    key: i64,
}

/// A stable 64-bit lock key for a job name (FNV-1a: the same on every node and release).
fn lock_key(name: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h as i64
}

impl Store {
    /// Takes the cluster-wide lock named `name` if no other node holds it; `None` if one does.
    pub async fn try_cluster_lock(&self, name: &str) -> Result<Option<ClusterLock>> {
        let key = lock_key(name);
        if self.backend == Backend::Sqlite {
            return Ok(Some(ClusterLock { conn: None, key }));
        }
        let mut conn = self.pool.acquire().await?;
        let (got,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_lock($1)")
            .bind(key)
            .fetch_one(&mut *conn)
            .await?;
        Ok(got.then(|| ClusterLock {
            conn: Some(conn),
            key,
        }))
    }
}

impl ClusterLock {
    /// Gives the lock back and returns its connection to the pool.
    pub async fn release(mut self) -> Result<()> {
        if let Some(mut conn) = self.conn.take() {
            let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(self.key)
                .execute(&mut *conn)
                .await;
            if unlocked.is_err() {
                // Unsure whether the lock is still held: close the session, which frees it.
                drop(conn.detach());
            }
            unlocked?;
        }
        Ok(())
    }
}

impl Drop for ClusterLock {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            drop(conn.detach());
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn lock_keys_are_stable_and_distinct() {
        assert_eq!(super::lock_key("retention"), super::lock_key("retention"));
        assert_ne!(super::lock_key("retention"), super::lock_key("training"));
    }
}
