//! Recommendations, a person's preferences, and the model registry.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use candor_app::personalization::preferences::quiet_period;
use candor_app::personalization::recommend::{RecommendRequest, Recommendations};
use candor_domain::preferences::{Level, Preferences};
use candor_domain::preferences::{PreferenceSource, PreferencesPatch, QuietPeriod};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ts;
use crate::auth::{Admin, Auth, Consent, Recommend};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::{ApiError, AppState};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_recommendations, post_recommendations))
        .routes(routes!(get_preferences, put_preferences, patch_preferences))
        .routes(routes!(list_models))
        .routes(routes!(train))
        .routes(routes!(activate))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RecommendQuery {
    /// Where the recommendations appear (see `recommend.surfaces`).
    pub surface: String,
    /// How many items (default `recommend.default_k`, at most `recommend.max_k`).
    pub k: Option<usize>,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct RecommendContext {
    /// The item the person is looking at.
    pub current_item: Option<String>,
    /// Items in the cart.
    #[serde(default)]
    pub cart: Vec<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecommendBody {
    pub surface: String,
    pub k: Option<usize>,
    #[serde(default)]
    pub context: Option<RecommendContext>,
}

#[derive(Serialize, ToSchema)]
pub struct ItemView {
    pub item_id: String,
    pub title: String,
    pub category: String,
    pub score: f32,
    /// Estimated probability of engagement.
    pub confidence: f32,
    /// Plain-language reasons ("Because you bought X", "Popular in Garden, which you told us you like").
    pub reasons: Vec<String>,
    /// Data categories this item's choice used.
    pub data_categories: Vec<String>,
    /// Purposes under which they were used.
    pub purposes: Vec<String>,
    pub exploration: bool,
}

#[derive(Serialize, ToSchema)]
pub struct RecommendationsView {
    pub subject_key: String,
    pub surface: String,
    /// off, basic or full: what the person chose.
    pub level_requested: String,
    /// What was actually used (lower when consent is missing or a quiet period is on).
    pub level_applied: String,
    pub model_version: String,
    /// Whether item confidences are calibrated probabilities (fitted on held-out data at training).
    pub confidence_calibrated: bool,
    /// Whether the exposure constraint (`recommend.exposure`) changed a pick; the `filters`
    /// line on exposure says the same in words.
    pub fairness_adjusted: bool,
    /// Why the answer is non-personal, when it is for a reason worth saying.
    pub fallback: Option<String>,
    /// Every rule applied, in order.
    pub filters: Vec<String>,
    pub items: Vec<ItemView>,
    /// Names this answer: send it with feedback (`POST /v1/feedback`).
    pub decision_id: Option<String>,
}

impl From<Recommendations> for RecommendationsView {
    fn from(r: Recommendations) -> Self {
        RecommendationsView {
            subject_key: r.subject_key,
            surface: r.surface,
            level_requested: r.level_requested.as_str().into(),
            level_applied: r.level_applied.as_str().into(),
            model_version: r.model_version,
            confidence_calibrated: r.confidence_calibrated,
            fairness_adjusted: r.fairness_adjusted,
            fallback: r.fallback,
            filters: r.filters,
            decision_id: r.decision_id,
            items: r
                .items
                .into_iter()
                .map(|i| ItemView {
                    item_id: i.item_id,
                    title: i.title,
                    category: i.category,
                    score: i.score,
                    confidence: i.confidence,
                    reasons: i.reasons,
                    data_categories: i.data_categories,
                    purposes: i.purposes,
                    exploration: i.exploration,
                })
                .collect(),
        }
    }
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuietPeriodView {
    /// RFC 3339 start.
    pub from: String,
    /// RFC 3339 end (exclusive).
    pub until: String,
    pub label: Option<String>,
}

/// A person's own controls.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreferencesView {
    /// off (non-personal only), basic (declared preferences), full (individual behavior).
    pub level: String,
    /// Catalog categories the person likes.
    #[serde(default)]
    pub declared_interests: Vec<String>,
    /// Sensitive categories (e.g. health) the person explicitly allows.
    #[serde(default)]
    pub sensitive_opt_ins: Vec<String>,
    #[serde(default)]
    pub quiet_periods: Vec<QuietPeriodView>,
    /// Items the person marked thumbs down or not relevant: not recommended to them.
    #[serde(default)]
    pub hidden_items: Vec<String>,
}

impl From<&Preferences> for PreferencesView {
    fn from(p: &Preferences) -> Self {
        PreferencesView {
            level: p.level.as_str().into(),
            declared_interests: p.declared_interests.clone(),
            sensitive_opt_ins: p.sensitive_opt_ins.clone(),
            quiet_periods: p
                .quiet_periods
                .iter()
                .map(|q| QuietPeriodView {
                    from: ts(q.from),
                    until: ts(q.until),
                    label: q.label.clone(),
                })
                .collect(),
            hidden_items: p.hidden_items.clone(),
        }
    }
}

/// A person's preferences as they set them, and where they set them.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreferencesInput {
    /// off (non-personal only), basic (declared preferences), full (individual behavior).
    pub level: String,
    #[serde(default)]
    pub declared_interests: Vec<String>,
    #[serde(default)]
    pub sensitive_opt_ins: Vec<String>,
    #[serde(default)]
    pub quiet_periods: Vec<QuietPeriodView>,
    /// Where the person made this choice: preference_center, api or import. Required; kept in
    /// the audit entry.
    #[serde(default)]
    pub source: Option<String>,
}

/// Only the fields given change; the rest stay as they are.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreferencesPatchInput {
    /// off, basic or full.
    #[serde(default)]
    pub level: Option<String>,
    #[serde(default)]
    pub declared_interests: Option<Vec<String>>,
    #[serde(default)]
    pub sensitive_opt_ins: Option<Vec<String>>,
    /// Replaces every quiet period (`[]` removes them all).
    #[serde(default)]
    pub quiet_periods: Option<Vec<QuietPeriodView>>,
    /// Replaces the hidden items (`[]` shows them all again).
    #[serde(default)]
    pub hidden_items: Option<Vec<String>>,
    /// Where the person made this choice: preference_center, api or import. Required.
    #[serde(default)]
    pub source: Option<String>,
}

/// The preferences after a change, with where the change was made.
#[derive(Serialize, ToSchema)]
pub struct PreferencesWritten {
    #[serde(flatten)]
    pub preferences: PreferencesView,
    /// preference_center, api or import, as given.
    pub source: String,
}

fn source_of(s: Option<&str>) -> Result<PreferenceSource, ApiError> {
    let s = s.ok_or_else(|| {
        candor_app::AppError::invalid(
            "source",
            "required: where the person made this choice (preference_center, api or import)",
        )
    })?;
    Ok(PreferenceSource::parse(s).map_err(candor_app::AppError::from)?)
}

fn level_of(s: &str) -> Result<Level, ApiError> {
    Ok(Level::parse(s).map_err(candor_app::AppError::from)?)
}

fn quiet_periods_of(list: Vec<QuietPeriodView>) -> Result<Vec<QuietPeriod>, ApiError> {
    Ok(list
        .into_iter()
        .map(|q| quiet_period(&q.from, &q.until, q.label))
        .collect::<Result<_, _>>()?)
}

#[derive(Serialize, ToSchema)]
pub struct ModelView {
    pub version: String,
    pub kind: String,
    pub created_at: String,
    pub subjects: i64,
    pub interactions: i64,
    pub items: i64,
    pub active: bool,
    /// How the version was trained and chosen: `selection.levels[]` gives per level the
    /// candidates' validation figures (NDCG@10, recall@10 on each subject's latest 20% of
    /// the training data) and the one chosen; absent for versions trained before this record.
    #[schema(value_type = Option<Object>)]
    pub training: Option<serde_json::Value>,
}

#[derive(Serialize, ToSchema)]
pub struct TrainView {
    pub version: String,
    pub subjects: usize,
    pub subjects_excluded_without_consent: usize,
    pub interactions: usize,
    pub items: usize,
    /// False when the activation waits in the review queue.
    pub activated: bool,
    /// The review item it waits on (`GET /v1/reviews/{id}`).
    pub review: Option<String>,
}

async fn answer(
    app: &AppState,
    id: &str,
    req: RecommendRequest,
) -> Result<Json<RecommendationsView>, ApiError> {
    let key = app.subject_key(id)?;
    Ok(Json(app.recommend(&key, &req).await?.into()))
}

/// Recommendations for a subject, each with reasons, data used, confidence and model version.
/// An unknown subject gets a non-personal answer.
#[utoipa::path(get, path = "/v1/recommendations/{id}", tag = "recommendations", params(("id" = String, Path, description = "Your user id for the subject"), RecommendQuery), security(("api_key" = ["recommend"])),
    responses((status = 200, body = RecommendationsView), (status = 400, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
async fn get_recommendations(
    State(app): State<AppState>,
    _auth: Auth<Recommend>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<RecommendQuery>,
) -> Result<Json<RecommendationsView>, ApiError> {
    answer(
        &app,
        &id,
        RecommendRequest {
            surface: q.surface,
            k: q.k,
            ..Default::default()
        },
    )
    .await
}

/// Recommendations with context: the item on screen and the cart are used (at level `full`) and
/// never recommended back.
#[utoipa::path(post, path = "/v1/recommendations/{id}", tag = "recommendations", request_body = RecommendBody, params(("id" = String, Path, description = "Your user id for the subject")), security(("api_key" = ["recommend"])),
    responses((status = 200, body = RecommendationsView), (status = 422, body = crate::error::ErrorBody)))]
async fn post_recommendations(
    State(app): State<AppState>,
    _auth: Auth<Recommend>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<RecommendBody>,
) -> Result<Json<RecommendationsView>, ApiError> {
    let ctx = body.context.unwrap_or_default();
    if ctx.cart.len() > 200 {
        return Err(candor_app::AppError::invalid("context.cart", "at most 200 items").into());
    }
    answer(
        &app,
        &id,
        RecommendRequest {
            surface: body.surface,
            k: body.k,
            current_item: ctx.current_item,
            cart: ctx.cart,
            preview: None,
        },
    )
    .await
}

/// A subject's preferences (defaults for someone who set none: level `basic`).
#[utoipa::path(get, path = "/v1/subjects/{id}/preferences", tag = "recommendations", params(("id" = String, Path, description = "Your user id for the subject")), security(("api_key" = ["recommend"])),
    responses((status = 200, body = PreferencesView)))]
async fn get_preferences(
    State(app): State<AppState>,
    _auth: Auth<Recommend>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<PreferencesView>, ApiError> {
    let key = app.subject_key(&id)?;
    Ok(Json(app.preferences(&key).await?.as_ref().into()))
}

/// Replaces level, declared interests, sensitive opt-ins and quiet periods. Effective at once.
/// Needs a `consent` key: only the person (through the shop) changes their own level.
#[utoipa::path(put, path = "/v1/subjects/{id}/preferences", tag = "recommendations", request_body = PreferencesInput, params(("id" = String, Path, description = "Your user id for the subject")), security(("api_key" = ["consent"])),
    responses((status = 200, body = PreferencesWritten), (status = 422, body = crate::error::ErrorBody)))]
async fn put_preferences(
    State(app): State<AppState>,
    auth: Auth<Consent>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<PreferencesInput>,
) -> Result<Json<PreferencesWritten>, ApiError> {
    let key = app.subject_key(&id)?;
    let source = source_of(body.source.as_deref())?;
    let prefs = Preferences {
        level: level_of(&body.level)?,
        declared_interests: body.declared_interests,
        sensitive_opt_ins: body.sensitive_opt_ins,
        quiet_periods: quiet_periods_of(body.quiet_periods)?,
        // Only feedback and an explicit PATCH change them; a replacement keeps them.
        hidden_items: app.preferences(&key).await?.hidden_items.clone(),
    };
    let stored = app
        .set_preferences(&auth.actor(), &key, prefs, source)
        .await?;
    Ok(Json(PreferencesWritten {
        preferences: stored.as_ref().into(),
        source: source.as_str().into(),
    }))
}

/// Changes only the fields given, validated exactly as `PUT` validates them. Effective at once.
#[utoipa::path(patch, path = "/v1/subjects/{id}/preferences", tag = "recommendations", request_body = PreferencesPatchInput, params(("id" = String, Path, description = "Your user id for the subject")), security(("api_key" = ["consent"])),
    responses((status = 200, body = PreferencesWritten), (status = 422, body = crate::error::ErrorBody)))]
async fn patch_preferences(
    State(app): State<AppState>,
    auth: Auth<Consent>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<PreferencesPatchInput>,
) -> Result<Json<PreferencesWritten>, ApiError> {
    let key = app.subject_key(&id)?;
    let source = source_of(body.source.as_deref())?;
    let patch = PreferencesPatch {
        level: body.level.as_deref().map(level_of).transpose()?,
        declared_interests: body.declared_interests,
        sensitive_opt_ins: body.sensitive_opt_ins,
        quiet_periods: body.quiet_periods.map(quiet_periods_of).transpose()?,
        hidden_items: body.hidden_items,
    };
    let stored = app
        .update_preferences(&auth.actor(), &key, patch, source)
        .await?;
    Ok(Json(PreferencesWritten {
        preferences: stored.as_ref().into(),
        source: source.as_str().into(),
    }))
}

/// Trained model versions, newest first.
#[utoipa::path(get, path = "/v1/admin/models", tag = "recommendations", security(("api_key" = ["admin"])), responses((status = 200, body = [ModelView])))]
async fn list_models(
    State(app): State<AppState>,
    _auth: Auth<Admin>,
) -> Result<Json<Vec<ModelView>>, ApiError> {
    let list = app.model_versions().await?;
    Ok(Json(
        list.into_iter()
            .map(|m| ModelView {
                version: m.version,
                kind: m.kind,
                created_at: ts(m.created_at),
                subjects: m.subjects,
                interactions: m.interactions,
                items: m.items,
                active: m.active,
                training: serde_json::from_str(&m.training).ok(),
            })
            .collect(),
    ))
}

/// Trains a model on consented data now and activates it (no restart needed).
#[utoipa::path(post, path = "/v1/admin/models/train", tag = "recommendations", security(("api_key" = ["admin"])), responses((status = 201, body = TrainView), (status = 422, body = crate::error::ErrorBody)))]
async fn train(
    State(app): State<AppState>,
    auth: Auth<Admin>,
) -> Result<(StatusCode, Json<TrainView>), ApiError> {
    let r = app.train(&auth.actor(), &|_| {}).await?;
    Ok((
        StatusCode::CREATED,
        Json(TrainView {
            version: r.version,
            subjects: r.subjects,
            subjects_excluded_without_consent: r.subjects_excluded_without_consent,
            interactions: r.interactions,
            items: r.items,
            activated: r.activated,
            review: r.review,
        }),
    ))
}

/// Asks for a stored version to serve. Under `review.model_activation = "review"` (the default)
/// it waits for a reviewer: 202 with the review item; under `apply` it serves at once: 204.
/// A version that does not load is refused and the current one keeps serving.
#[utoipa::path(post, path = "/v1/admin/models/{version}/activate", tag = "recommendations", params(("version" = String, Path, description = "Model version")), security(("api_key" = ["admin"])),
    responses((status = 202, body = super::reviews::ReviewView), (status = 204), (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
async fn activate(
    State(app): State<AppState>,
    auth: Auth<Admin>,
    ApiPath(version): ApiPath<String>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    use candor_app::governance::reviews::Requested;
    Ok(
        match app
            .request_model_activation(&auth.actor(), &version)
            .await?
        {
            Requested::Applied => StatusCode::NO_CONTENT.into_response(),
            Requested::Held(item) => (
                StatusCode::ACCEPTED,
                Json(super::reviews::ReviewView::from(item)),
            )
                .into_response(),
        },
    )
}
