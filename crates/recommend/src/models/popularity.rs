//! Non-personal popularity: how many distinct subjects interacted with each item.
//!
//! Reads no individual history at scoring time, so it is the only behaviour-derived model
//! allowed at personalization level `off` (it is an aggregate over consented data).

use crate::matrix::Interactions;
use crate::models::{Query, Scorer};

#[derive(Debug, Clone, PartialEq)]
pub struct Popularity {
    /// Distinct subjects per item.
    pub counts: Vec<u32>,
}

impl Popularity {
    pub fn fit(train: &Interactions) -> Self {
        Popularity {
            counts: train.col_counts(),
        }
    }
}

impl Scorer for Popularity {
    fn n_items(&self) -> usize {
        self.counts.len()
    }
    fn score(&self, _query: &Query<'_>, scores: &mut [f32]) {
        for (s, &c) in scores.iter_mut().zip(&self.counts) {
            *s = c as f32;
        }
    }
}

/// Trending: each interaction counts `0.5^(age / half_life)`, its age measured back from the
/// newest interaction of all (`rows[s]` a subject's items, `times[s]` their times, same units as
/// `half_life`). An aggregate over everyone, like [`Popularity`], so it may serve level `basic`:
/// it says what people are turning to now, not what this person did.
pub fn trending<R: AsRef<[u32]>, T: AsRef<[i64]>>(
    n_items: usize,
    rows: &[R],
    times: &[T],
    half_life: f64,
) -> Vec<f32> {
    let newest = times
        .iter()
        .flat_map(|t| t.as_ref().iter().copied())
        .max()
        .unwrap_or(0);
    let mut out = vec![0f64; n_items];
    for (row, t) in rows.iter().zip(times) {
        for (&i, &at) in row.as_ref().iter().zip(t.as_ref()) {
            if let Some(o) = out.get_mut(i as usize) {
                *o += 0.5f64.powf((newest - at) as f64 / half_life.max(f64::MIN_POSITIVE));
            }
        }
    }
    out.into_iter().map(|v| v as f32).collect()
}
