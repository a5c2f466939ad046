//! The audiences room: exporting a segment as an advertising audience (Meta Custom Audiences,
//! Google Customer Match), consented only.
//!
//! Invariants:
//! - A member is included only with a permit for `audiences.purpose`, which must be declared
//!   sale/sharing, asked at export time; a member whose latest decision for it came from a
//!   Global Privacy Control or Do-Not-Track signal is excluded and counted as such
//!   (`domain::audience::may_include`).
//! - A segment whose rule no longer passes validation (protected or sensitive attributes are
//!   refused when it is created) is not exported.
//! - Only SHA-256 hashes of normalized contacts leave Candor or are kept; each export is audited
//!   with its counts included and excluded by reason, and its removal delta is computed against
//!   exactly what the previous export sent (`audience_members`), so a revocation since then is
//!   a removal in the next sync.

use std::collections::{BTreeMap, BTreeSet};

use candor_domain::audience::{
    Exclusion, Platform, may_include, normalize_email, normalize_phone, sha256_hex,
};
use candor_domain::envelope::field_context;
use candor_domain::{AuditDraft, SubjectKey};
use candor_store::{AudienceMember, OutboxEvent};
use serde_json::json;

use crate::{App, AppError, Result};

/// How an export leaves Candor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudienceDelivery {
    /// In the answer (JSON or CSV).
    Answer,
    /// As one `audience.sync` event to the `audiences` webhooks.
    Webhook,
}

/// One export: what it sent and why others were left out.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AudienceExport {
    pub segment: String,
    pub purpose: String,
    pub platform: &'static str,
    /// Segment members in the audience now.
    pub included: u64,
    /// Segment members left out, by reason.
    pub excluded: BTreeMap<&'static str, u64>,
    /// People with contacts who are not in the segment.
    pub not_in_segment: u64,
    pub members: Vec<(String, Option<String>, Option<String>)>,
    /// Members the previous export did not send, and those it sent who are out now.
    pub added: Vec<(Option<String>, Option<String>)>,
    pub removed: Vec<(Option<String>, Option<String>)>,
    pub by_webhook: bool,
}

const PAGE: i64 = 1000;

impl App {
    /// The hashed email and phone of a subject, opened with their data key just now.
    async fn hashed_contacts(
        &self,
        subject: &SubjectKey,
        platform: Platform,
    ) -> Result<(Option<String>, Option<String>)> {
        let Some(key) = self.existing_data_key(subject).await? else {
            return Ok((None, None));
        };
        let (mut email, mut phone) = (None, None);
        for (field, sealed) in self.store.contact_fields(subject.as_str()).await? {
            let Some(plain) = hex::decode(&sealed)
                .ok()
                .and_then(|b| key.open(&b, &field_context(subject.as_str(), &field)).ok())
            else {
                continue;
            };
            // Values were sealed as JSON text.
            let text = String::from_utf8_lossy(&plain);
            let value = serde_json::from_str::<String>(&text).unwrap_or_else(|_| text.into_owned());
            match field.as_str() {
                "email" => email = normalize_email(&value).map(|e| sha256_hex(&e)),
                "phone" => phone = normalize_phone(&value, platform).map(|p| sha256_hex(&p)),
                _ => {}
            }
        }
        Ok((email, phone))
    }

    /// Exports a segment as an audience: its members who granted `audiences.purpose` and sent
    /// no privacy signal, as SHA-256 of their normalized email and phone, with the delta
    /// against the previous export; audited with the counts.
    pub async fn export_audience(
        &self,
        actor: &str,
        segment_id: &str,
        platform: &str,
        delivery: AudienceDelivery,
    ) -> Result<AudienceExport> {
        let platform = Platform::parse(platform)?;
        let segment = self.segment(segment_id).await?;
        if let Some(problem) = &segment.problem {
            return Err(AppError::invalid(
                "segment",
                format!("`{segment_id}` cannot be exported: {problem}"),
            ));
        }
        let purposes = self.purposes();
        let purpose_id = &self.config.audiences.purpose;
        let purpose = purposes
            .values()
            .find(|p| p.id.as_str() == purpose_id)
            .ok_or_else(|| AppError::UnknownPurpose(purpose_id.clone()))?;
        if !purpose.sale_or_sharing {
            return Err(AppError::invalid(
                "audiences.purpose",
                format!(
                    "`{purpose_id}` is not declared sale_or_sharing; an audience needs such a purpose"
                ),
            ));
        }
        if delivery == AudienceDelivery::Webhook
            && !self
                .store
                .list_webhooks()
                .await?
                .iter()
                .any(|w| w.active && w.kind == "audiences")
        {
            return Err(AppError::invalid(
                "delivery",
                "no active webhook of kind `audiences` would receive the audience",
            ));
        }
        let mut excluded: BTreeMap<&'static str, u64> = BTreeMap::new();
        let mut not_in_segment = 0;
        let mut members = Vec::new();
        let mut after = String::new();
        loop {
            let page = self.store.contact_subjects(&after, PAGE).await?;
            for key in &page {
                let subject = SubjectKey::parse(key)?;
                let segments = self.subject_segments(&subject, None).await?;
                if !segments.segments.iter().any(|m| m.id == segment.id) {
                    not_in_segment += 1;
                    continue;
                }
                let (permit, _) = self.permit_and_status(&subject, purpose).await?;
                let latest = self
                    .store
                    .consent_history(&subject)
                    .await?
                    .into_iter()
                    .filter(|r| r.purpose == purpose.id)
                    .max_by_key(|r| r.seq)
                    .map(|r| r.source);
                if let Err(why) = may_include(permit.as_ref(), latest) {
                    *excluded.entry(why.as_str()).or_default() += 1;
                    continue;
                }
                match self.hashed_contacts(&subject, platform).await? {
                    (None, None) => {
                        *excluded.entry(Exclusion::NoContact.as_str()).or_default() += 1
                    }
                    (email, phone) => members.push(AudienceMember {
                        subject_key: key.clone(),
                        email_sha256: email,
                        phone_sha256: phone,
                    }),
                }
            }
            match page.last() {
                Some(last) if page.len() as i64 == PAGE => after = last.clone(),
                _ => break,
            }
        }
        let previous = self.store.audience_members(&segment.id).await?;
        let now_in: BTreeSet<&str> = members.iter().map(|m| m.subject_key.as_str()).collect();
        let before: BTreeSet<&str> = previous.iter().map(|m| m.subject_key.as_str()).collect();
        let pair = |m: &AudienceMember| (m.email_sha256.clone(), m.phone_sha256.clone());
        let added: Vec<_> = members
            .iter()
            .filter(|m| !before.contains(m.subject_key.as_str()))
            .map(pair)
            .collect();
        let removed: Vec<_> = previous
            .iter()
            .filter(|m| !now_in.contains(m.subject_key.as_str()))
            .map(pair)
            .collect();
        let counts = json!({
            "segment": segment.id, "purpose": purpose_id, "platform": platform.as_str(),
            "included": members.len(), "excluded": excluded, "not_in_segment": not_in_segment,
            "added": added.len(), "removed": removed.len(),
            "delivery": if delivery == AudienceDelivery::Webhook { "webhook" } else { "answer" },
        });
        let audit = AuditDraft::new(
            actor,
            candor_domain::AuditAction::AudienceExport,
            &segment.id,
            counts.clone(),
        );
        let hashes = |list: &[(Option<String>, Option<String>)]| -> Vec<serde_json::Value> {
            list.iter()
                .map(|(e, p)| json!({"email_sha256": e, "phone_sha256": p}))
                .collect()
        };
        let event = (delivery == AudienceDelivery::Webhook).then(|| {
            let id = crate::new_id("evt");
            OutboxEvent {
                payload: json!({
                    "id": id, "type": "audience.sync",
                    "created_at": candor_domain::format_micros(self.now()),
                    "counts": counts, "add": hashes(&added), "remove": hashes(&removed),
                })
                .to_string(),
                id,
                event_type: "audience.sync".into(),
                sealed_external_id: None,
                subject_key: None,
            }
        });
        self.store
            .record_audience_sync(&segment.id, &members, self.now(), &audit, event.as_ref())
            .await?;
        Ok(AudienceExport {
            segment: segment.id,
            purpose: purpose_id.clone(),
            platform: platform.as_str(),
            included: members.len() as u64,
            excluded,
            not_in_segment,
            members: members
                .into_iter()
                .map(|m| (m.subject_key, m.email_sha256, m.phone_sha256))
                .collect(),
            added,
            removed,
            by_webhook: event.is_some(),
        })
    }
}
