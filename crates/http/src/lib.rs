//! Candor's HTTP API: a thin axum shell over `candor-app`.
//!
//! Invariants:
//! - Only this crate knows axum, HTTP status codes and the wire format of errors.
//! - Handlers extract, call one `App` function, and map the result; no business rules here.
//! - Every route is registered through `utoipa_axum`, so the router and `/openapi.json` are built
//!   from the same list and cannot drift; every route declares its scope in both places (the
//!   `Auth<_>` extractor and the `security` of its OpenAPI operation), and a test walks the spec
//!   to prove they agree.
//! - Personal identifiers in paths never reach logs: request logs carry the route template.
#![forbid(unsafe_code)]

pub mod auth;
mod cors;
mod error;
mod extract;
mod observe;
mod pages;
mod preference_center;
pub mod routes;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use candor_app::App;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

pub use error::ApiError;

/// Shared state of every handler.
pub type AppState = Arc<App>;

/// The API's routes and their OpenAPI description, before state and middleware.
pub fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(routes::ApiDoc::openapi())
        .merge(routes::system::routes())
        .merge(routes::purposes::routes())
        .merge(routes::consents::routes())
        .merge(routes::banner::routes())
        .merge(routes::keys::routes())
        .merge(routes::analytics::routes())
        .merge(routes::audiences::routes())
        .merge(routes::audit::routes())
        .merge(routes::catalog::routes())
        .merge(routes::fairness::routes())
        .merge(routes::feedback::routes())
        .merge(routes::ingest::routes())
        .merge(routes::inventory::routes())
        .merge(routes::journeys::routes())
        .merge(routes::profiles::routes())
        .merge(routes::recommendations::routes())
        .merge(routes::reviews::routes())
        .merge(routes::rights::routes())
        .merge(routes::webhooks::routes())
        .split_for_parts()
}

/// The OpenAPI document of the whole API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api().1
}

/// The complete service: routes, docs, limits, request ids, metrics, errors for everything.
pub fn router(app: AppState) -> Router {
    let (routes, spec) = api();
    let spec = Arc::new(spec);
    let limit = app.config().server.max_body_bytes;
    let timeout = Duration::from_secs(app.config().server.request_timeout_secs);
    routes
        .route(
            "/openapi.json",
            axum::routing::get({
                let spec = spec.clone();
                move || async move { axum::Json(spec.as_ref().clone()) }
            }),
        )
        .merge(
            utoipa_swagger_ui::SwaggerUi::new("/docs")
                .url("/docs/openapi.json", spec.as_ref().clone()),
        )
        .merge(pages::routes(app.config().pages.max_form_bytes))
        .route_layer(axum::middleware::from_fn(observe::observe))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn(move |req, next| {
            observe::deadline(timeout, req, next)
        }))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            cors::cors,
        ))
        .layer(CatchPanicLayer::custom(error::panic_response))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(app)
}

/// Serves until `shutdown` resolves, then lets in-flight requests finish.
pub async fn serve(
    app: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    observe::install_metrics();
    let service = router(app).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(shutdown)
        .await
}
