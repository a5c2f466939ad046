//! Verifying the audit chain and recording admin actions.

use candor_domain::audit::{ChainBreak, ChainVerifier};
use candor_domain::{AuditDraft, AuditEntry};

use crate::{App, Result};

/// The result of walking the whole chain.
#[derive(Debug, Clone)]
pub struct AuditVerification {
    pub entries: i64,
    pub head_hash: String,
    pub broken: Option<ChainBreak>,
}

const PAGE: i64 = 2000;

impl App {
    /// Recomputes every hash from the first entry; reports the first broken entry, if any.
    pub async fn verify_audit_log(&self) -> Result<AuditVerification> {
        let (head_seq, head_hash) = self.store.audit_head().await?;
        let mut v = ChainVerifier::default();
        let mut after = 0;
        loop {
            let page = self.store.audit_entries(after, PAGE).await?;
            for e in &page {
                if let Err(b) = v.push(e) {
                    return Ok(AuditVerification {
                        entries: e.seq - 1,
                        head_hash,
                        broken: Some(b),
                    });
                }
            }
            match page.last() {
                Some(last) if page.len() as i64 == PAGE => after = last.seq,
                _ => break,
            }
        }
        Ok(match v.finish(head_seq, &head_hash) {
            Ok(n) => AuditVerification {
                entries: n,
                head_hash,
                broken: None,
            },
            Err(b) => AuditVerification {
                entries: head_seq,
                head_hash,
                broken: Some(b),
            },
        })
    }

    pub async fn recent_audit_entries(&self, limit: i64) -> Result<Vec<AuditEntry>> {
        Ok(self
            .store
            .recent_audit_entries(limit.clamp(1, 1000))
            .await?)
    }

    /// Records an action that has no other effect on the store (a read of personal data, an
    /// export).
    pub async fn audit(&self, draft: &AuditDraft) -> Result<AuditEntry> {
        Ok(self.store.append_audit(self.now(), draft).await?)
    }
}
