//! API keys: create (secret shown once), list, revoke.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use candor_domain::Scope;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ts;
use crate::auth::{Admin, Auth};
use crate::extract::{ApiJson, ApiPath};
use crate::{ApiError, AppState};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_keys, create_key))
        .routes(routes!(revoke_key))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyInput {
    pub name: String,
    /// ingest, recommend, consent, admin, auditor, rights, analytics, site or reviewer.
    pub scope: String,
    /// The person who holds the key (an email or staff id). Keys of one holder are one
    /// identity in the review queue: nobody approves their own request with a second key.
    pub holder: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedKeyView {
    pub id: String,
    pub name: String,
    pub scope: String,
    /// Shown once. Store it now; Candor keeps only its digest.
    pub secret: String,
}

#[derive(Serialize, ToSchema)]
pub struct KeyView {
    pub id: String,
    pub name: String,
    pub scope: String,
    /// The first characters of the secret, to recognize it.
    pub prefix: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
    pub holder: Option<String>,
}

/// Every key, active and revoked. Secrets are never returned.
#[utoipa::path(get, path = "/v1/admin/keys", tag = "keys", security(("api_key" = ["admin"])), responses((status = 200, body = [KeyView])))]
async fn list_keys(
    State(app): State<AppState>,
    _auth: Auth<Admin>,
) -> Result<Json<Vec<KeyView>>, ApiError> {
    let keys = app.list_keys().await?;
    Ok(Json(
        keys.into_iter()
            .map(|k| KeyView {
                id: k.id,
                name: k.name,
                scope: k.scope.as_str().into(),
                prefix: k.prefix,
                created_at: ts(k.created_at),
                revoked_at: k.revoked_at.map(ts),
                holder: k.holder,
            })
            .collect(),
    ))
}

/// Creates a key of one scope.
#[utoipa::path(post, path = "/v1/admin/keys", tag = "keys", request_body = KeyInput, security(("api_key" = ["admin"])),
    responses((status = 201, body = CreatedKeyView), (status = 422, body = crate::error::ErrorBody)))]
async fn create_key(
    State(app): State<AppState>,
    auth: Auth<Admin>,
    ApiJson(input): ApiJson<KeyInput>,
) -> Result<(StatusCode, Json<CreatedKeyView>), ApiError> {
    let scope = Scope::parse(&input.scope).map_err(candor_app::AppError::from)?;
    let k = app
        .create_key_for(&auth.actor(), &input.name, scope, input.holder.as_deref())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedKeyView {
            id: k.id,
            name: k.name,
            scope: k.scope.as_str().into(),
            secret: k.secret,
        }),
    ))
}

/// Revokes a key at once.
#[utoipa::path(delete, path = "/v1/admin/keys/{id}", tag = "keys", security(("api_key" = ["admin"])),
    params(("id" = String, Path, description = "Key id")),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
async fn revoke_key(
    State(app): State<AppState>,
    auth: Auth<Admin>,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    app.revoke_key(&auth.actor(), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
