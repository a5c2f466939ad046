//! Journeys: definitions, each subject's position, and the messages positions produce.
//!
//! Invariants:
//! - A subject enters a journey once (the position's key is (journey, subject)).
//! - A message row, the position's move past its step and the message's outbox deliveries
//!   commit in one transaction ([`Store::record_journey_step`]), and a message is keyed by
//!   (journey, subject, step, arrival time): a run repeated after a crash or on a restarted
//!   node finds the row it wrote and sends nothing twice. A deferred message may become sent
//!   once; a sent or suppressed one never changes but by its delivery's outcome.
//! - Frequency caps count queued and delivered messages only: a delivery that failed does not
//!   count against the person's caps.

use candor_domain::{AuditDraft, Micros};
use sqlx::Row;

use crate::webhooks::{OutboxEvent, enqueue_in_tx};
use crate::{Result, Store};

/// A stored journey definition (its JSON body as given, validated by the app).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JourneyRow {
    pub id: String,
    pub body: String,
    pub trigger_event: String,
    pub active: bool,
    pub created_at: Micros,
    pub updated_at: Micros,
}

/// Where a subject stands in a journey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub journey_id: String,
    pub subject_key: String,
    /// `None` until the entry conditions were checked.
    pub step: Option<String>,
    pub arrived_at: Micros,
    pub wake_at: Micros,
    /// `active`, `done` or `exited`.
    pub status: String,
    /// The external id, sealed with the subject's data key, for the sender.
    pub sealed_external_id: Option<String>,
}

/// A message as a journey step produced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JourneyMessage {
    pub id: String,
    pub journey_id: String,
    pub subject_key: String,
    pub step: String,
    pub arrived_at: Micros,
    pub channel: String,
    /// `queued`, `delivered`, `failed`, `deferred` or `suppressed`.
    pub status: String,
    /// Why it was suppressed or deferred.
    pub reason: Option<String>,
    /// Why it was sent, as JSON list of plain-language reasons.
    pub reasons: String,
    /// What of the person it used: none, declared or behaviour.
    pub uses: String,
    pub local_day: i64,
    pub expires_at: Micros,
    pub created_at: Micros,
    pub updated_at: Micros,
}

/// Where the position goes after a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PositionMove {
    pub step: Option<String>,
    pub arrived_at: Micros,
    pub wake_at: Micros,
    pub status: &'static str,
}

const POSITION_COLUMNS: &str =
    "journey_id, subject_key, step, arrived_at, wake_at, status, sealed_external_id";
const MESSAGE_COLUMNS: &str = "id, journey_id, subject_key, step, arrived_at, channel, status, reason, reasons, uses, local_day, expires_at, created_at, updated_at";

fn decode_position(r: &sqlx::any::AnyRow) -> Result<Position> {
    Ok(Position {
        journey_id: r.try_get("journey_id")?,
        subject_key: r.try_get("subject_key")?,
        step: r.try_get("step")?,
        arrived_at: r.try_get("arrived_at")?,
        wake_at: r.try_get("wake_at")?,
        status: r.try_get("status")?,
        sealed_external_id: r.try_get("sealed_external_id")?,
    })
}

fn decode_message(r: &sqlx::any::AnyRow) -> Result<JourneyMessage> {
    Ok(JourneyMessage {
        id: r.try_get("id")?,
        journey_id: r.try_get("journey_id")?,
        subject_key: r.try_get("subject_key")?,
        step: r.try_get("step")?,
        arrived_at: r.try_get("arrived_at")?,
        channel: r.try_get("channel")?,
        status: r.try_get("status")?,
        reason: r.try_get("reason")?,
        reasons: r.try_get("reasons")?,
        uses: r.try_get("uses")?,
        local_day: r.try_get("local_day")?,
        expires_at: r.try_get("expires_at")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

impl Store {
    /// Creates or replaces a journey definition, audited.
    pub async fn save_journey(&self, j: &JourneyRow, audit: &AuditDraft) -> Result<()> {
        let upsert = sqlx::query(
            "INSERT INTO journeys (id, body, trigger_event, active, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5) \
             ON CONFLICT (id) DO UPDATE SET body = excluded.body, trigger_event = excluded.trigger_event, active = excluded.active, updated_at = excluded.updated_at",
        )
        .bind(&j.id)
        .bind(&j.body)
        .bind(&j.trigger_event)
        .bind(crate::bool_to_db(j.active))
        .bind(j.updated_at);
        self.audited_statement(j.updated_at, upsert, None, audit, &["journeys".to_owned()])
            .await
    }

    pub async fn journeys(&self) -> Result<Vec<JourneyRow>> {
        let rows = sqlx::query(
            "SELECT id, body, trigger_event, active, created_at, updated_at FROM journeys ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(JourneyRow {
                    id: r.try_get("id")?,
                    body: r.try_get("body")?,
                    trigger_event: r.try_get("trigger_event")?,
                    active: r.try_get::<i64, _>("active")? != 0,
                    created_at: r.try_get("created_at")?,
                    updated_at: r.try_get("updated_at")?,
                })
            })
            .collect()
    }

    /// Enters subjects into journeys, each (journey, subject, sealed external id) at most
    /// once ever. Returns how many entered now.
    pub async fn enter_journeys(
        &self,
        entries: &[(String, String, Option<String>)],
        at: Micros,
    ) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        let mut entered = 0;
        for (journey, subject, sealed) in entries {
            entered += sqlx::query(
                "INSERT INTO journey_positions (journey_id, subject_key, step, arrived_at, wake_at, status, sealed_external_id, entered_at, updated_at) \
                 VALUES ($1, $2, NULL, $3, $3, 'active', $4, $3, $3) ON CONFLICT (journey_id, subject_key) DO NOTHING",
            )
            .bind(journey)
            .bind(subject)
            .bind(at)
            .bind(sealed.as_deref())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
        Ok(entered)
    }

    /// Takes subjects out of journeys they are active in (an exit event happened).
    pub async fn exit_journeys(&self, exits: &[(String, String)], at: Micros) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        let mut exited = 0;
        for (journey, subject) in exits {
            exited += sqlx::query(
                "UPDATE journey_positions SET status = 'exited', updated_at = $1 \
                 WHERE journey_id = $2 AND subject_key = $3 AND status = 'active'",
            )
            .bind(at)
            .bind(journey)
            .bind(subject)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
        Ok(exited)
    }

    /// Active positions whose time has come, oldest first.
    pub async fn due_positions(&self, now: Micros, limit: i64) -> Result<Vec<Position>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {POSITION_COLUMNS} FROM journey_positions WHERE status = 'active' AND wake_at <= $1 \
             ORDER BY wake_at, journey_id, subject_key LIMIT $2"
        )))
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decode_position).collect()
    }

    pub async fn position(&self, journey: &str, subject: &str) -> Result<Option<Position>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {POSITION_COLUMNS} FROM journey_positions WHERE journey_id = $1 AND subject_key = $2"
        )))
        .bind(journey)
        .bind(subject)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(decode_position).transpose()
    }

    /// Removes a position whose entry conditions did not hold, so a later trigger may enter
    /// the subject again.
    pub async fn drop_position(&self, journey: &str, subject: &str) -> Result<()> {
        sqlx::query(
            "DELETE FROM journey_positions WHERE journey_id = $1 AND subject_key = $2 AND step IS NULL",
        )
        .bind(journey)
        .bind(subject)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Moves a position (and, with a message, writes it and its outbox deliveries) in one
    /// transaction. Only the position as it was read moves (`from` = its step and arrival), so
    /// two runs racing on it cannot both move it. Returns whether it moved.
    pub async fn record_journey_step(
        &self,
        from: &Position,
        to: &PositionMove,
        message: Option<(&JourneyMessage, Option<&OutboxEvent>)>,
        now: Micros,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let moved = sqlx::query(
            "UPDATE journey_positions SET step = $1, arrived_at = $2, wake_at = $3, status = $4, updated_at = $5 \
             WHERE journey_id = $6 AND subject_key = $7 AND status = 'active' AND arrived_at = $8 \
             AND COALESCE(step, '') = $9",
        )
        .bind(to.step.as_deref())
        .bind(to.arrived_at)
        .bind(to.wake_at)
        .bind(to.status)
        .bind(now)
        .bind(&from.journey_id)
        .bind(&from.subject_key)
        .bind(from.arrived_at)
        .bind(from.step.as_deref().unwrap_or(""))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if moved == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        if let Some((m, outbox)) = message {
            // A deferred message may become queued or suppressed; nothing else is rewritten.
            let written = sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO journey_messages ({MESSAGE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13) \
                 ON CONFLICT (journey_id, subject_key, step, arrived_at) DO UPDATE SET status = excluded.status, reason = excluded.reason, \
                 reasons = excluded.reasons, uses = excluded.uses, local_day = excluded.local_day, updated_at = excluded.updated_at \
                 WHERE journey_messages.status = 'deferred'"
            )))
            .bind(&m.id)
            .bind(&m.journey_id)
            .bind(&m.subject_key)
            .bind(&m.step)
            .bind(m.arrived_at)
            .bind(&m.channel)
            .bind(&m.status)
            .bind(m.reason.as_deref())
            .bind(&m.reasons)
            .bind(&m.uses)
            .bind(m.local_day)
            .bind(m.expires_at)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if written == 1
                && let Some(event) = outbox
            {
                enqueue_in_tx(&mut tx, event, now).await?;
            }
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Messages queued or delivered to the subject on `local_day`: (on `channel`, on all).
    pub async fn messages_sent_on(
        &self,
        subject: &str,
        local_day: i64,
        channel: &str,
    ) -> Result<(u32, u32)> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS all_n, COALESCE(SUM(CASE WHEN channel = $3 THEN 1 ELSE 0 END), 0) AS channel_n \
             FROM journey_messages WHERE subject_key = $1 AND local_day = $2 AND status IN ('queued', 'delivered')",
        )
        .bind(subject)
        .bind(local_day)
        .bind(channel)
        .fetch_one(&self.pool)
        .await?;
        let n = |c: &str| -> Result<u32> {
            Ok(u32::try_from(row.try_get::<i64, _>(c)?).unwrap_or(u32::MAX))
        };
        Ok((n("channel_n")?, n("all_n")?))
    }

    /// Records what became of a message's delivery (its id is the outbox event id).
    pub async fn message_delivery_outcome(
        &self,
        id: &str,
        delivered: bool,
        at: Micros,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE journey_messages SET status = $1, updated_at = $2 WHERE id = $3 AND status IN ('queued', 'failed')",
        )
        .bind(if delivered { "delivered" } else { "failed" })
        .bind(at)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A journey's messages, newest first; of one subject when `subject` is given.
    pub async fn journey_messages(
        &self,
        journey: &str,
        subject: Option<&str>,
        limit: i64,
    ) -> Result<Vec<JourneyMessage>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {MESSAGE_COLUMNS} FROM journey_messages WHERE journey_id = $1 AND ($2 = '' OR subject_key = $2) \
             ORDER BY created_at DESC, id DESC LIMIT $3"
        )))
        .bind(journey)
        .bind(subject.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decode_message).collect()
    }

    pub async fn set_time_zone(&self, subject: &str, zone: &str, at: Micros) -> Result<()> {
        sqlx::query(
            "INSERT INTO subject_time_zones (subject_key, time_zone, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (subject_key) DO UPDATE SET time_zone = excluded.time_zone, updated_at = excluded.updated_at",
        )
        .bind(subject)
        .bind(zone)
        .bind(at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn time_zone(&self, subject: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT time_zone FROM subject_time_zones WHERE subject_key = $1")
            .bind(subject)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| r.try_get("time_zone"))
            .transpose()
            .map_err(Into::into)
    }

    /// A double opt-in confirmation waiting for its token, with the confirmation message's
    /// outbox event, in one transaction.
    pub async fn create_email_confirmation(
        &self,
        token_hash: &str,
        subject: &str,
        at: Micros,
        expires_at: Micros,
        outbox: &OutboxEvent,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO email_confirmations (token_hash, subject_key, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(token_hash)
        .bind(subject)
        .bind(at)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        enqueue_in_tx(&mut tx, outbox, at).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Marks a confirmation used and returns its subject, if the token is known, unused and
    /// not expired at `now`; a token confirms once.
    pub async fn use_email_confirmation(
        &self,
        token_hash: &str,
        now: Micros,
    ) -> Result<Option<String>> {
        let row = sqlx::query(
            "UPDATE email_confirmations SET confirmed_at = $1 WHERE token_hash = $2 AND confirmed_at IS NULL AND expires_at > $1 \
             RETURNING subject_key",
        )
        .bind(now)
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| r.try_get("subject_key"))
            .transpose()
            .map_err(Into::into)
    }

    /// Everything journeys hold on a subject (for their export): positions, messages, time
    /// zone.
    pub async fn subject_journeys(
        &self,
        subject: &str,
    ) -> Result<(Vec<Position>, Vec<JourneyMessage>, Option<String>)> {
        let positions = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {POSITION_COLUMNS} FROM journey_positions WHERE subject_key = $1 ORDER BY journey_id"
        )))
        .bind(subject)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(decode_position)
        .collect::<Result<Vec<_>>>()?;
        let messages = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {MESSAGE_COLUMNS} FROM journey_messages WHERE subject_key = $1 ORDER BY created_at, id"
        )))
        .bind(subject)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(decode_message)
        .collect::<Result<Vec<_>>>()?;
        Ok((positions, messages, self.time_zone(subject).await?))
    }
}
