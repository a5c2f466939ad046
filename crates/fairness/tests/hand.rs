//! Known values on small tables, computed by hand and cross-checked with Fairlearn 0.15
//! (`/tmp/fl/bin/python` running MetricFrame on the same rows; see docs/FAIRNESS.md).

use candor_fairness::report::{DisparityMetric, Method, Slice};
use candor_fairness::{
    AuditOptions, Bootstrap, Decision, Decisions, DecisionsBuilder, FairnessError, Report,
    Thresholds, Undefined, audit_decisions, findings, render_html,
};

/// Group A: 4 rows, B: 6 rows, C: 2 rows with no positive outcome.
/// (group, selected, label, weight)
const ROWS: [(&str, bool, bool, f64); 12] = [
    ("A", true, true, 1.0),
    ("A", true, false, 2.0),
    ("A", false, true, 1.0),
    ("A", false, false, 1.0),
    ("B", true, true, 3.0),
    ("B", false, true, 1.0),
    ("B", false, true, 1.0),
    ("B", false, false, 1.0),
    ("B", false, false, 2.0),
    ("B", false, false, 1.0),
    ("C", false, false, 1.0),
    ("C", false, false, 1.0),
];

fn table(weighted: bool) -> Decisions {
    let mut b = DecisionsBuilder::new(["g"]);
    for (g, s, y, w) in ROWS {
        b.push(&Decision {
            group: &[g],
            selected: s,
            label: Some(y),
            weight: weighted.then_some(w),
            ..Default::default()
        })
        .unwrap();
    }
    b.build()
}

fn opts() -> AuditOptions {
    AuditOptions {
        bootstrap: Bootstrap {
            replicates: 200,
            ..Default::default()
        },
        threads: 2,
        ..Default::default()
    }
}

fn close(v: Option<f64>, x: f64) {
    let got = v.unwrap_or_else(|| panic!("expected {x}, got null"));
    assert!((got - x).abs() < 1e-12, "expected {x}, got {got}");
}

fn disparity(s: &Slice, m: DisparityMetric, method: Method) -> &candor_fairness::report::Disparity {
    s.disparities
        .iter()
        .find(|d| d.metric == m && d.method == method)
        .unwrap()
}

#[test]
fn unweighted_group_metrics_and_disparities() {
    let r = audit_decisions(&table(false), &opts()).unwrap();
    let s = &r.slices[0];
    let [a, b, c] = [&s.groups[0], &s.groups[1], &s.groups[2]];
    close(a.selection_rate.value, 0.5);
    close(b.selection_rate.value, 1.0 / 6.0);
    close(c.selection_rate.value, 0.0);
    close(a.true_positive_rate.value, 0.5);
    close(b.true_positive_rate.value, 1.0 / 3.0);
    close(b.false_positive_rate.value, 0.0);
    close(b.precision.value, 1.0);
    // C has no positive outcomes and nobody selected: null with a reason, not NaN
    // (Fairlearn/scikit-learn report 0 here via zero_division; we do not).
    assert_eq!(c.true_positive_rate.value, None);
    assert_eq!(
        c.true_positive_rate.undefined,
        Some(Undefined::NoPositiveLabels)
    );
    assert_eq!(c.precision.undefined, Some(Undefined::NoSelections));
    close(c.false_positive_rate.value, 0.0);
    close(r.overall.selection_rate.value, 0.25);
    close(r.overall.true_positive_rate.value, 0.4);
    close(r.overall.false_positive_rate.value, 1.0 / 7.0);

    // Fairlearn: demographic_parity_difference = 0.5 / ratio 0.0 (between_groups),
    // 0.25 / 0.0 (to_overall).
    let dp = disparity(s, DisparityMetric::DemographicParity, Method::BetweenGroups);
    close(dp.difference.value, 0.5);
    close(dp.ratio.value, 0.0);
    let dpo = disparity(s, DisparityMetric::DemographicParity, Method::ToOverall);
    close(dpo.difference.value, 0.25);
    close(dpo.ratio.value, 0.0);
    // Equal opportunity leaves out C (undefined TPR): 1/2 - 1/3, ratio 2/3.
    let eo = disparity(s, DisparityMetric::EqualOpportunity, Method::BetweenGroups);
    close(eo.difference.value, 1.0 / 6.0);
    close(eo.ratio.value, 2.0 / 3.0);
    assert_eq!(eo.excluded_groups, vec!["C".to_string()]);
    // Equalized odds: max(TPR 1/6, FPR 1/2) = 1/2; min ratio(2/3, 0) = 0.
    let eodds = disparity(s, DisparityMetric::EqualizedOdds, Method::BetweenGroups);
    close(eodds.difference.value, 0.5);
    close(eodds.ratio.value, 0.0);

    // Four-fifths: impact ratios 1, 1/3, 0 against A.
    assert_eq!(s.four_fifths.reference_group.as_deref(), Some("A"));
    assert_eq!(s.four_fifths.passes, Some(false));
    assert_eq!(s.four_fifths.failing_groups, vec!["B", "C"]);
    close(b.impact_ratio.value, 1.0 / 3.0);
}

#[test]
fn aif360_signed_forms_against_privileged_group() {
    let mut o = opts();
    o.privileged = vec!["g=A".into()];
    let r = audit_decisions(&table(false), &o).unwrap();
    let p = r.slices[0].privileged.as_ref().unwrap();
    // Unprivileged = B + C: selection 1/8, TPR 1/3, FPR 0/5. Privileged A: 1/2, 1/2, 1/2.
    assert_eq!((p.privileged_count, p.unprivileged_count), (4, 8));
    close(p.statistical_parity_difference.value, 1.0 / 8.0 - 0.5);
    close(p.disparate_impact.value, 0.25);
    close(p.equal_opportunity_difference.value, 1.0 / 3.0 - 0.5);
    close(
        p.average_odds_difference.value,
        ((0.0 - 0.5) + (1.0 / 3.0 - 0.5)) / 2.0,
    );
    close(p.average_abs_odds_difference.value, (0.5 + 1.0 / 6.0) / 2.0);
    close(p.equalized_odds_difference.value, 0.5);
    // Bare value works too.
    o.privileged = vec!["A".into()];
    assert_eq!(
        audit_decisions(&table(false), &o).unwrap().slices[0].privileged,
        Some(p.clone())
    );
}

#[test]
fn sample_weights_match_fairlearn() {
    // Fairlearn 0.15 with sample_weight: selection A 0.6, B 1/3, C 0; overall 0.375;
    // FPR A 2/3, B 0; demographic_parity_difference 0.6 (between) / 0.375 (to_overall).
    let r = audit_decisions(&table(true), &opts()).unwrap();
    let s = &r.slices[0];
    close(s.groups[0].selection_rate.value, 0.6);
    close(s.groups[1].selection_rate.value, 1.0 / 3.0);
    close(s.groups[1].true_positive_rate.value, 0.6);
    close(s.groups[0].false_positive_rate.value, 2.0 / 3.0);
    close(r.overall.selection_rate.value, 0.375);
    close(r.overall.true_positive_rate.value, 4.0 / 7.0);
    close(
        disparity(s, DisparityMetric::DemographicParity, Method::BetweenGroups)
            .difference
            .value,
        0.6,
    );
    close(
        disparity(s, DisparityMetric::DemographicParity, Method::ToOverall)
            .difference
            .value,
        0.375,
    );
    // Equalized odds: FPR spread 2/3 dominates (Fairlearn also gives 2/3 here).
    close(
        disparity(s, DisparityMetric::EqualizedOdds, Method::BetweenGroups)
            .difference
            .value,
        2.0 / 3.0,
    );
}

#[test]
fn bootstrap_is_deterministic_and_brackets_the_estimate() {
    let a = audit_decisions(&table(false), &opts()).unwrap();
    let b = audit_decisions(&table(false), &opts()).unwrap();
    assert_eq!(a, b);
    let e = a.slices[0].groups[0].selection_rate;
    let [lo, hi] = e.ci.unwrap();
    assert!(lo <= e.value.unwrap() && e.value.unwrap() <= hi);
}

#[test]
fn intersectional_slices_and_marginals() {
    let mut b = DecisionsBuilder::new(["sex", "age"]);
    for (sex, age, s) in [
        ("F", "young", true),
        ("F", "old", false),
        ("F", "old", false),
        ("M", "young", true),
        ("M", "old", true),
        ("M", "old", false),
    ] {
        b.push(&Decision {
            group: &[sex, age],
            selected: s,
            ..Default::default()
        })
        .unwrap();
    }
    let r = audit_decisions(&b.build(), &opts()).unwrap();
    assert_eq!(r.slices.len(), 3);
    assert_eq!(r.slices[0].attributes, vec!["sex"]);
    assert_eq!(r.slices[2].attributes, vec!["sex", "age"]);
    close(r.slices[0].groups[0].selection_rate.value, 1.0 / 3.0); // F
    let fo = r.slices[2]
        .groups
        .iter()
        .find(|g| g.label == "F & old")
        .unwrap();
    close(fo.selection_rate.value, 0.0);
    // No labels: outcome metrics are null with reason.
    assert_eq!(fo.true_positive_rate.undefined, Some(Undefined::NoLabels));
    let json = serde_json::to_string(&r).unwrap();
    assert!(!json.contains("NaN"));
    assert!(json.contains("\"undefined\":\"no_labels\""));
}

#[test]
fn ranking_exposure_and_calibration() {
    let mut b = DecisionsBuilder::new(["g"]);
    // A at ranks 1 and 2, B at ranks 3 and unranked (rank given as 4 here to keep the column full).
    for (g, rank, score, y) in [
        ("A", 1, 0.9, true),
        ("A", 2, 0.8, false),
        ("B", 3, 0.3, true),
        ("B", 4, 0.2, false),
    ] {
        b.push(&Decision {
            group: &[g],
            selected: rank <= 2,
            label: Some(y),
            score: Some(score),
            rank: Some(rank),
            weight: None,
        })
        .unwrap();
    }
    let r = audit_decisions(&b.build(), &opts()).unwrap();
    let s = &r.slices[0];
    let ea = s.groups[0].exposure.as_ref().unwrap();
    let eb = s.groups[1].exposure.as_ref().unwrap();
    let d = |r: f64| 1.0 / (1.0 + r).log2();
    close(ea.mean_exposure.value, (d(1.0) + d(2.0)) / 2.0);
    close(eb.mean_exposure.value, (d(3.0) + d(4.0)) / 2.0);
    let ex = disparity(s, DisparityMetric::Exposure, Method::BetweenGroups);
    close(ex.ratio.value, (d(3.0) + d(4.0)) / (d(1.0) + d(2.0)));
    // Calibration: A mean score 0.85 vs observed 0.5 → gap 0.35.
    let ca = s.groups[0].calibration.as_ref().unwrap();
    close(ca.mean_score.value, 0.85);
    assert!((ca.gap.value.unwrap() - 0.35).abs() < 1e-12);
    // ECE for A: bins 0.9 (pos) and 0.8 (neg): (|0.9-1| + |0.8-0|)/2 = 0.45.
    assert!((ca.expected_calibration_error.value.unwrap() - 0.45).abs() < 1e-12);
    let f = findings(&r, &Thresholds::default());
    assert!(
        f.iter()
            .any(|f| f.kind == candor_fairness::findings::FindingKind::Exposure)
    );
    let html = render_html(&r, &f);
    assert!(html.contains("<svg") && html.contains("Exposure curve"));
}

#[test]
fn findings_flag_four_fifths_and_html_escapes_group_names() {
    let mut b = DecisionsBuilder::new(["<script>"]);
    for i in 0..200 {
        let g = if i % 2 == 0 { "<b>x</b>" } else { "y&z" };
        b.push(&Decision {
            group: &[g],
            selected: if g == "y&z" { i % 3 == 0 } else { i % 10 == 0 },
            ..Default::default()
        })
        .unwrap();
    }
    let r = audit_decisions(&b.build(), &opts()).unwrap();
    let f = findings(&r, &Thresholds::default());
    let ff = f
        .iter()
        .find(|f| f.kind == candor_fairness::findings::FindingKind::FourFifths)
        .unwrap();
    assert_eq!(ff.groups_affected, vec!["<b>x</b>"]);
    assert_eq!(ff.reference_group.as_deref(), Some("y&z"));
    assert!(ff.summary.contains("four-fifths"));
    let html = render_html(&r, &f);
    assert!(!html.contains("<b>x</b>") && !html.contains("<script>"));
    assert!(html.contains("&lt;b&gt;x&lt;/b&gt;") && html.contains("y&amp;z"));
}

#[test]
fn bad_inputs_are_typed_errors() {
    let mut o = opts();
    o.privileged = vec!["Z".into()];
    let e = audit_decisions(&table(false), &o).unwrap_err();
    assert!(matches!(e, FairnessError::UnknownPrivileged { .. }), "{e}");
    assert!(e.to_string().contains("known values: g: A, B, C"), "{e}");
    o.privileged = vec!["sex=A".into()];
    assert!(matches!(
        audit_decisions(&table(false), &o).unwrap_err(),
        FairnessError::BadPrivileged { .. }
    ));
    let empty = DecisionsBuilder::new(["g"]).build();
    assert!(matches!(
        audit_decisions(&empty, &opts()).unwrap_err(),
        FairnessError::Empty { .. }
    ));
    let mut b = DecisionsBuilder::new(["g"]);
    b.push(&Decision {
        group: &["A"],
        label: Some(true),
        ..Default::default()
    })
    .unwrap();
    let e = b
        .push(&Decision {
            group: &["A"],
            ..Default::default()
        })
        .unwrap_err();
    assert!(matches!(e, FairnessError::BadRow { row: 2, .. }), "{e}");
}

#[test]
fn report_round_trips_through_json() {
    let r = audit_decisions(&table(true), &opts()).unwrap();
    let json = serde_json::to_string_pretty(&r).unwrap();
    let back: Report = serde_json::from_str(&json).unwrap();
    assert_eq!(back, r);
}

/// `n` rows of group `g`, `sel` of them selected.
fn push_group(b: &mut DecisionsBuilder, g: &str, n: usize, sel: usize) {
    for i in 0..n {
        b.push(&Decision {
            group: &[g],
            selected: i < sel,
            ..Default::default()
        })
        .unwrap();
    }
}

#[test]
fn the_four_fifths_reference_group_has_a_minimum_size() {
    // A tiny group with the highest rate must not become everyone's yardstick.
    let mut b = DecisionsBuilder::new(["g"]);
    push_group(&mut b, "big1", 500, 200);
    push_group(&mut b, "big2", 500, 180);
    push_group(&mut b, "tiny", 20, 18);
    let r = audit_decisions(&b.build(), &opts()).unwrap();
    let s = &r.slices[0];
    assert_eq!(s.four_fifths.reference_group.as_deref(), Some("big1"));
    assert_eq!(s.four_fifths.passes, Some(true), "{:?}", s.four_fifths);
    close(s.groups[1].impact_ratio.value, 0.9);
    let f = findings(&r, &Thresholds::default());
    assert!(
        !f.iter()
            .any(|f| f.kind == candor_fairness::findings::FindingKind::FourFifths),
        "{f:?}"
    );
}

#[test]
fn a_disparity_whose_interval_includes_none_is_not_a_finding() {
    // 50 % vs 35 % of 40 people each: past every threshold, but well within chance.
    let mut b = DecisionsBuilder::new(["g"]);
    push_group(&mut b, "a", 40, 20);
    push_group(&mut b, "b", 40, 14);
    let r = audit_decisions(&b.build(), &opts()).unwrap();
    let d = disparity(
        &r.slices[0],
        DisparityMetric::DemographicParity,
        Method::BetweenGroups,
    );
    assert!(d.difference.value.unwrap() > 0.1);
    assert!(r.slices[0].groups[1].impact_ratio.value.unwrap() < 0.8);
    let f = findings(&r, &Thresholds::default());
    assert!(f.is_empty(), "{f:?}");
    // Kept but marked, when asked.
    let th = Thresholds {
        require_significance: false,
        ..Thresholds::default()
    };
    let f = findings(&r, &th);
    assert!(
        !f.is_empty() && f.iter().all(|f| f.significant == Some(false)),
        "{f:?}"
    );
    assert_eq!(r.settings.min_reference_size, 100);
}
