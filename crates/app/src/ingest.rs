//! Ingestion: Segment-spec messages through the inventory, the consent gate, pseudonymization
//! and encryption, into the store.
//!
//! Invariants:
//! - Every message is validated, mapped to a subject key, and minimized against the inventory
//!   and the subject's consent at the moment it is processed. Nothing undeclared and nothing
//!   without an allowing purpose is written.
//! - Contact-category values (and anything quarantined) are sealed with the subject's data key
//!   before they leave this module; no plaintext identifier reaches the store, logs or metrics.
//! - A batch is stored atomically: valid messages together, invalid ones reported by index.

use std::collections::BTreeMap;
use std::sync::Arc;

use candor_domain::envelope::{SecretKey, field_context};
use candor_domain::inventory::{
    DropReason, Inventory, Minimized, UndeclaredEvents, allowing_purpose, minimize,
};
use candor_domain::segment::{Message, MessageKind, parse_message};
use candor_domain::{DataCategory, Micros, Purpose, PurposeId, SubjectConsents, SubjectKey};
use candor_store::{IngestBatch, NewEvent, PreparedMessage};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::{App, AppError, Result};

/// Segment's limits: 32 KB per message, 500 KB per batch request.
pub const MAX_MESSAGE_BYTES: usize = 32 * 1024;
pub const MAX_BATCH_BYTES: usize = 500 * 1024;
/// Most messages one batch may carry.
pub const MAX_BATCH_MESSAGES: usize = 2500;

/// One message that was not accepted, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejected {
    pub index: usize,
    pub message_id: Option<String>,
    pub code: &'static str,
    pub message: String,
}

/// What happened to a request's messages.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IngestReport {
    /// Valid messages (stored, deduplicated, counted without consent, or quarantined).
    pub accepted: usize,
    pub stored: usize,
    pub duplicates: usize,
    /// Accepted but not stored: the subject allows no purpose that may use this data.
    pub without_consent: usize,
    pub quarantined: usize,
    pub properties_dropped: usize,
    pub rejected: Vec<Rejected>,
}

/// One raw message as it arrived: its JSON, or why it could not be read, and its byte size.
pub struct RawMessage {
    pub json: std::result::Result<Value, String>,
    pub bytes: usize,
}

const CONTEXT_KEY: &str = "context";

fn sealed_json(key: &SecretKey, subject: &str, field: &str, value: &Value) -> Value {
    let sealed = key.seal(
        rand::random(),
        value.to_string().as_bytes(),
        &field_context(subject, field),
    );
    serde_json::json!({ "$sealed": hex::encode(sealed) })
}

impl App {
    /// Writes the counters gathered since the last flush. On failure they are kept for the next.
    pub async fn flush_inventory_counts(&self) -> Result<()> {
        let taken = std::mem::take(&mut *self.pending_counts.lock().expect("counts lock"));
        if let Err(e) = self.store.add_inventory_counts(&taken).await {
            let mut pending = self.pending_counts.lock().expect("counts lock");
            for (k, n) in taken {
                *pending.entry(k).or_default() += n;
            }
            return Err(e.into());
        }
        Ok(())
    }

    /// The tracking plan in force.
    pub fn inventory(&self) -> Arc<Inventory> {
        self.inventory.read().expect("inventory lock").clone()
    }

    /// A subject's data key, created and wrapped on first use.
    pub(crate) async fn subject_data_key(&self, subject: &SubjectKey) -> Result<SecretKey> {
        if let Some(k) = self
            .data_keys
            .lock()
            .expect("data key lock")
            .get(subject.as_str())
        {
            return Ok(k.clone());
        }
        let candidate = SecretKey::from_bytes(rand::random());
        let wrapped = self
            .master_key
            .wrap(rand::random(), &candidate, subject.as_str());
        let stored = self
            .store
            .data_key(subject.as_str(), &hex::encode(wrapped), self.now())
            .await?;
        let bytes = hex::decode(stored)
            .map_err(|_| AppError::Internal("stored data key is not hex".into()))?;
        let key = self
            .master_key
            .unwrap_key(&bytes, subject.as_str())
            .map_err(|e| {
                AppError::Internal(format!("data key of a subject cannot be unwrapped: {e}"))
            })?;
        let mut cache = self.data_keys.lock().expect("data key lock");
        if cache.len() > 100_000 {
            cache.clear();
        }
        cache.insert(subject.as_str().to_owned(), key.clone());
        Ok(key)
    }

    /// A snapshot of a subject's consent state, loading it on first use.
    pub(crate) async fn consent_snapshot(&self, subject: &SubjectKey) -> Result<SubjectConsents> {
        self.with_consents(subject, SubjectConsents::clone).await
    }

    /// Processes a request's messages. `kind` is the endpoint's type (`None` for batch).
    pub async fn ingest(
        &self,
        raws: Vec<RawMessage>,
        kind: Option<MessageKind>,
    ) -> Result<IngestReport> {
        if raws.len() > MAX_BATCH_MESSAGES {
            return Err(AppError::invalid(
                "batch",
                format!("at most {MAX_BATCH_MESSAGES} messages per batch"),
            ));
        }
        let received_at = self.now();
        let inventory = self.inventory();
        let purposes = self.purposes();
        let mut report = IngestReport::default();
        let mut batch = IngestBatch {
            received_at,
            ..Default::default()
        };
        let mut outcome_of: Vec<Outcome> = Vec::with_capacity(raws.len());
        let mut rejected_keys: Vec<String> = Vec::new();
        for (index, raw) in raws.into_iter().enumerate() {
            let reject = |code, message: String, id: Option<String>| Rejected {
                index,
                message_id: id,
                code,
                message,
            };
            let value = match raw.json {
                Ok(v) => v,
                Err(e) => {
                    report.rejected.push(reject("malformed_message", e, None));
                    continue;
                }
            };
            if raw.bytes > MAX_MESSAGE_BYTES {
                report.rejected.push(reject(
                    "message_too_large",
                    format!(
                        "{} bytes; a message may be at most {MAX_MESSAGE_BYTES}",
                        raw.bytes
                    ),
                    None,
                ));
                continue;
            }
            let msg = match parse_message(&value, kind, received_at) {
                Ok(m) => m,
                Err(e) => {
                    let id = value
                        .get("messageId")
                        .and_then(Value::as_str)
                        .map(str::to_owned);
                    report
                        .rejected
                        .push(reject("invalid_message", e.to_string(), id));
                    continue;
                }
            };
            match self.prepare(&msg, &value, &inventory, &purposes).await? {
                Prepared::Rejected { key, reason } => {
                    rejected_keys.push(key);
                    report
                        .rejected
                        .push(reject("undeclared_event", reason, Some(msg.message_id)));
                }
                Prepared::Message(p, outcome, dropped) => {
                    report.properties_dropped += dropped;
                    outcome_of.push(outcome);
                    batch.messages.push(*p);
                }
            }
        }
        let result = self.store.ingest(&batch).await?;
        self.note_stored_events(&batch, &result);
        {
            // Counters are statistics: kept in memory and flushed every second, so the batch
            // transaction holds only the rows themselves.
            let mut pending = self.pending_counts.lock().expect("counts lock");
            let fresh = batch
                .messages
                .iter()
                .zip(&result.duplicate)
                .filter(|(_, dup)| !**dup);
            for (key, counter) in fresh.flat_map(|(m, _)| m.counts.iter()) {
                *pending.entry((key.clone(), counter.clone())).or_default() += 1;
            }
            for key in rejected_keys {
                *pending.entry((key, "events_rejected".into())).or_default() += 1;
            }
        }
        for (duplicate, outcome) in result.duplicate.iter().zip(outcome_of) {
            report.accepted += 1;
            if *duplicate {
                report.duplicates += 1;
                continue;
            }
            match outcome {
                Outcome::Stored => report.stored += 1,
                Outcome::WithoutConsent => report.without_consent += 1,
                Outcome::Quarantined => report.quarantined += 1,
            }
        }
        metrics::counter!("candor_ingest_messages_total", "result" => "stored")
            .increment(report.stored as u64);
        metrics::counter!("candor_ingest_messages_total", "result" => "without_consent")
            .increment(report.without_consent as u64);
        metrics::counter!("candor_ingest_messages_total", "result" => "duplicate")
            .increment(report.duplicates as u64);
        metrics::counter!("candor_ingest_messages_total", "result" => "rejected")
            .increment(report.rejected.len() as u64);
        metrics::counter!("candor_ingest_properties_dropped_total")
            .increment(report.properties_dropped as u64);
        Ok(report)
    }

    async fn prepare(
        &self,
        msg: &Message,
        raw: &Value,
        inventory: &Inventory,
        purposes: &BTreeMap<PurposeId, Purpose>,
    ) -> Result<Prepared> {
        // The gate asks about consent as it stands now, when the data would be stored.
        let now = self.now();
        let known = match (&msg.kind, &msg.user_id) {
            (_, Some(u)) => Some(self.subject_key(u)?),
            _ => None,
        };
        let anonymous = match &msg.anonymous_id {
            Some(a) => Some(self.subject_key(a)?),
            None => None,
        };
        let subject = known
            .clone()
            .or(anonymous.clone())
            .expect("parse_message guarantees an identity");
        let key = msg.inventory_key();
        let mut p = PreparedMessage {
            message_id: msg.message_id.clone(),
            ..Default::default()
        };
        let consents = self.consent_snapshot(&subject).await?;
        let mut dropped = 0;
        let mut count_drops = |p: &mut PreparedMessage, m: &Minimized<'_>, prefix: &str| {
            for (name, reason) in &m.dropped {
                let reason = match reason {
                    DropReason::Undeclared => "undeclared",
                    DropReason::NoConsent => "no_consent",
                };
                p.counts
                    .push((key.clone(), format!("dropped:{prefix}{name}:{reason}")));
                dropped += 1;
            }
        };

        match msg.kind {
            MessageKind::Alias => {
                // alias: previousId (often the anonymous id) becomes this user.
                let previous = self.subject_key(msg.previous_id.as_deref().expect("checked"))?;
                p.link = Some((
                    previous.to_string(),
                    subject.to_string(),
                    allowed_purposes(purposes, &consents, now),
                ));
                p.counts.push((key, "events_stored".into()));
                return Ok(Prepared::Message(Box::new(p), Outcome::Stored, 0));
            }
            MessageKind::Identify => {
                let traits = minimize(&msg.traits, &inventory.traits, purposes, &consents, now);
                count_drops(&mut p, &traits, "traits.");
                let mut kept = Map::new();
                for k in &traits.kept {
                    if k.category == &DataCategory::Contact {
                        let sealed = self.subject_data_key(&subject).await?.seal(
                            rand::random(),
                            k.value.to_string().as_bytes(),
                            &field_context(subject.as_str(), k.name),
                        );
                        p.contacts.push((
                            subject.to_string(),
                            k.name.to_owned(),
                            hex::encode(sealed),
                        ));
                    } else {
                        kept.insert(k.name.to_owned(), k.value.clone());
                    }
                }
                for (name, value) in &traits.protected {
                    p.protected.push((
                        subject.to_string(),
                        (*name).to_owned(),
                        value
                            .as_str()
                            .map_or_else(|| value.to_string(), str::to_owned),
                    ));
                }
                if let (Some(anon), Some(known)) = (&anonymous, &known) {
                    p.link = Some((
                        anon.to_string(),
                        known.to_string(),
                        allowed_purposes(purposes, &consents, now),
                    ));
                }
                let stored_anything =
                    !kept.is_empty() || !p.contacts.is_empty() || !p.protected.is_empty();
                if !kept.is_empty() {
                    p.event = Some(NewEvent {
                        subject_key: subject.to_string(),
                        anonymous: known.is_none(),
                        kind: "identify".into(),
                        name: String::new(),
                        item_id: String::new(),
                        category: traits
                            .kept
                            .iter()
                            .find(|k| k.category != &DataCategory::Contact)
                            .map(|k| k.category.to_string())
                            .unwrap_or_default(),
                        purpose: traits
                            .kept
                            .iter()
                            .find(|k| k.category != &DataCategory::Contact)
                            .map(|k| k.purpose.to_string())
                            .unwrap_or_default(),
                        properties: Value::Object(kept).to_string(),
                        at: msg.timestamp,
                    });
                }
                p.counts.push((
                    key,
                    if stored_anything {
                        "events_stored"
                    } else {
                        "events_without_consent"
                    }
                    .into(),
                ));
                p.counts.extend(
                    traits
                        .kept
                        .iter()
                        .map(|k| ("identify".to_owned(), format!("kept:traits.{}", k.name))),
                );
                let outcome = if stored_anything {
                    Outcome::Stored
                } else {
                    Outcome::WithoutConsent
                };
                return Ok(Prepared::Message(Box::new(p), outcome, dropped));
            }
            _ => {}
        }

        let Some(spec) = inventory.events.get(&key) else {
            return Ok(match inventory.undeclared_events {
                UndeclaredEvents::Reject => Prepared::Rejected {
                    reason: format!(
                        "`{key}` is not declared in the tracking plan (GET /v1/admin/inventory)"
                    ),
                    key,
                },
                UndeclaredEvents::Quarantine => {
                    let sealed = self.subject_data_key(&subject).await?.seal(
                        rand::random(),
                        raw.to_string().as_bytes(),
                        &field_context(subject.as_str(), "quarantine"),
                    );
                    p.quarantine = Some((subject.to_string(), key.clone(), hex::encode(sealed)));
                    p.counts.push((key, "events_quarantined".into()));
                    Prepared::Message(Box::new(p), Outcome::Quarantined, 0)
                }
            });
        };
        let Some(purpose) =
            allowing_purpose(&spec.purposes, &spec.category, purposes, &consents, now)
        else {
            p.counts.push((key, "events_without_consent".into()));
            return Ok(Prepared::Message(Box::new(p), Outcome::WithoutConsent, 0));
        };
        let props = minimize(&msg.properties, &spec.properties, purposes, &consents, now);
        count_drops(&mut p, &props, "");
        let context = minimize(&msg.context, &inventory.context, purposes, &consents, now);
        count_drops(&mut p, &context, "context.");
        let mut kept = Map::new();
        let data_key = if props
            .kept
            .iter()
            .chain(context.kept.iter())
            .any(|k| k.category == &DataCategory::Contact)
        {
            Some(self.subject_data_key(&subject).await?)
        } else {
            None
        };
        let put = |into: &mut Map<String, Value>,
                   k: &candor_domain::inventory::KeptProperty<'_>,
                   field: String| {
            let v = match (&data_key, k.category) {
                (Some(dk), DataCategory::Contact) => {
                    sealed_json(dk, subject.as_str(), &field, k.value)
                }
                _ => k.value.clone(),
            };
            into.insert(k.name.to_owned(), v);
        };
        for k in &props.kept {
            put(&mut kept, k, k.name.to_owned());
            p.counts.push((key.clone(), format!("kept:{}", k.name)));
        }
        let mut ctx = Map::new();
        for k in &context.kept {
            put(&mut ctx, k, format!("context.{}", k.name));
        }
        if !ctx.is_empty() {
            kept.insert(CONTEXT_KEY.into(), Value::Object(ctx));
        }
        for (name, value) in props.protected.iter().chain(context.protected.iter()) {
            p.protected.push((
                subject.to_string(),
                (*name).to_owned(),
                value
                    .as_str()
                    .map_or_else(|| value.to_string(), str::to_owned),
            ));
        }
        let item_id = ["product_id", "sku", "item_id"]
            .iter()
            .find_map(|f| {
                kept.get(*f).and_then(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .or_else(|| v.as_i64().map(|n| n.to_string()))
                })
            })
            .unwrap_or_default();
        p.event = Some(NewEvent {
            subject_key: subject.to_string(),
            anonymous: known.is_none(),
            kind: msg.kind.as_str().into(),
            name: msg.name.clone().unwrap_or_default(),
            item_id,
            category: spec.category.to_string(),
            purpose: purpose.to_string(),
            properties: Value::Object(kept).to_string(),
            at: msg.timestamp,
        });
        p.counts.push((key, "events_stored".into()));
        Ok(Prepared::Message(Box::new(p), Outcome::Stored, dropped))
    }
}

/// Purposes this subject allows now, by id.
fn allowed_purposes(
    purposes: &BTreeMap<PurposeId, Purpose>,
    consents: &SubjectConsents,
    now: Micros,
) -> Vec<String> {
    purposes
        .values()
        .filter(|p| consents.status(p, now).allows())
        .map(|p| p.id.to_string())
        .collect()
}

enum Outcome {
    Stored,
    WithoutConsent,
    Quarantined,
}

enum Prepared {
    Message(Box<PreparedMessage>, Outcome, usize),
    Rejected { key: String, reason: String },
}
