//! The budget ledger as analysts and auditors see it: what was spent, what remains, on which
//! queries; and verification of the ledger's chain.

use candor_domain::audit::{ChainBreak, ChainVerifier};
use candor_domain::budget::{BudgetAccount, is_period, period_of};
use candor_domain::{Micros, format_micros};
use serde::Serialize;

use crate::{App, AppError, Result};

/// One charge, for the budget view.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Charge {
    pub seq: i64,
    pub at: String,
    pub dataset: String,
    pub epsilon: f64,
    pub delta: f64,
    pub query: serde_json::Value,
}

/// An analyst's budget for a period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetView {
    pub analyst: String,
    pub period: String,
    pub limit_epsilon: f64,
    pub limit_delta: f64,
    /// Per budget account (`*` when one budget covers every data set).
    pub accounts: Vec<AccountView>,
    pub charges: Vec<Charge>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccountView {
    pub dataset: String,
    pub spent_epsilon: f64,
    pub spent_delta: f64,
    pub remaining_epsilon: f64,
    pub remaining_delta: f64,
}

/// The result of walking the whole ledger.
#[derive(Debug, Clone, PartialEq)]
pub struct LedgerVerification {
    pub rows: i64,
    pub head_hash: String,
    pub broken: Option<ChainBreak>,
}

const PAGE: i64 = 2000;

impl App {
    /// (ε, δ) spent on an account.
    pub(crate) async fn budget_spent(&self, account: &BudgetAccount) -> Result<(f64, f64)> {
        let rows = self
            .store
            .budget_rows(&account.analyst, &account.period)
            .await?;
        Ok(rows
            .iter()
            .filter(|r| r.account.dataset == account.dataset)
            .fold((0.0, 0.0), |(e, d), r| (e + r.epsilon, d + r.delta)))
    }

    /// `analyst`'s budget in `period` (default: the current month).
    pub async fn budget(&self, analyst: &str, period: Option<&str>) -> Result<BudgetView> {
        let period = match period {
            Some(p) if is_period(p) => p.to_owned(),
            Some(p) => return Err(AppError::invalid("period", format!("`{p}` is not YYYY-MM"))),
            None => period_of(self.now()),
        };
        let rows = self.store.budget_rows(analyst, &period).await?;
        let limits = &self.config.analytics;
        let mut datasets: Vec<String> = if limits.budget_per_dataset {
            vec!["events".into(), "decisions".into()]
        } else {
            vec!["*".into()]
        };
        for r in &rows {
            if !datasets.contains(&r.account.dataset) {
                datasets.push(r.account.dataset.clone());
            }
        }
        let accounts = datasets
            .into_iter()
            .map(|dataset| {
                let (e, d) = rows
                    .iter()
                    .filter(|r| r.account.dataset == dataset)
                    .fold((0.0, 0.0), |(e, d), r| (e + r.epsilon, d + r.delta));
                AccountView {
                    dataset,
                    spent_epsilon: e,
                    spent_delta: d,
                    remaining_epsilon: (limits.budget_epsilon - e).max(0.0),
                    remaining_delta: (limits.budget_delta - d).max(0.0),
                }
            })
            .collect();
        Ok(BudgetView {
            analyst: analyst.to_owned(),
            period,
            limit_epsilon: limits.budget_epsilon,
            limit_delta: limits.budget_delta,
            accounts,
            charges: rows
                .iter()
                .map(|r| Charge {
                    seq: r.entry.seq,
                    at: format_micros(r.entry.at as Micros),
                    dataset: r.account.dataset.clone(),
                    epsilon: r.epsilon,
                    delta: r.delta,
                    query: r.query(),
                })
                .collect(),
        })
    }

    /// Recomputes every ledger row's hash and checks its spend columns against it; reports the
    /// first broken row, if any, and checks the end against the recorded head.
    pub async fn verify_budget_ledger(&self) -> Result<LedgerVerification> {
        let (head_seq, head_hash) = self.store.budget_ledger_head().await?;
        let mut v = ChainVerifier::default();
        let mut after = 0;
        loop {
            let page = self.store.budget_ledger_page(after, PAGE).await?;
            for r in &page {
                if let Err(b) = v.push(&r.entry).and_then(|()| r.check()) {
                    return Ok(LedgerVerification {
                        rows: r.entry.seq - 1,
                        head_hash,
                        broken: Some(b),
                    });
                }
            }
            match page.last() {
                Some(last) if page.len() as i64 == PAGE => after = last.entry.seq,
                _ => break,
            }
        }
        Ok(match v.finish(head_seq, &head_hash) {
            Ok(n) => LedgerVerification {
                rows: n,
                head_hash,
                broken: None,
            },
            Err(b) => LedgerVerification {
                rows: head_seq,
                head_hash,
                broken: Some(b),
            },
        })
    }
}
