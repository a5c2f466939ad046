//! Recommendation-list audit: provider exposure, premium offers per subject group, diversity,
//! coverage, concentration and popularity bias.
//!
//! Invariant: exposure uses the same 1/log2(1+rank) discount as decision exposure
//! ([`crate::stats::discount`]) and groups are compared with the same [`compare`] function, so a
//! "ratio" means the same thing everywhere in a report.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::FairnessError;
use crate::metrics::{Reference, Undefined, Value, compare, fraction};
use crate::report::Estimate;
use crate::stats::discount;

/// One catalog item as the audit needs it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CatalogItem {
    pub id: String,
    /// Provider, seller, or category whose exposure is audited.
    pub provider: String,
    /// Categories used for intra-list diversity (Jaccard distance between items).
    pub categories: Vec<String>,
    /// A premium / high-value offer.
    pub premium: bool,
    /// Popularity, e.g. interaction count in training data.
    pub popularity: f64,
}

/// One recommendation list shown to one subject.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecommendationList {
    /// The subject's (protected) group, e.g. "F".
    pub subject_group: String,
    /// Catalog indices in rank order (first = rank 1).
    pub items: Vec<usize>,
}

/// Result of [`audit_recommendations`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecommendationReport {
    pub lists: usize,
    pub slots: u64,
    pub providers: Vec<ProviderExposure>,
    /// Smallest over largest provider share ratio (1 = every provider exposed in proportion to
    /// its catalog share).
    pub provider_exposure_ratio: Estimate,
    pub subject_groups: Vec<SubjectGroupRecommendations>,
    /// Largest minus smallest premium share between subject groups.
    pub premium_share_difference: Estimate,
    pub premium_share_ratio: Estimate,
    /// Mean over lists of the mean pairwise Jaccard distance of item categories.
    pub intra_list_diversity: Estimate,
    /// Distinct recommended items / catalog size.
    pub catalog_coverage: Estimate,
    /// Gini coefficient of position-discounted exposure over all catalog items (0 even, 1 one item).
    pub gini_item_exposure: Estimate,
    pub popularity: PopularityBias,
}

/// Exposure of one provider.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProviderExposure {
    pub provider: String,
    pub catalog_items: usize,
    pub catalog_share: f64,
    pub exposure: f64,
    pub exposure_share: Estimate,
    /// exposure_share / catalog_share.
    pub share_ratio: Estimate,
}

/// What one group of subjects was shown.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SubjectGroupRecommendations {
    pub group: String,
    pub lists: usize,
    pub slots: u64,
    /// Share of slots holding a premium offer.
    pub premium_share: Estimate,
    /// Share of position-discounted exposure going to premium offers.
    pub premium_exposure_share: Estimate,
    pub mean_popularity: Estimate,
    pub intra_list_diversity: Estimate,
}

/// How much recommendations lean toward already popular items.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PopularityBias {
    /// Mean popularity of recommended slots (ARP).
    pub mean_recommended_popularity: Estimate,
    pub mean_catalog_popularity: Estimate,
    /// ARP / catalog mean: above 1 means recommendations favour popular items.
    pub popularity_lift: Estimate,
    /// Share of slots on long-tail items (outside the 20 % most popular items).
    pub long_tail_share: Estimate,
}

/// Audit recommendation lists against a catalog.
pub fn audit_recommendations(
    catalog: &[CatalogItem],
    lists: &[RecommendationList],
) -> Result<RecommendationReport, FairnessError> {
    if catalog.is_empty() {
        return Err(FairnessError::Empty {
            what: "the catalog".into(),
        });
    }
    let mut item_exposure = vec![0.0f64; catalog.len()];
    let mut recommended = vec![false; catalog.len()];
    let head = popular_head(catalog);

    #[derive(Default)]
    struct Acc {
        lists: usize,
        slots: u64,
        premium: u64,
        premium_exp: f64,
        exp: f64,
        pop: f64,
        ild_sum: f64,
        ild_n: usize,
    }
    let mut by_group: BTreeMap<&str, Acc> = BTreeMap::new();
    let mut total = Acc::default();
    let mut tail_slots = 0u64;
    for (li, list) in lists.iter().enumerate() {
        let acc = by_group.entry(list.subject_group.as_str()).or_default();
        acc.lists += 1;
        total.lists += 1;
        for (pos, &item) in list.items.iter().enumerate() {
            let it = catalog.get(item).ok_or_else(|| FairnessError::BadRow {
                row: li + 1,
                reason: format!(
                    "item index {item} is outside the catalog of {}",
                    catalog.len()
                ),
            })?;
            let d = discount(pos as u32 + 1);
            item_exposure[item] += d;
            recommended[item] = true;
            if !head[item] {
                tail_slots += 1;
            }
            for a in [&mut *acc, &mut total] {
                a.slots += 1;
                a.exp += d;
                a.pop += it.popularity;
                if it.premium {
                    a.premium += 1;
                    a.premium_exp += d;
                }
            }
        }
        if let Some(ild) = intra_list_diversity(catalog, &list.items) {
            for a in [&mut *acc, &mut total] {
                a.ild_sum += ild;
                a.ild_n += 1;
            }
        }
    }

    let mean_ild = |a: &Acc| {
        Estimate::new(fraction(
            a.ild_sum,
            a.ild_n as f64,
            Undefined::FewerThanTwoGroups,
        ))
    };
    let subject_groups: Vec<SubjectGroupRecommendations> = by_group
        .iter()
        .map(|(g, a)| SubjectGroupRecommendations {
            group: (*g).to_owned(),
            lists: a.lists,
            slots: a.slots,
            premium_share: Estimate::new(fraction(
                a.premium as f64,
                a.slots as f64,
                Undefined::NoMembers,
            )),
            premium_exposure_share: Estimate::new(fraction(
                a.premium_exp,
                a.exp,
                Undefined::NoMembers,
            )),
            mean_popularity: Estimate::new(fraction(a.pop, a.slots as f64, Undefined::NoMembers)),
            intra_list_diversity: mean_ild(a),
        })
        .collect();
    let premium: Vec<Value> = subject_groups
        .iter()
        .map(|g| g.premium_share.value())
        .collect();
    let premium_cmp = compare(&premium, Reference::BetweenGroups);

    let total_exposure: f64 = item_exposure.iter().sum();
    let mut providers: BTreeMap<&str, (usize, f64)> = BTreeMap::new();
    for (it, e) in catalog.iter().zip(&item_exposure) {
        let p = providers.entry(it.provider.as_str()).or_default();
        p.0 += 1;
        p.1 += e;
    }
    let providers: Vec<ProviderExposure> = providers
        .into_iter()
        .map(|(p, (n, e))| {
            let catalog_share = n as f64 / catalog.len() as f64;
            let share = fraction(e, total_exposure, Undefined::ZeroDenominator);
            ProviderExposure {
                provider: p.to_owned(),
                catalog_items: n,
                catalog_share,
                exposure: e,
                exposure_share: Estimate::new(share),
                share_ratio: Estimate::new(share.map(|s| s / catalog_share)),
            }
        })
        .collect();
    let ratios: Vec<Value> = providers.iter().map(|p| p.share_ratio.value()).collect();

    let catalog_pop = catalog.iter().map(|i| i.popularity).sum::<f64>() / catalog.len() as f64;
    let arp = fraction(total.pop, total.slots as f64, Undefined::NoMembers);
    Ok(RecommendationReport {
        lists: lists.len(),
        slots: total.slots,
        providers,
        provider_exposure_ratio: Estimate::new(compare(&ratios, Reference::BetweenGroups).ratio),
        subject_groups,
        premium_share_difference: Estimate::new(premium_cmp.difference),
        premium_share_ratio: Estimate::new(premium_cmp.ratio),
        intra_list_diversity: mean_ild(&total),
        catalog_coverage: Estimate::new(Ok(
            recommended.iter().filter(|&&r| r).count() as f64 / catalog.len() as f64
        )),
        gini_item_exposure: Estimate::new(gini(&item_exposure)),
        popularity: PopularityBias {
            mean_recommended_popularity: Estimate::new(arp),
            mean_catalog_popularity: Estimate::new(Ok(catalog_pop)),
            popularity_lift: Estimate::new(
                arp.and_then(|a| fraction(a, catalog_pop, Undefined::ZeroDenominator)),
            ),
            long_tail_share: Estimate::new(fraction(
                tail_slots as f64,
                total.slots as f64,
                Undefined::NoMembers,
            )),
        },
    })
}

/// Items in the 20 % most popular part of the catalog (ties broken by index for determinism).
fn popular_head(catalog: &[CatalogItem]) -> Vec<bool> {
    let mut order: Vec<usize> = (0..catalog.len()).collect();
    order.sort_by(|&a, &b| {
        catalog[b]
            .popularity
            .total_cmp(&catalog[a].popularity)
            .then(a.cmp(&b))
    });
    let mut head = vec![false; catalog.len()];
    for &i in order.iter().take(catalog.len().div_ceil(5)) {
        head[i] = true;
    }
    head
}

/// Mean pairwise Jaccard distance of category sets; `None` for lists of fewer than two items.
/// Two items that both have no categories count as identical (distance 0).
pub fn intra_list_diversity(catalog: &[CatalogItem], items: &[usize]) -> Option<f64> {
    if items.len() < 2 {
        return None;
    }
    let mut sum = 0.0;
    let mut pairs = 0usize;
    for (i, &a) in items.iter().enumerate() {
        for &b in &items[i + 1..] {
            let (ca, cb) = (&catalog[a].categories, &catalog[b].categories);
            let inter = ca.iter().filter(|c| cb.contains(c)).count();
            let union = ca.len() + cb.len() - inter;
            sum += if union == 0 {
                0.0
            } else {
                1.0 - inter as f64 / union as f64
            };
            pairs += 1;
        }
    }
    Some(sum / pairs as f64)
}

/// Gini coefficient of non-negative values: Σ (2i − n − 1) x_(i) / (n Σ x), i = 1..n ascending.
pub fn gini(values: &[f64]) -> Value {
    let mut v: Vec<f64> = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len() as f64;
    let total: f64 = v.iter().sum();
    let weighted: f64 = v
        .iter()
        .enumerate()
        .map(|(i, x)| (2.0 * (i as f64 + 1.0) - n - 1.0) * x)
        .sum();
    fraction(weighted, n * total, Undefined::ZeroDenominator)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str, provider: &str, cats: &[&str], premium: bool, pop: f64) -> CatalogItem {
        CatalogItem {
            id: id.into(),
            provider: provider.into(),
            categories: cats.iter().map(|s| (*s).into()).collect(),
            premium,
            popularity: pop,
        }
    }

    #[test]
    fn gini_known_values() {
        assert_eq!(gini(&[1.0, 1.0, 1.0, 1.0]), Ok(0.0));
        // One item holds everything among 4: (2*4-4-1)*1 / (4*1) = 0.75.
        assert_eq!(gini(&[0.0, 0.0, 0.0, 1.0]), Ok(0.75));
        assert_eq!(gini(&[0.0, 0.0]), Err(Undefined::ZeroDenominator));
    }

    #[test]
    fn hand_computed_list_audit() {
        let catalog = vec![
            item("a", "big", &["x"], true, 10.0),
            item("b", "big", &["x", "y"], false, 5.0),
            item("c", "small", &["z"], false, 1.0),
            item("d", "small", &[], false, 0.0),
        ];
        let lists = vec![
            RecommendationList {
                subject_group: "F".into(),
                items: vec![1, 2],
            },
            RecommendationList {
                subject_group: "M".into(),
                items: vec![0, 1],
            },
        ];
        let r = audit_recommendations(&catalog, &lists).unwrap();
        // Exposure: a=1, b=1+1/log2(3), c=1/log2(3), d=0.
        let d2 = 1.0 / 3f64.log2();
        let big = 2.0 + d2;
        assert!((r.providers[0].exposure - big).abs() < 1e-12);
        assert!((r.providers[1].exposure - d2).abs() < 1e-12);
        assert_eq!(r.catalog_coverage.value, Some(0.75));
        // Premium share: F 0/2, M 1/2.
        assert_eq!(r.premium_share_difference.value, Some(0.5));
        assert_eq!(r.premium_share_ratio.value, Some(0.0));
        // ILD: F pair (b,c) disjoint => 1; M pair (a,b) Jaccard 1/2 => 0.5; mean 0.75.
        assert_eq!(r.intra_list_diversity.value, Some(0.75));
        // Head = top 1 item (a); tail slots = b, c, b = 3 of 4.
        assert_eq!(r.popularity.long_tail_share.value, Some(0.75));
        // ARP = (5+1+10+5)/4 = 5.25; catalog mean 4; lift 1.3125.
        assert_eq!(r.popularity.popularity_lift.value, Some(1.3125));
    }
}
