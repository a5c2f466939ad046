//! What profiles read (events with their items' catalog data, declared interests, the catalog's
//! categories) and the rule segments administrators define.
//!
//! Invariant: nothing here reads protected attributes; consent is applied by the caller to every
//! row through the `purpose` it carries.

use candor_domain::profile::{CategoryInfo, ProfileEvent};
use candor_domain::{AuditDraft, Micros, Permits};
use sqlx::Row;

use crate::{Result, Store, StoreError};

/// A stored rule segment. `rule` is the validated rule as JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentRow {
    pub id: String,
    pub name: String,
    pub description: String,
    pub rule: String,
    pub created_by: String,
    pub created_at: Micros,
}

fn decode_segment(r: &sqlx::any::AnyRow) -> Result<SegmentRow> {
    Ok(SegmentRow {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        rule: r.try_get("rule")?,
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
    })
}

impl Store {
    /// Of the subject's newest `limit` events (returned oldest first), those some permit of
    /// `permits` covers, each with its item's catalog category and price when the item is in the
    /// catalog. Which permit may shape which part of a profile is the domain's rule
    /// (`profiling_basis`); this read keeps out what no permit covers at all, and says how
    /// many it kept out.
    pub async fn profile_events(
        &self,
        permits: &Permits<'_>,
        limit: i64,
    ) -> Result<(Vec<ProfileEvent>, u64)> {
        let rows = self
            .subject_rows(permits.subject().as_str(), limit, |of_subject| {
                format!(
                    "SELECT e.kind, e.name, e.category, e.purpose, e.properties, e.quantity, e.at, \
                     c.id AS cat_id, c.name AS cat_name, c.sensitive_kind, i.price_cents \
                     FROM events e LEFT JOIN items i ON i.id = e.item_id \
                     LEFT JOIN catalog_categories c ON c.id = i.category_id \
                     WHERE {of_subject} ORDER BY e.at DESC, e.id DESC LIMIT $2"
                )
            })
            .await?;
        let mut out = rows
            .iter()
            .map(|r| {
                let cat_id: Option<String> = r.try_get("cat_id")?;
                let cat_name: Option<String> = r.try_get("cat_name")?;
                let sensitive: Option<String> = r.try_get("sensitive_kind")?;
                let properties: String = r.try_get("properties")?;
                Ok(ProfileEvent {
                    kind: r.try_get("kind")?,
                    name: r.try_get("name")?,
                    data_category: r.try_get("category")?,
                    purpose: r.try_get("purpose")?,
                    properties: serde_json::from_str(&properties)
                        .map_err(|e| StoreError::Corrupt(format!("event properties: {e}")))?,
                    quantity: r.try_get("quantity")?,
                    at: r.try_get("at")?,
                    item_category: cat_id.map(|id| CategoryInfo {
                        name: cat_name.unwrap_or_else(|| id.clone()),
                        id,
                        sensitive: sensitive.is_some(),
                    }),
                    item_price_cents: r.try_get("price_cents")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let read = out.len();
        out.retain(|e| e.is_identity_link() || permits.covering(&e.effective_category()).is_some());
        out.reverse();
        let withheld = (read - out.len()) as u64;
        Ok((out, withheld))
    }

    /// A subject's stored declared interests, with catalog names where known.
    pub async fn profile_declared_interests(&self, subject: &str) -> Result<Vec<CategoryInfo>> {
        let rows = sqlx::query(
            "SELECT d.category_id, c.name, c.sensitive_kind FROM declared_interests d \
             LEFT JOIN catalog_categories c ON c.id = d.category_id \
             WHERE d.subject_key = $1 ORDER BY d.category_id",
        )
        .bind(subject)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let id: String = r.try_get("category_id")?;
                let name: Option<String> = r.try_get("name")?;
                let sensitive: Option<String> = r.try_get("sensitive_kind")?;
                Ok(CategoryInfo {
                    name: name.unwrap_or_else(|| id.clone()),
                    id,
                    sensitive: sensitive.is_some(),
                })
            })
            .collect()
    }

    /// Every catalog category, for matching declared values and refusing sensitive ones.
    pub async fn profile_categories(&self) -> Result<Vec<CategoryInfo>> {
        let rows =
            sqlx::query("SELECT id, name, sensitive_kind FROM catalog_categories ORDER BY id")
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| {
                Ok(CategoryInfo {
                    id: r.try_get("id")?,
                    name: r.try_get("name")?,
                    sensitive: r.try_get::<Option<String>, _>("sensitive_kind")?.is_some(),
                })
            })
            .collect()
    }

    /// Stores a new segment, audited in the same transaction.
    pub async fn create_segment(&self, s: &SegmentRow, audit_draft: &AuditDraft) -> Result<()> {
        let insert = sqlx::query("INSERT INTO segments (id, name, description, rule, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(&s.id)
            .bind(&s.name)
            .bind(&s.description)
            .bind(&s.rule)
            .bind(&s.created_by)
            .bind(s.created_at);
        self.audited_statement(s.created_at, insert, None, audit_draft, &[])
            .await
    }

    pub async fn segments(&self) -> Result<Vec<SegmentRow>> {
        let rows = sqlx::query("SELECT id, name, description, rule, created_by, created_at FROM segments ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(decode_segment).collect()
    }

    pub async fn segment(&self, id: &str) -> Result<Option<SegmentRow>> {
        let row = sqlx::query("SELECT id, name, description, rule, created_by, created_at FROM segments WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(decode_segment).transpose()
    }

    pub async fn segment_count(&self) -> Result<i64> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM segments")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?)
    }

    /// Deletes a segment, audited in the same transaction; `NotFound` if there is none.
    pub async fn delete_segment(
        &self,
        id: &str,
        at: Micros,
        audit_draft: &AuditDraft,
    ) -> Result<()> {
        let delete = sqlx::query("DELETE FROM segments WHERE id = $1").bind(id);
        self.audited_statement(at, delete, Some(("segment", id)), audit_draft, &[])
            .await
    }
}
