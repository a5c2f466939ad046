//! Purposes: public listing, admin declaration and revision.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use candor_domain::{Purpose, PurposeDraft};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Admin, Auth};
use crate::extract::{ApiJson, ApiPath};
use crate::{ApiError, AppState};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_purposes))
        .routes(routes!(create_purpose))
        .routes(routes!(update_purpose))
        .routes(routes!(purpose_history))
}

/// A purpose of processing as people and clients see it.
#[derive(Serialize, ToSchema)]
pub struct PurposeView {
    pub id: String,
    pub title: String,
    /// Plain-language description a customer can understand.
    pub description: String,
    /// consent, legitimate_interest, contract or legal_obligation.
    pub legal_basis: String,
    /// Data categories this purpose may use.
    pub categories: Vec<String>,
    /// Bumped on every material change; older consents then need renewal.
    pub version: u32,
    pub expires_after_days: Option<u32>,
    pub sale_or_sharing: bool,
    pub non_essential_tracking: bool,
    /// Whether the purpose may build a person-level profile and segment membership; `false`:
    /// aggregate-only, its data feeds only aggregates.
    pub person_level: bool,
    /// What changed in the latest material change.
    pub change_note: Option<String>,
}

impl From<&Purpose> for PurposeView {
    fn from(p: &Purpose) -> Self {
        PurposeView {
            id: p.id.to_string(),
            title: p.title.clone(),
            description: p.description.clone(),
            legal_basis: p.legal_basis.as_str().into(),
            categories: p.categories.iter().map(ToString::to_string).collect(),
            version: p.version,
            expires_after_days: p.expires_after_days,
            sale_or_sharing: p.sale_or_sharing,
            non_essential_tracking: p.non_essential_tracking,
            person_level: p.person_level,
            change_note: p.change_note.clone(),
        }
    }
}

/// A purpose to declare or revise.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PurposeInput {
    /// 1-64 characters of a-z, 0-9, `_`, `-`.
    pub id: String,
    pub title: String,
    pub description: String,
    pub legal_basis: String,
    /// browsing, purchase, declared_preference, contact, location, demographic, device, sensitive:<kind>
    pub categories: Vec<String>,
    #[serde(default)]
    pub expires_after_days: Option<u32>,
    #[serde(default)]
    pub sale_or_sharing: bool,
    #[serde(default)]
    pub non_essential_tracking: bool,
    /// Whether the purpose may build a person-level profile (default `false`: aggregate-only).
    /// Making a purpose person-level is a material change. Not allowed on strictly necessary
    /// purposes.
    #[serde(default)]
    pub person_level: bool,
    #[serde(default)]
    pub change_note: Option<String>,
}

impl From<PurposeInput> for PurposeDraft {
    fn from(i: PurposeInput) -> Self {
        PurposeDraft {
            id: i.id,
            title: i.title,
            description: i.description,
            legal_basis: i.legal_basis,
            categories: i.categories,
            expires_after_days: i.expires_after_days,
            sale_or_sharing: i.sale_or_sharing,
            non_essential_tracking: i.non_essential_tracking,
            person_level: i.person_level,
            change_note: i.change_note,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct PurposeUpdated {
    pub purpose: PurposeView,
    /// True when the change asks subjects for fresh consent.
    pub material: bool,
}

#[derive(Serialize, ToSchema)]
pub struct PurposeRevision {
    pub version: u32,
    pub material: bool,
    pub at: String,
    pub purpose: PurposeView,
}

/// Every declared purpose, in plain language. Public: transparency needs no key.
#[utoipa::path(get, path = "/v1/purposes", tag = "purposes", responses((status = 200, body = [PurposeView])))]
async fn list_purposes(State(app): State<AppState>) -> Json<Vec<PurposeView>> {
    Json(app.purposes().values().map(PurposeView::from).collect())
}

/// Declares a purpose (version 1).
#[utoipa::path(post, path = "/v1/admin/purposes", tag = "purposes", request_body = PurposeInput, security(("api_key" = ["admin"])),
    responses((status = 201, body = PurposeView), (status = 409, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
async fn create_purpose(
    State(app): State<AppState>,
    auth: Auth<Admin>,
    ApiJson(input): ApiJson<PurposeInput>,
) -> Result<(StatusCode, Json<PurposeView>), ApiError> {
    let p = app.create_purpose(&auth.actor(), &input.into()).await?;
    Ok((StatusCode::CREATED, Json(PurposeView::from(&p))))
}

/// Revises a purpose. New data categories, a new legal basis, or newly selling/sharing or tracking
/// are material: the version goes up and earlier consents need renewal.
#[utoipa::path(put, path = "/v1/admin/purposes/{id}", tag = "purposes", request_body = PurposeInput, security(("api_key" = ["admin"])),
    params(("id" = String, Path, description = "Purpose id")),
    responses((status = 200, body = PurposeUpdated), (status = 422, body = crate::error::ErrorBody)))]
async fn update_purpose(
    State(app): State<AppState>,
    auth: Auth<Admin>,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<PurposeInput>,
) -> Result<Json<PurposeUpdated>, ApiError> {
    let (p, material) = app
        .update_purpose(&auth.actor(), &id, &input.into())
        .await?;
    Ok(Json(PurposeUpdated {
        purpose: PurposeView::from(&p),
        material,
    }))
}

/// Every stored revision of a purpose, oldest first.
#[utoipa::path(get, path = "/v1/admin/purposes/{id}/history", tag = "purposes", security(("api_key" = ["admin"])),
    params(("id" = String, Path, description = "Purpose id")),
    responses((status = 200, body = [PurposeRevision]), (status = 422, body = crate::error::ErrorBody)))]
async fn purpose_history(
    State(app): State<AppState>,
    _auth: Auth<Admin>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Vec<PurposeRevision>>, ApiError> {
    let history = app.purpose_history(&id).await?;
    Ok(Json(
        history
            .iter()
            .map(|(version, material, p, at)| PurposeRevision {
                version: *version,
                material: *material,
                at: super::ts(*at),
                purpose: p.into(),
            })
            .collect(),
    ))
}
