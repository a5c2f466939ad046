//! `candor-bench rights`: erasure and export on a large store, and ingestion beside erasures.
//!
//! A throwaway node is filled through the ingest gate (in process) with `--subjects` subjects
//! and `--events` events, plus `--heavy` subjects with `--heavy-events` events each and
//! `--bulk` subjects with 10 events each. Then, timed:
//! 1. exporting each heavy subject (target: 10,000 events in < 200 ms);
//! 2. erasing each heavy subject (target p99 < 100 ms);
//! 3. erasing the bulk subjects from one list (target >= 1,000 subjects/s);
//! 4. ingestion throughput alone, then with erasures running beside it, then alone again, in
//!    one run (the target: no drop).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use candor_app::ingest::RawMessage;
use candor_app::{App, Config};
use candor_domain::{ConsentDecision, PurposeId};
use clap::Args;
use hdrhistogram::Histogram;
use serde_json::{Value, json};

#[derive(Args, Debug, Clone)]
pub struct RightsBenchArgs {
    /// Background subjects.
    #[arg(long, default_value_t = 1_000_000)]
    pub subjects: usize,
    /// Background events, spread over the subjects.
    #[arg(long, default_value_t = 10_000_000)]
    pub events: u64,
    /// Subjects with `--heavy-events` each, exported and erased one by one.
    #[arg(long, default_value_t = 20)]
    pub heavy: usize,
    #[arg(long, default_value_t = 10_000)]
    pub heavy_events: usize,
    /// Subjects with 10 events each, erased from one list.
    #[arg(long, default_value_t = 5_000)]
    pub bulk: usize,
    /// Seconds of each ingestion phase (alone, beside erasures, alone).
    #[arg(long, default_value_t = 10)]
    pub phase_secs: u64,
    /// Run on a throwaway database on this PostgreSQL server.
    #[arg(long)]
    pub postgres: Option<String>,
}

pub async fn run(config: Config, args: RightsBenchArgs) -> Result<()> {
    ensure!(
        args.subjects >= 1 && args.heavy >= 1,
        "--subjects and --heavy must be >= 1"
    );
    crate::common::on_throwaway_store(config, "rights", args.postgres.as_ref(), |app| {
        bench(app, args.clone())
    })
    .await
}

fn raw(v: Value) -> RawMessage {
    RawMessage {
        bytes: v.to_string().len(),
        json: Ok(v),
    }
}

/// Messages of one batch from the ingestion benchmark's generator (ids `user-N`).
pub(crate) fn background_batch(
    b: u64,
    size: usize,
    subjects: usize,
    ts: &str,
) -> Result<Vec<RawMessage>> {
    let body: Value = serde_json::from_str(&crate::ingest::batch_body(b, size, subjects, 1.0, ts))?;
    Ok(body["batch"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(raw)
        .collect())
}

/// `n` events of one subject, product views with an IP (sealed), after one identify.
fn subject_messages(user: &str, n: usize, ts: &str) -> Vec<RawMessage> {
    let mut out = vec![raw(
        json!({"type": "identify", "userId": user, "messageId": format!("{user}-id"),
        "timestamp": ts, "traits": {"email": format!("{user}@example.com"), "favorite_category": "garden"}}),
    )];
    out.extend((1..n).map(|i| {
        raw(
            json!({"type": "track", "event": "Product Viewed", "userId": user,
            "messageId": format!("{user}-{i}"), "timestamp": ts,
            "properties": {"product_id": format!("sku-{}", i % 5000), "price": 10},
            "context": {"ip": format!("10.1.{}.{}", i % 250, i % 200)}}),
        )
    }));
    out
}

pub(crate) async fn ingest_all(app: &App, mut messages: Vec<RawMessage>) -> Result<()> {
    while !messages.is_empty() {
        let rest = messages.split_off(messages.len().min(500));
        let r = app.ingest(messages, None).await?;
        ensure!(r.rejected.is_empty(), "rejected: {}", r.rejected[0].message);
        messages = rest;
    }
    Ok(())
}

pub(crate) async fn grant_all(app: &App, users: impl Iterator<Item = String>) -> Result<()> {
    let ids = [
        PurposeId::parse("personalization")?,
        PurposeId::parse("analytics")?,
    ];
    let now = app.now();
    let mut chunk = Vec::new();
    for u in users {
        let decisions = ids
            .iter()
            .map(|p| (p.clone(), ConsentDecision::Granted, now))
            .collect();
        chunk.push((app.subject_key(&u)?, decisions));
        if chunk.len() == 2000 {
            app.import_consents_bulk("bench", &chunk).await?;
            chunk.clear();
        }
    }
    if !chunk.is_empty() {
        app.import_consents_bulk("bench", &chunk).await?;
    }
    Ok(())
}

pub(crate) fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

/// Ingests background batches from `workers` tasks for `secs`; events per second.
async fn ingest_for(
    app: &Arc<App>,
    secs: u64,
    first_batch: &AtomicU64,
    subjects: usize,
) -> Result<f64> {
    let ts = candor_domain::format_micros(app.now());
    let sent = Arc::new(AtomicU64::new(0));
    let stop = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    let start = Instant::now();
    for _ in 0..4 {
        let (app, sent, ts) = (app.clone(), sent.clone(), ts.clone());
        let b = first_batch.fetch_add(1_000_000, Ordering::Relaxed);
        tasks.push(tokio::spawn(async move {
            let mut n = b;
            while Instant::now() < stop {
                let batch = background_batch(n, 100, subjects, &ts)?;
                app.ingest(batch, None).await?;
                sent.fetch_add(100, Ordering::Relaxed);
                n += 1;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(sent.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64())
}

async fn bench(app: Arc<App>, args: RightsBenchArgs) -> Result<()> {
    println!(
        "store: {}; {} subjects, {} events, {} heavy subjects x {} events, {} bulk subjects x 10",
        app.store_backend(),
        args.subjects,
        args.events,
        args.heavy,
        args.heavy_events,
        args.bulk
    );
    for d in crate::ingest::purposes() {
        app.create_purpose("bench", &d).await?;
    }
    app.set_inventory("bench", crate::ingest::inventory()?)
        .await?;
    let t = Instant::now();
    let heavy: Vec<String> = (0..args.heavy).map(|i| format!("heavy-{i}")).collect();
    let bulk: Vec<String> = (0..args.bulk).map(|i| format!("bulk-{i}")).collect();
    grant_all(
        &app,
        (0..args.subjects)
            .map(|i| format!("user-{i}"))
            .chain(heavy.iter().cloned())
            .chain(bulk.iter().cloned()),
    )
    .await?;
    println!("consent granted in {:.1} s", t.elapsed().as_secs_f64());

    let t = Instant::now();
    let ts = candor_domain::format_micros(app.now());
    let batches = args.events / 100;
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (app, next, ts) = (app.clone(), next.clone(), ts.clone());
        let subjects = args.subjects;
        tasks.push(tokio::spawn(async move {
            loop {
                let b = next.fetch_add(5, Ordering::Relaxed);
                if b >= batches {
                    return anyhow::Ok(());
                }
                let mut messages = Vec::new();
                for k in b..(b + 5).min(batches) {
                    messages.extend(background_batch(k, 100, subjects, &ts)?);
                }
                ingest_all(&app, messages).await?;
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    println!(
        "  background events loaded in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    for u in heavy.iter() {
        ingest_all(&app, subject_messages(u, args.heavy_events, &ts)).await?;
    }
    println!(
        "  heavy subjects loaded at {:.1} s",
        t.elapsed().as_secs_f64()
    );
    if std::env::var("PROBE").is_ok() {
        for (label, msgs) in [
            (
                "plain track, known subject",
                vec![raw(
                    json!({"type":"track","event":"Product Viewed","userId":"heavy-0","messageId":"probe-1","properties":{"product_id":"x"}}),
                )],
            ),
            (
                "plain track, new subject",
                vec![raw(
                    json!({"type":"track","event":"Product Viewed","userId":"probe-new","messageId":"probe-2","properties":{"product_id":"x"}}),
                )],
            ),
            (
                "track with ip, new subject",
                vec![raw(
                    json!({"type":"track","event":"Product Viewed","userId":"probe-new2","messageId":"probe-3","properties":{"product_id":"x"},"context":{"ip":"1.2.3.4"}}),
                )],
            ),
            (
                "track with ip, known key",
                vec![raw(
                    json!({"type":"track","event":"Product Viewed","userId":"probe-new2","messageId":"probe-4","properties":{"product_id":"x"},"context":{"ip":"1.2.3.4"}}),
                )],
            ),
        ] {
            let s = Instant::now();
            app.ingest(msgs, None).await?;
            println!(
                "  probe {label}: {:.1} ms",
                s.elapsed().as_secs_f64() * 1000.0
            );
        }
    }
    for u in bulk.iter() {
        ingest_all(&app, subject_messages(u, 10, &ts)).await?;
    }
    println!(
        "loaded through the ingest gate in {:.1} s (not timed below)",
        t.elapsed().as_secs_f64()
    );

    // 1. Export.
    let mut h = Histogram::<u64>::new(3)?;
    let mut events = 0;
    for u in &heavy {
        let s = Instant::now();
        let export = app.export_subject("bench", u).await?;
        let text = export.to_json();
        h.record(s.elapsed().as_micros() as u64)?;
        events = export.document["events"].as_array().map_or(0, Vec::len);
        std::hint::black_box(text);
    }
    println!(
        "export of a subject with {events} events: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms over {}  [target < 200 ms]",
        ms(&h, 0.5),
        ms(&h, 0.99),
        h.max() as f64 / 1000.0,
        heavy.len()
    );

    // 2. Erasure of heavy subjects.
    let mut h = Histogram::<u64>::new(3)?;
    let mut erased_events = 0;
    for u in &heavy {
        let s = Instant::now();
        let done = app.erase_subject("bench", u, true).await?;
        h.record(s.elapsed().as_micros() as u64)?;
        erased_events = done
            .receipt
            .parts
            .iter()
            .find(|p| p.artifact == "events")
            .map_or(0, |p| p.count);
    }
    println!(
        "erasure of a subject with {erased_events} events: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms over {}  [target p99 < 100 ms]",
        ms(&h, 0.5),
        ms(&h, 0.99),
        h.max() as f64 / 1000.0,
        heavy.len()
    );

    // 3. Bulk erasure.
    let s = Instant::now();
    let r = app.erase_subjects("bench", &bulk, false).await?;
    let secs = s.elapsed().as_secs_f64();
    ensure!(
        r.erased == bulk.len(),
        "bulk erased {} of {}",
        r.erased,
        bulk.len()
    );
    println!(
        "bulk erasure: {} subjects (10 events each) in {secs:.2} s = {:.0} subjects/s  [target >= 1,000/s]",
        r.erased,
        r.erased as f64 / secs
    );

    // 4. Ingestion alone, beside erasures, alone again.
    let first = AtomicU64::new(10_000_000);
    let alone = ingest_for(&app, args.phase_secs, &first, args.subjects).await?;
    let erasing = Arc::new(AtomicBool::new(true));
    let erased = Arc::new(AtomicU64::new(0));
    let eraser = {
        let (app, erasing, erased) = (app.clone(), erasing.clone(), erased.clone());
        let subjects = args.subjects;
        tokio::spawn(async move {
            let mut h = Histogram::<u64>::new(3)?;
            let mut i = 0usize;
            while erasing.load(Ordering::Relaxed) {
                let s = Instant::now();
                match app
                    .erase_subject("bench", &format!("user-{}", (i * 7919) % subjects), false)
                    .await
                {
                    Ok(_) | Err(candor_app::AppError::NotFound { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
                h.record(s.elapsed().as_micros() as u64)?;
                erased.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
            anyhow::Ok(h)
        })
    };
    let beside = ingest_for(&app, args.phase_secs, &first, args.subjects).await?;
    erasing.store(false, Ordering::Relaxed);
    let eh = eraser.await??;
    let again = ingest_for(&app, args.phase_secs, &first, args.subjects).await?;
    println!(
        "ingestion (in process, 4 tasks): alone {alone:.0} events/s, beside erasures {beside:.0} events/s, alone again {again:.0} events/s; ratio beside/alone {:.2}",
        beside / ((alone + again) / 2.0)
    );
    println!(
        "erasures beside ingestion: {} in {} s, p50 {:.1} ms, p99 {:.1} ms",
        erased.load(Ordering::Relaxed),
        args.phase_secs,
        ms(&eh, 0.5),
        ms(&eh, 0.99)
    );
    Ok(())
}
