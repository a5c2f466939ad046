//! The transparency report's content: what it says, as data, and the one private figure it
//! computes (consent rates).
//!
//! Invariants:
//! - Consent rates are released with the Laplace mechanism: each subject adds at most one to
//!   each purpose's "granted" count and one to the number of subjects asked, so the L1
//!   sensitivity of the whole vector is (purposes + 1) and the report's ε covers every rate.
//! - A section without records says so (`None` / empty), never a made-up zero.

use serde::{Deserialize, Serialize};

use crate::{Mechanism, Noise, Result};

/// A purpose and, under differential privacy, how many people allowed it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PurposeLine {
    pub id: String,
    pub title: String,
    pub legal_basis: String,
    pub categories: Vec<String>,
    pub person_level: bool,
    /// False for strictly necessary purposes (contract, legal obligation): nobody is asked, so
    /// no share is shown.
    pub needs_consent: bool,
    /// Noisy number of people whose consent allowed it at the end of the period.
    pub granted: f64,
    /// Noisy share of the people asked, with its 95% interval.
    pub rate: Option<f64>,
    pub rate_ci: Option<[f64; 2]>,
}

/// Rights requests, as the rights room reports them (absent: no records).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct RightsFigures {
    /// Requests received in the period, by kind (access, erasure, ...).
    pub received: Vec<(String, u64)>,
    pub fulfilled: u64,
    /// Days from receipt to fulfilment.
    pub median_days: Option<f64>,
    pub max_days: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct RetentionLine {
    pub runs: u64,
    /// Rows deleted and anonymized by the runs, summed from their audit entries.
    pub deleted: u64,
    pub anonymized: u64,
    /// The rules in force: category and what happens after how many days.
    pub rules: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct FairnessLine {
    pub audits: u64,
    pub incidents_opened: u64,
    pub incidents_resolved: u64,
    /// Each incident: id, state, what it was about.
    pub incidents: Vec<(i64, String, String)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelLine {
    pub version: String,
    pub kind: String,
    pub created_at: String,
    pub active: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoryLine {
    pub category: String,
    /// Purposes that may use it.
    pub purposes: Vec<String>,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransparencyReport {
    /// The year reported on (`2026`).
    pub period: String,
    pub generated_at: String,
    /// ε spent on the report's private figures, and the people asked (noisy).
    pub epsilon: f64,
    pub subjects_asked: f64,
    pub purposes: Vec<PurposeLine>,
    pub rights: Option<RightsFigures>,
    pub retention: RetentionLine,
    pub fairness: FairnessLine,
    pub models: Vec<ModelLine>,
    /// Model activations (approvals) in the period.
    pub approvals: u64,
    pub data_categories: Vec<CategoryLine>,
}

/// A noisy share and its 95% interval.
pub type Rate = (f64, [f64; 2]);

/// Noisy granted counts per purpose and a noisy number of people asked, at `epsilon` in total;
/// returns (granted, asked, rate and its 95% interval per purpose).
pub fn consent_rates(
    granted: &[f64],
    asked: f64,
    epsilon: f64,
) -> Result<(Vec<f64>, f64, Vec<Option<Rate>>)> {
    let noise = Noise::for_epsilon(Mechanism::Laplace, epsilon, 0.0, granted.len() as f64 + 1.0)?;
    let mut figures = granted.to_vec();
    figures.push(asked);
    let noisy = noise.release(&figures)?;
    let (g, a) = noisy.split_at(granted.len());
    let a = a[0].max(0.0);
    // Each count within ± hw at 97.5%, so both ends hold together at 95%.
    let hw = noise.half_width(0.975)?;
    let rates = g
        .iter()
        .map(|&n| {
            (a - hw > 0.0).then(|| {
                let lo = ((n - hw) / (a + hw)).clamp(0.0, 1.0);
                let hi = ((n + hw) / (a - hw)).clamp(0.0, 1.0);
                ((n / a).clamp(0.0, 1.0), [lo, hi])
            })
        })
        .collect();
    Ok((g.iter().map(|v| v.max(0.0)).collect(), a, rates))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_close_for_many_people_and_withheld_for_few() {
        let (g, a, r) = consent_rates(&[6000.0, 2500.0], 10_000.0, 1.0).unwrap();
        assert!((a - 10_000.0).abs() < 60.0 && (g[0] - 6000.0).abs() < 60.0);
        let (rate, [lo, hi]) = r[0].unwrap();
        assert!((rate - 0.6).abs() < 0.01 && lo <= 0.6 && 0.6 <= hi);
        let (_, _, few) = consent_rates(&[1.0], 2.0, 0.1).unwrap();
        assert!(
            few[0].is_none(),
            "no rate is shown when the people asked drown in the noise"
        );
    }
}
