//! `/reports/transparency/{year}`: a published transparency report. Public.
//!
//! Invariant: every figure on the page is one of the stored, signed report's; consent rates are
//! labelled as differentially private, with their intervals, and a section without records
//! says so rather than showing zero.

use candor_analytics::report::TransparencyReport;
use maud::{Markup, html};

use crate::layout;

const CHART_WIDTH: f64 = 640.0;
const LABEL: f64 = 190.0;
const ROW: f64 = 30.0;

fn percent(v: f64) -> String {
    format!("{:.0}%", v * 100.0)
}

/// A horizontal bar per purpose: its noisy consent rate, with a whisker for the interval and
/// the figures as text, so the chart reads without colour.
fn consent_chart(report: &TransparencyReport) -> Markup {
    let lines: Vec<_> = report
        .purposes
        .iter()
        .filter(|p| p.rate.is_some())
        .collect();
    let height = ROW * lines.len() as f64 + 10.0;
    let span = CHART_WIDTH - LABEL - 160.0;
    if lines.is_empty() {
        return html! { p class="no-records" { "Too few people were asked to show consent shares." } };
    }
    html! {
        svg class="chart" viewBox=(format!("0 0 {CHART_WIDTH} {height}")) role="img"
            aria-labelledby="consent-chart-title" xmlns="http://www.w3.org/2000/svg" {
            title id="consent-chart-title" { "Share of people who allowed each purpose (differentially private)" }
            @for (i, p) in lines.iter().enumerate() {
                @let y = ROW * i as f64 + 5.0;
                @let rate = p.rate.unwrap_or(0.0);
                @let [lo, hi] = p.rate_ci.unwrap_or([rate, rate]);
                text x="0" y=(y + 18.0) { (p.title) }
                rect class="bar" x=(LABEL) y=(y + 4.0) width=(span * rate) height="18" {}
                line class="whisker" x1=(LABEL + span * lo) x2=(LABEL + span * hi) y1=(y + 13.0) y2=(y + 13.0) {}
                text x=(LABEL + span + 8.0) y=(y + 18.0) { (percent(rate)) " (" (percent(lo)) "–" (percent(hi)) ")" }
            }
        }
    }
}

/// The report page; `valid` says whether the stored signature matched its body.
pub fn transparency(report: &TransparencyReport, signature: &str, valid: bool) -> Markup {
    let title = format!("Transparency report {}", report.period);
    layout::page(
        &title,
        html! {
            h1 { (title) }
            p class="lead" {
                "What we did with personal data in " (report.period) ", generated from our records on "
                (report.generated_at) "."
            }
            h2 { "Purposes and consent" }
            p {
                "Consent figures are differentially private: random noise was added (ε = "
                (report.epsilon) ") so that no one person's choice can be read from them. About "
                (report.subjects_asked) " people were asked. Each share comes with its 95% interval."
            }
            (consent_chart(report))
            div class="table-scroll" role="region" tabindex="0" aria-label="Purposes and consent" { table class="report-table" {
                thead { tr { th scope="col" { "Purpose" } th scope="col" { "Legal ground" } th scope="col" { "Data" } th scope="col" { "Allowed by (about)" } th scope="col" { "Share" } } }
                tbody {
                    @for p in &report.purposes {
                        tr {
                            td { (p.title) " (" code { (p.id) } ")" @if p.person_level { " · builds a profile of you" } }
                            td { (p.legal_basis) }
                            td { (p.categories.join(", ")) }
                            td class="num" { (p.granted) }
                            td class="num" {
                                @match (p.rate, p.rate_ci) {
                                    (Some(r), Some([lo, hi])) => { (percent(r)) " (" (percent(lo)) "–" (percent(hi)) ")" },
                                    _ if !p.needs_consent => span class="no-records" { "needs no consent" },
                                    _ => span class="no-records" { "too few people to show" },
                                }
                            }
                        }
                    }
                }
            } }
            h2 { "Rights requests" }
            @match &report.rights {
                Some(r) => {
                    div class="table-scroll" role="region" tabindex="0" aria-label="Rights requests received" { table class="report-table" {
                        thead { tr { th scope="col" { "Kind" } th scope="col" { "Received" } } }
                        tbody { @for (kind, n) in &r.received { tr { td { (kind) } td class="num" { (n) } } } }
                    } }
                    p { (r.fulfilled) " fulfilled"
                        @if let Some(m) = r.median_days { "; median " (format!("{m:.1}")) " days" }
                        @if let Some(m) = r.max_days { ", longest " (format!("{m:.1}")) " days" } "." }
                },
                None => p class="no-records" { "No records of rights requests for this period." },
            }
            h2 { "Retention applied" }
            p { (report.retention.runs) " retention runs deleted " (report.retention.deleted) " rows and anonymized "
                (report.retention.anonymized) "." }
            ul { @for r in &report.retention.rules { li { (r) } } }
            h2 { "Fairness audits and incidents" }
            p { (report.fairness.audits) " fairness audits; " (report.fairness.incidents_opened) " bias incidents opened, "
                (report.fairness.incidents_resolved) " resolved." }
            @if report.fairness.incidents.is_empty() {
                p class="no-records" { "No incidents in this period." }
            } @else {
                div class="table-scroll" role="region" tabindex="0" aria-label="Incidents" { table class="report-table" {
                    thead { tr { th scope="col" { "Incident" } th scope="col" { "State" } th scope="col" { "About" } } }
                    tbody { @for (id, state, summary) in &report.fairness.incidents { tr { td { "#" (id) } td { (state) } td { (summary) } } } }
                } }
            }
            h2 { "Models and approvals" }
            p { (report.approvals) " model activations (approvals) in the period." }
            @if report.models.is_empty() {
                p class="no-records" { "No models in this period." }
            } @else {
                div class="table-scroll" role="region" tabindex="0" aria-label="Models" { table class="report-table" {
                    thead { tr { th scope="col" { "Version" } th scope="col" { "Kind" } th scope="col" { "Trained" } th scope="col" { "Serving" } } }
                    tbody { @for m in &report.models { tr { td { code { (m.version) } } td { (m.kind) } td { (m.created_at) } td { @if m.active { "yes" } @else { "no" } } } } }
                } }
            }
            h2 { "Data categories held" }
            div class="table-scroll" role="region" tabindex="0" aria-label="Data categories held" { table class="report-table" {
                thead { tr { th scope="col" { "Category" } th scope="col" { "May be used for" } } }
                tbody { @for c in &report.data_categories { tr { td { (c.category) } td { (c.purposes.join(", ")) } } } }
            } }
            h2 { "Signature" }
            p {
                @if valid { "This report's signature matches its stored text." }
                @else { strong { "Warning: this report's stored text does not match its signature." } }
            }
            p class="signature" { (signature) }
        },
    )
}
