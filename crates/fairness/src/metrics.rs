//! Metric definitions: per-group rates and the comparison of a rate across groups.
//!
//! Invariant: no function here returns NaN or infinity. A quantity whose denominator is zero is an
//! `Err(Undefined)` naming why, and it is carried to the report as `null` plus a reason.
//! Definitions follow Fairlearn (`selection_rate`, `true_positive_rate`, `false_positive_rate`,
//! `MetricFrame.difference/ratio` with `method="between_groups"` or `"to_overall"`) and AIF360
//! (privileged vs unprivileged, signed). One function, [`compare`], serves all three.

use serde::{Deserialize, Serialize};

use crate::stats::{Counts, LABEL_NEG, LABEL_POS};

/// Why a metric has no value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Undefined {
    /// The group has no rows (or only rows of weight zero).
    NoMembers,
    /// The table has no label column, so outcome-based metrics cannot be computed.
    NoLabels,
    /// The group has no positive outcomes: true positive rate is 0/0.
    NoPositiveLabels,
    /// The group has no negative outcomes: false positive rate is 0/0.
    NoNegativeLabels,
    /// The group has no selected rows: precision is 0/0.
    NoSelections,
    /// The table has no score column.
    NoScores,
    /// The table has no rank column.
    NoRanks,
    /// Every compared value is zero, so a ratio is 0/0.
    ZeroDenominator,
    /// Fewer than two groups have a defined value, so there is nothing to compare.
    FewerThanTwoGroups,
}

impl Undefined {
    /// Plain-language explanation, used in HTML reports.
    pub fn explain(self) -> &'static str {
        match self {
            Undefined::NoMembers => "the group has no members",
            Undefined::NoLabels => "the data has no outcome label",
            Undefined::NoPositiveLabels => "the group has no positive outcomes",
            Undefined::NoNegativeLabels => "the group has no negative outcomes",
            Undefined::NoSelections => "nobody in the group was selected",
            Undefined::NoScores => "the data has no score",
            Undefined::NoRanks => "the data has no rank",
            Undefined::ZeroDenominator => "all compared values are zero",
            Undefined::FewerThanTwoGroups => "fewer than two groups have a value",
        }
    }
}

/// A metric value or the reason it has none.
pub type Value = Result<f64, Undefined>;

/// `num / den`, or `why` when the denominator is not positive.
pub fn fraction(num: f64, den: f64, why: Undefined) -> Value {
    if den > 0.0 { Ok(num / den) } else { Err(why) }
}

/// The count-based rates of one group.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rates {
    /// P(selected) — Fairlearn `selection_rate`.
    pub selection: Value,
    /// P(selected | label = 1) — Fairlearn `true_positive_rate`.
    pub tpr: Value,
    /// P(selected | label = 0) — Fairlearn `false_positive_rate`.
    pub fpr: Value,
    /// P(label = 1 | selected).
    pub precision: Value,
    /// P(label = 1), the observed positive rate.
    pub base_rate: Value,
}

/// Rates of one group from its confusion cells (sample weights honoured).
pub fn rates(c: &Counts, has_label: bool) -> Rates {
    let w = c.w();
    let selection = fraction(c.w_where(Some(true), None), w, Undefined::NoMembers);
    if !has_label {
        let e = Err(Undefined::NoLabels);
        return Rates {
            selection,
            tpr: e,
            fpr: e,
            precision: e,
            base_rate: e,
        };
    }
    let pos = c.w_where(None, Some(LABEL_POS));
    let neg = c.w_where(None, Some(LABEL_NEG));
    let tp = c.w_where(Some(true), Some(LABEL_POS));
    let fp = c.w_where(Some(true), Some(LABEL_NEG));
    let empty = w <= 0.0;
    let or_empty = |why| if empty { Undefined::NoMembers } else { why };
    Rates {
        selection,
        tpr: fraction(tp, pos, or_empty(Undefined::NoPositiveLabels)),
        fpr: fraction(fp, neg, or_empty(Undefined::NoNegativeLabels)),
        precision: fraction(tp, tp + fp, or_empty(Undefined::NoSelections)),
        base_rate: fraction(pos, pos + neg, Undefined::NoMembers),
    }
}

/// What each group's value is compared against.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Reference {
    /// Every pair of groups (Fairlearn `method="between_groups"`): difference = max − min,
    /// ratio = min / max.
    BetweenGroups,
    /// The value on the whole table (Fairlearn `method="to_overall"`): difference = max |g − overall|,
    /// ratio = min over groups of min(g / overall, overall / g).
    Overall(Value),
    /// The group at this index (AIF360): difference = g − privileged (signed), ratio = g / privileged.
    /// With one unprivileged group this is exactly AIF360; with several, the group furthest from the
    /// privileged one is reported.
    Privileged(usize),
}

/// A metric compared across groups.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    pub difference: Value,
    pub ratio: Value,
    /// Groups left out because their own value is undefined (as pandas' `max()`/`min()` skip NaN).
    pub excluded: Vec<usize>,
}

/// Compare one metric across groups. The pairs differ by reference; the aggregation is shared:
/// the largest absolute difference and the ratio furthest below one.
pub fn compare(values: &[Value], reference: Reference) -> Comparison {
    let excluded: Vec<usize> = (0..values.len()).filter(|&i| values[i].is_err()).collect();
    let defined: Vec<(usize, f64)> = values
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.ok().map(|x| (i, x)))
        .collect();

    // Each pair is (value, what it is compared to).
    let pairs: Vec<(f64, f64)> = match reference {
        Reference::BetweenGroups => {
            if defined.len() < 2 {
                return undefined(Undefined::FewerThanTwoGroups, excluded);
            }
            let max = defined.iter().map(|p| p.1).fold(f64::MIN, f64::max);
            let min = defined.iter().map(|p| p.1).fold(f64::MAX, f64::min);
            vec![(min, max)]
        }
        Reference::Overall(overall) => {
            let Ok(o) = overall else {
                return undefined(overall.unwrap_err(), excluded);
            };
            if defined.is_empty() {
                return undefined(Undefined::FewerThanTwoGroups, excluded);
            }
            defined.iter().map(|&(_, g)| (g, o)).collect()
        }
        Reference::Privileged(p) => {
            let Some(&Ok(pv)) = values.get(p) else {
                let why = values
                    .get(p)
                    .and_then(|v| v.err())
                    .unwrap_or(Undefined::NoMembers);
                return undefined(why, excluded);
            };
            let others: Vec<(f64, f64)> = defined
                .iter()
                .filter(|&&(i, _)| i != p)
                .map(|&(_, g)| (g, pv))
                .collect();
            if others.is_empty() {
                return undefined(Undefined::FewerThanTwoGroups, excluded);
            }
            others
        }
    };
    let signed = matches!(reference, Reference::Privileged(_));

    // Largest |difference|, keeping the sign for the privileged form.
    let difference = pairs
        .iter()
        .map(|&(a, b)| if signed { a - b } else { (a - b).abs() })
        .fold(None::<f64>, |acc, d| match acc {
            Some(x) if x.abs() >= d.abs() => Some(x),
            _ => Some(d),
        })
        .ok_or(Undefined::FewerThanTwoGroups);

    // Ratio furthest below one. Pairs where both sides are zero carry no information; if every pair
    // is like that the ratio is 0/0.
    let mut ratio: Option<(f64, f64)> = None; // (symmetric closeness in [0,1], reported ratio)
    for &(a, b) in &pairs {
        if a == 0.0 && b == 0.0 {
            continue;
        }
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        let closeness = if hi == 0.0 { 1.0 } else { lo / hi };
        let reported = if signed {
            if b == 0.0 { f64::INFINITY } else { a / b }
        } else {
            closeness
        };
        if ratio.is_none_or(|(c, _)| closeness < c) {
            ratio = Some((closeness, reported));
        }
    }
    let ratio = match ratio {
        // A privileged value of zero against a positive one has no finite ratio.
        Some((_, r)) if r.is_infinite() => Err(Undefined::ZeroDenominator),
        Some((_, r)) => Ok(r),
        None => Err(Undefined::ZeroDenominator),
    };
    Comparison {
        difference,
        ratio,
        excluded,
    }
}

fn undefined(why: Undefined, excluded: Vec<usize>) -> Comparison {
    Comparison {
        difference: Err(why),
        ratio: Err(why),
        excluded,
    }
}

/// Worst case of two comparisons (Fairlearn `equalized_odds_*` with `agg="worst_case"`): the larger
/// difference and the smaller ratio. Undefined if either part is undefined.
pub fn worst_of(a: &Comparison, b: &Comparison) -> (Value, Value) {
    let diff = match (a.difference, b.difference) {
        (Ok(x), Ok(y)) => Ok(if x.abs() >= y.abs() { x } else { y }),
        (Err(e), _) | (_, Err(e)) => Err(e),
    };
    let ratio = match (a.ratio, b.ratio) {
        (Ok(x), Ok(y)) => Ok(x.min(y)),
        (Err(e), _) | (_, Err(e)) => Err(e),
    };
    (diff, ratio)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(v: Value, x: f64) {
        let got = v.unwrap_or_else(|e| panic!("expected {x}, got {e:?}"));
        assert!((got - x).abs() < 1e-12, "expected {x}, got {got}");
    }

    #[test]
    fn between_groups_is_max_minus_min_and_min_over_max() {
        let c = compare(&[Ok(0.2), Ok(0.5), Ok(0.4)], Reference::BetweenGroups);
        close(c.difference, 0.3);
        close(c.ratio, 0.4);
    }

    #[test]
    fn to_overall_uses_largest_gap_and_smallest_symmetric_ratio() {
        let c = compare(&[Ok(0.2), Ok(0.5)], Reference::Overall(Ok(0.4)));
        close(c.difference, 0.2);
        close(c.ratio, 0.5);
    }

    #[test]
    fn privileged_is_signed() {
        let c = compare(&[Ok(0.2), Ok(0.5)], Reference::Privileged(1));
        close(c.difference, -0.3);
        close(c.ratio, 0.4);
    }

    #[test]
    fn zero_everywhere_gives_reasons_not_nan() {
        let c = compare(&[Ok(0.0), Ok(0.0)], Reference::BetweenGroups);
        close(c.difference, 0.0);
        assert_eq!(c.ratio, Err(Undefined::ZeroDenominator));
        let c = compare(&[Ok(0.3), Ok(0.0)], Reference::Privileged(1));
        assert_eq!(c.ratio, Err(Undefined::ZeroDenominator));
        let c = compare(
            &[Err(Undefined::NoPositiveLabels), Ok(0.3)],
            Reference::BetweenGroups,
        );
        assert_eq!(c.difference, Err(Undefined::FewerThanTwoGroups));
        assert_eq!(c.excluded, vec![0]);
    }
}
