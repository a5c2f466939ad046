//! Turning a table's sufficient statistics into a [`Report`].
//!
//! Invariant: point estimates and bootstrap replicates go through the very same function
//! ([`count_metrics`]) and the same flat slot layout ([`Layout`]), so an interval always belongs to
//! the number printed next to it. Slices (one attribute, or the intersection) are built by summing
//! intersectional statistics, never by re-reading rows.

use crate::bootstrap::{Bootstrap, Rng, percentile_interval, resample};
use crate::data_audit::{ProxyOptions, ReferenceDistribution, proxy_associations, representation};
use crate::decision::Decisions;
use crate::error::FairnessError;
use crate::metrics::{Comparison, Reference, Undefined, Value, compare, fraction, rates, worst_of};
use crate::report::{
    Calibration, CalibrationBin, Disparity, DisparityMetric, Estimate, Exposure, FourFifths,
    GroupMetrics, InputSummary, Method, PrivilegedComparison, PrivilegedValue, Report,
    SCHEMA_VERSION, Settings, Slice,
};
use crate::stats::{Counts, GroupStats, TableStats};

/// What to compute and how.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditOptions {
    /// Privileged group, as `value` or `attribute=value`; several entries are intersected
    /// (`sex=Male`, `race=White`). Empty: no AIF360 comparison.
    pub privileged: Vec<String>,
    /// Equal-width score bins on [0, 1] for calibration curves.
    pub calibration_bins: usize,
    pub bootstrap: Bootstrap,
    /// Impact ratio below which a group fails the four-fifths rule.
    pub four_fifths_threshold: f64,
    /// Members (rows) a group needs to be the four-fifths reference group: the reference is the
    /// highest selection rate among groups at least this large (all groups when none is).
    pub min_reference_size: u64,
    pub reference: Option<ReferenceDistribution>,
    pub proxy: ProxyOptions,
    /// Worker threads for accumulation and CSV parsing.
    pub threads: usize,
}

/// Default [`AuditOptions::min_reference_size`]: below 100 members a selection rate's 95 %
/// interval is wider than ±10 points, too noisy to measure everyone else against.
pub const DEFAULT_MIN_REFERENCE_SIZE: u64 = 100;

impl Default for AuditOptions {
    fn default() -> Self {
        AuditOptions {
            privileged: Vec::new(),
            calibration_bins: 10,
            bootstrap: Bootstrap::default(),
            four_fifths_threshold: 0.8,
            min_reference_size: DEFAULT_MIN_REFERENCE_SIZE,
            reference: None,
            proxy: ProxyOptions::default(),
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
        }
    }
}

/// Audit an in-memory decision table.
pub fn audit_decisions(d: &Decisions, options: &AuditOptions) -> Result<Report, FairnessError> {
    if d.is_empty() {
        return Err(FairnessError::Empty {
            what: "the decision table".into(),
        });
    }
    let stats = d.stats(options.calibration_bins, options.threads);
    audit_stats(&stats, options, None)
}

/// Audit precomputed statistics (the CSV reader and [`audit_decisions`] both end here).
pub fn audit_stats(
    t: &TableStats,
    o: &AuditOptions,
    source: Option<String>,
) -> Result<Report, FairnessError> {
    validate(o)?;
    if t.rows == 0 || t.groups.is_empty() {
        return Err(FairnessError::Empty {
            what: source.unwrap_or_else(|| "the decision table".into()),
        });
    }
    let privileged = resolve_privileged(t, &o.privileged)?;

    let mut plans: Vec<SlicePlan> = (0..t.attributes.len())
        .map(|a| SlicePlan::new(t, vec![a], &privileged))
        .collect();
    if t.attributes.len() > 1 {
        plans.push(SlicePlan::new(
            t,
            (0..t.attributes.len()).collect(),
            &privileged,
        ));
    }

    let inter: Vec<Counts> = t.stats.iter().map(|s| s.counts).collect();
    for p in &mut plans {
        p.set_reference_eligible(&inter, o.min_reference_size);
    }
    let points: Vec<CountMetrics> = plans
        .iter()
        .map(|p| count_metrics(&p.sum_counts(&inter), t.has_label, p))
        .collect();
    let intervals = bootstrap_intervals(t, &plans, &inter, &o.bootstrap);

    let total_w: f64 = inter.iter().map(Counts::w).sum();
    let total_exposure: f64 = t.stats.iter().map(|s| s.exposure.w_exposure).sum();
    let mut all = GroupStats::new(t.calibration_bins);
    for s in &t.stats {
        all.merge(s);
    }
    let ctx = Context {
        t,
        total_w,
        total_exposure,
        threshold: o.four_fifths_threshold,
        min_reference_size: o.min_reference_size,
    };

    let slices: Vec<Slice> = plans
        .iter()
        .zip(points.iter())
        .zip(intervals.iter())
        .map(|((plan, m), cis)| build_slice(&ctx, plan, m, cis, &privileged))
        .collect();
    let overall_rates = rates(&all.counts, t.has_label);
    let mut overall = ctx.group_metrics(
        Vec::new(),
        "All".into(),
        &all,
        [
            overall_rates.selection,
            overall_rates.tpr,
            overall_rates.fpr,
            overall_rates.precision,
            overall_rates.base_rate,
            Err(Undefined::FewerThanTwoGroups),
        ],
        &[None; GROUP_SLOTS],
    );
    overall.passes_four_fifths = None;

    let representation = match &o.reference {
        Some(r) => vec![representation(t, r)?],
        None => Vec::new(),
    };
    let proxies = proxy_associations(t, &o.proxy);

    Ok(Report {
        schema_version: SCHEMA_VERSION,
        input: InputSummary {
            source,
            rows: t.rows,
            total_weight: total_w,
            attributes: t.attributes.clone(),
            has_label: t.has_label,
            has_score: t.has_score,
            has_rank: t.has_rank,
            weighted: t.weighted,
        },
        settings: Settings {
            bootstrap: o.bootstrap,
            calibration_bins: t.calibration_bins,
            four_fifths_threshold: o.four_fifths_threshold,
            min_reference_size: o.min_reference_size,
            privileged,
        },
        overall,
        slices,
        representation,
        proxies,
        recommendations: None,
        scope: None,
    })
}

fn validate(o: &AuditOptions) -> Result<(), FairnessError> {
    let bad = |option, reason: &str| {
        Err(FairnessError::BadOption {
            option,
            reason: reason.into(),
        })
    };
    if !(1..=1000).contains(&o.calibration_bins) {
        return bad("calibration_bins", "must be between 1 and 1000");
    }
    if !(o.bootstrap.confidence > 0.0 && o.bootstrap.confidence < 1.0) {
        return bad("bootstrap.confidence", "must be strictly between 0 and 1");
    }
    if !(o.four_fifths_threshold > 0.0 && o.four_fifths_threshold <= 1.0) {
        return bad("four_fifths_threshold", "must be in (0, 1]");
    }
    Ok(())
}

/// Resolve `value` / `attribute=value` specs against the table's attributes and values.
pub fn resolve_privileged(
    t: &TableStats,
    specs: &[String],
) -> Result<Vec<PrivilegedValue>, FairnessError> {
    resolve_privileged_in(&t.attributes, &t.groups, specs)
}

/// [`resolve_privileged`] over bare attribute names and intersectional group keys.
pub fn resolve_privileged_in(
    attributes: &[String],
    groups: &[Vec<String>],
    specs: &[String],
) -> Result<Vec<PrivilegedValue>, FairnessError> {
    struct T<'a> {
        attributes: &'a [String],
        groups: &'a [Vec<String>],
    }
    let t = T { attributes, groups };
    let mut out: Vec<PrivilegedValue> = Vec::new();
    for spec in specs {
        let values_of = |a: usize| -> Vec<&str> {
            let mut v: Vec<&str> = t.groups.iter().map(|g| g[a].as_str()).collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        let (attribute, value) = match spec.split_once('=') {
            Some((a, v)) => {
                let Some(ai) = t.attributes.iter().position(|x| x == a.trim()) else {
                    return Err(FairnessError::BadPrivileged {
                        spec: spec.clone(),
                        reason: format!(
                            "`{}` is not a group attribute (attributes: {})",
                            a.trim(),
                            t.attributes.join(", ")
                        ),
                    });
                };
                let v = v.trim();
                if !values_of(ai).contains(&v) {
                    return Err(FairnessError::UnknownPrivileged {
                        spec: spec.clone(),
                        hint: format!("; values of `{}`: {}", a.trim(), values_of(ai).join(", ")),
                    });
                }
                (ai, v.to_owned())
            }
            None => {
                let v = spec.trim();
                let hits: Vec<usize> = (0..t.attributes.len())
                    .filter(|&a| values_of(a).contains(&v))
                    .collect();
                match hits.as_slice() {
                    [a] => (*a, v.to_owned()),
                    [] => {
                        let hint = (0..t.attributes.len())
                            .map(|a| format!("{}: {}", t.attributes[a], values_of(a).join(", ")))
                            .collect::<Vec<_>>()
                            .join("; ");
                        return Err(FairnessError::UnknownPrivileged {
                            spec: spec.clone(),
                            hint: format!("; known values: {hint}"),
                        });
                    }
                    many => {
                        return Err(FairnessError::BadPrivileged {
                            spec: spec.clone(),
                            reason: format!(
                                "value appears in several attributes ({}); write attribute=value",
                                many.iter()
                                    .map(|&a| t.attributes[a].as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        });
                    }
                }
            }
        };
        if out.iter().any(|p| p.attribute == t.attributes[attribute]) {
            return Err(FairnessError::BadPrivileged {
                spec: spec.clone(),
                reason: "attribute given twice".into(),
            });
        }
        out.push(PrivilegedValue {
            attribute: t.attributes[attribute].clone(),
            value,
        });
    }
    let matches = |g: &Vec<String>| {
        out.iter().all(|pv| {
            t.attributes
                .iter()
                .position(|a| *a == pv.attribute)
                .is_some_and(|a| g[a] == pv.value)
        })
    };
    if !out.is_empty() && !t.groups.iter().any(matches) {
        return Err(FairnessError::UnknownPrivileged {
            spec: specs.join(" & "),
            hint: " (no row has all of these values together)".into(),
        });
    }
    Ok(out)
}

/// How one slice's groups are formed from the intersectional groups.
struct SlicePlan {
    attributes: Vec<usize>,
    groups: Vec<Vec<String>>,
    /// For each intersectional group, the slice group it belongs to.
    member: Vec<usize>,
    /// For each slice group, whether it is privileged (when the slice covers the privileged attributes).
    privileged: Option<Vec<bool>>,
    /// For each slice group, whether it may be the four-fifths reference (fixed from the data,
    /// not per bootstrap replicate).
    reference_eligible: Vec<bool>,
    /// Whether some group reached the minimum reference size (else every group is eligible).
    reference_size_met: bool,
}

impl SlicePlan {
    fn new(t: &TableStats, attributes: Vec<usize>, privileged: &[PrivilegedValue]) -> Self {
        let project = |g: &Vec<String>| attributes.iter().map(|&a| g[a].clone()).collect();
        let mut groups: Vec<Vec<String>> = t.groups.iter().map(project).collect();
        groups.sort();
        groups.dedup();
        let member = t
            .groups
            .iter()
            .map(|g| {
                let key: Vec<String> = project(g);
                groups.binary_search(&key).expect("projection is present")
            })
            .collect();
        let covers = !privileged.is_empty()
            && privileged
                .iter()
                .all(|p| attributes.iter().any(|&a| t.attributes[a] == p.attribute));
        let privileged = covers.then(|| {
            groups
                .iter()
                .map(|g| {
                    privileged.iter().all(|p| {
                        attributes
                            .iter()
                            .position(|&a| t.attributes[a] == p.attribute)
                            .is_some_and(|i| g[i] == p.value)
                    })
                })
                .collect()
        });
        let n = groups.len();
        SlicePlan {
            attributes,
            groups,
            member,
            privileged,
            reference_eligible: vec![true; n],
            reference_size_met: false,
        }
    }

    /// Groups with at least `min` rows may be the reference; all of them when none has.
    fn set_reference_eligible(&mut self, inter: &[Counts], min: u64) {
        let eligible: Vec<bool> = self
            .sum_counts(inter)
            .iter()
            .map(|c| c.n() >= min)
            .collect();
        self.reference_size_met = eligible.iter().any(|&e| e);
        self.reference_eligible = if self.reference_size_met {
            eligible
        } else {
            vec![true; eligible.len()]
        };
    }

    fn sum_counts(&self, inter: &[Counts]) -> Vec<Counts> {
        let mut out = vec![Counts::default(); self.groups.len()];
        for (i, c) in inter.iter().enumerate() {
            out[self.member[i]].merge(c);
        }
        out
    }

    fn sum_stats(&self, t: &TableStats) -> Vec<GroupStats> {
        let mut out = vec![GroupStats::new(t.calibration_bins); self.groups.len()];
        for (i, s) in t.stats.iter().enumerate() {
            out[self.member[i]].merge(s);
        }
        out
    }
}

/// Slots per group: selection, TPR, FPR, precision, base rate, impact ratio.
const GROUP_SLOTS: usize = 6;
const OVERALL_SLOTS: usize = 5;
const PRIVILEGED_SLOTS: usize = 6;
/// The comparisons reported for every slice, each with a difference and a ratio slot.
const COMPARED: [(DisparityMetric, Method); 8] = [
    (DisparityMetric::DemographicParity, Method::BetweenGroups),
    (DisparityMetric::DemographicParity, Method::ToOverall),
    (DisparityMetric::EqualOpportunity, Method::BetweenGroups),
    (DisparityMetric::EqualOpportunity, Method::ToOverall),
    (DisparityMetric::FalsePositiveRate, Method::BetweenGroups),
    (DisparityMetric::FalsePositiveRate, Method::ToOverall),
    (DisparityMetric::EqualizedOdds, Method::BetweenGroups),
    (DisparityMetric::EqualizedOdds, Method::ToOverall),
];

/// Position of every count-based value in the flat vector.
#[derive(Clone, Copy)]
struct Layout {
    groups: usize,
}

impl Layout {
    fn group(self, g: usize, k: usize) -> usize {
        g * GROUP_SLOTS + k
    }
    fn overall(self, k: usize) -> usize {
        self.groups * GROUP_SLOTS + k
    }
    fn comparison(self, c: usize, k: usize) -> usize {
        self.overall(OVERALL_SLOTS) + c * 2 + k
    }
    fn privileged(self, k: usize) -> usize {
        self.comparison(COMPARED.len(), 0) + k
    }
    fn len(self) -> usize {
        self.privileged(PRIVILEGED_SLOTS)
    }
}

/// Count-based metrics of one slice, flat in [`Layout`] order.
struct CountMetrics {
    values: Vec<Value>,
    excluded: Vec<Vec<usize>>,
}

fn count_metrics(groups: &[Counts], has_label: bool, plan: &SlicePlan) -> CountMetrics {
    let privileged = plan.privileged.as_deref();
    let layout = Layout {
        groups: groups.len(),
    };
    let mut values = vec![Err(Undefined::NoMembers); layout.len()];
    let rs: Vec<_> = groups.iter().map(|c| rates(c, has_label)).collect();
    let mut all = Counts::default();
    for c in groups {
        all.merge(c);
    }
    let overall = rates(&all, has_label);

    let max_selection = rs
        .iter()
        .zip(&plan.reference_eligible)
        .filter(|(_, e)| **e)
        .filter_map(|(r, _)| r.selection.ok())
        .fold(None::<f64>, |m, x| Some(m.map_or(x, |m| m.max(x))));
    for (g, r) in rs.iter().enumerate() {
        let impact = match (r.selection, max_selection) {
            (Ok(s), Some(m)) => fraction(s, m, Undefined::ZeroDenominator),
            (Err(e), _) => Err(e),
            (_, None) => Err(Undefined::FewerThanTwoGroups),
        };
        for (k, v) in [r.selection, r.tpr, r.fpr, r.precision, r.base_rate, impact]
            .into_iter()
            .enumerate()
        {
            values[layout.group(g, k)] = v;
        }
    }
    let ov = [
        overall.selection,
        overall.tpr,
        overall.fpr,
        overall.precision,
        overall.base_rate,
    ];
    for (k, v) in ov.into_iter().enumerate() {
        values[layout.overall(k)] = v;
    }

    let columns: [Vec<Value>; 3] = std::array::from_fn(|k| {
        (0..groups.len())
            .map(|g| values[layout.group(g, k)])
            .collect()
    });
    let by_method = |k: usize, m: Method| match m {
        Method::BetweenGroups => compare(&columns[k], Reference::BetweenGroups),
        Method::ToOverall => compare(&columns[k], Reference::Overall(ov[k])),
    };
    let mut excluded = Vec::with_capacity(COMPARED.len());
    for (c, &(metric, method)) in COMPARED.iter().enumerate() {
        let (d, r, ex) = match metric {
            DisparityMetric::DemographicParity => split(by_method(0, method)),
            DisparityMetric::EqualOpportunity => split(by_method(1, method)),
            DisparityMetric::FalsePositiveRate => split(by_method(2, method)),
            // Equalized odds: the worst of the TPR and FPR comparisons.
            _ => {
                let (tpr, fpr) = (by_method(1, method), by_method(2, method));
                let (d, r) = worst_of(&tpr, &fpr);
                let mut ex = tpr.excluded;
                ex.extend(fpr.excluded);
                ex.sort_unstable();
                ex.dedup();
                (d, r, ex)
            }
        };
        values[layout.comparison(c, 0)] = d;
        values[layout.comparison(c, 1)] = r;
        excluded.push(ex);
    }

    if let Some(mask) = privileged {
        // Two pooled groups: index 0 unprivileged, index 1 privileged, as AIF360 forms them.
        let mut pooled = [Counts::default(); 2];
        for (c, &p) in groups.iter().zip(mask) {
            pooled[usize::from(p)].merge(c);
        }
        let pr = [rates(&pooled[0], has_label), rates(&pooled[1], has_label)];
        let cmp = |f: fn(&crate::metrics::Rates) -> Value| {
            compare(&[f(&pr[0]), f(&pr[1])], Reference::Privileged(1))
        };
        let sel = cmp(|r| r.selection);
        let tpr = cmp(|r| r.tpr).difference;
        let fpr = cmp(|r| r.fpr).difference;
        let both = |f: fn(f64, f64) -> f64| match (tpr, fpr) {
            (Ok(a), Ok(b)) => Ok(f(a, b)),
            (Err(e), _) | (_, Err(e)) => Err(e),
        };
        let slots = [
            sel.difference,
            sel.ratio,
            tpr,
            both(|a, b| (a + b) / 2.0),
            both(|a, b| (a.abs() + b.abs()) / 2.0),
            both(|a, b| a.abs().max(b.abs())),
        ];
        for (k, v) in slots.into_iter().enumerate() {
            values[layout.privileged(k)] = v;
        }
    }
    CountMetrics { values, excluded }
}

fn split(c: Comparison) -> (Value, Value, Vec<usize>) {
    (c.difference, c.ratio, c.excluded)
}

/// Percentile intervals for every slot of every slice.
fn bootstrap_intervals(
    t: &TableStats,
    plans: &[SlicePlan],
    inter: &[Counts],
    b: &Bootstrap,
) -> Vec<Vec<Option<[f64; 2]>>> {
    let lens: Vec<usize> = plans
        .iter()
        .map(|p| {
            Layout {
                groups: p.groups.len(),
            }
            .len()
        })
        .collect();
    if b.replicates == 0 {
        return lens.iter().map(|&l| vec![None; l]).collect();
    }
    let mut samples: Vec<Vec<Vec<f64>>> = lens
        .iter()
        .map(|&l| vec![Vec::with_capacity(b.replicates); l])
        .collect();
    let mut rng = Rng::new(b.seed);
    for _ in 0..b.replicates {
        let replicate = resample(inter, &mut rng);
        for (p, plan) in plans.iter().enumerate() {
            let m = count_metrics(&plan.sum_counts(&replicate), t.has_label, plan);
            for (slot, v) in m.values.iter().enumerate() {
                if let Ok(x) = v {
                    samples[p][slot].push(*x);
                }
            }
        }
    }
    samples
        .into_iter()
        .map(|slots| {
            slots
                .into_iter()
                .map(|mut s| {
                    // A value undefined in most replicates has no meaningful interval.
                    if s.len() * 2 < b.replicates {
                        None
                    } else {
                        percentile_interval(&mut s, b.confidence)
                    }
                })
                .collect()
        })
        .collect()
}

struct Context<'a> {
    t: &'a TableStats,
    total_w: f64,
    total_exposure: f64,
    threshold: f64,
    min_reference_size: u64,
}

impl Context<'_> {
    fn group_metrics(
        &self,
        group: Vec<String>,
        label: String,
        s: &GroupStats,
        v: [Value; GROUP_SLOTS],
        ci: &[Option<[f64; 2]>],
    ) -> GroupMetrics {
        let e = |k: usize| Estimate::with_ci(v[k], ci[k]);
        let count = s.counts.n();
        let weight = s.counts.w();
        GroupMetrics {
            group,
            label,
            count,
            weight,
            share: count as f64 / self.t.rows as f64,
            selection_rate: e(0),
            true_positive_rate: e(1),
            false_positive_rate: e(2),
            precision: e(3),
            base_rate: e(4),
            impact_ratio: e(5),
            passes_four_fifths: v[5].ok().map(|r| r >= self.threshold),
            calibration: self.t.has_score.then(|| self.calibration(s)),
            exposure: self.t.has_rank.then(|| self.exposure(s)),
        }
    }

    fn calibration(&self, s: &GroupStats) -> Calibration {
        let sc = &s.score;
        let labelled = if self.t.has_label {
            Ok(sc.w_labelled)
        } else {
            Err(Undefined::NoLabels)
        };
        let lab_score: f64 = sc.bins.iter().map(|b| b.w_score).sum();
        let per_labelled = |num: f64| labelled.and_then(|w| fraction(num, w, Undefined::NoMembers));
        let observed = per_labelled(sc.w_pos);
        let gap = per_labelled(lab_score - sc.w_pos);
        let ece = per_labelled(sc.bins.iter().map(|b| (b.w_score - b.w_pos).abs()).sum());
        let k = sc.bins.len() as f64;
        Calibration {
            mean_score: Estimate::new(fraction(sc.w_score, sc.w, Undefined::NoMembers)),
            observed_rate: Estimate::new(observed),
            gap: Estimate::new(gap),
            expected_calibration_error: Estimate::new(ece),
            bins: sc
                .bins
                .iter()
                .enumerate()
                .map(|(i, b)| CalibrationBin {
                    lower: i as f64 / k,
                    upper: (i + 1) as f64 / k,
                    count: b.n,
                    mean_score: (b.w > 0.0).then(|| b.w_score / b.w),
                    observed_rate: (b.w > 0.0).then(|| b.w_pos / b.w),
                })
                .collect(),
        }
    }

    fn exposure(&self, s: &GroupStats) -> Exposure {
        let w = s.counts.w();
        let e = &s.exposure;
        let share = fraction(
            e.w_exposure,
            self.total_exposure,
            Undefined::ZeroDenominator,
        );
        let pop = fraction(w, self.total_w, Undefined::NoMembers);
        let ratio = match (share, pop) {
            (Ok(a), Ok(b)) => fraction(a, b, Undefined::NoMembers),
            (Err(x), _) | (_, Err(x)) => Err(x),
        };
        let mut cum = 0.0;
        Exposure {
            mean_exposure: Estimate::new(fraction(e.w_exposure, w, Undefined::NoMembers)),
            exposure_share: Estimate::new(share),
            population_share: Estimate::new(pop),
            share_ratio: Estimate::new(ratio),
            ranked: e.ranked,
            cumulative_by_rank: e
                .by_rank
                .iter()
                .map(|x| {
                    cum += x;
                    if w > 0.0 { cum / w } else { 0.0 }
                })
                .collect(),
        }
    }
}

fn build_slice(
    ctx: &Context<'_>,
    plan: &SlicePlan,
    m: &CountMetrics,
    cis: &[Option<[f64; 2]>],
    privileged: &[PrivilegedValue],
) -> Slice {
    let t = ctx.t;
    let layout = Layout {
        groups: plan.groups.len(),
    };
    let stats = plan.sum_stats(t);
    let labels: Vec<String> = plan.groups.iter().map(|g| g.join(" & ")).collect();
    let groups: Vec<GroupMetrics> = plan
        .groups
        .iter()
        .enumerate()
        .map(|(g, key)| {
            let base = layout.group(g, 0);
            let v: [Value; GROUP_SLOTS] = std::array::from_fn(|k| m.values[base + k]);
            ctx.group_metrics(
                key.clone(),
                labels[g].clone(),
                &stats[g],
                v,
                &cis[base..base + GROUP_SLOTS],
            )
        })
        .collect();

    let est = |slot: usize| Estimate::with_ci(m.values[slot], cis[slot]);
    let mut disparities: Vec<Disparity> = COMPARED
        .iter()
        .enumerate()
        .map(|(c, &(metric, method))| Disparity {
            metric,
            method,
            difference: est(layout.comparison(c, 0)),
            ratio: est(layout.comparison(c, 1)),
            excluded_groups: m.excluded[c].iter().map(|&g| labels[g].clone()).collect(),
        })
        .collect();
    if t.has_rank {
        let mean: Vec<Value> = groups
            .iter()
            .map(|g| {
                g.exposure
                    .as_ref()
                    .map_or(Err(Undefined::NoRanks), |e| e.mean_exposure.value())
            })
            .collect();
        let overall = fraction(ctx.total_exposure, ctx.total_w, Undefined::NoMembers);
        for (method, reference) in [
            (Method::BetweenGroups, Reference::BetweenGroups),
            (Method::ToOverall, Reference::Overall(overall)),
        ] {
            let c = compare(&mean, reference);
            disparities.push(Disparity {
                metric: DisparityMetric::Exposure,
                method,
                difference: Estimate::new(c.difference),
                ratio: Estimate::new(c.ratio),
                excluded_groups: c.excluded.iter().map(|&g| labels[g].clone()).collect(),
            });
        }
    }

    let privileged_cmp = plan.privileged.as_ref().map(|mask| {
        let count = |want: bool| -> u64 {
            stats
                .iter()
                .zip(mask)
                .filter(|(_, p)| **p == want)
                .map(|(s, _)| s.counts.n())
                .sum()
        };
        let p = |k| est(layout.privileged(k));
        PrivilegedComparison {
            privileged: privileged
                .iter()
                .map(|p| format!("{}={}", p.attribute, p.value))
                .collect::<Vec<_>>()
                .join(" & "),
            privileged_count: count(true),
            unprivileged_count: count(false),
            statistical_parity_difference: p(0),
            disparate_impact: p(1),
            equal_opportunity_difference: p(2),
            average_odds_difference: p(3),
            average_abs_odds_difference: p(4),
            equalized_odds_difference: p(5),
        }
    });

    let defined: Vec<(usize, f64)> = groups
        .iter()
        .enumerate()
        .filter_map(|(i, g)| g.selection_rate.value.map(|v| (i, v)))
        .collect();
    let reference_group = defined
        .iter()
        .filter(|(i, _)| plan.reference_eligible[*i])
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|&(i, _)| labels[i].clone());
    let failing: Vec<String> = groups
        .iter()
        .filter(|g| g.passes_four_fifths == Some(false))
        .map(|g| g.label.clone())
        .collect();
    let any_impact = groups.iter().any(|g| g.passes_four_fifths.is_some());
    Slice {
        attributes: plan
            .attributes
            .iter()
            .map(|&a| t.attributes[a].clone())
            .collect(),
        groups,
        disparities,
        privileged: privileged_cmp,
        four_fifths: FourFifths {
            threshold: ctx.threshold,
            reference_group,
            min_reference_size: ctx.min_reference_size,
            reference_size_met: plan.reference_size_met,
            passes: any_impact.then_some(failing.is_empty()),
            failing_groups: failing,
        },
    }
}
