//! Candor's private-analytics engine: differentially private aggregates over rows that each
//! belong to one subject.
//!
//! Invariants:
//! - **No I/O and no clock.** Rows come in as values; releases go out as values.
//! - **Noise comes from OpenDP.** Every noisy figure is drawn by an OpenDP measurement
//!   ([`mechanism`]), and every privacy cost is that measurement's own privacy map, so the
//!   epsilon we charge is the one OpenDP proves. OpenDP 0.16 draws from its own generator (the
//!   thread RNG when built without `use-openssl`) and offers no way to pass a seed, so the
//!   mechanisms are tested statistically, not against seeded values. Everything else here
//!   (bounding, suppression, accuracy) is deterministic.
//! - **Contribution bounds come first** ([`bound`]): a subject adds at most `max_rows` rows to a
//!   group and touches at most `max_groups` groups; values are clamped. The sensitivity the noise
//!   is scaled to is derived from those bounds, never from the data.
//! - **Suppression sees only noisy figures** ([`suppress`]): the threshold is applied to released
//!   values, so it is post-processing and costs no privacy.

#![forbid(unsafe_code)]

pub mod bound;
pub mod mechanism;
pub mod partition;
pub mod query;
pub mod report;
pub mod suppress;

pub use bound::{Bounds, Row};
pub use mechanism::{Cost, Mechanism, Noise};
pub use query::{Aggregate, Cell, Query, Release, run};
pub use suppress::{DEFAULT_K, Suppression};

/// What went wrong, naming the parameter at fault.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AnalyticsError {
    /// A parameter is out of range; `field` names it.
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// OpenDP refused a measurement or failed to sample.
    #[error("OpenDP: {0}")]
    OpenDp(String),
}

impl AnalyticsError {
    pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        AnalyticsError::Invalid {
            field,
            message: message.into(),
        }
    }
}

impl From<opendp::error::Error> for AnalyticsError {
    fn from(e: opendp::error::Error) -> Self {
        AnalyticsError::OpenDp(e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, AnalyticsError>;
