//! The shop's catalog: bulk upsert (JSON array or JSON Lines), delete, list, read.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use candor_app::personalization::catalog::{
    CatalogItem, MAX_CATALOG_BYTES, OnError, Refresh, price_major,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Admin, Auth};
use crate::error::{ErrorCode, RowErrorView};
use crate::extract::{ApiPath, ApiQuery};
use crate::{ApiError, AppState};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(upsert_items, list_items))
        .routes(routes!(get_item, delete_item))
        .layer(DefaultBodyLimit::max(MAX_CATALOG_BYTES))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UpsertQuery {
    /// `reject_all` (default): one bad row stores nothing and every bad row is named (422
    /// `invalid_rows`). `keep_valid`: good rows are stored, bad ones listed in `rejected`.
    pub on_error: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct UpsertView {
    pub received: usize,
    /// Items written; a repeated id counts once (its last row wins).
    pub upserted: usize,
    pub rejected: Vec<RowErrorView>,
}

#[derive(Serialize, ToSchema)]
pub struct ItemView {
    pub id: String,
    pub title: String,
    /// Path segments, broadest first.
    pub category: Vec<String>,
    /// In major units of `currency`.
    pub price: f64,
    pub currency: String,
    /// `in_stock` or `out_of_stock`; out-of-stock items are never recommended.
    pub availability: String,
    pub image_url: Option<String>,
    pub brand: Option<String>,
    /// The sensitive kind of the item or of its category path.
    pub sensitive: Option<String>,
    #[schema(value_type = Object)]
    pub attributes: Value,
}

impl From<CatalogItem> for ItemView {
    fn from(c: CatalogItem) -> Self {
        let price = price_major(&c.item);
        let i = c.item;
        ItemView {
            id: i.id,
            title: i.name,
            category: c.category_path,
            price,
            currency: i.currency,
            availability: if i.available {
                "in_stock"
            } else {
                "out_of_stock"
            }
            .into(),
            image_url: i.image_url,
            brand: i.brand,
            sensitive: c.sensitive_kind,
            attributes: serde_json::from_str(&i.attributes).unwrap_or(Value::Null),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ItemPage {
    pub items: Vec<ItemView>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next: Option<String>,
}

/// The rows of a body: a JSON array, or JSON Lines (one object per line, blank lines skipped).
fn rows(bytes: &[u8]) -> Result<Vec<Value>, ApiError> {
    let text = std::str::from_utf8(bytes).map_err(|_| {
        ApiError::bad_request(ErrorCode::UnreadableBody, "the body is not UTF-8 text")
    })?;
    let malformed = |what: String| ApiError::bad_request(ErrorCode::MalformedJson, what);
    if text.trim_start().starts_with('[') {
        return serde_json::from_str(text).map_err(|e| malformed(e.to_string()));
    }
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, l)| {
            serde_json::from_str(l).map_err(|e| malformed(format!("line {}: {e}", n + 1)))
        })
        .collect()
}

/// Adds or replaces items. Send a JSON array or JSON Lines of items: `id`, `title`, `category`
/// (`"Home > Kitchen"` or `["Home", "Kitchen"]`), `price` (major units), `currency` (ISO 4217,
/// default `catalog.default_currency`), `availability`, `image_url`, `brand`, `sensitive` (a
/// kind from `catalog.sensitive`) and free `attributes`. At most 10,000 items per request.
/// Serving uses the new catalog before this returns.
#[utoipa::path(put, path = "/v1/admin/catalog/items", tag = "catalog", params(UpsertQuery),
    request_body(content = Object, description = "A JSON array of items, or JSON Lines"),
    security(("api_key" = ["admin"])),
    responses((status = 200, body = UpsertView), (status = 400, body = crate::error::ErrorBody),
        (status = 413, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
async fn upsert_items(
    State(app): State<AppState>,
    auth: Auth<Admin>,
    ApiQuery(q): ApiQuery<UpsertQuery>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<UpsertView>, ApiError> {
    let on_error = match q.on_error.as_deref() {
        None | Some("reject_all") => OnError::RejectAll,
        Some("keep_valid") => OnError::KeepValid,
        Some(other) => {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidQuery,
                format!("on_error `{other}` is not reject_all or keep_valid"),
            ));
        }
    };
    let bytes = super::ingest::body_bytes(body, MAX_CATALOG_BYTES, "a catalog request")?;
    let rows = rows(&bytes)?;
    if rows.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::InvalidBatch,
            "send at least one item",
        ));
    }
    let r = app
        .upsert_items(&auth.actor(), &rows, on_error, Refresh::Now)
        .await?;
    Ok(Json(UpsertView {
        received: r.received,
        upserted: r.upserted,
        rejected: r.rejected.iter().map(RowErrorView::from).collect(),
    }))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// Items with ids after this one.
    pub after: Option<String>,
    /// 1-1000, default 100.
    pub limit: Option<usize>,
}

/// A page of live items in id order.
#[utoipa::path(get, path = "/v1/admin/catalog/items", tag = "catalog", params(PageQuery),
    security(("api_key" = ["admin"])), responses((status = 200, body = ItemPage)))]
async fn list_items(
    State(app): State<AppState>,
    _auth: Auth<Admin>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<ItemPage>, ApiError> {
    let limit = q.limit.unwrap_or(100);
    let items = app
        .catalog_items(q.after.as_deref().unwrap_or(""), limit)
        .await?;
    let next = (items.len() == limit)
        .then(|| items.last().map(|i| i.item.id.clone()))
        .flatten();
    Ok(Json(ItemPage {
        items: items.into_iter().map(ItemView::from).collect(),
        next,
    }))
}

/// One item.
#[utoipa::path(get, path = "/v1/admin/catalog/items/{id}", tag = "catalog",
    params(("id" = String, Path, description = "Item id")), security(("api_key" = ["admin"])),
    responses((status = 200, body = ItemView), (status = 404, body = crate::error::ErrorBody)))]
async fn get_item(
    State(app): State<AppState>,
    _auth: Auth<Admin>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ItemView>, ApiError> {
    Ok(Json(app.catalog_item(&id).await?.into()))
}

/// Deletes an item: it is never listed or recommended again (until upserted anew).
#[utoipa::path(delete, path = "/v1/admin/catalog/items/{id}", tag = "catalog",
    params(("id" = String, Path, description = "Item id")), security(("api_key" = ["admin"])),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
async fn delete_item(
    State(app): State<AppState>,
    auth: Auth<Admin>,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    app.delete_item(&auth.actor(), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
