//! The audit log table and its head row, and [`Store::audited`] / [`Store::audited_many`], the
//! only way to append to the log.
//!
//! Invariant, enforced by visibility: the one function that writes `audit_log` and `audit_head`
//! (`append_many_in_tx`) is private to this module, and these helpers are its only callers. So
//! every audited change is the helper's `change`, run in the transaction the helper opens, then
//! followed in it by its audit entries and its change notices, and the whole commits or rolls
//! back as one (an error from `change` rolls it back too). No other module can write a change
//! that forgets its entry, append an entry without a change, or append one outside its change's
//! transaction. Within the transaction the head row is bumped before any entry is inserted,
//! which serializes appends across nodes. An action that changes nothing else (an export, say)
//! is an audited change with an empty `change` ([`Store::append_audit`]).

use std::borrow::Borrow;

use candor_domain::Micros;
use candor_domain::audit::{self, AuditDraft, AuditEntry};
use sqlx::{Any, AssertSqlSafe, Row, Transaction};

use crate::{Result, Store};

/// The transaction an audited change runs in.
pub(crate) type Tx = Transaction<'static, Any>;

/// The body of an audited change: borrows the transaction and the change's input for as long as
/// it runs.
pub(crate) type Body<'t, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<T>> + Send + 't>>;

/// Appends one entry per draft, chained in order, with one head update and multi-row inserts
/// (bulk imports write thousands of entries per transaction). Private: only the helpers below
/// call it, inside the transaction of the change the entries record.
async fn append_many_in_tx(
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
    /// Runs `change` in a transaction, appends the one audit entry `draft` makes from its result
    /// in the same transaction, sends `notices` to other nodes inside it (PostgreSQL), and
    /// commits. If any part fails (the change returns an error, say) nothing is committed.
    ///
    /// `change` gets the transaction and `input`, and its body may borrow both: the caller's data
    /// goes in through `input` rather than being cloned into the closure. Several borrowed values
    /// go in as a tuple of references. `draft` may return the draft owned or borrowed.
    pub(crate) async fn audited<D, T, A>(
        &self,
        at: Micros,
        input: &D,
        change: impl for<'t> FnOnce(&'t mut Tx, &'t D) -> Body<'t, T>,
        draft: impl FnOnce(&T) -> A,
        notices: &[String],
    ) -> Result<(T, AuditEntry)>
    where
        D: Sync + ?Sized,
        A: Borrow<AuditDraft>,
    {
        let (result, mut entries) = self
            .audited_many(at, input, change, |result| vec![draft(result)], notices)
            .await?;
        let entry = entries.pop().expect("one draft, one entry");
        Ok((result, entry))
    }

    /// [`Store::audited`] for a change that records several entries (bulk imports): they are
    /// chained in the order `drafts` gives them, with one head update. No drafts, no entries.
    pub(crate) async fn audited_many<D, T, A>(
        &self,
        at: Micros,
        input: &D,
        change: impl for<'t> FnOnce(&'t mut Tx, &'t D) -> Body<'t, T>,
        drafts: impl FnOnce(&T) -> Vec<A>,
        notices: &[String],
    ) -> Result<(T, Vec<AuditEntry>)>
    where
        D: Sync + ?Sized,
        A: Borrow<AuditDraft>,
    {
        self.audited_then(
            at,
            input,
            change,
            drafts,
            |_, _, _| Box::pin(async { Ok(()) }),
            notices,
        )
        .await
    }

    /// [`Store::audited_many`] with a last step that sees the entries just appended, still in
    /// the transaction: for records that must name their own audit entry (erasure receipts), so
    /// the change, its entry and the record citing it commit together or not at all.
    pub(crate) async fn audited_then<D, T, A>(
        &self,
        at: Micros,
        input: &D,
        change: impl for<'t> FnOnce(&'t mut Tx, &'t D) -> Body<'t, T>,
        drafts: impl FnOnce(&T) -> Vec<A>,
        then: impl for<'t> FnOnce(&'t mut Tx, &'t T, &'t [AuditEntry]) -> Body<'t, ()>,
        notices: &[String],
    ) -> Result<(T, Vec<AuditEntry>)>
    where
        D: Sync + ?Sized,
        A: Borrow<AuditDraft>,
    {
        let mut tx = self.begin_write().await?;
        let result = change(&mut tx, input).await?;
        let owned = drafts(&result);
        let drafts: Vec<&AuditDraft> = owned.iter().map(Borrow::borrow).collect();
        let entries = append_many_in_tx(&mut tx, at, &drafts).await?;
        then(&mut tx, &result, &entries).await?;
        self.notify_many(&mut tx, notices).await?;
        tx.commit().await?;
        Ok((result, entries))
    }

    /// A transaction that will write. On SQLite it takes the write lock at once (`BEGIN
    /// IMMEDIATE`): a deferred transaction that reads first and writes later cannot wait for the
    /// lock when another connection wrote in between, and fails at once with "database is
    /// locked"; an immediate one waits under the busy timeout like any writer.
    pub(crate) async fn begin_write(&self) -> Result<Tx> {
        Ok(match self.backend {
            crate::Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            crate::Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// The common shape of an audited change: one statement and its audit entry, committed
    /// together. With `expect` (what, id), a statement that touches no row is `NotFound` and
    /// nothing commits.
    pub(crate) async fn audited_statement<'q>(
        &self,
        at: Micros,
        statement: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>,
        expect: Option<(&'static str, &str)>,
        draft: &AuditDraft,
        notices: &[String],
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let done = statement.execute(&mut *tx).await?;
        if let Some((what, id)) = expect
            && done.rows_affected() == 0
        {
            return Err(crate::StoreError::NotFound {
                what,
                id: id.to_owned(),
            });
        }
        append_many_in_tx(&mut tx, at, &[draft]).await?;
        self.notify_many(&mut tx, notices).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Appends an entry for an action that changes nothing else in the store (exports, reads).
    pub async fn append_audit(&self, at: Micros, draft: &AuditDraft) -> Result<AuditEntry> {
        let ((), entry) = self
            .audited(at, &(), |_, _| Box::pin(async { Ok(()) }), |_| draft, &[])
            .await?;
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

    /// Entries of the given actions recorded in `[since, until)`, oldest first (reports read a
    /// year's worth of a few actions without decoding the rest of the log).
    pub async fn audit_entries_of(
        &self,
        actions: &[&str],
        since: Micros,
        until: Micros,
    ) -> Result<Vec<AuditEntry>> {
        let mut out = Vec::new();
        for action in actions {
            let rows = sqlx::query(
                "SELECT seq, at, actor, action, target, details, prev_hash, hash FROM audit_log WHERE action = $1 AND at >= $2 AND at < $3 ORDER BY seq",
            )
            .bind(*action)
            .bind(since)
            .bind(until)
            .fetch_all(&self.pool)
            .await?;
            for r in &rows {
                out.push(entry_from_row(r)?);
            }
        }
        out.sort_by_key(|e| e.seq);
        Ok(out)
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
