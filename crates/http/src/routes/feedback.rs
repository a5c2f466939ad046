//! Feedback on answers, survey answers, and KPIs.
//!
//! Feedback and surveys are sent by the shop's backend with a `recommend` key, naming the
//! person by the shop's own user id (pseudonymized on arrival, never stored). KPIs are read
//! with an `auditor` key (or admin).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use candor_app::feedback::FeedbackInput;
use candor_app::feedback::alerts::AlertItem;
use candor_app::feedback::kpis::{FeedbackRates, Kpis};
use candor_domain::alert::AlertRule;
use candor_domain::feedback::FeedbackKind;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ts;
use crate::auth::{Admin, Auditor, Auth, Recommend};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::{ApiError, AppState};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(give_feedback))
        .routes(routes!(answer_survey))
        .routes(routes!(kpis))
        .routes(routes!(get_alert_rules, put_alert_rules))
        .routes(routes!(evaluate_alerts))
        .routes(routes!(list_alerts))
        .routes(routes!(clear_alert))
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

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertRuleView {
    /// The feedback kind whose rate per answer is watched: too_personal, complaint,
    /// thumbs_down or not_relevant.
    pub metric: String,
    /// Answers needed on the day (and since the last step, to escalate).
    pub min_sample: i64,
    /// Smallest absolute rise of the rate over its baseline (0.02 = two points).
    pub min_rise: f64,
    /// Smallest ratio of the rate to its baseline (>= 1).
    pub min_ratio: f64,
    /// Scale personalization back on the surface while the alert is active.
    #[serde(default = "yes")]
    pub scale_back: bool,
}

fn yes() -> bool {
    true
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertRulesBody {
    pub rules: Vec<AlertRuleView>,
}

/// The alert rules in force.
#[utoipa::path(get, path = "/v1/admin/alerts/rules", tag = "feedback", security(("api_key" = ["admin"])),
    responses((status = 200, body = AlertRulesBody)))]
async fn get_alert_rules(
    State(app): State<AppState>,
    _auth: Auth<Admin>,
) -> Result<Json<AlertRulesBody>, ApiError> {
    let rules = app.alert_rules().await?;
    Ok(Json(AlertRulesBody {
        rules: rules
            .into_iter()
            .map(|r| AlertRuleView {
                metric: r.metric.as_str().into(),
                min_sample: r.min_sample,
                min_rise: r.min_rise,
                min_ratio: r.min_ratio,
                scale_back: r.scale_back,
            })
            .collect(),
    }))
}

/// Replaces the alert rules; a bad rule is refused naming `rules[i].field`, and nothing changes.
#[utoipa::path(put, path = "/v1/admin/alerts/rules", tag = "feedback", request_body = AlertRulesBody, security(("api_key" = ["admin"])),
    responses((status = 200, body = AlertRulesBody), (status = 422, body = crate::error::ErrorBody)))]
async fn put_alert_rules(
    State(app): State<AppState>,
    auth: Auth<Admin>,
    ApiJson(body): ApiJson<AlertRulesBody>,
) -> Result<Json<AlertRulesBody>, ApiError> {
    let rules = body
        .rules
        .iter()
        .enumerate()
        .map(|(i, r)| {
            Ok(AlertRule {
                metric: FeedbackKind::parse(&r.metric).map_err(|_| {
                    candor_app::AppError::invalid(
                        format!("rules[{i}].metric"),
                        format!("`{}` is not a feedback kind", r.metric),
                    )
                })?,
                min_sample: r.min_sample,
                min_rise: r.min_rise,
                min_ratio: r.min_ratio,
                scale_back: r.scale_back,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    app.set_alert_rules(&auth.actor(), &rules).await?;
    Ok(Json(body))
}

#[derive(Serialize, ToSchema)]
pub struct AlertView {
    pub id: String,
    pub metric: String,
    pub surface: String,
    /// active or cleared.
    pub state: String,
    /// The level answers on the surface are capped at while active (basic, off), if any.
    pub scale_back_to: Option<String>,
    pub fired_at: String,
    pub updated_at: String,
    /// The rate that fired (per answer), its baseline, and the answers it was measured on.
    pub observed: f64,
    pub expected: f64,
    pub sample: i64,
    pub cleared_by: Option<String>,
    pub cleared_at: Option<String>,
    pub reason: Option<String>,
}

impl From<AlertItem> for AlertView {
    fn from(a: AlertItem) -> Self {
        AlertView {
            id: a.id,
            metric: a.metric.as_str().into(),
            surface: a.surface,
            state: if a.active { "active" } else { "cleared" }.into(),
            scale_back_to: a.cap.map(|c| c.as_str().into()),
            fired_at: ts(a.fired_at),
            updated_at: ts(a.updated_at),
            observed: a.observed,
            expected: a.expected,
            sample: a.sample,
            cleared_by: a.cleared_by,
            cleared_at: a.cleared_at.map(ts),
            reason: a.reason,
        }
    }
}

/// Evaluates every alert rule now (the scheduler does so every `alerts.evaluate_secs`); returns
/// the alerts raised or escalated.
#[utoipa::path(post, path = "/v1/admin/alerts/evaluate", tag = "feedback", security(("api_key" = ["admin"])),
    responses((status = 200, body = [AlertView])))]
async fn evaluate_alerts(
    State(app): State<AppState>,
    auth: Auth<Admin>,
) -> Result<Json<Vec<AlertView>>, ApiError> {
    let raised = app.evaluate_alerts(&auth.actor()).await?;
    Ok(Json(raised.into_iter().map(AlertView::from).collect()))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AlertQuery {
    /// Only active alerts.
    pub active: Option<bool>,
    /// At most this many, newest first (1-500, default 100).
    pub limit: Option<i64>,
}

/// Alerts, newest first.
#[utoipa::path(get, path = "/v1/alerts", tag = "feedback", params(AlertQuery), security(("api_key" = ["auditor"])),
    responses((status = 200, body = [AlertView]), (status = 422, body = crate::error::ErrorBody)))]
async fn list_alerts(
    State(app): State<AppState>,
    _auth: Auth<Auditor>,
    ApiQuery(q): ApiQuery<AlertQuery>,
) -> Result<Json<Vec<AlertView>>, ApiError> {
    let list = app
        .alerts(q.active.unwrap_or(false), q.limit.unwrap_or(100))
        .await?;
    Ok(Json(list.into_iter().map(AlertView::from).collect()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClearBody {
    /// Why it is safe to lift the scale-back (10 characters or more).
    #[serde(default)]
    pub reason: String,
}

/// A person clears an alert: its scale-back lifts on every node at once. 409 when it is not
/// active.
#[utoipa::path(post, path = "/v1/alerts/{id}/clear", tag = "feedback", request_body = ClearBody, params(("id" = String, Path, description = "Alert id")), security(("api_key" = ["admin"])),
    responses((status = 200, body = AlertView), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
async fn clear_alert(
    State(app): State<AppState>,
    auth: Auth<Admin>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<ClearBody>,
) -> Result<Json<AlertView>, ApiError> {
    Ok(Json(
        app.clear_alert(&auth.actor(), &id, &body.reason)
            .await?
            .into(),
    ))
}
