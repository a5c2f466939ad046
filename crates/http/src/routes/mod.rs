//! Route modules, one per resource, and the OpenAPI document they fill.

pub mod analytics;
pub mod audiences;
pub mod audit;
pub mod banner;
pub mod catalog;
pub mod consents;
pub mod fairness;
pub mod feedback;
pub mod ingest;
pub mod inventory;
pub mod journeys;
pub mod keys;
pub mod profiles;
pub mod purposes;
pub mod recommendations;
pub mod reviews;
pub mod rights;
pub mod system;
pub mod webhooks;

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::{ErrorBody, ErrorDetail, RowErrorView};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Candor",
        description = "Ethical-by-construction personalization: purposes, consent, audit. Every error is `{\"error\":{\"code\",\"message\"}}`. Authenticate with `Authorization: Bearer <key>`; each operation names the key scope it needs.",
        license(name = "Apache-2.0")
    ),
    components(schemas(ErrorBody, ErrorDetail, RowErrorView)),
    modifiers(&ApiKeyScheme),
    tags(
        (name = "system", description = "Health, readiness, metrics"),
        (name = "purposes", description = "Declared purposes of processing"),
        (name = "consents", description = "A subject's consent decisions"),
        (name = "keys", description = "API keys and scopes"),
        (name = "audit", description = "The tamper-evident audit log"),
        (name = "webhooks", description = "Consent-change notifications"),
        (name = "recommendations", description = "Explained recommendations, preferences, models"),
        (name = "profiles", description = "Profiles from consented data, lifecycle and rule segments"),
        (name = "catalog", description = "The shop's items, categories and sensitive categories"),
        (name = "analytics", description = "Differentially private aggregates, the privacy budget, exact aggregates for auditors"),
        (name = "ingestion", description = "Segment-compatible event ingestion and the tracking plan"),
        (name = "feedback", description = "Feedback on answers, the trust survey, KPIs"),
        (name = "reviews", description = "The human review queue: held actions, decisions with reasons, break glass"),
        (name = "journeys", description = "Lifecycle journeys, their messages and the boundaries each met"),
        (name = "audiences", description = "Consented advertising audiences exported from segments"),
        (name = "rights", description = "Subject rights: export, erasure with signed receipts, rectification, restriction, requests with deadlines"),
    )
)]
pub struct ApiDoc;

/// The security scheme every protected operation refers to as `api_key`, with its scope.
struct ApiKeyScheme;

impl Modify for ApiKeyScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// Formats stored microseconds for the wire.
pub(crate) fn ts(at: candor_domain::Micros) -> String {
    candor_domain::format_micros(at)
}
