//! Reading and verifying the audit log.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ts;
use crate::auth::{Auditor, Auth};
use crate::extract::ApiQuery;
use crate::{ApiError, AppState};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(audit_log))
        .routes(routes!(verify))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    /// Newest entries to return, 1-1000 (default 100).
    pub limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditEntryView {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub details: serde_json::Value,
    pub prev_hash: String,
    pub hash: String,
}

#[derive(Serialize, ToSchema)]
pub struct VerificationView {
    pub valid: bool,
    pub entries: i64,
    pub head_hash: String,
    /// The first broken entry and why, when not valid.
    pub first_broken_seq: Option<i64>,
    pub reason: Option<String>,
}

/// The newest audit entries, newest first.
#[utoipa::path(get, path = "/v1/audit/log", tag = "audit", security(("api_key" = ["auditor"])), params(LogQuery),
    responses((status = 200, body = [AuditEntryView]), (status = 400, body = crate::error::ErrorBody)))]
async fn audit_log(
    State(app): State<AppState>,
    _auth: Auth<Auditor>,
    ApiQuery(q): ApiQuery<LogQuery>,
) -> Result<Json<Vec<AuditEntryView>>, ApiError> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request(
            crate::error::ErrorCode::InvalidQuery,
            "limit must be between 1 and 1000",
        ));
    }
    let entries = app.recent_audit_entries(limit).await?;
    Ok(Json(
        entries
            .into_iter()
            .map(|e| AuditEntryView {
                seq: e.seq,
                at: ts(e.at),
                actor: e.actor,
                action: e.action,
                target: e.target,
                details: serde_json::from_str(&e.details)
                    .unwrap_or(serde_json::Value::String(e.details)),
                prev_hash: e.prev_hash,
                hash: e.hash,
            })
            .collect(),
    ))
}

/// Recomputes the whole hash chain and names the first broken entry.
#[utoipa::path(get, path = "/v1/audit/verify", tag = "audit", security(("api_key" = ["auditor"])), responses((status = 200, body = VerificationView)))]
async fn verify(
    State(app): State<AppState>,
    _auth: Auth<Auditor>,
) -> Result<Json<VerificationView>, ApiError> {
    let v = app.verify_audit_log().await?;
    Ok(Json(VerificationView {
        valid: v.broken.is_none(),
        entries: v.entries,
        head_hash: v.head_hash,
        first_broken_seq: v.broken.as_ref().map(|b| b.seq),
        reason: v.broken.map(|b| b.reason),
    }))
}
