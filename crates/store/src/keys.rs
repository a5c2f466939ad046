//! API keys, stored by the digest of their secret.

use candor_domain::{AuditDraft, Micros, Scope};
use sqlx::{AssertSqlSafe, Row};

use crate::{Result, Store, StoreError};

/// A stored key. Never holds the secret, only its digest and a display prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRow {
    pub id: String,
    pub name: String,
    pub scope: Scope,
    pub secret_hash: String,
    pub prefix: String,
    pub created_at: Micros,
    pub revoked_at: Option<Micros>,
    /// The person holding the key, when named at creation.
    pub holder: Option<String>,
}

fn decode(r: &sqlx::any::AnyRow) -> Result<ApiKeyRow> {
    Ok(ApiKeyRow {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        scope: Scope::parse(&r.try_get::<String, _>("scope")?)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        secret_hash: r.try_get("secret_hash")?,
        prefix: r.try_get("prefix")?,
        created_at: r.try_get("created_at")?,
        revoked_at: r.try_get("revoked_at")?,
        holder: r.try_get("holder")?,
    })
}

const COLUMNS: &str = "id, name, scope, secret_hash, prefix, created_at, revoked_at, holder";

impl Store {
    pub async fn create_key(&self, key: &ApiKeyRow, audit: &AuditDraft) -> Result<()> {
        let insert = sqlx::query("INSERT INTO api_keys (id, name, scope, secret_hash, prefix, created_at, revoked_at, holder) VALUES ($1, $2, $3, $4, $5, $6, NULL, $7)")
            .bind(&key.id)
            .bind(&key.name)
            .bind(key.scope.as_str())
            .bind(&key.secret_hash)
            .bind(&key.prefix)
            .bind(key.created_at)
            .bind(key.holder.as_deref());
        self.audited_statement(key.created_at, insert, None, audit, &["keys".to_owned()])
            .await
    }

    pub async fn list_keys(&self) -> Result<Vec<ApiKeyRow>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM api_keys ORDER BY created_at, id"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decode).collect()
    }

    /// Active (not revoked) keys, for the in-memory key cache.
    pub async fn active_keys(&self) -> Result<Vec<ApiKeyRow>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM api_keys WHERE revoked_at IS NULL"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decode).collect()
    }

    /// Revokes a key; `NotFound` if no active key has that id.
    pub async fn revoke_key(&self, id: &str, at: Micros, audit: &AuditDraft) -> Result<()> {
        let revoke =
            sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(at)
                .bind(id);
        self.audited_statement(
            at,
            revoke,
            Some(("active api key", id)),
            audit,
            &["keys".to_owned()],
        )
        .await
    }
}
