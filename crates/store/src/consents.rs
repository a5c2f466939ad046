//! The append-only consent log.

use candor_domain::{
    AuditDraft, ConsentDecision, ConsentProof, ConsentRecord, ConsentSource, Micros, NewConsent,
    PurposeId, SubjectKey,
};
use sqlx::{Any, AssertSqlSafe, Row, Transaction};

use crate::webhooks::OutboxEvent;
use crate::{Backend, Result, Store, StoreError};

fn decode(r: &sqlx::any::AnyRow) -> Result<ConsentRecord> {
    let corrupt =
        |e: candor_domain::DomainError| StoreError::Corrupt(format!("consent record: {e}"));
    Ok(ConsentRecord {
        seq: r.try_get("seq")?,
        subject: SubjectKey::parse(&r.try_get::<String, _>("subject_key")?).map_err(corrupt)?,
        purpose: PurposeId::parse(&r.try_get::<String, _>("purpose_id")?).map_err(corrupt)?,
        decision: ConsentDecision::from_stored(&r.try_get::<String, _>("decision")?)
            .map_err(corrupt)?,
        at: r.try_get("at")?,
        source: ConsentSource::parse(&r.try_get::<String, _>("source")?).map_err(corrupt)?,
        policy_version: r.try_get::<i64, _>("policy_version")? as u32,
        proof: ConsentProof {
            ip_hash: r.try_get("ip_hash")?,
            user_agent: r.try_get("user_agent")?,
            double_opt_in_token: r.try_get("double_opt_in_token")?,
            notice_hash: r.try_get("notice_hash")?,
        },
    })
}

const COLUMNS: &str = "seq, subject_key, purpose_id, decision, at, source, policy_version, ip_hash, user_agent, double_opt_in_token, notice_hash";

/// One subject's imported decisions and the audit entry that records them.
#[derive(Debug, Clone)]
pub struct ConsentImport {
    pub subject: SubjectKey,
    pub records: Vec<NewConsent>,
    pub audit: AuditDraft,
}

/// Inserts records with multi-row statements and returns them stored, in the given order.
async fn insert_records_in_tx(
    tx: &mut Transaction<'_, Any>,
    records: &[&NewConsent],
    backend: Backend,
) -> Result<Vec<ConsentRecord>> {
    let mut stored = Vec::with_capacity(records.len());
    for chunk in records.chunks(crate::ingest::CHUNK) {
        let sql = format!(
            "INSERT INTO consent_records (subject_key, purpose_id, decision, at, source, policy_version, ip_hash, user_agent, double_opt_in_token, notice_hash) VALUES {} RETURNING seq",
            crate::ingest::placeholders(backend, chunk.len(), 10)
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for c in chunk {
            q = q
                .bind(c.subject.as_str())
                .bind(c.purpose.as_str())
                .bind(c.decision.as_str())
                .bind(c.at)
                .bind(c.source.as_str())
                .bind(i64::from(c.policy_version))
                .bind(c.proof.ip_hash.as_deref())
                .bind(c.proof.user_agent.as_deref())
                .bind(c.proof.double_opt_in_token.as_deref())
                .bind(c.proof.notice_hash.as_deref());
        }
        // Both backends number the rows of one VALUES list in list order (SQLite's rowid,
        // PostgreSQL's sequence called per row), but RETURNING's row order is unspecified.
        let mut seqs = q
            .fetch_all(&mut **tx)
            .await?
            .iter()
            .map(|r| r.try_get::<i64, _>("seq"))
            .collect::<std::result::Result<Vec<i64>, _>>()?;
        seqs.sort_unstable();
        if seqs.len() != chunk.len() {
            return Err(StoreError::Corrupt(format!(
                "{} consent records inserted, {} returned",
                chunk.len(),
                seqs.len()
            )));
        }
        stored.extend(chunk.iter().zip(seqs).map(|(c, seq)| ConsentRecord {
            seq,
            subject: c.subject.clone(),
            purpose: c.purpose.clone(),
            decision: c.decision,
            at: c.at,
            source: c.source,
            policy_version: c.policy_version,
            proof: c.proof.clone(),
        }));
    }
    Ok(stored)
}

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
        debug_assert!(records.iter().all(|c| &c.subject == subject));
        let backend = self.backend;
        let (stored, _) = self
            .audited(
                at,
                &(records, event),
                |tx, &(records, event)| {
                    Box::pin(async move {
                        let stored =
                            insert_records_in_tx(tx, &records.iter().collect::<Vec<_>>(), backend)
                                .await?;
                        if let Some(event) = event {
                            crate::webhooks::enqueue_in_tx(tx, event, at).await?;
                        }
                        Ok(stored)
                    })
                },
                |_| audit,
                &[format!("consent:{subject}")],
            )
            .await?;
        Ok(stored)
    }

    /// Appends many subjects' imported decisions in one transaction. Each subject still gets
    /// its own audit entry (chained in the given order) and its own notification; imports
    /// announce no webhook, like [`Store::append_consents`] without an event. Returns each
    /// subject's stored records, in the given order.
    pub async fn import_consents_bulk(
        &self,
        imports: &[ConsentImport],
        at: Micros,
    ) -> Result<Vec<Vec<ConsentRecord>>> {
        debug_assert!(
            imports
                .iter()
                .all(|i| i.records.iter().all(|c| c.subject == i.subject))
        );
        let backend = self.backend;
        let notices: Vec<String> = imports
            .iter()
            .map(|i| format!("consent:{}", i.subject))
            .collect();
        let (stored, _) = self
            .audited_many(
                at,
                imports,
                |tx, imports| {
                    Box::pin(async move {
                        let all: Vec<&NewConsent> =
                            imports.iter().flat_map(|i| &i.records).collect();
                        insert_records_in_tx(tx, &all, backend).await
                    })
                },
                |_| imports.iter().map(|i| &i.audit).collect(),
                &notices,
            )
            .await?;
        let mut stored = stored.into_iter();
        Ok(imports
            .iter()
            .map(|i| stored.by_ref().take(i.records.len()).collect())
            .collect())
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

    /// Every consent record of the subjects whose keys sort in `(after, last]`, by subject then
    /// sequence: one read for a page of subjects (training).
    pub async fn consent_histories_between(
        &self,
        after: &str,
        last: &str,
    ) -> Result<Vec<ConsentRecord>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM consent_records WHERE subject_key > $1 AND subject_key <= $2 ORDER BY subject_key, seq"
        )))
        .bind(after)
        .bind(last)
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
