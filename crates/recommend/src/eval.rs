//! Offline evaluation under EVAL-1: fit each model on the train part, recommend 10 unseen
//! train items to every evaluated user, score against the test part.
//!
//! Timings are wall-clock seconds on the current rayon pool (the caller sizes it, e.g. with
//! [`with_threads`]). Fit time covers everything from the training matrix to a servable model.

use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;

use crate::error::{RecError, Result};
use crate::metrics::{Metrics, evaluate};
use crate::models::{Als, AlsParams, ItemKnn, KnnParams, Model, Popularity, Query, Scorer, top_k};
use crate::split::Split;

/// EVAL-1's list length.
pub const K: usize = 10;

/// A model to fit, with its hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "model", rename_all = "kebab-case")]
pub enum ModelSpec {
    Popularity,
    ItemKnn(KnnParams),
    Als(AlsParams),
}

impl ModelSpec {
    pub fn label(&self) -> String {
        match self {
            ModelSpec::Popularity => "popularity".into(),
            ModelSpec::ItemKnn(p) => format!(
                "item-knn({:?}, k={}, power={}, recency={:?})",
                p.weighting, p.neighbours, p.power, p.recency_half_life
            ),
            ModelSpec::Als(p) => format!(
                "als(f={}, it={}, reg={}, alpha={}, {:?})",
                p.factors, p.iterations, p.regularization, p.alpha, p.solver
            ),
        }
    }

    /// Fits the model on the split's training matrix.
    pub fn fit(&self, split: &Split) -> Result<Model> {
        Ok(match self {
            ModelSpec::Popularity => Model::Popularity(Popularity::fit(&split.train)),
            ModelSpec::ItemKnn(p) => Model::ItemKnn(ItemKnn::fit(&split.train, *p)),
            ModelSpec::Als(p) => Model::Als(Als::fit(&split.train, *p)?),
        })
    }
}

/// One model's EVAL-1 outcome.
#[derive(Debug, Clone, Serialize)]
pub struct ModelResult {
    pub label: String,
    pub spec: ModelSpec,
    #[serde(flatten)]
    pub metrics: Metrics,
    pub fit_s: f64,
    pub recommend_s: f64,
}

/// Top-10 lists for every evaluated user, in `split.eval_users` order.
pub fn recommend_eval_users(model: &dyn Scorer, split: &Split) -> Vec<Vec<u32>> {
    split
        .eval_users
        .par_iter()
        .map_init(
            || vec![0f32; model.n_items()],
            |scores, &u| {
                let history = split.train.row(u as usize);
                let q = Query {
                    user: Some(u),
                    history,
                    declared: &[],
                };
                model.score(&q, scores);
                for &h in history {
                    scores[h as usize] = f32::NEG_INFINITY;
                }
                top_k(scores, K, |_| false)
                    .into_iter()
                    .map(|x| x.0)
                    .collect()
            },
        )
        .collect()
}

/// Fits and evaluates one model.
pub fn run_model(split: &Split, spec: ModelSpec) -> Result<ModelResult> {
    let t = Instant::now();
    let model = spec.fit(split)?;
    let fit_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let recs = recommend_eval_users(&model, split);
    let recommend_s = t.elapsed().as_secs_f64();
    let tests: Vec<&[u32]> = split
        .eval_users
        .iter()
        .map(|&u| split.test[u as usize].as_slice())
        .collect();
    let metrics = evaluate(&recs, &tests, split.items.len(), K);
    Ok(ModelResult {
        label: spec.label(),
        spec,
        metrics,
        fit_s,
        recommend_s,
    })
}

/// Summary of a split for reports (same names as `peer_eval1.py`'s `dataset_info`).
#[derive(Debug, Clone, Serialize)]
pub struct SplitInfo {
    pub n_interactions: usize,
    pub n_users: usize,
    pub n_train_items: usize,
    pub n_train: usize,
    pub n_test: usize,
    pub n_test_dropped: usize,
    pub n_users_evaluated: usize,
}

impl SplitInfo {
    pub fn of(split: &Split) -> Self {
        let (n_train, n_test, n_test_dropped) = split.counts();
        SplitInfo {
            n_interactions: split.rows.len(),
            n_users: split.users.len(),
            n_train_items: split.items.len(),
            n_train,
            n_test,
            n_test_dropped,
            n_users_evaluated: split.eval_users.len(),
        }
    }
}

/// Runs `f` on a rayon pool of `threads` threads (0 = rayon's default).
pub fn with_threads<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> Result<T> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| RecError::Invalid(format!("thread pool: {e}")))?;
    Ok(pool.install(f))
}

/// Default model line-up of `candor eval --model all`: the tuned defaults per data set kind.
pub fn default_specs() -> Vec<ModelSpec> {
    vec![
        ModelSpec::Popularity,
        ModelSpec::ItemKnn(KnnParams::default()),
        ModelSpec::Als(AlsParams::default()),
    ]
}
