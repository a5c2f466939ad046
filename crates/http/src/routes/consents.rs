//! A subject's consents: current state per purpose, decisions, history.
//!
//! The `{id}` in these paths is the client's own user id; it is pseudonymized on arrival and
//! never stored or logged.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use candor_app::{ConsentRequest, PurposeConsent};
use candor_domain::{ConsentRecord, ConsentStatus, PrivacySignals};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::purposes::PurposeView;
use super::ts;
use crate::auth::{Auth, Consent, Recommend};
use crate::extract::{ApiJson, ApiPath, PeerIp};
use crate::{ApiError, AppState};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_consents, post_consents))
        .routes(routes!(consent_history))
}

/// Where a subject stands on one purpose.
#[derive(Serialize, ToSchema)]
pub struct ConsentStateView {
    /// granted, denied, not_asked, expired, needs_renewal, not_required, legitimate_interest or
    /// restricted (processing frozen at the person's request).
    pub state: String,
    /// Whether the purpose may use this subject's data now.
    pub allowed: bool,
    pub since: Option<String>,
    pub expires_at: Option<String>,
    /// For granted and needs_renewal: the purpose version consented to, and the current one.
    pub consented_version: Option<u32>,
    pub current_version: Option<u32>,
}

impl From<&ConsentStatus> for ConsentStateView {
    fn from(s: &ConsentStatus) -> Self {
        let mut v = ConsentStateView {
            state: s.name().into(),
            allowed: s.allows(),
            since: None,
            expires_at: None,
            consented_version: None,
            current_version: None,
        };
        match s {
            ConsentStatus::Granted {
                since,
                expires_at,
                consented_version,
            } => {
                v.since = Some(ts(*since));
                v.expires_at = expires_at.map(ts);
                v.consented_version = Some(*consented_version);
                v.current_version = Some(*consented_version);
            }
            ConsentStatus::Denied { since } | ConsentStatus::Restricted { since } => {
                v.since = Some(ts(*since))
            }
            ConsentStatus::Expired { at } => v.expires_at = Some(ts(*at)),
            ConsentStatus::NeedsRenewal {
                consented_version,
                current_version,
            } => {
                v.consented_version = Some(*consented_version);
                v.current_version = Some(*current_version);
            }
            ConsentStatus::NotRequired
            | ConsentStatus::LegitimateInterest
            | ConsentStatus::NotAsked => {}
        }
        v
    }
}

#[derive(Serialize, ToSchema)]
pub struct PurposeConsentView {
    pub purpose: PurposeView,
    pub consent: ConsentStateView,
}

impl From<&PurposeConsent> for PurposeConsentView {
    fn from(pc: &PurposeConsent) -> Self {
        PurposeConsentView {
            purpose: (&pc.purpose).into(),
            consent: (&pc.status).into(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct SubjectConsentsView {
    /// The pseudonymous key under which Candor holds this subject's data.
    pub subject_key: String,
    pub purposes: Vec<PurposeConsentView>,
}

/// One stored decision.
#[derive(Serialize, ToSchema)]
pub struct ConsentRecordView {
    pub seq: i64,
    pub purpose: String,
    pub decision: String,
    pub at: String,
    /// banner, preference_center, api, import, gpc or dnt.
    pub source: String,
    pub policy_version: u32,
    pub proof: ProofView,
}

#[derive(Serialize, ToSchema)]
pub struct ProofView {
    pub ip_hash: Option<String>,
    pub user_agent: Option<String>,
    pub double_opt_in_token: Option<String>,
    /// For banner decisions: `sha256:<hash of the exact notice text>@<banner config version>`.
    pub notice_hash: Option<String>,
}

impl From<&ConsentRecord> for ConsentRecordView {
    fn from(r: &ConsentRecord) -> Self {
        ConsentRecordView {
            seq: r.seq,
            purpose: r.purpose.to_string(),
            decision: r.decision.as_str().into(),
            at: ts(r.at),
            source: r.source.as_str().into(),
            policy_version: r.policy_version,
            proof: ProofView {
                ip_hash: r.proof.ip_hash.clone(),
                user_agent: r.proof.user_agent.clone(),
                double_opt_in_token: r.proof.double_opt_in_token.clone(),
                notice_hash: r.proof.notice_hash.clone(),
            },
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentDecisionInput {
    pub purpose: String,
    /// `granted` or `denied`.
    pub decision: String,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ProofInput {
    /// Defaults to the request's User-Agent header.
    pub user_agent: Option<String>,
    pub double_opt_in_token: Option<String>,
}

/// Decisions to record. `Sec-GPC: 1` and `DNT: 1` headers on this request are recorded as
/// opt-outs of sale/sharing and non-essential tracking purposes, and override grants of them.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentInput {
    #[serde(default)]
    pub consents: Vec<ConsentDecisionInput>,
    /// banner, preference_center, api or import.
    pub source: String,
    #[serde(default)]
    pub proof: Option<ProofInput>,
}

#[derive(Serialize, ToSchema)]
pub struct OverriddenBySignal {
    pub purpose: String,
    /// gpc or dnt.
    pub signal: String,
}

#[derive(Serialize, ToSchema)]
pub struct ConsentChangeResult {
    pub recorded: Vec<ConsentRecordView>,
    /// Grants the request asked for that a browser privacy signal turned into opt-outs.
    pub overridden_by_signal: Vec<OverriddenBySignal>,
    pub current: SubjectConsentsView,
}

async fn current(
    app: &AppState,
    key: &candor_domain::SubjectKey,
) -> Result<SubjectConsentsView, ApiError> {
    let purposes = app.subject_consents(key).await?;
    Ok(SubjectConsentsView {
        subject_key: key.to_string(),
        purposes: purposes.iter().map(Into::into).collect(),
    })
}

/// The subject's state for every declared purpose.
#[utoipa::path(get, path = "/v1/subjects/{id}/consents", tag = "consents", security(("api_key" = ["recommend"])),
    params(("id" = String, Path, description = "Your user id for the subject (pseudonymized on arrival)")),
    responses((status = 200, body = SubjectConsentsView), (status = 422, body = crate::error::ErrorBody)))]
async fn get_consents(
    State(app): State<AppState>,
    _auth: Auth<Recommend>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<SubjectConsentsView>, ApiError> {
    let key = app.subject_key(&id)?;
    Ok(Json(current(&app, &key).await?))
}

/// Records decisions. Effective for every request that starts after this one returns.
#[utoipa::path(post, path = "/v1/subjects/{id}/consents", tag = "consents", request_body = ConsentInput, security(("api_key" = ["consent"])),
    params(("id" = String, Path, description = "Your user id for the subject"),
           ("Sec-GPC" = Option<String>, Header, description = "Global Privacy Control"),
           ("DNT" = Option<String>, Header, description = "Do Not Track")),
    responses((status = 200, body = ConsentChangeResult), (status = 422, body = crate::error::ErrorBody)))]
async fn post_consents(
    State(app): State<AppState>,
    auth: Auth<Consent>,
    ApiPath(id): ApiPath<String>,
    PeerIp(ip): PeerIp,
    headers: HeaderMap,
    ApiJson(input): ApiJson<ConsentInput>,
) -> Result<Json<ConsentChangeResult>, ApiError> {
    let key = app.subject_key(&id)?;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let proof = input.proof.unwrap_or_default();
    let req = ConsentRequest {
        external_id: Some(id.clone()),
        changes: input
            .consents
            .into_iter()
            .map(|c| (c.purpose, c.decision))
            .collect(),
        source: input.source,
        user_agent: proof
            .user_agent
            .or_else(|| header("user-agent").map(str::to_owned)),
        double_opt_in_token: proof.double_opt_in_token,
        notice_hash: None,
        ip,
        signals: PrivacySignals::from_headers(header("sec-gpc"), header("dnt")),
    };
    let outcome = app.record_consents(&auth.actor(), &key, req).await?;
    Ok(Json(ConsentChangeResult {
        recorded: outcome.records.iter().map(Into::into).collect(),
        overridden_by_signal: outcome
            .overridden_by_signal
            .iter()
            .map(|(p, s)| OverriddenBySignal {
                purpose: p.to_string(),
                signal: s.as_str().into(),
            })
            .collect(),
        current: current(&app, &key).await?,
    }))
}

/// Every decision ever recorded for the subject, oldest first, with its proof.
#[utoipa::path(get, path = "/v1/subjects/{id}/consents/history", tag = "consents", security(("api_key" = ["recommend"])),
    params(("id" = String, Path, description = "Your user id for the subject")),
    responses((status = 200, body = [ConsentRecordView]), (status = 422, body = crate::error::ErrorBody)))]
async fn consent_history(
    State(app): State<AppState>,
    _auth: Auth<Recommend>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Vec<ConsentRecordView>>, ApiError> {
    let key = app.subject_key(&id)?;
    Ok(Json(
        app.consent_history(&key)
            .await?
            .iter()
            .map(Into::into)
            .collect(),
    ))
}
