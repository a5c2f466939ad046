//! The audit report: the machine-readable result of an audit.
//!
//! Invariant: the serde field names here are a stable public schema (`schema_version` bumps on
//! any breaking change). Every metric is an [`Estimate`]: a number or `null` with a reason, never
//! NaN. All fields are always present (absent data is `null` or an empty list) so consumers can
//! rely on the shape.

use serde::{Deserialize, Serialize};

use crate::bootstrap::Bootstrap;
use crate::findings::Finding;
use crate::metrics::{Undefined, Value};
use crate::recommendation::RecommendationReport;

/// Version of the JSON schema below.
pub const SCHEMA_VERSION: u32 = 1;

/// A metric value with an optional bootstrap confidence interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// The value, or `null` when undefined.
    pub value: Option<f64>,
    /// Why `value` is `null`; `null` when it has a value.
    pub undefined: Option<Undefined>,
    /// Percentile bootstrap interval `[low, high]`, when computed.
    pub ci: Option<[f64; 2]>,
}

impl Estimate {
    pub fn new(v: Value) -> Self {
        Estimate {
            value: v.ok(),
            undefined: v.err(),
            ci: None,
        }
    }

    pub fn with_ci(v: Value, ci: Option<[f64; 2]>) -> Self {
        Estimate {
            ci: if v.is_ok() { ci } else { None },
            ..Estimate::new(v)
        }
    }

    pub fn value(&self) -> Value {
        match (self.value, self.undefined) {
            (Some(v), _) => Ok(v),
            (None, Some(u)) => Err(u),
            (None, None) => Err(Undefined::NoMembers),
        }
    }
}

/// The whole audit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema_version: u32,
    pub input: InputSummary,
    pub settings: Settings,
    /// Metrics on the whole table.
    pub overall: GroupMetrics,
    /// One slice per group attribute, plus the intersection when there are several attributes.
    pub slices: Vec<Slice>,
    /// Representation vs a reference distribution (empty without a reference).
    pub representation: Vec<Representation>,
    /// Candidate proxy features ranked by association with the protected attributes.
    pub proxies: Vec<ProxyAssociation>,
    /// Recommendation-list audit, when one was run.
    pub recommendations: Option<RecommendationReport>,
    /// What part of a decision log was audited, when the caller says (the server sets it).
    #[serde(default)]
    pub scope: Option<Scope>,
}

/// The surface and time window an audit of a decision log covered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scope {
    /// The decision surface (`offer`, `home`, ...); `null` for all of them.
    pub surface: Option<String>,
    /// Start of the window (inclusive), RFC 3339.
    pub since: String,
    /// End of the window (the time of the run), RFC 3339.
    pub until: String,
}

/// What was audited.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputSummary {
    pub source: Option<String>,
    pub rows: u64,
    pub total_weight: f64,
    pub attributes: Vec<String>,
    pub has_label: bool,
    pub has_score: bool,
    pub has_rank: bool,
    pub weighted: bool,
}

/// How it was audited.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub bootstrap: Bootstrap,
    pub calibration_bins: usize,
    pub four_fifths_threshold: f64,
    /// Rows a group needs to be the four-fifths reference group (0 in reports stored before it
    /// existed).
    #[serde(default)]
    pub min_reference_size: u64,
    pub privileged: Vec<PrivilegedValue>,
}

/// One attribute value that defines the privileged group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrivilegedValue {
    pub attribute: String,
    pub value: String,
}

/// Metrics of one group (or of the whole table).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupMetrics {
    /// One value per slice attribute.
    pub group: Vec<String>,
    /// Human-readable name, values joined with " & ".
    pub label: String,
    pub count: u64,
    pub weight: f64,
    /// Share of the table's rows.
    pub share: f64,
    pub selection_rate: Estimate,
    pub true_positive_rate: Estimate,
    pub false_positive_rate: Estimate,
    pub precision: Estimate,
    /// Observed positive-outcome rate.
    pub base_rate: Estimate,
    /// Selection rate divided by the highest group selection rate (four-fifths rule).
    pub impact_ratio: Estimate,
    pub passes_four_fifths: Option<bool>,
    pub calibration: Option<Calibration>,
    pub exposure: Option<Exposure>,
}

/// Calibration of scores within one group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    pub mean_score: Estimate,
    /// Observed positive rate among rows with a score and a label.
    pub observed_rate: Estimate,
    /// mean score − observed rate: positive means the scores over-predict for this group.
    pub gap: Estimate,
    /// Σ over bins of (bin weight / group weight) × |bin mean score − bin observed rate|.
    pub expected_calibration_error: Estimate,
    pub bins: Vec<CalibrationBin>,
}

/// One score bin of a calibration curve.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CalibrationBin {
    pub lower: f64,
    pub upper: f64,
    pub count: u64,
    pub mean_score: Option<f64>,
    pub observed_rate: Option<f64>,
}

/// Position-discounted exposure of one group (a row at rank r gets 1/log2(1+r); unranked rows 0).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Exposure {
    /// Mean exposure per member.
    pub mean_exposure: Estimate,
    /// Group's share of all exposure.
    pub exposure_share: Estimate,
    /// Group's share of the (weighted) population.
    pub population_share: Estimate,
    /// exposure_share / population_share: 1 is proportional, below 1 under-exposed.
    pub share_ratio: Estimate,
    pub ranked: u64,
    /// Cumulative share of the group's members shown at rank ≤ r, for r = 1..=20.
    pub cumulative_by_rank: Vec<f64>,
}

/// Metrics for one way of splitting the table into groups.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Slice {
    pub attributes: Vec<String>,
    pub groups: Vec<GroupMetrics>,
    pub disparities: Vec<Disparity>,
    pub privileged: Option<PrivilegedComparison>,
    pub four_fifths: FourFifths,
}

/// Which rate a disparity compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisparityMetric {
    /// Selection rate (Fairlearn `demographic_parity_*`).
    DemographicParity,
    /// True positive rate (Fairlearn `equal_opportunity_*`).
    EqualOpportunity,
    /// False positive rate.
    FalsePositiveRate,
    /// Worst of TPR and FPR (Fairlearn `equalized_odds_*`, `agg="worst_case"`).
    EqualizedOdds,
    /// Mean position-discounted exposure per member.
    Exposure,
}

impl DisparityMetric {
    pub fn title(self) -> &'static str {
        match self {
            DisparityMetric::DemographicParity => "Demographic parity (selection rate)",
            DisparityMetric::EqualOpportunity => "Equal opportunity (true positive rate)",
            DisparityMetric::FalsePositiveRate => "False positive rate",
            DisparityMetric::EqualizedOdds => "Equalized odds (worst of TPR and FPR)",
            DisparityMetric::Exposure => "Exposure per member",
        }
    }
}

/// Fairlearn's two `method`s.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    BetweenGroups,
    ToOverall,
}

/// One rate compared across the groups of a slice.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Disparity {
    pub metric: DisparityMetric,
    pub method: Method,
    pub difference: Estimate,
    pub ratio: Estimate,
    /// Groups left out because their own value is undefined.
    pub excluded_groups: Vec<String>,
}

/// AIF360's signed comparison of unprivileged vs privileged rows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PrivilegedComparison {
    pub privileged: String,
    pub privileged_count: u64,
    pub unprivileged_count: u64,
    /// P(selected | unprivileged) − P(selected | privileged).
    pub statistical_parity_difference: Estimate,
    /// P(selected | unprivileged) / P(selected | privileged).
    pub disparate_impact: Estimate,
    /// TPR(unprivileged) − TPR(privileged).
    pub equal_opportunity_difference: Estimate,
    /// ½ [(FPR_u − FPR_p) + (TPR_u − TPR_p)].
    pub average_odds_difference: Estimate,
    /// ½ [|FPR_u − FPR_p| + |TPR_u − TPR_p|].
    pub average_abs_odds_difference: Estimate,
    /// max(|FPR_u − FPR_p|, |TPR_u − TPR_p|).
    pub equalized_odds_difference: Estimate,
}

/// The four-fifths (80 %) rule on selection rates.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FourFifths {
    pub threshold: f64,
    /// The group with the highest selection rate among groups with at least
    /// `min_reference_size` members, against which impact ratios are taken.
    pub reference_group: Option<String>,
    #[serde(default)]
    pub min_reference_size: u64,
    /// `false` when no group had `min_reference_size` members, so every group was eligible.
    #[serde(default = "yes")]
    pub reference_size_met: bool,
    /// `null` when no group has a defined selection rate.
    pub passes: Option<bool>,
    pub failing_groups: Vec<String>,
}

fn yes() -> bool {
    true
}

/// Representation of one slice's groups in the data vs a reference population.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Representation {
    pub attributes: Vec<String>,
    pub groups: Vec<RepresentationRow>,
}

/// One group's share in the data vs the reference.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RepresentationRow {
    pub group: Vec<String>,
    pub label: String,
    /// Rows in the data (0 for a reference group absent from the data).
    pub count: u64,
    pub data_share: f64,
    /// `null` for a group that is in the data but not in the reference.
    pub reference_share: Option<f64>,
    /// data_share / reference_share.
    pub ratio: Estimate,
    /// data_share − reference_share.
    pub difference: Estimate,
}

/// Association between a candidate feature and a protected attribute (or their intersection).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProxyAssociation {
    pub feature: String,
    pub attributes: Vec<String>,
    /// Distinct feature values after rare values were pooled.
    pub levels: usize,
    pub rows: u64,
    /// Cramér's V (no bias correction), in [0, 1].
    pub cramers_v: Estimate,
    /// Mutual information / mean of the two entropies (scikit-learn's arithmetic normalisation).
    pub normalized_mutual_information: Estimate,
    /// Above either configured threshold.
    pub strong: bool,
}

/// The JSON document the CLI writes and the API serves: the report plus the findings drawn from it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditDocument {
    pub report: Report,
    pub findings: Vec<Finding>,
}

/// Pretty JSON of an [`AuditDocument`].
pub fn render_json(report: &Report, findings: &[Finding]) -> String {
    let doc = AuditDocument {
        report: report.clone(),
        findings: findings.to_vec(),
    };
    // Serialising plain data with string keys and finite numbers cannot fail.
    serde_json::to_string_pretty(&doc).expect("report serialises")
}
