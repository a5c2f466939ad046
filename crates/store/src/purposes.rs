//! Purposes and their version history.

use candor_domain::{AuditDraft, AuditEntry, LegalBasis, Micros, Purpose};
use sqlx::Row;

use crate::{Result, Store, StoreError};

fn decode(body: &str) -> Result<Purpose> {
    serde_json::from_str(body).map_err(|e| StoreError::Corrupt(format!("purpose body: {e}")))
}

fn encode(p: &Purpose) -> String {
    serde_json::to_string(p).expect("a purpose always serializes")
}

/// Subjects per `consent.needs_renewal` webhook: one delivery per batch keeps payloads small
/// and a large shop's renewal from becoming one giant request.
pub const RENEWAL_BATCH: usize = 500;

/// After a material change of `p`: every subject whose latest decision for it is a grant (given
/// for an older version) now needs to renew. Tells the webhooks, in batches, inside the change's
/// transaction, so the announcement commits exactly with the change.
async fn announce_renewals(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    p: &Purpose,
    at: Micros,
) -> Result<()> {
    let rows = sqlx::query(
        "SELECT r.subject_key, r.policy_version FROM consent_records r \
         WHERE r.purpose_id = $1 AND r.decision = 'granted' AND r.policy_version < $2 \
         AND r.seq = (SELECT MAX(l.seq) FROM consent_records l \
                      WHERE l.subject_key = r.subject_key AND l.purpose_id = r.purpose_id) \
         ORDER BY r.subject_key",
    )
    .bind(p.id.as_str())
    .bind(i64::from(p.version))
    .fetch_all(&mut **tx)
    .await?;
    let subjects: Vec<(String, i64)> = rows
        .iter()
        .map(|r| Ok((r.try_get("subject_key")?, r.try_get("policy_version")?)))
        .collect::<Result<_>>()?;
    for (n, batch) in subjects.chunks(RENEWAL_BATCH).enumerate() {
        let id = format!("evt_renewal_{}_v{}_{n}", p.id, p.version);
        let payload = serde_json::json!({
            "id": id,
            "type": "consent.needs_renewal",
            "created_at": candor_domain::format_micros(at),
            "purpose": p.id,
            "current_version": p.version,
            "change_note": p.change_note,
            "batch": n,
            "batches": subjects.len().div_ceil(RENEWAL_BATCH),
            "subjects": batch
                .iter()
                .map(|(key, version)| serde_json::json!({"subject_key": key, "consented_version": version}))
                .collect::<Vec<_>>(),
        });
        let event = crate::webhooks::OutboxEvent {
            id,
            event_type: "consent.needs_renewal".into(),
            payload: payload.to_string(),
            // A batch names many subjects: external ids are only sent one subject at a time.
            sealed_external_id: None,
            subject_key: None,
        };
        crate::webhooks::enqueue_in_tx(tx, &event, at).await?;
    }
    Ok(())
}

async fn record_history(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    p: &Purpose,
    material: bool,
    body: &str,
    at: Micros,
) -> Result<()> {
    sqlx::query("INSERT INTO purpose_history (purpose_id, version, material, body, at) VALUES ($1, $2, $3, $4, $5)")
        .bind(p.id.as_str())
        .bind(i64::from(p.version))
        .bind(crate::bool_to_db(material))
        .bind(body)
        .bind(at)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

impl Store {
    pub async fn list_purposes(&self) -> Result<Vec<Purpose>> {
        let rows = sqlx::query("SELECT body FROM purposes ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| decode(&r.try_get::<String, _>("body")?))
            .collect()
    }

    pub async fn get_purpose(&self, id: &str) -> Result<Option<Purpose>> {
        let row = sqlx::query("SELECT body FROM purposes WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| decode(&r.try_get::<String, _>("body")?))
            .transpose()
    }

    /// Creates a purpose; `Conflict` if the id is taken.
    pub async fn create_purpose(
        &self,
        p: &Purpose,
        at: Micros,
        audit: &AuditDraft,
    ) -> Result<AuditEntry> {
        self.purpose_change(at, p, audit, |tx, p| {
                    Box::pin(async move {
                        let exists = sqlx::query("SELECT id FROM purposes WHERE id = $1")
                            .bind(p.id.as_str())
                            .fetch_optional(&mut **tx)
                            .await?;
                        if exists.is_some() {
                            return Err(StoreError::Conflict {
                                what: "purpose",
                                id: p.id.to_string(),
                            });
                        }
                        let body = encode(p);
                        sqlx::query("INSERT INTO purposes (id, body, version, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)")
                            .bind(p.id.as_str())
                            .bind(&body)
                            .bind(i64::from(p.version))
                            .bind(at)
                            .execute(&mut **tx)
                            .await?;
                        record_history(tx, p, true, &body, at).await
                    })
                })
        .await
    }

    /// Replaces a purpose with its revision, keeping the old text in the history.
    pub async fn update_purpose(
        &self,
        p: &Purpose,
        material: bool,
        at: Micros,
        audit: &AuditDraft,
    ) -> Result<AuditEntry> {
        self.purpose_change(at, p, audit, |tx, p| {
            Box::pin(async move {
                let body = encode(p);
                let done = sqlx::query(
                    "UPDATE purposes SET body = $1, version = $2, updated_at = $3 WHERE id = $4",
                )
                .bind(&body)
                .bind(i64::from(p.version))
                .bind(at)
                .bind(p.id.as_str())
                .execute(&mut **tx)
                .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound {
                        what: "purpose",
                        id: p.id.to_string(),
                    });
                }
                record_history(tx, p, material, &body, at).await?;
                if material && p.legal_basis == LegalBasis::Consent {
                    announce_renewals(tx, p, at).await?;
                }
                Ok(())
            })
        })
        .await
    }

    /// A change of `p`, audited and announced to other nodes (they reload their purposes).
    async fn purpose_change(
        &self,
        at: Micros,
        p: &Purpose,
        audit: &AuditDraft,
        change: impl for<'t> FnOnce(&'t mut crate::audit::Tx, &'t Purpose) -> crate::audit::Body<'t, ()>,
    ) -> Result<AuditEntry> {
        let ((), entry) = self
            .audited(at, p, change, |_| audit, &["purposes".to_owned()])
            .await?;
        Ok(entry)
    }

    /// Every stored revision of a purpose, oldest first: (version, material, purpose, at).
    pub async fn purpose_history(&self, id: &str) -> Result<Vec<(u32, bool, Purpose, Micros)>> {
        let rows = sqlx::query("SELECT version, material, body, at FROM purpose_history WHERE purpose_id = $1 ORDER BY seq")
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get::<i64, _>("version")? as u32,
                    r.try_get::<i64, _>("material")? != 0,
                    decode(&r.try_get::<String, _>("body")?)?,
                    r.try_get("at")?,
                ))
            })
            .collect()
    }
}
