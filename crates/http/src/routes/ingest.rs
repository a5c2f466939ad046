//! Segment-spec ingestion endpoints, authenticated by write key (HTTP Basic with the key as user
//! name, as Segment libraries send it, or `writeKey` in the body).

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use candor_app::ingest::{IngestReport, MAX_BATCH_BYTES, MAX_MESSAGE_BYTES, RawMessage};
use candor_domain::message::MessageKind;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::authorize_ingest;
use crate::{ApiError, AppState};

pub fn routes() -> OpenApiRouter<AppState> {
    let single = OpenApiRouter::new()
        .routes(routes!(track))
        .routes(routes!(identify))
        .routes(routes!(page))
        .routes(routes!(screen))
        .routes(routes!(group))
        .routes(routes!(alias))
        .layer(DefaultBodyLimit::max(MAX_MESSAGE_BYTES));
    let batch = OpenApiRouter::new()
        .routes(routes!(batch))
        .layer(DefaultBodyLimit::max(MAX_BATCH_BYTES));
    single.merge(batch)
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
        .ingest(
            vec![RawMessage {
                json: Ok(value),
                bytes: bytes.len(),
            }],
            Some(kind),
        )
        .await?;
    respond(report)
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
    respond(app.ingest(raws, None).await?)
}
