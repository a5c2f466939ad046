//! Private analytics: quotes, differentially private queries, the analyst's budget, exact
//! aggregates for auditors, and ledger verification.

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use candor_app::analytics::{self as room, QueryRequest};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Admin, Analytics, Auditor, Auth};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::{ApiError, AppState};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(quote))
        .routes(routes!(query))
        .routes(routes!(budget))
        .routes(routes!(exact))
        .routes(routes!(verify_ledger))
        .routes(routes!(publish_report))
        .routes(routes!(published_report))
}

/// An accuracy instead of an epsilon: "±50 at 95%" is `{"half_width": 50, "confidence": 0.95}`.
#[derive(Deserialize, Serialize, ToSchema, Clone, Copy)]
#[serde(deny_unknown_fields)]
pub struct AccuracyBody {
    pub half_width: f64,
    pub confidence: f64,
}

/// A private aggregate query (see docs/ANALYTICS.md).
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields, default)]
pub struct QueryBody {
    /// `events` (default) or `decisions`.
    pub dataset: String,
    /// events: `events` (default), `quantity`, `revenue`; decisions: `decisions`, `selected`.
    pub metric: String,
    /// `count` (default), `sum` or `mean`.
    pub aggregate: String,
    /// Up to two dimensions: `period`, `category`, `event`, `item_category`, `item`
    /// (decisions: `period`, `surface`, `model_version`, `item_category`, `item`).
    pub group_by: Vec<String>,
    /// The public values of each dimension (not needed for `period` and `category`).
    pub groups: HashMap<String, Vec<String>>,
    /// Release only groups found in the data, by private partition selection.
    pub select_groups: bool,
    /// `month` (default) or `day`.
    pub grain: String,
    /// RFC 3339; default the start of this month.
    pub since: Option<String>,
    /// RFC 3339; default now.
    pub until: Option<String>,
    /// `laplace` (default) or `gaussian`.
    pub mechanism: String,
    /// Privacy cost to spend; or give `accuracy`.
    pub epsilon: Option<f64>,
    pub accuracy: Option<AccuracyBody>,
    /// Default 1e-6; used by the Gaussian and by partition selection.
    pub delta: Option<f64>,
    /// Of the intervals released with each figure; default 0.95.
    pub confidence: Option<f64>,
    /// Rows counted per subject per group (default 1).
    pub max_rows: Option<u32>,
    /// Groups one subject may count in (default: all, at most 10).
    pub max_groups: Option<u32>,
    /// Clamp for sums and means.
    pub lower: Option<f64>,
    pub upper: Option<f64>,
}

impl From<QueryBody> for QueryRequest {
    fn from(b: QueryBody) -> Self {
        QueryRequest {
            dataset: b.dataset,
            metric: b.metric,
            aggregate: b.aggregate,
            group_by: b.group_by,
            groups: b.groups,
            select_groups: b.select_groups,
            grain: b.grain,
            since: b.since,
            until: b.until,
            mechanism: b.mechanism,
            epsilon: b.epsilon,
            accuracy: b.accuracy.map(|a| room::Accuracy {
                half_width: a.half_width,
                confidence: a.confidence,
            }),
            delta: b.delta,
            confidence: b.confidence,
            max_rows: b.max_rows,
            max_groups: b.max_groups,
            lower: b.lower,
            upper: b.upper,
        }
    }
}

/// What a query costs and how accurate it is, before anything is read or spent.
#[derive(Serialize, ToSchema)]
pub struct QuoteView {
    pub epsilon: f64,
    pub delta: f64,
    pub mechanism: String,
    /// Laplace b or Gaussian σ of each figure's noise.
    pub noise_scale: f64,
    /// Each figure is within ± this of its true value with probability `confidence`.
    pub half_width: f64,
    pub confidence: f64,
    /// Partition selection's threshold on noisy counts.
    pub threshold: Option<f64>,
    /// The budget period (YYYY-MM) and account (`*`: every data set).
    pub period: String,
    pub dataset: String,
    pub remaining_epsilon: f64,
    pub remaining_delta: f64,
    /// Whether the remaining budget covers the query.
    pub fits: bool,
}

impl From<room::Quote> for QuoteView {
    fn from(q: room::Quote) -> Self {
        QuoteView {
            epsilon: q.epsilon,
            delta: q.delta,
            mechanism: q.mechanism.to_owned(),
            noise_scale: q.noise_scale,
            half_width: q.half_width,
            confidence: q.confidence,
            threshold: q.threshold,
            period: q.period,
            dataset: q.dataset,
            remaining_epsilon: q.remaining_epsilon,
            remaining_delta: q.remaining_delta,
            fits: q.fits,
        }
    }
}

/// One released group.
#[derive(Serialize, ToSchema)]
pub struct CellView {
    /// The group's value in each dimension.
    pub labels: Vec<String>,
    /// The noisy figure; absent when suppressed.
    pub value: Option<f64>,
    /// The interval holding the true value with the query's confidence.
    pub ci: Option<[f64; 2]>,
    pub noise_scale: f64,
    /// `shown`, `small_cell` (noisy count below k), `complementary` (hidden so a small cell
    /// cannot be derived from a total) or `not_selected` (partition selection).
    pub status: String,
}

#[derive(Serialize, ToSchema)]
pub struct TotalView {
    pub label: String,
    pub value: Option<f64>,
    pub ci: Option<[f64; 2]>,
}

#[derive(Serialize, ToSchema)]
pub struct AnswerView {
    pub cost: QuoteView,
    /// The ledger row the spend was sealed as.
    pub ledger_seq: i64,
    pub cells: Vec<CellView>,
    /// With two dimensions: per value of the first, over the second.
    pub row_totals: Vec<TotalView>,
    /// Per value of the second dimension, over the first; with one dimension, the one total
    /// (label `all`). Totals are sums of the noisy cells, suppressed ones included, which is why
    /// a lone small cell brings a complementary one with it.
    pub column_totals: Vec<TotalView>,
}

fn totals(t: Vec<room::query::LabelledTotal>) -> Vec<TotalView> {
    t.into_iter()
        .map(|(label, value, ci)| TotalView { label, value, ci })
        .collect()
}

/// The cost and accuracy of a query, and whether the key's budget covers it; spends nothing.
#[utoipa::path(post, path = "/v1/analytics/quote", tag = "analytics", security(("api_key" = ["analytics"])), request_body = QueryBody,
    responses((status = 200, body = QuoteView), (status = 422, body = crate::error::ErrorBody)))]
async fn quote(
    State(app): State<AppState>,
    auth: Auth<Analytics>,
    ApiJson(body): ApiJson<QueryBody>,
) -> Result<Json<QuoteView>, ApiError> {
    let q = app.quote_query(&auth.key.id, &body.into()).await?;
    Ok(Json(q.into()))
}

/// Runs a differentially private query, charged to the key's budget first (409 `over_budget`,
/// nothing spent, when it does not fit). Every figure carries its noise scale and interval.
#[utoipa::path(post, path = "/v1/analytics/query", tag = "analytics", security(("api_key" = ["analytics"])), request_body = QueryBody,
    responses((status = 200, body = AnswerView), (status = 409, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
async fn query(
    State(app): State<AppState>,
    auth: Auth<Analytics>,
    ApiJson(body): ApiJson<QueryBody>,
) -> Result<Json<AnswerView>, ApiError> {
    let a = app.run_query(&auth.key.id, &body.into()).await?;
    Ok(Json(AnswerView {
        cost: a.quote.into(),
        ledger_seq: a.ledger_seq,
        cells: a
            .cells
            .into_iter()
            .map(|c| CellView {
                labels: c.labels,
                value: c.value,
                ci: c.ci,
                noise_scale: c.noise_scale,
                status: serde_json::to_value(c.status)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
            })
            .collect(),
        row_totals: totals(a.row_totals),
        column_totals: totals(a.column_totals),
    }))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct BudgetQuery {
    /// YYYY-MM; default the current month (UTC).
    pub period: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AccountView {
    /// `*` when one budget covers every data set.
    pub dataset: String,
    pub spent_epsilon: f64,
    pub spent_delta: f64,
    pub remaining_epsilon: f64,
    pub remaining_delta: f64,
}

#[derive(Serialize, ToSchema)]
pub struct ChargeView {
    pub seq: i64,
    pub at: String,
    pub dataset: String,
    pub epsilon: f64,
    pub delta: f64,
    /// The query as asked.
    #[schema(value_type = Object)]
    pub query: serde_json::Value,
}

#[derive(Serialize, ToSchema)]
pub struct BudgetView {
    pub period: String,
    pub limit_epsilon: f64,
    pub limit_delta: f64,
    pub accounts: Vec<AccountView>,
    /// Every charge of the period, oldest first.
    pub charges: Vec<ChargeView>,
}

/// What this key spent in a period, what remains, and on which queries.
#[utoipa::path(get, path = "/v1/analytics/budget", tag = "analytics", security(("api_key" = ["analytics"])), params(BudgetQuery),
    responses((status = 200, body = BudgetView), (status = 422, body = crate::error::ErrorBody)))]
async fn budget(
    State(app): State<AppState>,
    auth: Auth<Analytics>,
    ApiQuery(q): ApiQuery<BudgetQuery>,
) -> Result<Json<BudgetView>, ApiError> {
    let b = app.budget(&auth.key.id, q.period.as_deref()).await?;
    Ok(Json(BudgetView {
        period: b.period,
        limit_epsilon: b.limit_epsilon,
        limit_delta: b.limit_delta,
        accounts: b
            .accounts
            .into_iter()
            .map(|a| AccountView {
                dataset: a.dataset,
                spent_epsilon: a.spent_epsilon,
                spent_delta: a.spent_delta,
                remaining_epsilon: a.remaining_epsilon,
                remaining_delta: a.remaining_delta,
            })
            .collect(),
        charges: b
            .charges
            .into_iter()
            .map(|c| ChargeView {
                seq: c.seq,
                at: c.at,
                dataset: c.dataset,
                epsilon: c.epsilon,
                delta: c.delta,
                query: c.query,
            })
            .collect(),
    }))
}

/// An exact aggregate for an auditor, with the reason recorded in the audit log first.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExactBody {
    /// Why the exact figures are needed (at least 10 characters); goes to the audit log.
    pub reason: String,
    pub query: QueryBody,
}

#[derive(Serialize, ToSchema)]
pub struct ExactCellView {
    pub labels: Vec<String>,
    /// Rows counted (no bounds, no noise).
    pub rows: f64,
    /// Sum of the metric's values.
    pub sum: f64,
}

#[derive(Serialize, ToSchema)]
pub struct ExactView {
    pub audit_seq: i64,
    pub cells: Vec<ExactCellView>,
}

/// Exact aggregates of consented rows for auditors; the reason and query go to the audit log.
#[utoipa::path(post, path = "/v1/analytics/exact", tag = "analytics", security(("api_key" = ["auditor"])), request_body = ExactBody,
    responses((status = 200, body = ExactView), (status = 422, body = crate::error::ErrorBody)))]
async fn exact(
    State(app): State<AppState>,
    auth: Auth<Auditor>,
    ApiJson(body): ApiJson<ExactBody>,
) -> Result<Json<ExactView>, ApiError> {
    let a = app
        .exact_query(&auth.actor(), &body.reason, &body.query.into())
        .await?;
    Ok(Json(ExactView {
        audit_seq: a.audit_seq,
        cells: a
            .cells
            .into_iter()
            .map(|(labels, rows, sum)| ExactCellView { labels, rows, sum })
            .collect(),
    }))
}

#[derive(Serialize, ToSchema)]
pub struct LedgerVerificationView {
    pub valid: bool,
    pub rows: i64,
    pub head_hash: String,
    pub first_broken_seq: Option<i64>,
    pub reason: Option<String>,
}

/// Recomputes the budget ledger's hash chain and checks each row's spend against it.
#[utoipa::path(get, path = "/v1/analytics/ledger/verify", tag = "analytics", security(("api_key" = ["auditor"])),
    responses((status = 200, body = LedgerVerificationView)))]
async fn verify_ledger(
    State(app): State<AppState>,
    _auth: Auth<Auditor>,
) -> Result<Json<LedgerVerificationView>, ApiError> {
    let v = app.verify_budget_ledger().await?;
    Ok(Json(LedgerVerificationView {
        valid: v.broken.is_none(),
        rows: v.rows,
        head_hash: v.head_hash,
        first_broken_seq: v.broken.as_ref().map(|b| b.seq),
        reason: v.broken.map(|b| b.reason),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportBody {
    /// The year to report on, like `2026`.
    pub period: String,
}

/// A stored, signed transparency report.
#[derive(Serialize, ToSchema)]
pub struct ReportView {
    pub id: String,
    /// `v1=<hex HMAC-SHA256>` over the stored report text.
    pub signature: String,
    /// Whether the signature matches the stored text.
    pub valid: bool,
    /// The report (see docs/ANALYTICS.md); its HTML is at `/reports/transparency/{period}`.
    #[schema(value_type = Object)]
    pub report: serde_json::Value,
}

fn report_view(p: room::PublishedReport) -> ReportView {
    ReportView {
        id: p.id,
        signature: p.signature,
        valid: p.valid,
        report: serde_json::from_str(&p.body).unwrap_or_default(),
    }
}

/// Generates the transparency report of a year from the records, charges its consent rates to
/// the ledger, signs it and stores it. Rights-request figures are not wired in yet: the
/// report says "no records" for them.
#[utoipa::path(post, path = "/v1/analytics/reports/transparency", tag = "analytics", security(("api_key" = ["admin"])), request_body = ReportBody,
    responses((status = 201, body = ReportView), (status = 409, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
async fn publish_report(
    State(app): State<AppState>,
    auth: Auth<Admin>,
    ApiJson(body): ApiJson<ReportBody>,
) -> Result<(axum::http::StatusCode, Json<ReportView>), ApiError> {
    let p = app
        .publish_transparency_report(&auth.actor(), &body.period)
        .await?;
    Ok((axum::http::StatusCode::CREATED, Json(report_view(p))))
}

/// The newest stored report of a year, with its signature checked.
#[utoipa::path(get, path = "/v1/analytics/reports/transparency/{period}", tag = "analytics", security(("api_key" = ["auditor"])),
    params(("period" = String, Path, description = "A year, like 2026")),
    responses((status = 200, body = ReportView), (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
async fn published_report(
    State(app): State<AppState>,
    _auth: Auth<Auditor>,
    ApiPath(period): ApiPath<String>,
) -> Result<Json<ReportView>, ApiError> {
    Ok(Json(report_view(
        app.published_transparency_report(&period).await?,
    )))
}
