//! Profiles and segments: a subject's profile and segments, and the rule segments admins define.
//!
//! The `{id}` in subject paths is the client's own user id; it is pseudonymized on arrival and
//! never stored or logged.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use candor_app::personalization::profiles::{Segment, SubjectSegments};
use candor_domain::profile::{Evidence, Interest, Profile};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ts;
use crate::auth::{Admin, Auth, Recommend};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::{ApiError, AppState};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_profile))
        .routes(routes!(get_subject_segments))
        .routes(routes!(list_segments, create_segment))
        .routes(routes!(get_segment, delete_segment))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PurposeQuery {
    /// Only data usable for this purpose (e.g. `personalization`); default: any allowed purpose.
    pub purpose: Option<String>,
}

/// What an attribute was built from.
#[derive(Serialize, ToSchema)]
pub struct EvidenceView {
    pub events: u64,
    pub views: u64,
    pub carts: u64,
    pub purchases: u64,
    /// Purposes under which this data was used.
    pub purposes: Vec<String>,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
}

impl From<&Evidence> for EvidenceView {
    fn from(e: &Evidence) -> Self {
        EvidenceView {
            events: e.events,
            views: e.views,
            carts: e.carts,
            purchases: e.purchases,
            purposes: e.purposes.iter().map(ToString::to_string).collect(),
            first_seen: e.first_seen.map(ts),
            last_seen: e.last_seen.map(ts),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct InterestView {
    pub category: String,
    pub name: String,
    /// `declared` (the person said so; always ranked first) or `inferred` (from behavior).
    pub source: String,
    pub rank: usize,
    /// 1.0 for declared; the recency-decayed share of behavior for inferred.
    pub score: f64,
    /// For declared interests: what behavior alone scores.
    pub inferred_score: Option<f64>,
    /// `preference` (stored declared interest) or `trait:<name>` (an identify trait).
    pub declared_via: Option<String>,
    /// Declared sensitive interests are shown, never used by segments.
    pub sensitive: bool,
    /// Purposes allowing a declared interest to be used.
    pub declared_purposes: Vec<String>,
    pub evidence: EvidenceView,
}

impl From<&Interest> for InterestView {
    fn from(i: &Interest) -> Self {
        InterestView {
            category: i.category.clone(),
            name: i.name.clone(),
            source: serde_json::to_value(i.source)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            rank: i.rank,
            score: i.score,
            inferred_score: i.inferred_score,
            declared_via: i.declared_via.clone(),
            sensitive: i.sensitive,
            declared_purposes: i
                .declared_purposes
                .iter()
                .map(ToString::to_string)
                .collect(),
            evidence: (&i.evidence).into(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct RfmScoresView {
    /// 1-5 each; see docs/PROFILES.md for the thresholds.
    pub recency: u8,
    pub frequency: u8,
    pub monetary: u8,
}

#[derive(Serialize, ToSchema)]
pub struct RfmView {
    /// Always `inferred` (from consented purchase and activity events).
    pub source: String,
    pub orders: u64,
    pub orders_90d: u64,
    pub orders_365d: u64,
    /// In currency units (cents / 100).
    pub spend: f64,
    pub spend_365d: f64,
    pub days_since_last_purchase: Option<i64>,
    pub days_since_last_seen: Option<i64>,
    pub days_since_first_seen: Option<i64>,
    pub scores: RfmScoresView,
    pub evidence: EvidenceView,
}

#[derive(Serialize, ToSchema)]
pub struct LifecycleView {
    /// new, active, at_risk, lapsed or unknown.
    pub segment: String,
    /// Why, in words.
    pub explanation: String,
}

#[derive(Serialize, ToSchema)]
pub struct ProfileView {
    pub computed_at: String,
    /// Purposes whose consent allowed the data this profile uses.
    pub purposes_used: Vec<String>,
    pub events_used: u64,
    /// Stored events left out because no purpose allows them now.
    pub events_ignored_without_consent: u64,
    /// Declared interests first, then inferred ones by score.
    pub interests: Vec<InterestView>,
    pub rfm: RfmView,
    pub lifecycle: LifecycleView,
    /// The flat attributes rule segments may reference.
    #[schema(value_type = Object)]
    pub attributes: serde_json::Value,
}

impl From<&Profile> for ProfileView {
    fn from(p: &Profile) -> Self {
        let r = &p.rfm;
        ProfileView {
            computed_at: ts(p.computed_at),
            purposes_used: p.purposes_used.iter().map(ToString::to_string).collect(),
            events_used: p.events_used,
            events_ignored_without_consent: p.events_ignored_without_consent,
            interests: p.interests.iter().map(Into::into).collect(),
            rfm: RfmView {
                source: "inferred".into(),
                orders: r.orders,
                orders_90d: r.orders_90d,
                orders_365d: r.orders_365d,
                spend: r.spend_cents as f64 / 100.0,
                spend_365d: r.spend_365d_cents as f64 / 100.0,
                days_since_last_purchase: r.days_since_last_purchase,
                days_since_last_seen: r.days_since_last_seen,
                days_since_first_seen: r.days_since_first_seen,
                scores: RfmScoresView {
                    recency: r.scores.recency,
                    frequency: r.scores.frequency,
                    monetary: r.scores.monetary,
                },
                evidence: (&r.evidence).into(),
            },
            lifecycle: LifecycleView {
                segment: p.lifecycle.segment.as_str().into(),
                explanation: p.lifecycle.explanation.clone(),
            },
            attributes: serde_json::to_value(&p.attributes).unwrap_or_default(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct MembershipView {
    pub id: String,
    pub name: String,
    /// Why the subject is in it, e.g. "rfm.frequency is 5, which is >= 3".
    pub explanation: String,
}

#[derive(Serialize, ToSchema)]
pub struct SubjectSegmentsView {
    pub lifecycle: LifecycleView,
    pub rfm: RfmScoresView,
    /// Every rule segment the subject is in.
    pub segments: Vec<MembershipView>,
}

impl From<SubjectSegments> for SubjectSegmentsView {
    fn from(s: SubjectSegments) -> Self {
        SubjectSegmentsView {
            lifecycle: LifecycleView {
                segment: s.lifecycle.segment.as_str().into(),
                explanation: s.lifecycle.explanation,
            },
            rfm: RfmScoresView {
                recency: s.rfm.recency,
                frequency: s.rfm.frequency,
                monetary: s.rfm.monetary,
            },
            segments: s
                .segments
                .into_iter()
                .map(|m| MembershipView {
                    id: m.id,
                    name: m.name,
                    explanation: m.explanation,
                })
                .collect(),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SegmentInput {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// `{"all"|"any": [rules]}` or `{"attribute", "op", "value"}`; ops `==` `!=` `>` `>=` `<`
    /// `<=` `in`. Protected attributes and sensitive categories are refused (422).
    #[schema(value_type = Object)]
    pub rule: serde_json::Value,
}

#[derive(Serialize, ToSchema)]
pub struct SegmentView {
    pub id: String,
    pub name: String,
    pub description: String,
    #[schema(value_type = Object)]
    pub rule: serde_json::Value,
    pub created_by: String,
    pub created_at: String,
    /// Set when the rule no longer validates (it then matches no one).
    pub problem: Option<String>,
}

impl From<Segment> for SegmentView {
    fn from(s: Segment) -> Self {
        SegmentView {
            id: s.id,
            name: s.name,
            description: s.description,
            rule: s.rule,
            created_by: s.created_by,
            created_at: ts(s.created_at),
            problem: s.problem,
        }
    }
}

/// A subject's profile, built only from data whose purpose they allow now. Every attribute
/// says where it came from. An unknown subject has an empty profile.
#[utoipa::path(get, path = "/v1/subjects/{id}/profile", tag = "profiles", params(("id" = String, Path, description = "Your user id"), PurposeQuery), security(("api_key" = ["recommend"])),
    responses((status = 200, body = ProfileView), (status = 422, body = crate::error::ErrorBody)))]
async fn get_profile(
    State(app): State<AppState>,
    _auth: Auth<Recommend>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<PurposeQuery>,
) -> Result<Json<ProfileView>, ApiError> {
    let subject = app.subject_key(&id)?;
    let profile = app.profile(&subject, q.purpose.as_deref()).await?;
    Ok(Json((&profile).into()))
}

/// The subject's lifecycle segment and every rule segment they are in, each with why.
#[utoipa::path(get, path = "/v1/subjects/{id}/segments", tag = "profiles", params(("id" = String, Path, description = "Your user id"), PurposeQuery), security(("api_key" = ["recommend"])),
    responses((status = 200, body = SubjectSegmentsView), (status = 422, body = crate::error::ErrorBody)))]
async fn get_subject_segments(
    State(app): State<AppState>,
    _auth: Auth<Recommend>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<PurposeQuery>,
) -> Result<Json<SubjectSegmentsView>, ApiError> {
    let subject = app.subject_key(&id)?;
    let s = app.subject_segments(&subject, q.purpose.as_deref()).await?;
    Ok(Json(s.into()))
}

/// Every rule segment.
#[utoipa::path(get, path = "/v1/admin/segments", tag = "profiles", security(("api_key" = ["admin"])), responses((status = 200, body = [SegmentView])))]
async fn list_segments(
    State(app): State<AppState>,
    _auth: Auth<Admin>,
) -> Result<Json<Vec<SegmentView>>, ApiError> {
    Ok(Json(
        app.segments().await?.into_iter().map(Into::into).collect(),
    ))
}

/// Defines a rule segment (audited). A rule naming a protected attribute or a sensitive
/// category is refused with 422 naming it.
#[utoipa::path(post, path = "/v1/admin/segments", tag = "profiles", request_body = SegmentInput, security(("api_key" = ["admin"])),
    responses((status = 201, body = SegmentView), (status = 422, body = crate::error::ErrorBody)))]
async fn create_segment(
    State(app): State<AppState>,
    auth: Auth<Admin>,
    ApiJson(input): ApiJson<SegmentInput>,
) -> Result<(StatusCode, Json<SegmentView>), ApiError> {
    let s = app
        .create_segment(&auth.actor(), &input.name, &input.description, &input.rule)
        .await?;
    Ok((StatusCode::CREATED, Json(s.into())))
}

/// One rule segment.
#[utoipa::path(get, path = "/v1/admin/segments/{id}", tag = "profiles", params(("id" = String, Path, description = "Segment id")), security(("api_key" = ["admin"])),
    responses((status = 200, body = SegmentView), (status = 404, body = crate::error::ErrorBody)))]
async fn get_segment(
    State(app): State<AppState>,
    _auth: Auth<Admin>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<SegmentView>, ApiError> {
    Ok(Json(app.segment(&id).await?.into()))
}

/// Deletes a rule segment (audited).
#[utoipa::path(delete, path = "/v1/admin/segments/{id}", tag = "profiles", params(("id" = String, Path, description = "Segment id")), security(("api_key" = ["admin"])),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
async fn delete_segment(
    State(app): State<AppState>,
    auth: Auth<Admin>,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    app.delete_segment(&auth.actor(), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
