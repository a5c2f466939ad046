//! Per-group sufficient statistics.
//!
//! Invariant: every group metric in this crate is a pure function of these additive statistics.
//! That is what lets a 10-million-row table be split into chunks, accumulated in parallel and merged
//! by addition, lets a one-attribute (marginal) group be the sum of the intersectional groups that
//! share its value, and lets the bootstrap resample cells instead of rows.

/// Label state of a row: negative, positive, or no label column.
pub const LABEL_NEG: usize = 0;
/// Label state of a row: positive outcome.
pub const LABEL_POS: usize = 1;
/// Label state of a row: the table has no label.
pub const LABEL_NONE: usize = 2;

/// Ranks 1..=TRACKED_RANKS keep their own weight so reports can draw exposure curves;
/// deeper ranks still count in the exposure totals.
pub const TRACKED_RANKS: usize = 20;

/// Rows and total sample weight falling in one (selected, label) cell of one group.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Cell {
    pub n: u64,
    pub w: f64,
}

/// The confusion cells of one group, indexed by `selected * 3 + label_state`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Counts {
    pub cells: [Cell; 6],
}

impl Counts {
    #[inline]
    pub fn add(&mut self, selected: bool, label_state: usize, w: f64) {
        let c = &mut self.cells[usize::from(selected) * 3 + label_state];
        c.n += 1;
        c.w += w;
    }

    pub fn merge(&mut self, other: &Counts) {
        for (a, b) in self.cells.iter_mut().zip(other.cells.iter()) {
            a.n += b.n;
            a.w += b.w;
        }
    }

    /// Number of rows.
    pub fn n(&self) -> u64 {
        self.cells.iter().map(|c| c.n).sum()
    }

    /// Total sample weight.
    pub fn w(&self) -> f64 {
        self.cells.iter().map(|c| c.w).sum()
    }

    /// Weight of rows matching an optional selected flag and an optional label state.
    pub fn w_where(&self, selected: Option<bool>, label_state: Option<usize>) -> f64 {
        let mut total = 0.0;
        for s in [false, true] {
            if selected.is_some_and(|x| x != s) {
                continue;
            }
            for l in [LABEL_NEG, LABEL_POS, LABEL_NONE] {
                if label_state.is_some_and(|x| x != l) {
                    continue;
                }
                total += self.cells[usize::from(s) * 3 + l].w;
            }
        }
        total
    }
}

/// One calibration bin: rows whose score falls in `[i/bins, (i+1)/bins)`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Bin {
    pub n: u64,
    pub w: f64,
    pub w_score: f64,
    pub w_pos: f64,
}

/// Score sums of one group; `bins` is filled only when the table has labels.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ScoreStats {
    pub n: u64,
    pub w: f64,
    pub w_score: f64,
    /// Weight of labelled rows with a score, and of those that are positive (for the calibration gap).
    pub w_labelled: f64,
    pub w_pos: f64,
    pub bins: Vec<Bin>,
}

impl ScoreStats {
    pub fn with_bins(bins: usize) -> Self {
        ScoreStats {
            bins: vec![Bin::default(); bins],
            ..Default::default()
        }
    }

    #[inline]
    pub fn add(&mut self, score: f64, label_state: usize, w: f64) {
        self.n += 1;
        self.w += w;
        self.w_score += w * score;
        if label_state != LABEL_NONE && !self.bins.is_empty() {
            let pos = if label_state == LABEL_POS { w } else { 0.0 };
            self.w_labelled += w;
            self.w_pos += pos;
            // Scores outside [0, 1] land in the first or last bin: clamping keeps every row counted.
            let k = self.bins.len();
            let i = ((score * k as f64) as isize).clamp(0, k as isize - 1) as usize;
            let b = &mut self.bins[i];
            b.n += 1;
            b.w += w;
            b.w_score += w * score;
            b.w_pos += pos;
        }
    }

    pub fn merge(&mut self, o: &ScoreStats) {
        self.n += o.n;
        self.w += o.w;
        self.w_score += o.w_score;
        self.w_labelled += o.w_labelled;
        self.w_pos += o.w_pos;
        if self.bins.len() < o.bins.len() {
            self.bins.resize(o.bins.len(), Bin::default());
        }
        for (a, b) in self.bins.iter_mut().zip(o.bins.iter()) {
            a.n += b.n;
            a.w += b.w;
            a.w_score += b.w_score;
            a.w_pos += b.w_pos;
        }
    }
}

/// Position-discounted exposure of one group: a row at rank r receives `1 / log2(1 + r)`.
#[derive(Clone, Debug, PartialEq)]
pub struct ExposureStats {
    pub ranked: u64,
    pub w_ranked: f64,
    pub w_exposure: f64,
    /// Weight of rows at rank 1..=TRACKED_RANKS (index 0 is rank 1).
    pub by_rank: [f64; TRACKED_RANKS],
}

impl Default for ExposureStats {
    fn default() -> Self {
        ExposureStats {
            ranked: 0,
            w_ranked: 0.0,
            w_exposure: 0.0,
            by_rank: [0.0; TRACKED_RANKS],
        }
    }
}

/// The log2 position discount used everywhere exposure is measured (rank is 1-based).
#[inline]
pub fn discount(rank: u32) -> f64 {
    1.0 / (1.0 + f64::from(rank)).log2()
}

impl ExposureStats {
    #[inline]
    pub fn add(&mut self, rank: u32, w: f64) {
        self.ranked += 1;
        self.w_ranked += w;
        self.w_exposure += w * discount(rank);
        if (rank as usize) <= TRACKED_RANKS {
            self.by_rank[rank as usize - 1] += w;
        }
    }

    pub fn merge(&mut self, o: &ExposureStats) {
        self.ranked += o.ranked;
        self.w_ranked += o.w_ranked;
        self.w_exposure += o.w_exposure;
        for (a, b) in self.by_rank.iter_mut().zip(o.by_rank.iter()) {
            *a += b;
        }
    }
}

/// Everything known about one group.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GroupStats {
    pub counts: Counts,
    pub score: ScoreStats,
    pub exposure: ExposureStats,
}

impl GroupStats {
    pub fn new(calibration_bins: usize) -> Self {
        GroupStats {
            score: ScoreStats::with_bins(calibration_bins),
            ..Default::default()
        }
    }

    pub fn merge(&mut self, o: &GroupStats) {
        self.counts.merge(&o.counts);
        self.score.merge(&o.score);
        self.exposure.merge(&o.exposure);
    }
}

/// Contingency counts of one candidate proxy feature against the intersectional groups
/// (`counts[value][group]`, unweighted rows).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProxyTable {
    pub feature: String,
    pub values: Vec<String>,
    pub counts: Vec<Vec<u64>>,
}

/// The sufficient statistics of a whole decision table.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TableStats {
    /// Names of the group attributes, e.g. `["sex", "age_band"]`.
    pub attributes: Vec<String>,
    /// Distinct intersectional groups (one value per attribute), sorted, each with its statistics.
    pub groups: Vec<Vec<String>>,
    pub stats: Vec<GroupStats>,
    pub rows: u64,
    pub has_label: bool,
    pub has_score: bool,
    pub has_rank: bool,
    pub weighted: bool,
    pub calibration_bins: usize,
    pub proxies: Vec<ProxyTable>,
}

impl TableStats {
    /// Sort groups (and proxy values) so the report does not depend on row order or thread count.
    pub fn canonicalize(&mut self) {
        let mut order: Vec<usize> = (0..self.groups.len()).collect();
        order.sort_by(|&a, &b| self.groups[a].cmp(&self.groups[b]));
        self.groups = order.iter().map(|&i| self.groups[i].clone()).collect();
        self.stats = order.iter().map(|&i| self.stats[i].clone()).collect();
        for p in &mut self.proxies {
            for row in &mut p.counts {
                *row = order
                    .iter()
                    .map(|&i| row.get(i).copied().unwrap_or(0))
                    .collect();
            }
            let mut vorder: Vec<usize> = (0..p.values.len()).collect();
            vorder.sort_by(|&a, &b| p.values[a].cmp(&p.values[b]));
            p.values = vorder.iter().map(|&i| p.values[i].clone()).collect();
            p.counts = vorder.iter().map(|&i| p.counts[i].clone()).collect();
        }
    }
}
