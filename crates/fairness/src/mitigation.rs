//! Mitigation: reweighing of training data and an exposure-constrained re-ranker for serving.
//!
//! Invariants: reweighing matches AIF360 `Reweighing` (Kamiran & Calders) — after reweighing, group
//! and label are independent under the new weights, and total weight is unchanged. The re-ranker
//! never reorders items within a group (doing so cannot change any group's exposure and can only
//! lose relevance), so it only decides which group fills each position.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::audit::resolve_privileged_in;
use crate::decision::Decisions;
use crate::error::FairnessError;
use crate::metrics::{Undefined, fraction};
use crate::report::Estimate;
use crate::stats::discount;

/// Reweighing result: one weight per row plus the weight of each (group, label) cell.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reweighing {
    pub weights: Vec<f64>,
    pub cells: Vec<ReweighingCell>,
}

/// The weight given to every row of one (group, label) cell.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReweighingCell {
    pub group: String,
    pub label: bool,
    pub count: u64,
    /// W_group · W_label / (W · W_group,label), multiplied into each row's existing weight.
    pub weight: f64,
}

/// Kamiran–Calders reweighing. With `privileged` specs, rows are pooled into privileged vs
/// unprivileged exactly as AIF360 does; without, every intersectional group is its own stratum.
pub fn reweighing(d: &Decisions, privileged: &[String]) -> Result<Reweighing, FairnessError> {
    let labels = d.labels("reweighing")?;
    if d.is_empty() {
        return Err(FairnessError::Empty {
            what: "the decision table".into(),
        });
    }
    let (stratum, names): (Vec<usize>, Vec<String>) = if privileged.is_empty() {
        (
            (0..d.groups.len()).collect(),
            d.groups.iter().map(|g| g.join(" & ")).collect(),
        )
    } else {
        let p = resolve_privileged_in(&d.attributes, &d.groups, privileged)?;
        let is_priv = |g: &Vec<String>| {
            p.iter().all(|pv| {
                d.attributes
                    .iter()
                    .position(|a| *a == pv.attribute)
                    .is_some_and(|a| g[a] == pv.value)
            })
        };
        (
            d.groups.iter().map(|g| usize::from(is_priv(g))).collect(),
            vec!["unprivileged".into(), "privileged".into()],
        )
    };
    let s = names.len();
    let mut w_cell = vec![[0.0f64; 2]; s];
    let mut n_cell = vec![[0u64; 2]; s];
    for i in 0..d.len() {
        let w = d.weight.as_ref().map_or(1.0, |c| c[i]);
        let st = stratum[d.group[i] as usize];
        w_cell[st][usize::from(labels[i])] += w;
        n_cell[st][usize::from(labels[i])] += 1;
    }
    let total: f64 = w_cell.iter().map(|c| c[0] + c[1]).sum();
    let w_label = [0, 1].map(|y| w_cell.iter().map(|c| c[y]).sum::<f64>());
    let factor: Vec<[f64; 2]> = w_cell
        .iter()
        .map(|c| {
            let wg = c[0] + c[1];
            // An empty cell has no rows to weigh; 1.0 keeps the table free of NaN.
            [0, 1].map(|y| {
                if c[y] > 0.0 {
                    wg * w_label[y] / (total * c[y])
                } else {
                    1.0
                }
            })
        })
        .collect();
    let weights = (0..d.len())
        .map(|i| {
            let w = d.weight.as_ref().map_or(1.0, |c| c[i]);
            w * factor[stratum[d.group[i] as usize]][usize::from(labels[i])]
        })
        .collect();
    let cells = (0..s)
        .flat_map(|g| {
            let (names, factor, n_cell) = (&names, &factor, &n_cell);
            [false, true].map(move |y| ReweighingCell {
                group: names[g].clone(),
                label: y,
                count: n_cell[g][usize::from(y)],
                weight: factor[g][usize::from(y)],
            })
        })
        .collect();
    Ok(Reweighing { weights, cells })
}

/// A candidate for one ranked slot list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub id: String,
    pub relevance: f64,
    /// Provider, category or group whose exposure is constrained.
    pub group: String,
}

/// Each group's target share of exposure.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// Share of the candidates that belong to the group.
    Proportional,
    /// The same share for every group present.
    Equal,
    /// Explicit shares (normalised); groups not listed get 0.
    Shares(Vec<(String, f64)>),
}

/// Keep each group's exposure share within `target ± tolerance`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExposureBand {
    pub target: Target,
    pub tolerance: f64,
}

/// Exposure of one group before and after re-ranking.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupExposureChange {
    pub group: String,
    pub target_share: f64,
    pub lower: f64,
    pub upper: f64,
    pub before: f64,
    pub after: f64,
}

/// Result of [`rerank`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reranked {
    /// Candidate indices, best first, `k` of them (or fewer if fewer candidates).
    pub order: Vec<usize>,
    /// Whether every group ended inside its band.
    pub satisfied: bool,
    pub groups: Vec<GroupExposureChange>,
    /// DCG(after) / DCG(relevance order), relevance as gain: the relevance kept.
    pub ndcg_ratio: Estimate,
}

/// Fairness-constrained re-ranking: greedily take the most relevant head of any group whose choice
/// still leaves a feasible completion of the list (checked by a deficit-first simulation); if no
/// choice is feasible, serve the group furthest below its band.
pub fn rerank(
    candidates: &[Candidate],
    k: usize,
    band: &ExposureBand,
) -> Result<Reranked, FairnessError> {
    if !(band.tolerance >= 0.0 && band.tolerance <= 1.0) {
        return Err(FairnessError::BadOption {
            option: "tolerance",
            reason: format!("{} is not in [0, 1]", band.tolerance),
        });
    }
    if let Some((i, c)) = candidates
        .iter()
        .enumerate()
        .find(|(_, c)| !c.relevance.is_finite())
    {
        return Err(FairnessError::BadRow {
            row: i + 1,
            reason: format!("relevance of `{}` is not finite", c.id),
        });
    }
    let mut names: Vec<&str> = candidates.iter().map(|c| c.group.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let g_of = |c: &Candidate| names.binary_search(&c.group.as_str()).expect("present");

    // Relevance order, ties by input order: the unconstrained ranking.
    let mut by_rel: Vec<usize> = (0..candidates.len()).collect();
    by_rel.sort_by(|&a, &b| {
        candidates[b]
            .relevance
            .total_cmp(&candidates[a].relevance)
            .then(a.cmp(&b))
    });
    let k = k.min(candidates.len());
    let disc: Vec<f64> = (0..k).map(|p| discount(p as u32 + 1)).collect();
    let e_total: f64 = disc.iter().sum();

    let targets = target_shares(&band.target, &names, candidates, &g_of);
    let lo: Vec<f64> = targets
        .iter()
        .map(|t| (t - band.tolerance).max(0.0))
        .collect();
    let hi: Vec<f64> = targets
        .iter()
        .map(|t| (t + band.tolerance).min(1.0))
        .collect();

    let mut queues: Vec<std::collections::VecDeque<usize>> = vec![Default::default(); names.len()];
    for &i in &by_rel {
        queues[g_of(&candidates[i])].push_back(i);
    }
    let mut exp = vec![0.0f64; names.len()];
    let mut order = Vec::with_capacity(k);
    for p in 0..k {
        let mut options: Vec<usize> = (0..names.len())
            .filter(|&g| !queues[g].is_empty())
            .collect();
        options.sort_by(|&a, &b| {
            let (ca, cb) = (queues[a][0], queues[b][0]);
            candidates[cb]
                .relevance
                .total_cmp(&candidates[ca].relevance)
                .then(ca.cmp(&cb))
        });
        let avail: Vec<usize> = queues.iter().map(|q| q.len()).collect();
        let feasible = |g: usize| {
            let mut e = exp.clone();
            e[g] += disc[p];
            let mut a = avail.clone();
            a[g] -= 1;
            completes(&e, &a, &disc[p + 1..], e_total, &lo, &hi)
        };
        let chosen = options
            .iter()
            .copied()
            .find(|&g| feasible(g))
            .unwrap_or_else(|| {
                // Nothing keeps the band reachable: serve the group furthest below its lower bound.
                *options
                    .iter()
                    .max_by(|&&a, &&b| {
                        (lo[a] * e_total - exp[a]).total_cmp(&(lo[b] * e_total - exp[b]))
                    })
                    .expect("at least one candidate left")
            });
        exp[chosen] += disc[p];
        order.push(queues[chosen].pop_front().expect("non-empty"));
    }

    let share_of = |list: &[usize]| {
        let mut e = vec![0.0; names.len()];
        for (p, &i) in list.iter().enumerate() {
            e[g_of(&candidates[i])] += disc[p];
        }
        e.iter()
            .map(|x| if e_total > 0.0 { x / e_total } else { 0.0 })
            .collect::<Vec<f64>>()
    };
    let before = share_of(&by_rel[..k]);
    let after = share_of(&order);
    let eps = 1e-9;
    let satisfied = (0..names.len()).all(|g| after[g] >= lo[g] - eps && after[g] <= hi[g] + eps);
    let dcg = |list: &[usize]| -> f64 {
        list.iter()
            .enumerate()
            .map(|(p, &i)| candidates[i].relevance * disc[p])
            .sum()
    };
    let ideal = dcg(&by_rel[..k]);
    let ndcg = if ideal > 0.0 {
        Ok(dcg(&order) / ideal)
    } else {
        fraction(dcg(&order), ideal, Undefined::ZeroDenominator)
    };
    Ok(Reranked {
        order,
        satisfied,
        groups: (0..names.len())
            .map(|g| GroupExposureChange {
                group: names[g].to_owned(),
                target_share: targets[g],
                lower: lo[g],
                upper: hi[g],
                before: before[g],
                after: after[g],
            })
            .collect(),
        ndcg_ratio: Estimate::new(ndcg),
    })
}

fn target_shares(
    t: &Target,
    names: &[&str],
    candidates: &[Candidate],
    g_of: &impl Fn(&Candidate) -> usize,
) -> Vec<f64> {
    match t {
        Target::Proportional => {
            let mut n = vec![0.0; names.len()];
            for c in candidates {
                n[g_of(c)] += 1.0;
            }
            n.iter().map(|x| x / candidates.len() as f64).collect()
        }
        Target::Equal => vec![1.0 / names.len() as f64; names.len()],
        Target::Shares(s) => {
            let map: BTreeMap<&str, f64> =
                s.iter().map(|(g, x)| (g.as_str(), x.max(0.0))).collect();
            let total: f64 = names
                .iter()
                .map(|n| map.get(n).copied().unwrap_or(0.0))
                .sum();
            names
                .iter()
                .map(|n| {
                    let x = map.get(n).copied().unwrap_or(0.0);
                    if total > 0.0 { x / total } else { 0.0 }
                })
                .collect()
        }
    }
}

/// Can the remaining positions be filled so every group lands in its band? Simulates filling
/// deficits first (best positions to the group most below its lower bound), then the group with
/// the most room; a sufficient check, cheap enough to run per position at serving time.
fn completes(
    exp: &[f64],
    avail: &[usize],
    rest: &[f64],
    e_total: f64,
    lo: &[f64],
    hi: &[f64],
) -> bool {
    let mut e = exp.to_vec();
    let mut a = avail.to_vec();
    for &d in rest {
        let deficit = (0..e.len())
            .filter(|&g| a[g] > 0 && lo[g] * e_total - e[g] > 1e-12)
            .max_by(|&x, &y| (lo[x] * e_total - e[x]).total_cmp(&(lo[y] * e_total - e[y])));
        let g = deficit.or_else(|| {
            (0..e.len())
                .filter(|&g| a[g] > 0)
                .max_by(|&x, &y| (hi[x] * e_total - e[x]).total_cmp(&(hi[y] * e_total - e[y])))
        });
        let Some(g) = g else { break };
        e[g] += d;
        a[g] -= 1;
    }
    let eps = 1e-9 * e_total.max(1.0);
    (0..e.len()).all(|g| e[g] >= lo[g] * e_total - eps && e[g] <= hi[g] * e_total + eps)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::{Decision, DecisionsBuilder};

    #[test]
    fn reweighing_matches_hand_computed_kamiran_calders() {
        // Group A: 3 rows, 2 positive; group B: 2 rows, 0 positive... plus one positive → 1 of 3.
        // W=6, W_A=3, W_B=3, W_pos=3, W_neg=3. w(A,+)=3*3/(6*2)=0.75, w(A,-)=3*3/(6*1)=1.5,
        // w(B,+)=3*3/(6*1)=1.5, w(B,-)=3*3/(6*2)=0.75.
        let mut b = DecisionsBuilder::new(["g"]);
        for (g, y) in [
            ("A", true),
            ("A", true),
            ("A", false),
            ("B", true),
            ("B", false),
            ("B", false),
        ] {
            b.push(&Decision {
                group: &[g],
                selected: y,
                label: Some(y),
                ..Default::default()
            })
            .unwrap();
        }
        let d = b.build();
        let r = reweighing(&d, &[]).unwrap();
        assert_eq!(r.weights, vec![0.75, 0.75, 1.5, 1.5, 0.75, 0.75]);
        let r2 = reweighing(&d, &["A".into()]).unwrap();
        assert_eq!(r2.weights, r.weights);
        assert!((r.weights.iter().sum::<f64>() - 6.0).abs() < 1e-12);
    }

    fn cands(spec: &[(f64, &str)]) -> Vec<Candidate> {
        spec.iter()
            .enumerate()
            .map(|(i, (r, g))| Candidate {
                id: format!("c{i}"),
                relevance: *r,
                group: (*g).into(),
            })
            .collect()
    }

    #[test]
    fn rerank_lifts_the_underexposed_group_into_its_band() {
        let c = cands(&[
            (0.9, "big"),
            (0.8, "big"),
            (0.7, "big"),
            (0.6, "big"),
            (0.5, "small"),
            (0.4, "small"),
            (0.3, "small"),
            (0.2, "small"),
        ]);
        let band = ExposureBand {
            target: Target::Proportional,
            tolerance: 0.1,
        };
        let r = rerank(&c, 4, &band).unwrap();
        assert!(r.satisfied, "{r:?}");
        let small = r.groups.iter().find(|g| g.group == "small").unwrap();
        assert_eq!(small.before, 0.0);
        assert!(small.after >= 0.4 - 1e-9 && small.after <= 0.6 + 1e-9);
        let ndcg = r.ndcg_ratio.value.unwrap();
        assert!(ndcg < 1.0 && ndcg > 0.7);
        // Within a group, relevance order is kept.
        let bigs: Vec<usize> = r.order.iter().copied().filter(|&i| i < 4).collect();
        assert!(bigs.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn rerank_without_constraint_pressure_keeps_relevance_order() {
        let c = cands(&[(0.9, "a"), (0.8, "b"), (0.7, "a"), (0.6, "b")]);
        let band = ExposureBand {
            target: Target::Equal,
            tolerance: 1.0,
        };
        let r = rerank(&c, 4, &band).unwrap();
        assert_eq!(r.order, vec![0, 1, 2, 3]);
        assert_eq!(r.ndcg_ratio.value, Some(1.0));
    }

    #[test]
    fn rerank_reports_unreachable_band() {
        let c = cands(&[(0.9, "a"), (0.8, "a"), (0.7, "a"), (0.1, "b")]);
        let band = ExposureBand {
            target: Target::Equal,
            tolerance: 0.0,
        };
        let r = rerank(&c, 4, &band).unwrap();
        assert!(!r.satisfied);
        // b gets the top slot, as close to its share as one item can get.
        assert_eq!(r.order[0], 3);
    }
}
