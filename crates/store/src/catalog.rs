//! Shop data: catalog, behavioral events, declared interests, protected attributes, decisions.
//!
//! Invariant: protected attributes are written and read only through the functions named
//! `protected_*`, which no recommendation path calls; they sit in their own table.

use candor_domain::{AuditDraft, Micros};
use sqlx::{AssertSqlSafe, Row};

use crate::{Result, Store, bool_to_db};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogCategory {
    pub id: String,
    pub name: String,
    pub sensitive_kind: Option<String>,
}

/// One catalog item as stored. `category_id` names a `CatalogCategory` (the API's category
/// path, joined with " > ").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub id: String,
    pub name: String,
    pub category_id: String,
    /// Price in the currency's minor unit.
    pub price_cents: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// Unavailable items are kept and listed but never recommended.
    pub available: bool,
    pub image_url: Option<String>,
    pub brand: Option<String>,
    /// Free attributes: a JSON object's text.
    pub attributes: String,
    /// The item itself is flagged sensitive of this kind (its category is then treated as
    /// sensitive too).
    pub sensitive_kind: Option<String>,
}

impl Default for Item {
    fn default() -> Self {
        Item {
            id: String::new(),
            name: String::new(),
            category_id: String::new(),
            price_cents: 0,
            currency: "EUR".into(),
            available: true,
            image_url: None,
            brand: None,
            attributes: "{}".into(),
            sensitive_kind: None,
        }
    }
}

/// What serving needs of an item: tombstones come too (in place), so indices stay stable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServingItem {
    pub id: String,
    pub name: String,
    pub category_id: String,
    /// Available and not deleted.
    pub servable: bool,
    pub sensitive_kind: Option<String>,
    pub brand: Option<String>,
    /// Free attributes, a JSON object's text (item groups for exposure constraints read it).
    pub attributes: String,
}

const ITEM_COLUMNS: &str = "id, name, category_id, price_cents, currency, available, image_url, brand, attributes, sensitive_kind, deleted, updated_at";

fn item_from_row(r: &sqlx::any::AnyRow) -> Result<Item> {
    Ok(Item {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        category_id: r.try_get("category_id")?,
        price_cents: r.try_get("price_cents")?,
        currency: r.try_get("currency")?,
        available: r.try_get::<i64, _>("available")? != 0,
        image_url: r.try_get("image_url")?,
        brand: r.try_get("brand")?,
        attributes: r.try_get("attributes")?,
        sensitive_kind: r.try_get("sensitive_kind")?,
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow {
    pub subject_key: String,
    pub kind: String,
    pub item_id: String,
    pub quantity: i64,
    pub at: Micros,
    pub category: String,
    /// The purpose that allowed collecting it.
    pub purpose: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DecisionRow {
    pub subject_key: String,
    pub surface: String,
    pub item_id: String,
    pub selected: bool,
    pub outcome: Option<bool>,
    pub score: Option<f64>,
    pub model_version: String,
    pub at: Micros,
    /// 1-based rank in the response, for exposure audits.
    pub position: Option<i64>,
    /// The answer this row was part of, for feedback; `None` for imported decisions.
    pub answer_id: Option<String>,
}

impl Store {
    /// Adds or replaces categories and items, audited in the same transaction; other nodes
    /// reload serving when it commits.
    pub async fn upsert_catalog(
        &self,
        categories: &[CatalogCategory],
        items: &[Item],
        at: Micros,
        audit: AuditDraft,
    ) -> Result<()> {
        let backend = self.backend;
        self.audited(
            at,
            &(categories, items),
            |tx, &(categories, items)| {
                Box::pin(async move {
                    for c in categories {
                        sqlx::query("INSERT INTO catalog_categories (id, name, sensitive_kind) VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET name = excluded.name, sensitive_kind = excluded.sensitive_kind")
                            .bind(&c.id)
                            .bind(&c.name)
                            .bind(c.sensitive_kind.as_deref())
                            .execute(&mut **tx)
                            .await?;
                    }
                    // Multi-row statements: a feed of a million items is a thousand round trips,
                    // not a million. Upserting a deleted item brings it back.
                    for chunk in items.chunks(crate::ingest::CHUNK) {
                        let sql = format!(
                            "INSERT INTO items ({ITEM_COLUMNS}) VALUES {} ON CONFLICT (id) DO UPDATE SET name = excluded.name, category_id = excluded.category_id, price_cents = excluded.price_cents, currency = excluded.currency, available = excluded.available, image_url = excluded.image_url, brand = excluded.brand, attributes = excluded.attributes, sensitive_kind = excluded.sensitive_kind, deleted = 0, updated_at = excluded.updated_at",
                            crate::ingest::placeholders(backend, chunk.len(), 12)
                        );
                        let mut q = sqlx::query(AssertSqlSafe(sql));
                        for i in chunk {
                            q = q
                                .bind(&i.id)
                                .bind(&i.name)
                                .bind(&i.category_id)
                                .bind(i.price_cents)
                                .bind(&i.currency)
                                .bind(bool_to_db(i.available))
                                .bind(i.image_url.as_deref())
                                .bind(i.brand.as_deref())
                                .bind(&i.attributes)
                                .bind(i.sensitive_kind.as_deref())
                                .bind(0i64)
                                .bind(at);
                        }
                        q.execute(&mut **tx).await?;
                    }
                    Ok(())
                })
            },
            |_| audit,
            &["model".to_owned()],
        )
        .await?;
        Ok(())
    }

    /// Deletes an item: it becomes a tombstone (never listed, never served), audited; other
    /// nodes reload serving when it commits. `NotFound` when no live item has this id.
    pub async fn delete_catalog_item(&self, id: &str, at: Micros, audit: AuditDraft) -> Result<()> {
        self.audited_statement(
            at,
            sqlx::query("UPDATE items SET deleted = 1, available = 0, updated_at = $2 WHERE id = $1 AND deleted = 0")
                .bind(id)
                .bind(at),
            Some(("item", id)),
            &audit,
            &["model".to_owned()],
        )
        .await
    }

    /// Live items in id order after `after` (exclusive), at most `limit`.
    pub async fn catalog_items_page(&self, after: &str, limit: i64) -> Result<Vec<Item>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {ITEM_COLUMNS} FROM items WHERE deleted = 0 AND id > $1 ORDER BY id LIMIT $2"
        )))
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(item_from_row).collect()
    }

    /// One live item.
    pub async fn catalog_item(&self, id: &str) -> Result<Option<Item>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {ITEM_COLUMNS} FROM items WHERE deleted = 0 AND id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(item_from_row).transpose()
    }

    /// Live items and the ids of those among `ids` (so an import can say what it replaced).
    pub async fn existing_item_ids(&self, ids: &[&str]) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for chunk in ids.chunks(crate::ingest::CHUNK) {
            let sql = format!(
                "SELECT id FROM items WHERE deleted = 0 AND id IN ({})",
                crate::ingest::in_list(self.backend, chunk.len())
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for id in chunk {
                q = q.bind(*id);
            }
            for r in q.fetch_all(&self.pool).await? {
                out.push(r.try_get("id")?);
            }
        }
        Ok(out)
    }

    /// Writes events in one transaction with multi-row statements (bulk loads: the demo, imports
    /// and benchmarks populate millions of rows through here).
    pub async fn insert_events(&self, events: &[EventRow]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for chunk in events.chunks(crate::ingest::CHUNK) {
            let sql = format!(
                "INSERT INTO events (subject_key, kind, item_id, quantity, at, category, purpose, name) VALUES {}",
                crate::ingest::placeholders(self.backend, chunk.len(), 8)
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for e in chunk {
                q = q
                    .bind(&e.subject_key)
                    .bind(&e.kind)
                    .bind(&e.item_id)
                    .bind(e.quantity)
                    .bind(e.at)
                    .bind(&e.category)
                    .bind(&e.purpose)
                    .bind(&e.kind);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        // Not in the writer's tail: findable by subject once indexed, so index them now.
        self.writes.note_unindexed(events.len());
        self.index_events().await
    }

    pub async fn set_declared_interests(
        &self,
        subject_key: &str,
        categories: &[String],
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM declared_interests WHERE subject_key = $1")
            .bind(subject_key)
            .execute(&mut *tx)
            .await?;
        for c in categories {
            sqlx::query(
                "INSERT INTO declared_interests (subject_key, category_id) VALUES ($1, $2)",
            )
            .bind(subject_key)
            .bind(c)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Stores protected attributes for fairness audits only.
    pub async fn protected_set(
        &self,
        subject_key: &str,
        attributes: &[(String, String)],
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for (attribute, value) in attributes {
            sqlx::query("INSERT INTO protected_attributes (subject_key, attribute, value) VALUES ($1, $2, $3) ON CONFLICT (subject_key, attribute) DO UPDATE SET value = excluded.value")
                .bind(subject_key)
                .bind(attribute)
                .bind(value)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn insert_decisions(&self, decisions: &[DecisionRow]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        insert_decisions_in(&mut tx, self.backend, decisions).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Decisions made elsewhere, written with their audit entry in one transaction.
    pub async fn import_decisions(
        &self,
        decisions: &[DecisionRow],
        at: Micros,
        audit: AuditDraft,
    ) -> Result<()> {
        let backend = self.backend;
        self.audited(
            at,
            decisions,
            |tx, rows| Box::pin(async move { insert_decisions_in(tx, backend, rows).await }),
            |_| audit,
            &[],
        )
        .await?;
        Ok(())
    }

    /// Row counts of the shop tables, for the demo summary and readiness pages.
    pub async fn table_counts(&self) -> Result<Vec<(&'static str, i64)>> {
        let mut out = Vec::new();
        for table in [
            "purposes",
            "consent_records",
            "items",
            "events",
            "declared_interests",
            "protected_attributes",
            "decisions",
            "audit_log",
        ] {
            let row = sqlx::query(AssertSqlSafe(format!("SELECT COUNT(*) AS n FROM {table}")))
                .fetch_one(&self.pool)
                .await?;
            out.push((table, row.try_get::<i64, _>("n")?));
        }
        Ok(out)
    }
}

/// Multi-row statements: serving logs ten rows per response, and one round trip per row was
/// most of the writer's cost.
async fn insert_decisions_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    backend: crate::Backend,
    decisions: &[DecisionRow],
) -> Result<()> {
    for chunk in decisions.chunks(crate::ingest::CHUNK) {
        let sql = format!(
            "INSERT INTO decisions (subject_key, surface, item_id, selected, outcome, score, model_version, at, position, answer_id) VALUES {}",
            crate::ingest::placeholders(backend, chunk.len(), 10)
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for d in chunk {
            q = q
                .bind(&d.subject_key)
                .bind(&d.surface)
                .bind(&d.item_id)
                .bind(bool_to_db(d.selected))
                .bind(d.outcome.map(bool_to_db))
                .bind(d.score)
                .bind(&d.model_version)
                .bind(d.at)
                .bind(d.position)
                .bind(d.answer_id.as_deref());
        }
        q.execute(&mut **tx).await?;
    }
    // The answers KPI: one per logged answer (its first row), by model version and surface.
    let mut answers: std::collections::BTreeMap<(i64, String, String), i64> = Default::default();
    for d in decisions
        .iter()
        .filter(|d| d.answer_id.is_some() && d.position == Some(1))
    {
        let day = crate::feedback::day_of(d.at);
        for dim in [
            format!("model:{}", d.model_version),
            format!("surface:{}", d.surface),
        ] {
            *answers.entry((day, "answers".into(), dim)).or_default() += 1;
        }
    }
    let mut by_day: std::collections::BTreeMap<i64, Vec<(String, String, i64)>> =
        Default::default();
    for ((day, metric, dim), n) in answers {
        by_day.entry(day).or_default().push((metric, dim, n));
    }
    for (day, counts) in by_day {
        crate::feedback::add_counts_in(tx, backend, day, &counts).await?;
    }
    Ok(())
}
