//! Small-cell suppression on noisy outputs, with complementary suppression.
//!
//! Invariants:
//! - Only released (noisy) figures are compared to the threshold, never true counts, so
//!   suppression is post-processing and the DP guarantee is untouched.
//! - After [`suppress`], no released total has exactly one suppressed cell under it: a lone
//!   suppressed cell could be recovered as the total minus its released neighbours, so a second
//!   cell (the smallest released one, which loses the least) is suppressed with it. A line whose
//!   only cell is suppressed has its total suppressed instead.

use serde::Serialize;

/// The CMS cell-size rule: counts from 1 to 10 are not shown.
pub const DEFAULT_K: f64 = 11.0;

/// Why a cell is or is not shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Suppression {
    Shown,
    /// Its noisy figure is below k.
    SmallCell,
    /// Shown alone it would let a suppressed cell be derived from a total.
    Complementary,
    /// Private partition selection withheld the group (its noisy count missed the threshold).
    NotSelected,
}

/// Which cells and totals of a table are hidden.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hidden {
    /// `cells[r][c]`.
    pub cells: Vec<Vec<Suppression>>,
    /// Row totals (when released) that must be hidden too.
    pub row_totals: Vec<bool>,
    pub column_totals: Vec<bool>,
}

impl Hidden {
    pub fn is_hidden(&self, r: usize, c: usize) -> bool {
        self.cells[r][c] != Suppression::Shown
    }
}

/// Hides cells of `noisy` (rows × columns, every row the same length) whose value is below
/// `k`, then complements them so that no row total (if `row_totals`) or column total (if
/// `column_totals`) has exactly one hidden cell.
pub fn suppress(noisy: &[Vec<f64>], k: f64, row_totals: bool, column_totals: bool) -> Hidden {
    let rows = noisy.len();
    let cols = noisy.first().map_or(0, Vec::len);
    let mut cells: Vec<Vec<Suppression>> = noisy
        .iter()
        .map(|r| {
            r.iter()
                .map(|&v| {
                    if v < k {
                        Suppression::SmallCell
                    } else {
                        Suppression::Shown
                    }
                })
                .collect()
        })
        .collect();
    let mut hidden_rows = vec![false; rows];
    let mut hidden_cols = vec![false; cols];
    // Each pass hides at least one more cell or stops, so this ends within rows·cols passes.
    loop {
        let mut changed = false;
        let mut lines: Vec<Vec<(usize, usize)>> = Vec::new();
        if row_totals {
            lines.extend((0..rows).map(|r| (0..cols).map(|c| (r, c)).collect()));
        }
        if column_totals {
            lines.extend((0..cols).map(|c| (0..rows).map(|r| (r, c)).collect()));
        }
        for line in lines {
            let hidden = line
                .iter()
                .filter(|&&(r, c)| cells[r][c] != Suppression::Shown)
                .count();
            if hidden != 1 {
                continue;
            }
            let smallest = line
                .iter()
                .filter(|&&(r, c)| cells[r][c] == Suppression::Shown)
                .min_by(|a, b| noisy[a.0][a.1].total_cmp(&noisy[b.0][b.1]));
            match smallest {
                Some(&(r, c)) => {
                    cells[r][c] = Suppression::Complementary;
                    changed = true;
                }
                None => {
                    // The line has one cell and it is hidden: its total would show it.
                    let (r, c) = line[0];
                    if row_totals && line.iter().all(|p| p.0 == r) && cols == 1 {
                        hidden_rows[r] = true;
                    }
                    if column_totals && line.iter().all(|p| p.1 == c) && rows == 1 {
                        hidden_cols[c] = true;
                    }
                }
            }
        }
        if !changed {
            break;
        }
    }
    Hidden {
        cells,
        row_totals: hidden_rows,
        column_totals: hidden_cols,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A table where the small cell (0,1) could be recovered from its row total and its
    /// column total if it were the only one hidden.
    #[test]
    fn no_suppressed_cell_can_be_derived_from_the_totals() {
        let noisy = vec![vec![50.2, 4.7, 40.1], vec![30.3, 60.8, 19.6]];
        let h = suppress(&noisy, DEFAULT_K, true, true);
        assert_eq!(h.cells[0][1], Suppression::SmallCell);
        // Row 0's smallest shown cell goes with it, then each column's partner.
        assert_eq!(h.cells[0][2], Suppression::Complementary);
        assert_eq!(h.cells[1][1], Suppression::Complementary);
        assert_eq!(h.cells[1][2], Suppression::Complementary);
        assert_eq!(h.cells[0][0], Suppression::Shown);
        assert_eq!(h.cells[1][0], Suppression::Shown);
        // The derivation check itself: no line with a total has exactly one hidden cell.
        for r in 0..2 {
            assert_ne!((0..3).filter(|&c| h.is_hidden(r, c)).count(), 1, "row {r}");
        }
        for c in 0..3 {
            assert_ne!(
                (0..2).filter(|&r| h.is_hidden(r, c)).count(),
                1,
                "column {c}"
            );
        }
        // Without totals nothing can be derived, so nothing more is hidden.
        let alone = suppress(&noisy, DEFAULT_K, false, false);
        let hidden: usize = alone
            .cells
            .iter()
            .flatten()
            .filter(|s| **s != Suppression::Shown)
            .count();
        assert_eq!(hidden, 1);
    }

    #[test]
    fn a_histogram_with_a_total_hides_two_cells_and_a_lone_cell_hides_its_total() {
        let h = suppress(&[vec![120.0, 3.0, 15.0, 900.0]], DEFAULT_K, true, false);
        assert_eq!(
            h.cells[0],
            vec![
                Suppression::Shown,
                Suppression::SmallCell,
                Suppression::Complementary,
                Suppression::Shown
            ]
        );
        let lone = suppress(&[vec![2.0]], DEFAULT_K, true, false);
        assert!(lone.row_totals[0]);
    }

    #[test]
    fn the_threshold_reads_the_noisy_figure() {
        // A noisy 11.2 is shown and a noisy 10.9 is not, whatever the true counts were.
        let h = suppress(&[vec![11.2, 10.9]], DEFAULT_K, false, false);
        assert_eq!(h.cells[0], vec![Suppression::Shown, Suppression::SmallCell]);
    }
}
