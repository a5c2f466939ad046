//! `candor-bench analytics`: a DP histogram over 10M events by 50 segments (target < 1 s) with
//! pandas on the same aggregate in the same run, and the transparency report of a year at 1M
//! subjects (target < 10 s).
//!
//! The histogram runs the engine (`candor_analytics::run`: contribution bounds, OpenDP noise,
//! intervals, suppression) over rows already in memory, as the analytics room hands them over
//! after its permitted reads; reading 10M events from the store is the store's cost and is not
//! in this figure. The report runs `App::publish_transparency_report` on a throwaway store whose
//! subjects' consents were imported first through `import_consents_bulk`.

use std::time::Instant;

use anyhow::{Context, Result};
use candor_analytics::query::{Spend, plan};
use candor_analytics::{Aggregate, Bounds, Mechanism, Query, Row, run as release};
use candor_app::Config;
use candor_domain::{ConsentDecision, PurposeId};
use clap::Args;

#[derive(Args)]
pub struct AnalyticsBenchArgs {
    /// Subjects in the histogram; each has `events` events.
    #[arg(long, default_value_t = 1_000_000)]
    subjects: usize,
    #[arg(long, default_value_t = 10)]
    events: usize,
    #[arg(long, default_value_t = 50)]
    segments: usize,
    /// Timed releases (the median is reported).
    #[arg(long, default_value_t = 5)]
    repeats: usize,
    /// Subjects with consent records for the transparency report (0 skips it).
    #[arg(long, default_value_t = 1_000_000)]
    report_subjects: usize,
    /// Run the report on PostgreSQL (an admin URL) instead of the embedded SQLite file.
    #[arg(long)]
    postgres: Option<String>,
    /// Skip the pandas peer.
    #[arg(long)]
    no_peer: bool,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

pub async fn run(config: Config, a: AnalyticsBenchArgs) -> Result<()> {
    histogram(&a)?;
    if a.report_subjects > 0 {
        report(config, &a).await?;
    }
    Ok(())
}

fn histogram(a: &AnalyticsBenchArgs) -> Result<()> {
    let max_rows = a.events as u32;
    let subjects: Vec<Vec<Row>> = (0..a.subjects)
        .map(|s| {
            vec![
                Row {
                    group: (s % a.segments) as u32,
                    value: 1.0
                };
                a.events
            ]
        })
        .collect();
    let rows = a.subjects * a.events;
    let q = Query {
        aggregate: Aggregate::Count,
        mechanism: Mechanism::Laplace,
        bounds: Bounds {
            max_rows,
            max_groups: 1,
            lower: 0.0,
            upper: 1.0,
        },
        spend: Spend::Epsilon(1.0),
        delta: 0.0,
        confidence: 0.95,
        rows: a.segments,
        columns: 1,
        public_groups: true,
        k: candor_analytics::DEFAULT_K,
    };
    let p = plan(&q)?;
    let mut times = Vec::new();
    let mut total = 0.0;
    for _ in 0..a.repeats.max(1) {
        let t = Instant::now();
        let r = release(&q, &p, subjects.iter().map(Vec::as_slice))?;
        times.push(t.elapsed().as_secs_f64());
        total = r.column_totals[0].value.unwrap_or(0.0);
    }
    let ours = median(times);
    println!(
        "dp histogram: {rows} events, {} segments, Laplace eps 1, bound {max_rows} rows/subject: \
         median {:.3} s over {} runs ({:.1} M events/s; noise scale {:.1}, ±{:.1} at 95%; noisy total {total:.0}) [target < 1 s]",
        a.segments,
        ours,
        a.repeats.max(1),
        rows as f64 / ours / 1e6,
        p.noise.scale,
        p.half_width
    );
    if a.no_peer {
        return Ok(());
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/analytics_peer.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .args([a.subjects, a.events, a.segments, a.events].map(|n| n.to_string()))
        .output()
        .context("running python3 for the pandas peer")?;
    if !out.status.success() {
        println!(
            "pandas peer did not run: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        return Ok(());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(
        text.lines()
            .last()
            .context("no output from the pandas peer")?,
    )?;
    let plain = v["plain_s"].as_f64().unwrap_or(f64::NAN);
    let bounded = v["bounded_s"].as_f64().unwrap_or(f64::NAN);
    println!(
        "pandas {}: groupby(segment).size() {plain:.3} s (no bound, no noise); with the same bound \
         (groupby(subject, segment).head({max_rows})) {bounded:.3} s; ratio pandas/candor: {:.1}x plain, {:.1}x bounded",
        v["pandas"].as_str().unwrap_or("?"),
        plain / ours,
        bounded / ours
    );
    Ok(())
}

async fn report(config: Config, a: &AnalyticsBenchArgs) -> Result<()> {
    let n = a.report_subjects;
    crate::common::on_throwaway_store(config, "analytics", a.postgres.as_ref(), |app| async move {
        for (id, basis) in [("analytics", "consent"), ("personalization", "consent"), ("order_fulfilment", "contract")] {
            app.create_purpose(
                "bench",
                &candor_domain::PurposeDraft {
                    id: id.into(),
                    title: format!("Purpose {id}"),
                    description: format!("What {id} does."),
                    legal_basis: basis.into(),
                    categories: vec!["browsing".into()],
                    ..Default::default()
                },
            )
            .await?;
        }
        let (analytics, personalization) = (PurposeId::parse("analytics")?, PurposeId::parse("personalization")?);
        let t = Instant::now();
        let year_start = candor_domain::parse_rfc3339(&format!("{}-01-01T00:00:00Z", &candor_domain::format_micros(app.now())[..4]))?;
        for chunk in (0..n).collect::<Vec<_>>().chunks(20_000) {
            let batch: Vec<_> = chunk
                .iter()
                .map(|&i| {
                    let d = |yes| if yes { ConsentDecision::Granted } else { ConsentDecision::Denied };
                    (
                        app.subject_key(&format!("subject-{i}")).expect("id"),
                        vec![(analytics.clone(), d(i % 3 != 0), year_start + i as i64), (personalization.clone(), d(i % 2 == 0), year_start + i as i64)],
                    )
                })
                .collect();
            app.import_consents_bulk("bench", &batch).await?;
        }
        let load = t.elapsed().as_secs_f64();
        let year = candor_domain::format_micros(app.now())[..4].to_owned();
        let t = Instant::now();
        let p = app.publish_transparency_report("bench", &year).await?;
        let took = t.elapsed().as_secs_f64();
        let share = p.report.purposes.iter().find(|l| l.id == "analytics").and_then(|l| l.rate);
        println!(
            "transparency report {year}: {n} subjects ({} store; consents loaded in {load:.1} s): {took:.2} s, \
             analytics share {:.4} (true 0.6667), signed {} [target < 10 s]",
            app.store_backend(),
            share.unwrap_or(f64::NAN),
            &p.signature[..12],
        );
        Ok(())
    })
    .await
}
