//! Segment-spec ingestion endpoints, authenticated by write key (HTTP Basic with the key as user
//! name, as Segment libraries send it, or `writeKey` in the body).
//!
//! Browser libraries are served unchanged: analytics.js 2.0 posts `text/plain` JSON to the
//! short paths (`/v1/t`, `/v1/p`, `/v1/i`, `/v1/s`, `/v1/g`, `/v1/a`, `/v1/b`) after reading
//! its settings from `/v1/projects/{writeKey}/settings`; RudderStack's SDK posts to the long
//! ones. The body's content type is never judged, only its JSON. `Sec-GPC: 1` and `DNT: 1` on a
//! request take away the purposes they opt out of (see `candor_domain::signals`).

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use candor_app::ingest::{IngestReport, MAX_BATCH_BYTES, MAX_MESSAGE_BYTES, RawMessage};
use candor_domain::PrivacySignals;
use candor_domain::message::MessageKind;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::authorize_ingest;
use crate::extract::ApiPath;
use crate::{ApiError, AppState};

pub fn routes() -> OpenApiRouter<AppState> {
    let single = OpenApiRouter::new()
        .routes(routes!(track))
        .routes(routes!(identify))
        .routes(routes!(page))
        .routes(routes!(screen))
        .routes(routes!(group))
        .routes(routes!(alias))
        .routes(routes!(short_track))
        .routes(routes!(short_identify))
        .routes(routes!(short_page))
        .routes(routes!(short_screen))
        .routes(routes!(short_group))
        .routes(routes!(short_alias))
        .layer(DefaultBodyLimit::max(MAX_MESSAGE_BYTES));
    let batch = OpenApiRouter::new()
        .routes(routes!(batch))
        .routes(routes!(short_batch))
        .layer(DefaultBodyLimit::max(MAX_BATCH_BYTES));
    single.merge(batch).routes(routes!(browser_settings))
}

#[derive(Serialize, ToSchema)]
pub struct RejectedView {
    /// Position in the batch (0 for single-message endpoints).
    pub index: usize,
    pub message_id: Option<String>,
    /// invalid_message, malformed_message, message_too_large or undeclared_event.
    pub code: String,
    pub message: String,
}

/// What happened to the messages of a request.
#[derive(Serialize, ToSchema)]
pub struct IngestResponse {
    pub success: bool,
    pub accepted: usize,
    pub stored: usize,
    pub duplicates: usize,
    /// Accepted, counted, not stored: no purpose the person allows may use this data.
    pub without_consent: usize,
    pub quarantined: usize,
    /// Accepted, counted, not stored: the subject was erased with suppression.
    pub suppressed: usize,
    /// Undeclared or unconsented properties removed before storage.
    pub properties_dropped: usize,
    pub rejected: Vec<RejectedView>,
}

impl From<IngestReport> for IngestResponse {
    fn from(r: IngestReport) -> Self {
        IngestResponse {
            success: r.rejected.is_empty(),
            accepted: r.accepted,
            stored: r.stored,
            duplicates: r.duplicates,
            without_consent: r.without_consent,
            quarantined: r.quarantined,
            suppressed: r.suppressed,
            properties_dropped: r.properties_dropped,
            rejected: r
                .rejected
                .into_iter()
                .map(|x| RejectedView {
                    index: x.index,
                    message_id: x.message_id,
                    code: x.code.as_str().into(),
                    message: x.message,
                })
                .collect(),
        }
    }
}

pub(crate) fn body_bytes(
    body: Result<Bytes, BytesRejection>,
    limit: usize,
    what: &str,
) -> Result<Bytes, ApiError> {
    body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                crate::error::ErrorCode::PayloadTooLarge,
                format!("{what} may be at most {} KB", limit / 1024),
            )
        } else {
            ApiError::bad_request(crate::error::ErrorCode::UnreadableBody, r.body_text())
        }
    })
}

fn parse_json<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            crate::error::ErrorCode::InvalidBody,
            e.to_string(),
        ),
        _ => ApiError::bad_request(crate::error::ErrorCode::MalformedJson, e.to_string()),
    })
}

/// Answers a request: 200 with the report if anything was accepted, else a typed error naming
/// the first problems.
fn respond(report: IngestReport) -> Result<Json<IngestResponse>, ApiError> {
    if report.accepted == 0 && !report.rejected.is_empty() {
        let first = &report.rejected[0];
        let status = if first.code == candor_app::ingest::RejectCode::MessageTooLarge {
            StatusCode::PAYLOAD_TOO_LARGE
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        };
        let detail: Vec<String> = report
            .rejected
            .iter()
            .take(5)
            .map(|r| format!("[{}] {}", r.index, r.message))
            .collect();
        return Err(ApiError::new(
            status,
            crate::error::ErrorCode::Rejected(first.code),
            detail.join("; "),
        ));
    }
    Ok(Json(report.into()))
}

async fn single(
    app: AppState,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
    kind: MessageKind,
) -> Result<Json<IngestResponse>, ApiError> {
    let bytes = body_bytes(body, MAX_MESSAGE_BYTES, "a message")?;
    // Credentials are checked before the body is judged, so an unauthenticated caller learns
    // nothing about validation.
    let mut parsed: Result<Value, ApiError> = parse_json(&bytes);
    let write_key = parsed
        .as_mut()
        .ok()
        .and_then(|v| v.as_object_mut())
        .and_then(|o| o.remove("writeKey"))
        .and_then(|v| v.as_str().map(str::to_owned));
    authorize_ingest(&app, &headers, write_key.as_deref())?;
    let value = parsed?;
    let report = app
        .ingest_with_signals(
            vec![RawMessage {
                json: Ok(value),
                bytes: bytes.len(),
            }],
            Some(kind),
            signals(&headers),
        )
        .await?;
    respond(report)
}

/// The browser privacy signals a request carried.
fn signals(headers: &HeaderMap) -> PrivacySignals {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    PrivacySignals::from_headers(header("sec-gpc"), header("dnt"))
}

macro_rules! single_endpoint {
    ($name:ident, $path:literal, $kind:expr, $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path(post, path = $path, tag = "ingestion", request_body(content = Object, description = "A Segment-spec message"), security(("api_key" = ["ingest"])),
            responses((status = 200, body = IngestResponse), (status = 413, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
        async fn $name(State(app): State<AppState>, headers: HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<Json<IngestResponse>, ApiError> {
            single(app, headers, body, $kind).await
        }
    };
}

single_endpoint!(
    track,
    "/v1/track",
    MessageKind::Track,
    "Records an action (`event`, `properties`)."
);
single_endpoint!(
    identify,
    "/v1/identify",
    MessageKind::Identify,
    "Records who a user is (`traits`); contact traits are encrypted."
);
single_endpoint!(page, "/v1/page", MessageKind::Page, "Records a page view.");
single_endpoint!(
    screen,
    "/v1/screen",
    MessageKind::Screen,
    "Records a screen view."
);
single_endpoint!(
    group,
    "/v1/group",
    MessageKind::Group,
    "Associates a user with a group (`groupId`, `traits`)."
);
single_endpoint!(
    alias,
    "/v1/alias",
    MessageKind::Alias,
    "Merges `previousId` into `userId` (with consent)."
);
single_endpoint!(
    short_track,
    "/v1/t",
    MessageKind::Track,
    "`/v1/track` as analytics.js 2.0 calls it."
);
single_endpoint!(
    short_identify,
    "/v1/i",
    MessageKind::Identify,
    "`/v1/identify` as analytics.js 2.0 calls it."
);
single_endpoint!(
    short_page,
    "/v1/p",
    MessageKind::Page,
    "`/v1/page` as analytics.js 2.0 calls it."
);
single_endpoint!(
    short_screen,
    "/v1/s",
    MessageKind::Screen,
    "`/v1/screen` as analytics.js 2.0 calls it."
);
single_endpoint!(
    short_group,
    "/v1/g",
    MessageKind::Group,
    "`/v1/group` as analytics.js 2.0 calls it."
);
single_endpoint!(
    short_alias,
    "/v1/a",
    MessageKind::Alias,
    "`/v1/alias` as analytics.js 2.0 calls it."
);

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BatchBody<'a> {
    #[serde(borrow)]
    batch: Vec<&'a RawValue>,
    write_key: Option<String>,
    sent_at: Option<Value>,
    context: Option<Value>,
    #[serde(default)]
    #[allow(dead_code)]
    integrations: Option<Value>,
    #[serde(default, rename = "metadata")]
    #[allow(dead_code)]
    _metadata: Option<Value>,
}

/// Records up to 2,500 messages of any type (`type` on each). Valid messages are stored
/// atomically; invalid ones are listed in `rejected` with the reason.
#[utoipa::path(post, path = "/v1/batch", tag = "ingestion", request_body(content = Object, description = "`{\"batch\": [messages], \"sentAt\"?, \"context\"?, \"writeKey\"?}`"), security(("api_key" = ["ingest"])),
    responses((status = 200, body = IngestResponse), (status = 413, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
async fn batch(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<IngestResponse>, ApiError> {
    batch_of(app, headers, body).await
}

/// `/v1/batch` as analytics.js 2.0 calls it when its delivery strategy is batching.
#[utoipa::path(post, path = "/v1/b", tag = "ingestion", request_body(content = Object, description = "`{\"batch\": [messages], \"sentAt\"?, \"writeKey\"?}`"), security(("api_key" = ["ingest"])),
    responses((status = 200, body = IngestResponse), (status = 413, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
async fn short_batch(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<IngestResponse>, ApiError> {
    batch_of(app, headers, body).await
}

async fn batch_of(
    app: AppState,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<IngestResponse>, ApiError> {
    let bytes = body_bytes(body, MAX_BATCH_BYTES, "a batch")?;
    let parsed: Result<BatchBody<'_>, ApiError> = parse_json(&bytes);
    authorize_ingest(
        &app,
        &headers,
        parsed.as_ref().ok().and_then(|p| p.write_key.as_deref()),
    )?;
    let parsed = parsed?;
    if parsed.batch.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            crate::error::ErrorCode::InvalidBatch,
            "`batch` must contain at least one message",
        ));
    }
    let raws = parsed
        .batch
        .iter()
        .map(|raw| {
            let json = serde_json::from_str::<Value>(raw.get())
                .map_err(|e| e.to_string())
                .map(|mut v| {
                    if let Some(o) = v.as_object_mut() {
                        // Batch-level sentAt and context apply to messages that lack their own.
                        if let Some(s) = &parsed.sent_at {
                            o.entry("sentAt").or_insert_with(|| s.clone());
                        }
                        if let Some(c) = &parsed.context {
                            o.entry("context").or_insert_with(|| c.clone());
                        }
                    }
                    v
                });
            RawMessage {
                json,
                bytes: raw.get().len(),
            }
        })
        .collect();
    respond(
        app.ingest_with_signals(raws, None, signals(&headers))
            .await?,
    )
}

/// The settings document analytics.js 2.0 loads from its CDN, so `cdnURL` can point at Candor:
/// it names Candor (this host, or `browser.public_url`) as the API host of the write key, with
/// no destinations, middleware or remote plugins. An unknown write key is a 404, as on
/// Segment's CDN. Public: a write key is public in every page that uses it.
#[utoipa::path(get, path = "/v1/projects/{write_key}/settings", tag = "ingestion",
    params(("write_key" = String, Path, description = "An ingest-scope key")),
    responses((status = 200, body = Object), (status = 404, body = crate::error::ErrorBody)))]
async fn browser_settings(
    State(app): State<AppState>,
    headers: HeaderMap,
    ApiPath(write_key): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let known = app
        .authenticate(&write_key)
        .is_some_and(|k| k.scope.permits(candor_domain::Scope::Ingest));
    if !known {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            crate::error::ErrorCode::NotFound,
            "no source has this write key",
        ));
    }
    let (protocol, host) = match app.config().browser.public_url.as_deref() {
        Some(url) => url.split_once("://").unwrap_or(("https", url)),
        None => {
            let host = headers
                .get(axum::http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("localhost");
            // Behind a proxy the scheme comes from it; loopback speaks plain HTTP.
            let forwarded = headers
                .get("x-forwarded-proto")
                .and_then(|h| h.to_str().ok());
            let local = host.starts_with("127.0.0.1")
                || host.starts_with("localhost")
                || host.starts_with("[::1]");
            let protocol = forwarded.unwrap_or(if local { "http" } else { "https" });
            (protocol, host)
        }
    };
    let protocol = if protocol == "http" { "http" } else { "https" };
    Ok(Json(serde_json::json!({
        "integrations": {
            "Segment.io": {
                "apiKey": write_key,
                "apiHost": format!("{}/v1", host.trim_end_matches('/')),
                "protocol": protocol,
                "unbundledIntegrations": [],
                "addBundledMetadata": true,
                "maybeBundledConfigIds": {},
                "versionSettings": {"componentTypes": []}
            }
        },
        "plan": {
            "track": {"__default": {"enabled": true, "integrations": {}}},
            "identify": {"__default": {"enabled": true}},
            "group": {"__default": {"enabled": true}}
        },
        "edgeFunction": {},
        "analyticsNextEnabled": true,
        "middlewareSettings": {},
        "enabledMiddleware": {},
        "metrics": {"sampleRate": 0},
        "legacyVideoPluginsEnabled": false,
        "remotePlugins": []
    })))
}
