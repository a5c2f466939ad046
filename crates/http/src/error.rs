//! The one mapping from failures to HTTP responses: `{"error":{"code","message"}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use candor_app::AppError;
use serde::Serialize;
use utoipa::ToSchema;

/// Every error code the API answers with: the stable, machine-readable half of an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    // 400
    MalformedJson,
    InvalidBody,
    InvalidQuery,
    InvalidPath,
    UnreadableBody,
    InvalidBatch,
    // 401, 403
    Unauthorized,
    Forbidden,
    // 404, 405, 409
    NotFound,
    MethodNotAllowed,
    Conflict,
    /// A private query would exceed the key's privacy budget; nothing was spent.
    OverBudget,
    // 413, 415
    PayloadTooLarge,
    UnsupportedMediaType,
    // 422
    InvalidField,
    /// Rows of a batch failed validation; `rows` names each.
    InvalidRows,
    UnknownPurpose,
    /// A message of an ingestion request was refused; its own code says why.
    Rejected(candor_app::ingest::RejectCode),
    /// A review decision was refused: `reason_required` (422), `already_decided` or
    /// `own_request` (409).
    Review(&'static str),
    // 500, 503
    Internal,
    NotReady,
    Timeout,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::MalformedJson => "malformed_json",
            ErrorCode::InvalidBody => "invalid_body",
            ErrorCode::InvalidQuery => "invalid_query",
            ErrorCode::InvalidPath => "invalid_path",
            ErrorCode::UnreadableBody => "unreadable_body",
            ErrorCode::InvalidBatch => "invalid_batch",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::Conflict => "conflict",
            ErrorCode::OverBudget => "over_budget",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::InvalidField => "invalid_field",
            ErrorCode::InvalidRows => "invalid_rows",
            ErrorCode::UnknownPurpose => "unknown_purpose",
            ErrorCode::Rejected(r) => r.as_str(),
            ErrorCode::Review(code) => code,
            ErrorCode::Internal => "internal",
            ErrorCode::NotReady => "not_ready",
            ErrorCode::Timeout => "timeout",
        }
    }
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
    /// Per-row problems of a batch (empty otherwise).
    pub rows: Vec<RowErrorView>,
}

/// One refused row of a batch.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RowErrorView {
    /// 0-based position in the batch.
    pub row: usize,
    pub field: String,
    pub message: String,
}

impl From<&candor_app::RowError> for RowErrorView {
    fn from(r: &candor_app::RowError) -> Self {
        RowErrorView {
            row: r.row,
            field: r.field.clone(),
            message: r.message.clone(),
        }
    }
}

/// The body of every error response.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `invalid_field`, `unknown_purpose`, `unauthorized`.
    pub code: String,
    /// What went wrong and how to fix it, for a person.
    pub message: String,
    /// For `invalid_rows`: every refused row, with its field.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rows: Vec<RowErrorView>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            rows: Vec::new(),
        }
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, ErrorCode::Forbidden, message)
    }
    pub fn bad_request(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.as_str().to_owned(),
                message: self.message,
                rows: self.rows,
            },
        };
        let mut resp = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                "www-authenticate",
                axum::http::HeaderValue::from_static("Bearer realm=\"candor\""),
            );
        }
        resp
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        match &e {
            AppError::Invalid { .. } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                crate::error::ErrorCode::InvalidField,
                e.to_string(),
            ),
            AppError::InvalidRows { rows, .. } => ApiError {
                rows: rows.iter().map(RowErrorView::from).collect(),
                ..ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    crate::error::ErrorCode::InvalidRows,
                    e.to_string(),
                )
            },
            AppError::UnknownPurpose(_) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                crate::error::ErrorCode::UnknownPurpose,
                format!("{e}; list declared purposes with GET /v1/purposes"),
            ),
            AppError::NotFound { .. } => ApiError::new(
                StatusCode::NOT_FOUND,
                crate::error::ErrorCode::NotFound,
                e.to_string(),
            ),
            AppError::Conflict { .. } => ApiError::new(
                StatusCode::CONFLICT,
                crate::error::ErrorCode::Conflict,
                e.to_string(),
            ),
            AppError::Review(refusal) => ApiError::new(
                match refusal {
                    candor_domain::review::Refusal::ReasonRequired => {
                        StatusCode::UNPROCESSABLE_ENTITY
                    }
                    _ => StatusCode::CONFLICT,
                },
                crate::error::ErrorCode::Review(refusal.code()),
                e.to_string(),
            ),
            AppError::OverBudget(_) => ApiError::new(
                StatusCode::CONFLICT,
                crate::error::ErrorCode::OverBudget,
                e.to_string(),
            ),
            AppError::Config(_) | AppError::Store(_) | AppError::Internal(_) => {
                // Details go to the log; the client gets no internals.
                tracing::error!(error = %e, "request failed");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    crate::error::ErrorCode::Internal,
                    "internal error; see the server log",
                )
            }
        }
    }
}

pub(crate) async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        crate::error::ErrorCode::NotFound,
        "no such route; see /openapi.json",
    )
}

pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        crate::error::ErrorCode::MethodNotAllowed,
        "this route does not accept that method; see /openapi.json",
    )
}

pub(crate) fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("handler panicked");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        crate::error::ErrorCode::Internal,
        "internal error; see the server log",
    )
    .into_response()
}
