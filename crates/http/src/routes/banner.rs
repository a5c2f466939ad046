//! The first-party consent banner's API: a public configuration (the notice in one language, its
//! version and proof hash) and decision writes with a publishable `site` key. `/consent.js`, the
//! script that uses both, is served beside the pages.
//!
//! A `site` key is in every visitor's browser, so it can do exactly one thing: record banner
//! decisions (source `banner`) for an anonymous visitor id. It reads nothing, cannot name a user
//! id, cannot pick another source, and a decision is stored only with the hash of the notice the
//! server itself serves now, so a forged proof cannot be planted.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use candor_app::{AppError, ConsentRequest};
use candor_domain::{LegalBasis, PrivacySignals};
use candor_web::banner::{BUTTON_STYLE, BannerPurpose, Notice, notice};
use candor_web::i18n::Lang;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::consents::ConsentRecordView;
use crate::auth::{Auth, Site};
use crate::extract::{ApiJson, ApiQuery};
use crate::{ApiError, AppState};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(banner_config))
        .routes(routes!(banner_consents))
}

/// The notice for `lang`: the purposes that need consent, in declaration order.
fn current_notice(app: &AppState, lang: Lang) -> Notice {
    let purposes = app
        .purposes()
        .values()
        .filter(|p| p.legal_basis == LegalBasis::Consent)
        .map(|p| BannerPurpose {
            id: p.id.to_string(),
            title: p.title.clone(),
            description: p.description.clone(),
            sale_or_sharing: p.sale_or_sharing,
            version: p.version,
        })
        .collect();
    notice(lang, purposes)
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct BannerQuery {
    /// en, de or fr (default: from Accept-Language, else en).
    pub lang: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct BannerButton {
    /// accept_all, reject_all or choose.
    pub action: String,
    pub label: String,
    /// The same for all three: equal size, colour and position weight.
    pub style: String,
}

#[derive(Serialize, ToSchema)]
pub struct BannerPurposeView {
    pub id: String,
    pub title: String,
    pub description: String,
    /// Always false: nothing is pre-selected.
    pub selected: bool,
    /// Sold or shared: kept off when the browser sends Global Privacy Control.
    pub sale_or_sharing: bool,
}

#[derive(Serialize, ToSchema)]
pub struct BannerConfig {
    pub lang: String,
    /// Changes whenever a purpose is added, removed or revised; a visitor who answered an older
    /// version is asked again.
    pub version: String,
    /// Send this back with the decisions: it is stored as proof of what was shown.
    pub notice_hash: String,
    pub title: String,
    pub body: String,
    pub first_layer: Vec<BannerButton>,
    pub save: String,
    pub gpc_honoured: String,
    pub purposes: Vec<BannerPurposeView>,
}

/// The banner's configuration and notice. Public (the banner fetches it before anyone chose).
#[utoipa::path(get, path = "/v1/banner/config", tag = "consents", params(BannerQuery), responses((status = 200, body = BannerConfig)))]
async fn banner_config(
    State(app): State<AppState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<BannerQuery>,
) -> Json<BannerConfig> {
    let lang = Lang::negotiate(
        q.lang.as_deref(),
        headers.get("accept-language").and_then(|v| v.to_str().ok()),
    );
    let n = current_notice(&app, lang);
    let button = |action: &str, label: &str| BannerButton {
        action: action.into(),
        label: label.into(),
        style: BUTTON_STYLE.into(),
    };
    Json(BannerConfig {
        lang: lang.code().into(),
        version: n.version.clone(),
        notice_hash: n.hash.clone(),
        title: n.title.into(),
        body: n.body.into(),
        first_layer: vec![
            button("accept_all", n.accept_all),
            button("reject_all", n.reject_all),
            button("choose", n.choose),
        ],
        save: n.save.into(),
        gpc_honoured: n.gpc_honoured.into(),
        purposes: n
            .purposes
            .into_iter()
            .map(|p| BannerPurposeView {
                id: p.id,
                title: p.title,
                description: p.description,
                selected: false,
                sale_or_sharing: p.sale_or_sharing,
            })
            .collect(),
    })
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BannerDecision {
    pub purpose: String,
    /// granted or denied.
    pub decision: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BannerInput {
    /// The visitor's Segment `anonymousId` (the `ajs_anonymous_id` cookie).
    pub anonymous_id: String,
    /// The language the notice was shown in.
    pub lang: String,
    /// The `notice_hash` of the configuration shown.
    pub notice_hash: String,
    pub consents: Vec<BannerDecision>,
    /// `navigator.globalPrivacyControl` as the page saw it.
    #[serde(default)]
    pub gpc: bool,
}

#[derive(Serialize, ToSchema)]
pub struct BannerResult {
    pub recorded: Vec<ConsentRecordView>,
    /// Purposes a Global Privacy Control signal kept off although granted.
    pub overridden_by_signal: Vec<String>,
}

/// Records a visitor's banner decisions under their anonymous id, with the notice hash as proof.
/// The ingest gate applies them to that visitor's next event; on `identify` they follow the
/// person as ingestion joins anonymous sessions.
#[utoipa::path(post, path = "/v1/banner/consents", tag = "consents", request_body = BannerInput, security(("api_key" = ["site"])),
    responses((status = 200, body = BannerResult), (status = 422, body = crate::error::ErrorBody)))]
async fn banner_consents(
    State(app): State<AppState>,
    auth: Auth<Site>,
    headers: HeaderMap,
    ApiJson(input): ApiJson<BannerInput>,
) -> Result<Json<BannerResult>, ApiError> {
    let id = input.anonymous_id.trim();
    if id.is_empty() || id.len() > 128 || id.chars().any(char::is_control) {
        return Err(AppError::invalid(
            "anonymous_id",
            "must be 1-128 characters without control characters",
        )
        .into());
    }
    let lang = Lang::parse(&input.lang)
        .ok_or_else(|| AppError::invalid("lang", "must be en, de or fr"))?;
    let shown = current_notice(&app, lang);
    if input.notice_hash != shown.hash {
        return Err(AppError::invalid(
            "notice_hash",
            "is not the notice served now; fetch /v1/banner/config again and ask the visitor again",
        )
        .into());
    }
    let key = app.subject_key(id)?;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let mut signals = PrivacySignals::from_headers(header("sec-gpc"), header("dnt"));
    signals.gpc |= input.gpc;
    let req = ConsentRequest {
        changes: input
            .consents
            .into_iter()
            .map(|c| (c.purpose, c.decision))
            .collect(),
        source: "banner".into(),
        user_agent: header("user-agent").map(|ua| ua.chars().take(512).collect()),
        notice_hash: Some(shown.hash),
        signals,
        ..Default::default()
    };
    let outcome = app.record_consents(&auth.actor(), &key, req).await?;
    Ok(Json(BannerResult {
        recorded: outcome.records.iter().map(Into::into).collect(),
        overridden_by_signal: outcome
            .overridden_by_signal
            .iter()
            .map(|(p, _)| p.to_string())
            .collect(),
    }))
}
