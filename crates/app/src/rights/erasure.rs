//! Erasure: everything held on a subject removed in one audited transaction, the data key
//! destroyed (so sealed copies anywhere stay unreadable), caches cleared on every node, and a
//! signed receipt that lists every part.

use std::time::Instant;

use candor_domain::rights::ReceiptPart;
use candor_domain::{AuditEntry, ErasureReceipt, LegalBasis, SubjectKey};
use candor_store::{ErasedCounts, Erasure, OutboxEvent};
use serde_json::json;

use super::SubjectRef;
use crate::{App, AppError, Result};

/// Most ids one bulk erasure transaction carries.
const BULK_CHUNK: usize = 500;

/// One erasure's answer.
#[derive(Debug, Clone)]
pub struct ErasureOutcome {
    pub receipt: ErasureReceipt,
    /// The receipt exactly as signed and stored (JSON).
    pub body: String,
    /// False when the subject had been erased already and nothing new was held: the first
    /// receipt is returned.
    pub erased_now: bool,
}

/// A bulk erasure's answer.
#[derive(Debug, Clone, Default)]
pub struct BulkErasure {
    pub erased: usize,
    pub already_erased: usize,
    /// Input positions of ids that name no known subject.
    pub unknown: Vec<usize>,
    pub receipts: Vec<ErasureReceipt>,
}

impl App {
    /// Erases the subject. `NotFound` if nothing was ever held on them.
    pub async fn erase_subject(
        &self,
        actor: &str,
        subject: impl Into<SubjectRef>,
        suppress: bool,
    ) -> Result<ErasureOutcome> {
        let (subject, _) = self.resolve(&subject.into())?;
        let started = Instant::now();
        if let Some(first) = self.erased_already(&subject, suppress).await? {
            return Ok(first);
        }
        if !self.store.subject_known(subject.as_str()).await? {
            return Err(AppError::NotFound {
                what: "subject",
                id: "(the given id)".into(),
            });
        }
        let mut done = self.erase_keys(actor, &[subject], suppress).await?;
        metrics::histogram!("candor_erasure_seconds").record(started.elapsed().as_secs_f64());
        Ok(done.pop().expect("one subject, one outcome"))
    }

    /// Erases many subjects, `BULK_CHUNK` per transaction. Unknown ids are reported, not fatal.
    pub async fn erase_subjects(
        &self,
        actor: &str,
        external_ids: &[String],
        suppress: bool,
    ) -> Result<BulkErasure> {
        let mut report = BulkErasure::default();
        let mut todo: Vec<SubjectKey> = Vec::new();
        for (i, id) in external_ids.iter().enumerate() {
            let subject = self
                .subject_key(id)
                .map_err(|e| AppError::invalid(format!("ids[{i}]"), e.to_string()))?;
            if let Some(first) = self.erased_already(&subject, suppress).await? {
                report.already_erased += 1;
                report.receipts.push(first.receipt);
            } else if self.store.subject_known(subject.as_str()).await? {
                if !todo.contains(&subject) {
                    todo.push(subject);
                }
            } else {
                report.unknown.push(i);
            }
        }
        for chunk in todo.chunks(BULK_CHUNK) {
            for done in self.erase_keys(actor, chunk, suppress).await? {
                report.erased += 1;
                report.receipts.push(done.receipt);
            }
        }
        Ok(report)
    }

    /// The subject's latest receipt, if they were erased and nothing is held on them since
    /// (and, when `suppress` is asked, they are suppressed already: asking for suppression
    /// later erases again, with suppression).
    async fn erased_already(
        &self,
        subject: &SubjectKey,
        suppress: bool,
    ) -> Result<Option<ErasureOutcome>> {
        let Some(body) = self.store.latest_receipt(subject.as_str()).await? else {
            return Ok(None);
        };
        let (holds, suppressed) = self.holds_erasable_data(subject).await?;
        if holds || (suppress && !suppressed) {
            return Ok(None);
        }
        let receipt = serde_json::from_str(&body)
            .map_err(|e| AppError::Internal(format!("a stored receipt is unreadable: {e}")))?;
        Ok(Some(ErasureOutcome {
            receipt,
            body,
            erased_now: false,
        }))
    }

    /// Whether anything an erasure would remove is held (what it keeps does not count), and
    /// whether the subject is suppressed.
    async fn holds_erasable_data(&self, subject: &SubjectKey) -> Result<(bool, bool)> {
        let holdings = self.store.subject_holdings(subject.as_str(), 1).await?;
        let events = self.store.held_events(subject.as_str(), 1).await?;
        let consents = !self.config.rights.keep_consent_log
            && !self.store.consent_history(subject).await?.is_empty();
        let holds = !events.is_empty()
            || consents
            || holdings.has_data_key
            || !holdings.contact_fields.is_empty()
            || !holdings.protected_attributes.is_empty()
            || holdings.preferences.is_some()
            || !holdings.declared_interests.is_empty()
            || !holdings.sessions.is_empty()
            || !holdings.quarantined.is_empty()
            || !holdings.decisions.is_empty();
        Ok((holds, holdings.suppressed))
    }

    /// The purposes whose events an erasure keeps under the current policy.
    fn kept_purposes(&self) -> Vec<String> {
        if !self.config.rights.keep_legal_obligation_events {
            return Vec::new();
        }
        self.purposes()
            .values()
            .filter(|p| p.legal_basis == LegalBasis::LegalObligation)
            .map(|p| p.id.to_string())
            .collect()
    }

    async fn erase_keys(
        &self,
        actor: &str,
        subjects: &[SubjectKey],
        suppress: bool,
    ) -> Result<Vec<ErasureOutcome>> {
        let now = self.now();
        let kept_purposes = self.kept_purposes();
        let erasures: Vec<Erasure> = subjects
            .iter()
            .map(|s| {
                let request_id = crate::new_id("era");
                let event_id = crate::new_id("evt");
                Erasure {
                    subject: s.to_string(),
                    suppress,
                    keep_consent_log: self.config.rights.keep_consent_log,
                    kept_purposes: kept_purposes.clone(),
                    actor: actor.to_owned(),
                    event: OutboxEvent {
                        payload: json!({
                            "id": event_id,
                            "type": "subject.erased",
                            "created_at": candor_domain::format_micros(now),
                            "subject_key": s,
                            "request_id": request_id,
                            "suppressed": suppress,
                        })
                        .to_string(),
                        id: event_id,
                        event_type: "subject.erased".into(),
                        sealed_external_id: None,
                        subject_key: Some(s.to_string()),
                    },
                    request_id,
                }
            })
            .collect();
        let cluster = self.store_backend() == "postgres";
        let signer = &self.rights.signer;
        let done = self
            .store
            .erase_subjects(&erasures, now, |e, counts, entry| {
                let receipt = signer.sign(receipt_for(e, counts, entry, now, cluster));
                serde_json::to_string_pretty(&receipt).expect("a receipt serializes")
            })
            .await?;
        let mut out = Vec::with_capacity(done.len());
        for (e, (counts, _entry)) in erasures.iter().zip(done) {
            for key in &counts.keys {
                if let Ok(k) = SubjectKey::parse(key) {
                    self.forget_subject(&k);
                }
            }
            let body =
                self.store.receipt(&e.request_id).await?.ok_or_else(|| {
                    AppError::Internal("the receipt just stored is missing".into())
                })?;
            let receipt = serde_json::from_str(&body)
                .map_err(|err| AppError::Internal(format!("receipt: {err}")))?;
            metrics::counter!("candor_erasures_total", "suppressed" => suppress.to_string())
                .increment(1);
            tracing::info!(subject = %e.subject, request = %e.request_id, "subject erased");
            out.push(ErasureOutcome {
                receipt,
                body,
                erased_now: true,
            });
        }
        Ok(out)
    }

    /// Forgets everything this node caches about a subject: consent state, history,
    /// preferences and the unwrapped data key.
    pub(crate) fn forget_subject(&self, subject: &SubjectKey) {
        self.invalidate_subject(subject);
        self.invalidate_preferences(subject.as_str());
        self.forget_data_key(subject.as_str());
    }

    /// The receipt of the subject's latest erasure. `NotFound` if they were never erased.
    pub async fn erasure_receipt(&self, subject: impl Into<SubjectRef>) -> Result<String> {
        let (subject, _) = self.resolve(&subject.into())?;
        self.store
            .latest_receipt(subject.as_str())
            .await?
            .ok_or_else(|| AppError::NotFound {
                what: "erasure receipt",
                id: "(the given id)".into(),
            })
    }
}

/// The receipt of one erasure, before signing: every part the erasure touched, with what the
/// policy kept and why.
fn receipt_for(
    e: &Erasure,
    counts: &ErasedCounts,
    entry: &AuditEntry,
    at: candor_domain::Micros,
    cluster: bool,
) -> ErasureReceipt {
    let mut parts: Vec<ReceiptPart> = counts
        .erased
        .iter()
        .map(|(artifact, n)| match *artifact {
            "data_key" => ReceiptPart::new(
                "database",
                artifact,
                *n,
                "shredded",
                "the subject's data key is destroyed: sealed copies of their contact values (in \
                 backups, logs or replicas) can no longer be opened, provided backups of the key \
                 table itself are rotated out (docs/RIGHTS.md)",
            ),
            "decision_log_links" => ReceiptPart::new(
                "database",
                artifact,
                *n,
                "erased",
                "decisions stay for aggregate fairness audits but no longer name the subject",
            ),
            _ if *n == 0 => ReceiptPart::new("database", artifact, 0, "not_held", ""),
            _ => ReceiptPart::new("database", artifact, *n, "erased", ""),
        })
        .collect();
    for (artifact, n) in &counts.kept {
        let note = match *artifact {
            "consent_records" => {
                "kept as proof of consent (GDPR art. 7(1)); pseudonymous, no contact data"
            }
            "legal_obligation_events" => {
                "kept under a legal obligation; any contact value in them is unreadable now"
            }
            "rights_requests" => "kept as the record of how the person's requests were handled",
            _ => "kept: earlier receipts prove earlier erasures",
        };
        parts.push(ReceiptPart::new("database", artifact, *n, "kept", note));
    }
    parts.push(ReceiptPart::new(
        "database",
        "audit_log",
        1,
        "kept",
        "the hash-chained entry recording this erasure; it names the subject only by its \
         pseudonymous key",
    ));
    if e.suppress {
        parts.push(ReceiptPart::new(
            "database",
            "suppression_list",
            1 + counts.sessions,
            "kept",
            "pseudonymous key only: later events for the subject are dropped and counted",
        ));
    }
    parts.push(ReceiptPart::new(
        "memory",
        "caches",
        4,
        "cleared",
        "consent state, history, preferences and data key cached on this node",
    ));
    parts.push(if cluster {
        ReceiptPart::new(
            "cluster",
            "caches",
            1,
            "notified",
            "every other node clears the same caches when the erasure's notice reaches it",
        )
    } else {
        ReceiptPart::new(
            "cluster",
            "caches",
            0,
            "not_held",
            "one node (embedded store)",
        )
    });
    parts.push(ReceiptPart::new(
        "models",
        "user_factors",
        0,
        "not_held",
        "served models are item-to-item and hold no per-subject factors; the next training run \
         no longer sees the subject",
    ));
    ErasureReceipt {
        receipt_version: 1,
        request_id: e.request_id.clone(),
        subject_key: e.subject.clone(),
        erased_at: candor_domain::format_micros(at),
        suppressed: e.suppress,
        parts,
        audit_seq: entry.seq,
        audit_hash: entry.hash.clone(),
        key_id: String::new(),
        field_digests: Default::default(),
        signature: String::new(),
    }
}
