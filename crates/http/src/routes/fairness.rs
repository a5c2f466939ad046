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
    /// Only decisions of this surface (e.g. `offer`). Without it every surface in the window is
    /// audited, each as its own run.
    pub surface: Option<String>,
    /// How many days back to audit (default: `fairness.lookback_days`).
    pub since_days: Option<u32>,
    /// Members a group needs to be the four-fifths reference group (default 100).
    pub min_reference_size: Option<u64>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditRunView {
    /// The last run recorded (see `runs` for one per surface).
    pub run_id: i64,
    /// Decisions audited over all runs.
    pub decisions: usize,
    /// Every run's findings in plain language with what to do about each, each with its
    /// `surface` (see docs/FAIRNESS.md).
    #[schema(value_type = Vec<Object>)]
    pub findings: serde_json::Value,
    pub incidents_opened: Vec<i64>,
    pub incidents_updated: Vec<i64>,
    /// One run per audited surface, by surface.
    pub runs: Vec<SurfaceRunView>,
}

/// One surface's run.
#[derive(Serialize, ToSchema)]
pub struct SurfaceRunView {
    pub run_id: i64,
    pub surface: String,
    /// The audited window: decisions at or after `since`, up to `until` (the run).
    pub since: String,
    pub until: String,
    pub decisions: usize,
    #[schema(value_type = Vec<Object>)]
    pub findings: serde_json::Value,
    pub incidents_opened: Vec<i64>,
    pub incidents_updated: Vec<i64>,
}

/// Findings as JSON, each with the surface it is about.
fn tagged(findings: &[candor_fairness::Finding], surface: &str) -> Vec<serde_json::Value> {
    findings
        .iter()
        .map(|f| {
            let mut v = serde_json::to_value(f).unwrap_or_default();
            if let Some(o) = v.as_object_mut() {
                o.insert("surface".into(), surface.into());
            }
            v
        })
        .collect()
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    /// `json` (default) or `html` (a self-contained report with charts).
    pub format: Option<String>,
    /// The newest run of this surface; without it, the newest run of every surface.
    pub surface: Option<String>,
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
    if let Some(n) = input.min_reference_size {
        if n > 1_000_000 {
            return Err(
                candor_app::AppError::invalid("min_reference_size", "must be 0-1000000").into(),
            );
        }
        req.min_reference_size = n;
    }
    if let Some(days) = input.since_days {
        if days == 0 || days > 3650 {
            return Err(candor_app::AppError::invalid("since_days", "must be 1-3650").into());
        }
        req.since = app.now() - i64::from(days) * candor_domain::MICROS_PER_DAY;
    }
    let all = app.run_fairness(&auth.actor(), &req).await?;
    let runs: Vec<SurfaceRunView> = all
        .runs
        .into_iter()
        .map(|r| SurfaceRunView {
            run_id: r.run_id,
            findings: tagged(&r.findings, &r.surface).into(),
            surface: r.surface,
            since: ts(r.since),
            until: ts(r.at),
            decisions: r.decisions,
            incidents_opened: r.incidents_opened,
            incidents_updated: r.incidents_updated,
        })
        .collect();
    let flat = |f: fn(&SurfaceRunView) -> &Vec<i64>| -> Vec<i64> {
        runs.iter().flat_map(|r| f(r).iter().copied()).collect()
    };
    let findings: Vec<serde_json::Value> = runs
        .iter()
        .flat_map(|r| r.findings.as_array().cloned().unwrap_or_default())
        .collect();
    Ok((
        StatusCode::CREATED,
        Json(AuditRunView {
            run_id: runs.last().map_or(0, |r| r.run_id),
            decisions: all.decisions,
            findings: findings.into(),
            incidents_opened: flat(|r| &r.incidents_opened),
            incidents_updated: flat(|r| &r.incidents_updated),
            runs,
        }),
    ))
}

/// The latest audit report. With `surface`: the newest run of that surface,
/// `{"report","findings","surface","run_id","since","until"}`. Without: the newest run of every
/// surface in `runs` (by surface), `findings` of all of them (each with its `surface`), and
/// `report` of the most recent run. HTML: the same runs as one self-contained page.
#[utoipa::path(get, path = "/v1/audit/fairness/latest", tag = "audit", params(ReportQuery), security(("api_key" = ["auditor"])),
    responses((status = 200, description = "JSON document or HTML report"), (status = 404, body = crate::error::ErrorBody)))]
async fn latest_report(
    State(app): State<AppState>,
    _auth: Auth<Auditor>,
    ApiQuery(q): ApiQuery<ReportQuery>,
) -> Result<Response, ApiError> {
    let format = q.format.as_deref().unwrap_or("json");
    if format != "json" && format != "html" {
        return Err(ApiError::bad_request(
            crate::error::ErrorCode::InvalidQuery,
            format!("format `{format}` is not json or html"),
        ));
    }
    let runs = app.latest_fairness_reports(q.surface.as_deref()).await?;
    let Some(newest) = runs.iter().max_by_key(|r| (r.at, r.run_id)) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            crate::error::ErrorCode::NotFound,
            match &q.surface {
                Some(_) => {
                    "no fairness audit of this surface has run yet; POST /v1/audit/fairness/runs"
                }
                None => "no fairness audit has run yet; POST /v1/audit/fairness/runs",
            },
        ));
    };
    if format == "html" {
        let pages: Vec<String> = runs
            .iter()
            .map(|r| candor_fairness::render_html(&r.report, &r.findings))
            .collect();
        return Ok((
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            one_page(&pages),
        )
            .into_response());
    }
    let run_json = |r: &candor_app::governance::fairness::LatestFairnessRun| {
        serde_json::json!({
            "run_id": r.run_id,
            "surface": r.surface,
            "since": ts(r.since),
            "until": ts(r.at),
            "report": r.report,
            "findings": tagged(&r.findings, &r.surface),
        })
    };
    let doc = if q.surface.is_some() {
        run_json(newest)
    } else {
        serde_json::json!({
            "report": newest.report,
            "surface": newest.surface,
            "findings": runs.iter().flat_map(|r| tagged(&r.findings, &r.surface)).collect::<Vec<_>>(),
            "runs": runs.iter().map(run_json).collect::<Vec<_>>(),
        })
    };
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        doc.to_string(),
    )
        .into_response())
}

/// Several rendered reports as one page: the first page's head, then every page's body.
fn one_page(pages: &[String]) -> String {
    if pages.len() == 1 {
        return pages[0].clone();
    }
    let body = |p: &str| -> String {
        let start = p.find("<body>").map_or(0, |i| i + "<body>".len());
        let end = p.rfind("</body>").unwrap_or(p.len());
        p[start..end].to_owned()
    };
    let head = pages[0]
        .find("<body>")
        .map_or("", |i| &pages[0][..i + "<body>".len()]);
    let mut out = String::from(head);
    for (i, p) in pages.iter().enumerate() {
        if i > 0 {
            out.push_str("\n<hr>\n");
        }
        out.push_str(&body(p));
    }
    out.push_str("</body></html>\n");
    out
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
