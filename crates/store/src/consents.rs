//! The append-only consent log.

use candor_domain::{
    AuditDraft, ConsentDecision, ConsentProof, ConsentRecord, ConsentSource, Micros, NewConsent,
    PurposeId, SubjectKey,
};
use sqlx::{AssertSqlSafe, Row};

use crate::webhooks::OutboxEvent;
use crate::{Result, Store, StoreError, audit};

fn decode(r: &sqlx::any::AnyRow) -> Result<ConsentRecord> {
    let corrupt =
        |e: candor_domain::DomainError| StoreError::Corrupt(format!("consent record: {e}"));
    Ok(ConsentRecord {
        seq: r.try_get("seq")?,
        subject: SubjectKey::parse(&r.try_get::<String, _>("subject_key")?).map_err(corrupt)?,
        purpose: PurposeId::parse(&r.try_get::<String, _>("purpose_id")?).map_err(corrupt)?,
        decision: ConsentDecision::parse(&r.try_get::<String, _>("decision")?).map_err(corrupt)?,
        at: r.try_get("at")?,
        source: ConsentSource::parse(&r.try_get::<String, _>("source")?).map_err(corrupt)?,
        policy_version: r.try_get::<i64, _>("policy_version")? as u32,
        proof: ConsentProof {
            ip_hash: r.try_get("ip_hash")?,
            user_agent: r.try_get("user_agent")?,
            double_opt_in_token: r.try_get("double_opt_in_token")?,
        },
    })
}

const COLUMNS: &str = "seq, subject_key, purpose_id, decision, at, source, policy_version, ip_hash, user_agent, double_opt_in_token";

impl Store {
    /// Appends decisions for one subject atomically with their audit entry, the webhook outbox
    /// rows, and the cross-node notification. Returns the stored records in order.
    pub async fn append_consents(
        &self,
        subject: &SubjectKey,
        records: &[NewConsent],
        at: Micros,
        audit: &AuditDraft,
        event: Option<&OutboxEvent>,
    ) -> Result<Vec<ConsentRecord>> {
        let mut tx = self.pool.begin().await?;
        let mut stored = Vec::with_capacity(records.len());
        for c in records {
            debug_assert_eq!(&c.subject, subject);
            let row = sqlx::query(
                "INSERT INTO consent_records (subject_key, purpose_id, decision, at, source, policy_version, ip_hash, user_agent, double_opt_in_token) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING seq",
            )
            .bind(c.subject.as_str())
            .bind(c.purpose.as_str())
            .bind(c.decision.as_str())
            .bind(c.at)
            .bind(c.source.as_str())
            .bind(i64::from(c.policy_version))
            .bind(c.proof.ip_hash.as_deref())
            .bind(c.proof.user_agent.as_deref())
            .bind(c.proof.double_opt_in_token.as_deref())
            .fetch_one(&mut *tx)
            .await?;
            stored.push(ConsentRecord {
                seq: row.try_get("seq")?,
                subject: c.subject.clone(),
                purpose: c.purpose.clone(),
                decision: c.decision,
                at: c.at,
                source: c.source,
                policy_version: c.policy_version,
                proof: c.proof.clone(),
            });
        }
        audit::append_in_tx(&mut tx, at, audit).await?;
        if let Some(event) = event {
            crate::webhooks::enqueue_in_tx(&mut tx, event, at).await?;
        }
        self.notify(&mut tx, &format!("consent:{subject}")).await?;
        tx.commit().await?;
        Ok(stored)
    }

    /// The whole consent history of one subject, oldest first.
    pub async fn consent_history(&self, subject: &SubjectKey) -> Result<Vec<ConsentRecord>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM consent_records WHERE subject_key = $1 ORDER BY seq"
        )))
        .bind(subject.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decode).collect()
    }

    /// Number of consent records per (purpose, decision) among the latest decisions, for KPIs.
    pub async fn consent_record_count(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM consent_records")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }
}
