//! Noise: the Laplace and Gaussian mechanisms, their privacy cost and their accuracy, all
//! through OpenDP.
//!
//! Invariants:
//! - A [`Noise`] knows its mechanism, its scale and the sensitivity it was scaled for; its
//!   [`Noise::cost`] is the OpenDP measurement's privacy map at that sensitivity, so what the
//!   ledger charges is what OpenDP proves.
//! - Laplace is pure ε-DP (δ = 0). Gaussian is ρ-zCDP in OpenDP; its ε at the stated δ uses the
//!   conversion ε = ρ + 2·√(ρ·ln(1/δ)) (Bun and Steinke 2016, the bound OpenDP's own
//!   zCDP-to-approximate-DP conversion starts from).
//! - Interval half-widths come from OpenDP's accuracy helpers: with probability `confidence` the
//!   noise added to one figure is within ± the half-width.

use opendp::accuracy::{
    accuracy_to_gaussian_scale, accuracy_to_laplacian_scale, gaussian_scale_to_accuracy,
    laplacian_scale_to_accuracy,
};
use opendp::domains::{AtomDomain, VectorDomain};
use opendp::measurements::{make_gaussian, make_laplace};
use opendp::measures::{MaxDivergence, ZeroConcentratedDivergence};
use opendp::metrics::{L1Distance, L2Distance};
use serde::{Deserialize, Serialize};

use crate::{AnalyticsError, Result};

/// Which distribution the noise is drawn from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mechanism {
    /// Laplace (OpenDP samples it exactly, as a discrete Laplace on a fine grid): pure ε-DP;
    /// the sensitivity is the L1 norm.
    Laplace,
    /// Gaussian (discrete Gaussian on a fine grid): zCDP, charged as (ε, δ); the sensitivity is
    /// the L2 norm, so it is cheaper when a subject touches many groups.
    Gaussian,
}

impl Mechanism {
    pub fn parse(name: &str) -> Option<Mechanism> {
        match name {
            "laplace" => Some(Mechanism::Laplace),
            "gaussian" => Some(Mechanism::Gaussian),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Mechanism::Laplace => "laplace",
            Mechanism::Gaussian => "gaussian",
        }
    }
}

/// The privacy spent by a release: (ε, δ).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct Cost {
    pub epsilon: f64,
    pub delta: f64,
}

impl Cost {
    /// Sequential composition: the costs of releases on the same data add up.
    pub fn plus(self, other: Cost) -> Cost {
        Cost {
            epsilon: self.epsilon + other.epsilon,
            delta: self.delta + other.delta,
        }
    }
}

/// Noise of one mechanism at one scale, for one sensitivity.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Noise {
    pub mechanism: Mechanism,
    /// Laplace `b` (standard deviation `b·√2`) or Gaussian σ.
    pub scale: f64,
    /// L1 (Laplace) or L2 (Gaussian) sensitivity of the figures the noise is added to.
    pub sensitivity: f64,
    /// δ the Gaussian's cost is stated at (0 for Laplace).
    pub delta: f64,
}

fn positive(field: &'static str, v: f64) -> Result<f64> {
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(AnalyticsError::invalid(
            field,
            format!("must be a positive finite number, got {v}"),
        ))
    }
}

/// `confidence` as OpenDP's significance level α = 1 − confidence.
fn alpha(confidence: f64) -> Result<f64> {
    if confidence.is_finite() && confidence > 0.0 && confidence < 1.0 {
        Ok(1.0 - confidence)
    } else {
        Err(AnalyticsError::invalid(
            "confidence",
            format!("must be strictly between 0 and 1, got {confidence}"),
        ))
    }
}

fn gaussian_delta(delta: f64) -> Result<f64> {
    if delta.is_finite() && delta > 0.0 && delta < 1.0 {
        Ok(delta)
    } else {
        Err(AnalyticsError::invalid(
            "delta",
            format!("the Gaussian mechanism needs 0 < delta < 1, got {delta}"),
        ))
    }
}

/// ε of ρ-zCDP at δ.
fn zcdp_epsilon(rho: f64, delta: f64) -> f64 {
    rho + 2.0 * (rho * (1.0 / delta).ln()).sqrt()
}

/// The largest ρ whose ε at δ is at most `epsilon` (the inverse of [`zcdp_epsilon`]).
fn zcdp_rho(epsilon: f64, delta: f64) -> f64 {
    let l = (1.0 / delta).ln();
    ((l + epsilon).sqrt() - l.sqrt()).powi(2)
}

impl Noise {
    /// The smallest scale whose cost at `sensitivity` is at most `epsilon` (at `delta` for the
    /// Gaussian). Starts from the closed form and widens it until OpenDP's map agrees, since
    /// OpenDP rounds its maps conservatively.
    pub fn for_epsilon(
        mechanism: Mechanism,
        epsilon: f64,
        delta: f64,
        sensitivity: f64,
    ) -> Result<Noise> {
        let epsilon = positive("epsilon", epsilon)?;
        let sensitivity = positive("sensitivity", sensitivity)?;
        let (scale, delta) = match mechanism {
            Mechanism::Laplace => (sensitivity / epsilon, 0.0),
            Mechanism::Gaussian => {
                let delta = gaussian_delta(delta)?;
                (sensitivity / (2.0 * zcdp_rho(epsilon, delta)).sqrt(), delta)
            }
        };
        let mut noise = Noise {
            mechanism,
            scale,
            sensitivity,
            delta,
        };
        for _ in 0..8 {
            let cost = noise.cost()?.epsilon;
            if cost <= epsilon {
                return Ok(noise);
            }
            noise.scale *= (cost / epsilon) * (1.0 + 1e-12);
        }
        Err(AnalyticsError::invalid(
            "epsilon",
            format!("no scale reaches epsilon {epsilon}"),
        ))
    }

    /// The scale at which one figure's noise is within ±`accuracy` with probability
    /// `confidence` (OpenDP's `accuracy_to_*_scale`), for figures of `sensitivity`.
    pub fn for_accuracy(
        mechanism: Mechanism,
        accuracy: f64,
        confidence: f64,
        delta: f64,
        sensitivity: f64,
    ) -> Result<Noise> {
        let accuracy = positive("accuracy", accuracy)?;
        let sensitivity = positive("sensitivity", sensitivity)?;
        let alpha = alpha(confidence)?;
        let (scale, delta) = match mechanism {
            Mechanism::Laplace => (accuracy_to_laplacian_scale(accuracy, alpha)?, 0.0),
            Mechanism::Gaussian => (
                accuracy_to_gaussian_scale(accuracy, alpha)?,
                gaussian_delta(delta)?,
            ),
        };
        Ok(Noise {
            mechanism,
            scale: positive("accuracy", scale)?,
            sensitivity,
            delta,
        })
    }

    /// The privacy this noise spends per release (OpenDP's privacy map at the sensitivity).
    pub fn cost(&self) -> Result<Cost> {
        let domain = VectorDomain::new(AtomDomain::<f64>::new_non_nan());
        match self.mechanism {
            Mechanism::Laplace => {
                let m = make_laplace::<_, _, MaxDivergence>(
                    domain,
                    L1Distance::<f64>::default(),
                    self.scale,
                    None,
                )?;
                Ok(Cost {
                    epsilon: m.map(&self.sensitivity)?,
                    delta: 0.0,
                })
            }
            Mechanism::Gaussian => {
                let m = make_gaussian::<_, _, ZeroConcentratedDivergence>(
                    domain,
                    L2Distance::<f64>::default(),
                    self.scale,
                    None,
                )?;
                let rho = m.map(&self.sensitivity)?;
                Ok(Cost {
                    epsilon: zcdp_epsilon(rho, self.delta),
                    delta: self.delta,
                })
            }
        }
    }

    /// ± this much around a released figure holds its true value with probability `confidence`
    /// (OpenDP's `*_scale_to_accuracy`).
    pub fn half_width(&self, confidence: f64) -> Result<f64> {
        let alpha = alpha(confidence)?;
        Ok(match self.mechanism {
            Mechanism::Laplace => laplacian_scale_to_accuracy(self.scale, alpha)?,
            Mechanism::Gaussian => gaussian_scale_to_accuracy(self.scale, alpha)?,
        })
    }

    /// The figures with noise added, one draw per figure, by the OpenDP measurement.
    pub fn release(&self, figures: &[f64]) -> Result<Vec<f64>> {
        if let Some(bad) = figures.iter().find(|v| !v.is_finite()) {
            return Err(AnalyticsError::invalid(
                "figures",
                format!("{bad} is not finite"),
            ));
        }
        let domain = VectorDomain::new(AtomDomain::<f64>::new_non_nan());
        let input = figures.to_vec();
        Ok(match self.mechanism {
            Mechanism::Laplace => make_laplace::<_, _, MaxDivergence>(
                domain,
                L1Distance::<f64>::default(),
                self.scale,
                None,
            )?
            .invoke(&input)?,
            Mechanism::Gaussian => make_gaussian::<_, _, ZeroConcentratedDivergence>(
                domain,
                L2Distance::<f64>::default(),
                self.scale,
                None,
            )?
            .invoke(&input)?,
        })
    }

    /// The standard deviation of one draw.
    pub fn std_dev(&self) -> f64 {
        match self.mechanism {
            Mechanism::Laplace => self.scale * std::f64::consts::SQRT_2,
            Mechanism::Gaussian => self.scale,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn laplace_cost_is_sensitivity_over_scale() {
        let n = Noise::for_epsilon(Mechanism::Laplace, 0.5, 0.0, 2.0).unwrap();
        let c = n.cost().unwrap();
        assert!(c.epsilon <= 0.5 && c.epsilon > 0.4999, "{c:?}");
        assert!((n.scale - 4.0).abs() < 1e-6, "{}", n.scale);
        assert_eq!(c.delta, 0.0);
    }

    #[test]
    fn gaussian_cost_meets_its_epsilon_at_delta() {
        let n = Noise::for_epsilon(Mechanism::Gaussian, 1.0, 1e-6, 3.0).unwrap();
        let c = n.cost().unwrap();
        assert!(c.epsilon <= 1.0 && c.epsilon > 0.999, "{c:?}");
        assert_eq!(c.delta, 1e-6);
        // A smaller δ needs more noise for the same ε.
        let tighter = Noise::for_epsilon(Mechanism::Gaussian, 1.0, 1e-9, 3.0).unwrap();
        assert!(tighter.scale > n.scale);
    }

    #[test]
    fn accuracy_and_scale_round_trip() {
        for m in [Mechanism::Laplace, Mechanism::Gaussian] {
            let n = Noise::for_accuracy(m, 50.0, 0.95, 1e-6, 1.0).unwrap();
            assert!((n.half_width(0.95).unwrap() - 50.0).abs() < 1e-6, "{m:?}");
        }
        // ±50 at 95% with Laplace: b = 50 / ln(20).
        let n = Noise::for_accuracy(Mechanism::Laplace, 50.0, 0.95, 0.0, 1.0).unwrap();
        assert!((n.scale - 50.0 / 20f64.ln()).abs() < 1e-9);
        let eps = n.cost().unwrap().epsilon;
        assert!((eps - 20f64.ln() / 50.0).abs() < 1e-6, "{eps}");
    }

    #[test]
    fn bad_parameters_name_their_field() {
        let field = |r: Result<Noise>| match r {
            Err(AnalyticsError::Invalid { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            field(Noise::for_epsilon(Mechanism::Laplace, 0.0, 0.0, 1.0)),
            "epsilon"
        );
        assert_eq!(
            field(Noise::for_epsilon(Mechanism::Laplace, f64::NAN, 0.0, 1.0)),
            "epsilon"
        );
        assert_eq!(
            field(Noise::for_epsilon(Mechanism::Gaussian, 1.0, 0.0, 1.0)),
            "delta"
        );
        assert_eq!(
            field(Noise::for_accuracy(Mechanism::Laplace, 5.0, 1.5, 0.0, 1.0)),
            "confidence"
        );
        assert_eq!(
            field(Noise::for_accuracy(Mechanism::Laplace, -5.0, 0.9, 0.0, 1.0)),
            "accuracy"
        );
    }
}
