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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub id: String,
    pub name: String,
    pub category_id: String,
    pub price_cents: i64,
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
                    for i in items {
                        sqlx::query("INSERT INTO items (id, name, category_id, price_cents) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO UPDATE SET name = excluded.name, category_id = excluded.category_id, price_cents = excluded.price_cents")
                            .bind(&i.id)
                            .bind(&i.name)
                            .bind(&i.category_id)
                            .bind(i.price_cents)
                            .execute(&mut **tx)
                            .await?;
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
            "INSERT INTO decisions (subject_key, surface, item_id, selected, outcome, score, model_version, at, position) VALUES {}",
            crate::ingest::placeholders(backend, chunk.len(), 9)
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
                .bind(d.position);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}
