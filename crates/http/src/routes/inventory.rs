//! The tracking plan (data inventory) and retention.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use candor_domain::inventory::Inventory;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Admin, Auth};
use crate::extract::ApiJson;
use crate::{ApiError, AppState};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_inventory, put_inventory))
        .routes(routes!(run_retention))
}

#[derive(Serialize, ToSchema)]
pub struct InventoryResponse {
    /// `{"undeclared_events": "reject"|"quarantine", "events": {"track:<name>"|"page"|...: {"category", "purposes", "properties": {name: {"category", "purposes", "protected"?}}}}, "traits": {...}, "context": {...}}`
    #[schema(value_type = Object)]
    pub inventory: serde_json::Value,
    /// Per event key: events_stored, events_without_consent, events_quarantined, events_rejected,
    /// kept:<property>, dropped:<property>:<undeclared|no_consent>.
    #[schema(value_type = Object)]
    pub counts: serde_json::Value,
}

#[derive(Serialize, ToSchema)]
pub struct RetentionResponse {
    #[schema(value_type = Object)]
    pub report: serde_json::Value,
}

/// The tracking plan with live counts of what was kept and dropped.
#[utoipa::path(get, path = "/v1/admin/inventory", tag = "ingestion", security(("api_key" = ["admin"])), responses((status = 200, body = InventoryResponse)))]
async fn get_inventory(
    State(app): State<AppState>,
    _auth: Auth<Admin>,
) -> Result<Json<InventoryResponse>, ApiError> {
    let v = app.inventory_view().await?;
    Ok(Json(InventoryResponse {
        inventory: serde_json::to_value(&v.inventory).unwrap_or_default(),
        counts: serde_json::to_value(&v.counts).unwrap_or_default(),
    }))
}

/// Replaces the tracking plan. Every purpose it names must exist and cover the category.
#[utoipa::path(put, path = "/v1/admin/inventory", tag = "ingestion", request_body(content = Object, description = "The whole tracking plan"), security(("api_key" = ["admin"])),
    responses((status = 200, body = InventoryResponse), (status = 422, body = crate::error::ErrorBody)))]
async fn put_inventory(
    State(app): State<AppState>,
    auth: Auth<Admin>,
    ApiJson(inv): ApiJson<Inventory>,
) -> Result<Json<InventoryResponse>, ApiError> {
    app.set_inventory(&auth.actor(), inv).await?;
    get_inventory(State(app), auth).await
}

/// Applies the retention rules now (they also run on a schedule).
#[utoipa::path(post, path = "/v1/admin/retention/run", tag = "ingestion", security(("api_key" = ["admin"])), responses((status = 200, body = RetentionResponse)))]
async fn run_retention(
    State(app): State<AppState>,
    auth: Auth<Admin>,
) -> Result<(StatusCode, Json<RetentionResponse>), ApiError> {
    let r = app.run_retention(&auth.actor()).await?;
    Ok((
        StatusCode::OK,
        Json(RetentionResponse {
            report: serde_json::to_value(&r).unwrap_or_default(),
        }),
    ))
}
