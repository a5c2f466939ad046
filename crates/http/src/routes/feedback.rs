//! Feedback on answers, survey answers, and KPIs.
//!
//! Feedback and surveys are sent by the shop's backend with a `recommend` key, naming the
//! person by the shop's own user id (pseudonymized on arrival, never stored). KPIs are read
//! with an `auditor` key (or admin).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use candor_app::feedback::FeedbackInput;
use candor_app::feedback::kpis::{FeedbackRates, Kpis};
use candor_domain::feedback::FeedbackKind;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ts;
use crate::auth::{Auditor, Auth, Recommend};
use crate::extract::{ApiJson, ApiQuery};
use crate::{ApiError, AppState};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(give_feedback))
        .routes(routes!(answer_survey))
        .routes(routes!(kpis))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeedbackBody {
    /// Your user id for the person giving the feedback.
    pub user_id: String,
    /// The `decision_id` of the answer the feedback is about.
    pub decision_id: String,
    /// The item of that answer (required for thumbs_up, thumbs_down, not_relevant).
    pub item_id: Option<String>,
    /// thumbs_up, thumbs_down, not_relevant, too_personal or complaint.
    pub kind: String,
    /// A complaint's text (required for complaints, refused for other kinds).
    pub text: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct FeedbackView {
    pub decision_id: String,
    pub kind: String,
    /// What the feedback changed, or why it changed nothing, in words for the person.
    pub applied: Vec<String>,
    pub level_before: String,
    pub level_after: String,
    /// Whether the item will no longer be recommended to the person.
    pub item_hidden: bool,
}

/// Feedback on an answer. "too_personal" lowers the person's level one step at once;
/// thumbs_down and not_relevant hide the item from them when their consent allows using
/// declared preferences. Every kind is stored, exported with the person's data and counted.
#[utoipa::path(post, path = "/v1/feedback", tag = "feedback", request_body = FeedbackBody, security(("api_key" = ["recommend"])),
    responses((status = 201, body = FeedbackView), (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
async fn give_feedback(
    State(app): State<AppState>,
    auth: Auth<Recommend>,
    ApiJson(body): ApiJson<FeedbackBody>,
) -> Result<(StatusCode, Json<FeedbackView>), ApiError> {
    let key = app.subject_key(&body.user_id)?;
    let kind = FeedbackKind::parse(&body.kind).map_err(candor_app::AppError::from)?;
    let outcome = app
        .give_feedback(
            &auth.actor(),
            &key,
            FeedbackInput {
                decision_id: body.decision_id,
                item_id: body.item_id,
                kind,
                text: body.text,
            },
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(FeedbackView {
            decision_id: outcome.decision_id,
            kind: outcome.kind.as_str().into(),
            applied: outcome.applied,
            level_before: outcome.level_before.as_str().into(),
            level_after: outcome.level_after.as_str().into(),
            item_hidden: outcome.item_hidden,
        }),
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SurveyBody {
    pub user_id: String,
    /// `trust`: "How likely are you to recommend us to a friend?"
    pub survey: String,
    /// 0 to 10.
    pub score: serde_json::Value,
}

/// An answer to the trust survey (NPS-style, 0-10), counted into the trust score.
#[utoipa::path(post, path = "/v1/surveys", tag = "feedback", request_body = SurveyBody, security(("api_key" = ["recommend"])),
    responses((status = 204), (status = 422, body = crate::error::ErrorBody)))]
async fn answer_survey(
    State(app): State<AppState>,
    _auth: Auth<Recommend>,
    ApiJson(body): ApiJson<SurveyBody>,
) -> Result<StatusCode, ApiError> {
    let key = app.subject_key(&body.user_id)?;
    let score = body.score.as_i64().ok_or_else(|| {
        candor_app::AppError::invalid("score", "must be a whole number from 0 to 10")
    })?;
    app.answer_survey(&key, &body.survey, score).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct KpiQuery {
    /// Days up to today (UTC) to cover, 1 to 366; default 30.
    pub days: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct FeedbackCountView {
    pub kind: String,
    pub count: i64,
}

#[derive(Serialize, ToSchema)]
pub struct RatesView {
    /// `model:<version>` or `surface:<name>`.
    pub dimension: String,
    pub answers: i64,
    pub feedback: Vec<FeedbackCountView>,
    /// Too-personal feedback per answer; null without answers.
    pub too_personal_rate: Option<f64>,
    pub complaint_rate: Option<f64>,
}

#[derive(Serialize, ToSchema)]
pub struct TrustView {
    pub answers: i64,
    pub promoters: i64,
    pub passives: i64,
    pub detractors: i64,
    /// % promoters minus % detractors (-100 to 100); null without answers.
    pub nps: Option<f64>,
    pub mean: Option<f64>,
}

#[derive(Serialize, ToSchema)]
pub struct RightsKpiView {
    pub received: i64,
    pub fulfilled: u64,
    pub median_days_to_fulfil: Option<f64>,
    pub max_days_to_fulfil: Option<f64>,
}

#[derive(Serialize, ToSchema)]
pub struct KpisView {
    pub since: String,
    pub until: String,
    pub answers: i64,
    pub feedback: Vec<FeedbackCountView>,
    pub by_model: Vec<RatesView>,
    pub by_surface: Vec<RatesView>,
    pub levels_lowered_by_feedback: i64,
    /// Preference changes per source (api, preference_center, import, feedback).
    pub preference_changes: Vec<FeedbackCountView>,
    pub preference_changes_per_day: f64,
    pub trust: TrustView,
    /// Rights requests received in the window; null when there were none.
    pub rights: Option<RightsKpiView>,
}

fn counts(list: &[(FeedbackKind, i64)]) -> Vec<FeedbackCountView> {
    list.iter()
        .map(|(k, n)| FeedbackCountView {
            kind: k.as_str().into(),
            count: *n,
        })
        .collect()
}

fn rates(list: Vec<FeedbackRates>) -> Vec<RatesView> {
    list.into_iter()
        .map(|r| RatesView {
            feedback: counts(&r.feedback),
            dimension: r.dimension,
            answers: r.answers,
            too_personal_rate: r.too_personal_rate,
            complaint_rate: r.complaint_rate,
        })
        .collect()
}

impl From<Kpis> for KpisView {
    fn from(k: Kpis) -> Self {
        KpisView {
            since: ts(k.since),
            until: ts(k.until),
            answers: k.answers,
            feedback: counts(&k.feedback),
            by_model: rates(k.by_model),
            by_surface: rates(k.by_surface),
            levels_lowered_by_feedback: k.levels_lowered_by_feedback,
            preference_changes: k
                .preference_changes
                .into_iter()
                .map(|(kind, count)| FeedbackCountView { kind, count })
                .collect(),
            preference_changes_per_day: k.preference_changes_per_day,
            trust: TrustView {
                answers: k.trust.answers,
                promoters: k.trust.promoters,
                passives: k.trust.passives,
                detractors: k.trust.detractors,
                nps: k.trust.nps,
                mean: k.trust.mean,
            },
            rights: k.rights.map(|r| RightsKpiView {
                received: r.received.iter().map(|x| x.1 as i64).sum(),
                fulfilled: r.fulfilled,
                median_days_to_fulfil: r.median_days,
                max_days_to_fulfil: r.max_days,
            }),
        }
    }
}

/// KPIs from incremental counts: answers, feedback and its rates per model version and
/// surface, levels lowered by feedback, preference changes, the trust score, rights-request
/// fulfilment.
#[utoipa::path(get, path = "/v1/kpis", tag = "feedback", params(KpiQuery), security(("api_key" = ["auditor"])),
    responses((status = 200, body = KpisView), (status = 422, body = crate::error::ErrorBody)))]
async fn kpis(
    State(app): State<AppState>,
    _auth: Auth<Auditor>,
    ApiQuery(q): ApiQuery<KpiQuery>,
) -> Result<Json<KpisView>, ApiError> {
    Ok(Json(app.kpis(q.days.unwrap_or(30)).await?.into()))
}
