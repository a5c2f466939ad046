//! Fairness audits of the decision log and the bias incident log.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use candor_app::governance::fairness::Incident;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ts;
use crate::auth::{Admin, Auditor, Auth};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::{ApiError, AppState};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(run_audit))
        .routes(routes!(latest_report))
        .routes(routes!(list_incidents))
        .routes(routes!(update_incident))
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct AuditRunInput {
    /// Protected attributes to slice by (default: `fairness.attributes` from the configuration).
    pub attributes: Option<Vec<String>>,
    /// Only decisions of this surface (e.g. `offer`).
    pub surface: Option<String>,
    /// How many days back to audit (default: `fairness.lookback_days`).
    pub since_days: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditRunView {
    pub run_id: i64,
    pub decisions: usize,
    /// Findings in plain language with what to do about each (see docs/FAIRNESS.md).
    #[schema(value_type = Vec<Object>)]
    pub findings: serde_json::Value,
    pub incidents_opened: Vec<i64>,
    pub incidents_updated: Vec<i64>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    /// `json` (default) or `html` (a self-contained report with charts).
    pub format: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct IncidentQuery {
    /// open, mitigating or resolved; all when absent.
    pub status: Option<String>,
    /// 1-1000, default 100.
    pub limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct IncidentView {
    pub id: i64,
    /// Stable identity of the problem across audits, e.g. `four_fifths:sex`.
    pub finding_key: String,
    pub metric: String,
    /// low, medium or high.
    pub severity: String,
    pub groups_affected: String,
    pub value: f64,
    pub magnitude: f64,
    pub summary: String,
    pub recommended_action: String,
    /// open, mitigating or resolved.
    pub status: String,
    pub action_taken: Option<String>,
    pub resolution: Option<String>,
    pub opened_at: String,
    pub last_seen_at: String,
    pub updated_at: String,
}

impl From<Incident> for IncidentView {
    fn from(i: Incident) -> Self {
        IncidentView {
            id: i.id,
            finding_key: i.input.finding_key,
            metric: i.input.metric,
            severity: i.input.severity,
            groups_affected: i.input.groups_affected,
            value: i.input.value,
            magnitude: i.input.magnitude,
            summary: i.input.summary,
            recommended_action: i.input.recommended_action,
            status: i.status,
            action_taken: i.action_taken,
            resolution: i.resolution,
            opened_at: ts(i.opened_at),
            last_seen_at: ts(i.last_seen_at),
            updated_at: ts(i.updated_at),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IncidentUpdate {
    /// open, mitigating or resolved (resolved needs a resolution).
    pub status: String,
    pub action_taken: Option<String>,
    pub resolution: Option<String>,
}

/// Audits the decision log by protected group now; findings open or update incidents.
#[utoipa::path(post, path = "/v1/audit/fairness/runs", tag = "audit", request_body = AuditRunInput, security(("api_key" = ["admin"])),
    responses((status = 201, body = AuditRunView), (status = 422, body = crate::error::ErrorBody)))]
async fn run_audit(
    State(app): State<AppState>,
    auth: Auth<Admin>,
    ApiJson(input): ApiJson<AuditRunInput>,
) -> Result<(StatusCode, Json<AuditRunView>), ApiError> {
    let mut req = app.default_fairness_request();
    if let Some(a) = input.attributes {
        req.attributes = a;
    }
    req.surface = input.surface;
    if let Some(days) = input.since_days {
        if days == 0 || days > 3650 {
            return Err(candor_app::AppError::invalid("since_days", "must be 1-3650").into());
        }
        req.since = app.now() - i64::from(days) * candor_domain::MICROS_PER_DAY;
    }
    let run = app.run_fairness(&auth.actor(), &req).await?;
    Ok((
        StatusCode::CREATED,
        Json(AuditRunView {
            run_id: run.run_id,
            decisions: run.decisions,
            findings: serde_json::to_value(&run.findings).unwrap_or_default(),
            incidents_opened: run.incidents_opened,
            incidents_updated: run.incidents_updated,
        }),
    ))
}

/// The latest audit report: JSON (`{"report","findings"}`) or a self-contained HTML page.
#[utoipa::path(get, path = "/v1/audit/fairness/latest", tag = "audit", params(ReportQuery), security(("api_key" = ["auditor"])),
    responses((status = 200, description = "JSON document or HTML report"), (status = 404, body = crate::error::ErrorBody)))]
async fn latest_report(
    State(app): State<AppState>,
    _auth: Auth<Auditor>,
    ApiQuery(q): ApiQuery<ReportQuery>,
) -> Result<Response, ApiError> {
    let (report, findings, _) = app.latest_fairness_report().await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            crate::error::ErrorCode::NotFound,
            "no fairness audit has run yet; POST /v1/audit/fairness/runs",
        )
    })?;
    match q.format.as_deref().unwrap_or("json") {
        "json" => Ok((
            [(header::CONTENT_TYPE, "application/json")],
            candor_fairness::render_json(&report, &findings),
        )
            .into_response()),
        "html" => Ok((
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            candor_fairness::render_html(&report, &findings),
        )
            .into_response()),
        other => Err(ApiError::bad_request(
            crate::error::ErrorCode::InvalidQuery,
            format!("format `{other}` is not json or html"),
        )),
    }
}

/// The bias incident log, newest first.
#[utoipa::path(get, path = "/v1/audit/incidents", tag = "audit", params(IncidentQuery), security(("api_key" = ["auditor"])),
    responses((status = 200, body = [IncidentView]), (status = 422, body = crate::error::ErrorBody)))]
async fn list_incidents(
    State(app): State<AppState>,
    _auth: Auth<Auditor>,
    ApiQuery(q): ApiQuery<IncidentQuery>,
) -> Result<Json<Vec<IncidentView>>, ApiError> {
    let list = app
        .incidents(q.status.as_deref(), q.limit.unwrap_or(100))
        .await?;
    Ok(Json(list.into_iter().map(Into::into).collect()))
}

/// Records the action taken on an incident, or its resolution.
#[utoipa::path(patch, path = "/v1/audit/incidents/{id}", tag = "audit", request_body = IncidentUpdate, security(("api_key" = ["admin"])),
    params(("id" = i64, Path, description = "Incident id")),
    responses((status = 200, body = IncidentView), (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
async fn update_incident(
    State(app): State<AppState>,
    auth: Auth<Admin>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(input): ApiJson<IncidentUpdate>,
) -> Result<Json<IncidentView>, ApiError> {
    let i = app
        .update_incident(
            &auth.actor(),
            id,
            &input.status,
            input.action_taken.as_deref(),
            input.resolution.as_deref(),
        )
        .await?;
    Ok(Json(i.into()))
}
