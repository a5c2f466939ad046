//! Offline evaluation under EVAL-1: fit each model on the train part, recommend 10 unseen
//! train items to every evaluated user, score against the test part.
//!
//! Timings are wall-clock seconds on the current rayon pool (the caller sizes it, e.g. with
//! [`with_threads`]). Fit time covers everything from the training matrix to a servable model.

use std::path::PathBuf;
use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;

use crate::data::Dataset;
use crate::error::{RecError, Result};
use crate::metrics::{Metrics, evaluate};
use crate::models::{
    Als, AlsParams, AlsSolver, ItemKnn, KnnParams, Model, Popularity, Query, RecencyUnit, Scorer,
    Weighting, top_k,
};
use crate::split::{Split, eval1_split};

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
            ModelSpec::ItemKnn(p) => {
                let recency = match (p.recency_half_life, p.recency_unit) {
                    (None, _) => "no recency".to_owned(),
                    (Some(h), unit) => {
                        let unit = match unit {
                            RecencyUnit::Time => "event",
                            RecencyUnit::Position => "position",
                        };
                        let s = if h == 1.0 { "" } else { "s" };
                        format!("recency half-life {h} {unit}{s}")
                    }
                };
                format!(
                    "item-knn({}, k={}, power={}, {recency})",
                    p.weighting, p.neighbours, p.power
                )
            }
            ModelSpec::Als(p) => format!(
                "als(factors={}, iterations={}, reg={}, alpha={}, {})",
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
                    history_ts: &split.train_ts[u as usize],
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

/// Lists of hyper-parameter values; every combination becomes one [`ModelSpec`]. Single-value
/// lists give one model. Field defaults are the tuned defaults documented in
/// `docs/RECOMMENDATIONS.md`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParamGrid {
    pub knn_neighbours: Vec<usize>,
    /// `cosine`, `bm25` or `tfidf`.
    pub knn_weighting: Vec<String>,
    pub knn_asymmetry: Vec<f32>,
    pub knn_power: Vec<f32>,
    /// 0 = no recency weighting.
    pub knn_recency: Vec<f32>,
    /// `time` or `position`.
    pub knn_recency_unit: Vec<String>,
    pub bm25_k1: f32,
    pub bm25_b: f32,
    pub als_factors: Vec<usize>,
    pub als_iterations: Vec<usize>,
    pub als_regularization: Vec<f32>,
    pub als_alpha: Vec<f32>,
    /// 0 = exact Cholesky solves.
    pub als_cg_steps: usize,
    pub seed: u64,
}

impl Default for ParamGrid {
    fn default() -> Self {
        let knn = KnnParams::default();
        let als = AlsParams::default();
        ParamGrid {
            knn_neighbours: vec![knn.neighbours],
            knn_weighting: vec!["cosine".into()],
            knn_asymmetry: vec![0.5],
            knn_power: vec![knn.power],
            knn_recency: vec![knn.recency_half_life.unwrap_or(0.0)],
            knn_recency_unit: vec!["time".into()],
            bm25_k1: 1.2,
            bm25_b: 0.75,
            als_factors: vec![als.factors],
            als_iterations: vec![als.iterations],
            als_regularization: vec![als.regularization],
            als_alpha: vec![als.alpha],
            als_cg_steps: 3,
            seed: als.seed,
        }
    }
}

impl ParamGrid {
    /// Specs for a `--model` value: `popularity`, `item-knn`, `als`, `all`, or a comma list.
    pub fn specs(&self, models: &str) -> Result<Vec<ModelSpec>> {
        let mut out = Vec::new();
        for m in models.split(',').map(str::trim) {
            match m {
                "popularity" => out.push(ModelSpec::Popularity),
                "item-knn" => out.extend(self.knn_specs()?),
                "als" => out.extend(self.als_specs()),
                "all" => {
                    out.push(ModelSpec::Popularity);
                    out.extend(self.knn_specs()?);
                    out.extend(self.als_specs());
                }
                other => {
                    return Err(RecError::Invalid(format!(
                        "unknown model `{other}` (expected popularity, item-knn, als or all)"
                    )));
                }
            }
        }
        Ok(out)
    }

    fn knn_specs(&self) -> Result<Vec<ModelSpec>> {
        let mut out = Vec::new();
        for w in &self.knn_weighting {
            for &neighbours in &self.knn_neighbours {
                for &power in &self.knn_power {
                    for (&rec, unit) in self.recency_pairs() {
                        let recency_half_life = (rec > 0.0).then_some(rec);
                        let recency_unit = match unit.as_str() {
                            "time" => RecencyUnit::Time,
                            "position" => RecencyUnit::Position,
                            other => {
                                return Err(RecError::Invalid(format!(
                                    "unknown recency unit `{other}` (time, position)"
                                )));
                            }
                        };
                        let base = KnnParams {
                            neighbours,
                            weighting: Weighting::TfIdf,
                            power,
                            recency_half_life,
                            recency_unit,
                        };
                        match w.as_str() {
                            "cosine" => {
                                for &asymmetry in &self.knn_asymmetry {
                                    out.push(ModelSpec::ItemKnn(KnnParams {
                                        weighting: Weighting::Cosine { asymmetry },
                                        ..base
                                    }));
                                }
                            }
                            "bm25" => out.push(ModelSpec::ItemKnn(KnnParams {
                                weighting: Weighting::Bm25 {
                                    k1: self.bm25_k1,
                                    b: self.bm25_b,
                                },
                                ..base
                            })),
                            "tfidf" => out.push(ModelSpec::ItemKnn(base)),
                            other => {
                                return Err(RecError::Invalid(format!(
                                    "unknown kNN weighting `{other}` (cosine, bm25, tfidf)"
                                )));
                            }
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    fn recency_pairs(&self) -> impl Iterator<Item = (&f32, &String)> {
        self.knn_recency
            .iter()
            .flat_map(|r| self.knn_recency_unit.iter().map(move |u| (r, u)))
    }

    fn als_specs(&self) -> Vec<ModelSpec> {
        let solver = if self.als_cg_steps == 0 {
            AlsSolver::Cholesky
        } else {
            AlsSolver::Cg {
                steps: self.als_cg_steps,
            }
        };
        let mut out = Vec::new();
        for &factors in &self.als_factors {
            for &iterations in &self.als_iterations {
                for &regularization in &self.als_regularization {
                    for &alpha in &self.als_alpha {
                        out.push(ModelSpec::Als(AlsParams {
                            factors,
                            iterations,
                            regularization,
                            alpha,
                            solver,
                            seed: self.seed,
                        }));
                    }
                }
            }
        }
        out
    }
}

/// What `candor eval` runs.
#[derive(Debug, Clone)]
pub struct EvalOptions {
    pub dataset: Dataset,
    pub data_dir: PathBuf,
    pub specs: Vec<ModelSpec>,
    /// Write the split as TSV here (the format of `peer_eval1.py --dump-split`).
    pub split_out: Option<PathBuf>,
    /// Rayon threads (0 = all cores).
    pub threads: usize,
    /// Fit and recommend each model this many times; times are medians, metrics from run 1.
    pub repeats: usize,
}

/// The outcome of `candor eval`.
#[derive(Debug, Clone, Serialize)]
pub struct Eval1Report {
    pub protocol: &'static str,
    pub k: usize,
    pub dataset: &'static str,
    pub source: String,
    pub threads: usize,
    pub load_s: f64,
    pub split_s: f64,
    pub info: SplitInfo,
    pub results: Vec<ModelResult>,
}

/// Loads, splits, optionally writes the split, then fits and evaluates every spec;
/// `on_result` sees each result as soon as it is ready (for progress output).
pub fn run_eval1(
    opts: &EvalOptions,
    mut on_result: impl FnMut(&ModelResult) + Send,
) -> Result<Eval1Report> {
    let t = Instant::now();
    let data = opts.dataset.load(&opts.data_dir)?;
    let load_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let split = eval1_split(data)?;
    let split_s = t.elapsed().as_secs_f64();
    if let Some(path) = &opts.split_out {
        split.write_tsv_file(path)?;
    }
    let threads = if opts.threads == 0 {
        rayon::current_num_threads()
    } else {
        opts.threads
    };
    let results = with_threads(threads, || -> Result<Vec<ModelResult>> {
        let mut results = Vec::new();
        for spec in &opts.specs {
            let mut runs = Vec::new();
            for _ in 0..opts.repeats.max(1) {
                runs.push(run_model(&split, *spec)?);
            }
            let median = |f: fn(&ModelResult) -> f64| {
                let mut v: Vec<f64> = runs.iter().map(f).collect();
                v.sort_by(f64::total_cmp);
                v[v.len() / 2]
            };
            let (fit_s, recommend_s) = (median(|r| r.fit_s), median(|r| r.recommend_s));
            let mut r = runs.swap_remove(0);
            r.fit_s = fit_s;
            r.recommend_s = recommend_s;
            on_result(&r);
            results.push(r);
        }
        Ok(results)
    })??;
    Ok(Eval1Report {
        protocol: "EVAL-1",
        k: K,
        dataset: opts.dataset.name(),
        source: opts.dataset.path(&opts.data_dir).display().to_string(),
        threads,
        load_s,
        split_s,
        info: SplitInfo::of(&split),
        results,
    })
}

/// One line per result, aligned, for terminals and logs.
pub fn format_result(r: &ModelResult) -> String {
    format!(
        "{:70} precision@{K}={:.4} recall@{K}={:.4} ndcg@{K}={:.4} coverage@{K}={:.4} fit={:.3}s rec={:.3}s",
        r.label,
        r.metrics.precision,
        r.metrics.recall,
        r.metrics.ndcg,
        r.metrics.coverage,
        r.fit_s,
        r.recommend_s
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_results_read_as_words_and_state_k() {
        let labels = [
            ModelSpec::ItemKnn(KnnParams::default()).label(),
            ModelSpec::ItemKnn(KnnParams {
                weighting: Weighting::Bm25 { k1: 1.2, b: 0.75 },
                recency_half_life: None,
                recency_unit: RecencyUnit::Position,
                ..KnnParams::default()
            })
            .label(),
            ModelSpec::Als(AlsParams::default()).label(),
        ];
        assert_eq!(
            labels[0],
            "item-knn(cosine, asymmetry 0.5, k=20, power=2, recency half-life 1 event)"
        );
        assert_eq!(
            labels[1],
            "item-knn(bm25, k1 1.2, b 0.75, k=20, power=2, no recency)"
        );
        assert_eq!(
            labels[2],
            "als(factors=64, iterations=15, reg=0.01, alpha=1, conjugate gradient 3 steps)"
        );
        for l in &labels {
            assert!(!l.contains(['{', '}', ':']) && !l.contains("Some("), "{l}");
        }
        let r = ModelResult {
            label: labels[0].clone(),
            spec: ModelSpec::Popularity,
            metrics: Metrics {
                precision: 0.1,
                recall: 0.2,
                ndcg: 0.3,
                coverage: 0.4,
                n_users: 1,
                n_short_lists: 0,
            },
            fit_s: 0.0,
            recommend_s: 0.0,
        };
        let line = format_result(&r);
        for m in ["precision@10=", "recall@10=", "ndcg@10=", "coverage@10="] {
            assert!(line.contains(m), "{line}");
        }
    }
}
