//! Subject rights in the store: everything held on a subject (for export), erasure in one
//! audited transaction with its receipt, the suppression list, and rights requests.
//!
//! Invariants:
//! - An erasure, its audit entry, its receipt and the `subject.erased` outbox row commit
//!   together or not at all ([`Store::audited_then`]).
//! - An erasure and ingestion never interleave: on SQLite both take the write lock and the
//!   ingest writer reads the suppression list under it; on PostgreSQL every ingest transaction
//!   holds [`ERASURE_LOCK`] shared and an erasure holds it exclusively. So an ingest group either
//!   commits before the erasure (which then removes what it wrote) or sees the subject
//!   suppressed.
//! - The suppression list holds pseudonymous keys only, never an external id.
//! - These reads ignore consent on purpose: they serve the person's own right of access, not a
//!   purpose. Only the rights room calls them.

use std::collections::{BTreeMap, HashMap};

use candor_domain::{AuditDraft, AuditEntry, Micros};
use sqlx::{AssertSqlSafe, Row};

use crate::audit::Tx;
use crate::webhooks::OutboxEvent;
use crate::{Backend, Result, Store, StoreError};

/// PostgreSQL transaction-level advisory lock shared by ingest and taken alone by erasure.
pub(crate) const ERASURE_LOCK: i64 = 0x6361_6e64_6f72_6572;

/// One subject to erase, and what the policy keeps.
#[derive(Debug, Clone)]
pub struct Erasure {
    pub subject: String,
    pub request_id: String,
    pub suppress: bool,
    pub keep_consent_log: bool,
    /// Purposes whose events are kept (legal obligation).
    pub kept_purposes: Vec<String>,
    /// Who asked: recorded in the audit entry.
    pub actor: String,
    /// Announced to webhooks with the erasure.
    pub event: OutboxEvent,
}

/// What one erasure removed or kept, by artifact, in receipt order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErasedCounts {
    /// (artifact, rows) removed from the database.
    pub erased: Vec<(&'static str, i64)>,
    /// (artifact, rows) deliberately kept.
    pub kept: Vec<(&'static str, i64)>,
    /// Anonymous sessions linked to the subject, erased with it.
    pub sessions: i64,
    /// Every subject key whose data was removed (the subject and its sessions).
    pub keys: Vec<String>,
}

impl ErasedCounts {
    pub fn erased(&self, artifact: &str) -> i64 {
        self.erased
            .iter()
            .find(|(a, _)| *a == artifact)
            .map_or(0, |(_, n)| *n)
    }

    /// Whether the erasure found anything at all to remove.
    pub fn removed_anything(&self) -> bool {
        self.erased.iter().any(|(_, n)| *n > 0)
    }
}

/// An event as stored, every column a person may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub id: i64,
    pub subject_key: String,
    pub kind: String,
    pub name: String,
    pub item_id: String,
    pub category: String,
    pub purpose: String,
    pub properties: String,
    pub at: Micros,
    pub received_at: Micros,
}

/// What is held on a subject beside events and consents, for export.
#[derive(Debug, Clone, Default)]
pub struct SubjectHoldings {
    /// (field, sealed hex)
    pub contact_fields: Vec<(String, String)>,
    /// (attribute, value)
    pub protected_attributes: Vec<(String, String)>,
    pub preferences: Option<String>,
    pub declared_interests: Vec<String>,
    /// Anonymous session keys linked to the subject.
    pub sessions: Vec<String>,
    /// (message id, inventory key, received at)
    pub quarantined: Vec<(String, String, Micros)>,
    pub decisions: Vec<crate::DecisionRow>,
    /// (event id, event type, status, attempts, created at, payload)
    pub deliveries: Vec<(String, String, String, i64, Micros, String)>,
    pub feedback: Vec<crate::FeedbackRow>,
    pub surveys: Vec<crate::SurveyRow>,
    pub has_data_key: bool,
    pub suppressed: bool,
}

/// A rights request as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RightsRequestRow {
    pub id: String,
    pub subject_key: String,
    pub kind: String,
    pub jurisdiction: String,
    pub status: String,
    pub channel: String,
    pub verification_method: Option<String>,
    pub details: String,
    pub received_at: Micros,
    pub extended: bool,
    pub paused_for: Micros,
    pub paused_since: Option<Micros>,
    pub due_at: Micros,
    pub completed_at: Option<Micros>,
    pub reason: Option<String>,
    pub overdue_notified: bool,
    pub updated_at: Micros,
}

const REQUEST_COLUMNS: &str = "id, subject_key, kind, jurisdiction, status, channel, verification_method, details, received_at, extended, paused_for, paused_since, due_at, completed_at, reason, overdue_notified, updated_at";

fn decode_request(r: &sqlx::any::AnyRow) -> Result<RightsRequestRow> {
    Ok(RightsRequestRow {
        id: r.try_get("id")?,
        subject_key: r.try_get("subject_key")?,
        kind: r.try_get("kind")?,
        jurisdiction: r.try_get("jurisdiction")?,
        status: r.try_get("status")?,
        channel: r.try_get("channel")?,
        verification_method: r.try_get("verification_method")?,
        details: r.try_get("details")?,
        received_at: r.try_get("received_at")?,
        extended: r.try_get::<i64, _>("extended")? != 0,
        paused_for: r.try_get("paused_for")?,
        paused_since: r.try_get("paused_since")?,
        due_at: r.try_get("due_at")?,
        completed_at: r.try_get("completed_at")?,
        reason: r.try_get("reason")?,
        overdue_notified: r.try_get::<i64, _>("overdue_notified")? != 0,
        updated_at: r.try_get("updated_at")?,
    })
}

/// `purpose NOT IN (..)` for the kept purposes, as SQL over placeholders from `$first`.
fn not_kept(kept: &[String], first: usize) -> String {
    if kept.is_empty() {
        return String::new();
    }
    let list: Vec<String> = (0..kept.len()).map(|i| format!("${}", first + i)).collect();
    format!(" AND purpose NOT IN ({})", list.join(","))
}

impl Store {
    /// Whether anything at all is held on the subject: data, consents, a key or requests.
    pub async fn subject_known(&self, subject: &str) -> Result<bool> {
        let row = sqlx::query(
            "SELECT \
             (SELECT COUNT(*) FROM (SELECT 1 FROM consent_records WHERE subject_key = $1 LIMIT 1) a) + \
             (SELECT COUNT(*) FROM (SELECT 1 FROM subject_data_keys WHERE subject_key = $1 LIMIT 1) b) + \
             (SELECT COUNT(*) FROM (SELECT 1 FROM event_subjects WHERE subject_key = $1 LIMIT 1) c) + \
             (SELECT COUNT(*) FROM (SELECT 1 FROM subject_preferences WHERE subject_key = $1 LIMIT 1) d) + \
             (SELECT COUNT(*) FROM (SELECT 1 FROM contact_fields WHERE subject_key = $1 LIMIT 1) e) + \
             (SELECT COUNT(*) FROM (SELECT 1 FROM protected_attributes WHERE subject_key = $1 LIMIT 1) f) + \
             (SELECT COUNT(*) FROM (SELECT 1 FROM rights_requests WHERE subject_key = $1 LIMIT 1) g) + \
             (SELECT COUNT(*) FROM (SELECT 1 FROM erasure_receipts WHERE subject_key = $1 LIMIT 1) h) AS n",
        )
        .bind(subject)
        .fetch_one(&self.pool)
        .await?;
        let n: i64 = row.try_get("n")?;
        if n > 0 {
            return Ok(true);
        }
        // Events the SQLite writer has not indexed yet.
        Ok(!self.held_events(subject, 1).await?.is_empty())
    }

    /// Every event stored under `subject`, oldest first, at most `limit`.
    pub async fn held_events(&self, subject: &str, limit: i64) -> Result<Vec<StoredEvent>> {
        let rows = self
            .subject_rows(subject, limit, |of_subject| {
                format!(
                    "SELECT e.id, e.subject_key, e.kind, e.name, e.item_id, e.category, e.purpose, \
                     e.properties, e.at, e.received_at FROM events e WHERE {of_subject} \
                     ORDER BY e.at, e.id LIMIT $2"
                )
            })
            .await?;
        rows.iter()
            .map(|r| {
                Ok(StoredEvent {
                    id: r.try_get("id")?,
                    subject_key: r.try_get("subject_key")?,
                    kind: r.try_get("kind")?,
                    name: r.try_get("name")?,
                    item_id: r.try_get("item_id")?,
                    category: r.try_get("category")?,
                    purpose: r.try_get("purpose")?,
                    properties: r.try_get("properties")?,
                    at: r.try_get("at")?,
                    received_at: r.try_get("received_at")?,
                })
            })
            .collect()
    }

    /// Everything else held on `subject`, for export (`decisions` at most `limit`).
    pub async fn subject_holdings(&self, subject: &str, limit: i64) -> Result<SubjectHoldings> {
        let pairs = |sql: &'static str| async move {
            let rows = sqlx::query(sql).bind(subject).fetch_all(&self.pool).await?;
            rows.iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                .collect::<Result<Vec<(String, String)>>>()
        };
        let contact_fields =
            pairs("SELECT field, sealed FROM contact_fields WHERE subject_key = $1 ORDER BY field")
                .await?;
        let protected_attributes = pairs(
            "SELECT attribute, value FROM protected_attributes WHERE subject_key = $1 ORDER BY attribute",
        )
        .await?;
        let sessions = sqlx::query(
            "SELECT anonymous_key FROM identity_links WHERE subject_key = $1 ORDER BY anonymous_key",
        )
        .bind(subject)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<std::result::Result<_, _>>()?;
        let quarantined = sqlx::query(
            "SELECT message_id, inventory_key, received_at FROM quarantined_events WHERE subject_key = $1 ORDER BY received_at",
        )
        .bind(subject)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
        .collect::<Result<_>>()?;
        let decisions = sqlx::query(
            "SELECT subject_key, surface, item_id, selected, outcome, score, model_version, at, position, answer_id \
             FROM decisions WHERE subject_key = $1 ORDER BY at, id LIMIT $2",
        )
        .bind(subject)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            Ok(crate::DecisionRow {
                subject_key: r.try_get("subject_key")?,
                surface: r.try_get("surface")?,
                item_id: r.try_get("item_id")?,
                selected: r.try_get::<i64, _>("selected")? != 0,
                outcome: r.try_get::<Option<i64>, _>("outcome")?.map(|o| o != 0),
                score: r.try_get("score")?,
                model_version: r.try_get("model_version")?,
                at: r.try_get("at")?,
                position: r.try_get("position")?,
                answer_id: r.try_get("answer_id")?,
            })
        })
        .collect::<Result<_>>()?;
        let deliveries = sqlx::query(
            "SELECT event_id, event_type, status, attempts, created_at, payload FROM webhook_deliveries \
             WHERE subject_key = $1 ORDER BY created_at, id",
        )
        .bind(subject)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            Ok((
                r.try_get(0)?,
                r.try_get(1)?,
                r.try_get(2)?,
                r.try_get(3)?,
                r.try_get(4)?,
                r.try_get(5)?,
            ))
        })
        .collect::<Result<_>>()?;
        Ok(SubjectHoldings {
            contact_fields,
            protected_attributes,
            preferences: self.preferences_body(subject).await?,
            declared_interests: self.declared_interests(subject).await?,
            sessions,
            quarantined,
            decisions,
            deliveries,
            feedback: self.feedback_of(subject).await?,
            surveys: self.surveys_of(subject).await?,
            has_data_key: self.wrapped_data_key(subject).await?.is_some(),
            suppressed: self.is_suppressed(subject).await?,
        })
    }

    pub async fn is_suppressed(&self, subject: &str) -> Result<bool> {
        Ok(
            sqlx::query("SELECT 1 FROM suppressed_subjects WHERE subject_key = $1")
                .bind(subject)
                .fetch_optional(&self.pool)
                .await?
                .is_some(),
        )
    }

    /// Erases subjects in one transaction: each with its audit entry, its receipt (made by
    /// `receipt` from what was erased and the entry that records it) and its outbox event.
    /// Returns each subject's counts and audit entry, in order.
    pub async fn erase_subjects(
        &self,
        erasures: &[Erasure],
        at: Micros,
        receipt: impl Fn(&Erasure, &ErasedCounts, &AuditEntry) -> String + Send + Sync,
    ) -> Result<Vec<(ErasedCounts, AuditEntry)>> {
        let notices: Vec<String> = erasures
            .iter()
            .map(|e| format!("erased:{}", e.subject))
            .collect();
        let backend = self.backend;
        let writes = self.writes.as_ref();
        let (counts, entries) = self
            .audited_then(
                at,
                &(erasures, backend, writes),
                |tx, &(erasures, backend, writes)| {
                    Box::pin(async move {
                        if backend == Backend::Postgres {
                            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                                .bind(ERASURE_LOCK)
                                .execute(&mut **tx)
                                .await?;
                        }
                        erase_batch_in_tx(tx, erasures, at, backend, writes).await
                    })
                },
                |counts: &Vec<ErasedCounts>| {
                    erasures
                        .iter()
                        .zip(counts)
                        .map(|(e, c)| {
                            AuditDraft::new(
                                &e.actor,
                                candor_domain::AuditAction::SubjectErase,
                                &e.subject,
                                serde_json::json!({
                                    "request_id": e.request_id,
                                    "suppressed": e.suppress,
                                    "erased": c.erased.iter().cloned().collect::<BTreeMap<_, _>>(),
                                    "kept": c.kept.iter().cloned().collect::<BTreeMap<_, _>>(),
                                }),
                            )
                        })
                        .collect::<Vec<_>>()
                },
                |tx, counts: &Vec<ErasedCounts>, entries| {
                    let bodies: Vec<(String, String, String)> = erasures
                        .iter()
                        .zip(counts)
                        .zip(entries)
                        .map(|((e, c), entry)| {
                            (e.request_id.clone(), e.subject.clone(), receipt(e, c, entry))
                        })
                        .collect();
                    Box::pin(async move {
                        for (request_id, subject, body) in bodies {
                            sqlx::query(
                                "INSERT INTO erasure_receipts (request_id, subject_key, at, body) VALUES ($1, $2, $3, $4)",
                            )
                            .bind(request_id)
                            .bind(subject)
                            .bind(at)
                            .bind(body)
                            .execute(&mut **tx)
                            .await?;
                        }
                        Ok(())
                    })
                },
                &notices,
            )
            .await?;
        if self.backend == Backend::Sqlite {
            let keys: Vec<&str> = counts
                .iter()
                .flat_map(|c| c.keys.iter().map(String::as_str))
                .collect();
            self.writes.forget_unindexed(&keys);
        }
        Ok(counts.into_iter().zip(entries).collect())
    }

    /// Rectification in one audited transaction: contact values (already sealed again),
    /// identify events whose trait values were corrected, and protected attributes.
    pub async fn rectify(
        &self,
        subject: &str,
        contacts: &[(String, String)],
        events: &[(i64, String)],
        protected: &[(String, String)],
        at: Micros,
        audit: &AuditDraft,
    ) -> Result<()> {
        self.audited(
            at,
            &(subject, contacts, events, protected),
            |tx, &(subject, contacts, events, protected)| {
                Box::pin(async move {
                    for (field, sealed) in contacts {
                        sqlx::query(
                            "INSERT INTO contact_fields (subject_key, field, sealed, updated_at) VALUES ($1, $2, $3, $4) \
                             ON CONFLICT (subject_key, field) DO UPDATE SET sealed = excluded.sealed, updated_at = excluded.updated_at",
                        )
                        .bind(subject)
                        .bind(field)
                        .bind(sealed)
                        .bind(at)
                        .execute(&mut **tx)
                        .await?;
                    }
                    for (id, properties) in events {
                        sqlx::query("UPDATE events SET properties = $1 WHERE id = $2 AND subject_key = $3")
                            .bind(properties)
                            .bind(*id)
                            .bind(subject)
                            .execute(&mut **tx)
                            .await?;
                    }
                    for (attribute, value) in protected {
                        sqlx::query(
                            "UPDATE protected_attributes SET value = $1 WHERE subject_key = $2 AND attribute = $3",
                        )
                        .bind(value)
                        .bind(subject)
                        .bind(attribute)
                        .execute(&mut **tx)
                        .await?;
                    }
                    Ok(())
                })
            },
            |_| audit,
            &[],
        )
        .await?;
        Ok(())
    }

    /// The newest receipt of `subject`, as handed out.
    pub async fn latest_receipt(&self, subject: &str) -> Result<Option<String>> {
        let row = sqlx::query(
            "SELECT body FROM erasure_receipts WHERE subject_key = $1 ORDER BY at DESC LIMIT 1",
        )
        .bind(subject)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.try_get("body")).transpose()?)
    }

    /// A receipt by its request id.
    pub async fn receipt(&self, request_id: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT body FROM erasure_receipts WHERE request_id = $1")
            .bind(request_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("body")).transpose()?)
    }

    /// Every receipt of `subject`, oldest first.
    pub async fn receipts_of(&self, subject: &str) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT body FROM erasure_receipts WHERE subject_key = $1 ORDER BY at, request_id",
        )
        .bind(subject)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| r.try_get("body").map_err(StoreError::from))
            .collect()
    }

    /// Records a new request with its audit entry.
    pub async fn create_request(&self, r: &RightsRequestRow, audit: &AuditDraft) -> Result<()> {
        let insert = sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO rights_requests ({REQUEST_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
        )));
        let insert = bind_request(insert, r);
        self.audited_statement(r.updated_at, insert, None, audit, &[])
            .await
    }

    /// Replaces a request's mutable fields (status, clock, reason), audited; `NotFound` if it
    /// does not exist.
    pub async fn update_request(&self, r: &RightsRequestRow, audit: &AuditDraft) -> Result<()> {
        let update = sqlx::query(
            "UPDATE rights_requests SET status = $2, verification_method = $3, details = $4, extended = $5, \
             paused_for = $6, paused_since = $7, due_at = $8, completed_at = $9, reason = $10, \
             overdue_notified = $11, updated_at = $12 WHERE id = $1",
        )
        .bind(&r.id)
        .bind(&r.status)
        .bind(r.verification_method.as_deref())
        .bind(&r.details)
        .bind(crate::bool_to_db(r.extended))
        .bind(r.paused_for)
        .bind(r.paused_since)
        .bind(r.due_at)
        .bind(r.completed_at)
        .bind(r.reason.as_deref())
        .bind(crate::bool_to_db(r.overdue_notified))
        .bind(r.updated_at);
        self.audited_statement(
            r.updated_at,
            update,
            Some(("rights request", &r.id)),
            audit,
            &[],
        )
        .await
    }

    pub async fn request(&self, id: &str) -> Result<Option<RightsRequestRow>> {
        Ok(self.requests_where("id = $1", id).await?.pop())
    }

    /// Requests matching `condition` on `$1`, oldest first.
    async fn requests_where(&self, condition: &str, value: &str) -> Result<Vec<RightsRequestRow>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {REQUEST_COLUMNS} FROM rights_requests WHERE {condition} ORDER BY received_at, id"
        )))
        .bind(value.to_owned())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decode_request).collect()
    }

    /// Requests, newest first: all, or those in `status`, or (with `overdue_at`) the open ones
    /// whose running clock is past due at that time.
    pub async fn requests(
        &self,
        status: Option<&str>,
        overdue_at: Option<Micros>,
        limit: i64,
    ) -> Result<Vec<RightsRequestRow>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {REQUEST_COLUMNS} FROM rights_requests \
             WHERE ($1 = '' OR status = $1) \
             AND ($2 < 0 OR (status NOT IN ('completed', 'denied') AND paused_since IS NULL AND due_at < $2)) \
             ORDER BY received_at DESC, id LIMIT $3"
        )))
        .bind(status.unwrap_or(""))
        .bind(overdue_at.unwrap_or(-1))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decode_request).collect()
    }

    /// Requests received in `[since, until)`, oldest first (for reports).
    pub async fn requests_received_between(
        &self,
        since: Micros,
        until: Micros,
    ) -> Result<Vec<RightsRequestRow>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {REQUEST_COLUMNS} FROM rights_requests WHERE received_at >= $1 AND received_at < $2 ORDER BY received_at, id"
        )))
        .bind(since)
        .bind(until)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decode_request).collect()
    }

    pub async fn requests_of(&self, subject: &str) -> Result<Vec<RightsRequestRow>> {
        self.requests_where("subject_key = $1", subject).await
    }

    /// Marks an overdue request as announced and queues its webhook, in one audited
    /// transaction; false if it was announced already (by another node, say).
    pub async fn announce_overdue(
        &self,
        id: &str,
        at: Micros,
        event: &OutboxEvent,
        audit: &AuditDraft,
    ) -> Result<bool> {
        let announced = self
            .audited(
                at,
                &(id, event),
                |tx, &(id, event)| {
                    Box::pin(async move {
                        let done = sqlx::query(
                            "UPDATE rights_requests SET overdue_notified = 1 WHERE id = $1 AND overdue_notified = 0",
                        )
                        .bind(id)
                        .execute(&mut **tx)
                        .await?;
                        if done.rows_affected() == 0 {
                            // Rolls the transaction back: nothing to announce, nothing to audit.
                            return Err(StoreError::NotFound {
                                what: "unannounced overdue request",
                                id: id.to_owned(),
                            });
                        }
                        crate::webhooks::enqueue_in_tx(tx, event, at).await
                    })
                },
                |_| audit,
                &[],
            )
            .await;
        match announced {
            Ok(_) => Ok(true),
            Err(StoreError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Request counts by (kind, status), for metrics and reports.
    pub async fn request_counts(&self) -> Result<BTreeMap<(String, String), i64>> {
        let rows = sqlx::query(
            "SELECT kind, status, COUNT(*) AS n FROM rights_requests GROUP BY kind, status",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok(((r.try_get("kind")?, r.try_get("status")?), r.try_get("n")?)))
            .collect()
    }
}

fn bind_request<'q>(
    q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    r: &'q RightsRequestRow,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    q.bind(&r.id)
        .bind(&r.subject_key)
        .bind(&r.kind)
        .bind(&r.jurisdiction)
        .bind(&r.status)
        .bind(&r.channel)
        .bind(r.verification_method.as_deref())
        .bind(&r.details)
        .bind(r.received_at)
        .bind(crate::bool_to_db(r.extended))
        .bind(r.paused_for)
        .bind(r.paused_since)
        .bind(r.due_at)
        .bind(r.completed_at)
        .bind(r.reason.as_deref())
        .bind(crate::bool_to_db(r.overdue_notified))
        .bind(r.updated_at)
}

/// `$from, $from+1, ..` for `n` parameters.
fn params_from(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Runs `sql` with `keys` bound first (then `extra`), and counts the returned or grouped rows
/// by the key in column `key_column`, adding each to its owner's `artifact`.
struct Tally<'a> {
    owner: &'a HashMap<String, usize>,
    totals: Vec<BTreeMap<&'static str, i64>>,
}

impl Tally<'_> {
    fn add(&mut self, key: &str, artifact: &'static str, n: i64) {
        if let Some(i) = self.owner.get(key) {
            *self.totals[*i].entry(artifact).or_default() += n;
        }
    }

    /// `sql` must return (key, count) rows, or one row per affected row with the key first.
    async fn run(
        &mut self,
        tx: &mut Tx,
        artifact: &'static str,
        sql: String,
        keys: &[&str],
        extra: &[i64],
        grouped: bool,
    ) -> Result<()> {
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for k in keys {
            q = q.bind((*k).to_owned());
        }
        for x in extra {
            q = q.bind(*x);
        }
        for row in q.fetch_all(&mut **tx).await? {
            let key: String = row.try_get(0)?;
            let n = if grouped { row.try_get(1)? } else { 1 };
            self.add(&key, artifact, n);
        }
        Ok(())
    }
}

/// Keys per statement of a batch erasure.
const ERASE_KEYS: usize = 50;

/// Erases a batch of subjects, and the anonymous sessions linked to each, inside the erasure's
/// transaction: one statement per table per chunk of keys, every removed row counted to the
/// subject it belonged to (`RETURNING`), so a bulk erasure costs a few statements per chunk
/// instead of some twenty per subject.
async fn erase_batch_in_tx(
    tx: &mut Tx,
    erasures: &[Erasure],
    at: Micros,
    backend: Backend,
    writes: &crate::writer::GroupCommit,
) -> Result<Vec<ErasedCounts>> {
    let Some(first) = erasures.first() else {
        return Ok(Vec::new());
    };
    debug_assert!(
        erasures
            .iter()
            .all(|e| e.kept_purposes == first.kept_purposes
                && e.keep_consent_log == first.keep_consent_log)
    );
    let subjects: Vec<&str> = erasures.iter().map(|e| e.subject.as_str()).collect();
    let mut sessions: HashMap<String, Vec<String>> = HashMap::new();
    for chunk in subjects.chunks(ERASE_KEYS) {
        let sql = format!(
            "SELECT subject_key, anonymous_key FROM identity_links WHERE subject_key IN ({})",
            params_from(1, chunk.len())
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for s in chunk {
            q = q.bind((*s).to_owned());
        }
        for r in q.fetch_all(&mut **tx).await? {
            sessions
                .entry(r.try_get(0)?)
                .or_default()
                .push(r.try_get(1)?);
        }
    }
    // Every key to erase, and the erasure it belongs to.
    let mut owner: HashMap<String, usize> = HashMap::new();
    let mut keys_of: Vec<Vec<String>> = Vec::with_capacity(erasures.len());
    for (i, e) in erasures.iter().enumerate() {
        let mut keys = vec![e.subject.clone()];
        keys.extend(sessions.get(&e.subject).into_iter().flatten().cloned());
        for k in &keys {
            owner.entry(k.clone()).or_insert(i);
        }
        keys_of.push(keys);
    }
    let mut all_keys: Vec<&str> = owner.keys().map(String::as_str).collect();
    all_keys.sort_unstable();

    let suppress: Vec<(&str, &str)> = erasures
        .iter()
        .zip(&keys_of)
        .filter(|(e, _)| e.suppress)
        .flat_map(|(e, keys)| keys.iter().map(|k| (k.as_str(), e.request_id.as_str())))
        .collect();
    for chunk in suppress.chunks(ERASE_KEYS) {
        let rows: Vec<String> = (0..chunk.len())
            .map(|i| format!("(${}, ${}, ${})", 3 * i + 1, 3 * i + 2, 3 * i + 3))
            .collect();
        let sql = format!(
            "INSERT INTO suppressed_subjects (subject_key, at, request_id) VALUES {} \
             ON CONFLICT (subject_key) DO NOTHING",
            rows.join(",")
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for (k, request) in chunk {
            q = q.bind((*k).to_owned()).bind(at).bind((*request).to_owned());
        }
        q.execute(&mut **tx).await?;
    }

    const ERASED: [&str; 16] = [
        "events",
        "contact_fields",
        "protected_attributes",
        "preferences",
        "declared_interests",
        "quarantined_events",
        "queued_webhook_deliveries",
        "webhook_delivery_history",
        "decision_log_links",
        "identity_links",
        "feedback",
        "survey_answers",
        "data_key",
        "journey_positions",
        "journey_messages",
        "time_zone",
    ];
    let mut tally = Tally {
        owner: &owner,
        totals: vec![ERASED.iter().map(|a| (*a, 0)).collect(); erasures.len()],
    };
    let kept = &first.kept_purposes;
    for chunk in all_keys.chunks(ERASE_KEYS) {
        erase_events(tx, chunk, kept, backend, writes, &mut tally).await?;
        let list = params_from(1, chunk.len());
        for (artifact, sql) in [
            (
                "contact_fields",
                format!(
                    "DELETE FROM contact_fields WHERE subject_key IN ({list}) RETURNING subject_key"
                ),
            ),
            (
                "protected_attributes",
                format!(
                    "DELETE FROM protected_attributes WHERE subject_key IN ({list}) RETURNING subject_key"
                ),
            ),
            (
                "preferences",
                format!(
                    "DELETE FROM subject_preferences WHERE subject_key IN ({list}) RETURNING subject_key"
                ),
            ),
            (
                "declared_interests",
                format!(
                    "DELETE FROM declared_interests WHERE subject_key IN ({list}) RETURNING subject_key"
                ),
            ),
            (
                "quarantined_events",
                format!(
                    "DELETE FROM quarantined_events WHERE subject_key IN ({list}) RETURNING subject_key"
                ),
            ),
            (
                "queued_webhook_deliveries",
                format!(
                    "DELETE FROM webhook_deliveries WHERE subject_key IN ({list}) AND status = 'pending' RETURNING subject_key"
                ),
            ),
            (
                "webhook_delivery_history",
                format!(
                    "DELETE FROM webhook_deliveries WHERE subject_key IN ({list}) RETURNING subject_key"
                ),
            ),
            (
                "identity_links",
                format!(
                    "DELETE FROM identity_links WHERE subject_key IN ({list}) RETURNING subject_key"
                ),
            ),
            (
                "identity_links",
                format!(
                    "DELETE FROM identity_links WHERE anonymous_key IN ({list}) RETURNING anonymous_key"
                ),
            ),
            (
                "feedback",
                format!("DELETE FROM feedback WHERE subject_key IN ({list}) RETURNING subject_key"),
            ),
            (
                "survey_answers",
                format!(
                    "DELETE FROM survey_answers WHERE subject_key IN ({list}) RETURNING subject_key"
                ),
            ),
            (
                "data_key",
                format!(
                    "DELETE FROM subject_data_keys WHERE subject_key IN ({list}) RETURNING subject_key"
                ),
            ),
            (
                "journey_positions",
                format!(
                    "DELETE FROM journey_positions WHERE subject_key IN ({list}) RETURNING subject_key"
                ),
            ),
            (
                "journey_messages",
                format!(
                    "DELETE FROM journey_messages WHERE subject_key IN ({list}) RETURNING subject_key"
                ),
            ),
            (
                "time_zone",
                format!(
                    "DELETE FROM subject_time_zones WHERE subject_key IN ({list}) RETURNING subject_key"
                ),
            ),
        ] {
            tally.run(tx, artifact, sql, chunk, &[], false).await?;
        }
        // The decision log keeps its rows for aggregate audits, under no one's key.
        let grouped = |table: &str| {
            format!(
                "SELECT subject_key, COUNT(*) FROM {table} WHERE subject_key IN ({list}) GROUP BY subject_key"
            )
        };
        tally
            .run(
                tx,
                "decision_log_links",
                grouped("decisions"),
                chunk,
                &[],
                true,
            )
            .await?;
        let unlink =
            format!("UPDATE decisions SET subject_key = 'erased' WHERE subject_key IN ({list})");
        let mut q = sqlx::query(AssertSqlSafe(unlink));
        for k in chunk {
            q = q.bind((*k).to_owned());
        }
        q.execute(&mut **tx).await?;
        if first.keep_consent_log {
            tally
                .run(
                    tx,
                    "kept:consent_records",
                    grouped("consent_records"),
                    chunk,
                    &[],
                    true,
                )
                .await?;
        } else {
            let sql = format!(
                "DELETE FROM consent_records WHERE subject_key IN ({list}) RETURNING subject_key"
            );
            tally
                .run(tx, "consent_records", sql, chunk, &[], false)
                .await?;
        }
        tally
            .run(
                tx,
                "kept:rights_requests",
                grouped("rights_requests"),
                chunk,
                &[],
                true,
            )
            .await?;
        tally
            .run(
                tx,
                "kept:earlier_erasure_receipts",
                grouped("erasure_receipts"),
                chunk,
                &[],
                true,
            )
            .await?;
    }
    let webhooks: i64 = sqlx::query("SELECT COUNT(*) FROM webhooks WHERE active = 1")
        .fetch_one(&mut **tx)
        .await?
        .try_get(0)?;
    if webhooks > 0 {
        for e in erasures {
            crate::webhooks::enqueue_in_tx(tx, &e.event, at).await?;
        }
    }
    Ok(tally
        .totals
        .into_iter()
        .zip(keys_of)
        .zip(erasures)
        .map(|((totals, keys), e)| {
            let mut counts = ErasedCounts {
                sessions: keys.len() as i64 - 1,
                keys,
                ..Default::default()
            };
            let mut kept_events = 0;
            for (artifact, n) in totals {
                match artifact.strip_prefix("kept:") {
                    Some(what) => counts.kept.push((kept_name(what), n)),
                    None if artifact == "kept_events" => kept_events = n,
                    None => counts.erased.push((artifact, n)),
                }
            }
            if !e.keep_consent_log && !counts.erased.iter().any(|(a, _)| *a == "consent_records") {
                counts.erased.push(("consent_records", 0));
            }
            counts.kept.push(("legal_obligation_events", kept_events));
            for what in [
                "consent_records",
                "rights_requests",
                "earlier_erasure_receipts",
            ] {
                if (what != "consent_records" || e.keep_consent_log)
                    && !counts.kept.iter().any(|(a, _)| *a == what)
                {
                    counts.kept.push((kept_name(what), 0));
                }
            }
            counts
        })
        .collect())
}

fn kept_name(artifact: &str) -> &'static str {
    match artifact {
        "consent_records" => "consent_records",
        "rights_requests" => "rights_requests",
        "earlier_erasure_receipts" => "earlier_erasure_receipts",
        _ => "other",
    }
}
/// A condition's own parameter.
enum Param {
    None,
    Int(i64),
    Text(String),
}

/// Deletes a chunk of keys' events but those under kept purposes, and forgets their message
/// ids in the dedup window (a client may have built them from the person's id), counting each
/// removed (and each kept) event to its key. On SQLite the events are found through the subject
/// index, the writer's unindexed tail, and the ids above both (groups committed but not handed
/// to the tail yet, at most a few thousand).
async fn erase_events(
    tx: &mut Tx,
    keys: &[&str],
    kept: &[String],
    backend: Backend,
    writes: &crate::writer::GroupCommit,
    tally: &mut Tally<'_>,
) -> Result<()> {
    let n = keys.len();
    let list = params_from(1, n);
    let kept_from = n + 1;
    let own = kept_from + kept.len();
    // (condition, its own parameter after the keys and the kept purposes)
    let mut conditions: Vec<(String, Param)> = Vec::new();
    match backend {
        Backend::Postgres => conditions.push((format!("subject_key IN ({list})"), Param::None)),
        Backend::Sqlite => {
            conditions.push((
                format!(
                    "id IN (SELECT event_id FROM event_subjects WHERE subject_key IN ({list})) \
                     AND subject_key IN ({list})"
                ),
                Param::None,
            ));
            let tail: Vec<i64> = keys.iter().flat_map(|k| writes.unindexed_ids(k)).collect();
            if !tail.is_empty() {
                conditions.push((
                    format!(
                        "subject_key IN ({list}) AND id IN (SELECT value FROM json_each(${own}))"
                    ),
                    Param::Text(serde_json::to_string(&tail).expect("ids serialize")),
                ));
            }
            let mark: i64 = sqlx::query("SELECT event_id FROM event_subjects_through WHERE id = 1")
                .fetch_one(&mut **tx)
                .await?
                .try_get(0)?;
            let above = writes.highest_unindexed_id().unwrap_or(mark).max(mark);
            conditions.push((
                format!("id > ${own} AND subject_key IN ({list})"),
                Param::Int(above),
            ));
        }
    }
    let not_kept = not_kept(kept, kept_from);
    let bind = |sql: String, param: &Param| {
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for k in keys {
            q = q.bind((*k).to_owned());
        }
        for p in kept {
            q = q.bind(p.clone());
        }
        match param {
            Param::None => q,
            Param::Int(n) => q.bind(*n),
            Param::Text(t) => q.bind(t.clone()),
        }
    };
    for (condition, param) in &conditions {
        let which = format!("{condition}{not_kept}");
        bind(
            format!(
                "DELETE FROM messages_seen WHERE message_id IN \
                 (SELECT message_id FROM events WHERE {which} AND message_id IS NOT NULL)"
            ),
            param,
        )
        .execute(&mut **tx)
        .await?;
        let q = bind(
            format!("DELETE FROM events WHERE {which} RETURNING subject_key"),
            param,
        );
        for row in q.fetch_all(&mut **tx).await? {
            tally.add(&row.try_get::<String, _>(0)?, "events", 1);
        }
    }
    if backend == Backend::Sqlite {
        let sql = format!(
            "DELETE FROM event_subjects WHERE subject_key IN ({list}) AND NOT EXISTS \
             (SELECT 1 FROM events e WHERE e.id = event_subjects.event_id AND e.subject_key = event_subjects.subject_key)"
        );
        bind(sql, &Param::None).execute(&mut **tx).await?;
    }
    if !kept.is_empty() {
        let sql = format!(
            "SELECT subject_key, COUNT(*) FROM events WHERE {} GROUP BY subject_key",
            conditions[0].0
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for k in keys {
            q = q.bind((*k).to_owned());
        }
        for row in q.fetch_all(&mut **tx).await? {
            tally.add(
                &row.try_get::<String, _>(0)?,
                "kept_events",
                row.try_get(1)?,
            );
        }
    }
    Ok(())
}
