//! A blend of item-kNN and ALS: each model's scores are scaled to their largest positive score
//! and mixed with a weight chosen on validation data (`select`).
//!
//! Invariant: both parts are fitted on the same consented interactions and share item indices.

use serde::{Deserialize, Serialize};

use crate::models::{Als, ItemKnn, Query, Scorer};

/// item-kNN and ALS mixed: `knn_weight * knn / max(knn) + (1 - knn_weight) * als / max(als)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Blend {
    pub knn: ItemKnn,
    pub als: Als,
    /// In [0, 1]: 1 = item-kNN alone, 0 = ALS alone.
    pub knn_weight: f32,
}

/// The blend's hyper-parameters as stored in a model file's meta.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BlendParams {
    pub knn: crate::models::KnnParams,
    pub als: crate::models::AlsParams,
    pub knn_weight: f32,
}

/// Scales `scores` so its largest positive value is 1 (all-non-positive scores become 0).
pub fn scale_to_max(scores: &mut [f32]) {
    let max = scores.iter().copied().fold(0f32, f32::max);
    let inv = if max > 0.0 { 1.0 / max } else { 0.0 };
    scores.iter_mut().for_each(|s| *s = (*s * inv).max(0.0));
}

impl Scorer for Blend {
    fn n_items(&self) -> usize {
        self.knn.n_items
    }
    fn score(&self, query: &Query<'_>, scores: &mut [f32]) {
        let mut als = vec![0f32; scores.len()];
        self.knn.score(query, scores);
        self.als.score(query, &mut als);
        scale_to_max(scores);
        scale_to_max(&mut als);
        let w = self.knn_weight;
        for (s, a) in scores.iter_mut().zip(&als) {
            *s = w * *s + (1.0 - w) * a;
        }
    }
}
