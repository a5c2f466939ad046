//! Contribution bounds: how much one subject may move any released figure.
//!
//! Invariant: after [`bounded_totals`], each subject has added at most `max_rows` rows to each
//! group, to at most `max_groups` groups, each value clamped to `[lower, upper]`. Which rows are
//! kept depends only on that subject's own rows (the first ones in the order given), so adding
//! or removing one subject changes the totals by at most the sensitivities below, whatever the
//! other subjects did.

use serde::{Deserialize, Serialize};

use crate::{AnalyticsError, Result};

/// One row of one subject: the group (an index into the query's groups) and its value (1 for a
/// plain count).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Row {
    pub group: u32,
    pub value: f64,
}

/// Bounds on one subject's contribution.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bounds {
    /// Rows kept per subject per group.
    pub max_rows: u32,
    /// Groups one subject may count in.
    pub max_groups: u32,
    /// Clamp for values (sums and means).
    pub lower: f64,
    pub upper: f64,
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds {
            max_rows: 1,
            max_groups: 1,
            lower: 0.0,
            upper: 1.0,
        }
    }
}

impl Bounds {
    pub fn check(&self) -> Result<()> {
        if self.max_rows == 0 {
            return Err(AnalyticsError::invalid("max_rows", "must be at least 1"));
        }
        if self.max_groups == 0 {
            return Err(AnalyticsError::invalid("max_groups", "must be at least 1"));
        }
        if !(self.lower.is_finite() && self.upper.is_finite() && self.lower <= self.upper) {
            return Err(AnalyticsError::invalid(
                "bounds",
                format!(
                    "lower ({}) and upper ({}) must be finite with lower <= upper",
                    self.lower, self.upper
                ),
            ));
        }
        Ok(())
    }

    /// The most one kept row can add to a sum.
    fn magnitude(&self) -> f64 {
        self.lower.abs().max(self.upper.abs())
    }

    /// L1 sensitivity of the vector of counts.
    pub fn count_l1(&self) -> f64 {
        f64::from(self.max_groups) * f64::from(self.max_rows)
    }

    /// L2 sensitivity of the vector of counts.
    pub fn count_l2(&self) -> f64 {
        f64::from(self.max_groups).sqrt() * f64::from(self.max_rows)
    }

    /// L1 sensitivity of the vector of clamped sums.
    pub fn sum_l1(&self) -> f64 {
        self.count_l1() * self.magnitude()
    }

    /// L2 sensitivity of the vector of clamped sums.
    pub fn sum_l2(&self) -> f64 {
        self.count_l2() * self.magnitude()
    }

    fn clamp(&self, v: f64) -> f64 {
        if v.is_nan() {
            self.lower
        } else {
            v.clamp(self.lower, self.upper)
        }
    }
}

/// Per group: rows kept, clamped sum of their values, and subjects that kept a row there.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Totals {
    pub counts: Vec<f64>,
    pub sums: Vec<f64>,
    pub subjects: Vec<f64>,
}

/// Applies the bounds to each subject's rows and totals them per group. `subjects` yields one
/// slice per subject (each subject once); a row whose group is not below `groups` is an error.
pub fn bounded_totals<'r>(
    subjects: impl IntoIterator<Item = &'r [Row]>,
    groups: usize,
    bounds: &Bounds,
) -> Result<Totals> {
    bounds.check()?;
    let mut t = Totals {
        counts: vec![0.0; groups],
        sums: vec![0.0; groups],
        subjects: vec![0.0; groups],
    };
    // Per group: the last subject (numbered from 1) that used it, and how many rows it kept.
    let mut stamp = vec![0u32; groups];
    let mut kept = vec![0u32; groups];
    for (n, rows) in subjects.into_iter().enumerate() {
        let n = n as u32 + 1;
        let mut touched = 0u32;
        for r in rows {
            let g = r.group as usize;
            if g >= groups {
                return Err(AnalyticsError::invalid(
                    "group",
                    format!("row group {g} is not below {groups}"),
                ));
            }
            if stamp[g] != n {
                if touched == bounds.max_groups {
                    continue;
                }
                touched += 1;
                stamp[g] = n;
                kept[g] = 0;
                t.subjects[g] += 1.0;
            }
            if kept[g] < bounds.max_rows {
                kept[g] += 1;
                t.counts[g] += 1.0;
                t.sums[g] += bounds.clamp(r.value);
            }
        }
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(group: u32, value: f64) -> Row {
        Row { group, value }
    }

    #[test]
    fn one_subject_moves_each_total_by_at_most_its_bound() {
        let bounds = Bounds {
            max_rows: 2,
            max_groups: 2,
            lower: 0.0,
            upper: 10.0,
        };
        let heavy = vec![
            row(0, 50.0),
            row(0, 5.0),
            row(0, 5.0),
            row(1, -3.0),
            row(2, 4.0),
        ];
        let light = vec![row(2, 1.0)];
        let with = bounded_totals([heavy.as_slice(), light.as_slice()], 3, &bounds).unwrap();
        let without = bounded_totals([light.as_slice()], 3, &bounds).unwrap();
        // Group 0 keeps two rows (50 clamped to 10, then 5), group 1 one (clamped to 0), group 2
        // none from the heavy subject: it had used its two groups.
        assert_eq!(with.counts, vec![2.0, 1.0, 1.0]);
        assert_eq!(with.sums, vec![15.0, 0.0, 1.0]);
        assert_eq!(with.subjects, vec![1.0, 1.0, 1.0]);
        let l1: f64 = with
            .counts
            .iter()
            .zip(&without.counts)
            .map(|(a, b)| (a - b).abs())
            .sum();
        assert!(l1 <= bounds.count_l1());
        let s1: f64 = with
            .sums
            .iter()
            .zip(&without.sums)
            .map(|(a, b)| (a - b).abs())
            .sum();
        assert!(s1 <= bounds.sum_l1());
    }

    #[test]
    fn bad_bounds_and_groups_are_named() {
        let b = Bounds {
            max_rows: 0,
            ..Bounds::default()
        };
        assert!(matches!(
            bounded_totals([[row(0, 1.0)].as_slice()], 1, &b),
            Err(AnalyticsError::Invalid {
                field: "max_rows",
                ..
            })
        ));
        assert!(matches!(
            bounded_totals([[row(3, 1.0)].as_slice()], 1, &Bounds::default()),
            Err(AnalyticsError::Invalid { field: "group", .. })
        ));
    }
}
