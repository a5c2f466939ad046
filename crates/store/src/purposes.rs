//! Purposes and their version history.

use candor_domain::{AuditDraft, AuditEntry, Micros, Purpose};
use sqlx::Row;

use crate::{Result, Store, StoreError};

fn decode(body: &str) -> Result<Purpose> {
    serde_json::from_str(body).map_err(|e| StoreError::Corrupt(format!("purpose body: {e}")))
}

fn encode(p: &Purpose) -> String {
    serde_json::to_string(p).expect("a purpose always serializes")
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
        let ((), entry) = self
            .audited(
                at,
                p,
                |tx, p| {
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
                },
                |_| audit,
                &["purposes".to_owned()],
            )
            .await?;
        Ok(entry)
    }

    /// Replaces a purpose with its revision, keeping the old text in the history.
    pub async fn update_purpose(
        &self,
        p: &Purpose,
        material: bool,
        at: Micros,
        audit: &AuditDraft,
    ) -> Result<AuditEntry> {
        let ((), entry) = self
            .audited(
                at,
                p,
                |tx, p| {
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
                        record_history(tx, p, material, &body, at).await
                    })
                },
                |_| audit,
                &["purposes".to_owned()],
            )
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
