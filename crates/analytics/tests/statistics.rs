//! Statistical checks of the mechanisms over 10,000 releases each. OpenDP draws from its own
//! generator and takes no seed, so these are not seeded: each tolerance is about 4.5 standard
//! errors of its statistic, so a correct mechanism fails less than once in 100,000 runs, while a
//! scale off by 10% or an interval at the wrong level fails every time.

use candor_analytics::query::{Spend, plan};
use candor_analytics::{Aggregate, Bounds, Mechanism, Query, Row, run};

const GROUPS: usize = 100;
const RUNS: usize = 100; // GROUPS × RUNS = 10,000 released figures

/// Subjects: group g has 50 + 7g subjects, each with 3 rows there (only max_rows count).
fn data() -> (Vec<Vec<Row>>, Vec<f64>) {
    let mut subjects = Vec::new();
    let mut truth = vec![0.0; GROUPS];
    for (g, t) in truth.iter_mut().enumerate() {
        for s in 0..(50 + 7 * g) {
            let v = (s % 10) as f64;
            subjects.push(vec![
                Row {
                    group: g as u32,
                    value: v
                };
                3
            ]);
            *t += 2.0; // max_rows = 2 below
        }
    }
    (subjects, truth)
}

fn query(mechanism: Mechanism, aggregate: Aggregate) -> Query {
    Query {
        aggregate,
        mechanism,
        bounds: Bounds {
            max_rows: 2,
            max_groups: 1,
            lower: 0.0,
            upper: 9.0,
        },
        spend: Spend::Epsilon(0.5),
        delta: 1e-6,
        confidence: 0.95,
        rows: GROUPS,
        columns: 1,
        public_groups: true,
        k: 0.0,
    }
}

fn check(mechanism: Mechanism) {
    let (subjects, truth) = data();
    let q = query(mechanism, Aggregate::Count);
    let p = plan(&q).unwrap();
    let mut errors = Vec::with_capacity(GROUPS * RUNS);
    let mut covered = 0usize;
    for _ in 0..RUNS {
        let r = run(&q, &p, subjects.iter().map(Vec::as_slice)).unwrap();
        for (cell, t) in r.cells.iter().zip(&truth) {
            let v = cell.value.unwrap();
            errors.push(v - t);
            let [lo, hi] = cell.ci.unwrap();
            assert!((cell.noise_scale - p.noise.scale).abs() < 1e-12);
            if lo <= *t && *t <= hi {
                covered += 1;
            }
        }
    }
    let n = errors.len() as f64;
    let mean = errors.iter().sum::<f64>() / n;
    let sd = (errors.iter().map(|e| (e - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    let want = p.noise.std_dev();
    assert!(
        mean.abs() < 4.5 * want / n.sqrt(),
        "{mechanism:?}: mean error {mean}"
    );
    assert!(
        (sd / want - 1.0).abs() < 0.05,
        "{mechanism:?}: sd {sd}, stated {want}"
    );
    let rate = covered as f64 / n;
    assert!((rate - 0.95).abs() < 0.01, "{mechanism:?}: coverage {rate}");
}

#[test]
fn laplace_noise_matches_its_scale_and_intervals_cover_at_95_percent() {
    check(Mechanism::Laplace);
}

#[test]
fn gaussian_noise_matches_its_scale_and_intervals_cover_at_95_percent() {
    check(Mechanism::Gaussian);
}

#[test]
fn laplace_errors_follow_the_laplace_tail() {
    // P(|X| > b·ln 10) = 0.1 for Laplace(b): a Gaussian of the same sd would give 0.056.
    let (subjects, truth) = data();
    let q = query(Mechanism::Laplace, Aggregate::Count);
    let p = plan(&q).unwrap();
    let cut = p.noise.scale * 10f64.ln();
    let mut beyond = 0usize;
    for _ in 0..RUNS {
        let r = run(&q, &p, subjects.iter().map(Vec::as_slice)).unwrap();
        beyond += r
            .cells
            .iter()
            .zip(&truth)
            .filter(|(c, t)| (c.value.unwrap() - *t).abs() > cut)
            .count();
    }
    let rate = beyond as f64 / (GROUPS * RUNS) as f64;
    assert!((rate - 0.1).abs() < 0.0135, "tail rate {rate}");
}

#[test]
fn mean_intervals_cover_at_least_their_nominal_rate() {
    let (subjects, _) = data();
    let q = query(Mechanism::Laplace, Aggregate::Mean);
    let p = plan(&q).unwrap();
    assert!((p.cost.epsilon - 0.5).abs() < 1e-6, "{:?}", p.cost);
    // Every subject's values are s % 10 over its group's subjects: true mean per group.
    let truth: Vec<f64> = (0..GROUPS)
        .map(|g| {
            let n = 50 + 7 * g;
            (0..n).map(|s| (s % 10) as f64).sum::<f64>() / n as f64
        })
        .collect();
    let mut covered = 0usize;
    for _ in 0..RUNS {
        let r = run(&q, &p, subjects.iter().map(Vec::as_slice)).unwrap();
        for (c, t) in r.cells.iter().zip(&truth) {
            let [lo, hi] = c.ci.unwrap();
            covered += usize::from(lo <= *t && *t <= hi);
        }
    }
    let rate = covered as f64 / (GROUPS * RUNS) as f64;
    assert!(rate >= 0.94, "mean coverage {rate}");
}
