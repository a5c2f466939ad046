//! Small dense f32 kernels used by ALS and scoring.
//!
//! Written with 16 independent accumulators so LLVM vectorizes them (float addition is not
//! associative, so a single accumulator would stay scalar). They are `inline(always)` so that,
//! called inside a `pulp` dispatch, they are compiled with the detected features (AVX2+FMA)
//! rather than the x86-64 baseline.

const L: usize = 16;

/// Dot product of two equal-length slices.
#[inline(always)]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let mut acc = [0f32; L];
    let (ca, cb) = (a.chunks_exact(L), b.chunks_exact(L));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for j in 0..L {
            acc[j] += x[j] * y[j];
        }
    }
    let mut s = 0f32;
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    // pairwise tree sum of the lanes, fixed order (deterministic)
    let mut w = L;
    while w > 1 {
        w /= 2;
        for j in 0..w {
            acc[j] += acc[j + w];
        }
    }
    acc[0] + s
}

/// `y += alpha * x`.
#[inline(always)]
pub fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    debug_assert_eq!(x.len(), y.len());
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += alpha * xi;
    }
}

/// `out = m * v` for a row-major square `k x k` matrix.
#[inline(always)]
pub fn matvec(m: &[f32], v: &[f32], out: &mut [f32]) {
    let k = v.len();
    for (o, row) in out.iter_mut().zip(m.chunks_exact(k)) {
        *o = dot(row, v);
    }
}

/// Gram matrix `F^T F` of row-major `n x k` factors, plus `reg` on the diagonal.
pub fn gram(f: &[f32], k: usize, reg: f32) -> Vec<f32> {
    let mut g = vec![0f32; k * k];
    for row in f.chunks_exact(k) {
        for (a, &ra) in row.iter().enumerate() {
            axpy(ra, row, &mut g[a * k..(a + 1) * k]);
        }
    }
    for a in 0..k {
        g[a * k + a] += reg;
    }
    g
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_match_naive() {
        let a: Vec<f32> = (0..37).map(|i| i as f32 * 0.5).collect();
        let b: Vec<f32> = (0..37).map(|i| 1.0 - i as f32 * 0.1).collect();
        let naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - naive).abs() < 1e-3);
        let f = [1.0, 2.0, 3.0, 4.0]; // 2 x 2
        assert_eq!(gram(&f, 2, 0.5), vec![10.5, 14.0, 14.0, 20.5]);
    }
}
