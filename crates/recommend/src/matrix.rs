//! A compressed sparse row (CSR) interaction matrix of consented, binary interactions.
//!
//! Invariants: `indptr.len() == n_rows + 1`, `indptr` is non-decreasing and ends at
//! `indices.len()`; every index is `< n_cols`; a row never holds the same column twice.
//! Within a row the order is the order the caller gave (the split keeps users' histories
//! oldest first, which the recency-aware models rely on); no code may assume rows are sorted.

use crate::error::{RecError, Result};

/// Binary sparse matrix, rows x cols (users x items for training data).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Interactions {
    n_rows: usize,
    n_cols: usize,
    indptr: Vec<usize>,
    indices: Vec<u32>,
}

impl Interactions {
    /// Builds from one list of column indices per row. Duplicates inside a row are dropped,
    /// keeping the first occurrence (a repeated purchase does not count twice: EVAL-1 is binary).
    pub fn from_rows<R: AsRef<[u32]>>(n_cols: usize, rows: &[R]) -> Result<Self> {
        let mut indptr = Vec::with_capacity(rows.len() + 1);
        let mut indices = Vec::new();
        let mut seen = vec![false; n_cols];
        indptr.push(0);
        for (r, row) in rows.iter().enumerate() {
            let start = indices.len();
            for &c in row.as_ref() {
                let cu = c as usize;
                if cu >= n_cols {
                    return Err(RecError::Invalid(format!(
                        "row {r}: column {c} out of range (n_cols = {n_cols})"
                    )));
                }
                if !seen[cu] {
                    seen[cu] = true;
                    indices.push(c);
                }
            }
            for &c in &indices[start..] {
                seen[c as usize] = false;
            }
            indptr.push(indices.len());
        }
        Ok(Interactions {
            n_rows: rows.len(),
            n_cols,
            indptr,
            indices,
        })
    }

    pub fn n_rows(&self) -> usize {
        self.n_rows
    }

    pub fn n_cols(&self) -> usize {
        self.n_cols
    }

    pub fn nnz(&self) -> usize {
        self.indices.len()
    }

    /// Column indices of row `r`, in insertion order.
    pub fn row(&self, r: usize) -> &[u32] {
        &self.indices[self.indptr[r]..self.indptr[r + 1]]
    }

    /// Number of entries per column (for items: how many users interacted).
    pub fn col_counts(&self) -> Vec<u32> {
        let mut c = vec![0u32; self.n_cols];
        for &i in &self.indices {
            c[i as usize] += 1;
        }
        c
    }

    /// The transpose (items x users); each transposed row lists rows in ascending order.
    pub fn transpose(&self) -> Interactions {
        let counts = self.col_counts();
        let mut indptr = Vec::with_capacity(self.n_cols + 1);
        indptr.push(0usize);
        for &c in &counts {
            indptr.push(indptr.last().copied().unwrap_or(0) + c as usize);
        }
        let mut next = indptr.clone();
        let mut indices = vec![0u32; self.nnz()];
        for r in 0..self.n_rows {
            for &c in self.row(r) {
                let slot = &mut next[c as usize];
                indices[*slot] = r as u32;
                *slot += 1;
            }
        }
        Interactions {
            n_rows: self.n_cols,
            n_cols: self.n_rows,
            indptr,
            indices,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_dedups_and_transposes() {
        let m = Interactions::from_rows(3, &[vec![2, 0, 2], vec![], vec![1, 0]]).unwrap();
        assert_eq!(m.row(0), &[2, 0]);
        assert_eq!(m.row(1), &[] as &[u32]);
        assert_eq!(m.nnz(), 4);
        let t = m.transpose();
        assert_eq!((t.n_rows(), t.n_cols()), (3, 3));
        assert_eq!(t.row(0), &[0, 2]);
        assert_eq!(t.row(1), &[2]);
        assert_eq!(t.row(2), &[0]);
        assert!(Interactions::from_rows(2, &[vec![2]]).is_err());
    }
}
