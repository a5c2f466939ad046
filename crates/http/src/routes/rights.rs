//! Subject rights: export, erasure and its receipt, rectification, restriction, and requests
//! with legal deadlines. Every route needs a `rights` key (or admin).
//!
//! The `{id}` in subject paths is the client's own user id; it is pseudonymized on arrival and
//! never stored or logged.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use candor_app::rights::{NewRequest, Rectification, RequestUpdate, RequestView};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::consents::ConsentRecordView;
use crate::auth::{Auth, Rights};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::{ApiError, AppState};

/// Most ids one bulk erasure takes.
const MAX_BULK_IDS: usize = 10_000;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(export_subject))
        .routes(routes!(erase_subject, rectify_subject))
        .routes(routes!(get_receipt))
        .routes(routes!(erase_bulk))
        .routes(routes!(restrict, lift_restriction))
        .routes(routes!(create_request))
        .routes(routes!(get_request, update_request))
        .routes(routes!(list_requests))
        .routes(routes!(receipt_key))
        .routes(routes!(subject_link))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// `json` (default): one document; `csv`: a zip of one CSV file per section.
    pub format: Option<String>,
}

/// Everything held on the subject: identifiers and contact values (decrypted), consents with
/// proof, preferences, events with their category and allowing consent, profile and segments
/// with reasons, decisions, requests, receipts, webhook deliveries. Audited as data access.
/// The schema is documented in docs/RIGHTS.md.
#[utoipa::path(get, path = "/v1/subjects/{id}/export", tag = "rights", params(("id" = String, Path, description = "Your user id"), ExportQuery), security(("api_key" = ["rights"])),
    responses((status = 200, description = "JSON document, or application/zip for format=csv"), (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
async fn export_subject(
    State(app): State<AppState>,
    auth: Auth<Rights>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<ExportQuery>,
) -> Result<Response, ApiError> {
    let format = q.format.unwrap_or_else(|| "json".into());
    if format != "json" && format != "csv" {
        return Err(candor_app::AppError::invalid(
            "format",
            format!("`{format}` is not json or csv"),
        )
        .into());
    }
    let export = app.export_subject(&auth.actor(), &id).await?;
    Ok(if format == "csv" {
        (
            [
                (header::CONTENT_TYPE, "application/zip"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"subject-export.zip\"",
                ),
            ],
            export.to_csv_zip()?,
        )
            .into_response()
    } else {
        (
            [(header::CONTENT_TYPE, "application/json")],
            export.to_json(),
        )
            .into_response()
    })
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EraseQuery {
    /// Put the subject's pseudonymous key on the suppression list: later events for them are
    /// dropped and counted, never stored.
    pub suppress: Option<bool>,
}

/// A signed erasure receipt, exactly as stored (see docs/RIGHTS.md for its fields).
fn receipt_response(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Erases everything held on the subject and destroys their data key; returns the signed
/// receipt. Erasing again with nothing new held returns the first receipt (200, not 201).
#[utoipa::path(delete, path = "/v1/subjects/{id}", tag = "rights", params(("id" = String, Path, description = "Your user id"), EraseQuery), security(("api_key" = ["rights"])),
    responses((status = 201, description = "Erased now: the signed receipt"), (status = 200, description = "Erased before: the first receipt"), (status = 404, body = crate::error::ErrorBody)))]
async fn erase_subject(
    State(app): State<AppState>,
    auth: Auth<Rights>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<EraseQuery>,
) -> Result<Response, ApiError> {
    let done = app
        .erase_subject(&auth.actor(), &id, q.suppress.unwrap_or(false))
        .await?;
    let status = if done.erased_now {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(receipt_response(status, done.body))
}

/// The receipt of the subject's latest erasure.
#[utoipa::path(get, path = "/v1/subjects/{id}/erasure", tag = "rights", params(("id" = String, Path, description = "Your user id")), security(("api_key" = ["rights"])),
    responses((status = 200, description = "The signed receipt"), (status = 404, body = crate::error::ErrorBody)))]
async fn get_receipt(
    State(app): State<AppState>,
    _auth: Auth<Rights>,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    Ok(receipt_response(
        StatusCode::OK,
        app.erasure_receipt(&id).await?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkErasureInput {
    /// Your user ids, at most 10,000.
    pub ids: Vec<String>,
    #[serde(default)]
    pub suppress: bool,
}

#[derive(Serialize, ToSchema)]
pub struct BulkErasureView {
    pub erased: usize,
    pub already_erased: usize,
    /// Positions in `ids` that name no known subject.
    pub unknown: Vec<usize>,
    /// Request ids of the receipts, in the order erased.
    pub receipts: Vec<String>,
}

/// Erases many subjects (500 per transaction). Unknown ids are listed, not fatal.
#[utoipa::path(post, path = "/v1/erasures", tag = "rights", request_body = BulkErasureInput, security(("api_key" = ["rights"])),
    responses((status = 200, body = BulkErasureView), (status = 422, body = crate::error::ErrorBody)))]
async fn erase_bulk(
    State(app): State<AppState>,
    auth: Auth<Rights>,
    ApiJson(input): ApiJson<BulkErasureInput>,
) -> Result<Json<BulkErasureView>, ApiError> {
    if input.ids.is_empty() || input.ids.len() > MAX_BULK_IDS {
        return Err(
            candor_app::AppError::invalid("ids", format!("give 1 to {MAX_BULK_IDS} ids")).into(),
        );
    }
    let r = app
        .erase_subjects(&auth.actor(), &input.ids, input.suppress)
        .await?;
    Ok(Json(BulkErasureView {
        erased: r.erased,
        already_erased: r.already_erased,
        unknown: r.unknown,
        receipts: r.receipts.into_iter().map(|r| r.request_id).collect(),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RectificationInput {
    /// Corrected contact values by trait name (e.g. `{"email": "new@example.com"}`).
    #[serde(default)]
    pub contact: std::collections::BTreeMap<String, String>,
    /// Corrected traits by name (strings, numbers, booleans).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub traits: std::collections::BTreeMap<String, serde_json::Value>,
}

#[derive(Serialize, ToSchema)]
pub struct RectifiedView {
    pub contact_fields: usize,
    pub events_rewritten: usize,
    pub protected_attributes: usize,
}

/// Corrects contact values (sealed again under the subject's key) and traits (every stored
/// identify event holding them is rewritten, so the profile follows). Audited.
#[utoipa::path(patch, path = "/v1/subjects/{id}", tag = "rights", params(("id" = String, Path, description = "Your user id")), request_body = RectificationInput, security(("api_key" = ["rights"])),
    responses((status = 200, body = RectifiedView), (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
async fn rectify_subject(
    State(app): State<AppState>,
    auth: Auth<Rights>,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<RectificationInput>,
) -> Result<Json<RectifiedView>, ApiError> {
    let done = app
        .rectify_subject(
            &auth.actor(),
            &id,
            Rectification {
                contact: input.contact,
                traits: input.traits,
            },
        )
        .await?;
    Ok(Json(RectifiedView {
        contact_fields: done.contact_fields,
        events_rewritten: done.events_rewritten,
        protected_attributes: done.protected_attributes,
    }))
}

/// Restricts processing for one purpose: the data is kept, but no read path may use it for
/// that purpose until the restriction is lifted. Recorded in the consent log.
#[utoipa::path(put, path = "/v1/subjects/{id}/restrictions/{purpose}", tag = "rights", params(("id" = String, Path, description = "Your user id"), ("purpose" = String, Path, description = "Purpose id")), security(("api_key" = ["rights"])),
    responses((status = 200, body = ConsentRecordView), (status = 404, body = crate::error::ErrorBody)))]
async fn restrict(
    State(app): State<AppState>,
    auth: Auth<Rights>,
    ApiPath((id, purpose)): ApiPath<(String, String)>,
) -> Result<Json<ConsentRecordView>, ApiError> {
    let r = app
        .restrict_processing(&auth.actor(), &id, &purpose, true)
        .await?;
    Ok(Json((&r).into()))
}

/// Lifts a restriction: the grant or denial before it decides again.
#[utoipa::path(delete, path = "/v1/subjects/{id}/restrictions/{purpose}", tag = "rights", params(("id" = String, Path, description = "Your user id"), ("purpose" = String, Path, description = "Purpose id")), security(("api_key" = ["rights"])),
    responses((status = 200, body = ConsentRecordView), (status = 404, body = crate::error::ErrorBody)))]
async fn lift_restriction(
    State(app): State<AppState>,
    auth: Auth<Rights>,
    ApiPath((id, purpose)): ApiPath<(String, String)>,
) -> Result<Json<ConsentRecordView>, ApiError> {
    let r = app
        .restrict_processing(&auth.actor(), &id, &purpose, false)
        .await?;
    Ok(Json((&r).into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestInput {
    /// Your user id for the person.
    pub subject: String,
    /// access, erasure, rectification, restriction or objection (includes opting out of sale
    /// and sharing).
    pub kind: String,
    /// gdpr or ccpa; default `rights.jurisdiction`.
    pub jurisdiction: Option<String>,
    /// api (default), web, email, phone, mail or in_person.
    pub channel: Option<String>,
    /// How the person's identity was verified (e.g. `email link`, `call-back`). Without it the
    /// clock is paused until verification.
    pub verification_method: Option<String>,
    pub details: Option<String>,
    /// RFC 3339, when received earlier than now (entered from an email or call).
    pub received_at: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestUpdateInput {
    /// identity_verified, in_progress, completed or denied.
    pub status: Option<String>,
    /// Mandatory when denying.
    pub reason: Option<String>,
    pub verification_method: Option<String>,
    /// Extend the deadline once (GDPR: by two months; CCPA: by 45 days), inside the first
    /// period.
    #[serde(default)]
    pub extend: bool,
}

#[derive(Serialize, ToSchema)]
pub struct RequestOut {
    pub id: String,
    pub kind: String,
    pub jurisdiction: String,
    pub status: String,
    pub channel: String,
    pub verification_method: Option<String>,
    pub details: String,
    pub received_at: String,
    pub due_at: String,
    pub extended: bool,
    /// Waiting for identity verification: the deadline moves with the pause.
    pub clock_paused: bool,
    pub overdue: bool,
    pub completed_at: Option<String>,
    pub reason: Option<String>,
    /// Days from receipt to completion, less paused time.
    pub fulfilment_days: Option<f64>,
}

impl From<RequestView> for RequestOut {
    fn from(v: RequestView) -> Self {
        let r = v.row;
        RequestOut {
            id: r.id,
            kind: r.kind,
            jurisdiction: r.jurisdiction,
            status: r.status,
            channel: r.channel,
            verification_method: r.verification_method,
            details: r.details,
            received_at: super::ts(r.received_at),
            due_at: super::ts(v.due_at),
            extended: r.extended,
            clock_paused: v.paused,
            overdue: v.overdue,
            completed_at: r.completed_at.map(super::ts),
            reason: r.reason,
            fulfilment_days: v.fulfilment_days,
        }
    }
}

/// Files a rights request (a person's own, or one staff received by email or phone).
#[utoipa::path(post, path = "/v1/requests", tag = "rights", request_body = RequestInput, security(("api_key" = ["rights"])),
    responses((status = 201, body = RequestOut), (status = 422, body = crate::error::ErrorBody)))]
async fn create_request(
    State(app): State<AppState>,
    auth: Auth<Rights>,
    ApiJson(input): ApiJson<RequestInput>,
) -> Result<(StatusCode, Json<RequestOut>), ApiError> {
    let received_at = input
        .received_at
        .as_deref()
        .map(|t| {
            candor_domain::parse_rfc3339(t)
                .map_err(|e| candor_app::AppError::invalid("received_at", e.to_string()))
        })
        .transpose()?;
    let v = app
        .create_request(
            &auth.actor(),
            NewRequest {
                subject: candor_app::rights::SubjectRef::External(input.subject),
                kind: input.kind,
                jurisdiction: input.jurisdiction,
                channel: input.channel,
                verification_method: input.verification_method,
                details: input.details,
                received_at,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(v.into())))
}

/// One request with its deadline as of now.
#[utoipa::path(get, path = "/v1/requests/{id}", tag = "rights", params(("id" = String, Path, description = "Request id")), security(("api_key" = ["rights"])),
    responses((status = 200, body = RequestOut), (status = 404, body = crate::error::ErrorBody)))]
async fn get_request(
    State(app): State<AppState>,
    _auth: Auth<Rights>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<RequestOut>, ApiError> {
    Ok(Json(app.rights_request(&id).await?.into()))
}

/// Moves a request on: verify identity (resumes the clock), extend once, progress, complete,
/// or deny with a reason.
#[utoipa::path(patch, path = "/v1/requests/{id}", tag = "rights", params(("id" = String, Path, description = "Request id")), request_body = RequestUpdateInput, security(("api_key" = ["rights"])),
    responses((status = 200, body = RequestOut), (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
async fn update_request(
    State(app): State<AppState>,
    auth: Auth<Rights>,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<RequestUpdateInput>,
) -> Result<Json<RequestOut>, ApiError> {
    let v = app
        .update_request(
            &auth.actor(),
            &id,
            RequestUpdate {
                status: input.status,
                reason: input.reason,
                verification_method: input.verification_method,
                extend: input.extend,
            },
        )
        .await?;
    Ok(Json(v.into()))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RequestsQuery {
    /// received, identity_verified, in_progress, completed or denied.
    pub status: Option<String>,
    /// Only open requests past their deadline.
    pub overdue: Option<bool>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<i64>,
}

/// Requests, newest first.
#[utoipa::path(get, path = "/v1/admin/requests", tag = "rights", params(RequestsQuery), security(("api_key" = ["rights"])),
    responses((status = 200, body = [RequestOut]), (status = 422, body = crate::error::ErrorBody)))]
async fn list_requests(
    State(app): State<AppState>,
    _auth: Auth<Rights>,
    ApiQuery(q): ApiQuery<RequestsQuery>,
) -> Result<Json<Vec<RequestOut>>, ApiError> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(candor_app::AppError::invalid("limit", "must be 1-1000").into());
    }
    let list = app
        .rights_requests(q.status.as_deref(), q.overdue.unwrap_or(false), limit)
        .await?;
    Ok(Json(list.into_iter().map(Into::into).collect()))
}

#[derive(Serialize, ToSchema)]
pub struct ReceiptKey {
    pub algorithm: String,
    pub key_id: String,
    /// The Ed25519 public key, 64 hex characters.
    pub public_key: String,
}

/// The public key that verifies erasure receipts (`candor subject verify-receipt`).
#[utoipa::path(get, path = "/.well-known/candor-receipt-key", tag = "rights", responses((status = 200, body = ReceiptKey)))]
async fn receipt_key(State(app): State<AppState>) -> Json<ReceiptKey> {
    let (key_id, public_key) = app.receipt_public_key();
    Json(ReceiptKey {
        algorithm: "ed25519".into(),
        key_id,
        public_key,
    })
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct LinkInput {
    /// How long the link is valid: `7d`, `12h`, `30m` or seconds; default `pages.link_ttl_hours`,
    /// at most 90 days.
    pub ttl: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct LinkView {
    /// The preference-center link to send the person. Whoever holds it can act as them there.
    pub url: String,
    pub expires_at: String,
}

/// A signed, expiring link to the preference center for one subject (send it to the person, by
/// a channel you already verified). Raising `pages.link_key_id` revokes every link issued.
#[utoipa::path(post, path = "/v1/subjects/{id}/link", tag = "rights", request_body = LinkInput, params(("id" = String, Path, description = "Your user id")), security(("api_key" = ["rights"])),
    responses((status = 201, body = LinkView), (status = 422, body = crate::error::ErrorBody)))]
async fn subject_link(
    State(app): State<AppState>,
    _auth: Auth<Rights>,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<LinkInput>,
) -> Result<(axum::http::StatusCode, Json<LinkView>), ApiError> {
    let ttl = input
        .ttl
        .as_deref()
        .map(candor_app::access::links::parse_ttl)
        .transpose()?;
    let link = app.issue_subject_link(&id, ttl)?;
    Ok((
        axum::http::StatusCode::CREATED,
        Json(LinkView {
            url: link.url,
            expires_at: candor_domain::format_micros(link.expires_at),
        }),
    ))
}
