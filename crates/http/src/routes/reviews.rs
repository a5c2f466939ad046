//! The human review queue. Reviewer and auditor keys (and admin, as auditor) read it; only
//! reviewer keys decide, and never on their own request. Admin keys cannot decide.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use candor_app::governance::reviews::ReviewItem;
use candor_domain::review::Verdict;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ts;
use crate::auth::{Auditor, Auth, AuthEither, Reviewer};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::{ApiError, AppState};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_reviews))
        .routes(routes!(export_decisions))
        .routes(routes!(get_review))
        .routes(routes!(decide))
}

#[derive(Serialize, ToSchema)]
pub struct ReviewView {
    pub id: String,
    /// What is held: `model_activation`.
    pub kind: String,
    /// What it acts on (a model version).
    pub target: String,
    pub requested_by: String,
    pub requested_at: String,
    /// The card: explanation, consent basis, figures, diff against what serves now, fairness.
    #[schema(value_type = Object)]
    pub card: serde_json::Value,
    /// pending, approved, rejected or overridden (break glass).
    pub state: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
    pub reason: Option<String>,
}

impl From<ReviewItem> for ReviewView {
    fn from(r: ReviewItem) -> Self {
        ReviewView {
            id: r.id,
            kind: r.kind.as_str().into(),
            target: r.target,
            requested_by: r.requested_by,
            requested_at: ts(r.requested_at),
            card: r.card,
            state: r.state.as_str().into(),
            decided_by: r.decided_by,
            decided_at: r.decided_at.map(ts),
            reason: r.reason,
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ReviewQuery {
    /// Only items in this state (pending, approved, rejected, overridden).
    pub state: Option<String>,
    /// At most this many, newest first (1-500, default 100).
    pub limit: Option<i64>,
}

/// Items of the queue, newest first.
#[utoipa::path(get, path = "/v1/reviews", tag = "reviews", params(ReviewQuery), security(("api_key" = ["reviewer", "auditor"])),
    responses((status = 200, body = [ReviewView]), (status = 422, body = crate::error::ErrorBody)))]
async fn list_reviews(
    State(app): State<AppState>,
    _auth: AuthEither<Reviewer, Auditor>,
    ApiQuery(q): ApiQuery<ReviewQuery>,
) -> Result<Json<Vec<ReviewView>>, ApiError> {
    let list = app
        .reviews(q.state.as_deref(), q.limit.unwrap_or(100))
        .await?;
    Ok(Json(list.into_iter().map(ReviewView::from).collect()))
}

#[utoipa::path(get, path = "/v1/reviews/{id}", tag = "reviews", params(("id" = String, Path, description = "Review id")), security(("api_key" = ["reviewer", "auditor"])),
    responses((status = 200, body = ReviewView), (status = 404, body = crate::error::ErrorBody)))]
async fn get_review(
    State(app): State<AppState>,
    _auth: AuthEither<Reviewer, Auditor>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ReviewView>, ApiError> {
    Ok(Json(app.review(&id).await?.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionBody {
    /// approve, reject, or override (break glass: puts it into effect alone, notifies every
    /// webhook as `review.break_glass`).
    pub verdict: String,
    /// Why, in at least 10 characters. Required for every verdict.
    #[serde(default)]
    pub reason: String,
}

/// Decides a pending item. An approval (or override) puts the action into effect at once.
#[utoipa::path(post, path = "/v1/reviews/{id}/decision", tag = "reviews", request_body = DecisionBody, params(("id" = String, Path, description = "Review id")), security(("api_key" = ["reviewer"])),
    responses((status = 200, body = ReviewView), (status = 404, body = crate::error::ErrorBody),
        (status = 409, description = "already_decided or own_request", body = crate::error::ErrorBody),
        (status = 422, description = "reason_required, or a bad verdict", body = crate::error::ErrorBody)))]
async fn decide(
    State(app): State<AppState>,
    auth: Auth<Reviewer>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<DecisionBody>,
) -> Result<Json<ReviewView>, ApiError> {
    let verdict = Verdict::parse(&body.verdict).map_err(candor_app::AppError::from)?;
    Ok(Json(
        app.decide_review(&auth.actor(), &id, verdict, &body.reason)
            .await?
            .into(),
    ))
}

/// Every decided item as labelled training feedback, one JSON object per line.
#[utoipa::path(get, path = "/v1/reviews/decisions.jsonl", tag = "reviews", security(("api_key" = ["reviewer", "auditor"])),
    responses((status = 200, description = "JSON lines", content_type = "application/jsonl")))]
async fn export_decisions(
    State(app): State<AppState>,
    _auth: AuthEither<Reviewer, Auditor>,
) -> Result<Response, ApiError> {
    let body = app.review_decisions_jsonl().await?;
    Ok(([(header::CONTENT_TYPE, "application/jsonl")], body).into_response())
}
