//! Recommendation models behind one trait.
//!
//! Every model is fitted on an [`Interactions`] matrix that the
//! caller has already restricted to consented data, and scores items for a [`Query`] (a user's
//! history and declared interests). Scoring never mutates the model, so one fitted model serves
//! concurrent requests. Item indices are the columns of the training matrix.

pub mod als;
pub mod blend;
pub mod content;
pub mod knn;
pub mod popularity;

use serde::{Deserialize, Serialize};

use crate::matrix::Interactions;

pub use als::{Als, AlsParams, AlsSolver, FoldIn};
pub use blend::{Blend, BlendParams};
pub use content::{ContentModel, ContentParams};
pub use knn::{ItemKnn, KnnParams, RecencyUnit, Weighting};
pub use popularity::{Popularity, trending};

/// What a model may look at for one request.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<'a> {
    /// Row of the training matrix, when the subject was part of training (ALS uses its factor).
    pub user: Option<u32>,
    /// Item indices the subject interacted with, oldest first, without duplicates.
    pub history: &'a [u32],
    /// Time of each history entry (same length as `history`, non-decreasing), or empty when
    /// unknown. Recency-aware models treat entries with equal times as one event (one basket).
    pub history_ts: &'a [i64],
    /// Declared interests: (category index, weight > 0). Only the content model reads them.
    pub declared: &'a [(u32, f32)],
}

/// A fitted model that scores every item for a query.
pub trait Scorer: Send + Sync {
    /// Number of items (columns) the model knows.
    fn n_items(&self) -> usize;
    /// Writes one score per item into `scores` (length [`Scorer::n_items`]); higher is better.
    /// Items the model has nothing to say about get 0.
    fn score(&self, query: &Query<'_>, scores: &mut [f32]);
}

/// A model fitted on an interaction matrix of consented data (subjects x items).
pub trait Fit: Scorer + Sized {
    type Params;
    /// Fits on `train`; parallel work runs on the current rayon pool.
    fn fit_on(train: &Interactions, params: Self::Params) -> crate::Result<Self>;
}

impl Fit for Popularity {
    type Params = ();
    fn fit_on(train: &Interactions, _: ()) -> crate::Result<Self> {
        Ok(Popularity::fit(train))
    }
}

impl Fit for ItemKnn {
    type Params = KnnParams;
    fn fit_on(train: &Interactions, params: KnnParams) -> crate::Result<Self> {
        Ok(ItemKnn::fit(train, params))
    }
}

impl Fit for Als {
    type Params = AlsParams;
    fn fit_on(train: &Interactions, params: AlsParams) -> crate::Result<Self> {
        Als::fit(train, params)
    }
}

/// The model families the engine serves and evaluates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelKind {
    Popularity,
    ItemKnn,
    Als,
    Content,
    /// item-kNN and ALS mixed ([`Blend`]).
    Blend,
}

impl ModelKind {
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Popularity => "popularity",
            ModelKind::ItemKnn => "item-knn",
            ModelKind::Als => "als",
            ModelKind::Content => "content",
            ModelKind::Blend => "blend",
        }
    }

    /// Whether the model reads individual behaviour (allowed only at personalization `full`).
    pub fn uses_behaviour(self) -> bool {
        matches!(self, ModelKind::ItemKnn | ModelKind::Als | ModelKind::Blend)
    }
}

/// Any fitted model; the unit that is saved, loaded and served.
#[derive(Debug, Clone, PartialEq)]
pub enum Model {
    Popularity(Popularity),
    ItemKnn(ItemKnn),
    Als(Als),
    Content(ContentModel),
    Blend(Blend),
}

impl Model {
    pub fn kind(&self) -> ModelKind {
        match self {
            Model::Popularity(_) => ModelKind::Popularity,
            Model::ItemKnn(_) => ModelKind::ItemKnn,
            Model::Als(_) => ModelKind::Als,
            Model::Content(_) => ModelKind::Content,
            Model::Blend(_) => ModelKind::Blend,
        }
    }

    fn inner(&self) -> &dyn Scorer {
        match self {
            Model::Popularity(m) => m,
            Model::ItemKnn(m) => m,
            Model::Als(m) => m,
            Model::Content(m) => m,
            Model::Blend(m) => m,
        }
    }
}

impl Scorer for Model {
    fn n_items(&self) -> usize {
        self.inner().n_items()
    }
    fn score(&self, query: &Query<'_>, scores: &mut [f32]) {
        self.inner().score(query, scores)
    }
}

/// The `k` best items by score, best first; ties go to the lower index (for EVAL-1 indices
/// are in id-string order, matching the peer tool). Items for which `excluded` is true, and
/// scores that are NaN or -inf, are never returned.
pub fn top_k(scores: &[f32], k: usize, excluded: impl Fn(u32) -> bool) -> Vec<(u32, f32)> {
    let mut best: Vec<(u32, f32)> = Vec::with_capacity(k + 1);
    if k == 0 {
        return best;
    }
    // strict "better than": higher score, or equal score and lower index
    let better = |a: (u32, f32), b: (u32, f32)| a.1 > b.1 || (a.1 == b.1 && a.0 < b.0);
    for (i, &s) in scores.iter().enumerate() {
        if s.is_nan() || s == f32::NEG_INFINITY {
            continue;
        }
        let cand = (i as u32, s);
        if best.len() == k && !better(cand, best[k - 1]) {
            continue;
        }
        if excluded(cand.0) {
            continue;
        }
        let pos = best.partition_point(|&b| better(b, cand));
        best.insert(pos, cand);
        best.truncate(k);
    }
    best
}

/// Recommends `k` items for `query`, never returning an item of its history.
pub fn recommend(model: &dyn Scorer, query: &Query<'_>, k: usize) -> Vec<(u32, f32)> {
    let mut scores = vec![0f32; model.n_items()];
    model.score(query, &mut scores);
    for &h in query.history {
        if let Some(s) = scores.get_mut(h as usize) {
            *s = f32::NEG_INFINITY;
        }
    }
    top_k(&scores, k, |_| false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_interaction_model_fits_through_one_trait() {
        fn top1<M: Fit>(train: &Interactions, p: M::Params) -> u32 {
            let m = M::fit_on(train, p).unwrap();
            recommend(
                &m,
                &Query {
                    user: Some(0),
                    history: train.row(0),
                    ..Query::default()
                },
                1,
            )[0]
            .0
        }
        let train = Interactions::from_rows(
            4,
            &[
                vec![0, 1],
                vec![0, 1, 2],
                vec![0, 1, 2],
                vec![3],
                vec![2, 3],
            ],
        )
        .unwrap();
        assert_eq!(top1::<Popularity>(&train, ()), 2);
        assert_eq!(top1::<ItemKnn>(&train, KnnParams::implicit_cosine()), 2);
        let als = AlsParams {
            factors: 4,
            iterations: 10,
            ..AlsParams::default()
        };
        assert_eq!(top1::<Als>(&train, als), 2);
    }

    #[test]
    fn top_k_orders_and_breaks_ties_by_index() {
        let s = [1.0, 3.0, 3.0, f32::NAN, 2.0, f32::NEG_INFINITY, 3.0];
        let got: Vec<u32> = top_k(&s, 4, |i| i == 2).iter().map(|x| x.0).collect();
        assert_eq!(got, vec![1, 6, 4, 0]);
        assert_eq!(top_k(&s, 0, |_| false), vec![]);
        assert_eq!(top_k(&s, 10, |_| false).len(), 5);
    }
}
