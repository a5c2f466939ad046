//! Access and export: everything held on a subject as one JSON document with a stable schema
//! (`docs/RIGHTS.md`), or as a zip of one CSV file per section for spreadsheets.
//!
//! Invariants: sealed values are opened with the subject's own data key (a value that no
//! longer opens says so instead of failing the export); the document is built once and the
//! CSV form is derived from it, so the two never disagree; every export is audited as data
//! access.

use std::io::Write;

use candor_domain::envelope::{SecretKey, field_context};
use candor_domain::{AuditDraft, ConsentDecision, ConsentRecord, SubjectKey};
use serde_json::{Map, Value, json};

use super::{SubjectRef, requests};
use crate::{App, AppError, Result};

/// Bumped when a field is removed or changes meaning; adding a field keeps the version.
pub const EXPORT_SCHEMA_VERSION: &str = "candor.subject-export/1";

/// Most events and decisions one export carries; beyond it the document says it was cut.
const EXPORT_LIMIT: i64 = 1_000_000;

/// Everything held on one subject.
#[derive(Debug, Clone)]
pub struct SubjectExport {
    pub document: Value,
}

impl SubjectExport {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(&self.document).expect("a JSON value serializes")
    }

    /// A zip with one CSV file per section: arrays of objects become one row per element,
    /// objects one row per field; nested values are written as JSON in their cell.
    pub fn to_csv_zip(&self) -> Result<Vec<u8>> {
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        let Value::Object(sections) = &self.document else {
            return Err(AppError::Internal("an export is an object".into()));
        };
        for (name, value) in sections {
            let csv = section_csv(value)?;
            zip.start_file(format!("{name}.csv"), options)
                .map_err(|e| AppError::Internal(format!("zip: {e}")))?;
            zip.write_all(&csv)
                .map_err(|e| AppError::Internal(format!("zip: {e}")))?;
        }
        let cursor = zip
            .finish()
            .map_err(|e| AppError::Internal(format!("zip: {e}")))?;
        Ok(cursor.into_inner())
    }
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn section_csv(value: &Value) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let err = |e: csv::Error| AppError::Internal(format!("csv: {e}"));
    match value {
        Value::Array(rows) if rows.iter().all(Value::is_object) => {
            let mut columns: Vec<&str> = Vec::new();
            for row in rows {
                for k in row.as_object().expect("checked").keys() {
                    if !columns.contains(&k.as_str()) {
                        columns.push(k);
                    }
                }
            }
            w.write_record(&columns).map_err(err)?;
            for row in rows {
                w.write_record(columns.iter().map(|c| cell(&row[*c])))
                    .map_err(err)?;
            }
        }
        Value::Object(fields) => {
            w.write_record(["field", "value"]).map_err(err)?;
            for (k, v) in fields {
                w.write_record([k.as_str(), &cell(v)]).map_err(err)?;
            }
        }
        Value::Array(items) => {
            w.write_record(["value"]).map_err(err)?;
            for v in items {
                w.write_record([cell(v)]).map_err(err)?;
            }
        }
        other => {
            w.write_record(["value"]).map_err(err)?;
            w.write_record([cell(other)]).map_err(err)?;
        }
    }
    w.into_inner()
        .map_err(|e| AppError::Internal(format!("csv: {e}")))
}

/// Opens one sealed value (hex), or says why it cannot be read.
fn open(key: Option<&SecretKey>, subject: &str, field: &str, sealed_hex: &str) -> Value {
    let opened = key.and_then(|k| {
        let bytes = hex::decode(sealed_hex).ok()?;
        k.open(&bytes, &field_context(subject, field)).ok()
    });
    match opened {
        Some(plain) => {
            let text = String::from_utf8_lossy(&plain).into_owned();
            // Values were sealed as JSON text (traits, properties); show them as JSON again.
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        }
        None => json!({"unreadable": "the data key that sealed this value no longer exists"}),
    }
}

/// Opens every `{"$sealed": hex}` inside stored properties: top-level properties were sealed
/// under their own name, those of the `context` object under `context.<name>`.
fn open_properties(key: Option<&SecretKey>, subject: &str, properties: &str) -> Value {
    let mut value: Value = serde_json::from_str(properties).unwrap_or(Value::Null);
    fn walk(v: &mut Value, prefix: &str, key: Option<&SecretKey>, subject: &str) {
        if let Value::Object(map) = v {
            for (name, inner) in map.iter_mut() {
                let field = format!("{prefix}{name}");
                match inner.get("$sealed").and_then(Value::as_str) {
                    Some(hex) => *inner = open(key, subject, &field, hex),
                    None if name == "context" && prefix.is_empty() => {
                        walk(inner, "context.", key, subject)
                    }
                    None => {}
                }
            }
        }
    }
    walk(&mut value, "", key, subject);
    value
}

/// The consent record that allowed keeping an event: the latest grant for its purpose at or
/// before the event's time, if its purpose needs consent at all.
fn allowing_record<'r>(
    history: &'r [ConsentRecord],
    purpose: &str,
    at: candor_domain::Micros,
) -> Option<&'r ConsentRecord> {
    history
        .iter()
        .filter(|r| r.purpose.as_str() == purpose && r.at <= at && !r.decision.is_restriction())
        .max_by_key(|r| (r.at, r.seq))
        .filter(|r| r.decision == ConsentDecision::Granted)
}

impl App {
    /// Everything held on the subject, decrypted, audited as access. `NotFound` if nothing was
    /// ever held on them.
    pub async fn export_subject(
        &self,
        actor: &str,
        subject: impl Into<SubjectRef>,
    ) -> Result<SubjectExport> {
        let subject = subject.into();
        let (subject, external_id) = self.resolve(&subject)?;
        if !self.store.subject_known(subject.as_str()).await? {
            return Err(AppError::NotFound {
                what: "subject",
                id: "(the given id)".into(),
            });
        }
        let document = self.export_document(external_id, &subject).await?;
        let audit = AuditDraft::new(
            actor,
            candor_domain::AuditAction::SubjectExport,
            subject.as_str(),
            json!({"events": document["events"].as_array().map_or(0, Vec::len), "schema": EXPORT_SCHEMA_VERSION}),
        );
        self.store.append_audit(self.now(), &audit).await?;
        metrics::counter!("candor_subject_exports_total").increment(1);
        Ok(SubjectExport { document })
    }

    async fn export_document(
        &self,
        external_id: Option<&str>,
        subject: &SubjectKey,
    ) -> Result<Value> {
        let now = self.now();
        let key = self.existing_data_key(subject).await?;
        let s = subject.as_str();
        let holdings = self.store.subject_holdings(s, EXPORT_LIMIT).await?;
        let history = self.store.consent_history(subject).await?;
        let mut events = Vec::new();
        let mut event_keys = vec![subject.clone()];
        event_keys.extend(
            holdings
                .sessions
                .iter()
                .filter_map(|k| SubjectKey::parse(k).ok()),
        );
        for k in &event_keys {
            for e in self.store.held_events(k.as_str(), EXPORT_LIMIT).await? {
                let allowed_by = match allowing_record(&history, &e.purpose, e.at) {
                    Some(r) => {
                        json!({"purpose": e.purpose, "consent_record": r.seq, "granted_at": candor_domain::format_micros(r.at)})
                    }
                    None => {
                        json!({"purpose": e.purpose, "basis": self.purpose_basis(&e.purpose)})
                    }
                };
                events.push(json!({
                    "id": e.id,
                    "session": (k != subject).then(|| k.to_string()),
                    "at": candor_domain::format_micros(e.at),
                    "received_at": candor_domain::format_micros(e.received_at),
                    "type": e.kind,
                    "name": e.name,
                    "item_id": e.item_id,
                    "data_category": e.category,
                    "allowed_by": allowed_by,
                    "properties": open_properties(key.as_ref(), k.as_str(), &e.properties),
                }));
            }
        }
        let purposes = self.purposes();
        let current: Vec<Value> = self
            .subject_consents(subject)
            .await?
            .iter()
            .map(|pc| {
                json!({
                    "purpose": pc.purpose.id,
                    "title": pc.purpose.title,
                    "state": pc.status.name(),
                    "allowed": pc.status.allows(),
                })
            })
            .collect();
        let consent_history: Vec<Value> = history
            .iter()
            .map(|r| {
                json!({
                    "seq": r.seq,
                    "purpose": r.purpose,
                    "purpose_title": purposes.get(&r.purpose).map(|p| p.title.clone()),
                    "decision": r.decision.as_str(),
                    "at": candor_domain::format_micros(r.at),
                    "source": r.source.as_str(),
                    "policy_version": r.policy_version,
                    "proof_ip_hash": r.proof.ip_hash,
                    "proof_user_agent": r.proof.user_agent,
                    "proof_notice_hash": r.proof.notice_hash,
                    "proof_double_opt_in_token": r.proof.double_opt_in_token,
                })
            })
            .collect();
        let contact: Vec<Value> = holdings
            .contact_fields
            .iter()
            .map(|(field, sealed)| json!({"field": field, "value": open(key.as_ref(), s, field, sealed)}))
            .collect();
        let profile = self.profile(subject, None).await?;
        let segments = self.segments_of_profile(&profile).await?;
        let memberships: Vec<Value> = std::iter::once(json!({
            "segment": "lifecycle",
            "name": segments.lifecycle.segment,
            "why": segments.lifecycle.explanation,
        }))
        .chain(
            segments
                .segments
                .iter()
                .map(|m| json!({"segment": m.id, "name": m.name, "why": m.explanation})),
        )
        .collect();
        let decisions: Vec<Value> = holdings
            .decisions
            .iter()
            .map(|d| {
                json!({
                    "at": candor_domain::format_micros(d.at),
                    "surface": d.surface,
                    "item_id": d.item_id,
                    "position": d.position,
                    "selected": d.selected,
                    "outcome": d.outcome,
                    "score": d.score,
                    "model_version": d.model_version,
                    "decision_id": d.answer_id,
                })
            })
            .collect();
        let feedback: Vec<Value> = holdings
            .feedback
            .iter()
            .map(|f| {
                json!({
                    "at": candor_domain::format_micros(f.at),
                    "decision_id": f.answer_id,
                    "item_id": f.item_id,
                    "kind": f.kind,
                    "text": f.text_sealed.as_deref().map(|t| open(key.as_ref(), s, "feedback.text", t)),
                    "surface": f.surface,
                    "model_version": f.model_version,
                    "applied": serde_json::from_str::<Value>(&f.applied).unwrap_or(Value::Null),
                })
            })
            .collect();
        let surveys: Vec<Value> = holdings
            .surveys
            .iter()
            .map(|a| json!({"at": candor_domain::format_micros(a.at), "survey": a.survey, "score": a.score}))
            .collect();
        let quarantined: Vec<Value> = holdings
            .quarantined
            .iter()
            .map(|(id, event, at)| json!({"message_id": id, "event": event, "received_at": candor_domain::format_micros(*at)}))
            .collect();
        let requests: Vec<Value> = self
            .store
            .requests_of(s)
            .await?
            .iter()
            .map(|r| requests::view(r, now).to_json())
            .collect();
        let receipts: Vec<Value> = self
            .store
            .receipts_of(s)
            .await?
            .iter()
            .filter_map(|b| serde_json::from_str(b).ok())
            .collect();
        let deliveries: Vec<Value> = holdings
            .deliveries
            .iter()
            .map(|(event_id, kind, status, attempts, at, payload)| {
                json!({
                    "event_id": event_id,
                    "type": kind,
                    "status": status,
                    "attempts": attempts,
                    "created_at": candor_domain::format_micros(*at),
                    "payload": serde_json::from_str::<Value>(payload).unwrap_or(Value::Null),
                })
            })
            .collect();
        let protected: Vec<Value> = holdings
            .protected_attributes
            .iter()
            .map(|(a, v)| json!({"attribute": a, "value": v, "use": "fairness audits only; never used to personalize"}))
            .collect();
        let preferences = match &holdings.preferences {
            Some(body) => serde_json::from_str(body).unwrap_or(Value::Null),
            None => serde_json::to_value(&*self.preferences(subject).await?).unwrap_or(Value::Null),
        };
        let (positions, messages, time_zone) = self.store.subject_journeys(s).await?;
        let journeys = json!({
            "time_zone": time_zone,
            "positions": positions.iter().map(|p| json!({
                "journey": p.journey_id, "step": p.step, "status": p.status,
                "next_at": candor_domain::format_micros(p.wake_at),
            })).collect::<Vec<_>>(),
            "messages": messages.iter().map(|m| json!({
                "journey": m.journey_id, "step": m.step, "channel": m.channel, "status": m.status,
                "reason": m.reason,
                "reasons": serde_json::from_str::<Value>(&m.reasons).unwrap_or(Value::Null),
                "personalization": m.uses,
                "created_at": candor_domain::format_micros(m.created_at),
            })).collect::<Vec<_>>(),
        });
        let mut doc = Map::new();
        doc.insert(
            "about".into(),
            json!({
                "schema": EXPORT_SCHEMA_VERSION,
                "generated_at": candor_domain::format_micros(now),
                "external_id": external_id,
                "subject_key": subject,
                "sessions": holdings.sessions,
                "suppressed": holdings.suppressed,
                "data_key": if holdings.has_data_key { "held" } else { "none" },
                "explanations": "recommendation explanations are computed with each answer and not stored; the decisions below are what was shown",
            }),
        );
        doc.insert("contact".into(), Value::Array(contact));
        doc.insert("consents".into(), Value::Array(current));
        doc.insert("consent_history".into(), Value::Array(consent_history));
        doc.insert("preferences".into(), preferences);
        doc.insert("events".into(), Value::Array(events));
        doc.insert(
            "profile".into(),
            serde_json::to_value(&profile).unwrap_or(Value::Null),
        );
        doc.insert("segments".into(), Value::Array(memberships));
        doc.insert("protected_attributes".into(), Value::Array(protected));
        doc.insert("decisions".into(), Value::Array(decisions));
        doc.insert("quarantined_messages".into(), Value::Array(quarantined));
        doc.insert("feedback".into(), Value::Array(feedback));
        doc.insert("survey_answers".into(), Value::Array(surveys));
        doc.insert("rights_requests".into(), Value::Array(requests));
        doc.insert("erasure_receipts".into(), Value::Array(receipts));
        doc.insert("webhook_deliveries".into(), Value::Array(deliveries));
        doc.insert("journeys".into(), journeys);
        Ok(Value::Object(doc))
    }

    /// The legal basis of a purpose by id, in words, for events kept without consent.
    fn purpose_basis(&self, purpose: &str) -> String {
        candor_domain::PurposeId::parse(purpose)
            .ok()
            .and_then(|id| {
                self.purposes()
                    .get(&id)
                    .map(|p| p.legal_basis.as_str().to_owned())
            })
            .unwrap_or_else(|| "unknown purpose".into())
    }
}
