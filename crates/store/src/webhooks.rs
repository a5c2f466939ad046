//! Webhook endpoints and their durable delivery outbox.
//!
//! Invariant: a delivery row is written in the same transaction as the change it announces, so a
//! committed change is always announced (at least once) and an aborted one never is.

use candor_domain::{AuditDraft, Micros};
use sqlx::{Any, AssertSqlSafe, Row, Transaction};

use crate::{Result, Store, StoreError, bool_to_db};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub id: String,
    pub url: String,
    pub secret: String,
    pub active: bool,
    pub created_at: Micros,
    /// Deliveries carry the subject's external id, so the receiver can map the change to its
    /// own user (it is kept sealed until the moment of delivery).
    pub include_external_id: bool,
    /// What it receives: `changes` (consent and subject changes) or `messages` (journey
    /// messages for the team's sender).
    pub kind: String,
}

/// Which webhooks receive an event: journey messages (`message.*`) go to `messages` webhooks
/// only, audience syncs (`audience.*`) to `audiences` webhooks, everything else to `changes` webhooks, so a sender never gets consent changes and a
/// CRM never gets messages to send.
fn webhook_kind(event_type: &str) -> &'static str {
    if event_type.starts_with("message.") {
        "messages"
    } else if event_type.starts_with("audience.") {
        "audiences"
    } else {
        "changes"
    }
}

/// An event to announce to every active webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEvent {
    pub id: String,
    pub event_type: String,
    pub payload: String,
    /// The subject's external id sealed with their data key, for webhooks that include it.
    pub sealed_external_id: Option<String>,
    /// The one subject the event is about, if it is about one (erasure cancels its queued
    /// deliveries; export lists them).
    pub subject_key: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: i64,
    pub webhook_id: String,
    pub url: String,
    pub secret: String,
    pub event_id: String,
    pub event_type: String,
    pub payload: String,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: Micros,
    pub last_status_code: Option<i64>,
    pub last_error: Option<String>,
    /// For webhooks that include it: the subject's external id, sealed with their data key.
    pub sealed_external_id: Option<String>,
}

/// What happened on one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Delivered {
        status_code: i64,
    },
    Retry {
        status_code: Option<i64>,
        error: String,
        next_attempt_at: Micros,
    },
    GaveUp {
        status_code: Option<i64>,
        error: String,
    },
}

pub(crate) async fn enqueue_in_tx(
    tx: &mut Transaction<'_, Any>,
    event: &OutboxEvent,
    at: Micros,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO webhook_deliveries (webhook_id, event_id, event_type, payload, status, attempts, next_attempt_at, created_at, updated_at, sealed_external_id, subject_key) \
         SELECT id, $1, $2, $3, 'pending', 0, $4, $4, $4, CASE WHEN include_external_id = 1 THEN $5 ELSE NULL END, $6 FROM webhooks WHERE active = 1 AND kind = $7",
    )
    .bind(&event.id)
    .bind(&event.event_type)
    .bind(&event.payload)
    .bind(at)
    .bind(event.sealed_external_id.as_deref())
    .bind(event.subject_key.as_deref())
    .bind(webhook_kind(&event.event_type))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

const DELIVERY_COLUMNS: &str = "d.id, d.webhook_id, w.url, w.secret, d.event_id, d.event_type, d.payload, d.status, d.attempts, d.next_attempt_at, d.last_status_code, d.last_error, d.sealed_external_id";

fn decode_delivery(r: &sqlx::any::AnyRow) -> Result<Delivery> {
    Ok(Delivery {
        id: r.try_get("id")?,
        webhook_id: r.try_get("webhook_id")?,
        url: r.try_get("url")?,
        secret: r.try_get("secret")?,
        event_id: r.try_get("event_id")?,
        event_type: r.try_get("event_type")?,
        payload: r.try_get("payload")?,
        status: r.try_get("status")?,
        attempts: r.try_get("attempts")?,
        next_attempt_at: r.try_get("next_attempt_at")?,
        last_status_code: r.try_get("last_status_code")?,
        last_error: r.try_get("last_error")?,
        sealed_external_id: r.try_get("sealed_external_id")?,
    })
}

impl Store {
    pub async fn create_webhook(&self, hook: &Webhook, audit: &AuditDraft) -> Result<()> {
        let insert = sqlx::query(
            "INSERT INTO webhooks (id, url, secret, active, created_at, include_external_id, kind) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&hook.id)
        .bind(&hook.url)
        .bind(&hook.secret)
        .bind(bool_to_db(hook.active))
        .bind(hook.created_at)
        .bind(bool_to_db(hook.include_external_id))
        .bind(&hook.kind);
        self.audited_statement(
            hook.created_at,
            insert,
            None,
            audit,
            &["webhooks".to_owned()],
        )
        .await
    }

    pub async fn list_webhooks(&self) -> Result<Vec<Webhook>> {
        let rows = sqlx::query(
            "SELECT id, url, secret, active, created_at, include_external_id, kind FROM webhooks ORDER BY created_at, id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Webhook {
                    id: r.try_get("id")?,
                    url: r.try_get("url")?,
                    secret: r.try_get("secret")?,
                    active: r.try_get::<i64, _>("active")? != 0,
                    created_at: r.try_get("created_at")?,
                    include_external_id: r.try_get::<i64, _>("include_external_id")? != 0,
                    kind: r.try_get("kind")?,
                })
            })
            .collect()
    }

    /// Deactivates a webhook (its delivery log is kept).
    pub async fn deactivate_webhook(&self, id: &str, at: Micros, audit: &AuditDraft) -> Result<()> {
        self.audited(
            at,
            id,
            |tx, id| {
                Box::pin(async move {
                    let done =
                        sqlx::query("UPDATE webhooks SET active = 0 WHERE id = $1 AND active = 1")
                            .bind(id)
                            .execute(&mut **tx)
                            .await?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::NotFound {
                            what: "active webhook",
                            id: id.to_owned(),
                        });
                    }
                    sqlx::query("UPDATE webhook_deliveries SET status = 'cancelled', updated_at = $1 WHERE webhook_id = $2 AND status = 'pending'")
                        .bind(at)
                        .bind(id)
                        .execute(&mut **tx)
                        .await?;
                    Ok(())
                })
            },
            |_| audit,
            &["webhooks".to_owned()],
        )
        .await?;
        Ok(())
    }

    /// Pending deliveries whose time has come, oldest first.
    pub async fn due_deliveries(&self, now: Micros, limit: i64) -> Result<Vec<Delivery>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id \
             WHERE d.status = 'pending' AND d.next_attempt_at <= $1 ORDER BY d.next_attempt_at, d.id LIMIT $2"
        )))
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decode_delivery).collect()
    }

    /// The delivery log of one webhook, newest first.
    pub async fn webhook_deliveries(&self, webhook_id: &str, limit: i64) -> Result<Vec<Delivery>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id \
             WHERE d.webhook_id = $1 ORDER BY d.id DESC LIMIT $2"
        )))
        .bind(webhook_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decode_delivery).collect()
    }

    /// Records an attempt. Only a still-pending delivery is updated, so two nodes racing on the
    /// same row cannot both mark it.
    pub async fn record_delivery(
        &self,
        id: i64,
        outcome: &DeliveryOutcome,
        now: Micros,
    ) -> Result<bool> {
        let (status, code, error, next) = match outcome {
            DeliveryOutcome::Delivered { status_code } => {
                ("delivered", Some(*status_code), None, now)
            }
            DeliveryOutcome::Retry {
                status_code,
                error,
                next_attempt_at,
            } => (
                "pending",
                *status_code,
                Some(error.as_str()),
                *next_attempt_at,
            ),
            DeliveryOutcome::GaveUp { status_code, error } => {
                ("failed", *status_code, Some(error.as_str()), now)
            }
        };
        let done = sqlx::query(
            "UPDATE webhook_deliveries SET status = $1, attempts = attempts + 1, last_status_code = $2, last_error = $3, next_attempt_at = $4, updated_at = $5 \
             WHERE id = $6 AND status = 'pending'",
        )
        .bind(status)
        .bind(code)
        .bind(error)
        .bind(next)
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
