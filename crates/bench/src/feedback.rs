//! `candor-bench feedback`: feedback ingestion (target >= 20,000 feedback events/s) and KPI
//! reads (target < 10 ms), on a throwaway store.
//!
//! `--answers` logged answers of five items each (one per subject) are imported into the
//! decision log; then, timed, `--tasks` concurrent tasks give feedback through
//! `App::give_feedback` (the route's use case: answer lookup, consent check, row and KPI counts
//! in one transaction): first thumbs-up (no preference change), then "too personal" (an audited
//! preference change each). Then `--reads` KPI reads of the last 30 days.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Result, ensure};
use candor_app::feedback::FeedbackInput;
use candor_app::{App, Config};
use candor_domain::feedback::FeedbackKind;
use candor_store::DecisionRow;
use clap::Args;
use hdrhistogram::Histogram;

#[derive(Args, Debug, Clone)]
pub struct FeedbackBenchArgs {
    /// Logged answers, one per subject.
    #[arg(long, default_value_t = 200_000)]
    pub answers: usize,
    /// Feedback events of each kind to send.
    #[arg(long, default_value_t = 50_000)]
    pub feedback: usize,
    #[arg(long, default_value_t = 8)]
    pub tasks: usize,
    /// KPI reads to time.
    #[arg(long, default_value_t = 500)]
    pub reads: usize,
    /// Run on a throwaway database on this PostgreSQL server.
    #[arg(long)]
    pub postgres: Option<String>,
}

pub async fn run(config: Config, args: FeedbackBenchArgs) -> Result<()> {
    ensure!(
        args.answers >= args.feedback * 2 && args.tasks >= 1,
        "--answers must be at least twice --feedback (each answer gets one piece)"
    );
    crate::common::on_throwaway_store(config, "feedback", args.postgres.as_ref(), |app| {
        bench(app, args.clone())
    })
    .await
}

fn answer_id(n: usize) -> String {
    format!("ans_{n:032x}")
}

async fn bench(app: Arc<App>, args: FeedbackBenchArgs) -> Result<()> {
    let started = Instant::now();
    let now = app.now();
    let mut rows = Vec::with_capacity(20_000 * 5);
    for n in 0..args.answers {
        let subject = app.subject_key(&format!("user-{n}"))?.to_string();
        for pos in 1..=5 {
            rows.push(DecisionRow {
                subject_key: subject.clone(),
                surface: "home".into(),
                item_id: format!("sku-{}", (n * 7 + pos) % 5000),
                selected: true,
                outcome: None,
                score: Some(0.5),
                model_version: "bench".into(),
                at: now,
                position: Some(pos as i64),
                answer_id: Some(answer_id(n)),
            });
        }
        if rows.len() >= 20_000 || n + 1 == args.answers {
            app.import_decisions("bench", &rows).await?;
            rows.clear();
        }
    }
    println!(
        "loaded {} answers ({} decision rows) in {:.1} s (not timed)",
        args.answers,
        args.answers * 5,
        started.elapsed().as_secs_f64()
    );

    for (phase, kind, offset) in [
        (
            "thumbs_up (no preference change)",
            FeedbackKind::ThumbsUp,
            0,
        ),
        (
            "too_personal (audited preference change)",
            FeedbackKind::TooPersonal,
            args.feedback,
        ),
    ] {
        let t = Instant::now();
        let mut handles = Vec::new();
        for task in 0..args.tasks {
            let app = app.clone();
            let (n, tasks) = (args.feedback, args.tasks);
            handles.push(tokio::spawn(async move {
                let mut lat = Histogram::<u64>::new(3)?;
                for i in (task..n).step_by(tasks) {
                    let a = offset + i;
                    let subject = app.subject_key(&format!("user-{a}"))?;
                    let one = Instant::now();
                    app.give_feedback(
                        "bench",
                        &subject,
                        FeedbackInput {
                            decision_id: answer_id(a),
                            item_id: kind
                                .needs_item()
                                .then(|| format!("sku-{}", (a * 7 + 1) % 5000)),
                            kind,
                            text: None,
                        },
                    )
                    .await?;
                    lat.record(one.elapsed().as_micros() as u64)?;
                }
                anyhow::Ok(lat)
            }));
        }
        let mut lat = Histogram::<u64>::new(3)?;
        for h in handles {
            lat.add(h.await??)?;
        }
        let secs = t.elapsed().as_secs_f64();
        println!(
            "feedback {phase}: {} in {secs:.2} s = {:.0}/s (target >= 20,000/s); p50 {:.2} ms, p99 {:.2} ms",
            args.feedback,
            args.feedback as f64 / secs,
            lat.value_at_quantile(0.5) as f64 / 1000.0,
            lat.value_at_quantile(0.99) as f64 / 1000.0
        );
    }

    let mut lat = Histogram::<u64>::new(3)?;
    let mut seen = 0;
    for _ in 0..args.reads {
        let t = Instant::now();
        let k = app.kpis(30).await?;
        lat.record(t.elapsed().as_micros() as u64)?;
        seen = k.feedback.iter().map(|f| f.1).sum::<i64>();
    }
    ensure!(
        seen == 2 * args.feedback as i64,
        "the KPIs count {seen} pieces of feedback, not {}",
        2 * args.feedback
    );
    println!(
        "KPI read (30 days): p50 {:.2} ms, p99 {:.2} ms over {} reads (target < 10 ms)",
        lat.value_at_quantile(0.5) as f64 / 1000.0,
        lat.value_at_quantile(0.99) as f64 / 1000.0,
        args.reads
    );
    Ok(())
}
