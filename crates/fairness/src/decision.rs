//! The in-memory decision table.
//!
//! Invariant: a [`Decisions`] table is columnar and consistent — every optional column is either
//! present for every row or absent for all, group ids index `groups`, weights are finite and
//! non-negative, ranks are 1-based. The builder enforces this, so accumulation never checks.

use std::collections::HashMap;

use crate::error::FairnessError;
use crate::stats::{GroupStats, LABEL_NEG, LABEL_NONE, LABEL_POS, TableStats};

/// One decision about one subject, as handed to [`DecisionsBuilder::push`].
#[derive(Clone, Debug, Default)]
pub struct Decision<'a> {
    /// One value per group attribute, in the builder's attribute order.
    pub group: &'a [&'a str],
    /// The decision: selected / offered / predicted positive.
    pub selected: bool,
    /// The observed outcome, if known.
    pub label: Option<bool>,
    /// A model score, ideally a probability in [0, 1].
    pub score: Option<f64>,
    /// 1-based position in a ranking, if the decision was a ranked exposure.
    pub rank: Option<u32>,
    /// Sample weight (default 1).
    pub weight: Option<f64>,
}

/// A columnar table of decisions.
#[derive(Clone, Debug, Default)]
pub struct Decisions {
    pub attributes: Vec<String>,
    pub groups: Vec<Vec<String>>,
    pub group: Vec<u32>,
    pub selected: Vec<bool>,
    pub label: Option<Vec<bool>>,
    pub score: Option<Vec<f64>>,
    pub rank: Option<Vec<u32>>,
    pub weight: Option<Vec<f64>>,
}

/// Builds a [`Decisions`] table row by row, checking consistency.
#[derive(Debug)]
pub struct DecisionsBuilder {
    table: Decisions,
    index: HashMap<Vec<String>, u32>,
}

impl DecisionsBuilder {
    pub fn new<S: Into<String>>(attributes: impl IntoIterator<Item = S>) -> Self {
        DecisionsBuilder {
            table: Decisions {
                attributes: attributes.into_iter().map(Into::into).collect(),
                ..Default::default()
            },
            index: HashMap::new(),
        }
    }

    /// Add one row. The first row fixes which optional columns the table has.
    pub fn push(&mut self, d: &Decision<'_>) -> Result<(), FairnessError> {
        let t = &mut self.table;
        let row = t.group.len() + 1;
        let bad = |reason: String| FairnessError::BadRow { row, reason };
        if d.group.len() != t.attributes.len() {
            return Err(bad(format!(
                "{} group values for {} attributes",
                d.group.len(),
                t.attributes.len()
            )));
        }
        if row == 1 {
            t.label = d.label.map(|_| Vec::new());
            t.score = d.score.map(|_| Vec::new());
            t.rank = d.rank.map(|_| Vec::new());
            t.weight = d.weight.map(|_| Vec::new());
        }
        push_opt(&mut t.label, d.label, "label").map_err(bad)?;
        if let Some(s) = d.score
            && !s.is_finite()
        {
            return Err(bad(format!("score {s} is not finite")));
        }
        push_opt(&mut t.score, d.score, "score").map_err(bad)?;
        if d.rank == Some(0) {
            return Err(bad("rank 0: ranks are 1-based".into()));
        }
        push_opt(&mut t.rank, d.rank, "rank").map_err(bad)?;
        if let Some(w) = d.weight
            && !(w.is_finite() && w >= 0.0)
        {
            return Err(bad(format!("weight {w} must be finite and >= 0")));
        }
        push_opt(&mut t.weight, d.weight, "weight").map_err(bad)?;

        let key: Vec<String> = d.group.iter().map(|s| (*s).to_owned()).collect();
        let next = t.groups.len() as u32;
        let id = *self.index.entry(key.clone()).or_insert_with(|| {
            t.groups.push(key);
            next
        });
        t.group.push(id);
        t.selected.push(d.selected);
        Ok(())
    }

    pub fn build(self) -> Decisions {
        self.table
    }
}

fn push_opt<T>(col: &mut Option<Vec<T>>, v: Option<T>, name: &str) -> Result<(), String> {
    match (col, v) {
        (Some(c), Some(v)) => {
            c.push(v);
            Ok(())
        }
        (None, None) => Ok(()),
        (Some(_), None) => Err(format!("{name} missing but earlier rows have one")),
        (None, Some(_)) => Err(format!("{name} present but the first row had none")),
    }
}

impl Decisions {
    pub fn len(&self) -> usize {
        self.group.len()
    }

    pub fn is_empty(&self) -> bool {
        self.group.is_empty()
    }

    /// Reduce the table to its sufficient statistics, using up to `threads` threads.
    pub fn stats(&self, calibration_bins: usize, threads: usize) -> TableStats {
        let n = self.len();
        let threads = threads.clamp(1, 64).min(n.div_ceil(100_000).max(1));
        let chunk = n.div_ceil(threads).max(1);
        let partials: Vec<Vec<GroupStats>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let range = (t * chunk).min(n)..((t + 1) * chunk).min(n);
                    s.spawn(move || self.accumulate(range, calibration_bins))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("accumulator thread panicked"))
                .collect()
        });
        let mut stats = vec![GroupStats::new(calibration_bins); self.groups.len()];
        for p in &partials {
            for (a, b) in stats.iter_mut().zip(p) {
                a.merge(b);
            }
        }
        let mut t = TableStats {
            attributes: self.attributes.clone(),
            groups: self.groups.clone(),
            stats,
            rows: n as u64,
            has_label: self.label.is_some(),
            has_score: self.score.is_some(),
            has_rank: self.rank.is_some(),
            weighted: self.weight.is_some(),
            calibration_bins,
            proxies: Vec::new(),
        };
        t.canonicalize();
        t
    }

    fn accumulate(&self, range: std::ops::Range<usize>, bins: usize) -> Vec<GroupStats> {
        let mut stats = vec![GroupStats::new(bins); self.groups.len()];
        for i in range {
            let g = &mut stats[self.group[i] as usize];
            let w = self.weight.as_ref().map_or(1.0, |c| c[i]);
            let label = match &self.label {
                None => LABEL_NONE,
                Some(c) if c[i] => LABEL_POS,
                Some(_) => LABEL_NEG,
            };
            g.counts.add(self.selected[i], label, w);
            if let Some(c) = &self.score {
                g.score.add(c[i], label, w);
            }
            if let Some(c) = &self.rank {
                g.exposure.add(c[i], w);
            }
        }
        stats
    }

    /// Label column, or the error naming what needed it.
    pub fn labels(&self, what: &str) -> Result<&[bool], FairnessError> {
        self.label
            .as_deref()
            .ok_or_else(|| FairnessError::NeedsColumn {
                what: what.to_owned(),
                column: "label",
            })
    }
}
