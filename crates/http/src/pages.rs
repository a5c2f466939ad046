//! Server-rendered pages (`candor-web`), outside the OpenAPI document: they are for people, not
//! programs. Handlers extract, call one `App` function, render, respond; every header a page
//! needs comes from `candor_web::headers`, applied by [`security_headers`].

use axum::Router;
use axum::extract::{Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use candor_domain::Purpose;
use candor_web::headers::{CSS_CONTENT_TYPE, Cache, SECURITY_HEADERS, SVG_CONTENT_TYPE};
use candor_web::layout::{FAVICON, FAVICON_PATH, STYLESHEET, STYLESHEET_PATH};

use crate::AppState;

pub fn routes(max_form_bytes: usize) -> Router<AppState> {
    Router::new()
        .merge(crate::preference_center::routes(max_form_bytes))
        .route("/privacy", get(privacy))
        .route("/reports/transparency/{period}", get(transparency))
        .route(STYLESHEET_PATH, get(stylesheet))
        .route(FAVICON_PATH, get(favicon))
        .route(candor_web::banner::SCRIPT_PATH, get(banner_script))
        .layer(axum::middleware::from_fn(security_headers))
}

async fn privacy(State(app): State<AppState>) -> Response {
    let purposes: Vec<Purpose> = app.purposes().values().cloned().collect();
    let page = candor_web::pages::privacy(&purposes);
    (
        [(CACHE_CONTROL, Cache::Public.header_value())],
        Html(page.into_string()),
    )
        .into_response()
}

/// The newest published transparency report of a year (public: it is published to be read).
async fn transparency(
    State(app): State<AppState>,
    axum::extract::Path(period): axum::extract::Path<String>,
) -> Response {
    match app.published_transparency_report(&period).await {
        Ok(p) => {
            Html(candor_web::pages::transparency(&p.report, &p.signature, p.valid).into_string())
                .into_response()
        }
        Err(e) => crate::ApiError::from(e).into_response(),
    }
}

async fn stylesheet() -> Response {
    (
        [
            (CONTENT_TYPE, CSS_CONTENT_TYPE),
            (CACHE_CONTROL, Cache::Immutable.header_value()),
        ],
        STYLESHEET,
    )
        .into_response()
}

/// The consent banner's script: the same for every site, so cached like the icon.
async fn banner_script() -> Response {
    (
        [
            (CONTENT_TYPE, candor_web::banner::SCRIPT_CONTENT_TYPE),
            (CACHE_CONTROL, Cache::Asset.header_value()),
        ],
        candor_web::banner::SCRIPT,
    )
        .into_response()
}

async fn favicon() -> Response {
    (
        [
            (CONTENT_TYPE, SVG_CONTENT_TYPE),
            (CACHE_CONTROL, Cache::Asset.header_value()),
        ],
        FAVICON,
    )
        .into_response()
}

/// Adds the security headers to every HTML response, and `no-store` to any that did not say how
/// it may be cached, so a page that forgets is treated as personal rather than cached. Every
/// response gets `nosniff`, so a stylesheet is never read as anything else.
async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let html = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    let headers = resp.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        if html || *name == "x-content-type-options" {
            headers.insert(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
    }
    if html && !headers.contains_key(CACHE_CONTROL) {
        headers.insert(
            CACHE_CONTROL,
            HeaderValue::from_static(Cache::Personal.header_value()),
        );
    }
    resp
}
