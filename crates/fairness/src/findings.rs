//! Bias findings: what in a report crosses a configured threshold, in plain language.
//!
//! Invariant: pure and deterministic — the same report and thresholds give the same findings in
//! the same order, each with a stable `key` so an incident log can recognise a recurring finding
//! across scheduled audits. Nothing here stores anything: the server persists findings as
//! incidents (finding, affected groups, action taken, resolution).

use serde::{Deserialize, Serialize};

use crate::report::{DisparityMetric, Estimate, GroupMetrics, Method, Report, Slice};

/// When a metric becomes a finding.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Thresholds {
    /// Drop a between-group finding whose confidence interval includes "no disparity" (the
    /// default). `false` keeps it, marked `significant: false` and one severity lower.
    pub require_significance: bool,
    /// Groups smaller than this produce findings one severity lower (their rates are noisy).
    pub min_group_size: u64,
    /// Impact ratio below which the four-fifths rule fails.
    pub four_fifths: f64,
    /// Selection-rate difference (between groups) above which parity is flagged.
    pub parity_difference: f64,
    /// True-positive-rate difference above which equal opportunity is flagged.
    pub opportunity_difference: f64,
    /// Equalized-odds difference above which it is flagged.
    pub odds_difference: f64,
    /// |mean score − observed rate| within a group above which calibration is flagged.
    pub calibration_gap: f64,
    /// Exposure-per-member ratio (between groups) below which exposure is flagged.
    pub exposure_ratio: f64,
    /// Data share / reference share below which a group is under-represented.
    pub representation_ratio: f64,
    /// Cramér's V at or above which a feature is flagged as a proxy.
    pub proxy_cramers_v: f64,
    /// Premium-offer share difference between subject groups above which it is flagged.
    pub premium_share_difference: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            require_significance: true,
            min_group_size: 30,
            four_fifths: 0.8,
            parity_difference: 0.1,
            opportunity_difference: 0.1,
            odds_difference: 0.1,
            calibration_gap: 0.05,
            exposure_ratio: 0.8,
            representation_ratio: 0.8,
            proxy_cramers_v: 0.3,
            premium_share_difference: 0.1,
        }
    }
}

/// How urgent a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Low,
    Medium,
    High,
}

impl Severity {
    fn lower(self) -> Severity {
        match self {
            Severity::High => Severity::Medium,
            _ => Severity::Low,
        }
    }
}

/// What kind of problem a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    FourFifths,
    DemographicParity,
    EqualOpportunity,
    EqualizedOdds,
    Calibration,
    Exposure,
    Representation,
    Proxy,
    PremiumShare,
}

/// One bias finding, ready to be logged as an incident.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable identity across audits: kind plus attributes (plus feature for proxies).
    pub key: String,
    pub kind: FindingKind,
    /// The metric as named in the JSON report.
    pub metric: String,
    pub attributes: Vec<String>,
    pub groups_affected: Vec<String>,
    /// The group compared against (best-off group, privileged group or reference).
    pub reference_group: Option<String>,
    pub value: f64,
    pub threshold: f64,
    /// How far past the threshold, as a fraction of the threshold (0.5 = 50 % beyond).
    pub magnitude: f64,
    pub ci: Option<[f64; 2]>,
    /// Whether the confidence interval excludes "no disparity" (`null` without an interval).
    pub significant: Option<bool>,
    pub severity: Severity,
    /// One or two sentences a marketer can read without help.
    pub summary: String,
    /// What to do about it.
    pub action: String,
}

/// The incident log's name for a finding not yet persisted.
pub type IncidentDraft = Finding;

/// Evaluate a report against thresholds. Most severe first, then by key.
pub fn findings(r: &Report, th: &Thresholds) -> Vec<Finding> {
    let mut out = Vec::new();
    for s in &r.slices {
        slice_findings(s, th, &mut out);
    }
    for rep in &r.representation {
        let low: Vec<_> = rep
            .groups
            .iter()
            .filter(|g| g.ratio.value.is_some_and(|x| x < th.representation_ratio))
            .collect();
        if let Some(worst) = low.iter().min_by(|a, b| {
            a.ratio
                .value
                .unwrap_or(0.0)
                .total_cmp(&b.ratio.value.unwrap_or(0.0))
        }) {
            let v = worst.ratio.value.unwrap_or(0.0);
            out.push(Finding {
                key: format!("representation:{}", rep.attributes.join("+")),
                kind: FindingKind::Representation,
                metric: "representation.ratio".into(),
                attributes: rep.attributes.clone(),
                groups_affected: low.iter().map(|g| g.label.clone()).collect(),
                reference_group: None,
                value: v,
                threshold: th.representation_ratio,
                magnitude: below(v, th.representation_ratio),
                ci: None,
                significant: None,
                severity: ratio_severity(v, th.representation_ratio),
                summary: format!(
                    "{} make up {} of the data but {} of the reference population ({:.2} times their expected share).",
                    worst.label,
                    pct(worst.data_share),
                    pct(worst.reference_share.unwrap_or(0.0)),
                    v
                ),
                action: "Collect more data from under-represented groups or reweigh the training \
                         data; check whether the collection channel excludes them."
                    .into(),
            });
        }
    }
    for p in &r.proxies {
        if let Some(v) = p.cramers_v.value
            && v >= th.proxy_cramers_v
        {
            out.push(Finding {
                key: format!("proxy:{}:{}", p.feature, p.attributes.join("+")),
                kind: FindingKind::Proxy,
                metric: "proxies.cramers_v".into(),
                attributes: p.attributes.clone(),
                groups_affected: Vec::new(),
                reference_group: None,
                value: v,
                threshold: th.proxy_cramers_v,
                magnitude: (v - th.proxy_cramers_v) / th.proxy_cramers_v,
                ci: None,
                significant: None,
                severity: diff_severity(v, th.proxy_cramers_v),
                summary: format!(
                    "The feature \"{}\" is strongly associated with {} (Cramér's V {:.2}): a model can use it to tell groups apart even without seeing {} itself.",
                    p.feature,
                    p.attributes.join(" & "),
                    v,
                    p.attributes.join(" & ")
                ),
                action: format!(
                    "Remove \"{}\" from targeting and model inputs, or coarsen it, unless it is \
                     needed for a documented legitimate reason; re-run the audit afterwards.",
                    p.feature
                ),
            });
        }
    }
    if let Some(rec) = &r.recommendations
        && let Some(v) = rec.premium_share_difference.value
        && v > th.premium_share_difference
    {
        let by = |f: fn(f64, f64) -> bool| {
            rec.subject_groups
                .iter()
                .filter_map(|g| g.premium_share.value.map(|x| (g, x)))
                .reduce(|a, b| if f(b.1, a.1) { b } else { a })
        };
        let (lo, hi) = (by(|a, b| a < b), by(|a, b| a > b));
        if let (Some(lo), Some(hi)) = (lo, hi) {
            out.push(Finding {
                key: "premium_share:subject_group".into(),
                kind: FindingKind::PremiumShare,
                metric: "recommendations.premium_share_difference".into(),
                attributes: vec!["subject_group".into()],
                groups_affected: vec![lo.0.group.clone()],
                reference_group: Some(hi.0.group.clone()),
                value: v,
                threshold: th.premium_share_difference,
                magnitude: (v - th.premium_share_difference) / th.premium_share_difference,
                ci: None,
                significant: None,
                severity: diff_severity(v, th.premium_share_difference),
                summary: format!(
                    "{} see premium offers in {} of their recommendations, {} see them in {}.",
                    lo.0.group,
                    pct(lo.1),
                    hi.0.group,
                    pct(hi.1)
                ),
                action:
                    "Check whether eligibility or ranking rules steer premium offers away from \
                         this group; apply an exposure constraint to premium items if unjustified."
                        .into(),
            });
        }
    }
    out.sort_by(|a, b| b.severity.cmp(&a.severity).then_with(|| a.key.cmp(&b.key)));
    out
}

fn slice_findings(s: &Slice, th: &Thresholds, out: &mut Vec<Finding>) {
    let attrs = s.attributes.join(" & ");
    let key = |k: &str| format!("{k}:{}", s.attributes.join("+"));
    let by_rate = |f: fn(&GroupMetrics) -> &Estimate| -> Option<(&GroupMetrics, &GroupMetrics)> {
        let defined: Vec<(&GroupMetrics, f64)> = s
            .groups
            .iter()
            .filter_map(|g| f(g).value.map(|v| (g, v)))
            .collect();
        let lo = defined.iter().min_by(|a, b| a.1.total_cmp(&b.1))?;
        let hi = defined.iter().max_by(|a, b| a.1.total_cmp(&b.1))?;
        Some((lo.0, hi.0))
    };
    let small = |gs: &[&GroupMetrics]| gs.iter().any(|g| g.count < th.min_group_size);
    let adjust = |sev: Severity, significant: Option<bool>, is_small: bool| {
        let mut s = sev;
        if significant == Some(false) {
            s = s.lower();
        }
        if is_small {
            s = s.lower();
        }
        s
    };
    let noise_note = |significant: Option<bool>, is_small: bool| -> String {
        match (significant, is_small) {
            (Some(false), _) => {
                " The confidence interval includes no difference, so this may be chance.".into()
            }
            (_, true) => format!(
                " Some groups have fewer than {} members, so treat this with care.",
                th.min_group_size
            ),
            _ => String::new(),
        }
    };

    // Four-fifths rule.
    if s.four_fifths.passes == Some(false) {
        // A group whose impact-ratio interval reaches 1 (no disparity) is not listed when
        // significance is required.
        let failing: Vec<&GroupMetrics> = s
            .groups
            .iter()
            .filter(|g| g.impact_ratio.value.is_some_and(|v| v < th.four_fifths))
            .filter(|g| {
                !th.require_significance || ratio_significant(&g.impact_ratio) != Some(false)
            })
            .collect();
        if let Some(worst) = failing.iter().min_by(|a, b| {
            a.impact_ratio
                .value
                .unwrap_or(0.0)
                .total_cmp(&b.impact_ratio.value.unwrap_or(0.0))
        }) {
            let v = worst.impact_ratio.value.unwrap_or(0.0);
            let sig = ratio_significant(&worst.impact_ratio);
            let best = s
                .groups
                .iter()
                .find(|g| Some(&g.label) == s.four_fifths.reference_group.as_ref());
            let is_small = small(&failing) || best.is_some_and(|b| b.count < th.min_group_size);
            out.push(Finding {
                key: key("four_fifths"),
                kind: FindingKind::FourFifths,
                metric: "groups.impact_ratio".into(),
                attributes: s.attributes.clone(),
                groups_affected: failing.iter().map(|g| g.label.clone()).collect(),
                reference_group: s.four_fifths.reference_group.clone(),
                value: v,
                threshold: th.four_fifths,
                magnitude: below(v, th.four_fifths),
                ci: worst.impact_ratio.ci,
                significant: sig,
                severity: adjust(ratio_severity(v, th.four_fifths), sig, is_small),
                summary: format!(
                    "By {attrs}, {} were selected {} of the time versus {} for {}: {:.2} times the rate, below the four-fifths ({:.2}) guideline.{}",
                    worst.label,
                    pct(worst.selection_rate.value.unwrap_or(0.0)),
                    best.and_then(|b| b.selection_rate.value).map_or("?".into(), pct),
                    s.four_fifths.reference_group.as_deref().unwrap_or("the best-off group"),
                    v,
                    th.four_fifths,
                    noise_note(sig, is_small)
                ),
                action: format!(
                    "Review the rule or model behind these decisions for inputs that stand in for \
                     {attrs}; consider reweighing the training data or a fairness-constrained \
                     ranking, and record the business justification if the gap is legitimate."
                ),
            });
        }
    }

    // Rate differences between groups.
    let rate_findings: [RateRule; 3] = [
        (
            DisparityMetric::DemographicParity,
            FindingKind::DemographicParity,
            th.parity_difference,
            |g| &g.selection_rate,
            "selected",
        ),
        (
            DisparityMetric::EqualOpportunity,
            FindingKind::EqualOpportunity,
            th.opportunity_difference,
            |g| &g.true_positive_rate,
            "correctly selected when they qualified",
        ),
        (
            DisparityMetric::EqualizedOdds,
            FindingKind::EqualizedOdds,
            th.odds_difference,
            |g| &g.false_positive_rate,
            "",
        ),
    ];
    for (metric, kind, limit, rate, verb) in rate_findings {
        let Some(d) = s
            .disparities
            .iter()
            .find(|d| d.metric == metric && d.method == Method::BetweenGroups)
        else {
            continue;
        };
        let Some(v) = d.difference.value else {
            continue;
        };
        if v <= limit {
            continue;
        }
        let (lo, hi, pair_rate): (&GroupMetrics, &GroupMetrics, fn(&GroupMetrics) -> &Estimate) =
            match metric {
                // Equalized odds is driven by whichever of TPR and FPR differs more.
                DisparityMetric::EqualizedOdds => {
                    let tpr = by_rate(|g| &g.true_positive_rate);
                    let fpr = by_rate(rate);
                    let spread =
                        |p: Option<(&GroupMetrics, &GroupMetrics)>,
                         f: fn(&GroupMetrics) -> &Estimate| {
                            p.map_or(0.0, |(a, b)| {
                                f(b).value.unwrap_or(0.0) - f(a).value.unwrap_or(0.0)
                            })
                        };
                    if spread(tpr, |g| &g.true_positive_rate)
                        >= spread(fpr, |g| &g.false_positive_rate)
                    {
                        match tpr {
                            Some((a, b)) => (a, b, |g| &g.true_positive_rate),
                            None => continue,
                        }
                    } else {
                        match fpr {
                            Some((a, b)) => (b, a, |g| &g.false_positive_rate),
                            None => continue,
                        }
                    }
                }
                _ => match by_rate(rate) {
                    Some((a, b)) => (a, b, rate),
                    None => continue,
                },
            };
        // The slice's max−min difference is never below 0, so its own bootstrap interval almost
        // never includes 0: judge the two groups named instead, by the interval of their
        // difference from their rates' intervals (half-widths combined as for independent
        // estimates).
        let ci = pair_interval(pair_rate(lo), pair_rate(hi));
        let sig = ci.map(|c| c[0] > 0.0 || c[1] < 0.0);
        if th.require_significance && sig == Some(false) {
            continue;
        }
        let is_small = small(&[lo, hi]);
        let summary = match metric {
            DisparityMetric::EqualizedOdds => format!(
                "By {attrs}, error rates differ by up to {} between groups ({} fares worst against {}): the decisions are not equally accurate for everyone.",
                pts(v),
                lo.label,
                hi.label
            ),
            _ => format!(
                "By {attrs}, {} were {verb} {} of the time versus {} for {} (a gap of {}).",
                lo.label,
                pct(rate(lo).value.unwrap_or(0.0)),
                pct(rate(hi).value.unwrap_or(0.0)),
                hi.label,
                pts(v)
            ),
        };
        out.push(Finding {
            key: key(match kind {
                FindingKind::DemographicParity => "demographic_parity",
                FindingKind::EqualOpportunity => "equal_opportunity",
                _ => "equalized_odds",
            }),
            kind,
            metric: format!("disparities.{}.difference", serde_name(metric)),
            attributes: s.attributes.clone(),
            groups_affected: vec![lo.label.clone()],
            reference_group: Some(hi.label.clone()),
            value: v,
            threshold: limit,
            magnitude: (v - limit) / limit,
            ci,
            significant: sig,
            severity: adjust(diff_severity(v, limit), sig, is_small),
            summary: format!("{summary}{}", noise_note(sig, is_small)),
            action: match metric {
                DisparityMetric::DemographicParity => {
                    "Check whether the gap reflects a legitimate difference in eligibility; if not, \
                     adjust targeting rules or reweigh the training data and re-audit."
                        .to_owned()
                }
                _ => "The model is less accurate for this group: retrain with more or reweighed data \
                      for it, or set decision thresholds per segment after review."
                    .to_owned(),
            },
        });
    }

    // Calibration within groups.
    let miscal: Vec<(&GroupMetrics, f64)> = s
        .groups
        .iter()
        .filter_map(|g| {
            let gap = g.calibration.as_ref()?.gap.value?;
            (gap.abs() > th.calibration_gap && g.count >= th.min_group_size).then_some((g, gap))
        })
        .collect();
    if let Some(&(worst, gap)) = miscal.iter().max_by(|a, b| a.1.abs().total_cmp(&b.1.abs())) {
        out.push(Finding {
            key: key("calibration"),
            kind: FindingKind::Calibration,
            metric: "groups.calibration.gap".into(),
            attributes: s.attributes.clone(),
            groups_affected: miscal.iter().map(|(g, _)| g.label.clone()).collect(),
            reference_group: None,
            value: gap,
            threshold: th.calibration_gap,
            magnitude: (gap.abs() - th.calibration_gap) / th.calibration_gap,
            ci: None,
            significant: None,
            severity: diff_severity(gap.abs(), th.calibration_gap),
            summary: format!(
                "For {}, scores {} the real outcome rate by {}: the same score does not mean the same thing for every group.",
                worst.label,
                if gap > 0.0 { "overstate" } else { "understate" },
                pts(gap.abs())
            ),
            action: "Recalibrate the model per group (or retrain with group-aware calibration) \
                     before using its scores for decisions."
                .into(),
        });
    }

    // Exposure in rankings.
    if let Some(d) = s
        .disparities
        .iter()
        .find(|d| d.metric == DisparityMetric::Exposure && d.method == Method::BetweenGroups)
        && let Some(v) = d.ratio.value
        && v < th.exposure_ratio
        && let Some((lo, hi)) =
            by_rate(|g| g.exposure.as_ref().map_or(&UNDEFINED, |e| &e.mean_exposure))
    {
        let is_small = small(&[lo, hi]);
        out.push(Finding {
            key: key("exposure"),
            kind: FindingKind::Exposure,
            metric: "disparities.exposure.ratio".into(),
            attributes: s.attributes.clone(),
            groups_affected: vec![lo.label.clone()],
            reference_group: Some(hi.label.clone()),
            value: v,
            threshold: th.exposure_ratio,
            magnitude: below(v, th.exposure_ratio),
            ci: None,
            significant: None,
            severity: adjust(ratio_severity(v, th.exposure_ratio), None, is_small),
            summary: format!(
                "By {attrs}, {} get {:.2} times the ranking exposure of {} per member: they are shown lower or less often.{}",
                lo.label,
                v,
                hi.label,
                noise_note(None, is_small)
            ),
            action: "Turn on the fairness-constrained re-ranker with an exposure band for this \
                     attribute, and check what pushes these members down the ranking."
                .into(),
        });
    }
}

/// A rate-difference rule: metric, finding kind, threshold, the group rate, and the verb for it.
type RateRule = (
    DisparityMetric,
    FindingKind,
    f64,
    fn(&GroupMetrics) -> &Estimate,
    &'static str,
);

const UNDEFINED: Estimate = Estimate {
    value: None,
    undefined: None,
    ci: None,
};

/// Whether an impact ratio's interval stays below 1 (no disparity); `None` without one.
fn ratio_significant(e: &Estimate) -> Option<bool> {
    e.ci.map(|c| c[1] < 1.0)
}

/// Interval of |hi − lo| from the two rates' intervals, centred on the observed gap.
fn pair_interval(lo: &Estimate, hi: &Estimate) -> Option<[f64; 2]> {
    let (l, h) = (lo.value?, hi.value?);
    let half = |e: &Estimate| e.ci.map(|c| (c[1] - c[0]) / 2.0);
    let w = half(lo)?.hypot(half(hi)?);
    let gap = (h - l).abs();
    Some([gap - w, gap + w])
}

fn serde_name(m: DisparityMetric) -> String {
    serde_json::to_value(m)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn below(v: f64, limit: f64) -> f64 {
    (limit - v) / limit
}

/// Ratios (lower is worse): under 75 % of the limit is high, under 90 % medium.
fn ratio_severity(v: f64, limit: f64) -> Severity {
    if v < 0.75 * limit {
        Severity::High
    } else if v < 0.9 * limit {
        Severity::Medium
    } else {
        Severity::Low
    }
}

/// Differences (higher is worse): twice the limit is high, 1.5 times medium.
fn diff_severity(v: f64, limit: f64) -> Severity {
    if v >= 2.0 * limit {
        Severity::High
    } else if v >= 1.5 * limit {
        Severity::Medium
    } else {
        Severity::Low
    }
}

pub(crate) fn pct(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

fn pts(x: f64) -> String {
    format!("{:.1} percentage points", 100.0 * x)
}
