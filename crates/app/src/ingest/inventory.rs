//! Administering the tracking plan.

use std::collections::BTreeMap;
use std::sync::Arc;

use candor_domain::AuditDraft;
use candor_domain::inventory::Inventory;
use serde_json::json;

use crate::{App, AppError, Result};

/// The tracking plan with what ingestion kept and dropped under it.
#[derive(Debug, Clone)]
pub struct InventoryView {
    pub inventory: Inventory,
    /// Per event key: counter name -> count (events_stored, events_without_consent,
    /// events_quarantined, events_rejected, kept:<property>, dropped:<property>:<reason>).
    pub counts: BTreeMap<String, BTreeMap<String, i64>>,
}

impl App {
    pub(crate) async fn reload_inventory(&self) -> Result<()> {
        let inv = match self.store.inventory_body().await? {
            Some(body) => serde_json::from_str(&body)
                .map_err(|e| AppError::Internal(format!("stored inventory unreadable: {e}")))?,
            None => Inventory::default(),
        };
        *self.ingest.inventory.write().expect("inventory lock") = Arc::new(inv);
        Ok(())
    }

    /// Installs the `[inventory]` of the configuration when it differs from the stored one.
    pub(crate) async fn install_configured_inventory(&self) -> Result<()> {
        let Some(inv) = self.config.inventory.clone() else {
            return Ok(());
        };
        let stored = self.store.inventory_body().await?;
        if stored
            .as_deref()
            .and_then(|b| serde_json::from_str::<Inventory>(b).ok())
            .as_ref()
            == Some(&inv)
        {
            return Ok(());
        }
        self.set_inventory("config", inv).await
    }

    /// Replaces the tracking plan after checking every purpose and category it names.
    pub async fn set_inventory(&self, actor: &str, inv: Inventory) -> Result<()> {
        inv.validate(&self.purposes())?;
        let body = serde_json::to_string(&inv).map_err(|e| AppError::Internal(e.to_string()))?;
        let audit = AuditDraft::new(
            actor,
            candor_domain::AuditAction::InventoryUpdate,
            "tracking_plan",
            json!({"events": inv.events.len(), "traits": inv.traits.len(), "context": inv.context.len(), "undeclared_events": inv.undeclared_events}),
        );
        self.store.set_inventory(&body, self.now(), &audit).await?;
        self.reload_inventory().await
    }

    pub async fn inventory_view(&self) -> Result<InventoryView> {
        self.flush_inventory_counts().await?;
        let mut counts: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
        for (key, counter, value) in self.store.inventory_counts().await? {
            counts.entry(key).or_default().insert(counter, value);
        }
        Ok(InventoryView {
            inventory: (*self.inventory()).clone(),
            counts,
        })
    }
}
