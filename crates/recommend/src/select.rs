//! Model selection for serving: item-kNN, ALS or a blend, chosen on a validation slice cut by
//! time from the training data itself.
//!
//! Invariants: the validation slice is each subject's latest 20% of their training history
//! (EVAL-1's rule applied inside the training data), so an offline test split is never looked
//! at; candidates are judged through the serving pipeline ([`Engine`]) with the serving
//! configuration, at level `full`, so the figure is the served one, not the bare model's; the
//! chosen model is then refitted on all the training data. The figures behind the choice are
//! returned for the model version's record.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{RecError, Result};
use crate::matrix::Interactions;
use crate::metrics::evaluate;
use crate::models::{Als, AlsParams, Blend, ItemKnn, KnnParams, Model};
use crate::serve::ServeConfig;
use crate::serve::{Calibration, Catalog, Consent, Engine, Factors, FullModel, Level, Request};

/// Which family serves level `full`: the best on validation, or one the operator fixed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelChoice {
    /// The candidate with the best validation NDCG@10 (ties keep the simpler one).
    #[default]
    Auto,
    ItemKnn,
    Als,
    /// The best of the blends tried.
    Blend,
}

/// What model selection may choose from.
#[derive(Debug, Clone)]
pub struct SelectParams {
    pub choice: ModelChoice,
    pub knn: KnnParams,
    pub als: AlsParams,
    /// kNN weights of the blends tried (0 < w < 1).
    pub blend_weights: Vec<f32>,
    /// At most this many validation subjects are scored (the earliest in input order).
    pub max_subjects: usize,
}

impl Default for SelectParams {
    fn default() -> Self {
        SelectParams {
            choice: ModelChoice::Auto,
            knn: KnnParams::default(),
            als: AlsParams::default(),
            blend_weights: vec![0.25, 0.5, 0.75],
            max_subjects: 5000,
        }
    }
}

/// One candidate's validation figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figure {
    /// `item-knn`, `als`, `blend w=0.50`, or at the lower levels `basic` / `off`.
    pub model: String,
    pub ndcg_at_10: f64,
    pub recall_at_10: f64,
}

/// The choice for one level and the figures behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LevelChoice {
    pub level: Level,
    pub chosen: String,
    pub figures: Vec<Figure>,
}

/// Everything recorded with a model version about how it was chosen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Selection {
    /// How the validation slice was cut.
    pub validation: String,
    pub validation_subjects: usize,
    pub levels: Vec<LevelChoice>,
}

/// The chosen model (fitted on all of `histories`), the selection record, and a calibration
/// fitted on the chosen candidate's validation answers.
pub struct Selected {
    pub model: Model,
    pub selection: Selection,
    pub calibration: Calibration,
}

/// Chooses and fits the model for level `full`. `histories[s]` is subject `s`'s consented
/// items oldest first and `times[s]` their times (or empty rows);
/// `catalog` and `config` are the serving ones.
pub fn select(
    catalog: &Catalog,
    histories: &[Vec<u32>],
    times: &[Vec<i64>],
    config: &ServeConfig,
    params: &SelectParams,
) -> Result<Selected> {
    let n_items = catalog.item_ids.len();
    if histories.len() != times.len() {
        return Err(RecError::Invalid("one time row per history".into()));
    }
    // The validation slice: each subject's latest floor(20%) interactions.
    let mut fit_rows = Vec::with_capacity(histories.len());
    let mut fit_times = Vec::with_capacity(histories.len());
    let mut held: Vec<(usize, Vec<u32>)> = Vec::new();
    for (s, (h, t)) in histories.iter().zip(times).enumerate() {
        let n_test = h.len() / 5;
        let cut = h.len() - n_test;
        fit_rows.push(h[..cut].to_vec());
        fit_times.push(if t.len() == h.len() {
            t[..cut].to_vec()
        } else {
            Vec::new()
        });
        if n_test > 0 && held.len() < params.max_subjects {
            let mut test: Vec<u32> = h[cut..]
                .iter()
                .copied()
                .filter(|i| !h[..cut].contains(i))
                .collect();
            test.sort_unstable();
            test.dedup();
            if !test.is_empty() {
                held.push((s, test));
            }
        }
    }
    let fit = Interactions::from_rows(n_items, &fit_rows)?;
    let fit_counts = fit.col_counts();
    let knn = ItemKnn::fit(&fit, params.knn);
    let als = Factors::new(Als::fit(&fit, params.als)?);
    let mut candidates: Vec<(String, FullModel)> = vec![
        ("item-knn".into(), FullModel::Knn(knn.clone())),
        ("als".into(), FullModel::Factors(als.clone())),
    ];
    for &w in &params.blend_weights {
        candidates.push((
            format!("blend w={w:.2}"),
            FullModel::Blend {
                knn: knn.clone(),
                factors: als.clone(),
                knn_weight: w,
            },
        ));
    }
    let tests: Vec<&[u32]> = held.iter().map(|(_, t)| t.as_slice()).collect();
    let every_category: Vec<u32> = (0..catalog.category_names.len() as u32).collect();
    let request = |s: usize, level: Level| Request {
        level,
        consent: Consent {
            behaviour: true,
            declared: true,
        },
        history: if level == Level::Full {
            &fit_rows[s]
        } else {
            &[]
        },
        history_ts: if level == Level::Full {
            &fit_times[s]
        } else {
            &[]
        },
        history_kinds: &[],
        declared: &[],
        sensitive_opt_in: &every_category,
        owned: &fit_rows[s],
        k: crate::eval::K,
        seed: s as u64,
    };
    let score = |engine: &Engine, level: Level| {
        let recs: Vec<Vec<u32>> = held
            .par_iter()
            .map(|(s, _)| {
                engine
                    .recommend(&request(*s, level))
                    .items
                    .iter()
                    .map(|r| r.item)
                    .collect()
            })
            .collect();
        evaluate(&recs, &tests, n_items, crate::eval::K)
    };
    let mut figures = Vec::new();
    let mut best: Option<(usize, f64, Engine)> = None;
    for (n, (name, model)) in candidates.iter().enumerate() {
        let engine = Engine::with_model(
            catalog.clone(),
            &fit_counts,
            Some(model.clone()),
            "validation".into(),
            config.clone(),
        )?;
        let m = score(&engine, Level::Full);
        figures.push(Figure {
            model: name.clone(),
            ndcg_at_10: m.ndcg,
            recall_at_10: m.recall,
        });
        let eligible = match params.choice {
            ModelChoice::Auto => true,
            ModelChoice::ItemKnn => matches!(model, FullModel::Knn(_)),
            ModelChoice::Als => matches!(model, FullModel::Factors(_)),
            ModelChoice::Blend => matches!(model, FullModel::Blend { .. }),
        };
        // strictly better wins; ties keep the simpler (earlier) candidate
        if eligible && best.as_ref().is_none_or(|b| m.ndcg > b.1) {
            best = Some((n, m.ndcg, engine));
        }
    }
    let (chosen, _, chosen_engine) =
        best.ok_or_else(|| RecError::Invalid("no blend weights to choose a blend from".into()))?;
    let off_engine = Engine::new(
        catalog.clone(),
        &fit_counts,
        None,
        "validation".into(),
        config.clone(),
    )?;
    let off = score(&off_engine, Level::Off);
    let calibration = Calibration::fit_engine(
        &chosen_engine,
        held.iter()
            .map(|(s, test)| (request(*s, Level::Full), test.as_slice())),
    );
    // Refit the chosen family on everything.
    let all = Interactions::from_rows(n_items, histories)?;
    let model = match &candidates[chosen].1 {
        FullModel::Knn(_) => Model::ItemKnn(ItemKnn::fit(&all, params.knn)),
        FullModel::Factors(_) => Model::Als(Als::fit(&all, params.als)?),
        FullModel::Blend { knn_weight, .. } => Model::Blend(Blend {
            knn: ItemKnn::fit(&all, params.knn),
            als: Als::fit(&all, params.als)?,
            knn_weight: *knn_weight,
        }),
    };
    Ok(Selected {
        model,
        calibration,
        selection: Selection {
            validation: "each subject's latest 20% of their training interactions (by time)".into(),
            validation_subjects: held.len(),
            levels: vec![
                LevelChoice {
                    level: Level::Full,
                    chosen: match params.choice {
                        ModelChoice::Auto => candidates[chosen].0.clone(),
                        _ => format!("{} (fixed by configuration)", candidates[chosen].0),
                    },
                    figures,
                },
                LevelChoice {
                    level: Level::Off,
                    chosen: "popularity".into(),
                    figures: vec![Figure {
                        model: "popularity".into(),
                        ndcg_at_10: off.ndcg,
                        recall_at_10: off.recall,
                    }],
                },
            ],
        },
    })
}
