//! Declared-preference (content) matching.
//!
//! Scores an item by how much its categories overlap the interests a subject declared
//! (zero-party data), with popularity as a small tie-breaker inside equal overlap. Reads no
//! behavioural history, so it is what the personalization level `basic` may use.
//!
//! Invariant: an item without a declared category match scores strictly below every item
//! with one, as long as declared weights exceed `popularity_weight`.

use serde::{Deserialize, Serialize};

use crate::error::{RecError, Result};
use crate::models::{Query, Scorer};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ContentParams {
    /// Weight of normalised popularity (in [0, 1]) added to the overlap.
    pub popularity_weight: f32,
}

impl Default for ContentParams {
    fn default() -> Self {
        ContentParams {
            popularity_weight: 1e-3,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ContentModel {
    pub params: ContentParams,
    /// Category names, indexed by category id.
    pub categories: Vec<String>,
    /// Categories of each item (CSR: `item_cat_ptr.len() == n_items + 1`).
    pub item_cat_ptr: Vec<u32>,
    pub item_cat: Vec<u32>,
    /// Popularity scaled to [0, 1].
    pub popularity: Vec<f32>,
}

impl ContentModel {
    /// `item_categories[i]` lists category ids of item `i`; `counts[i]` its popularity.
    pub fn fit(
        categories: Vec<String>,
        item_categories: &[Vec<u32>],
        counts: &[u32],
        params: ContentParams,
    ) -> Result<Self> {
        if counts.len() != item_categories.len() {
            return Err(RecError::Invalid(format!(
                "{} items have categories but {} have counts",
                item_categories.len(),
                counts.len()
            )));
        }
        let mut item_cat_ptr = vec![0u32];
        let mut item_cat = Vec::new();
        for (i, cats) in item_categories.iter().enumerate() {
            for &c in cats {
                if c as usize >= categories.len() {
                    return Err(RecError::Invalid(format!(
                        "item {i}: category {c} out of range"
                    )));
                }
                item_cat.push(c);
            }
            item_cat_ptr.push(item_cat.len() as u32);
        }
        let max = counts.iter().copied().max().unwrap_or(0).max(1) as f32;
        Ok(ContentModel {
            params,
            categories,
            item_cat_ptr,
            item_cat,
            popularity: counts.iter().map(|&c| c as f32 / max).collect(),
        })
    }

    pub fn categories_of(&self, i: u32) -> &[u32] {
        let i = i as usize;
        &self.item_cat[self.item_cat_ptr[i] as usize..self.item_cat_ptr[i + 1] as usize]
    }
}

impl Scorer for ContentModel {
    fn n_items(&self) -> usize {
        self.popularity.len()
    }
    fn score(&self, query: &Query<'_>, scores: &mut [f32]) {
        let mut w = vec![0f32; self.categories.len()];
        for &(c, wt) in query.declared {
            if let Some(slot) = w.get_mut(c as usize) {
                *slot += wt.max(0.0);
            }
        }
        for (i, s) in scores.iter_mut().enumerate() {
            let overlap: f32 = self
                .categories_of(i as u32)
                .iter()
                .map(|&c| w[c as usize])
                .sum();
            *s = overlap + self.params.popularity_weight * self.popularity[i];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::recommend;

    #[test]
    fn declared_interest_outranks_popularity() {
        let cats = vec!["garden".to_string(), "kitchen".to_string()];
        let m = ContentModel::fit(
            cats,
            &[vec![0], vec![1], vec![0, 1], vec![]],
            &[1, 100, 5, 1000],
            ContentParams::default(),
        )
        .unwrap();
        let q = Query {
            declared: &[(0, 1.0)],
            ..Query::default()
        };
        let ids: Vec<u32> = recommend(&m, &q, 4).iter().map(|r| r.0).collect();
        assert_eq!(ids, vec![2, 0, 3, 1]);
    }
}
