//! The privacy-budget ledger: what each analyst key has spent, per period and data set.
//!
//! Invariants:
//! - A ledger row is an audit-chain entry ([`crate::audit::seal`], [`crate::audit::ChainVerifier`])
//!   in its own chain: row `n` commits to row `n-1`, so an altered, removed or reordered row is
//!   found by verification. Its `details` hold the spend (ε, δ) and the query; the numeric
//!   columns kept beside it for summing must agree with them ([`LedgerRow::check`]), so lowering
//!   a stored ε to free budget is caught too.
//! - Rows are only appended. Nothing refunds budget: not an erasure, not a retention run, not a
//!   failed release (the spend is written before the data is read).
//! - A period is a calendar month, `YYYY-MM` (UTC).

use serde_json::json;

use crate::audit::{AuditEntry, ChainBreak};
use crate::{AuditAction, AuditDraft, Micros};

/// The account a spend is charged to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetAccount {
    /// The analyst's API key id.
    pub analyst: String,
    pub period: String,
    /// A data set name, or `*` when the budget covers every data set.
    pub dataset: String,
}

/// One charge against an account.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetSpend {
    pub account: BudgetAccount,
    pub epsilon: f64,
    pub delta: f64,
    /// What was asked (its JSON), so the budget view can say on which queries it went.
    pub query: serde_json::Value,
}

/// A stored ledger row: the chain entry and the columns projected from it.
#[derive(Debug, Clone, PartialEq)]
pub struct LedgerRow {
    pub entry: AuditEntry,
    pub account: BudgetAccount,
    pub epsilon: f64,
    pub delta: f64,
}

impl BudgetSpend {
    /// The chain entry this spend is sealed as. The ledger reuses the audit entry's shape and
    /// hash; `action` is always `analytics.spend`.
    pub fn draft(&self) -> AuditDraft {
        AuditDraft::new(
            self.account.analyst.clone(),
            AuditAction::AnalyticsSpend,
            format!("{}/{}", self.account.period, self.account.dataset),
            json!({
                "epsilon": self.epsilon,
                "delta": self.delta,
                "query": self.query,
            }),
        )
    }
}

impl LedgerRow {
    /// Whether the projected columns say what the sealed entry says.
    pub fn check(&self) -> Result<(), ChainBreak> {
        let fail = |reason: &str| {
            Err(ChainBreak {
                seq: self.entry.seq,
                reason: reason.to_owned(),
            })
        };
        let Ok(details) = serde_json::from_str::<serde_json::Value>(&self.entry.details) else {
            return fail("details are not JSON (row altered)");
        };
        let same = |key: &str, v: f64| details.get(key).and_then(|x| x.as_f64()) == Some(v);
        if self.entry.actor != self.account.analyst
            || self.entry.target != format!("{}/{}", self.account.period, self.account.dataset)
            || !same("epsilon", self.epsilon)
            || !same("delta", self.delta)
        {
            return fail("the spend columns do not match the sealed entry (row altered)");
        }
        Ok(())
    }

    pub fn query(&self) -> serde_json::Value {
        serde_json::from_str::<serde_json::Value>(&self.entry.details)
            .ok()
            .and_then(|d| d.get("query").cloned())
            .unwrap_or_default()
    }
}

/// The period (`YYYY-MM`, UTC) a moment falls in.
pub fn period_of(at: Micros) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(at.div_euclid(1_000_000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!("{:04}-{:02}", t.year(), u8::from(t.month()))
}

/// Whether `s` names a period (`YYYY-MM`).
pub fn is_period(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 7
        && b[4] == b'-'
        && b[..4].iter().chain(&b[5..]).all(u8::is_ascii_digit)
        && matches!(s[5..].parse::<u8>(), Ok(1..=12))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{ChainVerifier, GENESIS, seal};

    fn spend(eps: f64) -> BudgetSpend {
        BudgetSpend {
            account: BudgetAccount {
                analyst: "key_a".into(),
                period: "2026-12".into(),
                dataset: "*".into(),
            },
            epsilon: eps,
            delta: 0.0,
            query: json!({"metric": "events"}),
        }
    }

    fn row(prev: (i64, &str), s: &BudgetSpend) -> LedgerRow {
        LedgerRow {
            entry: seal(prev.0, prev.1, 5, &s.draft()),
            account: s.account.clone(),
            epsilon: s.epsilon,
            delta: s.delta,
        }
    }

    #[test]
    fn a_lowered_epsilon_or_an_edited_entry_is_caught() {
        let a = row((0, GENESIS), &spend(0.5));
        let b = row((1, &a.entry.hash), &spend(0.25));
        let mut v = ChainVerifier::default();
        for r in [&a, &b] {
            r.check().unwrap();
            v.push(&r.entry).unwrap();
        }
        let mut cheaper = b.clone();
        cheaper.epsilon = 0.01;
        assert!(cheaper.check().is_err());
        let mut edited = a.clone();
        edited.entry.details = edited.entry.details.replace("0.5", "0.01");
        assert!(ChainVerifier::default().push(&edited.entry).is_err());
    }

    #[test]
    fn periods_are_utc_months() {
        assert_eq!(period_of(0), "1970-01");
        // 2026-12-31T23:59:59Z
        assert_eq!(period_of(1_798_761_599_000_000), "2026-12");
        assert!(is_period("2026-01") && !is_period("2026-13") && !is_period("2026-1x"));
    }
}
