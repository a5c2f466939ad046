//! Profiles and segments (C5): thin use cases over `candor_domain::profile`.
//!
//! Invariants:
//! - A profile is computed per request from stored rows and the subject's consent snapshot (the
//!   same cache every consent read uses), so a revocation shows in the very next profile.
//! - A segment rule is validated against the protected list, the tracking plan and the catalog's
//!   sensitive categories when it is created, and again every time it is evaluated: a rule that
//!   has become invalid (a category turned sensitive, a trait declared protected) matches no one.
//! - Creating and deleting segments is audited in the same transaction.

use std::collections::BTreeMap;

use candor_domain::profile::{
    CategoryInfo, LifecycleSegment, Profile, ProfileInput, RfmScores, Rule, RuleLimits,
    build_profile, parse_rule,
};
use candor_domain::{AuditDraft, PurposeId, SubjectKey};
use candor_store::SegmentRow;
use serde_json::{Value, json};

use crate::{App, AppError, Result};

/// Newest events a profile reads.
pub const PROFILE_EVENT_LIMIT: i64 = 20_000;
/// Most rule segments a deployment may define.
pub const MAX_SEGMENTS: i64 = 500;

/// A rule segment as administrators see it.
#[derive(Debug, Clone)]
pub struct Segment {
    pub id: String,
    pub name: String,
    pub description: String,
    pub rule: Value,
    pub created_by: String,
    pub created_at: candor_domain::Micros,
    /// Why the rule no longer validates (it then matches no one), if it does not.
    pub problem: Option<String>,
}

/// One segment a subject is in, and why.
#[derive(Debug, Clone)]
pub struct Membership {
    pub id: String,
    pub name: String,
    pub explanation: String,
}

/// Every segment a subject is in.
#[derive(Debug, Clone)]
pub struct SubjectSegments {
    pub lifecycle: LifecycleSegment,
    pub rfm: RfmScores,
    pub segments: Vec<Membership>,
}

fn plain(field: &str, s: &str, min: usize, max: usize) -> Result<String> {
    let s = s.trim();
    let n = s.chars().count();
    if n < min || n > max || s.chars().any(char::is_control) {
        return Err(AppError::invalid(
            field,
            format!("must be {min}-{max} characters without control characters"),
        ));
    }
    Ok(s.to_owned())
}

impl App {
    async fn catalog_and_limits(&self) -> Result<(BTreeMap<String, CategoryInfo>, RuleLimits)> {
        let categories = self.store.profile_categories().await?;
        let limits = RuleLimits::new(&self.inventory(), &categories);
        let catalog = categories.into_iter().map(|c| (c.id.clone(), c)).collect();
        Ok((catalog, limits))
    }

    /// A subject's profile from consented data only. An unknown subject has an empty profile.
    /// `for_purpose` narrows it to data usable for that one purpose.
    pub async fn profile(
        &self,
        subject: &SubjectKey,
        for_purpose: Option<&str>,
    ) -> Result<Profile> {
        let for_purpose = match for_purpose {
            Some(p) => {
                let id = PurposeId::parse(p)?;
                self.purpose(&id)?;
                Some(id)
            }
            None => None,
        };
        let purposes = self.purposes();
        let permits = self.permits(subject, &purposes).await?;
        let (catalog, _) = self.catalog_and_limits().await?;
        let (events, withheld) = self
            .store
            .profile_events(&permits, PROFILE_EVENT_LIMIT)
            .await?;
        let declared = self
            .store
            .profile_declared_interests(subject.as_str())
            .await?;
        let inventory = self.inventory();
        Ok(build_profile(&ProfileInput {
            events: &events,
            declared: &declared,
            catalog: &catalog,
            inventory: &inventory,
            permits: &permits,
            withheld,
            now: self.now(),
            for_purpose: for_purpose.as_ref(),
        }))
    }

    fn segment_of(row: SegmentRow, limits: &RuleLimits) -> Result<(Segment, Option<Rule>)> {
        let rule: Value = serde_json::from_str(&row.rule).map_err(|e| {
            AppError::Internal(format!("stored rule of {} is not JSON: {e}", row.id))
        })?;
        let (parsed, problem) = match parse_rule(&rule, limits) {
            Ok(r) => (Some(r), None),
            Err(e) => (None, Some(e.to_string())),
        };
        Ok((
            Segment {
                id: row.id,
                name: row.name,
                description: row.description,
                rule,
                created_by: row.created_by,
                created_at: row.created_at,
                problem,
            },
            parsed,
        ))
    }

    /// Validates and stores a rule segment (audited).
    pub async fn create_segment(
        &self,
        actor: &str,
        name: &str,
        description: &str,
        rule: &Value,
    ) -> Result<Segment> {
        let name = plain("name", name, 1, 100)?;
        let description = plain("description", description, 0, 500)?;
        let (_, limits) = self.catalog_and_limits().await?;
        let rule = parse_rule(rule, &limits)?.to_json();
        if self.store.segment_count().await? >= MAX_SEGMENTS {
            return Err(AppError::invalid(
                "segments",
                format!("at most {MAX_SEGMENTS} segments; delete one first"),
            ));
        }
        let row = SegmentRow {
            id: format!("seg_{}", hex::encode(rand::random::<[u8; 8]>())),
            name,
            description,
            rule: rule.to_string(),
            created_by: actor.to_owned(),
            created_at: self.now(),
        };
        let audit = AuditDraft::new(
            actor,
            candor_domain::AuditAction::SegmentCreate,
            &row.id,
            json!({"name": row.name, "rule": rule}),
        );
        self.store.create_segment(&row, &audit).await?;
        Ok(Self::segment_of(row, &limits)?.0)
    }

    pub async fn segments(&self) -> Result<Vec<Segment>> {
        let (_, limits) = self.catalog_and_limits().await?;
        self.store
            .segments()
            .await?
            .into_iter()
            .map(|r| Self::segment_of(r, &limits).map(|s| s.0))
            .collect()
    }

    pub async fn segment(&self, id: &str) -> Result<Segment> {
        let (_, limits) = self.catalog_and_limits().await?;
        let row = self
            .store
            .segment(id)
            .await?
            .ok_or_else(|| AppError::NotFound {
                what: "segment",
                id: id.to_owned(),
            })?;
        Ok(Self::segment_of(row, &limits)?.0)
    }

    /// Deletes a segment (audited, with the definition it had).
    pub async fn delete_segment(&self, actor: &str, id: &str) -> Result<()> {
        let seg = self.segment(id).await?;
        let audit = AuditDraft::new(
            actor,
            candor_domain::AuditAction::SegmentDelete,
            id,
            json!({"name": seg.name, "rule": seg.rule}),
        );
        Ok(self.store.delete_segment(id, self.now(), &audit).await?)
    }

    /// The subject's lifecycle segment and every rule segment they are in, each with its reason.
    pub async fn subject_segments(
        &self,
        subject: &SubjectKey,
        for_purpose: Option<&str>,
    ) -> Result<SubjectSegments> {
        let profile = self.profile(subject, for_purpose).await?;
        self.segments_of_profile(&profile).await
    }

    /// The lifecycle segment and every rule segment a profile is in, each with its reason.
    pub(crate) async fn segments_of_profile(&self, profile: &Profile) -> Result<SubjectSegments> {
        let (_, limits) = self.catalog_and_limits().await?;
        let mut segments = Vec::new();
        for row in self.store.segments().await? {
            let (seg, rule) = Self::segment_of(row, &limits)?;
            let Some(rule) = rule else { continue };
            let verdict = rule.evaluate(&profile.attributes);
            if verdict.holds {
                segments.push(Membership {
                    id: seg.id,
                    name: seg.name,
                    explanation: verdict.explanation,
                });
            }
        }
        Ok(SubjectSegments {
            lifecycle: profile.lifecycle.clone(),
            rfm: profile.rfm.scores,
            segments,
        })
    }
}
