//! Recording and checking consent.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use candor_domain::{
    AuditDraft, ConsentDecision, ConsentProof, ConsentRecord, ConsentSource, ConsentStatus, Micros,
    NewConsent, Permit, Permits, PrivacySignals, Purpose, PurposeId, SubjectConsents, SubjectKey,
};
use candor_store::{ConsentImport, OutboxEvent};
use serde_json::json;

use crate::{App, AppError, Result, RowError};

/// A historical decision: purpose, what was decided, when.
pub type ImportedDecision = (PurposeId, ConsentDecision, Micros);

/// One decision of a consent export, as read from a file (not yet validated).
#[derive(Debug, Clone, Default)]
pub struct ConsentImportRow {
    /// The id the shop knows the person by (pseudonymized before storage).
    pub external_id: String,
    pub purpose: String,
    /// `granted` or `denied`.
    pub decision: String,
    pub at: Micros,
    /// The address the decision came from: only its keyed hash is kept.
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub double_opt_in_token: Option<String>,
    /// The purpose version the person saw (default: the current one).
    pub policy_version: Option<u32>,
}

/// What a consent import batch did.
#[derive(Debug, Clone, Default)]
pub struct ConsentImportReport {
    pub records: usize,
    pub subjects: usize,
    pub rejected: Vec<RowError>,
}

/// Most decisions one request may carry.
pub const MAX_CHANGES: usize = 100;

/// A person's decisions, as a client submits them.
#[derive(Debug, Clone, Default)]
pub struct ConsentRequest {
    /// The id the shop knows the subject by, when the caller has it: sealed into the outbox for
    /// webhooks that include it, never stored in the clear.
    pub external_id: Option<String>,
    pub changes: Vec<(String, String)>,
    pub source: String,
    pub user_agent: Option<String>,
    pub double_opt_in_token: Option<String>,
    /// What the banner showed (set by the banner use case only, from the server's own notice).
    pub notice_hash: Option<String>,
    pub ip: Option<IpAddr>,
    pub signals: PrivacySignals,
}

/// What was recorded, and which requested grants a privacy signal turned into opt-outs.
#[derive(Debug, Clone)]
pub struct ConsentOutcome {
    pub records: Vec<ConsentRecord>,
    pub overridden_by_signal: Vec<(PurposeId, ConsentSource)>,
}

/// One purpose as a subject sees it: what it is, and where they stand.
#[derive(Debug, Clone)]
pub struct PurposeConsent {
    pub purpose: Purpose,
    pub status: ConsentStatus,
}

fn bounded(field: &str, v: Option<String>, max: usize) -> Result<Option<String>> {
    match v {
        Some(s) if s.chars().count() > max || s.chars().any(char::is_control) => {
            Err(AppError::invalid(
                field,
                format!("must be at most {max} characters without control characters"),
            ))
        }
        other => Ok(other),
    }
}

impl App {
    /// May `purpose` use this subject's data right now? The hot path: a cache lookup, with one
    /// store read the first time a subject is seen.
    pub async fn consent_status(
        &self,
        subject: &SubjectKey,
        purpose: &PurposeId,
    ) -> Result<ConsentStatus> {
        let p = self.purpose(purpose)?;
        let now = self.now();
        self.with_consents(subject, |c| c.status(&p, now)).await
    }

    /// The cached check alone, for benchmarks and callers that already loaded the subject.
    pub fn cached_consent_status(
        &self,
        subject: &SubjectKey,
        purpose: &Purpose,
        now: Micros,
    ) -> Option<ConsentStatus> {
        self.consent.cache.with(subject, |c| c.status(purpose, now))
    }

    /// Runs `f` on the subject's consent state: from the cache, or loaded into it on first use.
    /// If a concurrent eviction left the entry incomplete, the history just read answers.
    async fn with_consents<R>(
        &self,
        subject: &SubjectKey,
        f: impl Fn(&SubjectConsents) -> R,
    ) -> Result<R> {
        if let Some(r) = self.consent.cache.with(subject, &f) {
            return Ok(r);
        }
        let epoch = self.consent.cache.epoch();
        let history = self.store.consent_history(subject).await?;
        self.consent.cache.merge_loaded(subject, &history, epoch);
        Ok(match self.consent.cache.with(subject, &f) {
            Some(r) => r,
            None => f(&SubjectConsents::from_history(&history)),
        })
    }

    /// A permit for `purpose` over `subject`'s data now (or `None`), with the consent state it
    /// was decided from, both read from one snapshot: the one way another room may read this
    /// subject's behavioural data for one purpose, and say why it may not.
    pub(crate) async fn permit_and_status<'a>(
        &self,
        subject: &'a SubjectKey,
        purpose: &'a Purpose,
    ) -> Result<(Option<Permit<'a>>, ConsentStatus)> {
        let now = self.now();
        self.with_consents(subject, |c| c.permit_with_status(subject, purpose, now))
            .await
    }

    /// Runs `f` on every permit `subject`'s consent state grants now, under the cache's read
    /// lock: the ingest hot path, which must not copy the state per message.
    pub(crate) async fn with_permits<R>(
        &self,
        subject: &SubjectKey,
        purposes: &BTreeMap<PurposeId, Purpose>,
        f: impl Fn(&Permits<'_>) -> R,
    ) -> Result<R> {
        let now = self.now();
        self.with_consents(subject, |c| f(&c.permits(subject, purposes.values(), now)))
            .await
    }

    /// Every permit `subject`'s consent state grants now, in `purposes` order.
    pub(crate) async fn permits<'a>(
        &self,
        subject: &'a SubjectKey,
        purposes: &'a BTreeMap<PurposeId, Purpose>,
    ) -> Result<Permits<'a>> {
        let now = self.now();
        self.with_consents(subject, |c| c.permits(subject, purposes.values(), now))
            .await
    }

    /// A permit for `purpose` per subject of `subjects`, whose keys all sort in `(after, last]`:
    /// from the cache when it holds the subject, else from one store read for the whole range.
    /// What that read finds is not kept: a training pass over every subject must not push out
    /// the subjects serving is using.
    pub(crate) async fn permits_between<'a>(
        &self,
        after: &str,
        last: &str,
        subjects: &'a [SubjectKey],
        purpose: &'a Purpose,
    ) -> Result<Vec<Option<Permit<'a>>>> {
        let now = self.now();
        let records = self.store.consent_histories_between(after, last).await?;
        let by_subject: HashMap<&str, &[ConsentRecord]> = records
            .chunk_by(|a, b| a.subject == b.subject)
            .map(|h| (h[0].subject.as_str(), h))
            .collect();
        Ok(subjects
            .iter()
            .map(|s| {
                self.consent
                    .cache
                    .with(s, |c| c.permit(s, purpose, now))
                    .unwrap_or_else(|| {
                        SubjectConsents::from_history(
                            by_subject.get(s.as_str()).copied().unwrap_or_default(),
                        )
                        .permit(s, purpose, now)
                    })
            })
            .collect())
    }

    pub fn consent_cache_len(&self) -> usize {
        self.consent.cache.len()
    }

    /// Every declared purpose with this subject's current state, for the API and preference
    /// center.
    pub async fn subject_consents(&self, subject: &SubjectKey) -> Result<Vec<PurposeConsent>> {
        let now = self.now();
        let purposes = self.purposes();
        self.with_consents(subject, |c| {
            purposes
                .values()
                .map(|p| PurposeConsent {
                    status: c.status(p, now),
                    purpose: p.clone(),
                })
                .collect()
        })
        .await
    }

    pub async fn consent_history(&self, subject: &SubjectKey) -> Result<Vec<ConsentRecord>> {
        Ok(self.store.consent_history(subject).await?)
    }

    /// Validates and records a person's decisions (plus any opt-outs their browser signals),
    /// then makes them effective on this node before returning.
    pub async fn record_consents(
        &self,
        actor: &str,
        subject: &SubjectKey,
        req: ConsentRequest,
    ) -> Result<ConsentOutcome> {
        let source = ConsentSource::parse(&req.source)?;
        if matches!(source, ConsentSource::Gpc | ConsentSource::Dnt) {
            return Err(AppError::invalid(
                "source",
                "gpc and dnt are recorded from request headers, not sent as a source",
            ));
        }
        if req.changes.len() > MAX_CHANGES {
            return Err(AppError::invalid(
                "consents",
                format!("at most {MAX_CHANGES} decisions per request"),
            ));
        }
        let purposes = self.purposes();
        let mut wanted: Vec<(&Purpose, ConsentDecision)> = Vec::with_capacity(req.changes.len());
        for (i, (pid, decision)) in req.changes.iter().enumerate() {
            let id = PurposeId::parse(pid).map_err(|_| AppError::UnknownPurpose(pid.clone()))?;
            let p = purposes
                .get(&id)
                .ok_or_else(|| AppError::UnknownPurpose(pid.clone()))?;
            let decision = ConsentDecision::parse(decision)
                .map_err(|e| AppError::invalid(format!("consents[{i}].decision"), e.to_string()))?;
            if p.legal_basis.is_strictly_necessary() {
                return Err(AppError::invalid(
                    format!("consents[{i}].purpose"),
                    format!(
                        "`{id}` is strictly necessary ({}) and cannot be granted or refused",
                        p.legal_basis.as_str()
                    ),
                ));
            }
            if wanted.iter().any(|(q, _)| q.id == id) {
                return Err(AppError::invalid(
                    format!("consents[{i}].purpose"),
                    format!("`{id}` appears more than once"),
                ));
            }
            wanted.push((p, decision));
        }
        let signals = req.signals;
        if wanted.is_empty() && !signals.gpc && !signals.dnt {
            return Err(AppError::invalid(
                "consents",
                "must contain at least one decision",
            ));
        }
        let proof = ConsentProof {
            ip_hash: req
                .ip
                .map(|ip| self.subject_key(&format!("ip:{ip}")).map(|k| k.to_string()))
                .transpose()?,
            user_agent: bounded("proof.user_agent", req.user_agent, 512)?,
            double_opt_in_token: bounded(
                "proof.double_opt_in_token",
                req.double_opt_in_token,
                256,
            )?,
            notice_hash: req.notice_hash,
        };

        let now = self.now();
        let current = self.subject_consents(subject).await?;
        let mut records = Vec::new();
        let mut overridden = Vec::new();
        let new = |p: &Purpose, decision, source| NewConsent {
            subject: subject.clone(),
            purpose: p.id.clone(),
            decision,
            at: now,
            source,
            policy_version: p.version,
            proof: proof.clone(),
        };
        for (p, decision) in &wanted {
            match (decision, signals.opts_out_of(p)) {
                (ConsentDecision::Granted, Some(signal)) => {
                    overridden.push((p.id.clone(), signal));
                    records.push(new(p, ConsentDecision::Denied, signal));
                }
                _ => records.push(new(p, *decision, source)),
            }
        }
        // A signal also opts out of covered purposes the request did not mention, unless the
        // person is already opted out.
        for pc in &current {
            let p = &pc.purpose;
            if let Some(signal) = signals.opts_out_of(p)
                && !wanted.iter().any(|(q, _)| q.id == p.id)
                && !matches!(pc.status, ConsentStatus::Denied { .. })
            {
                records.push(new(p, ConsentDecision::Denied, signal));
            }
        }
        if records.is_empty() {
            return Ok(ConsentOutcome {
                records: vec![],
                overridden_by_signal: overridden,
            });
        }

        let changes: Vec<_> = records
            .iter()
            .map(|r| json!({"purpose": r.purpose, "decision": r.decision, "source": r.source, "policy_version": r.policy_version}))
            .collect();
        let event_id = crate::new_id("evt");
        let payload = json!({
            "id": event_id,
            "type": "consent.changed",
            "created_at": candor_domain::format_micros(now),
            "subject_key": subject,
            "changes": changes,
        });
        // Sealed only when a webhook will receive it: otherwise it would cost every consent
        // write a data key (and a write to create one) for nothing.
        let sealed_external_id = match &req.external_id {
            Some(id) if self.webhooks_want_external_ids() => {
                Some(self.seal_external_id(subject, id).await?)
            }
            _ => None,
        };
        let event = OutboxEvent {
            id: event_id,
            event_type: "consent.changed".into(),
            payload: payload.to_string(),
            sealed_external_id,
            subject_key: Some(subject.to_string()),
        };
        let audit = AuditDraft::new(
            actor,
            candor_domain::AuditAction::ConsentChange,
            subject.as_str(),
            json!({"changes": changes}),
        );
        let stored = self
            .store
            .append_consents(subject, &records, now, &audit, Some(&event))
            .await?;
        self.applied(subject, &stored);
        for r in &stored {
            metrics::counter!("candor_consent_changes_total", "purpose" => r.purpose.to_string(), "decision" => r.decision.as_str(), "source" => r.source.as_str()).increment(1);
        }
        tracing::info!(subject = %subject, changes = stored.len(), "consent recorded");
        Ok(ConsentOutcome {
            records: stored,
            overridden_by_signal: overridden,
        })
    }

    /// A person's choices from a page that shows every purpose at once (the preference center):
    /// only the purposes whose state the choice changes are recorded, so sending the same form
    /// twice records once. `Ok(None)` when nothing changed.
    pub async fn record_consent_choices(
        &self,
        actor: &str,
        subject: &SubjectKey,
        choices: &[(String, bool)],
        template: ConsentRequest,
    ) -> Result<Option<ConsentOutcome>> {
        let current = self.subject_consents(subject).await?;
        let mut changes = Vec::new();
        for (pid, grant) in choices {
            let Some(pc) = current.iter().find(|pc| pc.purpose.id.as_str() == pid) else {
                return Err(AppError::UnknownPurpose(pid.clone()));
            };
            let unchanged = match pc.status {
                ConsentStatus::Granted { .. } => *grant,
                ConsentStatus::Denied { .. } => !*grant,
                ConsentStatus::NotRequired => true,
                ConsentStatus::LegitimateInterest => *grant,
                _ => false,
            };
            if !unchanged {
                let decision = if *grant { "granted" } else { "denied" };
                changes.push((pid.clone(), decision.to_owned()));
            }
        }
        if changes.is_empty() {
            return Ok(None);
        }
        let req = ConsentRequest {
            changes,
            ..template
        };
        self.record_consents(actor, subject, req).await.map(Some)
    }

    /// Records historical decisions with their original times (bulk import and the demo).
    pub async fn import_consents(
        &self,
        actor: &str,
        subject: &SubjectKey,
        decisions: &[ImportedDecision],
    ) -> Result<Vec<ConsentRecord>> {
        let mut stored = self
            .import_consents_bulk(actor, &[(subject.clone(), decisions.to_vec())])
            .await?;
        Ok(stored.pop().unwrap_or_default())
    }

    /// Records many subjects' historical decisions in one transaction, each subject with its
    /// own audit entry, and makes them effective on this node before returning. Returns each
    /// subject's stored records, in the given order.
    pub async fn import_consents_bulk(
        &self,
        actor: &str,
        subjects: &[(SubjectKey, Vec<ImportedDecision>)],
    ) -> Result<Vec<Vec<ConsentRecord>>> {
        let purposes = self.purposes();
        let mut imports = Vec::with_capacity(subjects.len());
        for (subject, decisions) in subjects {
            let mut records = Vec::with_capacity(decisions.len());
            for (id, decision, at) in decisions {
                let p = purposes
                    .get(id)
                    .ok_or_else(|| AppError::UnknownPurpose(id.to_string()))?;
                records.push(NewConsent {
                    subject: subject.clone(),
                    purpose: id.clone(),
                    decision: *decision,
                    at: *at,
                    source: ConsentSource::Import,
                    policy_version: p.version,
                    proof: ConsentProof::default(),
                });
            }
            imports.push((subject.clone(), records));
        }
        self.store_consent_imports(actor, imports).await
    }

    /// Validates rows of a consent export (a CMP's, or your own) and records the good ones with
    /// their proof, source `import`: one transaction for the batch, one audit entry per subject.
    /// Bad rows (unknown or strictly necessary purpose, unknown decision, a time in the future,
    /// an over-long proof field) are reported, each naming its row and field.
    pub async fn import_consent_rows(
        &self,
        actor: &str,
        rows: &[ConsentImportRow],
    ) -> Result<ConsentImportReport> {
        let purposes = self.purposes();
        let now = self.now();
        let mut report = ConsentImportReport::default();
        let mut by_subject: BTreeMap<SubjectKey, Vec<NewConsent>> = BTreeMap::new();
        for (n, r) in rows.iter().enumerate() {
            let err = |field: &str, message: String| RowError {
                row: n,
                field: field.to_owned(),
                message,
            };
            let checked = (|| {
                let external = r.external_id.trim();
                if external.is_empty() || external.chars().count() > 512 {
                    return Err(err("subject", "must be 1 to 512 characters".into()));
                }
                let id = PurposeId::parse(r.purpose.trim())
                    .map_err(|e| err("purpose", e.to_string()))?;
                let p = purposes.get(&id).ok_or_else(|| {
                    err(
                        "purpose",
                        format!("`{id}` is not a declared purpose; declare it first"),
                    )
                })?;
                if p.legal_basis.is_strictly_necessary() {
                    return Err(err(
                        "purpose",
                        format!(
                            "`{id}` is strictly necessary ({}); there is no consent to import",
                            p.legal_basis.as_str()
                        ),
                    ));
                }
                let decision = ConsentDecision::parse(r.decision.trim())
                    .map_err(|e| err("decision", e.to_string()))?;
                if r.at > now {
                    return Err(err(
                        "timestamp",
                        format!("{} is in the future", candor_domain::format_micros(r.at)),
                    ));
                }
                let policy_version = r.policy_version.unwrap_or(p.version);
                if policy_version == 0 || policy_version > p.version {
                    return Err(err(
                        "policy_version",
                        format!("must be 1 to {} (the purpose's current version)", p.version),
                    ));
                }
                let field = |name: &str, v: &Option<String>, max: usize| {
                    bounded(name, v.clone(), max).map_err(|e| err(name, e.to_string()))
                };
                let proof = ConsentProof {
                    // Hashed as live consents are: the address itself is never stored.
                    ip_hash: field("ip", &r.ip, 64)?
                        .filter(|ip| !ip.trim().is_empty())
                        .map(|ip| {
                            self.subject_key(&format!("ip:{}", ip.trim()))
                                .map(|k| k.to_string())
                        })
                        .transpose()
                        .map_err(|e| err("ip", e.to_string()))?,
                    user_agent: field("user_agent", &r.user_agent, 512)?,
                    double_opt_in_token: field("double_opt_in_token", &r.double_opt_in_token, 256)?,
                    notice_hash: None,
                };
                let subject = self
                    .subject_key(external)
                    .map_err(|e| err("subject", e.to_string()))?;
                Ok(NewConsent {
                    subject,
                    purpose: id,
                    decision,
                    at: r.at,
                    source: ConsentSource::Import,
                    policy_version,
                    proof,
                })
            })();
            match checked {
                Ok(c) => by_subject.entry(c.subject.clone()).or_default().push(c),
                Err(e) => report.rejected.push(e),
            }
        }
        report.subjects = by_subject.len();
        report.records = by_subject.values().map(Vec::len).sum();
        if !by_subject.is_empty() {
            self.store_consent_imports(actor, by_subject.into_iter().collect())
                .await?;
        }
        Ok(report)
    }

    async fn store_consent_imports(
        &self,
        actor: &str,
        subjects: Vec<(SubjectKey, Vec<NewConsent>)>,
    ) -> Result<Vec<Vec<ConsentRecord>>> {
        let imports: Vec<ConsentImport> = subjects
            .into_iter()
            .map(|(subject, records)| ConsentImport {
                audit: AuditDraft::new(
                    actor,
                    candor_domain::AuditAction::ConsentImport,
                    subject.as_str(),
                    json!({"records": records.len()}),
                ),
                subject,
                records,
            })
            .collect();
        let stored = self
            .store
            .import_consents_bulk(&imports, self.now())
            .await?;
        for (import, records) in imports.iter().zip(&stored) {
            self.applied(&import.subject, records);
        }
        Ok(stored)
    }

    /// Makes records this node just stored effective here: the consent cache takes them, and
    /// serving forgets the subject's history until it is allowed and read again.
    pub(crate) fn applied(&self, subject: &SubjectKey, records: &[ConsentRecord]) {
        self.consent.cache.apply(subject, records);
        self.forget_history(subject);
    }

    /// Another node changed this subject's consent: reload it, and drop its history.
    pub(crate) fn invalidate_subject(&self, subject: &SubjectKey) {
        self.consent.cache.invalidate(subject);
        self.forget_history(subject);
    }

    /// Changes may have been missed: reload every subject's consent and history on next use.
    pub(crate) fn clear_consent_cache(&self) {
        self.consent.cache.clear();
        self.clear_histories();
    }
}
