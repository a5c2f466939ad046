//! The shop's catalog as serving sees it: categories (some sensitive) and items.
//!
//! Invariants: every catalog change is validated first and then stored all-or-nothing with its
//! audit entry; serving on this node reloads before the call returns, and other nodes reload
//! when the change commits, so a new or changed item is served without a restart.

use candor_domain::AuditDraft;
use candor_store::{CatalogCategory, Item};
use serde_json::json;

use crate::{App, AppError, Result};

/// Longest id or name a catalog entry may have.
const MAX_TEXT: usize = 512;

fn text(field: &str, row: usize, s: &str) -> Result<()> {
    if s.trim().is_empty() || s.chars().count() > MAX_TEXT || s.chars().any(char::is_control) {
        return Err(AppError::invalid(
            format!("{field}[{row}]"),
            format!("must be 1 to {MAX_TEXT} characters without control characters"),
        ));
    }
    Ok(())
}

impl App {
    /// Adds or replaces categories and items, then serves from the new catalog at once.
    pub async fn upsert_catalog(
        &self,
        actor: &str,
        categories: &[CatalogCategory],
        items: &[Item],
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
        self.reload_serving().await
    }
}
