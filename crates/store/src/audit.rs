//! The audit log table and its head row, and [`Store::audited`], the one way to make an audited
//! change.
//!
//! Invariant: an audited change, its audit entry and its change notices commit in one
//! transaction or not at all. The head row is bumped first, which serializes appends across
//! nodes.

use candor_domain::Micros;
use candor_domain::audit::{self, AuditDraft, AuditEntry};
use sqlx::{Any, AssertSqlSafe, Row, Transaction};

use crate::{Result, Store};

/// The transaction an audited change runs in.
pub(crate) type Tx = Transaction<'static, Any>;

/// The body of an audited change: borrows the transaction for as long as it runs.
pub(crate) type Body<'t, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<T>> + Send + 't>>;

pub(crate) async fn append_in_tx(
    tx: &mut Transaction<'_, Any>,
    at: Micros,
    draft: &AuditDraft,
) -> Result<AuditEntry> {
    let mut entries = append_many_in_tx(tx, at, &[draft]).await?;
    Ok(entries.pop().expect("one draft, one entry"))
}

/// Appends one entry per draft, chained in order, with one head update and multi-row inserts
/// (bulk imports write thousands of entries per transaction).
pub(crate) async fn append_many_in_tx(
    tx: &mut Transaction<'_, Any>,
    at: Micros,
    drafts: &[&AuditDraft],
) -> Result<Vec<AuditEntry>> {
    if drafts.is_empty() {
        return Ok(Vec::new());
    }
    // Bumping the head first takes the write lock (a row lock on PostgreSQL, the database lock on
    // SQLite), which serializes concurrent appends across every node.
    let row = sqlx::query("UPDATE audit_head SET seq = seq + $1 WHERE id = 1 RETURNING seq, hash")
        .bind(drafts.len() as i64)
        .fetch_one(&mut **tx)
        .await?;
    let head: i64 = row.try_get("seq")?;
    let mut prev_hash: String = row.try_get("hash")?;
    let mut prev_seq = head - drafts.len() as i64;
    let mut entries = Vec::with_capacity(drafts.len());
    for draft in drafts {
        let entry = audit::seal(prev_seq, &prev_hash, at, draft);
        prev_seq = entry.seq;
        prev_hash.clone_from(&entry.hash);
        entries.push(entry);
    }
    for chunk in entries.chunks(crate::ingest::CHUNK) {
        let sql = format!(
            "INSERT INTO audit_log (seq, at, actor, action, target, details, prev_hash, hash) VALUES {}",
            crate::ingest::placeholders(crate::Backend::of(tx), chunk.len(), 8)
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for e in chunk {
            q = q
                .bind(e.seq)
                .bind(e.at)
                .bind(&e.actor)
                .bind(&e.action)
                .bind(&e.target)
                .bind(&e.details)
                .bind(&e.prev_hash)
                .bind(&e.hash);
        }
        q.execute(&mut **tx).await?;
    }
    sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1")
        .bind(&prev_hash)
        .execute(&mut **tx)
        .await?;
    Ok(entries)
}

fn entry_from_row(row: &sqlx::any::AnyRow) -> Result<AuditEntry> {
    Ok(AuditEntry {
        seq: row.try_get("seq")?,
        at: row.try_get("at")?,
        actor: row.try_get("actor")?,
        action: row.try_get("action")?,
        target: row.try_get("target")?,
        details: row.try_get("details")?,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
}

impl Store {
    /// Runs `change` in a transaction, appends the audit entry `draft` makes from its result in
    /// the same transaction, sends `notices` to other nodes inside it (PostgreSQL), and
    /// commits. If any part fails nothing is committed.
    pub(crate) async fn audited<T>(
        &self,
        at: Micros,
        change: impl for<'t> FnOnce(&'t mut Tx) -> Body<'t, T>,
        draft: impl FnOnce(&T) -> AuditDraft,
        notices: &[String],
    ) -> Result<(T, AuditEntry)> {
        let mut tx = self.pool.begin().await?;
        let result = change(&mut tx).await?;
        let entry = append_in_tx(&mut tx, at, &draft(&result)).await?;
        self.notify_many(&mut tx, notices).await?;
        tx.commit().await?;
        Ok((result, entry))
    }

    /// Appends an entry for an action that changes nothing else in the store (exports, reads).
    pub async fn append_audit(&self, at: Micros, draft: &AuditDraft) -> Result<AuditEntry> {
        let mut tx = self.pool.begin().await?;
        let entry = append_in_tx(&mut tx, at, draft).await?;
        tx.commit().await?;
        Ok(entry)
    }

    /// Entries with `seq > after`, oldest first, at most `limit`.
    pub async fn audit_entries(&self, after: i64, limit: i64) -> Result<Vec<AuditEntry>> {
        let rows = sqlx::query(
            "SELECT seq, at, actor, action, target, details, prev_hash, hash FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(entry_from_row).collect()
    }

    /// The newest entries first, for people reading the log.
    pub async fn recent_audit_entries(&self, limit: i64) -> Result<Vec<AuditEntry>> {
        let rows = sqlx::query(
            "SELECT seq, at, actor, action, target, details, prev_hash, hash FROM audit_log ORDER BY seq DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(entry_from_row).collect()
    }

    /// The recorded head of the chain: (last seq, last hash).
    pub async fn audit_head(&self) -> Result<(i64, String)> {
        let row = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        Ok((row.try_get("seq")?, row.try_get("hash")?))
    }
}
