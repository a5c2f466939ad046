//! Self-contained HTML report with inline SVG charts.
//!
//! Invariant: every string that came from input data (group values, column names, file names,
//! feature names) passes through [`esc`] before it reaches the page; the page loads nothing from
//! the network (no scripts, fonts or images), so it can be e-mailed or archived as one file.

use std::fmt::Write;

use crate::findings::{Finding, Severity, pct};
use crate::report::{DisparityMetric, Estimate, GroupMetrics, Method, Report, Slice};

/// Escape text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            _ => o.push(c),
        }
    }
    o
}

const COLORS: [&str; 8] = [
    "#3366cc", "#dc6b19", "#2e8b57", "#9b59b6", "#c0392b", "#16a085", "#7f8c8d", "#b8860b",
];

/// Render the report and its findings as one HTML page.
pub fn render_html(r: &Report, findings: &[Finding]) -> String {
    let mut h = String::with_capacity(64 * 1024);
    let title = match &r.input.source {
        Some(s) => format!("Fairness audit: {}", esc(s)),
        None => "Fairness audit".to_owned(),
    };
    let _ = write!(
        h,
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}}
h1{{font-size:1.6em}} h2{{border-bottom:2px solid #eee;padding-bottom:.2em;margin-top:2em}}
table{{border-collapse:collapse;margin:.8em 0;font-size:.92em}} td,th{{border:1px solid #ddd;padding:.3em .6em;text-align:right}}
th{{background:#f6f6f6}} td:first-child,th:first-child{{text-align:left}}
.finding{{border-left:6px solid #999;padding:.6em 1em;margin:.8em 0;background:#fafafa}}
.high{{border-color:#c0392b}} .medium{{border-color:#e67e22}} .low{{border-color:#f1c40f}}
.sev{{font-weight:bold;text-transform:uppercase;font-size:.8em;letter-spacing:.05em}}
.ok{{border-color:#2e8b57}} .muted{{color:#777;font-size:.9em}} svg{{max-width:100%;height:auto}}
.na{{color:#999}}
</style></head><body>
<h1>{title}</h1>{}
<p class="muted">{} rows{}; groups by {}; {}{}</p>"#,
        r.scope.as_ref().map_or(String::new(), |sc| format!(
            "\n<p><b>Surface:</b> {} &middot; <b>Window:</b> {} to {}</p>",
            esc(sc.surface.as_deref().unwrap_or("all")),
            esc(&sc.since),
            esc(&sc.until)
        )),
        r.input.rows,
        if r.input.weighted {
            format!(", total weight {:.1}", r.input.total_weight)
        } else {
            String::new()
        },
        esc(&r.input.attributes.join(", ")),
        if r.input.has_label {
            "outcomes known"
        } else {
            "no outcome column (only selection rates)"
        },
        if r.settings.bootstrap.replicates > 0 {
            format!(
                "; {:.0}% confidence intervals from {} bootstrap samples",
                r.settings.bootstrap.confidence * 100.0,
                r.settings.bootstrap.replicates
            )
        } else {
            String::new()
        },
    );

    h.push_str("<h2>What we found</h2>");
    if findings.is_empty() {
        h.push_str(
            r#"<div class="finding ok"><b>No finding crossed the configured thresholds.</b> This does not prove the decisions are fair: check the charts below and the groups the data does not cover.</div>"#,
        );
    }
    for f in findings {
        let sev = match f.severity {
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
        };
        let _ = write!(
            h,
            r#"<div class="finding {sev}"><span class="sev">{sev}</span> <p>{}</p><p><b>What to do:</b> {}</p></div>"#,
            esc(&f.summary),
            esc(&f.action)
        );
    }

    for s in &r.slices {
        slice_section(&mut h, r, s);
    }

    for rep in &r.representation {
        let _ = write!(
            h,
            "<h2>Representation by {}</h2><p>Share of each group in the data compared with the reference population. A ratio below 1 means the group is under-represented.</p><table><tr><th>Group</th><th>Rows</th><th>Data share</th><th>Reference share</th><th>Ratio</th></tr>",
            esc(&rep.attributes.join(" & "))
        );
        for g in &rep.groups {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&g.label),
                g.count,
                pct(g.data_share),
                g.reference_share
                    .map_or("<span class=na>not in reference</span>".into(), pct),
                num(&g.ratio, 2)
            );
        }
        h.push_str("</table>");
    }

    if !r.proxies.is_empty() {
        h.push_str("<h2>Possible proxies</h2><p>Features that reveal group membership. A model or a targeting rule that uses a strong proxy can discriminate without ever seeing the protected attribute. Cramér's V and normalised mutual information run from 0 (no link) to 1 (the feature gives the group away).</p><table><tr><th>Feature</th><th>Attribute</th><th>Levels</th><th>Cramér's V</th><th>NMI</th><th>Strong?</th></tr>");
        for p in &r.proxies {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&p.feature),
                esc(&p.attributes.join(" & ")),
                p.levels,
                num(&p.cramers_v, 3),
                num(&p.normalized_mutual_information, 3),
                if p.strong { "<b>yes</b>" } else { "no" }
            );
        }
        h.push_str("</table>");
    }

    if let Some(rec) = &r.recommendations {
        h.push_str("<h2>Recommendations</h2><table><tr><th>Measure</th><th>Value</th><th>How to read it</th></tr>");
        for (name, e, how) in [
            (
                "Catalog coverage",
                &rec.catalog_coverage,
                "share of the catalog ever recommended",
            ),
            (
                "Intra-list diversity",
                &rec.intra_list_diversity,
                "0 = lists of look-alike items, 1 = all different",
            ),
            (
                "Gini of item exposure",
                &rec.gini_item_exposure,
                "0 = exposure spread evenly, 1 = one item gets everything",
            ),
            (
                "Popularity lift",
                &rec.popularity.popularity_lift,
                "above 1 = recommendations favour already popular items",
            ),
            (
                "Long-tail share",
                &rec.popularity.long_tail_share,
                "share of slots given to the less popular 80% of items",
            ),
            (
                "Provider exposure ratio",
                &rec.provider_exposure_ratio,
                "1 = every provider exposed in proportion to its catalog share",
            ),
            (
                "Premium share gap",
                &rec.premium_share_difference,
                "difference in premium-offer share between subject groups",
            ),
        ] {
            let _ = write!(
                h,
                "<tr><td>{name}</td><td>{}</td><td>{how}</td></tr>",
                num(e, 3)
            );
        }
        h.push_str("</table>");
        let bars: Vec<Bar> = rec
            .providers
            .iter()
            .map(|p| (p.provider.clone(), p.share_ratio.value, None))
            .collect();
        h.push_str(&bar_chart(
            "Exposure share ÷ catalog share, per provider",
            &bars,
            Some((1.0, "proportional")),
        ));
    }

    h.push_str(GLOSSARY);
    h.push_str("</body></html>\n");
    h
}

fn slice_section(h: &mut String, r: &Report, s: &Slice) {
    let attrs = esc(&s.attributes.join(" & "));
    let _ = write!(h, "<h2>By {attrs}</h2>");
    let bars: Vec<_> = s
        .groups
        .iter()
        .map(|g| (g.label.clone(), g.selection_rate.value, g.selection_rate.ci))
        .collect();
    let max = s
        .groups
        .iter()
        .filter_map(|g| g.selection_rate.value)
        .fold(0.0, f64::max);
    let reference = s
        .groups
        .iter()
        .find(|g| Some(&g.label) == s.four_fifths.reference_group.as_ref())
        .and_then(|g| g.selection_rate.value)
        .unwrap_or(max);
    let line =
        (reference > 0.0).then_some((reference * s.four_fifths.threshold, "four-fifths line"));
    h.push_str(&bar_chart("Selection rate per group", &bars, line));
    h.push_str(match s.four_fifths.passes {
        Some(true) => {
            "<p>Every group is selected at least four-fifths as often as the best-off group.</p>"
        }
        Some(false) => {
            "<p><b>Groups whose bar ends below the dashed line fail the four-fifths rule.</b></p>"
        }
        None => "<p class=na>The four-fifths rule could not be checked.</p>",
    });
    if let Some(g) = &s.four_fifths.reference_group {
        let _ = write!(
            h,
            "<p class=muted>Reference group: {} (highest selection rate among groups with at least {} members{}).</p>",
            esc(g),
            s.four_fifths.min_reference_size,
            if s.four_fifths.reference_size_met {
                ""
            } else {
                "; no group was that large, so all groups were eligible"
            }
        );
    }

    h.push_str(
        "<table><tr><th>Group</th><th>Count</th><th>Selection rate</th><th>Impact ratio</th>",
    );
    if r.input.has_label {
        h.push_str("<th>True positive rate</th><th>False positive rate</th><th>Precision</th><th>Outcome rate</th>");
    }
    h.push_str("</tr>");
    for g in &s.groups {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
            esc(&g.label),
            g.count,
            rate(&g.selection_rate),
            num(&g.impact_ratio, 2)
        );
        if r.input.has_label {
            let _ = write!(
                h,
                "<td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
                rate(&g.true_positive_rate),
                rate(&g.false_positive_rate),
                rate(&g.precision),
                rate(&g.base_rate)
            );
        }
        h.push_str("</tr>");
    }
    h.push_str("</table>");

    if r.input.has_label {
        for (title, f) in [
            (
                "True positive rate per group (qualified people who were selected)",
                tpr as fn(&GroupMetrics) -> &Estimate,
            ),
            (
                "False positive rate per group (unqualified people who were selected)",
                fpr,
            ),
        ] {
            let bars: Vec<_> = s
                .groups
                .iter()
                .map(|g| (g.label.clone(), f(g).value, f(g).ci))
                .collect();
            h.push_str(&bar_chart(title, &bars, None));
        }
    }

    h.push_str(
        "<table><tr><th>Comparison</th><th>Method</th><th>Difference</th><th>Ratio</th></tr>",
    );
    for d in &s.disparities {
        if !r.input.has_label
            && d.metric != DisparityMetric::DemographicParity
            && d.metric != DisparityMetric::Exposure
        {
            continue;
        }
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            d.metric.title(),
            match d.method {
                Method::BetweenGroups => "between groups",
                Method::ToOverall => "to overall",
            },
            num(&d.difference, 3),
            num(&d.ratio, 3)
        );
    }
    h.push_str("</table>");

    if let Some(p) = &s.privileged {
        let _ = write!(
            h,
            "<p>Compared with the privileged group <b>{}</b> ({} rows) vs everyone else ({} rows), AIF360 conventions (negative = unprivileged worse off):</p><table><tr><th>Metric</th><th>Value</th></tr>",
            esc(&p.privileged),
            p.privileged_count,
            p.unprivileged_count
        );
        for (n, e) in [
            (
                "Statistical parity difference",
                &p.statistical_parity_difference,
            ),
            ("Disparate impact", &p.disparate_impact),
            (
                "Equal opportunity difference",
                &p.equal_opportunity_difference,
            ),
            ("Average odds difference", &p.average_odds_difference),
            ("Equalized odds difference", &p.equalized_odds_difference),
        ] {
            let _ = write!(h, "<tr><td>{n}</td><td>{}</td></tr>", num(e, 3));
        }
        h.push_str("</table>");
    }

    if r.input.has_score && r.input.has_label {
        let series: Vec<(String, Vec<(f64, f64)>)> = s
            .groups
            .iter()
            .filter_map(|g| {
                let c = g.calibration.as_ref()?;
                let pts = c
                    .bins
                    .iter()
                    .filter_map(|b| Some((b.mean_score?, b.observed_rate?)))
                    .collect();
                Some((g.label.clone(), pts))
            })
            .collect();
        h.push_str(&line_chart(
            "Calibration: observed outcome rate vs mean score (on the diagonal = well calibrated)",
            &series,
            "mean score",
            "observed rate",
            true,
        ));
    }
    if r.input.has_rank {
        let series: Vec<(String, Vec<(f64, f64)>)> = s
            .groups
            .iter()
            .filter_map(|g| {
                let e = g.exposure.as_ref()?;
                Some((
                    g.label.clone(),
                    e.cumulative_by_rank
                        .iter()
                        .enumerate()
                        .map(|(i, y)| ((i + 1) as f64, *y))
                        .collect(),
                ))
            })
            .collect();
        h.push_str(&line_chart(
            "Exposure curve: share of each group shown at or above each rank",
            &series,
            "rank",
            "share of group",
            false,
        ));
        let bars: Vec<_> = s
            .groups
            .iter()
            .map(|g| {
                (
                    g.label.clone(),
                    g.exposure.as_ref().and_then(|e| e.share_ratio.value),
                    None,
                )
            })
            .collect();
        h.push_str(&bar_chart(
            "Exposure share ÷ population share (1 = proportional)",
            &bars,
            Some((1.0, "proportional")),
        ));
    }
}

fn tpr(g: &GroupMetrics) -> &Estimate {
    &g.true_positive_rate
}
fn fpr(g: &GroupMetrics) -> &Estimate {
    &g.false_positive_rate
}

fn rate(e: &Estimate) -> String {
    match (e.value, e.ci) {
        (Some(v), Some([lo, hi])) => format!(
            "{} <span class=muted>({}–{})</span>",
            pct(v),
            pct(lo),
            pct(hi)
        ),
        (Some(v), None) => pct(v),
        (None, _) => na(e),
    }
}

fn num(e: &Estimate, digits: usize) -> String {
    match (e.value, e.ci) {
        (Some(v), Some([lo, hi])) => {
            format!("{v:.digits$} <span class=muted>({lo:.digits$}–{hi:.digits$})</span>")
        }
        (Some(v), None) => format!("{v:.digits$}"),
        (None, _) => na(e),
    }
}

fn na(e: &Estimate) -> String {
    format!(
        "<span class=na title=\"{}\">n/a</span>",
        esc(e.undefined.map_or("undefined", |u| u.explain()))
    )
}

/// One bar: label, value, confidence interval.
type Bar = (String, Option<f64>, Option<[f64; 2]>);

/// Horizontal bars with optional confidence whiskers and an optional dashed reference line.
fn bar_chart(title: &str, bars: &[Bar], line: Option<(f64, &str)>) -> String {
    let (label_w, plot_w, row_h) = (170.0, 520.0, 26.0);
    let height = 40.0 + row_h * bars.len() as f64 + 24.0;
    let max = bars
        .iter()
        .flat_map(|b| [b.1, b.2.map(|c| c[1])])
        .flatten()
        .chain(line.map(|l| l.0))
        .fold(0.0f64, f64::max);
    let max = if max <= 0.0 { 1.0 } else { nice_ceiling(max) };
    let x = |v: f64| label_w + plot_w * (v / max).clamp(0.0, 1.0);
    let mut s = format!(
        r#"<svg viewBox="0 0 {w} {height}" width="{w}" role="img" aria-label="{t}" xmlns="http://www.w3.org/2000/svg" font-size="12"><text x="0" y="16" font-weight="bold">{t}</text>"#,
        w = label_w + plot_w + 60.0,
        t = esc(title)
    );
    for (i, (label, v, ci)) in bars.iter().enumerate() {
        let y = 30.0 + row_h * i as f64;
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
            label_w - 6.0,
            y + 15.0,
            esc(&truncate(label, 26))
        );
        match v {
            Some(v) => {
                let _ = write!(
                    s,
                    r##"<rect x="{label_w}" y="{}" width="{:.1}" height="{}" fill="{}"><title>{}: {v:.4}</title></rect><text x="{:.1}" y="{}" fill="#333">{v:.3}</text>"##,
                    y + 3.0,
                    x(*v) - label_w,
                    row_h - 8.0,
                    COLORS[i % COLORS.len()],
                    esc(label),
                    x(ci.map_or(*v, |c| c[1])) + 4.0,
                    y + 15.0
                );
                if let Some([lo, hi]) = ci {
                    let cy = y + row_h / 2.0 - 1.0;
                    let _ = write!(
                        s,
                        r##"<g stroke="#111" stroke-width="1.5"><line x1="{:.1}" x2="{:.1}" y1="{cy}" y2="{cy}"/><line x1="{:.1}" x2="{:.1}" y1="{}" y2="{}"/><line x1="{:.1}" x2="{:.1}" y1="{}" y2="{}"/></g>"##,
                        x(*lo),
                        x(*hi),
                        x(*lo),
                        x(*lo),
                        cy - 5.0,
                        cy + 5.0,
                        x(*hi),
                        x(*hi),
                        cy - 5.0,
                        cy + 5.0
                    );
                }
            }
            None => {
                let _ = write!(
                    s,
                    r##"<text x="{}" y="{}" fill="#999">n/a</text>"##,
                    label_w + 4.0,
                    y + 15.0
                );
            }
        }
    }
    let bottom = 30.0 + row_h * bars.len() as f64;
    let _ = write!(
        s,
        r##"<line x1="{label_w}" x2="{label_w}" y1="26" y2="{bottom}" stroke="#444"/><text x="{label_w}" y="{}" fill="#666">0</text><text x="{}" y="{}" fill="#666" text-anchor="end">{max}</text>"##,
        bottom + 16.0,
        label_w + plot_w,
        bottom + 16.0
    );
    if let Some((v, name)) = line {
        let _ = write!(
            s,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="26" y2="{bottom}" stroke="#c0392b" stroke-dasharray="5,4" stroke-width="2"/><text x="{x:.1}" y="{}" fill="#c0392b" text-anchor="middle">{}</text>"##,
            bottom + 16.0,
            esc(name),
            x = x(v)
        );
    }
    s.push_str("</svg>");
    s
}

/// Line chart of several series on [0, max] axes, optionally with the y = x diagonal.
fn line_chart(
    title: &str,
    series: &[(String, Vec<(f64, f64)>)],
    x_name: &str,
    y_name: &str,
    diagonal: bool,
) -> String {
    let (left, top, w, hgt) = (50.0, 30.0, 520.0, 260.0);
    let xmax = series
        .iter()
        .flat_map(|s| s.1.iter().map(|p| p.0))
        .fold(if diagonal { 1.0 } else { 0.0 }, f64::max);
    let xmax = if xmax <= 0.0 { 1.0 } else { xmax };
    let xmin = if diagonal { 0.0 } else { 1.0f64.min(xmax) };
    let px = |v: f64| left + w * ((v - xmin) / (xmax - xmin).max(1e-9)).clamp(0.0, 1.0);
    let py = |v: f64| top + hgt * (1.0 - v.clamp(0.0, 1.0));
    let legend_h = 18.0 * series.len() as f64;
    let mut s = format!(
        r##"<svg viewBox="0 0 {} {}" width="{}" role="img" aria-label="{t}" xmlns="http://www.w3.org/2000/svg" font-size="12"><text x="0" y="16" font-weight="bold">{t}</text><rect x="{left}" y="{top}" width="{w}" height="{hgt}" fill="none" stroke="#444"/><text x="{}" y="{}" text-anchor="middle" fill="#666">{}</text><text x="12" y="{}" fill="#666" transform="rotate(-90 12 {})" text-anchor="middle">{}</text><text x="{}" y="{}" fill="#666" text-anchor="end">1</text><text x="{}" y="{}" fill="#666" text-anchor="end">0</text><text x="{left}" y="{}" fill="#666">{xmin}</text><text x="{}" y="{}" fill="#666" text-anchor="end">{xmax}</text>"##,
        left + w + 200.0,
        top + hgt + 40.0 + legend_h.max(0.0) - legend_h.min(hgt) + 10.0,
        left + w + 200.0,
        left + w / 2.0,
        top + hgt + 32.0,
        esc(x_name),
        top + hgt / 2.0,
        top + hgt / 2.0,
        esc(y_name),
        left - 4.0,
        top + 10.0,
        left - 4.0,
        top + hgt,
        top + hgt + 16.0,
        left + w,
        top + hgt + 16.0,
        t = esc(title)
    );
    if diagonal {
        let _ = write!(
            s,
            r##"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#aaa" stroke-dasharray="4,4"/>"##,
            px(0.0),
            py(0.0),
            px(1.0),
            py(1.0)
        );
    }
    for (i, (name, pts)) in series.iter().enumerate() {
        let c = COLORS[i % COLORS.len()];
        let path: Vec<String> = pts
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
            .collect();
        let _ = write!(
            s,
            r#"<polyline points="{}" fill="none" stroke="{c}" stroke-width="2"/>"#,
            path.join(" ")
        );
        for &(x, y) in pts {
            let _ = write!(
                s,
                r#"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="{c}"/>"#,
                px(x),
                py(y)
            );
        }
        let ly = top + 10.0 + 18.0 * i as f64;
        let _ = write!(
            s,
            r#"<rect x="{}" y="{}" width="12" height="12" fill="{c}"/><text x="{}" y="{}">{}</text>"#,
            left + w + 12.0,
            ly - 10.0,
            left + w + 30.0,
            ly,
            esc(&truncate(name, 24))
        );
    }
    s.push_str("</svg>");
    s
}

fn nice_ceiling(x: f64) -> f64 {
    let p = 10f64.powf(x.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if x <= m * p + 1e-12 {
            return m * p;
        }
    }
    10.0 * p
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        s.chars().take(n - 1).chain(std::iter::once('…')).collect()
    }
}

const GLOSSARY: &str = r#"<h2>How to read this report</h2>
<dl>
<dt><b>Selection rate</b></dt><dd>Share of a group that received the positive decision (offer, approval, top slot).</dd>
<dt><b>Four-fifths rule</b></dt><dd>A group selected at less than 80% of the rate of the best-off group is a warning sign of adverse impact (US EEOC guideline), not proof of discrimination.</dd>
<dt><b>True / false positive rate</b></dt><dd>Among people who turned out to qualify (or not), the share who were selected. Differences mean the decisions are more accurate for some groups than others.</dd>
<dt><b>Difference and ratio</b></dt><dd>"Between groups": largest minus smallest group value, and smallest divided by largest. "To overall": the largest gap between a group and the whole population.</dd>
<dt><b>Confidence interval</b></dt><dd>The range the value would plausibly take with a different sample of the same size. If it includes "no difference", the gap may be chance.</dd>
<dt><b>Calibration</b></dt><dd>Whether a score of 0.7 means a 70% outcome rate in every group.</dd>
<dt><b>Exposure</b></dt><dd>Attention from being ranked: position 1 counts 1, position 2 counts 0.63, position 10 counts 0.29 (1/log2(1+rank)).</dd>
<dt><b>n/a</b></dt><dd>The metric has no value for that group; hover to see why (for example, nobody in the group had a positive outcome).</dd>
</dl>"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(esc(r#"<b a="x">&'"#), "&lt;b a=&quot;x&quot;&gt;&amp;&#39;");
    }

    #[test]
    fn nice_ceilings() {
        assert_eq!(nice_ceiling(0.31), 0.5);
        assert_eq!(nice_ceiling(0.8), 1.0);
        assert_eq!(nice_ceiling(1.2), 2.0);
    }
}
