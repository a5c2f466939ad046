//! The tamper-evident audit chain.
//!
//! Invariant: entry `n` commits to entry `n-1` through `prev_hash`, and its own `hash` covers
//! every field it shows, so altering, deleting or reordering any stored entry breaks
//! verification at that entry. Hash input is length-prefixed, so no two different entries can
//! serialize to the same bytes.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::Micros;

/// The `prev_hash` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Every kind of change the audit log records. The stored name (`as_str`) is part of each
/// entry's hash, so a name never changes once released; add a variant for a new kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditAction {
    AlertClear,
    AlertRaise,
    AlertRules,
    CatalogDelete,
    AnalyticsExact,
    AnalyticsSpend,
    AnalyticsReport,
    AudienceExport,
    CatalogUpsert,
    ConsentChange,
    ConsentImport,
    DecisionsImport,
    FairnessRun,
    IncidentUpdate,
    InventoryUpdate,
    JourneyDefine,
    KeyCreate,
    KeyRevoke,
    ModelActivate,
    ModelTrain,
    PreferencesUpdate,
    PurposeCreate,
    PurposeUpdate,
    RequestCreate,
    RequestUpdate,
    RetentionRun,
    ReviewDecide,
    ReviewRequest,
    SegmentCreate,
    SegmentDelete,
    SubjectErase,
    SubjectExport,
    SubjectRectify,
    SubjectRestrict,
    WebhookCreate,
    WebhookDelete,
}

impl AuditAction {
    pub const ALL: &'static [AuditAction] = &[
        AuditAction::AlertClear,
        AuditAction::AlertRaise,
        AuditAction::AlertRules,
        AuditAction::CatalogDelete,
        AuditAction::AnalyticsExact,
        AuditAction::AnalyticsSpend,
        AuditAction::AnalyticsReport,
        AuditAction::AudienceExport,
        AuditAction::CatalogUpsert,
        AuditAction::ConsentChange,
        AuditAction::ConsentImport,
        AuditAction::DecisionsImport,
        AuditAction::FairnessRun,
        AuditAction::IncidentUpdate,
        AuditAction::InventoryUpdate,
        AuditAction::JourneyDefine,
        AuditAction::KeyCreate,
        AuditAction::KeyRevoke,
        AuditAction::ModelActivate,
        AuditAction::ModelTrain,
        AuditAction::PreferencesUpdate,
        AuditAction::PurposeCreate,
        AuditAction::PurposeUpdate,
        AuditAction::RequestCreate,
        AuditAction::RequestUpdate,
        AuditAction::RetentionRun,
        AuditAction::ReviewDecide,
        AuditAction::ReviewRequest,
        AuditAction::SegmentCreate,
        AuditAction::SegmentDelete,
        AuditAction::SubjectErase,
        AuditAction::SubjectExport,
        AuditAction::SubjectRectify,
        AuditAction::SubjectRestrict,
        AuditAction::WebhookCreate,
        AuditAction::WebhookDelete,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::AlertClear => "alert.clear",
            AuditAction::AlertRaise => "alert.raise",
            AuditAction::AlertRules => "alert.rules",
            AuditAction::CatalogDelete => "catalog.delete",
            AuditAction::AnalyticsExact => "analytics.exact",
            AuditAction::AnalyticsSpend => "analytics.spend",
            AuditAction::AnalyticsReport => "analytics.report",
            AuditAction::AudienceExport => "audience.export",
            AuditAction::CatalogUpsert => "catalog.upsert",
            AuditAction::ConsentChange => "consent.change",
            AuditAction::ConsentImport => "consent.import",
            AuditAction::DecisionsImport => "decisions.import",
            AuditAction::FairnessRun => "fairness.audit",
            AuditAction::IncidentUpdate => "incident.update",
            AuditAction::InventoryUpdate => "inventory.update",
            AuditAction::JourneyDefine => "journey.define",
            AuditAction::KeyCreate => "key.create",
            AuditAction::KeyRevoke => "key.revoke",
            AuditAction::ModelActivate => "model.activate",
            AuditAction::ModelTrain => "model.train",
            AuditAction::PreferencesUpdate => "preferences.update",
            AuditAction::PurposeCreate => "purpose.create",
            AuditAction::PurposeUpdate => "purpose.update",
            AuditAction::RequestCreate => "request.create",
            AuditAction::RequestUpdate => "request.update",
            AuditAction::RetentionRun => "retention.run",
            AuditAction::ReviewDecide => "review.decide",
            AuditAction::ReviewRequest => "review.request",
            AuditAction::SegmentCreate => "segment.create",
            AuditAction::SegmentDelete => "segment.delete",
            AuditAction::SubjectErase => "subject.erase",
            AuditAction::SubjectExport => "subject.export",
            AuditAction::SubjectRectify => "subject.rectify",
            AuditAction::SubjectRestrict => "subject.restrict",
            AuditAction::WebhookCreate => "webhook.create",
            AuditAction::WebhookDelete => "webhook.delete",
        }
    }

    /// The action a stored name stands for, if it is one of ours.
    pub fn parse(name: &str) -> Option<AuditAction> {
        Self::ALL.iter().copied().find(|a| a.as_str() == name)
    }
}

/// An event to record: who did what to which target, with details as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditDraft {
    pub actor: String,
    pub action: String,
    pub target: String,
    pub details: serde_json::Value,
}

impl AuditDraft {
    pub fn new(
        actor: impl Into<String>,
        action: AuditAction,
        target: impl Into<String>,
        details: serde_json::Value,
    ) -> Self {
        AuditDraft {
            actor: actor.into(),
            action: action.as_str().to_owned(),
            target: target.into(),
            details,
        }
    }
}

/// A stored audit entry. `details` is kept as the exact JSON text that was hashed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub seq: i64,
    pub at: Micros,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub details: String,
    pub prev_hash: String,
    pub hash: String,
}

/// Where and why verification failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainBreak {
    pub seq: i64,
    pub reason: String,
}

impl std::fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "audit entry {}: {}", self.seq, self.reason)
    }
}

/// The hash of an entry given its predecessor's hash.
pub fn entry_hash(
    prev_hash: &str,
    seq: i64,
    at: Micros,
    actor: &str,
    action: &str,
    target: &str,
    details: &str,
) -> String {
    let mut h = Sha256::new();
    for field in [
        prev_hash.as_bytes(),
        &seq.to_be_bytes(),
        &at.to_be_bytes(),
        actor.as_bytes(),
        action.as_bytes(),
        target.as_bytes(),
        details.as_bytes(),
    ] {
        h.update((field.len() as u64).to_be_bytes());
        h.update(field);
    }
    hex::encode(h.finalize())
}

/// Builds the next entry of a chain whose last entry has `prev` = (seq, hash).
pub fn seal(prev_seq: i64, prev_hash: &str, at: Micros, draft: &AuditDraft) -> AuditEntry {
    let seq = prev_seq + 1;
    let details = draft.details.to_string();
    let hash = entry_hash(
        prev_hash,
        seq,
        at,
        &draft.actor,
        &draft.action,
        &draft.target,
        &details,
    );
    AuditEntry {
        seq,
        at,
        actor: draft.actor.clone(),
        action: draft.action.clone(),
        target: draft.target.clone(),
        details,
        prev_hash: prev_hash.to_owned(),
        hash,
    }
}

/// Incremental verifier: feed entries in `seq` order; the first inconsistency is reported.
#[derive(Debug)]
pub struct ChainVerifier {
    expected_seq: i64,
    prev_hash: String,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        ChainVerifier {
            expected_seq: 1,
            prev_hash: GENESIS.to_owned(),
        }
    }
}

impl ChainVerifier {
    pub fn push(&mut self, e: &AuditEntry) -> Result<(), ChainBreak> {
        let fail = |seq, reason: &str| {
            Err(ChainBreak {
                seq,
                reason: reason.to_owned(),
            })
        };
        if e.seq != self.expected_seq {
            return fail(
                self.expected_seq,
                &format!("entry is missing (the next stored entry is {})", e.seq),
            );
        }
        if e.prev_hash != self.prev_hash {
            return fail(
                e.seq,
                "does not link to the previous entry (previous entry altered or replaced)",
            );
        }
        let recomputed = entry_hash(
            &e.prev_hash,
            e.seq,
            e.at,
            &e.actor,
            &e.action,
            &e.target,
            &e.details,
        );
        if recomputed != e.hash {
            return fail(e.seq, "content does not match its hash (entry altered)");
        }
        self.expected_seq += 1;
        self.prev_hash = e.hash.clone();
        Ok(())
    }

    /// Checks the end of the chain against the separately kept head, which catches deletion of
    /// the newest entries.
    pub fn finish(&self, head_seq: i64, head_hash: &str) -> Result<i64, ChainBreak> {
        let last = self.expected_seq - 1;
        if head_seq != last {
            return Err(ChainBreak {
                seq: last + 1,
                reason: format!(
                    "the chain ends at entry {last} but the recorded head is entry {head_seq} (entries deleted)"
                ),
            });
        }
        if head_hash != self.prev_hash {
            return Err(ChainBreak {
                seq: last,
                reason: "the last entry does not match the recorded head".to_owned(),
            });
        }
        Ok(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_names_are_unique_and_round_trip() {
        let mut names: Vec<&str> = AuditAction::ALL.iter().map(|a| a.as_str()).collect();
        for a in AuditAction::ALL {
            assert_eq!(AuditAction::parse(a.as_str()), Some(*a));
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), AuditAction::ALL.len());
        assert_eq!(AuditAction::parse("nonsense"), None);
    }

    fn chain(n: usize) -> Vec<AuditEntry> {
        let mut out: Vec<AuditEntry> = Vec::new();
        for i in 0..n {
            let (seq, hash) = out
                .last()
                .map_or((0, GENESIS.to_owned()), |e| (e.seq, e.hash.clone()));
            out.push(seal(
                seq,
                &hash,
                i as i64,
                &AuditDraft::new(
                    "admin",
                    AuditAction::PurposeCreate,
                    format!("p{i}"),
                    serde_json::json!({"i": i}),
                ),
            ));
        }
        out
    }

    fn verify(entries: &[AuditEntry], head: (i64, &str)) -> Result<i64, ChainBreak> {
        let mut v = ChainVerifier::default();
        for e in entries {
            v.push(e)?;
        }
        v.finish(head.0, head.1)
    }

    #[test]
    fn intact_chain_verifies() {
        let c = chain(5);
        assert_eq!(verify(&c, (5, &c[4].hash)), Ok(5));
        assert_eq!(verify(&[], (0, GENESIS)), Ok(0));
    }

    #[test]
    fn alteration_deletion_and_truncation_name_the_entry() {
        let c = chain(5);
        let head = (5, c[4].hash.as_str());
        let mut altered = c.clone();
        altered[2].target = "someone-else".into();
        assert_eq!(verify(&altered, head).unwrap_err().seq, 3);
        let mut deleted = c.clone();
        deleted.remove(1);
        assert_eq!(verify(&deleted, head).unwrap_err().seq, 2);
        assert_eq!(verify(&c[..4], head).unwrap_err().seq, 5);
        // Rehashing an altered entry still breaks the link from its successor.
        let mut rehashed = c.clone();
        rehashed[2].details = "{}".into();
        rehashed[2].hash = entry_hash(
            &rehashed[2].prev_hash,
            3,
            rehashed[2].at,
            "admin",
            "purpose.create",
            "p2",
            "{}",
        );
        assert_eq!(verify(&rehashed, head).unwrap_err().seq, 4);
    }
}
