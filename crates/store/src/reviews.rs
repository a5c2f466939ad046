//! The human review queue as stored.
//!
//! Invariant: an item moves out of `pending` at most once. The decision is one conditional
//! update (`WHERE state = 'pending'`) in the transaction of its audit entry, so two reviewers
//! deciding at once (on one node or two) cannot both succeed.

use candor_domain::{AuditDraft, Micros};
use sqlx::{AssertSqlSafe, Row};

use crate::webhooks::{OutboxEvent, enqueue_in_tx};
use crate::{Result, Store, StoreError};

/// A decision to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewDecision {
    pub id: String,
    pub state: String,
    pub actor: String,
    pub reason: String,
    pub at: Micros,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewRow {
    pub id: String,
    pub kind: String,
    /// What the held action acts on (a model version).
    pub target: String,
    pub requested_by: String,
    pub requested_at: Micros,
    /// JSON: what a reviewer sees (explanation, figures, fairness, diff).
    pub card: String,
    pub state: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<Micros>,
    pub reason: Option<String>,
}

const COLUMNS: &str =
    "id, kind, target, requested_by, requested_at, card, state, decided_by, decided_at, reason";

fn decode(r: &sqlx::any::AnyRow) -> Result<ReviewRow> {
    Ok(ReviewRow {
        id: r.try_get("id")?,
        kind: r.try_get("kind")?,
        target: r.try_get("target")?,
        requested_by: r.try_get("requested_by")?,
        requested_at: r.try_get("requested_at")?,
        card: r.try_get("card")?,
        state: r.try_get("state")?,
        decided_by: r.try_get("decided_by")?,
        decided_at: r.try_get("decided_at")?,
        reason: r.try_get("reason")?,
    })
}

impl Store {
    /// Queues an item, audited.
    pub async fn create_review(&self, r: &ReviewRow, audit: &AuditDraft) -> Result<()> {
        let insert = sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO reviews ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        )))
        .bind(&r.id)
        .bind(&r.kind)
        .bind(&r.target)
        .bind(&r.requested_by)
        .bind(r.requested_at)
        .bind(&r.card)
        .bind(&r.state)
        .bind(r.decided_by.as_deref())
        .bind(r.decided_at)
        .bind(r.reason.as_deref());
        self.audited_statement(r.requested_at, insert, None, audit, &[])
            .await
    }

    /// Moves a pending item to `decision.state`, audited, with `event` (if any) queued for
    /// every webhook in the same transaction. `Conflict` when it was decided meanwhile.
    pub async fn decide_review(
        &self,
        decision: &ReviewDecision,
        audit: &AuditDraft,
        event: Option<&OutboxEvent>,
    ) -> Result<()> {
        self.audited(
            decision.at,
            &(decision, event),
            |tx, (d, event)| {
                Box::pin(async move {
                    let done = sqlx::query(
                        "UPDATE reviews SET state = $2, decided_by = $3, decided_at = $4, reason = $5 \
                         WHERE id = $1 AND state = 'pending'",
                    )
                    .bind(&d.id)
                    .bind(&d.state)
                    .bind(&d.actor)
                    .bind(d.at)
                    .bind(&d.reason)
                    .execute(&mut **tx)
                    .await?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::Conflict {
                            what: "decision on review",
                            id: d.id.clone(),
                        });
                    }
                    if let Some(event) = event {
                        enqueue_in_tx(tx, event, d.at).await?;
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

    pub async fn review(&self, id: &str) -> Result<Option<ReviewRow>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM reviews WHERE id = $1"
        )))
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.first().map(decode).transpose()
    }

    /// Items newest first: all, or those in `state`; optionally only of `kind` and `target`.
    pub async fn reviews(
        &self,
        state: Option<&str>,
        kind_target: Option<(&str, &str)>,
        limit: i64,
    ) -> Result<Vec<ReviewRow>> {
        let (kind, target) = kind_target.unwrap_or(("", ""));
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM reviews WHERE ($1 = '' OR state = $1) \
             AND ($2 = '' OR (kind = $2 AND target = $3)) \
             ORDER BY requested_at DESC, id LIMIT $4"
        )))
        .bind(state.unwrap_or(""))
        .bind(kind)
        .bind(target)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decode).collect()
    }
}
