//! API keys: creation, revocation, and the in-memory lookup every request uses.

use std::collections::HashMap;
use std::sync::Arc;

use candor_domain::apikey::{display_prefix, format_secret, hash_secret};
use candor_domain::{AuditDraft, Scope};
use candor_store::ApiKeyRow;
use serde_json::json;

use crate::{App, AppError, Result};

/// What a request learns about the key it presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    pub id: String,
    pub name: String,
    pub scope: Scope,
    /// The person holding the key, when named at creation.
    pub holder: Option<String>,
}

impl KeyInfo {
    /// How this key appears as the actor in the audit log: `key:ID`, or `holder:WHO/key:ID`
    /// for a key created for a named person (see [`candor_domain::review::identity`]).
    pub fn actor(&self) -> String {
        match &self.holder {
            Some(h) => format!("holder:{h}/key:{}", self.id),
            None => format!("key:{}", self.id),
        }
    }
}

/// A new key; `secret` is shown once and never stored.
#[derive(Debug, Clone)]
pub struct CreatedKey {
    pub id: String,
    pub name: String,
    pub scope: Scope,
    pub secret: String,
}

impl App {
    pub(crate) async fn reload_keys(&self) -> Result<()> {
        let keys = self.store.active_keys().await?;
        let map: HashMap<String, KeyInfo> = keys
            .into_iter()
            .map(|k| {
                (
                    k.secret_hash,
                    KeyInfo {
                        id: k.id,
                        name: k.name,
                        scope: k.scope,
                        holder: k.holder,
                    },
                )
            })
            .collect();
        *self.access.keys.write().expect("keys lock") = Arc::new(map);
        Ok(())
    }

    /// Looks up a presented secret. `None` for unknown or revoked keys.
    pub fn authenticate(&self, secret: &str) -> Option<KeyInfo> {
        if secret.len() > 256 {
            return None;
        }
        self.access
            .keys
            .read()
            .expect("keys lock")
            .get(&hash_secret(secret))
            .cloned()
    }

    pub async fn create_key(&self, actor: &str, name: &str, scope: Scope) -> Result<CreatedKey> {
        self.create_key_for(actor, name, scope, None).await
    }

    /// [`App::create_key`] for a named person (an email or staff id, 1-200 characters): keys
    /// of one holder count as one identity in the review queue.
    pub async fn create_key_for(
        &self,
        actor: &str,
        name: &str,
        scope: Scope,
        holder: Option<&str>,
    ) -> Result<CreatedKey> {
        let holder = holder.map(str::trim);
        if holder.is_some_and(|h| {
            h.is_empty() || h.chars().count() > 200 || h.chars().any(|c| c.is_control() || c == '/')
        }) {
            return Err(AppError::invalid(
                "holder",
                "must be 1-200 characters without control characters or `/`",
            ));
        }
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(AppError::invalid(
                "name",
                "must be 1-100 characters without control characters",
            ));
        }
        let secret = format_secret(scope, &rand::random());
        let id = format!("key_{}", hex::encode(rand::random::<[u8; 8]>()));
        let row = ApiKeyRow {
            id: id.clone(),
            name: name.to_owned(),
            scope,
            secret_hash: hash_secret(&secret),
            prefix: display_prefix(&secret),
            created_at: self.now(),
            revoked_at: None,
            holder: holder.map(str::to_owned),
        };
        let audit = AuditDraft::new(
            actor,
            candor_domain::AuditAction::KeyCreate,
            &id,
            json!({"name": name, "scope": scope, "holder": holder}),
        );
        self.store.create_key(&row, &audit).await?;
        self.reload_keys().await?;
        Ok(CreatedKey {
            id,
            name: name.to_owned(),
            scope,
            secret,
        })
    }

    pub async fn list_keys(&self) -> Result<Vec<ApiKeyRow>> {
        Ok(self.store.list_keys().await?)
    }

    /// Revokes a key; effective on this node before returning, on others at the notification.
    pub async fn revoke_key(&self, actor: &str, id: &str) -> Result<()> {
        let audit = AuditDraft::new(actor, candor_domain::AuditAction::KeyRevoke, id, json!({}));
        self.store.revoke_key(id, self.now(), &audit).await?;
        self.reload_keys().await
    }
}
