//! The shop's catalog as serving sees it: categories (some sensitive) and items.
//!
//! Invariants:
//! - Every catalog change is validated first and then stored all-or-nothing with its audit
//!   entry; serving on this node reloads before the call returns (`Refresh::Now`, the API) or
//!   within about a second (`Refresh::Soon`, bulk loads), and other nodes reload when the change
//!   commits, so a new or changed item is served without a restart.
//! - Items from the API and from imports go through one validation (`item_from_json`), so a
//!   row refused by one is refused by the other, with the same row, field and message.
//! - A deleted item stays as a tombstone and an unavailable one stays listed: neither is ever
//!   recommended (serving marks them not servable), and trained models still line up.
//! - An item's category is sensitive when its path falls under a configured sensitive path or
//!   the item is flagged with a configured kind.

use std::collections::BTreeMap;

use candor_domain::AuditDraft;
use candor_store::{CatalogCategory, Item};
use serde_json::{Map, Value, json};

use crate::config::CatalogConfig;
use crate::{App, AppError, Result, RowError};

/// Longest id or name a catalog entry may have.
const MAX_TEXT: usize = 512;
/// Longest image URL.
const MAX_URL: usize = 2048;
/// Largest `attributes` object, as JSON text.
const MAX_ATTRIBUTES_BYTES: usize = 8 * 1024;
/// Items per API request or import batch.
pub const MAX_ITEMS_PER_REQUEST: usize = 10_000;
/// Largest catalog request body.
pub const MAX_CATALOG_BYTES: usize = 16 * 1024 * 1024;
/// Separator of category path segments, as Google's product taxonomy writes it.
pub const PATH_SEPARATOR: &str = " > ";

/// Active ISO 4217 codes and their minor units (digits after the decimal point).
const CURRENCIES: &[(&str, u32)] = &[
    ("AED", 2),
    ("AFN", 2),
    ("ALL", 2),
    ("AMD", 2),
    ("ANG", 2),
    ("AOA", 2),
    ("ARS", 2),
    ("AUD", 2),
    ("AWG", 2),
    ("AZN", 2),
    ("BAM", 2),
    ("BBD", 2),
    ("BDT", 2),
    ("BGN", 2),
    ("BHD", 3),
    ("BIF", 0),
    ("BMD", 2),
    ("BND", 2),
    ("BOB", 2),
    ("BRL", 2),
    ("BSD", 2),
    ("BTN", 2),
    ("BWP", 2),
    ("BYN", 2),
    ("BZD", 2),
    ("CAD", 2),
    ("CDF", 2),
    ("CHF", 2),
    ("CLP", 0),
    ("CNY", 2),
    ("COP", 2),
    ("CRC", 2),
    ("CUP", 2),
    ("CVE", 2),
    ("CZK", 2),
    ("DJF", 0),
    ("DKK", 2),
    ("DOP", 2),
    ("DZD", 2),
    ("EGP", 2),
    ("ERN", 2),
    ("ETB", 2),
    ("EUR", 2),
    ("FJD", 2),
    ("FKP", 2),
    ("GBP", 2),
    ("GEL", 2),
    ("GHS", 2),
    ("GIP", 2),
    ("GMD", 2),
    ("GNF", 0),
    ("GTQ", 2),
    ("GYD", 2),
    ("HKD", 2),
    ("HNL", 2),
    ("HTG", 2),
    ("HUF", 2),
    ("IDR", 2),
    ("ILS", 2),
    ("INR", 2),
    ("IQD", 3),
    ("IRR", 2),
    ("ISK", 0),
    ("JMD", 2),
    ("JOD", 3),
    ("JPY", 0),
    ("KES", 2),
    ("KGS", 2),
    ("KHR", 2),
    ("KMF", 0),
    ("KPW", 2),
    ("KRW", 0),
    ("KWD", 3),
    ("KYD", 2),
    ("KZT", 2),
    ("LAK", 2),
    ("LBP", 2),
    ("LKR", 2),
    ("LRD", 2),
    ("LSL", 2),
    ("LYD", 3),
    ("MAD", 2),
    ("MDL", 2),
    ("MGA", 2),
    ("MKD", 2),
    ("MMK", 2),
    ("MNT", 2),
    ("MOP", 2),
    ("MRU", 2),
    ("MUR", 2),
    ("MVR", 2),
    ("MWK", 2),
    ("MXN", 2),
    ("MYR", 2),
    ("MZN", 2),
    ("NAD", 2),
    ("NGN", 2),
    ("NIO", 2),
    ("NOK", 2),
    ("NPR", 2),
    ("NZD", 2),
    ("OMR", 3),
    ("PAB", 2),
    ("PEN", 2),
    ("PGK", 2),
    ("PHP", 2),
    ("PKR", 2),
    ("PLN", 2),
    ("PYG", 0),
    ("QAR", 2),
    ("RON", 2),
    ("RSD", 2),
    ("RUB", 2),
    ("RWF", 0),
    ("SAR", 2),
    ("SBD", 2),
    ("SCR", 2),
    ("SDG", 2),
    ("SEK", 2),
    ("SGD", 2),
    ("SHP", 2),
    ("SLE", 2),
    ("SOS", 2),
    ("SRD", 2),
    ("SSP", 2),
    ("STN", 2),
    ("SVC", 2),
    ("SYP", 2),
    ("SZL", 2),
    ("THB", 2),
    ("TJS", 2),
    ("TMT", 2),
    ("TND", 3),
    ("TOP", 2),
    ("TRY", 2),
    ("TTD", 2),
    ("TWD", 2),
    ("TZS", 2),
    ("UAH", 2),
    ("UGX", 0),
    ("USD", 2),
    ("UYU", 2),
    ("UZS", 2),
    ("VES", 2),
    ("VND", 0),
    ("VUV", 0),
    ("WST", 2),
    ("XAF", 0),
    ("XCD", 2),
    ("XOF", 0),
    ("XPF", 0),
    ("YER", 2),
    ("ZAR", 2),
    ("ZMW", 2),
    ("ZWL", 2),
];

fn minor_units(code: &str) -> Option<u32> {
    CURRENCIES
        .binary_search_by(|(c, _)| (*c).cmp(code))
        .ok()
        .map(|i| CURRENCIES[i].1)
}

/// Whether `code` is an active ISO 4217 currency code (upper case).
pub fn is_currency(code: &str) -> bool {
    minor_units(code).is_some()
}

/// What to do with the good rows of a batch that has bad ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnError {
    /// Store nothing and name every bad row (the API's default).
    #[default]
    RejectAll,
    /// Store the good rows and report the bad ones (imports' default).
    KeepValid,
}

/// When serving sees a catalog write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Refresh {
    /// Before the call returns (the API).
    #[default]
    Now,
    /// Within about a second, by the `catalog-refresh` job, or at the next
    /// `refresh_serving_if_stale` (bulk loads: imports, benchmarks), so consecutive batches
    /// share one reload.
    Soon,
}

/// What a catalog upsert did.
#[derive(Debug, Clone, Default)]
pub struct CatalogReport {
    pub received: usize,
    /// Items written (a repeated id counts once: its last row wins).
    pub upserted: usize,
    pub rejected: Vec<RowError>,
}

/// One item as the API shows it.
#[derive(Debug, Clone)]
pub struct CatalogItem {
    pub item: Item,
    /// The category path's segments.
    pub category_path: Vec<String>,
    /// The sensitive kind of its category or of the item itself.
    pub sensitive_kind: Option<String>,
}

fn text(field: &str, row: usize, s: &str) -> Result<()> {
    if s.trim().is_empty() || s.chars().count() > MAX_TEXT || s.chars().any(char::is_control) {
        return Err(AppError::invalid(
            format!("{field}[{row}]"),
            format!("must be 1 to {MAX_TEXT} characters without control characters"),
        ));
    }
    Ok(())
}

/// The segments of a category path (`"A > B"` or `["A", "B"]`), trimmed.
fn path_segments(v: &Value) -> std::result::Result<Vec<String>, String> {
    let segments: Vec<String> = match v {
        Value::String(s) => s.split('>').map(|p| p.trim().to_owned()).collect(),
        Value::Array(a) => a
            .iter()
            .map(|p| {
                p.as_str()
                    .map(|s| s.trim().to_owned())
                    .ok_or_else(|| "path segments must be strings".to_owned())
            })
            .collect::<std::result::Result<_, _>>()?,
        _ => return Err("must be a path like \"Home > Kitchen\" or an array of segments".into()),
    };
    if segments.is_empty() || segments.iter().any(|s| s.is_empty()) {
        return Err("has an empty segment".into());
    }
    if segments
        .iter()
        .any(|s| s.chars().count() > 128 || s.chars().any(char::is_control))
    {
        return Err("segments may have at most 128 characters and no control characters".into());
    }
    Ok(segments)
}

/// The configured sensitive kind a category path falls under, if any.
pub fn sensitive_kind_of(config: &CatalogConfig, segments: &[String]) -> Option<String> {
    let lower: Vec<String> = segments.iter().map(|s| s.to_lowercase()).collect();
    config.sensitive.iter().find_map(|s| {
        s.paths
            .iter()
            .any(|p| {
                let prefix: Vec<String> = p.split('>').map(|x| x.trim().to_lowercase()).collect();
                lower.starts_with(&prefix)
            })
            .then(|| s.kind.clone())
    })
}

/// A price in major units (number, or numeric text as CSV cells bring it) in minor units.
fn price_minor(v: &Value, currency_digits: u32) -> std::result::Result<i64, String> {
    let x = match v {
        Value::Number(n) => n.as_f64().ok_or("is not a number")?,
        Value::String(s) => s
            .trim()
            .parse::<f64>()
            .map_err(|_| format!("`{s}` is not a number"))?,
        _ => return Err("is not a number".into()),
    };
    if !x.is_finite() || !(0.0..=1e12).contains(&x) {
        return Err("must be a number from 0 to 1e12".into());
    }
    Ok((x * 10f64.powi(currency_digits as i32)).round() as i64)
}

/// Whether an availability value means the item can be bought now (or ordered).
fn availability(v: &Value) -> std::result::Result<bool, String> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) => {
            let norm: String = s
                .trim()
                .to_lowercase()
                .chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .collect();
            match norm.as_str() {
                "instock" | "available" | "preorder" | "backorder" | "true" | "yes" | "1" => {
                    Ok(true)
                }
                "outofstock" | "soldout" | "discontinued" | "unavailable" | "false" | "no"
                | "0" => Ok(false),
                _ => Err(format!(
                    "`{s}` is not one of in_stock, out_of_stock, preorder, backorder, discontinued"
                )),
            }
        }
        _ => Err("must be true/false or in_stock, out_of_stock, preorder, backorder".into()),
    }
}

fn opt_text(
    o: &Map<String, Value>,
    field: &str,
    max: usize,
) -> std::result::Result<Option<String>, (String, String)> {
    match o.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= max && !s.chars().any(char::is_control) => {
            Ok(Some(s.trim().to_owned()))
        }
        Some(Value::String(_)) => Err((
            field.to_owned(),
            format!("must be at most {max} characters without control characters"),
        )),
        Some(_) => Err((field.to_owned(), "must be text".into())),
    }
}

/// The fields an item row may have.
pub const ITEM_FIELDS: &[&str] = &[
    "id",
    "title",
    "category",
    "price",
    "currency",
    "availability",
    "image_url",
    "brand",
    "sensitive",
    "attributes",
];

/// Validates one row of a catalog batch (API body or import) into an item and its category.
pub fn item_from_json(
    config: &CatalogConfig,
    row: usize,
    v: &Value,
) -> std::result::Result<(Item, CatalogCategory), RowError> {
    let err = |field: &str, message: String| RowError {
        row,
        field: field.to_owned(),
        message,
    };
    let o = v
        .as_object()
        .ok_or_else(|| err("item", "must be a JSON object".into()))?;
    if let Some(k) = o.keys().find(|k| !ITEM_FIELDS.contains(&k.as_str())) {
        return Err(err(
            k,
            format!(
                "unknown field; an item has {}; put anything else under `attributes`",
                ITEM_FIELDS.join(", ")
            ),
        ));
    }
    let id = match o.get("id") {
        Some(Value::String(s)) => s.trim().to_owned(),
        Some(Value::Number(n)) => n.to_string(),
        None | Some(Value::Null) => return Err(err("id", "is required".into())),
        Some(_) => return Err(err("id", "must be text".into())),
    };
    let required_text = |field: &str, s: &str| {
        if s.is_empty() || s.chars().count() > MAX_TEXT || s.chars().any(char::is_control) {
            Err(err(
                field,
                format!("must be 1 to {MAX_TEXT} characters without control characters"),
            ))
        } else {
            Ok(())
        }
    };
    required_text("id", &id)?;
    let title = match o.get("title") {
        Some(Value::String(s)) => s.trim().to_owned(),
        None | Some(Value::Null) => return Err(err("title", "is required".into())),
        Some(_) => return Err(err("title", "must be text".into())),
    };
    required_text("title", &title)?;
    let segments = match o.get("category") {
        None | Some(Value::Null) => return Err(err("category", "is required".into())),
        Some(c) => path_segments(c).map_err(|m| err("category", m))?,
    };
    if segments.len() > config.max_category_depth {
        return Err(err(
            "category",
            format!(
                "has {} levels; catalog.max_category_depth allows {}",
                segments.len(),
                config.max_category_depth
            ),
        ));
    }
    let currency = match o.get("currency") {
        None | Some(Value::Null) => config.default_currency.clone(),
        Some(Value::String(s)) if s.trim().is_empty() => config.default_currency.clone(),
        Some(Value::String(s)) => s.trim().to_ascii_uppercase(),
        Some(_) => return Err(err("currency", "must be an ISO 4217 code".into())),
    };
    let digits = minor_units(&currency).ok_or_else(|| {
        err(
            "currency",
            format!("`{currency}` is not an ISO 4217 currency code"),
        )
    })?;
    let price_cents = match o.get("price") {
        None | Some(Value::Null) => return Err(err("price", "is required".into())),
        Some(p) => price_minor(p, digits).map_err(|m| err("price", m))?,
    };
    let available = match o.get("availability") {
        None | Some(Value::Null) => true,
        Some(a) => availability(a).map_err(|m| err("availability", m))?,
    };
    let fail = |(f, m): (String, String)| err(&f, m);
    let image_url = opt_text(o, "image_url", MAX_URL).map_err(fail)?;
    if let Some(u) = &image_url
        && !(u.starts_with("https://") || u.starts_with("http://"))
    {
        return Err(err("image_url", "must be an http(s) URL".into()));
    }
    let brand = opt_text(o, "brand", MAX_TEXT).map_err(fail)?;
    let flagged = opt_text(o, "sensitive", 64).map_err(fail)?;
    if let Some(k) = &flagged
        && !config.sensitive.iter().any(|s| &s.kind == k)
    {
        return Err(err(
            "sensitive",
            format!(
                "`{k}` is not a sensitive kind declared in catalog.sensitive ({})",
                config
                    .sensitive
                    .iter()
                    .map(|s| s.kind.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    let attributes = match o.get("attributes") {
        None | Some(Value::Null) => "{}".to_owned(),
        Some(a @ Value::Object(_)) => {
            let s = a.to_string();
            if s.len() > MAX_ATTRIBUTES_BYTES {
                return Err(err(
                    "attributes",
                    format!("may be at most {MAX_ATTRIBUTES_BYTES} bytes of JSON"),
                ));
            }
            s
        }
        Some(_) => return Err(err("attributes", "must be a JSON object".into())),
    };
    let category = CatalogCategory {
        id: segments.join(PATH_SEPARATOR),
        name: segments.last().expect("at least one segment").clone(),
        sensitive_kind: sensitive_kind_of(config, &segments),
    };
    Ok((
        Item {
            id,
            name: title,
            category_id: category.id.clone(),
            price_cents,
            currency,
            available,
            image_url,
            brand,
            attributes,
            sensitive_kind: flagged,
        },
        category,
    ))
}

/// An item's price back in major units, for display.
pub fn price_major(item: &Item) -> f64 {
    let digits = minor_units(&item.currency).unwrap_or(2);
    item.price_cents as f64 / 10f64.powi(digits as i32)
}

impl App {
    /// Adds or replaces categories and items, then serves from the new catalog at once.
    pub async fn upsert_catalog(
        &self,
        actor: &str,
        categories: &[CatalogCategory],
        items: &[Item],
    ) -> Result<()> {
        self.write_catalog(actor, categories, items, Refresh::Now)
            .await
    }

    /// Reloads serving if a `Refresh::Soon` write left it stale; says whether it did.
    pub async fn refresh_serving_if_stale(&self) -> Result<bool> {
        use std::sync::atomic::Ordering;
        if !self
            .personalization
            .catalog_stale
            .swap(false, Ordering::AcqRel)
        {
            return Ok(false);
        }
        if let Err(e) = self.reload_serving().await {
            self.personalization
                .catalog_stale
                .store(true, Ordering::Release);
            return Err(e);
        }
        Ok(true)
    }

    async fn write_catalog(
        &self,
        actor: &str,
        categories: &[CatalogCategory],
        items: &[Item],
        refresh: Refresh,
    ) -> Result<()> {
        for (n, c) in categories.iter().enumerate() {
            text("categories.id", n, &c.id)?;
            text("categories.name", n, &c.name)?;
        }
        for (n, i) in items.iter().enumerate() {
            text("items.id", n, &i.id)?;
            text("items.name", n, &i.name)?;
            text("items.category_id", n, &i.category_id)?;
            if i.price_cents < 0 {
                return Err(AppError::invalid(
                    format!("items.price_cents[{n}]"),
                    "must not be negative",
                ));
            }
            if !is_currency(&i.currency) {
                return Err(AppError::invalid(
                    format!("items.currency[{n}]"),
                    "must be an ISO 4217 currency code",
                ));
            }
        }
        let audit = AuditDraft::new(
            actor,
            candor_domain::AuditAction::CatalogUpsert,
            "catalog",
            json!({"categories": categories.len(), "items": items.len()}),
        );
        self.store
            .upsert_catalog(categories, items, self.now(), audit)
            .await?;
        match refresh {
            Refresh::Now => self.reload_serving().await,
            Refresh::Soon => {
                self.personalization
                    .catalog_stale
                    .store(true, std::sync::atomic::Ordering::Release);
                Ok(())
            }
        }
    }

    /// Validates and upserts a batch of item rows (the API body or an import batch). With
    /// `RejectAll` one bad row stores nothing and every bad row is named; with `KeepValid` the
    /// good rows are stored and the bad ones reported.
    pub async fn upsert_items(
        &self,
        actor: &str,
        rows: &[Value],
        on_error: OnError,
        refresh: Refresh,
    ) -> Result<CatalogReport> {
        if rows.len() > MAX_ITEMS_PER_REQUEST {
            return Err(AppError::invalid(
                "items",
                format!("at most {MAX_ITEMS_PER_REQUEST} items per request"),
            ));
        }
        let config = &self.config.catalog;
        let mut report = CatalogReport {
            received: rows.len(),
            ..CatalogReport::default()
        };
        // A repeated id keeps its last row: one statement may not change a row twice.
        let mut items: BTreeMap<String, Item> = BTreeMap::new();
        let mut categories: BTreeMap<String, CatalogCategory> = BTreeMap::new();
        for (n, v) in rows.iter().enumerate() {
            match item_from_json(config, n, v) {
                Ok((item, category)) => {
                    categories.insert(category.id.clone(), category);
                    items.insert(item.id.clone(), item);
                }
                Err(e) => report.rejected.push(e),
            }
        }
        if !report.rejected.is_empty() && on_error == OnError::RejectAll {
            return Err(AppError::InvalidRows {
                what: "items",
                rows: report.rejected,
            });
        }
        if items.is_empty() {
            return Ok(report);
        }
        let categories: Vec<CatalogCategory> = categories.into_values().collect();
        let items: Vec<Item> = items.into_values().collect();
        self.write_catalog(actor, &categories, &items, refresh)
            .await?;
        report.upserted = items.len();
        Ok(report)
    }

    /// Deletes an item: it is no longer listed or served (kept as a tombstone, see the module
    /// invariants). Serving here reloads before this returns.
    pub async fn delete_item(&self, actor: &str, id: &str) -> Result<()> {
        let audit = AuditDraft::new(
            actor,
            candor_domain::AuditAction::CatalogDelete,
            id,
            json!({}),
        );
        self.store
            .delete_catalog_item(id, self.now(), audit)
            .await?;
        self.reload_serving().await
    }

    /// Live items in id order after `after`, at most `limit` (1-1000).
    pub async fn catalog_items(&self, after: &str, limit: usize) -> Result<Vec<CatalogItem>> {
        if !(1..=1000).contains(&limit) {
            return Err(AppError::invalid("limit", "must be between 1 and 1000"));
        }
        let items = self.store.catalog_items_page(after, limit as i64).await?;
        Ok(items
            .into_iter()
            .map(|i| self.catalog_item_view(i))
            .collect())
    }

    /// One live item.
    pub async fn catalog_item(&self, id: &str) -> Result<CatalogItem> {
        let item = self
            .store
            .catalog_item(id)
            .await?
            .ok_or_else(|| AppError::NotFound {
                what: "item",
                id: id.to_owned(),
            })?;
        Ok(self.catalog_item_view(item))
    }

    fn catalog_item_view(&self, item: Item) -> CatalogItem {
        let category_path: Vec<String> = item
            .category_id
            .split(PATH_SEPARATOR)
            .map(str::to_owned)
            .collect();
        let sensitive_kind = item
            .sensitive_kind
            .clone()
            .or_else(|| sensitive_kind_of(&self.config.catalog, &category_path));
        CatalogItem {
            item,
            category_path,
            sensitive_kind,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> CatalogConfig {
        let mut c = CatalogConfig::default();
        c.sensitive[0].paths = vec!["Health > Pharmacy".into()];
        c.max_category_depth = 3;
        c
    }

    fn row(v: Value) -> std::result::Result<(Item, CatalogCategory), RowError> {
        item_from_json(&config(), 7, &v)
    }

    #[test]
    fn currencies_are_sorted_for_binary_search() {
        assert!(CURRENCIES.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(minor_units("JPY"), Some(0));
        assert_eq!(minor_units("KWD"), Some(3));
        assert!(!is_currency("XXX") && !is_currency("eur"));
    }

    #[test]
    fn a_good_row_becomes_an_item_in_its_category() {
        let (item, cat) = row(
            json!({"id": 42, "title": " Chef knife ", "category": "Home > Kitchen",
            "price": "19.99", "currency": "usd", "availability": "out of stock", "brand": "Acme",
            "attributes": {"colour": "red"}}),
        )
        .unwrap();
        assert_eq!(item.id, "42");
        assert_eq!(item.name, "Chef knife");
        assert_eq!(item.price_cents, 1999);
        assert_eq!(item.currency, "USD");
        assert!(!item.available);
        assert_eq!(cat.id, "Home > Kitchen");
        assert_eq!(cat.name, "Kitchen");
        assert_eq!(cat.sensitive_kind, None);
        let (jpy, _) = row(
            json!({"id": "a", "title": "t", "category": ["A"], "price": 1200, "currency": "JPY"}),
        )
        .unwrap();
        assert_eq!(jpy.price_cents, 1200);
    }

    #[test]
    fn sensitive_paths_and_flags() {
        let (_, cat) =
            row(json!({"id": "a", "title": "t", "category": "health > pharmacy > Vitamins", "price": 1}))
                .unwrap();
        assert_eq!(cat.sensitive_kind.as_deref(), Some("health"));
        let (_, cat) =
            row(json!({"id": "a", "title": "t", "category": "Health > Pharmacyish", "price": 1}))
                .unwrap();
        assert_eq!(cat.sensitive_kind, None, "segments compare whole");
        let (item, _) = row(
            json!({"id": "a", "title": "t", "category": "Books", "price": 1, "sensitive": "religion"}),
        )
        .unwrap();
        assert_eq!(item.sensitive_kind.as_deref(), Some("religion"));
    }

    #[test]
    fn bad_rows_name_the_row_and_the_field() {
        let cases = [
            (json!({"title": "t", "category": "A", "price": 1}), "id"),
            (
                json!({"id": "a", "title": "t", "category": "A", "price": "cheap"}),
                "price",
            ),
            (
                json!({"id": "a", "title": "t", "category": "A", "price": -1}),
                "price",
            ),
            (
                json!({"id": "a", "title": "t", "category": "A", "price": 1, "currency": "ZZZ"}),
                "currency",
            ),
            (
                json!({"id": "a", "title": "t", "category": "A > B > C > D", "price": 1}),
                "category",
            ),
            (
                json!({"id": "a", "title": "t", "category": "A >  > B", "price": 1}),
                "category",
            ),
            (
                json!({"id": "a", "title": "t", "category": "A", "price": 1, "colour": "red"}),
                "colour",
            ),
            (
                json!({"id": "a", "title": "t", "category": "A", "price": 1, "sensitive": "crime"}),
                "sensitive",
            ),
            (
                json!({"id": "a", "title": "t", "category": "A", "price": 1, "availability": "maybe"}),
                "availability",
            ),
            (
                json!({"id": "a", "title": "t", "category": "A", "price": 1, "image_url": "ftp://x"}),
                "image_url",
            ),
            (json!({"id": "a", "category": "A", "price": 1}), "title"),
            (json!(["not an object"]), "item"),
        ];
        for (v, field) in cases {
            let e = row(v.clone()).expect_err(&v.to_string());
            assert_eq!((e.row, e.field.as_str()), (7, field), "{v}: {e}");
        }
    }
}
