//! Implicit-feedback matrix factorisation, alternating least squares (Hu, Koren, Volinsky 2008).
//!
//! Loss: `sum_{u,i} c_ui (p_ui - x_u . y_i)^2 + reg (|X|^2 + |Y|^2)` with `p_ui = 1` for observed
//! pairs (else 0) and, following `implicit`'s convention, `c_ui = alpha` for observed pairs and 1
//! otherwise. Each half-step solves, for every row,
//! `(Y^T Y + reg I + (alpha - 1) sum_{i in u} y_i y_i^T) x_u = alpha sum_{i in u} y_i`
//! either with a few warm-started conjugate-gradient steps (`implicit`'s default, 3 steps) or
//! exactly with a Cholesky factorisation (faer).
//!
//! Invariants: factors are row-major `n x factors`; initial factors are uniform in
//! `[0, 0.01)` from a seeded generator with one stream per row, and every row is solved
//! independently from read-only data, so results are identical for any thread count.

use faer::linalg::solvers::{Llt, Solve};
use faer::{Mat, Side};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{RecError, Result};
use crate::kernels::{axpy, dot, gram, matvec};
use crate::matrix::Interactions;
use crate::models::{Query, Scorer};
use crate::rng::SplitMix64;

/// How each least-squares row problem is solved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum AlsSolver {
    /// Warm-started conjugate gradient with this many steps per row and half-iteration.
    Cg { steps: usize },
    /// Exact solve via Cholesky (faer `llt`); slower, for checking and small data.
    Cholesky,
}

impl std::fmt::Display for AlsSolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AlsSolver::Cg { steps: 1 } => f.write_str("conjugate gradient 1 step"),
            AlsSolver::Cg { steps } => write!(f, "conjugate gradient {steps} steps"),
            AlsSolver::Cholesky => f.write_str("exact Cholesky"),
        }
    }
}

/// Hyper-parameters of [`Als`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AlsParams {
    pub factors: usize,
    pub iterations: usize,
    pub regularization: f32,
    /// Confidence of an observed interaction (implicit's `alpha`; 1 = plain weighted MF).
    pub alpha: f32,
    pub solver: AlsSolver,
    pub seed: u64,
}

impl Default for AlsParams {
    fn default() -> Self {
        AlsParams {
            factors: 64,
            iterations: 15,
            regularization: 0.01,
            alpha: 1.0,
            solver: AlsSolver::Cg { steps: 3 },
            seed: 42,
        }
    }
}

/// A fitted ALS model.
#[derive(Debug, Clone, PartialEq)]
pub struct Als {
    pub params: AlsParams,
    pub n_users: usize,
    pub n_items: usize,
    /// `n_users x factors`, row-major.
    pub user_factors: Vec<f32>,
    /// `n_items x factors`, row-major.
    pub item_factors: Vec<f32>,
}

impl Als {
    /// Fits on users x items training data. Runs on the current rayon pool.
    pub fn fit(train: &Interactions, params: AlsParams) -> Result<Als> {
        let k = params.factors;
        if k == 0 || params.regularization < 0.0 || params.alpha <= 0.0 {
            return Err(RecError::Invalid(format!(
                "ALS needs factors > 0, regularization >= 0, alpha > 0 (got {params:?})"
            )));
        }
        let (n_users, n_items) = (train.n_rows(), train.n_cols());
        let by_item = train.transpose();
        let init = |n: usize, stream0: u64| -> Vec<f32> {
            let mut f = vec![0f32; n * k];
            f.par_chunks_mut(k).enumerate().for_each(|(r, row)| {
                let mut g = SplitMix64::for_stream(params.seed, stream0 + r as u64);
                for v in row {
                    *v = g.next_f32() * 0.01;
                }
            });
            f
        };
        let mut x = init(n_users, 0);
        let mut y = init(n_items, n_users as u64);
        for _ in 0..params.iterations {
            solve_side(train, &mut x, &y, &params)?;
            solve_side(&by_item, &mut y, &x, &params)?;
        }
        Ok(Als {
            params,
            n_users,
            n_items,
            user_factors: x,
            item_factors: y,
        })
    }

    pub fn factors(&self) -> usize {
        self.params.factors
    }

    pub fn item_factor(&self, i: u32) -> &[f32] {
        let k = self.params.factors;
        &self.item_factors[i as usize * k..(i as usize + 1) * k]
    }

    /// A subject's factor from its history alone (exact solve against the item factors);
    /// used for subjects who were not in training or whose history changed since.
    pub fn fold_in(&self, history: &[u32]) -> Result<Vec<f32>> {
        Ok(self.fold_in_with(&self.gram(), history)?.x)
    }

    /// `YᵀY + reg I`, the part of every fold-in system shared by all subjects: computed once
    /// per model and kept, so a fold-in costs `O(|history| k² + k³)`, not `O(items k²)`.
    pub fn gram(&self) -> Vec<f32> {
        parallel_gram(
            &self.item_factors,
            self.params.factors,
            self.params.regularization,
        )
    }

    /// [`Als::fold_in`] against a cached [`Als::gram`], keeping the factorised system so that
    /// each history entry's part of a score can be read back ([`FoldIn::parts`]).
    pub fn fold_in_with(&self, gram: &[f32], history: &[u32]) -> Result<FoldIn> {
        let items: Vec<u32> = history
            .iter()
            .copied()
            .filter(|&i| (i as usize) < self.n_items)
            .collect();
        let (llt, b) = system(
            gram,
            &self.item_factors,
            &items,
            self.params.alpha,
            self.params.factors,
        )?;
        let x = solve_with(&llt, &b);
        Ok(FoldIn {
            x,
            llt,
            alpha: self.params.alpha,
        })
    }

    /// Training loss (the objective above), for convergence checks.
    pub fn loss(&self, train: &Interactions) -> f64 {
        let k = self.params.factors;
        let c = self.params.alpha as f64;
        let mut total = 0.0f64;
        for u in 0..self.n_users {
            let xu = &self.user_factors[u * k..(u + 1) * k];
            let mut seen = vec![false; self.n_items];
            for &i in train.row(u) {
                seen[i as usize] = true;
            }
            for (i, yi) in self.item_factors.chunks_exact(k).enumerate() {
                let pred = dot(xu, yi) as f64;
                total += if seen[i] {
                    c * (1.0 - pred).powi(2)
                } else {
                    pred * pred
                };
            }
        }
        let sq = |f: &[f32]| f.iter().map(|v| (*v as f64).powi(2)).sum::<f64>();
        total
            + self.params.regularization as f64 * (sq(&self.user_factors) + sq(&self.item_factors))
    }
}

/// Re-solves every row of `x` (one per row of `m`) against fixed `y`.
fn solve_side(m: &Interactions, x: &mut [f32], y: &[f32], p: &AlsParams) -> Result<()> {
    let k = p.factors;
    let g = parallel_gram(y, k, p.regularization);
    let failures = match p.solver {
        AlsSolver::Cg { steps } => {
            x.par_chunks_mut(k).enumerate().for_each_init(
                || vec![0f32; 3 * k],
                |scratch, (r, xr)| {
                    pulp::Arch::new().dispatch(CgRow {
                        g: &g,
                        y,
                        items: m.row(r),
                        c: p.alpha,
                        steps,
                        x: xr,
                        scratch,
                    })
                },
            );
            0
        }
        AlsSolver::Cholesky => x
            .par_chunks_mut(k)
            .enumerate()
            .map(|(r, xr)| usize::from(solve_exact(&g, y, m.row(r), p.alpha, xr).is_err()))
            .sum(),
    };
    if failures > 0 {
        return Err(RecError::Linalg(format!(
            "{failures} row systems were not positive definite (regularization too small?)"
        )));
    }
    Ok(())
}

/// `F^T F + reg I`, summed over fixed blocks in a fixed order (deterministic under rayon).
fn parallel_gram(f: &[f32], k: usize, reg: f32) -> Vec<f32> {
    const BLOCK: usize = 512;
    let parts: Vec<Vec<f32>> = f
        .par_chunks(BLOCK * k)
        .map(|blk| gram(blk, k, 0.0))
        .collect();
    let mut g = vec![0f32; k * k];
    for part in parts {
        axpy(1.0, &part, &mut g);
    }
    for a in 0..k {
        g[a * k + a] += reg;
    }
    g
}

/// One row's CG solve as a `pulp` operation: the body is compiled once per instruction set and
/// the best one available at run time is used (safe code; pulp does the feature detection).
struct CgRow<'a> {
    g: &'a [f32],
    y: &'a [f32],
    items: &'a [u32],
    c: f32,
    steps: usize,
    x: &'a mut [f32],
    scratch: &'a mut [f32],
}

impl pulp::WithSimd for CgRow<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        cg_row(
            self.g,
            self.y,
            self.items,
            self.c,
            self.steps,
            self.x,
            self.scratch,
        )
    }
}

/// Conjugate gradient on one row, warm-started from the current `x`, exactly as implicit's
/// `least_squares_cg` (so results and costs are comparable).
#[inline(always)]
fn cg_row(
    g: &[f32],
    y: &[f32],
    items: &[u32],
    c: f32,
    steps: usize,
    x: &mut [f32],
    scratch: &mut [f32],
) {
    let k = x.len();
    let (r, rest) = scratch.split_at_mut(k);
    let (p, ap) = rest.split_at_mut(k);
    // r = b - A x = sum_i (c - (c - 1) y_i.x) y_i - (YtY + reg) x
    matvec(g, x, r);
    r.iter_mut().for_each(|v| *v = -*v);
    for &i in items {
        let yi = &y[i as usize * k..(i as usize + 1) * k];
        axpy(c - (c - 1.0) * dot(yi, x), yi, r);
    }
    p.copy_from_slice(r);
    let mut rs_old = dot(r, r);
    if rs_old < 1e-20 {
        return;
    }
    for _ in 0..steps {
        // Ap without forming A
        matvec(g, p, ap);
        if c != 1.0 {
            for &i in items {
                let yi = &y[i as usize * k..(i as usize + 1) * k];
                axpy((c - 1.0) * dot(yi, p), yi, ap);
            }
        }
        let step = rs_old / dot(p, ap);
        axpy(step, p, x);
        axpy(-step, ap, r);
        let rs_new = dot(r, r);
        if rs_new < 1e-20 {
            break;
        }
        let beta = rs_new / rs_old;
        for (pv, rv) in p.iter_mut().zip(r.iter()) {
            *pv = rv + beta * *pv;
        }
        rs_old = rs_new;
    }
}

/// A folded-in subject: the factor `x = A⁻¹ b` with `A = YᵀY + reg I + (alpha - 1) Σ y_h y_hᵀ`
/// and `b = alpha Σ y_h`, and the Cholesky factor of `A`.
pub struct FoldIn {
    pub x: Vec<f32>,
    llt: Llt<f32>,
    alpha: f32,
}

impl FoldIn {
    /// The part of the score `x · y_j` owed to each history entry, in `history` order. The
    /// score is linear in the entries, `x · y_j = Σ_h alpha y_h · (A⁻¹ y_j)`, so the parts add
    /// up to it exactly: an explanation names the items that really carry a factor score.
    pub fn parts(&self, item_factors: &[f32], history: &[u32], y_j: &[f32]) -> Vec<f32> {
        let k = self.x.len();
        let z = solve_with(&self.llt, y_j);
        history
            .iter()
            .map(|&h| {
                item_factors
                    .get(h as usize * k..(h as usize + 1) * k)
                    .map_or(0.0, |y_h| self.alpha * dot(y_h, &z))
            })
            .collect()
    }
}

/// Builds one row system `A x = b` and factorises `A` (faer's Cholesky).
fn system(g: &[f32], y: &[f32], items: &[u32], c: f32, k: usize) -> Result<(Llt<f32>, Vec<f32>)> {
    let mut a = g.to_vec();
    let mut b = vec![0f32; k];
    for &i in items {
        let yi = &y[i as usize * k..(i as usize + 1) * k];
        axpy(c, yi, &mut b);
        if c != 1.0 {
            for (ai, &ya) in yi.iter().enumerate() {
                axpy((c - 1.0) * ya, yi, &mut a[ai * k..(ai + 1) * k]);
            }
        }
    }
    let a = Mat::<f32>::from_fn(k, k, |i, j| a[i * k + j]);
    let llt = a
        .llt(Side::Lower)
        .map_err(|e| RecError::Linalg(format!("{e:?}")))?;
    Ok((llt, b))
}

fn solve_with(llt: &Llt<f32>, b: &[f32]) -> Vec<f32> {
    let mut rhs = Mat::<f32>::from_fn(b.len(), 1, |i, _| b[i]);
    llt.solve_in_place(&mut rhs);
    (0..b.len()).map(|i| rhs[(i, 0)]).collect()
}

/// Exact solve of one row system with faer's Cholesky.
fn solve_exact(g: &[f32], y: &[f32], items: &[u32], c: f32, out: &mut [f32]) -> Result<()> {
    let (llt, b) = system(g, y, items, c, out.len())?;
    out.copy_from_slice(&solve_with(&llt, &b));
    Ok(())
}

impl Scorer for Als {
    fn n_items(&self) -> usize {
        self.n_items
    }
    fn score(&self, query: &Query<'_>, scores: &mut [f32]) {
        let k = self.params.factors;
        let folded;
        let xu: &[f32] = match query.user {
            Some(u) if (u as usize) < self.n_users => {
                &self.user_factors[u as usize * k..(u as usize + 1) * k]
            }
            _ => {
                // a subject outside training: fold in; an unsolvable system scores nothing
                folded = self.fold_in(query.history).unwrap_or_else(|_| vec![0.0; k]);
                &folded
            }
        };
        for (s, yi) in scores.iter_mut().zip(self.item_factors.chunks_exact(k)) {
            *s = dot(xu, yi);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::recommend;

    fn blocks() -> Interactions {
        // two taste groups: users 0-2 like items 0-2, users 3-5 like items 3-5; user 2 has
        // not seen item 2 yet and user 5 has not seen item 5
        Interactions::from_rows(
            6,
            &[
                vec![0, 1, 2],
                vec![0, 1, 2],
                vec![0, 1],
                vec![3, 4, 5],
                vec![3, 4, 5],
                vec![3, 4],
            ],
        )
        .unwrap()
    }

    #[test]
    fn cg_loss_decreases_and_recovers_blocks() {
        let train = blocks();
        let p = AlsParams {
            factors: 4,
            iterations: 1,
            regularization: 0.05,
            alpha: 10.0,
            ..AlsParams::default()
        };
        let l1 = Als::fit(&train, p).unwrap().loss(&train);
        let m = Als::fit(
            &train,
            AlsParams {
                iterations: 20,
                ..p
            },
        )
        .unwrap();
        let l20 = m.loss(&train);
        assert!(l20 < l1, "loss {l20} !< {l1}");
        let top = recommend(
            &m,
            &Query {
                user: Some(2),
                history: train.row(2),
                ..Query::default()
            },
            1,
        );
        assert_eq!(top[0].0, 2);
        let top = recommend(
            &m,
            &Query {
                user: Some(5),
                history: train.row(5),
                ..Query::default()
            },
            1,
        );
        assert_eq!(top[0].0, 5);
        // fold-in from history alone agrees
        let top = recommend(
            &m,
            &Query {
                user: None,
                history: &[0, 1],
                ..Query::default()
            },
            1,
        );
        assert_eq!(top[0].0, 2);
    }

    #[test]
    fn cholesky_solves_exactly_and_cg_approaches_it() {
        let train = blocks();
        let p = AlsParams {
            factors: 3,
            iterations: 10,
            regularization: 0.1,
            alpha: 5.0,
            solver: AlsSolver::Cholesky,
            seed: 7,
        };
        let exact = Als::fit(&train, p).unwrap();
        let cg = Als::fit(
            &train,
            AlsParams {
                solver: AlsSolver::Cg { steps: 3 },
                ..p
            },
        )
        .unwrap();
        // with k = 3, three CG steps solve each row system exactly, so both agree closely
        for (a, b) in exact.user_factors.iter().zip(&cg.user_factors) {
            assert!((a - b).abs() < 1e-3, "{a} vs {b}");
        }
    }

    #[test]
    fn deterministic_across_thread_counts() {
        let train = blocks();
        let p = AlsParams {
            factors: 8,
            iterations: 3,
            ..AlsParams::default()
        };
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let two = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let a = one.install(|| Als::fit(&train, p)).unwrap();
        let b = two.install(|| Als::fit(&train, p)).unwrap();
        assert_eq!(a, b);
    }
}
