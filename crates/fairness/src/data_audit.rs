//! Data audits: representation vs a reference population, and proxy detection.
//!
//! Invariant: both audits are functions of counts only (rows per group, rows per feature value and
//! group); they never look at decisions or outcomes. Representation uses unweighted row counts,
//! because it describes the data set itself, not the population it may be weighted to.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::error::FairnessError;
use crate::metrics::{Undefined, Value, fraction};
use crate::report::{Estimate, ProxyAssociation, Representation, RepresentationRow};
use crate::stats::{ProxyTable, TableStats};

/// Expected shares of groups in a reference population (e.g. census), for some of the attributes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReferenceDistribution {
    /// Attributes the reference is defined on; each must be a group attribute of the audit.
    pub attributes: Vec<String>,
    /// Group values (one per attribute) and their share or count; normalised to sum to 1.
    pub groups: Vec<(Vec<String>, f64)>,
}

impl ReferenceDistribution {
    /// Build from shares or counts, checking they are usable.
    pub fn new(
        attributes: Vec<String>,
        groups: Vec<(Vec<String>, f64)>,
    ) -> Result<Self, FairnessError> {
        let bad = |reason: String| Err(FairnessError::BadReference { reason });
        if attributes.is_empty() {
            return bad("no attributes".into());
        }
        if groups.is_empty() {
            return bad("no groups".into());
        }
        for (g, s) in &groups {
            if g.len() != attributes.len() {
                return bad(format!(
                    "group {g:?} does not have {} values",
                    attributes.len()
                ));
            }
            if !(s.is_finite() && *s >= 0.0) {
                return bad(format!(
                    "share {s} of {} is not a non-negative number",
                    g.join(" & ")
                ));
            }
        }
        let total: f64 = groups.iter().map(|g| g.1).sum();
        if total <= 0.0 {
            return bad("shares sum to zero".into());
        }
        Ok(ReferenceDistribution {
            attributes,
            groups: groups.into_iter().map(|(g, s)| (g, s / total)).collect(),
        })
    }
}

/// Compare group shares in the data with the reference.
pub fn representation(
    t: &TableStats,
    r: &ReferenceDistribution,
) -> Result<Representation, FairnessError> {
    let idx: Vec<usize> =
        r.attributes
            .iter()
            .map(|a| {
                t.attributes.iter().position(|x| x == a).ok_or_else(|| {
                    FairnessError::BadReference {
                        reason: format!(
                            "attribute `{a}` is not a group attribute of the audit ({})",
                            t.attributes.join(", ")
                        ),
                    }
                })
            })
            .collect::<Result<_, _>>()?;
    let mut counts: HashMap<Vec<String>, u64> = HashMap::new();
    for (g, s) in t.groups.iter().zip(&t.stats) {
        let key: Vec<String> = idx.iter().map(|&a| g[a].clone()).collect();
        *counts.entry(key).or_default() += s.counts.n();
    }
    let reference: HashMap<&Vec<String>, f64> = r.groups.iter().map(|(g, s)| (g, *s)).collect();
    let mut keys: Vec<Vec<String>> = counts.keys().cloned().collect();
    // Reference groups absent from the data are reported with zero rows: under-representation in
    // its most extreme form must be visible, not silently dropped.
    keys.extend(r.groups.iter().map(|g| g.0.clone()));
    keys.sort();
    keys.dedup();
    let rows = t.rows as f64;
    let groups = keys
        .into_iter()
        .map(|g| {
            let count = counts.get(&g).copied().unwrap_or(0);
            let data_share = count as f64 / rows;
            let reference_share = reference.get(&g).copied();
            let (ratio, difference): (Value, Value) = match reference_share {
                Some(s) => (
                    fraction(data_share, s, Undefined::ZeroDenominator),
                    Ok(data_share - s),
                ),
                None => (Err(Undefined::NoMembers), Err(Undefined::NoMembers)),
            };
            RepresentationRow {
                label: g.join(" & "),
                group: g,
                count,
                data_share,
                reference_share,
                ratio: Estimate::new(ratio),
                difference: Estimate::new(difference),
            }
        })
        .collect();
    Ok(Representation {
        attributes: r.attributes.clone(),
        groups,
    })
}

/// Settings for proxy detection.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProxyOptions {
    /// Feature values seen in fewer rows than this are pooled into one "(other)" level, because
    /// sparse high-cardinality features (zip codes) inflate Cramér's V toward 1 by chance alone.
    pub min_level_count: u64,
    /// Flag a feature whose Cramér's V reaches this.
    pub cramers_v_threshold: f64,
    /// Flag a feature whose normalised mutual information reaches this.
    pub nmi_threshold: f64,
}

impl Default for ProxyOptions {
    fn default() -> Self {
        ProxyOptions {
            min_level_count: 5,
            cramers_v_threshold: 0.3,
            nmi_threshold: 0.1,
        }
    }
}

/// Rank every candidate feature against every slice of protected attributes (each attribute,
/// and their intersection when there are several), strongest first.
pub fn proxy_associations(t: &TableStats, o: &ProxyOptions) -> Vec<ProxyAssociation> {
    let mut slices: Vec<Vec<usize>> = (0..t.attributes.len()).map(|a| vec![a]).collect();
    if t.attributes.len() > 1 {
        slices.push((0..t.attributes.len()).collect());
    }
    let mut out = Vec::new();
    for p in &t.proxies {
        for s in &slices {
            let mut keys: Vec<Vec<&str>> = t
                .groups
                .iter()
                .map(|g| s.iter().map(|&a| g[a].as_str()).collect())
                .collect();
            keys.sort();
            keys.dedup();
            let member: Vec<usize> = t
                .groups
                .iter()
                .map(|g| {
                    let k: Vec<&str> = s.iter().map(|&a| g[a].as_str()).collect();
                    keys.binary_search(&k).expect("present")
                })
                .collect();
            let table: Vec<Vec<u64>> = p
                .counts
                .iter()
                .map(|row| {
                    let mut r = vec![0u64; keys.len()];
                    for (g, &c) in row.iter().enumerate() {
                        r[member[g]] += c;
                    }
                    r
                })
                .collect();
            let attributes = s.iter().map(|&a| t.attributes[a].clone()).collect();
            out.push(association(&p.feature, attributes, &table, o));
        }
    }
    out.sort_by(|a, b| {
        b.cramers_v
            .value
            .unwrap_or(-1.0)
            .total_cmp(&a.cramers_v.value.unwrap_or(-1.0))
            .then_with(|| a.feature.cmp(&b.feature))
    });
    out
}

/// Association of two categorical columns given row by row (for in-memory use).
pub fn associate<A: AsRef<str>, B: AsRef<str>>(
    feature: &str,
    feature_values: &[A],
    attribute: &str,
    attribute_values: &[B],
    o: &ProxyOptions,
) -> ProxyAssociation {
    let mut fi: HashMap<&str, usize> = HashMap::new();
    let mut ai: HashMap<&str, usize> = HashMap::new();
    let mut cells: HashMap<(usize, usize), u64> = HashMap::new();
    for (f, a) in feature_values.iter().zip(attribute_values) {
        let n = fi.len();
        let f = *fi.entry(f.as_ref()).or_insert(n);
        let n = ai.len();
        let a = *ai.entry(a.as_ref()).or_insert(n);
        *cells.entry((f, a)).or_default() += 1;
    }
    let mut table = vec![vec![0u64; ai.len()]; fi.len()];
    for ((f, a), c) in cells {
        table[f][a] = c;
    }
    association(feature, vec![attribute.to_owned()], &table, o)
}

/// Cramér's V and NMI of a contingency table `table[feature level][group]`.
fn association(
    feature: &str,
    attributes: Vec<String>,
    table: &[Vec<u64>],
    o: &ProxyOptions,
) -> ProxyAssociation {
    // Pool rare levels, then drop empty rows and columns (a group with no rows carries no signal).
    let cols = table.first().map_or(0, Vec::len);
    let mut pooled: Vec<Vec<u64>> = Vec::new();
    let mut other = vec![0u64; cols];
    for row in table {
        if row.iter().sum::<u64>() < o.min_level_count {
            for (a, b) in other.iter_mut().zip(row) {
                *a += b;
            }
        } else {
            pooled.push(row.clone());
        }
    }
    if other.iter().sum::<u64>() > 0 {
        pooled.push(other);
    }
    let col_sum: Vec<u64> = (0..cols)
        .map(|j| pooled.iter().map(|r| r[j]).sum())
        .collect();
    let keep: Vec<usize> = (0..cols).filter(|&j| col_sum[j] > 0).collect();
    let m: Vec<Vec<f64>> = pooled
        .iter()
        .map(|r| keep.iter().map(|&j| r[j] as f64).collect())
        .collect();
    let n: f64 = m.iter().flatten().sum();
    let rs: Vec<f64> = m.iter().map(|r| r.iter().sum()).collect();
    let cs: Vec<f64> = (0..keep.len())
        .map(|j| m.iter().map(|r| r[j]).sum())
        .collect();
    let (r, c) = (rs.len(), cs.len());

    let (v, nmi): (Value, Value) = if r < 2 || c < 2 {
        // A constant feature or a single group: there is nothing to associate.
        (
            Err(Undefined::FewerThanTwoGroups),
            Err(Undefined::FewerThanTwoGroups),
        )
    } else {
        let mut chi2 = 0.0;
        let mut mi = 0.0;
        for (i, row) in m.iter().enumerate() {
            for (j, &o_ij) in row.iter().enumerate() {
                let e = rs[i] * cs[j] / n;
                chi2 += (o_ij - e) * (o_ij - e) / e;
                if o_ij > 0.0 {
                    mi += o_ij / n * (o_ij * n / (rs[i] * cs[j])).ln();
                }
            }
        }
        let entropy = |xs: &[f64]| -> f64 {
            xs.iter()
                .filter(|&&x| x > 0.0)
                .map(|&x| -(x / n) * (x / n).ln())
                .sum()
        };
        let h = (entropy(&rs) + entropy(&cs)) / 2.0;
        let k = (r.min(c) - 1) as f64;
        (
            Ok((chi2 / (n * k)).sqrt().min(1.0)),
            fraction(mi.max(0.0), h, Undefined::ZeroDenominator).map(|x| x.min(1.0)),
        )
    };
    let strong =
        v.is_ok_and(|x| x >= o.cramers_v_threshold) || nmi.is_ok_and(|x| x >= o.nmi_threshold);
    ProxyAssociation {
        feature: feature.to_owned(),
        attributes,
        levels: r,
        rows: n as u64,
        cramers_v: Estimate::new(v),
        normalized_mutual_information: Estimate::new(nmi),
        strong,
    }
}

/// Build a proxy table for the in-memory path: one feature value per row, rows' group ids.
pub fn proxy_table(feature: &str, values: &[String], group: &[u32], groups: usize) -> ProxyTable {
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut names: Vec<String> = Vec::new();
    let mut counts: Vec<Vec<u64>> = Vec::new();
    for (v, &g) in values.iter().zip(group) {
        let i = *index.entry(v.as_str()).or_insert_with(|| {
            names.push(v.clone());
            counts.push(vec![0; groups]);
            names.len() - 1
        });
        counts[i][g as usize] += 1;
    }
    ProxyTable {
        feature: feature.to_owned(),
        values: names,
        counts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfect_proxy_and_independent_feature() {
        let o = ProxyOptions {
            min_level_count: 1,
            ..Default::default()
        };
        let a = associate("f", &["x", "x", "y", "y"], "sex", &["M", "M", "F", "F"], &o);
        assert!((a.cramers_v.value.unwrap() - 1.0).abs() < 1e-12);
        assert!((a.normalized_mutual_information.value.unwrap() - 1.0).abs() < 1e-12);
        assert!(a.strong);
        let b = associate("f", &["x", "y", "x", "y"], "sex", &["M", "M", "F", "F"], &o);
        assert_eq!(b.cramers_v.value, Some(0.0));
        assert!(!b.strong);
        let c = associate("f", &["x", "x"], "sex", &["M", "F"], &o);
        assert_eq!(c.cramers_v.undefined, Some(Undefined::FewerThanTwoGroups));
    }

    #[test]
    fn hand_computed_cramers_v() {
        // 2x2 table [[10, 20], [30, 40]]: chi2 = 0.7937 (n=100), V = sqrt(chi2/100) = 0.0891.
        // Computed by hand: expected [[12, 18], [28, 42]];
        // chi2 = 4/12 + 4/18 + 4/28 + 4/42 = 0.793650...
        let mut f = Vec::new();
        let mut s = Vec::new();
        for (fv, sv, n) in [
            ("a", "M", 10),
            ("a", "F", 20),
            ("b", "M", 30),
            ("b", "F", 40),
        ] {
            for _ in 0..n {
                f.push(fv);
                s.push(sv);
            }
        }
        let a = associate("f", &f, "sex", &s, &ProxyOptions::default());
        let chi2: f64 = 4.0 / 12.0 + 4.0 / 18.0 + 4.0 / 28.0 + 4.0 / 42.0;
        assert!((a.cramers_v.value.unwrap() - (chi2 / 100.0).sqrt()).abs() < 1e-12);
    }
}
