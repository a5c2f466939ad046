//! Journeys: define, list, run now, read their messages; a person's time zone.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ts;
use crate::auth::{Admin, Auth, Consent};
use crate::extract::{ApiJson, ApiPath, ApiQuery, PeerIp};
use crate::{ApiError, AppState};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_journeys, define_journey))
        .routes(routes!(run_journeys))
        .routes(routes!(journey_messages))
        .routes(routes!(set_time_zone))
        .routes(routes!(request_email_confirmation))
        .routes(routes!(confirm_email))
}

#[derive(Serialize, ToSchema)]
pub struct JourneyView {
    /// The definition as stored: `{"id","name","purpose","trigger","conditions","steps","exits"}`.
    #[schema(value_type = Object)]
    pub journey: serde_json::Value,
    pub active: bool,
    pub created_at: String,
    pub updated_at: String,
}

impl From<candor_app::JourneyInfo> for JourneyView {
    fn from(j: candor_app::JourneyInfo) -> Self {
        JourneyView {
            journey: serde_json::to_value(&j.definition).unwrap_or_default(),
            active: j.active,
            created_at: ts(j.created_at),
            updated_at: ts(j.updated_at),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct JourneyRunView {
    pub steps: u64,
    pub sent: u64,
    pub deferred: u64,
    pub suppressed: u64,
    pub not_entered: u64,
    pub finished: u64,
}

#[derive(Serialize, ToSchema)]
pub struct MessageView {
    pub id: String,
    pub subject_key: String,
    pub step: String,
    pub channel: String,
    /// queued, delivered, failed, deferred or suppressed.
    pub status: String,
    /// Why it was suppressed (no_channel_consent, expired, sensitive_date, channel_cap,
    /// all_channels_cap, quiet_hours_past_expiry) or deferred.
    pub reason: Option<String>,
    /// Why it was sent, in plain language.
    pub reasons: Vec<String>,
    /// What of the person it used: none, declared or behaviour.
    pub personalization: String,
    pub expires_at: String,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct MessagesQuery {
    /// Only this subject's messages (your user id).
    pub subject: Option<String>,
    /// Newest messages to return, 1-1000 (default 100).
    pub limit: Option<i64>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TimeZoneInput {
    /// An IANA time zone such as `Europe/Berlin`.
    pub time_zone: String,
}

#[utoipa::path(get, path = "/v1/admin/journeys", tag = "journeys", security(("api_key" = ["admin"])), responses((status = 200, body = [JourneyView])))]
async fn list_journeys(
    State(app): State<AppState>,
    _auth: Auth<Admin>,
) -> Result<Json<Vec<JourneyView>>, ApiError> {
    Ok(Json(
        app.journeys().await?.into_iter().map(Into::into).collect(),
    ))
}

/// Creates or replaces a journey. A faulty one gets 422 naming the step (`steps[i]`): an
/// unknown channel, a channel without a consent purpose, a cycle without a wait, a successor
/// that does not exist.
#[utoipa::path(post, path = "/v1/admin/journeys", tag = "journeys", request_body(content = Object, description = "A journey definition"), security(("api_key" = ["admin"])),
    responses((status = 201, body = JourneyView), (status = 422, body = crate::error::ErrorBody)))]
async fn define_journey(
    State(app): State<AppState>,
    auth: Auth<Admin>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Result<(StatusCode, Json<JourneyView>), ApiError> {
    let j = app.define_journey(&auth.actor(), body).await?;
    Ok((StatusCode::CREATED, Json(j.into())))
}

/// Advances every due position now (the journey job does the same on its schedule).
#[utoipa::path(post, path = "/v1/admin/journeys/run", tag = "journeys", security(("api_key" = ["admin"])), responses((status = 200, body = JourneyRunView)))]
async fn run_journeys(
    State(app): State<AppState>,
    _auth: Auth<Admin>,
) -> Result<Json<JourneyRunView>, ApiError> {
    let r = app.run_journeys().await?;
    Ok(Json(JourneyRunView {
        steps: r.steps,
        sent: r.sent,
        deferred: r.deferred,
        suppressed: r.suppressed,
        not_entered: r.not_entered,
        finished: r.finished,
    }))
}

#[utoipa::path(get, path = "/v1/admin/journeys/{id}/messages", tag = "journeys", security(("api_key" = ["admin"])),
    params(("id" = String, Path, description = "Journey id"), MessagesQuery),
    responses((status = 200, body = [MessageView]), (status = 404, body = crate::error::ErrorBody)))]
async fn journey_messages(
    State(app): State<AppState>,
    _auth: Auth<Admin>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<MessagesQuery>,
) -> Result<Json<Vec<MessageView>>, ApiError> {
    let subject = q
        .subject
        .as_deref()
        .map(|s| app.subject_key(s))
        .transpose()?;
    let list = app
        .journey_messages(&id, subject.as_ref(), q.limit.unwrap_or(100))
        .await?;
    Ok(Json(
        list.into_iter()
            .map(|m| MessageView {
                reasons: serde_json::from_str(&m.reasons).unwrap_or_default(),
                id: m.id,
                subject_key: m.subject_key,
                step: m.step,
                channel: m.channel,
                status: m.status,
                reason: m.reason,
                personalization: m.uses,
                expires_at: ts(m.expires_at),
                created_at: ts(m.created_at),
                updated_at: ts(m.updated_at),
            })
            .collect(),
    ))
}

/// The time zone a person's calendar days (frequency caps) and quiet hours are counted in.
#[utoipa::path(put, path = "/v1/subjects/{id}/time-zone", tag = "journeys", request_body = TimeZoneInput, security(("api_key" = ["consent"])),
    params(("id" = String, Path, description = "Your user id")),
    responses((status = 204), (status = 422, body = crate::error::ErrorBody)))]
async fn set_time_zone(
    State(app): State<AppState>,
    _auth: Auth<Consent>,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<TimeZoneInput>,
) -> Result<StatusCode, ApiError> {
    let key = app.subject_key(&id)?;
    app.set_time_zone(&key, &input.time_zone).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct PendingConfirmationView {
    /// The purpose the confirmation will grant.
    pub purpose: String,
    /// The token stops working then.
    pub expires_at: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmInput {
    /// The token of the confirmation message.
    pub token: String,
}

#[derive(Serialize, ToSchema)]
pub struct ConfirmedView {
    pub purpose: String,
    /// `granted`.
    pub decision: String,
    /// What the consent record keeps as proof: `double_opt_in:sha256:<hex of the token>`.
    pub proof: String,
    pub at: String,
}

/// Double opt-in: sends the person a confirmation message (template `double_opt_in`, with a
/// one-time token) through the `messages` webhooks. Nothing is granted until they confirm.
#[utoipa::path(post, path = "/v1/subjects/{id}/email-confirmations", tag = "journeys", security(("api_key" = ["consent"])),
    params(("id" = String, Path, description = "Your user id")),
    responses((status = 202, body = PendingConfirmationView), (status = 422, body = crate::error::ErrorBody)))]
async fn request_email_confirmation(
    State(app): State<AppState>,
    _auth: Auth<Consent>,
    ApiPath(id): ApiPath<String>,
) -> Result<(StatusCode, Json<PendingConfirmationView>), ApiError> {
    let key = app.subject_key(&id)?;
    let p = app.request_email_confirmation(&key, &id).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(PendingConfirmationView {
            purpose: p.purpose,
            expires_at: ts(p.expires_at),
        }),
    ))
}

/// Confirms a double opt-in token (your landing page posts it; a plain link would let mail
/// scanners confirm for the person): records the email purpose's grant with the token's hash
/// as proof. A token works once, before it expires; any other is 404.
#[utoipa::path(post, path = "/v1/email/confirm", tag = "journeys", request_body = ConfirmInput,
    responses((status = 200, body = ConfirmedView), (status = 404, body = crate::error::ErrorBody)))]
async fn confirm_email(
    State(app): State<AppState>,
    PeerIp(ip): PeerIp,
    headers: axum::http::HeaderMap,
    ApiJson(input): ApiJson<ConfirmInput>,
) -> Result<Json<ConfirmedView>, ApiError> {
    let ua = headers
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let outcome = app.confirm_email(&input.token, ip, ua).await?;
    let r = outcome.records.first().ok_or_else(|| {
        ApiError::from(candor_app::AppError::Internal(
            "confirmation recorded nothing".into(),
        ))
    })?;
    Ok(Json(ConfirmedView {
        purpose: r.purpose.to_string(),
        decision: r.decision.as_str().into(),
        proof: r.proof.double_opt_in_token.clone().unwrap_or_default(),
        at: ts(r.at),
    }))
}
