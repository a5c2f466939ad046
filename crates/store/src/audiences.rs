//! Advertising audiences: the members each segment's last export sent, as hashed contacts.
//!
//! Invariants: an export's new member list, its audit entry (with counts included and
//! excluded by reason) and its `audience.sync` outbox rows commit together, so the removal
//! delta of the next export is computed against exactly what was sent. Only SHA-256 hashes of
//! normalized contacts are kept, never the contacts.

use candor_domain::{AuditDraft, Micros};
use sqlx::Row;

use crate::webhooks::{OutboxEvent, enqueue_in_tx};
use crate::{Result, Store};

/// One member as an export sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudienceMember {
    pub subject_key: String,
    pub email_sha256: Option<String>,
    pub phone_sha256: Option<String>,
}

impl Store {
    /// Subjects holding an email or phone contact value, in key order after `after`.
    pub async fn contact_subjects(&self, after: &str, limit: i64) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT DISTINCT subject_key FROM contact_fields WHERE field IN ('email', 'phone') AND subject_key > $1 \
             ORDER BY subject_key LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| r.try_get("subject_key").map_err(Into::into))
            .collect()
    }

    /// What the segment's last export sent.
    pub async fn audience_members(&self, segment: &str) -> Result<Vec<AudienceMember>> {
        let rows = sqlx::query(
            "SELECT subject_key, email_sha256, phone_sha256 FROM audience_members WHERE segment_id = $1 ORDER BY subject_key",
        )
        .bind(segment)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AudienceMember {
                    subject_key: r.try_get("subject_key")?,
                    email_sha256: r.try_get("email_sha256")?,
                    phone_sha256: r.try_get("phone_sha256")?,
                })
            })
            .collect()
    }

    /// Replaces the segment's members with this export's, audited, with its outbox event.
    pub async fn record_audience_sync(
        &self,
        segment: &str,
        members: &[AudienceMember],
        at: Micros,
        audit: &AuditDraft,
        outbox: Option<&OutboxEvent>,
    ) -> Result<()> {
        self.audited(
            at,
            &(segment, members, outbox),
            |tx, (segment, members, outbox)| {
                Box::pin(async move {
                    sqlx::query("DELETE FROM audience_members WHERE segment_id = $1")
                        .bind(*segment)
                        .execute(&mut **tx)
                        .await?;
                    for m in members.iter() {
                        sqlx::query(
                            "INSERT INTO audience_members (segment_id, subject_key, email_sha256, phone_sha256, synced_at) VALUES ($1, $2, $3, $4, $5)",
                        )
                        .bind(*segment)
                        .bind(&m.subject_key)
                        .bind(m.email_sha256.as_deref())
                        .bind(m.phone_sha256.as_deref())
                        .bind(at)
                        .execute(&mut **tx)
                        .await?;
                    }
                    if let Some(event) = outbox {
                        enqueue_in_tx(tx, event, at).await?;
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
}
