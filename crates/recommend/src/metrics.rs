//! EVAL-1 metrics: precision@k, recall@k, NDCG@k (binary gains), catalogue coverage@k.
//!
//! Definitions follow `peer_eval1.py` exactly: means over evaluated users; precision divides by
//! `k` even when a list is shorter; IDCG sums the first `min(k, |test|)` discounts.

use serde::Serialize;

/// Averages over the evaluated users.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Metrics {
    pub precision: f64,
    pub recall: f64,
    pub ndcg: f64,
    pub coverage: f64,
    pub n_users: usize,
    /// Users who received fewer than `k` items (too few candidates).
    pub n_short_lists: usize,
}

/// `recs[n]` and `tests[n]` belong to the same evaluated user; test sets must be sorted.
pub fn evaluate(recs: &[Vec<u32>], tests: &[&[u32]], n_train_items: usize, k: usize) -> Metrics {
    assert_eq!(recs.len(), tests.len(), "one list per evaluated user");
    let discount: Vec<f64> = (0..k).map(|r| 1.0 / ((r + 2) as f64).log2()).collect();
    let (mut p, mut r, mut n) = (0.0, 0.0, 0.0);
    let mut short = 0;
    let mut covered = vec![false; n_train_items];
    for (list, test) in recs.iter().zip(tests) {
        if list.len() < k {
            short += 1;
        }
        let mut hits = 0usize;
        let mut dcg = 0.0;
        for (rank, &it) in list.iter().take(k).enumerate() {
            covered[it as usize] = true;
            if test.binary_search(&it).is_ok() {
                hits += 1;
                dcg += discount[rank];
            }
        }
        let idcg: f64 = discount[..k.min(test.len())].iter().sum();
        p += hits as f64 / k as f64;
        r += hits as f64 / test.len() as f64;
        n += dcg / idcg;
    }
    let users = recs.len().max(1) as f64;
    Metrics {
        precision: p / users,
        recall: r / users,
        ndcg: n / users,
        coverage: covered.iter().filter(|c| **c).count() as f64 / n_train_items.max(1) as f64,
        n_users: recs.len(),
        n_short_lists: short,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_checked_values() {
        // user 1: hits at ranks 1 and 3 of 3 recs, |test| = 2
        //   p = 2/10, r = 1, dcg = 1 + 1/log2(4) = 1.5, idcg = 1 + 1/log2(3)
        // user 2: no hit, |test| = 1
        let recs = vec![vec![0, 5, 2], vec![3]];
        let tests: Vec<&[u32]> = vec![&[0, 2], &[9]];
        let m = evaluate(&recs, &tests, 10, 10);
        let idcg = 1.0 + 1.0 / 3f64.log2();
        assert!((m.precision - 0.1).abs() < 1e-12);
        assert!((m.recall - 0.5).abs() < 1e-12);
        assert!((m.ndcg - 1.5 / idcg / 2.0).abs() < 1e-12);
        assert!((m.coverage - 0.4).abs() < 1e-12);
        assert_eq!(m.n_short_lists, 2);
    }

    #[test]
    fn perfect_list_has_ndcg_one() {
        let recs = vec![(0..10).collect::<Vec<u32>>()];
        let test: Vec<u32> = (0..15).collect();
        let m = evaluate(&recs, &[&test], 20, 10);
        assert!((m.ndcg - 1.0).abs() < 1e-12);
        assert!((m.precision - 1.0).abs() < 1e-12);
    }
}
