//! Alert rules and alerts as stored.
//!
//! Invariants: every change to rules or alerts is audited and announced (`alerts`), so every
//! node reloads its scale-backs when it commits; an alert is cleared at most once (a
//! conditional update in the transaction of its audit entry).

use candor_domain::{AuditDraft, Micros};
use sqlx::{AssertSqlSafe, Row};

use crate::webhooks::{OutboxEvent, enqueue_in_tx};
use crate::{Result, Store, StoreError};

#[derive(Debug, Clone, PartialEq)]
pub struct AlertRow {
    pub id: String,
    pub metric: String,
    /// `surface:<name>`.
    pub dimension: String,
    /// `active` or `cleared`.
    pub state: String,
    /// The level personalization is capped at while active (`basic`, `off`), if it scales back.
    pub cap: Option<String>,
    pub fired_at: Micros,
    pub updated_at: Micros,
    pub observed: f64,
    pub expected: f64,
    pub sample: i64,
    /// The day and that day's counts when the last step was taken: an escalation needs new
    /// answers since.
    pub step_day: Micros,
    pub step_answers: i64,
    pub step_events: i64,
    pub cleared_by: Option<String>,
    pub cleared_at: Option<Micros>,
    pub reason: Option<String>,
}

const COLUMNS: &str = "id, metric, dimension, state, cap, fired_at, updated_at, observed, expected, sample, step_day, step_answers, step_events, cleared_by, cleared_at, reason";

fn decode(r: &sqlx::any::AnyRow) -> Result<AlertRow> {
    Ok(AlertRow {
        id: r.try_get("id")?,
        metric: r.try_get("metric")?,
        dimension: r.try_get("dimension")?,
        state: r.try_get("state")?,
        cap: r.try_get("cap")?,
        fired_at: r.try_get("fired_at")?,
        updated_at: r.try_get("updated_at")?,
        observed: r.try_get("observed")?,
        expected: r.try_get("expected")?,
        sample: r.try_get("sample")?,
        step_day: r.try_get("step_day")?,
        step_answers: r.try_get("step_answers")?,
        step_events: r.try_get("step_events")?,
        cleared_by: r.try_get("cleared_by")?,
        cleared_at: r.try_get("cleared_at")?,
        reason: r.try_get("reason")?,
    })
}

const NOTICE: &str = "alerts";

impl Store {
    /// Replaces every alert rule (JSON bodies, in order), audited.
    pub async fn set_alert_rules(
        &self,
        bodies: &[String],
        at: Micros,
        audit: &AuditDraft,
    ) -> Result<()> {
        self.audited(
            at,
            bodies,
            |tx, bodies| {
                Box::pin(async move {
                    sqlx::query("DELETE FROM alert_rules")
                        .execute(&mut **tx)
                        .await?;
                    for (i, body) in bodies.iter().enumerate() {
                        sqlx::query(
                            "INSERT INTO alert_rules (position, body, updated_at) VALUES ($1, $2, $3)",
                        )
                        .bind(i as i64)
                        .bind(body)
                        .bind(at)
                        .execute(&mut **tx)
                        .await?;
                    }
                    Ok(())
                })
            },
            |_| audit,
            &[NOTICE.to_owned()],
        )
        .await?;
        Ok(())
    }

    pub async fn alert_rules(&self) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT body FROM alert_rules ORDER BY position")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| r.try_get("body").map_err(StoreError::from))
            .collect()
    }

    /// Inserts a new alert or replaces an active one's step (escalation), audited, with its
    /// `alert.fired` event queued for every webhook in the same transaction.
    pub async fn raise_alert(
        &self,
        alert: &AlertRow,
        audit: &AuditDraft,
        event: &OutboxEvent,
    ) -> Result<()> {
        self.audited(
            alert.updated_at,
            &(alert, event),
            |tx, (a, event)| {
                Box::pin(async move {
                    sqlx::query(AssertSqlSafe(format!(
                        "INSERT INTO alerts ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, NULL, NULL, NULL) \
                         ON CONFLICT (id) DO UPDATE SET cap = excluded.cap, updated_at = excluded.updated_at, \
                         observed = excluded.observed, expected = excluded.expected, sample = excluded.sample, \
                         step_day = excluded.step_day, step_answers = excluded.step_answers, step_events = excluded.step_events"
                    )))
                    .bind(&a.id)
                    .bind(&a.metric)
                    .bind(&a.dimension)
                    .bind(&a.state)
                    .bind(a.cap.as_deref())
                    .bind(a.fired_at)
                    .bind(a.updated_at)
                    .bind(a.observed)
                    .bind(a.expected)
                    .bind(a.sample)
                    .bind(a.step_day)
                    .bind(a.step_answers)
                    .bind(a.step_events)
                    .execute(&mut **tx)
                    .await?;
                    enqueue_in_tx(tx, event, a.updated_at).await
                })
            },
            |_| audit,
            &[NOTICE.to_owned()],
        )
        .await?;
        Ok(())
    }

    /// Clears an active alert, audited. `Conflict` when it is not active.
    pub async fn clear_alert(
        &self,
        id: &str,
        actor: &str,
        reason: &str,
        at: Micros,
        audit: &AuditDraft,
    ) -> Result<()> {
        let update = sqlx::query(
            "UPDATE alerts SET state = 'cleared', cleared_by = $2, cleared_at = $3, reason = $4, updated_at = $3 \
             WHERE id = $1 AND state = 'active'",
        )
        .bind(id.to_owned())
        .bind(actor.to_owned())
        .bind(at)
        .bind(reason.to_owned());
        match self
            .audited_statement(
                at,
                update,
                Some(("active alert", id)),
                audit,
                &[NOTICE.to_owned()],
            )
            .await
        {
            Err(StoreError::NotFound { .. }) => Err(StoreError::Conflict {
                what: "clearing of alert (not active)",
                id: id.to_owned(),
            }),
            other => other,
        }
    }

    /// Alerts newest first: all, or those in `state`.
    pub async fn alerts(&self, state: Option<&str>, limit: i64) -> Result<Vec<AlertRow>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM alerts WHERE ($1 = '' OR state = $1) ORDER BY fired_at DESC, id LIMIT $2"
        )))
        .bind(state.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decode).collect()
    }

    pub async fn alert(&self, id: &str) -> Result<Option<AlertRow>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM alerts WHERE id = $1"
        )))
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.first().map(decode).transpose()
    }
}
