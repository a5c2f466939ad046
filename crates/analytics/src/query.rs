//! A private aggregate query: plan (what it costs, how accurate it is) and release.
//!
//! Invariants:
//! - [`plan`] depends only on the query, never on the data, so a quote can be shown before
//!   anything is read or spent, and the release spends exactly the planned cost.
//! - Every released figure carries its noise scale and a confidence interval; totals and means
//!   are post-processing of noisy figures and cost nothing more.
//! - With private partition selection no totals are released (they would carry the withheld
//!   groups).

use serde::{Deserialize, Serialize};

use crate::bound::{Row, bounded_totals};
use crate::partition::{self, Threshold};
use crate::suppress::{Suppression, suppress};
use crate::{AnalyticsError, Bounds, Cost, Mechanism, Noise, Result};

/// What is computed per group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregate {
    /// Rows per group (a histogram).
    Count,
    /// Clamped values summed per group.
    Sum,
    /// Noisy sum over noisy count, half the budget each.
    Mean,
}

impl Aggregate {
    pub fn parse(name: &str) -> Option<Aggregate> {
        match name {
            "count" => Some(Aggregate::Count),
            "sum" => Some(Aggregate::Sum),
            "mean" => Some(Aggregate::Mean),
            _ => None,
        }
    }
}

/// How the cost is chosen: an ε, or the error the analyst can accept.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Spend {
    Epsilon(f64),
    /// ± `half_width` at `confidence` per figure (count and sum only).
    Accuracy {
        half_width: f64,
        confidence: f64,
    },
}

/// A query over a table of `rows` × `columns` groups (one column for a plain histogram).
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub aggregate: Aggregate,
    pub mechanism: Mechanism,
    pub bounds: Bounds,
    pub spend: Spend,
    /// δ for the Gaussian and for partition selection (ignored otherwise).
    pub delta: f64,
    /// Of the intervals released with each figure.
    pub confidence: f64,
    pub rows: usize,
    pub columns: usize,
    /// Whether the set of groups is public (a fixed list). If not, groups are released only
    /// through private partition selection (count, Laplace).
    pub public_groups: bool,
    /// Small-cell threshold on noisy counts (count and mean); 0 disables it.
    pub k: f64,
}

/// What a query will cost and how noisy its figures will be.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    pub cost: Cost,
    /// Noise on the main figures (counts, or sums for sum and mean).
    pub noise: Noise,
    /// Noise on the counts of a mean.
    pub count_noise: Option<Noise>,
    pub threshold: Option<Threshold>,
    /// ± per figure at the query's confidence (counts and sums).
    pub half_width: f64,
}

/// One released group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cell {
    pub row: usize,
    pub column: usize,
    /// None when suppressed or not selected.
    pub value: Option<f64>,
    pub ci: Option<[f64; 2]>,
    pub noise_scale: f64,
    pub status: Suppression,
}

/// A total of a released line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Total {
    pub value: Option<f64>,
    pub ci: Option<[f64; 2]>,
}

/// A query's answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Release {
    pub cells: Vec<Cell>,
    /// With two dimensions: per row, over its columns (counts and sums with public groups).
    pub row_totals: Vec<Total>,
    /// Per column, over its rows; with one dimension (one column), the histogram's total.
    pub column_totals: Vec<Total>,
    pub cost: Cost,
    pub confidence: f64,
    pub noise_scale: f64,
    pub half_width: f64,
    pub threshold: Option<f64>,
}

fn sensitivity(q: &Query, of_sums: bool) -> f64 {
    match (q.mechanism, of_sums) {
        (Mechanism::Laplace, false) => q.bounds.count_l1(),
        (Mechanism::Laplace, true) => q.bounds.sum_l1(),
        (Mechanism::Gaussian, false) => q.bounds.count_l2(),
        (Mechanism::Gaussian, true) => q.bounds.sum_l2(),
    }
}

/// The cost and accuracy of `q`, before any data is read.
pub fn plan(q: &Query) -> Result<Plan> {
    q.bounds.check()?;
    if q.rows == 0 || q.columns == 0 {
        return Err(AnalyticsError::invalid(
            "group_by",
            "the query has no groups",
        ));
    }
    if !(q.k.is_finite() && q.k >= 0.0) {
        return Err(AnalyticsError::invalid(
            "k",
            "must be a non-negative number",
        ));
    }
    if q.aggregate == Aggregate::Sum && q.bounds.lower == 0.0 && q.bounds.upper == 0.0 {
        return Err(AnalyticsError::invalid(
            "bounds",
            "a sum needs a non-zero bound",
        ));
    }
    let of_sums = q.aggregate != Aggregate::Count;
    let sens = sensitivity(q, of_sums);
    let from_spend = |share: f64, sens: f64| -> Result<Noise> {
        match q.spend {
            Spend::Epsilon(e) => {
                if !(e.is_finite() && e > 0.0) {
                    return Err(AnalyticsError::invalid(
                        "epsilon",
                        format!("must be a positive finite number, got {e}"),
                    ));
                }
                Noise::for_epsilon(q.mechanism, e * share, q.delta, sens)
            }
            Spend::Accuracy {
                half_width,
                confidence,
            } => Noise::for_accuracy(q.mechanism, half_width, confidence, q.delta, sens),
        }
    };
    if !q.public_groups {
        if q.aggregate != Aggregate::Count || q.mechanism != Mechanism::Laplace {
            return Err(AnalyticsError::invalid(
                "groups",
                "groups that are not a public list are released only as Laplace counts",
            ));
        }
        let noise = from_spend(1.0, sens)?;
        let t = partition::plan(q.bounds.count_l1() / noise.scale, q.delta, &q.bounds)?;
        let noise = Noise {
            scale: t.scale,
            ..noise
        };
        return Ok(Plan {
            cost: t.cost,
            noise,
            count_noise: None,
            threshold: Some(t),
            half_width: noise.half_width(q.confidence)?,
        });
    }
    let (noise, count_noise) = match q.aggregate {
        Aggregate::Count | Aggregate::Sum => (from_spend(1.0, sens)?, None),
        Aggregate::Mean => {
            if matches!(q.spend, Spend::Accuracy { .. }) {
                return Err(AnalyticsError::invalid(
                    "accuracy",
                    "a mean takes an epsilon; state an accuracy for counts and sums",
                ));
            }
            (
                from_spend(0.5, sens)?,
                Some(from_spend(0.5, sensitivity(q, false))?),
            )
        }
    };
    let mut cost = noise.cost()?;
    if let Some(c) = &count_noise {
        cost = cost.plus(c.cost()?);
    }
    Ok(Plan {
        cost,
        noise,
        count_noise,
        threshold: None,
        half_width: noise.half_width(q.confidence)?,
    })
}

fn interval(v: f64, hw: f64) -> Option<[f64; 2]> {
    Some([v - hw, v + hw])
}

/// Runs `q` as planned over `subjects` (one slice of rows per subject; a row's group is
/// `row * columns + column`).
pub fn run<'r>(
    q: &Query,
    plan: &Plan,
    subjects: impl IntoIterator<Item = &'r [Row]>,
) -> Result<Release> {
    let groups = q.rows * q.columns;
    let totals = bounded_totals(subjects, groups, &q.bounds)?;
    let conf = q.confidence;
    let mut release = Release {
        cells: Vec::with_capacity(groups),
        row_totals: Vec::new(),
        column_totals: Vec::new(),
        cost: plan.cost,
        confidence: conf,
        noise_scale: plan.noise.scale,
        half_width: plan.half_width,
        threshold: plan.threshold.map(|t| t.threshold),
    };
    let cell = |g: usize, value: Option<f64>, ci, status| Cell {
        row: g / q.columns,
        column: g % q.columns,
        value,
        ci,
        noise_scale: plan.noise.scale,
        status,
    };
    if let Some(t) = &plan.threshold {
        let selected = partition::select(&totals.counts, t)?;
        let mut next = selected.iter().peekable();
        for g in 0..groups {
            match next.next_if(|(s, _)| *s as usize == g) {
                Some(&(_, v)) => release.cells.push(cell(
                    g,
                    Some(v),
                    interval(v, plan.half_width),
                    Suppression::Shown,
                )),
                None => release
                    .cells
                    .push(cell(g, None, None, Suppression::NotSelected)),
            }
        }
        return Ok(release);
    }
    let figures = match q.aggregate {
        Aggregate::Count => &totals.counts,
        Aggregate::Sum | Aggregate::Mean => &totals.sums,
    };
    let noisy = plan.noise.release(figures)?;
    let noisy_counts = match &plan.count_noise {
        Some(n) => Some(n.release(&totals.counts)?),
        None => None,
    };
    // The k rule reads noisy counts only.
    let table_of =
        |v: &[f64]| -> Vec<Vec<f64>> { v.chunks(q.columns).map(<[f64]>::to_vec).collect() };
    let with_totals = q.aggregate != Aggregate::Mean;
    let hidden = match (q.aggregate, &noisy_counts) {
        (Aggregate::Count, _) if q.k > 0.0 => Some(suppress(
            &table_of(&noisy),
            q.k,
            with_totals && q.columns > 1,
            with_totals && q.rows > 1,
        )),
        (Aggregate::Mean, Some(c)) if q.k > 0.0 => Some(suppress(&table_of(c), q.k, false, false)),
        _ => None,
    };
    let status = |g: usize| {
        hidden.as_ref().map_or(Suppression::Shown, |h| {
            h.cells[g / q.columns][g % q.columns]
        })
    };
    for g in 0..groups {
        let st = status(g);
        if st != Suppression::Shown {
            release.cells.push(cell(g, None, None, st));
            continue;
        }
        match (q.aggregate, &noisy_counts, &plan.count_noise) {
            (Aggregate::Mean, Some(counts), Some(cn)) => {
                let (lo, hi) = (q.bounds.lower, q.bounds.upper);
                let (s, c) = (noisy[g], counts[g]);
                let mean = if c > 0.0 {
                    (s / c).clamp(lo, hi)
                } else {
                    (lo + hi) / 2.0
                };
                // Both intervals at half the miss rate hold together at `conf`.
                let each = 1.0 - (1.0 - conf) / 2.0;
                let (hs, hc) = (plan.noise.half_width(each)?, cn.half_width(each)?);
                let ci = if c - hc > 0.0 {
                    let corners = [
                        (s - hs) / (c - hc),
                        (s - hs) / (c + hc),
                        (s + hs) / (c - hc),
                        (s + hs) / (c + hc),
                    ];
                    let a = corners.iter().copied().fold(f64::INFINITY, f64::min);
                    let b = corners.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    [a.clamp(lo, hi), b.clamp(lo, hi)]
                } else {
                    [lo, hi]
                };
                release.cells.push(cell(g, Some(mean), Some(ci), st));
            }
            _ => release.cells.push(cell(
                g,
                Some(noisy[g]),
                interval(noisy[g], plan.half_width),
                st,
            )),
        }
    }
    if with_totals {
        let line = |members: Vec<usize>, hidden_total: bool| -> Result<Total> {
            if hidden_total {
                return Ok(Total {
                    value: None,
                    ci: None,
                });
            }
            let n = members.len() as f64;
            let v: f64 = members.iter().map(|&g| noisy[g]).sum();
            // Every cell within its ± at 1 − α/n, so the sum within n times that, at 1 − α.
            let hw = n * plan.noise.half_width(1.0 - (1.0 - conf) / n)?;
            Ok(Total {
                value: Some(v),
                ci: interval(v, hw),
            })
        };
        for r in (0..q.rows).filter(|_| q.columns > 1) {
            let hidden_total = hidden.as_ref().is_some_and(|h| h.row_totals[r]);
            release.row_totals.push(line(
                (0..q.columns).map(|c| r * q.columns + c).collect(),
                hidden_total,
            )?);
        }
        if q.rows > 1 {
            for c in 0..q.columns {
                let hidden_total = hidden.as_ref().is_some_and(|h| h.column_totals[c]);
                release.column_totals.push(line(
                    (0..q.rows).map(|r| r * q.columns + c).collect(),
                    hidden_total,
                )?);
            }
        }
    }
    Ok(release)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_has_one_total_and_its_small_cell_brings_a_complement() {
        let q = Query {
            aggregate: Aggregate::Count,
            mechanism: Mechanism::Laplace,
            bounds: Bounds::default(),
            // A tiny noise scale (1/1000), so the true counts decide what is small.
            spend: Spend::Epsilon(1000.0),
            delta: 0.0,
            confidence: 0.95,
            rows: 3,
            columns: 1,
            public_groups: true,
            k: crate::DEFAULT_K,
        };
        let p = plan(&q).unwrap();
        let subjects: Vec<Vec<Row>> = [(0u32, 1000), (1, 3), (2, 40)]
            .iter()
            .flat_map(|&(g, n)| {
                (0..n).map(move |_| {
                    vec![Row {
                        group: g,
                        value: 1.0,
                    }]
                })
            })
            .collect();
        let r = run(&q, &p, subjects.iter().map(Vec::as_slice)).unwrap();
        let status: Vec<Suppression> = r.cells.iter().map(|c| c.status).collect();
        assert_eq!(
            status,
            [
                Suppression::Shown,
                Suppression::SmallCell,
                Suppression::Complementary
            ]
        );
        assert!(r.row_totals.is_empty());
        assert_eq!(r.column_totals.len(), 1);
        let total = r.column_totals[0].value.unwrap();
        assert!((total - 1043.0).abs() < 0.5, "{total}");
        assert!(r.cells[1].value.is_none() && r.cells[2].value.is_none());
    }
}
