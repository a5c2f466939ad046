//! Seeded, deterministic bootstrap of the confusion cells.
//!
//! Invariant: the same statistics, seed and replicate count give bit-identical intervals on every
//! machine and thread count (the generator is specified here, not borrowed from a crate whose
//! stream may change between versions).
//!
//! Why cells and not rows: resampling N rows with replacement and then counting them per
//! (group, selected, label) cell is the same as drawing the cell counts from a multinomial with the
//! observed cell frequencies. Count-based metrics only depend on those counts, so a replicate costs
//! O(cells) instead of O(rows), and 1,000 replicates over 10 million rows take milliseconds. With
//! sample weights, a resampled cell's weight is its count times the cell's mean weight, which
//! ignores the spread of weights inside a cell (documented in docs/FAIRNESS.md).

use serde::{Deserialize, Serialize};

use crate::stats::{Cell, Counts};

/// Bootstrap settings.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Bootstrap {
    /// Number of replicates; 0 turns confidence intervals off.
    pub replicates: usize,
    /// Two-sided confidence level, e.g. 0.95.
    pub confidence: f64,
    pub seed: u64,
}

impl Default for Bootstrap {
    fn default() -> Self {
        Bootstrap {
            replicates: 1000,
            confidence: 0.95,
            seed: 42,
        }
    }
}

/// xoshiro256++ seeded by SplitMix64 — small, fast and fully specified.
#[derive(Clone, Debug)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    pub fn new(seed: u64) -> Self {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Rng {
            s: [next(), next(), next(), next()],
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in (0, 1]: never zero, so `ln` is always finite.
    pub fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    /// Uniform integer in 0..n (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }

    fn normal(&mut self) -> f64 {
        let u1 = self.uniform();
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Binomial(n, p). Exact (geometric waiting times) when the expected count of the rarer outcome
    /// is below 30; otherwise the normal approximation, whose error at that size is far below the
    /// bootstrap's own sampling noise.
    pub fn binomial(&mut self, n: u64, p: f64) -> u64 {
        if n == 0 || p <= 0.0 {
            return 0;
        }
        if p >= 1.0 {
            return n;
        }
        if p > 0.5 {
            return n - self.binomial(n, 1.0 - p);
        }
        let mean = n as f64 * p;
        if mean < 30.0 {
            let log_q = (1.0 - p).ln();
            let mut successes = 0u64;
            let mut position = 0.0f64;
            loop {
                position += (self.uniform().ln() / log_q).floor() + 1.0;
                if position > n as f64 {
                    return successes;
                }
                successes += 1;
            }
        }
        let sd = (mean * (1.0 - p)).sqrt();
        (mean + sd * self.normal()).round().clamp(0.0, n as f64) as u64
    }
}

/// One bootstrap replicate of every group's cells: N rows drawn with replacement from all groups.
pub fn resample(groups: &[Counts], rng: &mut Rng) -> Vec<Counts> {
    let total: u64 = groups.iter().map(Counts::n).sum();
    let mut remaining_rows = total;
    let mut remaining_draws = total;
    let mut out = vec![Counts::default(); groups.len()];
    for (g, o) in groups.iter().zip(out.iter_mut()) {
        for (c, oc) in g.cells.iter().zip(o.cells.iter_mut()) {
            if c.n == 0 || remaining_draws == 0 {
                remaining_rows -= c.n;
                continue;
            }
            // Conditional binomial: this cell's share of the rows not yet assigned.
            let k = self_binomial(rng, remaining_draws, c.n, remaining_rows);
            remaining_rows -= c.n;
            remaining_draws -= k;
            *oc = Cell {
                n: k,
                w: k as f64 * (c.w / c.n as f64),
            };
        }
    }
    out
}

fn self_binomial(rng: &mut Rng, draws: u64, cell: u64, rows_left: u64) -> u64 {
    if cell >= rows_left {
        draws
    } else {
        rng.binomial(draws, cell as f64 / rows_left as f64)
    }
}

/// Percentile interval (linear interpolation, as numpy's default `quantile`).
pub fn percentile_interval(values: &mut [f64], confidence: f64) -> Option<[f64; 2]> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let alpha = (1.0 - confidence) / 2.0;
    Some([quantile(values, alpha), quantile(values, 1.0 - alpha)])
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resample_preserves_total_and_is_deterministic() {
        let mut g = Counts::default();
        for i in 0..1000 {
            g.add(i % 3 == 0, i % 2, 1.0);
        }
        let mut h = Counts::default();
        for i in 0..10 {
            h.add(i % 2 == 0, 1, 2.0);
        }
        let a = resample(&[g, h], &mut Rng::new(7));
        let b = resample(&[g, h], &mut Rng::new(7));
        assert_eq!(a, b);
        assert_eq!(a.iter().map(Counts::n).sum::<u64>(), 1010);
    }

    #[test]
    fn binomial_mean_is_right() {
        let mut rng = Rng::new(1);
        for &(n, p) in &[(20u64, 0.1f64), (1000, 0.3), (100_000, 0.9)] {
            let m: f64 = (0..4000).map(|_| rng.binomial(n, p) as f64).sum::<f64>() / 4000.0;
            let sd = (n as f64 * p * (1.0 - p) / 4000.0).sqrt();
            assert!((m - n as f64 * p).abs() < 5.0 * sd, "n={n} p={p} mean={m}");
        }
    }

    #[test]
    fn interval_interpolates() {
        let mut v: Vec<f64> = (0..=100).map(f64::from).collect();
        let [lo, hi] = percentile_interval(&mut v, 0.9).unwrap();
        assert!((lo - 5.0).abs() < 1e-9 && (hi - 95.0).abs() < 1e-9);
    }
}
