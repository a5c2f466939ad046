//! Advertising audiences: export a segment, consented only, as hashed contacts.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use candor_app::audiences::AudienceDelivery;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Admin, Auth};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::{ApiError, AppState};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(export_audience))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AudienceInput {
    /// `meta` (phones as digits with the country code) or `google` (E.164 with `+`).
    pub platform: String,
    /// `answer` (default): in this response; `webhook`: one `audience.sync` event to the
    /// `audiences` webhooks.
    #[serde(default)]
    pub delivery: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AudienceQuery {
    /// `json` (default) or `csv` (`action,email_sha256,phone_sha256` rows: `add` and `remove`).
    pub format: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct HashedContact {
    pub email_sha256: Option<String>,
    pub phone_sha256: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AudienceView {
    pub segment: String,
    pub purpose: String,
    pub platform: String,
    pub included: u64,
    /// By reason: gpc_opt_out, no_sale_sharing_consent, no_contact.
    pub excluded: BTreeMap<String, u64>,
    pub not_in_segment: u64,
    /// Everyone in the audience now.
    pub members: Vec<HashedContact>,
    /// Since the previous export.
    pub add: Vec<HashedContact>,
    /// Sent by the previous export and out now (a revocation, a GPC signal, left the segment).
    pub remove: Vec<HashedContact>,
    pub delivered_by_webhook: bool,
}

fn hashed(list: &[(Option<String>, Option<String>)]) -> Vec<HashedContact> {
    list.iter()
        .map(|(e, p)| HashedContact {
            email_sha256: e.clone(),
            phone_sha256: p.clone(),
        })
        .collect()
}

/// Exports a segment's consented members as an audience: SHA-256 of normalized emails and
/// phones, only people who granted `audiences.purpose` (sale/sharing) and sent no GPC/DNT
/// signal; audited with counts included and excluded by reason; `remove` lists who the previous
/// export sent and who is out now.
#[utoipa::path(post, path = "/v1/admin/audiences/{segment}/exports", tag = "audiences", request_body = AudienceInput, security(("api_key" = ["admin"])),
    params(("segment" = String, Path, description = "Segment id"), AudienceQuery),
    responses((status = 200, body = AudienceView), (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
async fn export_audience(
    State(app): State<AppState>,
    auth: Auth<Admin>,
    ApiPath(segment): ApiPath<String>,
    ApiQuery(q): ApiQuery<AudienceQuery>,
    ApiJson(input): ApiJson<AudienceInput>,
) -> Result<Response, ApiError> {
    let csv = match q.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => {
            return Err(candor_app::AppError::invalid(
                "format",
                format!("`{other}` is not json or csv"),
            )
            .into());
        }
    };
    let delivery = match input.delivery.as_deref() {
        None | Some("answer") => AudienceDelivery::Answer,
        Some("webhook") => AudienceDelivery::Webhook,
        Some(other) => {
            return Err(candor_app::AppError::invalid(
                "delivery",
                format!("`{other}` is not answer or webhook"),
            )
            .into());
        }
    };
    let e = app
        .export_audience(&auth.actor(), &segment, &input.platform, delivery)
        .await?;
    if csv {
        let mut out = String::from("action,email_sha256,phone_sha256\n");
        for (action, list) in [("add", &e.added), ("remove", &e.removed)] {
            for (email, phone) in list {
                out.push_str(&format!(
                    "{action},{},{}\n",
                    email.as_deref().unwrap_or(""),
                    phone.as_deref().unwrap_or("")
                ));
            }
        }
        return Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], out).into_response());
    }
    let members: Vec<_> = e
        .members
        .iter()
        .map(|(_, m, p)| (m.clone(), p.clone()))
        .collect();
    Ok(Json(AudienceView {
        segment: e.segment,
        purpose: e.purpose,
        platform: e.platform.into(),
        included: e.included,
        excluded: e
            .excluded
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
        not_in_segment: e.not_in_segment,
        members: hashed(&members),
        add: hashed(&e.added),
        remove: hashed(&e.removed),
        delivered_by_webhook: e.by_webhook,
    })
    .into_response())
}
