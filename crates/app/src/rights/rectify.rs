//! Rectification (correct contact values and traits) and restriction (freeze a purpose).
//!
//! Invariants: a corrected contact value is sealed again under the subject's own key; a
//! corrected trait replaces the value in every stored identify event that holds it (so the
//! profile built from them changes with it); every correction and restriction is audited.
//! Restriction goes into the consent log, so the consent engine enforces it everywhere.

use std::collections::BTreeMap;

use candor_domain::envelope::field_context;
use candor_domain::{
    AuditDraft, ConsentDecision, ConsentProof, ConsentRecord, ConsentSource, DataCategory,
    NewConsent, PurposeId,
};
use candor_store::OutboxEvent;
use serde_json::{Value, json};

use super::SubjectRef;
use crate::{App, AppError, Result};

/// Most fields one rectification may correct.
const MAX_FIELDS: usize = 50;

/// Corrections a person asked for: contact values and traits by their tracking-plan name.
#[derive(Debug, Clone, Default)]
pub struct Rectification {
    pub contact: BTreeMap<String, String>,
    pub traits: BTreeMap<String, Value>,
}

/// What a rectification changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rectified {
    pub contact_fields: usize,
    pub events_rewritten: usize,
    pub protected_attributes: usize,
}

impl App {
    /// Corrects the subject's contact values and traits. Every name must be a trait of the
    /// tracking plan, contact values under the contact category. `NotFound` for an unknown
    /// subject.
    pub async fn rectify_subject(
        &self,
        actor: &str,
        subject: impl Into<SubjectRef>,
        r: Rectification,
    ) -> Result<Rectified> {
        let (subject, _) = self.resolve(&subject.into())?;
        if r.contact.is_empty() && r.traits.is_empty() {
            return Err(AppError::invalid(
                "body",
                "name at least one contact value or trait to correct",
            ));
        }
        if r.contact.len() + r.traits.len() > MAX_FIELDS {
            return Err(AppError::invalid(
                "body",
                format!("at most {MAX_FIELDS} fields per correction"),
            ));
        }
        let inventory = self.inventory();
        for (name, value) in &r.contact {
            match inventory.traits.get(name) {
                Some(spec) if spec.category == DataCategory::Contact => {}
                _ => {
                    return Err(AppError::invalid(
                        format!("contact.{name}"),
                        "is not a contact trait of the tracking plan (GET /v1/admin/inventory)",
                    ));
                }
            }
            if value.trim().is_empty() || value.len() > 1024 {
                return Err(AppError::invalid(
                    format!("contact.{name}"),
                    "must be 1-1024 characters",
                ));
            }
        }
        for (name, value) in &r.traits {
            match inventory.traits.get(name) {
                Some(spec) if spec.category != DataCategory::Contact => {}
                Some(_) => {
                    return Err(AppError::invalid(
                        format!("traits.{name}"),
                        "is a contact value: correct it under `contact`",
                    ));
                }
                None => {
                    return Err(AppError::invalid(
                        format!("traits.{name}"),
                        "is not a trait of the tracking plan (GET /v1/admin/inventory)",
                    ));
                }
            }
            if value.is_object() || value.is_array() || value.is_null() {
                return Err(AppError::invalid(
                    format!("traits.{name}"),
                    "must be a string, number or boolean",
                ));
            }
        }
        if !self.store.subject_known(subject.as_str()).await? {
            return Err(AppError::NotFound {
                what: "subject",
                id: "(the given id)".into(),
            });
        }
        let s = subject.as_str();
        let mut contacts = Vec::new();
        if !r.contact.is_empty() {
            let keys = self.data_keys(std::slice::from_ref(&subject)).await?;
            let key = keys.get(s).ok_or_else(|| {
                AppError::invalid("subject", "is erased and suppressed; nothing can be stored")
            })?;
            for (field, value) in &r.contact {
                // Sealed as JSON text, as ingestion seals it.
                let plain = Value::String(value.clone()).to_string();
                let sealed = key.seal(rand::random(), plain.as_bytes(), &field_context(s, field));
                contacts.push((field.clone(), hex::encode(sealed)));
            }
        }
        let mut rewritten = Vec::new();
        if !r.traits.is_empty() {
            for e in self.store.held_events(s, i64::MAX).await? {
                if e.kind != "identify" {
                    continue;
                }
                let Ok(Value::Object(mut props)) = serde_json::from_str::<Value>(&e.properties)
                else {
                    continue;
                };
                let mut changed = false;
                for (name, value) in &r.traits {
                    if let Some(v) = props.get_mut(name)
                        && v != value
                    {
                        *v = value.clone();
                        changed = true;
                    }
                }
                if changed {
                    rewritten.push((e.id, Value::Object(props).to_string()));
                }
            }
        }
        let protected: Vec<(String, String)> = r
            .traits
            .iter()
            .filter(|(name, _)| inventory.traits.get(*name).is_some_and(|t| t.protected))
            .map(|(name, v)| {
                (
                    name.clone(),
                    v.as_str().map_or_else(|| v.to_string(), str::to_owned),
                )
            })
            .collect();
        let audit = AuditDraft::new(
            actor,
            candor_domain::AuditAction::SubjectRectify,
            s,
            json!({
                "contact_fields": r.contact.keys().collect::<Vec<_>>(),
                "traits": r.traits.keys().collect::<Vec<_>>(),
                "events_rewritten": rewritten.len(),
            }),
        );
        let done = Rectified {
            contact_fields: contacts.len(),
            events_rewritten: rewritten.len(),
            protected_attributes: protected.len(),
        };
        self.store
            .rectify(s, &contacts, &rewritten, &protected, self.now(), &audit)
            .await?;
        self.forget_history(&subject);
        Ok(done)
    }

    /// Restricts processing of the subject's data for `purpose` (or lifts the restriction).
    /// The data stays; no read path may use it for that purpose until lifted.
    pub async fn restrict_processing(
        &self,
        actor: &str,
        subject: impl Into<SubjectRef>,
        purpose: &str,
        restrict: bool,
    ) -> Result<ConsentRecord> {
        let (subject, _) = self.resolve(&subject.into())?;
        let p = PurposeId::parse(purpose)
            .ok()
            .and_then(|id| self.purposes().get(&id).cloned())
            .ok_or_else(|| AppError::NotFound {
                what: "purpose",
                id: purpose.to_owned(),
            })?;
        if !self.store.subject_known(subject.as_str()).await? {
            return Err(AppError::NotFound {
                what: "subject",
                id: "(the given id)".into(),
            });
        }
        let now = self.now();
        let decision = if restrict {
            ConsentDecision::Restricted
        } else {
            ConsentDecision::RestrictionLifted
        };
        let record = NewConsent {
            subject: subject.clone(),
            purpose: p.id.clone(),
            decision,
            at: now,
            source: ConsentSource::Api,
            policy_version: p.version,
            proof: ConsentProof::default(),
        };
        let event_id = crate::new_id("evt");
        let change = json!({"purpose": p.id, "decision": decision, "source": "api", "policy_version": p.version});
        let event = OutboxEvent {
            payload: json!({
                "id": event_id,
                "type": "consent.changed",
                "created_at": candor_domain::format_micros(now),
                "subject_key": subject,
                "changes": [change],
            })
            .to_string(),
            id: event_id,
            event_type: "consent.changed".into(),
            sealed_external_id: None,
            subject_key: Some(subject.to_string()),
        };
        let audit = AuditDraft::new(
            actor,
            candor_domain::AuditAction::SubjectRestrict,
            subject.as_str(),
            json!({"purpose": p.id, "restricted": restrict}),
        );
        let stored = self
            .store
            .append_consents(&subject, &[record], now, &audit, Some(&event))
            .await?;
        self.applied(&subject, &stored);
        stored
            .into_iter()
            .next()
            .ok_or_else(|| AppError::Internal("a restriction was not stored".into()))
    }
}
