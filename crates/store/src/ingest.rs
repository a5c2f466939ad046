//! Storing ingested messages.
//!
//! Invariants:
//! - A batch is one transaction: its message ids are claimed first (`messages_seen`), and only
//!   the rows of messages that were new are written, so a retried batch stores nothing twice and
//!   a failed batch stores nothing at all.
//! - Contact values arrive here already sealed; this module never sees plaintext identifiers.

use std::collections::{BTreeMap, HashSet};

use candor_domain::{AuditDraft, Micros};
use sqlx::{Any, AssertSqlSafe, Row, Transaction};

use crate::{Result, Store, StoreError, audit};

/// A behavioral event row, already minimized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub subject_key: String,
    pub anonymous: bool,
    pub kind: String,
    pub name: String,
    pub item_id: String,
    pub category: String,
    pub purpose: String,
    /// Kept properties as JSON; contact values inside are sealed.
    pub properties: String,
    pub at: Micros,
}

/// Everything one new message writes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PreparedMessage {
    pub message_id: String,
    pub event: Option<NewEvent>,
    /// (subject, field, sealed hex)
    pub contacts: Vec<(String, String, String)>,
    /// (subject, attribute, value), for fairness audits only.
    pub protected: Vec<(String, String, String)>,
    /// (subject, inventory key, sealed payload hex)
    pub quarantine: Option<(String, String, String)>,
    /// (anonymous key, known subject key, purposes the known subject allows)
    pub link: Option<(String, String, Vec<String>)>,
    /// (inventory key, counter) to increment by one if the message is new (the caller keeps
    /// the counters; see `add_inventory_counts`).
    pub counts: Vec<(String, String)>,
}

/// The messages of one request, written in one transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestBatch {
    pub messages: Vec<PreparedMessage>,
    pub received_at: Micros,
}

/// Per message of the batch, in order: true if it had been seen before (in an earlier request
/// or earlier in this batch) and was skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestResult {
    pub duplicate: Vec<bool>,
}

/// Rows per multi-row INSERT; keeps every statement well under both backends' parameter limits.
pub(crate) const CHUNK: usize = 100;

pub(crate) fn placeholders(rows: usize, cols: usize) -> String {
    let mut s = String::with_capacity(rows * cols * 5);
    for r in 0..rows {
        if r > 0 {
            s.push(',');
        }
        s.push('(');
        for c in 0..cols {
            if c > 0 {
                s.push(',');
            }
            s.push('$');
            s.push_str(&(r * cols + c + 1).to_string());
        }
        s.push(')');
    }
    s
}

impl Store {
    /// Writes a batch atomically; see the module invariants. A transaction that lost a deadlock
    /// or serialization race (PostgreSQL) or found the database busy (SQLite) is retried whole.
    pub async fn ingest(&self, batch: &IngestBatch) -> Result<IngestResult> {
        let mut attempt = 0;
        loop {
            match self.ingest_once(batch).await {
                Err(e) if attempt < 5 && is_transient(&e) => {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(5 << attempt)).await;
                }
                other => return other,
            }
        }
    }

    async fn ingest_once(&self, batch: &IngestBatch) -> Result<IngestResult> {
        let mut tx = self.pool.begin().await?;
        let mut new_ids: HashSet<String> = HashSet::with_capacity(batch.messages.len());
        // Rows are always locked in key order, so concurrent batches cannot deadlock each other.
        let mut claim: Vec<&str> = batch
            .messages
            .iter()
            .map(|m| m.message_id.as_str())
            .collect();
        claim.sort_unstable();
        claim.dedup();
        for chunk in claim.chunks(CHUNK) {
            let sql = format!(
                "INSERT INTO messages_seen (message_id, received_at) VALUES {} ON CONFLICT (message_id) DO NOTHING RETURNING message_id",
                placeholders(chunk.len(), 2)
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for id in chunk {
                q = q.bind(*id).bind(batch.received_at);
            }
            for row in q.fetch_all(&mut *tx).await? {
                new_ids.insert(row.try_get("message_id")?);
            }
        }
        // A message id repeated inside the batch counts once: the first occurrence wins.
        let mut fresh: Vec<&PreparedMessage> = Vec::with_capacity(batch.messages.len());
        let mut duplicate = Vec::with_capacity(batch.messages.len());
        for m in &batch.messages {
            let new = new_ids.remove(&m.message_id);
            if new {
                fresh.push(m);
            }
            duplicate.push(!new);
        }

        let events: Vec<(&str, &NewEvent)> = fresh
            .iter()
            .filter_map(|m| m.event.as_ref().map(|e| (m.message_id.as_str(), e)))
            .collect();
        for chunk in events.chunks(CHUNK) {
            let sql = format!(
                "INSERT INTO events (subject_key, kind, item_id, quantity, at, message_id, name, category, purpose, properties, received_at, anonymous) VALUES {}",
                placeholders(chunk.len(), 12)
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for (id, e) in chunk {
                q = q
                    .bind(&e.subject_key)
                    .bind(&e.kind)
                    .bind(&e.item_id)
                    .bind(1i64)
                    .bind(e.at)
                    .bind(*id)
                    .bind(&e.name)
                    .bind(&e.category)
                    .bind(&e.purpose)
                    .bind(&e.properties)
                    .bind(batch.received_at)
                    .bind(crate::bool_to_db(e.anonymous));
            }
            q.execute(&mut *tx).await?;
        }
        let mut contacts: BTreeMap<(&str, &str), &str> = BTreeMap::new();
        let mut protected: BTreeMap<(&str, &str), &str> = BTreeMap::new();
        for m in &fresh {
            for (subject, field, sealed) in &m.contacts {
                contacts.insert((subject, field), sealed);
            }
            for (subject, attribute, value) in &m.protected {
                protected.insert((subject, attribute), value);
            }
        }
        for ((subject, field), sealed) in contacts {
            {
                sqlx::query("INSERT INTO contact_fields (subject_key, field, sealed, updated_at) VALUES ($1, $2, $3, $4) ON CONFLICT (subject_key, field) DO UPDATE SET sealed = excluded.sealed, updated_at = excluded.updated_at")
                    .bind(subject)
                    .bind(field)
                    .bind(sealed)
                    .bind(batch.received_at)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        for ((subject, attribute), value) in protected {
            {
                sqlx::query("INSERT INTO protected_attributes (subject_key, attribute, value) VALUES ($1, $2, $3) ON CONFLICT (subject_key, attribute) DO UPDATE SET value = excluded.value")
                    .bind(subject)
                    .bind(attribute)
                    .bind(value)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        for m in &fresh {
            if let Some((subject, key, sealed)) = &m.quarantine {
                sqlx::query("INSERT INTO quarantined_events (message_id, subject_key, inventory_key, sealed_payload, received_at) VALUES ($1, $2, $3, $4, $5)")
                    .bind(&m.message_id)
                    .bind(subject)
                    .bind(key)
                    .bind(sealed)
                    .bind(batch.received_at)
                    .execute(&mut *tx)
                    .await?;
            }
            if let Some((anon, known, purposes)) = &m.link {
                link_in_tx(&mut tx, anon, known, purposes, batch.received_at).await?;
            }
        }
        tx.commit().await?;
        Ok(IngestResult { duplicate })
    }

    /// Adds to the tracking plan's live counters, in key order (so concurrent flushes from
    /// several nodes cannot deadlock).
    pub async fn add_inventory_counts(
        &self,
        counts: &BTreeMap<(String, String), i64>,
    ) -> Result<()> {
        if counts.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        for ((key, counter), n) in counts {
            sqlx::query("INSERT INTO inventory_counts (event_key, counter, value) VALUES ($1, $2, $3) ON CONFLICT (event_key, counter) DO UPDATE SET value = inventory_counts.value + excluded.value")
                .bind(key)
                .bind(counter)
                .bind(n)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The wrapped data key of a subject, creating it from `candidate` if there is none yet.
    /// Returns the stored one, so concurrent creators converge on a single key.
    pub async fn data_key(&self, subject: &str, candidate: &str, at: Micros) -> Result<String> {
        sqlx::query("INSERT INTO subject_data_keys (subject_key, wrapped, created_at) VALUES ($1, $2, $3) ON CONFLICT (subject_key) DO NOTHING")
            .bind(subject)
            .bind(candidate)
            .bind(at)
            .execute(&self.pool)
            .await?;
        let row = sqlx::query("SELECT wrapped FROM subject_data_keys WHERE subject_key = $1")
            .bind(subject)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("wrapped")?)
    }

    /// Sealed contact fields of a subject: (field, sealed hex).
    pub async fn contact_fields(&self, subject: &str) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT field, sealed FROM contact_fields WHERE subject_key = $1 ORDER BY field",
        )
        .bind(subject)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("field")?, r.try_get("sealed")?)))
            .collect()
    }

    /// Stored events of a subject, oldest first: (kind, name, category, purpose, properties, at).
    pub async fn subject_events(
        &self,
        subject: &str,
        limit: i64,
    ) -> Result<Vec<(String, String, String, String, String, Micros)>> {
        let rows = sqlx::query("SELECT kind, name, category, purpose, properties, at FROM events WHERE subject_key = $1 ORDER BY at, id LIMIT $2").bind(subject).bind(limit).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("kind")?,
                    r.try_get("name")?,
                    r.try_get("category")?,
                    r.try_get("purpose")?,
                    r.try_get("properties")?,
                    r.try_get("at")?,
                ))
            })
            .collect()
    }

    pub async fn quarantined_count(&self) -> Result<i64> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM quarantined_events")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?)
    }

    pub async fn inventory_body(&self) -> Result<Option<String>> {
        let row = sqlx::query("SELECT body FROM inventory WHERE id = 1")
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| r.try_get("body").map_err(StoreError::from))
            .transpose()
    }

    /// Replaces the tracking plan, audited.
    pub async fn set_inventory(
        &self,
        body: &str,
        at: Micros,
        audit_draft: &AuditDraft,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO inventory (id, body, updated_at) VALUES (1, $1, $2) ON CONFLICT (id) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at")
            .bind(body)
            .bind(at)
            .execute(&mut *tx)
            .await?;
        audit::append_in_tx(&mut tx, at, audit_draft).await?;
        self.notify(&mut tx, "inventory").await?;
        tx.commit().await?;
        Ok(())
    }

    /// Live counts: (event key, counter, value).
    pub async fn inventory_counts(&self) -> Result<Vec<(String, String, i64)>> {
        let rows = sqlx::query(
            "SELECT event_key, counter, value FROM inventory_counts ORDER BY event_key, counter",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("event_key")?,
                    r.try_get("counter")?,
                    r.try_get("value")?,
                ))
            })
            .collect()
    }
}

async fn link_in_tx(
    tx: &mut Transaction<'_, Any>,
    anon: &str,
    known: &str,
    purposes: &[String],
    at: Micros,
) -> Result<()> {
    sqlx::query("INSERT INTO identity_links (anonymous_key, subject_key, at) VALUES ($1, $2, $3) ON CONFLICT (anonymous_key, subject_key) DO NOTHING")
        .bind(anon)
        .bind(known)
        .bind(at)
        .execute(&mut **tx)
        .await?;
    // Session data joins the profile only for purposes the known person allows; the rest stays
    // session-scoped until the anonymous retention removes it.
    for p in purposes {
        sqlx::query("UPDATE events SET subject_key = $1, anonymous = 0 WHERE subject_key = $2 AND anonymous = 1 AND purpose = $3")
            .bind(known)
            .bind(anon)
            .bind(p)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Whether a failed transaction may simply be run again.
fn is_transient(e: &StoreError) -> bool {
    match e {
        StoreError::Database(sqlx::Error::Database(db)) => {
            matches!(
                db.code().as_deref(),
                Some("40P01" | "40001" | "5" | "517" | "6")
            ) || db.message().contains("database is locked")
        }
        _ => false,
    }
}

/// Subject key that anonymized rows carry: they still count in aggregates but belong to no one.
pub const ANONYMIZED: &str = "anonymized";

impl Store {
    /// Deletes events of `category` that happened before `cutoff`.
    pub async fn delete_events_before(&self, category: &str, cutoff: Micros) -> Result<u64> {
        let r = sqlx::query("DELETE FROM events WHERE category = $1 AND at < $2")
            .bind(category)
            .bind(cutoff)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }

    /// Cuts events of `category` before `cutoff` loose from their subject and drops their
    /// properties, keeping what aggregate analytics need (kind, name, item, time).
    pub async fn anonymize_events_before(&self, category: &str, cutoff: Micros) -> Result<u64> {
        let r = sqlx::query("UPDATE events SET subject_key = $1, properties = '{}', message_id = NULL WHERE category = $2 AND at < $3 AND subject_key <> $1")
            .bind(ANONYMIZED)
            .bind(category)
            .bind(cutoff)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }

    /// Deletes session data of visitors never linked to a known subject.
    pub async fn delete_anonymous_events_before(&self, cutoff: Micros) -> Result<u64> {
        let r = sqlx::query("DELETE FROM events WHERE anonymous = 1 AND received_at < $1")
            .bind(cutoff)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }
}
