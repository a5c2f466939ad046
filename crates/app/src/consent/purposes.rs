//! Declaring and revising purposes.

use std::collections::BTreeMap;
use std::sync::Arc;

use candor_domain::{AuditDraft, Purpose, PurposeDraft, PurposeId};
use serde_json::json;

use crate::{App, AppError, Result};

impl App {
    /// A snapshot of the declared purposes.
    pub fn purposes(&self) -> Arc<BTreeMap<PurposeId, Purpose>> {
        self.consent.purposes.read().expect("purposes lock").clone()
    }

    pub fn purpose(&self, id: &PurposeId) -> Result<Purpose> {
        self.purposes()
            .get(id)
            .cloned()
            .ok_or_else(|| AppError::UnknownPurpose(id.to_string()))
    }

    pub(crate) async fn reload_purposes(&self) -> Result<()> {
        let list = self.store.list_purposes().await?;
        let map = list.into_iter().map(|p| (p.id.clone(), p)).collect();
        *self.consent.purposes.write().expect("purposes lock") = Arc::new(map);
        // Histories in memory were read with permits for the old purposes, whose categories
        // may have changed: read them again under the new ones.
        self.clear_histories();
        Ok(())
    }

    pub async fn create_purpose(&self, actor: &str, draft: &PurposeDraft) -> Result<Purpose> {
        let p = draft.validate()?;
        let audit = AuditDraft::new(
            actor,
            candor_domain::AuditAction::PurposeCreate,
            p.id.as_str(),
            serde_json::to_value(&p).unwrap_or_default(),
        );
        self.store.create_purpose(&p, self.now(), &audit).await?;
        self.reload_purposes().await?;
        Ok(p)
    }

    /// Revises a purpose; a material change bumps its version, which asks every subject who
    /// consented to the old version for fresh consent.
    pub async fn update_purpose(
        &self,
        actor: &str,
        id: &str,
        draft: &PurposeDraft,
    ) -> Result<(Purpose, bool)> {
        let pid = PurposeId::parse(id)?;
        let current = self
            .store
            .get_purpose(pid.as_str())
            .await?
            .ok_or_else(|| AppError::UnknownPurpose(id.to_owned()))?;
        let (next, material) = current.revise(draft)?;
        let audit = AuditDraft::new(
            actor,
            candor_domain::AuditAction::PurposeUpdate,
            pid.as_str(),
            json!({"material": material, "from_version": current.version, "purpose": next}),
        );
        self.store
            .update_purpose(&next, material, self.now(), &audit)
            .await?;
        self.reload_purposes().await?;
        Ok((next, material))
    }
}

impl App {
    /// Every stored revision of a declared purpose: (version, material, purpose, at).
    pub async fn purpose_history(
        &self,
        id: &str,
    ) -> Result<Vec<(u32, bool, Purpose, candor_domain::Micros)>> {
        let pid = PurposeId::parse(id).map_err(|_| AppError::UnknownPurpose(id.to_owned()))?;
        self.purpose(&pid)?;
        Ok(self.store.purpose_history(pid.as_str()).await?)
    }
}
