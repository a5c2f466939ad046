//! Private partition selection: when which groups exist is itself personal (a rare product, a
//! small town), a group is released only if its noisy count clears a threshold, so a group one
//! subject alone creates appears with probability at most δ.
//!
//! Invariant: the noise, the threshold test and the (ε, δ) charged are OpenDP's
//! `make_laplace_threshold` and its privacy map; the threshold is the smallest one whose δ is
//! within the stated δ.

use std::collections::HashMap;

use opendp::domains::{AtomDomain, MapDomain};
use opendp::measurements::make_laplace_threshold;
use opendp::measures::{Approximate, MaxDivergence};
use opendp::metrics::{AbsoluteDistance, L0PInfDistance};

use crate::{AnalyticsError, Bounds, Cost, Result};

/// What a thresholded release spends and where its threshold sits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Threshold {
    pub scale: f64,
    pub threshold: f64,
    pub cost: Cost,
}

type Meas = opendp::core::Measurement<
    MapDomain<AtomDomain<u32>, AtomDomain<f64>>,
    L0PInfDistance<1, AbsoluteDistance<f64>>,
    Approximate<MaxDivergence>,
    HashMap<u32, f64>,
>;

fn measurement(scale: f64, threshold: f64) -> Result<Meas> {
    Ok(make_laplace_threshold(
        MapDomain::new(
            AtomDomain::<u32>::default(),
            AtomDomain::<f64>::new_non_nan(),
        ),
        L0PInfDistance(AbsoluteDistance::<f64>::default()),
        scale,
        threshold,
        None,
    )?)
}

fn cost(m: &Meas, bounds: &Bounds) -> Result<Cost> {
    let (epsilon, delta) = m.map(&(
        bounds.max_groups,
        bounds.count_l1(),
        f64::from(bounds.max_rows),
    ))?;
    Ok(Cost { epsilon, delta })
}

/// Plans a thresholded count release at ε (Laplace scale L1/ε) and δ.
pub fn plan(epsilon: f64, delta: f64, bounds: &Bounds) -> Result<Threshold> {
    bounds.check()?;
    if !(epsilon.is_finite() && epsilon > 0.0) {
        return Err(AnalyticsError::invalid(
            "epsilon",
            "must be positive and finite",
        ));
    }
    if !(delta.is_finite() && delta > 0.0 && delta < 1.0) {
        return Err(AnalyticsError::invalid(
            "delta",
            "partition selection needs 0 < delta < 1",
        ));
    }
    let scale = bounds.count_l1() / epsilon;
    let within = |t: f64| -> Result<Option<Cost>> {
        let c = cost(&measurement(scale, t)?, bounds)?;
        Ok((c.delta <= delta).then_some(c))
    };
    let mut hi = f64::from(bounds.max_rows).max(1.0);
    while within(hi)?.is_none() {
        hi *= 2.0;
        if hi > 1e12 {
            return Err(AnalyticsError::invalid(
                "delta",
                "no threshold reaches this delta",
            ));
        }
    }
    let mut lo = 0.0;
    for _ in 0..60 {
        let mid = (lo + hi) / 2.0;
        if within(mid)?.is_some() {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    let cost = within(hi)?.expect("hi always satisfies the delta");
    Ok(Threshold {
        scale,
        threshold: hi,
        cost,
    })
}

/// The groups (by index) whose noisy bounded count clears the threshold, with that count.
pub fn select(counts: &[f64], t: &Threshold) -> Result<Vec<(u32, f64)>> {
    let input: HashMap<u32, f64> = counts
        .iter()
        .enumerate()
        .filter(|(_, c)| **c > 0.0)
        .map(|(i, c)| (i as u32, *c))
        .collect();
    let mut out: Vec<(u32, f64)> = measurement(t.scale, t.threshold)?
        .invoke(&input)?
        .into_iter()
        .collect();
    out.sort_by_key(|(g, _)| *g);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_of_one_subject_is_almost_never_released_and_a_big_one_always() {
        let bounds = Bounds::default();
        let t = plan(1.0, 1e-6, &bounds).unwrap();
        assert!(
            t.cost.delta <= 1e-6 && t.cost.epsilon <= 1.0 + 1e-9,
            "{t:?}"
        );
        assert!(t.threshold > 10.0, "{t:?}");
        let mut rare = 0;
        for _ in 0..2000 {
            let out = select(&[1.0, 500.0], &t).unwrap();
            assert!(
                out.iter().any(|(g, _)| *g == 1),
                "the big group is released"
            );
            rare += out.iter().filter(|(g, _)| *g == 0).count();
        }
        assert_eq!(
            rare, 0,
            "a one-subject group leaks only with probability delta"
        );
    }

    #[test]
    fn a_smaller_delta_needs_a_higher_threshold() {
        let b = Bounds::default();
        assert!(plan(1.0, 1e-9, &b).unwrap().threshold > plan(1.0, 1e-5, &b).unwrap().threshold);
        assert!(matches!(
            plan(1.0, 0.0, &b),
            Err(AnalyticsError::Invalid { field: "delta", .. })
        ));
    }
}
