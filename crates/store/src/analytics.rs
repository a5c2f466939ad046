//! Private analytics: the privacy-budget ledger, the pages of rows queries read, and stored
//! transparency reports.
//!
//! Invariants:
//! - **A spend is checked and written in one transaction** ([`Store::spend_budget`]): the
//!   ledger head is bumped first (which serializes spends across nodes, as the audit head
//!   does), then the account's total is summed, and a spend past the limit returns
//!   [`StoreError::OverBudget`] and rolls everything back, so a refused query spends nothing.
//!   A spend that fits is sealed into the ledger chain and recorded in the audit log in the same
//!   transaction (it goes through [`Store::audited`]).
//! - Ledger rows are only inserted. No code here updates or deletes them, so an erasure or a
//!   retention run never refunds budget.
//! - Rows for a query come out of an [`AnalyticsPage`] only through
//!   [`AnalyticsPage::permitted`], filtered by each subject's permit, as training pages do.

use candor_domain::audit::{self, AuditEntry};
use candor_domain::budget::{BudgetAccount, BudgetSpend, LedgerRow};
use candor_domain::{Micros, Permit};
use sqlx::{AssertSqlSafe, Row};

use crate::{Result, Store, StoreError};

/// One row an analytics query can read: an event or a decision.
#[derive(Debug, Clone, PartialEq)]
pub struct AnalyticsRow {
    pub subject_key: String,
    /// The data category the row is stored under (decisions: `browsing`).
    pub category: String,
    /// Event name, or the decision's surface.
    pub name: String,
    pub item_id: String,
    /// The item's catalog category ('' when none).
    pub item_category: String,
    /// Event quantity, or 1 for a decision that was selected and 0 otherwise.
    pub quantity: i64,
    /// Event properties (JSON) or the decision's model version.
    pub extra: String,
    pub at: Micros,
}

/// A page of rows, by subject. Which subjects it covers is public; their rows come out only
/// through [`AnalyticsPage::permitted`].
#[derive(Debug, Default)]
pub struct AnalyticsPage {
    rows: Vec<AnalyticsRow>,
}

impl AnalyticsPage {
    /// The subjects on this page, in key order, each once.
    pub fn subjects(&self) -> Vec<&str> {
        self.rows
            .chunk_by(|a, b| a.subject_key == b.subject_key)
            .map(|h| h[0].subject_key.as_str())
            .collect()
    }

    /// Each subject's rows its permit covers, in [`AnalyticsPage::subjects`] order; a subject
    /// without a permit, or whose permit names someone else, yields nothing.
    pub fn permitted(&self, permits: &[Option<Permit<'_>>]) -> Vec<Vec<&AnalyticsRow>> {
        self.rows
            .chunk_by(|a, b| a.subject_key == b.subject_key)
            .zip(permits.iter().chain(std::iter::repeat(&None)))
            .map(|(rows, permit)| match permit {
                Some(p) if p.subject().as_str() == rows[0].subject_key => {
                    rows.iter().filter(|r| p.covers_name(&r.category)).collect()
                }
                _ => Vec::new(),
            })
            .collect()
    }
}

/// Which stored rows a query reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dataset {
    Events,
    Decisions,
}

const LEDGER_COLUMNS: &str = "seq, at, actor, action, target, details, prev_hash, hash, analyst, period, dataset, epsilon, delta";

fn ledger_row(r: &sqlx::any::AnyRow) -> Result<LedgerRow> {
    Ok(LedgerRow {
        entry: AuditEntry {
            seq: r.try_get("seq")?,
            at: r.try_get("at")?,
            actor: r.try_get("actor")?,
            action: r.try_get("action")?,
            target: r.try_get("target")?,
            details: r.try_get("details")?,
            prev_hash: r.try_get("prev_hash")?,
            hash: r.try_get("hash")?,
        },
        account: BudgetAccount {
            analyst: r.try_get("analyst")?,
            period: r.try_get("period")?,
            dataset: r.try_get("dataset")?,
        },
        epsilon: r.try_get("epsilon")?,
        delta: r.try_get("delta")?,
    })
}

/// A stored transparency report.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredReport {
    pub id: String,
    pub period: String,
    pub generated_at: Micros,
    pub body: String,
    pub signature: String,
}

impl Store {
    /// Charges `spend` if the account's total stays within `limit` (ε, δ); see the module
    /// invariant. Returns the sealed ledger row.
    pub async fn spend_budget(
        &self,
        at: Micros,
        spend: &BudgetSpend,
        limit: (f64, f64),
    ) -> Result<LedgerRow> {
        let draft = spend.draft();
        let (row, _) = self
            .audited(
                at,
                &(spend, &draft, limit),
                |tx, (spend, draft, limit)| {
                    Box::pin(async move {
                        let head = sqlx::query(
                            "UPDATE budget_ledger_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash",
                        )
                        .fetch_one(&mut **tx)
                        .await?;
                        let seq: i64 = head.try_get("seq")?;
                        let prev_hash: String = head.try_get("hash")?;
                        let a = &spend.account;
                        let sums = sqlx::query(
                            "SELECT COALESCE(SUM(epsilon), 0.0) AS e, COALESCE(SUM(delta), 0.0) AS d \
                             FROM budget_ledger WHERE analyst = $1 AND period = $2 AND dataset = $3",
                        )
                        .bind(&a.analyst)
                        .bind(&a.period)
                        .bind(&a.dataset)
                        .fetch_one(&mut **tx)
                        .await?;
                        let spent: (f64, f64) = (sums.try_get("e")?, sums.try_get("d")?);
                        // A tiny slack absorbs float summation order, never a real overspend.
                        let slack = 1e-12;
                        if spent.0 + spend.epsilon > limit.0 + slack
                            || spent.1 + spend.delta > limit.1 + slack
                        {
                            return Err(StoreError::OverBudget {
                                spent_epsilon: spent.0,
                                spent_delta: spent.1,
                                cost_epsilon: spend.epsilon,
                                limit_epsilon: limit.0,
                                limit_delta: limit.1,
                            });
                        }
                        let entry = audit::seal(seq - 1, &prev_hash, at, draft);
                        sqlx::query(AssertSqlSafe(format!(
                            "INSERT INTO budget_ledger ({LEDGER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
                        )))
                        .bind(entry.seq)
                        .bind(entry.at)
                        .bind(&entry.actor)
                        .bind(&entry.action)
                        .bind(&entry.target)
                        .bind(&entry.details)
                        .bind(&entry.prev_hash)
                        .bind(&entry.hash)
                        .bind(&a.analyst)
                        .bind(&a.period)
                        .bind(&a.dataset)
                        .bind(spend.epsilon)
                        .bind(spend.delta)
                        .execute(&mut **tx)
                        .await?;
                        sqlx::query("UPDATE budget_ledger_head SET hash = $1 WHERE id = 1")
                            .bind(&entry.hash)
                            .execute(&mut **tx)
                            .await?;
                        Ok(LedgerRow {
                            entry,
                            account: a.clone(),
                            epsilon: spend.epsilon,
                            delta: spend.delta,
                        })
                    })
                },
                |_| draft.clone(),
                &[],
            )
            .await?;
        Ok(row)
    }

    /// An analyst's ledger rows for a period (every data set), oldest first.
    pub async fn budget_rows(&self, analyst: &str, period: &str) -> Result<Vec<LedgerRow>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {LEDGER_COLUMNS} FROM budget_ledger WHERE analyst = $1 AND period = $2 ORDER BY seq"
        )))
        .bind(analyst)
        .bind(period)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(ledger_row).collect()
    }

    /// Ledger rows with `seq > after`, oldest first, at most `limit` (verification).
    pub async fn budget_ledger_page(&self, after: i64, limit: i64) -> Result<Vec<LedgerRow>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {LEDGER_COLUMNS} FROM budget_ledger WHERE seq > $1 ORDER BY seq LIMIT $2"
        )))
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(ledger_row).collect()
    }

    /// The ledger's recorded head: (last seq, last hash).
    pub async fn budget_ledger_head(&self) -> Result<(i64, String)> {
        let row = sqlx::query("SELECT seq, hash FROM budget_ledger_head WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        Ok((row.try_get("seq")?, row.try_get("hash")?))
    }

    /// Rows of up to `subjects` identified subjects with keys after `after`, by subject, from
    /// `since` (inclusive) to `until` (exclusive). They come out only through
    /// [`AnalyticsPage::permitted`].
    pub async fn analytics_page(
        &self,
        dataset: Dataset,
        after: &str,
        subjects: i64,
        since: Micros,
        until: Micros,
    ) -> Result<AnalyticsPage> {
        let sql = match dataset {
            Dataset::Events => {
                self.index_events().await?;
                const BY_SUBJECT: &str = "event_subjects s JOIN events e ON e.id = s.event_id AND e.subject_key = s.subject_key";
                const KNOWN: &str = "e.anonymous = 0 AND s.subject_key <> 'anonymized' AND s.subject_key > $1 AND s.at >= $3 AND s.at < $4";
                format!(
                    "SELECT e.subject_key, e.category, CASE WHEN e.name <> '' THEN e.name ELSE e.kind END AS name, e.item_id, COALESCE(i.category_id, '') AS item_category, \
                     e.quantity, e.properties AS extra, e.at FROM {BY_SUBJECT} LEFT JOIN items i ON i.id = e.item_id \
                     WHERE {KNOWN} AND s.subject_key <= (SELECT MAX(p.subject_key) FROM (SELECT DISTINCT s.subject_key \
                     FROM {BY_SUBJECT} WHERE {KNOWN} ORDER BY s.subject_key LIMIT $2) p) \
                     ORDER BY s.subject_key, s.at, s.event_id"
                )
            }
            Dataset::Decisions => {
                const KNOWN: &str = "d.subject_key <> 'anonymized' AND d.subject_key > $1 AND d.at >= $3 AND d.at < $4";
                format!(
                    "SELECT d.subject_key, 'browsing' AS category, d.surface AS name, d.item_id, \
                     COALESCE(i.category_id, '') AS item_category, d.selected AS quantity, d.model_version AS extra, d.at \
                     FROM decisions d LEFT JOIN items i ON i.id = d.item_id WHERE {KNOWN} AND d.subject_key <= \
                     (SELECT MAX(p.subject_key) FROM (SELECT DISTINCT d.subject_key FROM decisions d WHERE {KNOWN} \
                     ORDER BY d.subject_key LIMIT $2) p) ORDER BY d.subject_key, d.at, d.id"
                )
            }
        };
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(after)
            .bind(subjects)
            .bind(since)
            .bind(until)
            .fetch_all(&self.pool)
            .await?;
        Ok(AnalyticsPage {
            rows: rows
                .iter()
                .map(|r| {
                    Ok(AnalyticsRow {
                        subject_key: r.try_get("subject_key")?,
                        category: r.try_get("category")?,
                        name: r.try_get("name")?,
                        item_id: r.try_get("item_id")?,
                        item_category: r.try_get("item_category")?,
                        quantity: r.try_get("quantity")?,
                        extra: r.try_get("extra")?,
                        at: r.try_get("at")?,
                    })
                })
                .collect::<Result<_>>()?,
        })
    }

    /// Up to `limit` subject keys with consent records, after `after`, in key order (the
    /// transparency report walks every subject's consent state a page at a time).
    pub async fn consent_subjects_page(&self, after: &str, limit: i64) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT DISTINCT subject_key FROM consent_records WHERE subject_key > $1 ORDER BY subject_key LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok(r.try_get("subject_key")?)).collect()
    }

    /// Stores a signed transparency report with its audit entry.
    pub async fn save_transparency_report(
        &self,
        at: Micros,
        report: &StoredReport,
        draft: &candor_domain::AuditDraft,
    ) -> Result<()> {
        self.audited_statement(
            at,
            sqlx::query(
                "INSERT INTO transparency_reports (id, period, generated_at, body, signature) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&report.id)
            .bind(&report.period)
            .bind(report.generated_at)
            .bind(&report.body)
            .bind(&report.signature),
            None,
            draft,
            &[],
        )
        .await
    }

    /// Stored reports for a period, newest first.
    pub async fn transparency_reports(&self, period: &str) -> Result<Vec<StoredReport>> {
        let rows = sqlx::query(
            "SELECT id, period, generated_at, body, signature FROM transparency_reports WHERE period = $1 ORDER BY generated_at DESC",
        )
        .bind(period)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(StoredReport {
                    id: r.try_get("id")?,
                    period: r.try_get("period")?,
                    generated_at: r.try_get("generated_at")?,
                    body: r.try_get("body")?,
                    signature: r.try_get("signature")?,
                })
            })
            .collect()
    }
}
