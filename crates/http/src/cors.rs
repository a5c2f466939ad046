//! CORS for browser tracking: pages on the configured origins (`browser.allowed_origins`) may
//! call the ingestion routes, read the analytics.js settings document and use the consent
//! banner's routes; nobody else may.
//!
//! Invariants:
//! - Only the ingestion paths take part; every other route answers browsers as before (no CORS
//!   headers, so other origins cannot read it).
//! - A request whose `Origin` is not allowed gets no CORS headers and is refused before any
//!   handler runs (403), so nothing it carries is stored: a `text/plain` POST is a "simple"
//!   request that browsers send without asking first, so leaving it to the browser would not do.
//! - Credentials are never allowed (`Access-Control-Allow-Credentials` is never sent): write
//!   keys travel in the body or the Authorization header, never in cookies.
//! - A request without `Origin` (servers, CLIs) is not a browser's and passes unchanged.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::{ApiError, AppState};

/// The ingestion paths browsers call, long and short, and the settings document.
fn is_browser_path(path: &str) -> bool {
    const PATHS: &[&str] = &[
        "/v1/t",
        "/v1/p",
        "/v1/i",
        "/v1/s",
        "/v1/g",
        "/v1/a",
        "/v1/b",
        "/v1/track",
        "/v1/identify",
        "/v1/page",
        "/v1/screen",
        "/v1/group",
        "/v1/alias",
        "/v1/batch",
        "/v1/banner/config",
        "/v1/banner/consents",
    ];
    PATHS.contains(&path) || (path.starts_with("/v1/projects/") && path.ends_with("/settings"))
}

pub(crate) async fn cors(State(app): State<AppState>, req: Request, next: Next) -> Response {
    if !is_browser_path(req.uri().path()) {
        return next.run(req).await;
    }
    let Some(origin) = req.headers().get(header::ORIGIN).cloned() else {
        return next.run(req).await;
    };
    let allowed = origin.to_str().is_ok_and(|o| {
        app.config()
            .browser
            .allowed_origins
            .iter()
            .any(|a| a.eq_ignore_ascii_case(o))
    });
    if !allowed {
        return ApiError::forbidden(
            "this origin may not send events here; add it to browser.allowed_origins",
        )
        .into_response();
    }
    let preflight = req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut resp = if preflight {
        let mut r = StatusCode::NO_CONTENT.into_response();
        let h = r.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, OPTIONS"),
        );
        // The libraries send Content-Type, Authorization (the write key), and their own
        // headers (X-Retry-Count, AnonymousId); an allowed origin may send what it asks for.
        if let Some(asked) = req.headers().get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
            h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, asked.clone());
        }
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        r
    } else {
        next.run(req).await
    };
    let h = resp.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    h.append(header::VARY, HeaderValue::from_static("Origin"));
    resp
}
