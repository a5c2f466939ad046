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

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use candor_domain::envelope::{SecretKey, field_context};
use candor_domain::inventory::{DropReason, Inventory, Minimized, UndeclaredEvents, minimize};
use candor_domain::message::{Message, MessageKind, parse_message};
use candor_domain::{DataCategory, Permits, PrivacySignals, Purpose, PurposeId, SubjectKey};
use candor_store::{IngestBatch, NewEvent, PreparedMessage};
use serde_json::Value;

use crate::{App, AppError, Result};

/// Segment's limits: 32 KB per message, 500 KB per batch request.
pub const MAX_MESSAGE_BYTES: usize = 32 * 1024;
pub const MAX_BATCH_BYTES: usize = 500 * 1024;
/// Most messages one batch may carry.
pub const MAX_BATCH_MESSAGES: usize = 2500;

/// Why a message was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectCode {
    /// Not JSON, or not an object.
    MalformedMessage,
    MessageTooLarge,
    /// Fails the Segment spec (a missing identity, a bad timestamp, ...).
    InvalidMessage,
    /// The tracking plan does not declare it, and undeclared events are rejected.
    UndeclaredEvent,
}

impl RejectCode {
    pub fn as_str(self) -> &'static str {
        match self {
            RejectCode::MalformedMessage => "malformed_message",
            RejectCode::MessageTooLarge => "message_too_large",
            RejectCode::InvalidMessage => "invalid_message",
            RejectCode::UndeclaredEvent => "undeclared_event",
        }
    }
}

/// One message that was not accepted, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub index: usize,
    pub message_id: Option<String>,
    pub code: RejectCode,
    pub message: String,
}

/// What happened to a request's messages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestReport {
    /// Valid messages (stored, deduplicated, counted without consent, or quarantined).
    pub accepted: usize,
    pub stored: usize,
    pub duplicates: usize,
    /// Accepted but not stored: the subject allows no purpose that may use this data.
    pub without_consent: usize,
    pub quarantined: usize,
    /// Accepted but dropped: the subject was erased with suppression, so nothing of theirs
    /// is stored again.
    pub suppressed: usize,
    pub properties_dropped: usize,
    pub rejected: Vec<Rejected>,
}

/// One raw message as it arrived: its JSON, or why it could not be read, and its byte size.
pub struct RawMessage {
    pub json: std::result::Result<Value, String>,
    pub bytes: usize,
}

const CONTEXT_KEY: &str = "context";
/// The field an external id is sealed under (bound into its ciphertext).
const EXTERNAL_ID_FIELD: &str = "external_id";

/// A kept property's value as it is stored: as sent, or sealed (`{"$sealed":"<hex>"}`) when
/// its category is contact.
enum Stored<'a> {
    Plain(&'a Value),
    Sealed(&'a Value, String),
    /// The kept context properties, already written as a JSON object.
    Object(Vec<u8>),
}

/// Writes kept properties as one JSON object in key order, the text a `serde_json::Map` of
/// them would serialize to, without building and cloning that map first (this runs for every
/// event).
fn write_object(
    entries: &mut Vec<(&str, Stored<'_>)>,
    key: Option<&SecretKey>,
    subject: &str,
) -> Vec<u8> {
    entries.sort_by(|a, b| a.0.cmp(b.0));
    let mut out = Vec::with_capacity(64 * entries.len() + 2);
    out.push(b'{');
    for (i, (name, value)) in entries.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut out, name).expect("writing to memory cannot fail");
        out.push(b':');
        match value {
            Stored::Plain(v) => {
                serde_json::to_writer(&mut out, v).expect("writing to memory cannot fail")
            }
            Stored::Sealed(v, field) => {
                let key = key.expect("a sealed value comes with its subject's key");
                let plain = serde_json::to_vec(v).expect("writing to memory cannot fail");
                let sealed = key.seal(rand::random(), &plain, &field_context(subject, field));
                out.extend_from_slice(b"{\"$sealed\":\"");
                let start = out.len();
                out.resize(start + 2 * sealed.len(), 0);
                hex::encode_to_slice(&sealed, &mut out[start..])
                    .expect("the slice is twice the input's length");
                out.extend_from_slice(b"\"}");
            }
            Stored::Object(o) => out.extend_from_slice(o),
        }
    }
    out.push(b'}');
    out
}

/// One of the inventory's live counters that a message adds one to, if it turns out to be new.
/// Names are only spelled out once per request and counter, not per message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Counter<'a> {
    Named(&'static str),
    /// `kept:<section prefix><property>`
    Kept(Section, &'a str),
    /// `dropped:<section prefix><property>:<reason>`
    Dropped(Section, &'a str, DropReason),
}

/// Where in a message a property sits. An enum rather than its name prefix because counters are
/// compared thousands of times per request, and comparing two empty strings is not free: glibc's
/// AVX-512 `memcmp` reads them with a masked load from the dangling address Rust gives every
/// empty string, which the CPU resolves by a fault-suppression assist costing about 140 ns
/// (measured here; it was most of the time the counters took).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Section {
    Properties,
    Traits,
    Context,
}

impl Section {
    fn prefix(self) -> &'static str {
        match self {
            Section::Properties => "",
            Section::Traits => "traits.",
            Section::Context => "context.",
        }
    }
}

impl Counter<'_> {
    fn name(&self) -> String {
        let reason = |r: &DropReason| match r {
            DropReason::Undeclared => "undeclared",
            DropReason::NoConsent => "no_consent",
        };
        match self {
            Counter::Named(n) => (*n).to_owned(),
            Counter::Kept(section, name) => format!("kept:{}{name}", section.prefix()),
            Counter::Dropped(section, name, r) => {
                format!("dropped:{}{name}:{}", section.prefix(), reason(r))
            }
        }
    }
}

/// The counters one message adds to, all under its inventory key.
struct Tally<'a> {
    key: String,
    counters: Vec<Counter<'a>>,
}

impl<'a> Tally<'a> {
    fn new(key: String) -> Self {
        Tally {
            key,
            counters: Vec::new(),
        }
    }

    fn with(mut self, counter: &'static str) -> Self {
        self.counters.push(Counter::Named(counter));
        self
    }

    fn drops(&mut self, m: &Minimized<'a>, section: Section) {
        self.counters.extend(
            m.dropped
                .iter()
                .map(|(name, reason)| Counter::Dropped(section, name, *reason)),
        );
    }

    fn dropped(&self) -> usize {
        self.counters
            .iter()
            .filter(|c| matches!(c, Counter::Dropped(..)))
            .count()
    }
}

impl App {
    /// Writes the counters gathered since the last flush. On failure they are kept for the next.
    pub async fn flush_inventory_counts(&self) -> Result<()> {
        let taken = std::mem::take(&mut *self.ingest.pending_counts.lock().expect("counts lock"));
        if let Err(e) = self.store.add_inventory_counts(&taken).await {
            let mut pending = self.ingest.pending_counts.lock().expect("counts lock");
            for (k, n) in taken {
                *pending.entry(k).or_default() += n;
            }
            return Err(e.into());
        }
        Ok(())
    }

    /// The tracking plan in force.
    pub fn inventory(&self) -> Arc<Inventory> {
        self.ingest
            .inventory
            .read()
            .expect("inventory lock")
            .clone()
    }

    /// `external_id` sealed with `subject`'s data key (created if the subject has none), bound
    /// to the subject and the field, as hex: for outbox rows that must carry it until delivery.
    pub(crate) async fn seal_external_id(
        &self,
        subject: &SubjectKey,
        external_id: &str,
    ) -> Result<String> {
        let keys = self.data_keys(std::slice::from_ref(subject)).await?;
        let key = keys.get(subject.as_str()).ok_or_else(|| {
            AppError::invalid("subject", "is erased and suppressed; nothing can be sealed")
        })?;
        Ok(hex::encode(key.seal(
            rand::random(),
            external_id.as_bytes(),
            &field_context(subject.as_str(), EXTERNAL_ID_FIELD),
        )))
    }

    /// Opens what [`App::seal_external_id`] sealed; `None` if it no longer opens (the key was
    /// destroyed, or the value was altered).
    pub(crate) async fn open_external_id(&self, subject: &str, sealed: &str) -> Option<String> {
        let subject = SubjectKey::parse(subject).ok()?;
        let key = self.existing_data_key(&subject).await.ok()??;
        let bytes = hex::decode(sealed).ok()?;
        let plain = key
            .open(&bytes, &field_context(subject.as_str(), EXTERNAL_ID_FIELD))
            .ok()?;
        String::from_utf8(plain).ok()
    }

    /// A subject's existing data key, unwrapped: from memory, else from the store; `None` if
    /// the subject has none (never had, or it was destroyed). Creates nothing.
    pub(crate) async fn existing_data_key(
        &self,
        subject: &SubjectKey,
    ) -> Result<Option<SecretKey>> {
        if let Some(k) = self.ingest.data_keys.get(subject.as_str()) {
            return Ok(Some(k));
        }
        match self.store.wrapped_data_key(subject.as_str()).await? {
            Some(wrapped) => Ok(Some(self.unwrap_stored_key(subject.as_str(), &wrapped)?)),
            None => Ok(None),
        }
    }

    /// Unwraps a stored data key with the master key and keeps it in memory.
    fn unwrap_stored_key(&self, subject: &str, wrapped: &str) -> Result<SecretKey> {
        let bytes = hex::decode(wrapped)
            .map_err(|_| AppError::Internal("stored data key is not hex".into()))?;
        let key = self
            .ingest
            .master_key
            .unwrap_key(&bytes, subject)
            .map_err(|e| {
                AppError::Internal(format!("data key of a subject cannot be unwrapped: {e}"))
            })?;
        self.ingest
            .data_keys
            .insert(subject.to_owned(), key.clone());
        Ok(key)
    }

    /// Forgets a subject's unwrapped data key (after erasure destroyed it).
    pub(crate) fn forget_data_key(&self, subject: &str) {
        self.ingest.data_keys.remove(subject);
    }

    /// Data keys of subjects, unwrapped: from memory, else from the store, creating and
    /// wrapping a key for each subject that has none (in one write, shared with concurrent
    /// ingest batches). A suppressed subject gets none and is missing from the map.
    pub(crate) async fn data_keys(
        &self,
        subjects: &[SubjectKey],
    ) -> Result<HashMap<String, SecretKey>> {
        let mut keys = HashMap::with_capacity(subjects.len());
        let mut candidates = Vec::new();
        for s in subjects {
            match self.ingest.data_keys.get(s.as_str()) {
                Some(k) => {
                    keys.insert(s.to_string(), k);
                }
                None => {
                    let candidate = SecretKey::from_bytes(rand::random());
                    let wrapped =
                        self.ingest
                            .master_key
                            .wrap(rand::random(), &candidate, s.as_str());
                    candidates.push((s.to_string(), hex::encode(wrapped)));
                }
            }
        }
        if candidates.is_empty() {
            return Ok(keys);
        }
        let stored = self.store.data_keys(candidates.clone(), self.now()).await?;
        for ((subject, _), wrapped) in candidates.into_iter().zip(stored) {
            if let Some(wrapped) = wrapped {
                let key = self.unwrap_stored_key(&subject, &wrapped)?;
                keys.insert(subject, key);
            }
        }
        Ok(keys)
    }

    /// Processes a request's messages. `kind` is the endpoint's type (`None` for batch).
    pub async fn ingest(
        &self,
        raws: Vec<RawMessage>,
        kind: Option<MessageKind>,
    ) -> Result<IngestReport> {
        self.ingest_with_signals(raws, kind, PrivacySignals::default())
            .await
    }

    /// [`App::ingest`] for a request that carried browser privacy signals: with `Sec-GPC: 1`
    /// or `DNT: 1`, no purpose the signal opts out of (`sale_or_sharing`,
    /// `non_essential_tracking`) may keep anything of this request, whatever the person's
    /// recorded consent says. A signal only takes permission away.
    pub async fn ingest_with_signals(
        &self,
        raws: Vec<RawMessage>,
        kind: Option<MessageKind>,
        signals: PrivacySignals,
    ) -> Result<IngestReport> {
        if raws.len() > MAX_BATCH_MESSAGES {
            return Err(AppError::invalid(
                "batch",
                format!("at most {MAX_BATCH_MESSAGES} messages per batch"),
            ));
        }
        let received_at = self.now();
        let inventory = self.inventory();
        let mut purposes = self.purposes();
        if signals.gpc || signals.dnt {
            purposes = Arc::new(
                purposes
                    .iter()
                    .filter(|(_, p)| signals.opts_out_of(p).is_none())
                    .map(|(id, p)| (id.clone(), p.clone()))
                    .collect(),
            );
        }
        let mut report = IngestReport::default();
        let mut batch = IngestBatch {
            received_at,
            ..Default::default()
        };
        let mut valid: Vec<(usize, Message, Value)> = Vec::with_capacity(raws.len());
        for (index, raw) in raws.into_iter().enumerate() {
            let reject = |code, message: String, id: Option<String>| Rejected {
                index,
                message_id: id,
                code,
                message,
            };
            let mut value = match raw.json {
                Ok(v) => v,
                Err(e) => {
                    report
                        .rejected
                        .push(reject(RejectCode::MalformedMessage, e, None));
                    continue;
                }
            };
            if raw.bytes > MAX_MESSAGE_BYTES {
                report.rejected.push(reject(
                    RejectCode::MessageTooLarge,
                    format!(
                        "{} bytes; a message may be at most {MAX_MESSAGE_BYTES}",
                        raw.bytes
                    ),
                    None,
                ));
                continue;
            }
            match parse_message(&mut value, kind, received_at) {
                Ok(m) => valid.push((index, m, value)),
                Err(e) => {
                    let id = value
                        .get("messageId")
                        .and_then(Value::as_str)
                        .map(str::to_owned);
                    report
                        .rejected
                        .push(reject(RejectCode::InvalidMessage, e.to_string(), id));
                }
            }
        }
        // Messages that need a data key nobody has unwrapped yet wait for one round: their keys
        // are fetched or created together, then those messages are prepared again.
        let mut prepared: Vec<Option<Prepared>> = (0..valid.len()).map(|_| None).collect();
        let mut keys = HashMap::new();
        // Subjects that got no key because they are on the suppression list.
        let mut suppressed: Vec<SubjectKey> = Vec::new();
        for round in 0..2 {
            let mut missing = Vec::new();
            let rules = Rules {
                inventory: &inventory,
                purposes: &purposes,
                keys: &keys,
            };
            for ((_, msg, value), slot) in valid.iter().zip(prepared.iter_mut()) {
                if slot.is_some() {
                    continue;
                }
                match self.prepare(msg, value, &rules).await? {
                    Prepared::NeedsKey(subject) if suppressed.contains(&subject) => {
                        *slot = Some(suppressed_message(msg));
                    }
                    Prepared::NeedsKey(subject) => missing.push(subject),
                    p => *slot = Some(p),
                }
            }
            if missing.is_empty() {
                break;
            }
            if round == 1 {
                return Err(AppError::Internal(
                    "a subject's data key was created but is not available".into(),
                ));
            }
            missing.sort_unstable();
            missing.dedup();
            keys = self.data_keys(&missing).await?;
            suppressed = missing
                .into_iter()
                .filter(|s| !keys.contains_key(s.as_str()))
                .collect();
        }
        let mut outcome_of: Vec<Outcome> = Vec::with_capacity(valid.len());
        let mut tallies: Vec<Tally<'_>> = Vec::with_capacity(valid.len());
        let mut rejected_keys: Vec<String> = Vec::new();
        // The id each stored message named, beside `batch.messages`, for journey entries.
        let mut user_ids: Vec<Option<&str>> = Vec::with_capacity(valid.len());
        for ((index, msg, _), p) in valid.iter().zip(prepared) {
            match p.expect("every message was prepared") {
                Prepared::Rejected { key, reason } => {
                    rejected_keys.push(key);
                    report.rejected.push(Rejected {
                        index: *index,
                        message_id: Some(msg.message_id.clone()),
                        code: RejectCode::UndeclaredEvent,
                        message: reason,
                    });
                }
                Prepared::Message(p, outcome, tally) => {
                    report.properties_dropped += tally.dropped();
                    outcome_of.push(outcome);
                    tallies.push(tally);
                    user_ids.push(msg.user_id.as_deref());
                    batch.messages.push(*p);
                }
                Prepared::NeedsKey(_) => unreachable!("resolved above"),
            }
        }
        report.rejected.sort_by_key(|r| r.index);
        let batch = Arc::new(batch);
        let result = self.store.ingest(batch.clone()).await?;
        self.note_stored_events(&batch, &result);
        self.note_journey_events(&batch, &user_ids, &result).await;
        {
            // Counters are statistics: kept in memory and flushed every second, so the batch
            // transaction holds only the rows themselves. A request's few distinct counters are
            // summed first, so names are spelled out and the shared map is touched once per
            // counter, not per message.
            let mut counted: HashMap<(&str, Counter<'_>), i64, foldhash::fast::RandomState> =
                HashMap::default();
            let fresh = tallies
                .iter()
                .zip(result.duplicate.iter().zip(&result.suppressed))
                .filter(|(_, (dup, _))| !**dup);
            for (tally, (_, blocked)) in fresh {
                if *blocked {
                    *counted
                        .entry((&tally.key, Counter::Named("events_suppressed")))
                        .or_default() += 1;
                    continue;
                }
                for counter in &tally.counters {
                    *counted.entry((&tally.key, *counter)).or_default() += 1;
                }
            }
            for key in &rejected_keys {
                *counted
                    .entry((key, Counter::Named("events_rejected")))
                    .or_default() += 1;
            }
            let mut pending = self.ingest.pending_counts.lock().expect("counts lock");
            for ((key, counter), n) in counted {
                *pending.entry((key.to_owned(), counter.name())).or_default() += n;
            }
        }
        for ((duplicate, blocked), outcome) in result
            .duplicate
            .iter()
            .zip(&result.suppressed)
            .zip(outcome_of)
        {
            report.accepted += 1;
            if *duplicate {
                report.duplicates += 1;
                continue;
            }
            match outcome {
                _ if *blocked => report.suppressed += 1,
                Outcome::Stored => report.stored += 1,
                Outcome::WithoutConsent => report.without_consent += 1,
                Outcome::Quarantined => report.quarantined += 1,
                Outcome::Suppressed => report.suppressed += 1,
            }
        }
        metrics::counter!("candor_ingest_messages_total", "result" => "stored")
            .increment(report.stored as u64);
        metrics::counter!("candor_ingest_messages_total", "result" => "without_consent")
            .increment(report.without_consent as u64);
        metrics::counter!("candor_ingest_messages_total", "result" => "suppressed")
            .increment(report.suppressed as u64);
        metrics::counter!("candor_ingest_messages_total", "result" => "duplicate")
            .increment(report.duplicates as u64);
        metrics::counter!("candor_ingest_messages_total", "result" => "rejected")
            .increment(report.rejected.len() as u64);
        metrics::counter!("candor_ingest_properties_dropped_total")
            .increment(report.properties_dropped as u64);
        Ok(report)
    }

    async fn prepare<'m>(
        &self,
        msg: &'m Message,
        raw: &Value,
        rules: &Rules<'m, '_>,
    ) -> Result<Prepared<'m>> {
        // The gate asks about consent as it stands now, when the data would be stored.
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
        let ids = Identities {
            known,
            anonymous,
            subject,
        };
        // Gated in place, under the cache's read lock: no copy of the consent state per message.
        self.with_permits(&ids.subject, rules.purposes, |permits| {
            self.gate(msg, raw, rules, &ids, permits)
        })
        .await?
    }

    /// Applies the tracking plan and the consent gate to one message, sealing what must be
    /// sealed; synchronous, so it can run on the cached consent state without copying it.
    fn gate<'m>(
        &self,
        msg: &'m Message,
        raw: &Value,
        rules: &Rules<'m, '_>,
        ids: &Identities,
        permits: &Permits<'_>,
    ) -> Result<Prepared<'m>> {
        let Rules {
            inventory, keys, ..
        } = *rules;
        let Identities {
            known,
            anonymous,
            subject,
        } = ids;
        let mut tally = Tally::new(msg.inventory_key());
        let mut p = PreparedMessage {
            message_id: msg.message_id.clone(),
            ..Default::default()
        };
        let data_key = || {
            keys.get(subject.as_str())
                .cloned()
                .or_else(|| self.ingest.data_keys.get(subject.as_str()))
        };

        match msg.kind {
            MessageKind::Alias => {
                // alias: previousId (often the anonymous id) becomes this user.
                let previous = self.subject_key(msg.previous_id.as_deref().expect("checked"))?;
                p.link = Some((
                    previous.to_string(),
                    subject.to_string(),
                    allowed_purposes(permits),
                ));
                let tally = tally.with("events_stored");
                return Ok(Prepared::Message(Box::new(p), Outcome::Stored, tally));
            }
            MessageKind::Identify => {
                let traits = minimize(&msg.traits, &inventory.traits, permits);
                tally.drops(&traits, Section::Traits);
                let needs_key = traits
                    .kept
                    .iter()
                    .any(|k| k.category == &DataCategory::Contact);
                let key_for_contacts = match (needs_key, data_key()) {
                    (true, None) => return Ok(Prepared::NeedsKey(subject.clone())),
                    (_, k) => k,
                };
                let mut kept = Vec::new();
                for k in &traits.kept {
                    if k.category == &DataCategory::Contact {
                        let sealed = key_for_contacts.as_ref().expect("checked").seal(
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
                        kept.push((k.name, Stored::Plain(k.value)));
                    }
                }
                p.protected = protected_rows(subject, traits.protected.iter());
                if let (Some(anon), Some(known)) = (&anonymous, &known) {
                    p.link = Some((
                        anon.to_string(),
                        known.to_string(),
                        allowed_purposes(permits),
                    ));
                }
                let stored_anything =
                    !kept.is_empty() || !p.contacts.is_empty() || !p.protected.is_empty();
                if !kept.is_empty() {
                    let first_kept = traits
                        .kept
                        .iter()
                        .find(|k| k.category != &DataCategory::Contact);
                    p.event = Some(NewEvent {
                        subject_key: subject.to_string(),
                        anonymous: known.is_none(),
                        kind: "identify".into(),
                        name: String::new(),
                        item_id: String::new(),
                        category: first_kept
                            .map(|k| k.category.to_string())
                            .unwrap_or_default(),
                        purpose: first_kept
                            .map(|k| k.purpose.to_string())
                            .unwrap_or_default(),
                        properties: json_text(write_object(&mut kept, None, subject.as_str())),
                        at: msg.timestamp,
                    });
                }
                let outcome = if stored_anything {
                    tally = tally.with("events_stored");
                    Outcome::Stored
                } else {
                    tally = tally.with("events_without_consent");
                    Outcome::WithoutConsent
                };
                tally.counters.extend(
                    traits
                        .kept
                        .iter()
                        .map(|k| Counter::Kept(Section::Traits, k.name)),
                );
                return Ok(Prepared::Message(Box::new(p), outcome, tally));
            }
            _ => {}
        }

        let Some(spec) = inventory.events.get(&tally.key) else {
            return Ok(match inventory.undeclared_events {
                UndeclaredEvents::Reject => Prepared::Rejected {
                    reason: format!(
                        "`{}` is not declared in the tracking plan (GET /v1/admin/inventory)",
                        tally.key
                    ),
                    key: tally.key,
                },
                UndeclaredEvents::Quarantine => {
                    let Some(data_key) = data_key() else {
                        return Ok(Prepared::NeedsKey(subject.clone()));
                    };
                    let sealed = data_key.seal(
                        rand::random(),
                        as_sent(raw, msg).to_string().as_bytes(),
                        &field_context(subject.as_str(), "quarantine"),
                    );
                    p.quarantine =
                        Some((subject.to_string(), tally.key.clone(), hex::encode(sealed)));
                    let tally = tally.with("events_quarantined");
                    Prepared::Message(Box::new(p), Outcome::Quarantined, tally)
                }
            });
        };
        let Some(purpose) = permits.first_covering(&spec.purposes, &spec.category) else {
            let tally = tally.with("events_without_consent");
            return Ok(Prepared::Message(
                Box::new(p),
                Outcome::WithoutConsent,
                tally,
            ));
        };
        let props = minimize(&msg.properties, &spec.properties, permits);
        tally.drops(&props, Section::Properties);
        let context = minimize(&msg.context, &inventory.context, permits);
        tally.drops(&context, Section::Context);
        let data_key = if props
            .kept
            .iter()
            .chain(context.kept.iter())
            .any(|k| k.category == &DataCategory::Contact)
        {
            match data_key() {
                Some(k) => Some(k),
                None => return Ok(Prepared::NeedsKey(subject.clone())),
            }
        } else {
            None
        };
        let stored = |k: &candor_domain::inventory::KeptProperty<'m>, field: String| {
            if k.category == &DataCategory::Contact {
                Stored::Sealed(k.value, field)
            } else {
                Stored::Plain(k.value)
            }
        };
        let mut kept: Vec<(&str, Stored<'_>)> = Vec::with_capacity(props.kept.len() + 1);
        for k in &props.kept {
            kept.push((k.name, stored(k, k.name.to_owned())));
            tally
                .counters
                .push(Counter::Kept(Section::Properties, k.name));
        }
        let mut ctx: Vec<(&str, Stored<'_>)> = context
            .kept
            .iter()
            .map(|k| (k.name, stored(k, format!("context.{}", k.name))))
            .collect();
        if !ctx.is_empty() {
            // As a map would: the context object replaces a property of the same name.
            kept.retain(|(name, _)| *name != CONTEXT_KEY);
            let ctx = write_object(&mut ctx, data_key.as_ref(), subject.as_str());
            kept.push((CONTEXT_KEY, Stored::Object(ctx)));
        }
        p.protected = protected_rows(
            subject,
            props.protected.iter().chain(context.protected.iter()),
        );
        let item_id = candor_domain::message::ITEM_ID_FIELDS
            .iter()
            .find_map(|f| {
                kept.iter()
                    .find(|(name, _)| name == f)
                    .and_then(|(_, v)| match v {
                        Stored::Plain(v) => v
                            .as_str()
                            .map(str::to_owned)
                            .or_else(|| v.as_i64().map(|n| n.to_string())),
                        _ => None,
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
            properties: json_text(write_object(&mut kept, data_key.as_ref(), subject.as_str())),
            at: msg.timestamp,
        });
        let tally = tally.with("events_stored");
        Ok(Prepared::Message(Box::new(p), Outcome::Stored, tally))
    }
}

/// A message about a suppressed subject that needed a data key: it writes nothing, and is
/// counted as suppressed.
fn suppressed_message<'m>(msg: &'m Message) -> Prepared<'m> {
    let p = PreparedMessage {
        message_id: msg.message_id.clone(),
        ..Default::default()
    };
    let tally = Tally::new(msg.inventory_key()).with("events_suppressed");
    Prepared::Message(Box::new(p), Outcome::Suppressed, tally)
}

/// Rows for protected attributes (fairness audits only), values as text.
fn protected_rows<'v>(
    subject: &SubjectKey,
    attributes: impl Iterator<Item = &'v (&'v str, &'v Value)>,
) -> Vec<(String, String, String)> {
    attributes
        .map(|(name, value)| {
            (
                subject.to_string(),
                (*name).to_owned(),
                value
                    .as_str()
                    .map_or_else(|| value.to_string(), str::to_owned),
            )
        })
        .collect()
}

/// The message as it was sent: `raw` with the objects `parse_message` moved into `msg` put back.
fn as_sent(raw: &Value, msg: &Message) -> Value {
    let mut full = raw.clone();
    if let Some(o) = full.as_object_mut() {
        for (field, moved) in [
            ("properties", &msg.properties),
            ("traits", &msg.traits),
            ("context", &msg.context),
        ] {
            if !moved.is_empty() {
                o.insert(field.to_owned(), Value::Object(moved.clone()));
            }
        }
    }
    full
}

fn json_text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).expect("serde_json writes UTF-8")
}

/// Purposes this subject allows now, by id.
fn allowed_purposes(permits: &Permits<'_>) -> Vec<String> {
    permits.iter().map(|p| p.purpose().to_string()).collect()
}

/// What a request's messages are prepared against: the tracking plan and purposes in force
/// when it arrived, and the data keys fetched for it.
struct Rules<'a, 'k> {
    inventory: &'a Inventory,
    purposes: &'a BTreeMap<PurposeId, Purpose>,
    keys: &'k HashMap<String, SecretKey>,
}

/// Who a message is about: its known and anonymous subject keys, and the one it is filed under.
struct Identities {
    known: Option<SubjectKey>,
    anonymous: Option<SubjectKey>,
    subject: SubjectKey,
}

enum Outcome {
    Stored,
    WithoutConsent,
    Quarantined,
    Suppressed,
}

enum Prepared<'m> {
    Message(Box<PreparedMessage>, Outcome, Tally<'m>),
    Rejected {
        key: String,
        reason: String,
    },
    /// Contact data must be sealed with the subject's data key, which is not unwrapped yet.
    NeedsKey(SubjectKey),
}
