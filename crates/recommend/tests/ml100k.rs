//! EVAL-1 on the real MovieLens 100K (read from the shared data folder, never copied here).
//! Skips with a message when the data folder is absent (e.g. on a CI runner without fixtures).

use candor_recommend::data::{Dataset, default_data_dir};
use candor_recommend::eval::{ModelSpec, run_model};
use candor_recommend::models::{ItemKnn, KnnParams};
use candor_recommend::serve::{Calibration, Catalog, Consent, Engine, Level, Request, ServeConfig};
use candor_recommend::split::eval1_split;

#[test]
fn ml100k_split_and_ndcg_floor() {
    let dir = default_data_dir();
    if !Dataset::Ml100k.path(&dir).exists() {
        eprintln!(
            "skipped: {} not found (set CANDOR_SHARED_DATA)",
            dir.display()
        );
        return;
    }
    let split = eval1_split(Dataset::Ml100k.load(&dir).unwrap()).unwrap();
    // the figures peer_eval1.py reports for the same file
    assert_eq!(split.users.len(), 943);
    assert_eq!(split.items.len(), 1613);
    assert_eq!(split.counts(), (80_367, 19_547, 86));
    assert_eq!(split.eval_users.len(), 943);

    // popularity is deterministic on both sides: ours must equal peer_eval1.py's 0.115826
    let pop = run_model(&split, ModelSpec::Popularity).unwrap();
    assert!(
        (pop.metrics.ndcg - 0.115826).abs() < 1e-5,
        "{:?}",
        pop.metrics
    );

    // implicit.CosineRecommender(K=50) reaches 0.1845 here; the tuned default must beat it
    let knn = run_model(&split, ModelSpec::ItemKnn(KnnParams::default())).unwrap();
    assert!(knn.metrics.ndcg > 0.20, "{:?}", knn.metrics);
    assert_eq!(knn.metrics.n_short_lists, 0);

    // the serving pipeline, calibrated on odd users and checked on even ones: the mean
    // confidence must match the observed hit rate (precision) of what it returns
    let n = split.items.len();
    let catalog = Catalog {
        item_ids: split.items.clone(),
        titles: split.items.clone(),
        item_category: vec![0; n],
        category_names: vec!["Movies".into()],
        category_sensitive: vec![false],
        item_group: Vec::new(),
    };
    let config = ServeConfig {
        category_cap: 10,
        exploration_slot: false,
        ..ServeConfig::default()
    };
    let knn = ItemKnn::fit(&split.train, KnnParams::default());
    let engine = Engine::new(
        catalog,
        &split.train.col_counts(),
        Some(knn),
        "t".into(),
        config,
    )
    .unwrap();
    let case = |u: u32| {
        let req = Request {
            level: Level::Full,
            consent: Consent {
                behaviour: true,
                declared: true,
            },
            history: split.train.row(u as usize),
            history_ts: &split.train_ts[u as usize],
            history_kinds: &[],
            declared: &[],
            sensitive_opt_in: &[],
            owned: &[],
            k: 10,
            seed: 0,
        };
        (req, split.test[u as usize].as_slice())
    };
    let cal = Calibration::fit_engine(
        &engine,
        split
            .eval_users
            .iter()
            .filter(|u| *u % 2 == 1)
            .map(|&u| case(u)),
    );
    let engine = engine.with_calibration(cal);
    let (mut conf, mut hits, mut n_items) = (0.0f64, 0usize, 0usize);
    for &u in split.eval_users.iter().filter(|u| *u % 2 == 0) {
        let (req, test) = case(u);
        let resp = engine.recommend(&req);
        assert!(resp.calibrated);
        for it in resp.items {
            conf += f64::from(it.confidence);
            hits += usize::from(test.binary_search(&it.item).is_ok());
            n_items += 1;
        }
    }
    let (mean_conf, hit_rate) = (conf / n_items as f64, hits as f64 / n_items as f64);
    assert!(
        (mean_conf - hit_rate).abs() < 0.03,
        "confidence {mean_conf:.3} vs hit rate {hit_rate:.3}"
    );
}

/// EVAL-1 through the serving pipeline at level `full` (serving defaults: MMR, category cap,
/// exploration slot), every category one bucket so diversity is by item only.
fn served_ndcg(
    split: &candor_recommend::split::Split,
    model: candor_recommend::serve::FullModel,
) -> f64 {
    let n = split.items.len();
    let catalog = Catalog {
        item_ids: split.items.clone(),
        titles: split.items.clone(),
        item_category: vec![0; n],
        category_names: vec!["all".into()],
        category_sensitive: vec![false],
        item_group: vec![],
    };
    let cfg = ServeConfig {
        category_cap: 10,
        exploration_slot: false,
        ..ServeConfig::default()
    };
    let engine = Engine::with_model(
        catalog,
        &split.train.col_counts(),
        Some(model),
        "t".into(),
        cfg,
    )
    .unwrap();
    let recs: Vec<Vec<u32>> = split
        .eval_users
        .iter()
        .map(|&u| {
            let h = split.train.row(u as usize);
            let resp = engine.recommend(&Request {
                level: Level::Full,
                consent: Consent {
                    behaviour: true,
                    declared: true,
                },
                history: h,
                history_ts: &split.train_ts[u as usize],
                history_kinds: &[],
                declared: &[],
                sensitive_opt_in: &[],
                owned: h,
                k: 10,
                seed: 0,
            });
            // factor answers are explained by the person's own items, never by a factor
            for it in &resp.items {
                assert!(!it.reasons.is_empty());
            }
            resp.items.iter().map(|r| r.item).collect()
        })
        .collect();
    let tests: Vec<&[u32]> = split
        .eval_users
        .iter()
        .map(|&u| split.test[u as usize].as_slice())
        .collect();
    candor_recommend::metrics::evaluate(&recs, &tests, n, 10).ndcg
}

#[test]
fn ml100k_als_and_selected_model_floors() {
    use candor_recommend::models::{Als, AlsParams, Model};
    use candor_recommend::select::{SelectParams, select};
    use candor_recommend::serve::{Factors, FullModel};
    let dir = default_data_dir();
    if !Dataset::Ml100k.path(&dir).exists() {
        eprintln!("skipped: {} not found", dir.display());
        return;
    }
    let split = eval1_split(Dataset::Ml100k.load(&dir).unwrap()).unwrap();
    // bare ALS (docs/benchmarks/recommend.md: 0.1753; implicit's 0.1744)
    let als = run_model(&split, ModelSpec::Als(AlsParams::default())).unwrap();
    assert!(als.metrics.ndcg > 0.170, "{:?}", als.metrics);
    // ALS served (fold-in from the history at request time, no trained subject factor)
    let fitted = Als::fit(&split.train, AlsParams::default()).unwrap();
    let served = served_ndcg(&split, FullModel::Factors(Factors::new(fitted)));
    eprintln!("ALS served NDCG@10 {served:.4}");
    assert!(served > SERVED_ALS_FLOOR, "{served}");

    // selection on a time-cut slice of the training data only
    let n = split.items.len();
    let catalog = Catalog {
        item_ids: split.items.clone(),
        titles: split.items.clone(),
        item_category: vec![0; n],
        category_names: vec!["all".into()],
        category_sensitive: vec![false],
        item_group: vec![],
    };
    let rows: Vec<Vec<u32>> = (0..split.train.n_rows())
        .map(|u| split.train.row(u).to_vec())
        .collect();
    let cfg = ServeConfig {
        category_cap: 10,
        exploration_slot: false,
        ..ServeConfig::default()
    };
    let chosen = select(
        &catalog,
        &rows,
        &split.train_ts,
        &cfg,
        &SelectParams::default(),
    )
    .unwrap();
    let full = &chosen.selection.levels[0];
    eprintln!("{:?}", chosen.selection);
    assert_eq!(
        full.figures.len(),
        5,
        "kNN, ALS and three blends were judged"
    );
    let model = match chosen.model {
        Model::ItemKnn(m) => FullModel::Knn(m),
        Model::Als(m) => FullModel::Factors(Factors::new(m)),
        Model::Blend(b) => FullModel::Blend {
            knn: b.knn,
            factors: Factors::new(b.als),
            knn_weight: b.knn_weight,
        },
        other => panic!("selection chose {:?}", other.kind()),
    };
    let served = served_ndcg(&split, model);
    eprintln!("selected ({}) served NDCG@10 {served:.4}", full.chosen);
    assert!(served > SERVED_SELECTED_FLOOR, "{served}");
}

/// Just below the measured figures (see docs/BENCHMARKS.md), so a regression fails.
const SERVED_ALS_FLOOR: f64 = 0.175; // measured 0.1793
const SERVED_SELECTED_FLOOR: f64 = 0.225; // measured 0.2313 (blend w=0.50)
