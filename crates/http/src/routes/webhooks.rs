//! Consent-change webhooks: register, list, remove, read the delivery log.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ts;
use crate::auth::{Admin, Auth};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::{ApiError, AppState};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_webhooks, create_webhook))
        .routes(routes!(delete_webhook))
        .routes(routes!(deliveries))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookInput {
    /// Where `consent.changed` events are POSTed, signed with `Candor-Signature`.
    pub url: String,
    /// Also send the subject's external id (the id your systems use) with each change about
    /// one subject. It is kept sealed until delivery. Default false: only the subject key.
    #[serde(default)]
    pub include_external_id: bool,
    /// `changes` (default): `consent.changed` and other subject changes; `messages`: journey
    /// messages (`message.send`) for your sender (ESP, SMS gateway), always with the external id.
    #[serde(default)]
    pub kind: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedWebhookView {
    pub id: String,
    pub url: String,
    /// Shown once: verify `Candor-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
    pub secret: String,
}

#[derive(Serialize, ToSchema)]
pub struct WebhookView {
    pub id: String,
    pub url: String,
    pub active: bool,
    pub created_at: String,
    pub include_external_id: bool,
    /// `changes` or `messages`.
    pub kind: String,
}

#[derive(Serialize, ToSchema)]
pub struct DeliveryView {
    pub id: i64,
    pub event_id: String,
    pub event_type: String,
    /// pending, delivered, failed or cancelled.
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: String,
    pub last_status_code: Option<i64>,
    pub last_error: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeliveriesQuery {
    /// Newest deliveries to return, 1-500 (default 50).
    pub limit: Option<i64>,
}

#[utoipa::path(get, path = "/v1/admin/webhooks", tag = "webhooks", security(("api_key" = ["admin"])), responses((status = 200, body = [WebhookView])))]
async fn list_webhooks(
    State(app): State<AppState>,
    _auth: Auth<Admin>,
) -> Result<Json<Vec<WebhookView>>, ApiError> {
    let hooks = app.list_webhooks().await?;
    Ok(Json(
        hooks
            .into_iter()
            .map(|w| WebhookView {
                id: w.id,
                url: w.url,
                active: w.active,
                created_at: ts(w.created_at),
                include_external_id: w.include_external_id,
                kind: w.kind,
            })
            .collect(),
    ))
}

#[utoipa::path(post, path = "/v1/admin/webhooks", tag = "webhooks", request_body = WebhookInput, security(("api_key" = ["admin"])),
    responses((status = 201, body = CreatedWebhookView), (status = 422, body = crate::error::ErrorBody)))]
async fn create_webhook(
    State(app): State<AppState>,
    auth: Auth<Admin>,
    ApiJson(input): ApiJson<WebhookInput>,
) -> Result<(StatusCode, Json<CreatedWebhookView>), ApiError> {
    let w = app
        .create_webhook(
            &auth.actor(),
            &input.url,
            input.include_external_id,
            input.kind.as_deref().unwrap_or("changes"),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedWebhookView {
            id: w.id,
            url: w.url,
            secret: w.secret,
        }),
    ))
}

/// Stops deliveries to a webhook; pending ones are cancelled, the log is kept.
#[utoipa::path(delete, path = "/v1/admin/webhooks/{id}", tag = "webhooks", security(("api_key" = ["admin"])),
    params(("id" = String, Path, description = "Webhook id")), responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
async fn delete_webhook(
    State(app): State<AppState>,
    auth: Auth<Admin>,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    app.delete_webhook(&auth.actor(), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The delivery log of a webhook, newest first.
#[utoipa::path(get, path = "/v1/admin/webhooks/{id}/deliveries", tag = "webhooks", security(("api_key" = ["admin"])),
    params(("id" = String, Path, description = "Webhook id"), DeliveriesQuery), responses((status = 200, body = [DeliveryView]), (status = 404, body = crate::error::ErrorBody)))]
async fn deliveries(
    State(app): State<AppState>,
    _auth: Auth<Admin>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<DeliveriesQuery>,
) -> Result<Json<Vec<DeliveryView>>, ApiError> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request(
            crate::error::ErrorCode::InvalidQuery,
            "limit must be between 1 and 500",
        ));
    }
    let list = app.webhook_deliveries(&id, limit).await?;
    Ok(Json(
        list.into_iter()
            .map(|d| DeliveryView {
                id: d.id,
                event_id: d.event_id,
                event_type: d.event_type,
                status: d.status,
                attempts: d.attempts,
                next_attempt_at: ts(d.next_attempt_at),
                last_status_code: d.last_status_code,
                last_error: d.last_error,
            })
            .collect(),
    ))
}
