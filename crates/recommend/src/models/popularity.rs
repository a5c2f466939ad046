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
